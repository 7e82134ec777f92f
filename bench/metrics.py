"""Detection and fairness metrics: one registry, exact formulas, NaN for anything undefined.

The definitions are those of docs/METRICS.md. "Fake" is the positive class (label 1) and ``score`` is
P(fake); a sample is predicted fake when ``score >= threshold`` (0.5 unless set).

The module has three layers, each usable on its own:

1. Plain array functions, in the manner of scikit-learn: `auc`, `accuracy`, `average_precision`, `eer`,
   `video_auc`, `log_loss`, `brier_score`, `group_auc` and `group_table`.
2. A pure count layer. `GroupStats` holds per-group confusion counts (and per-group AUCs) as arrays of shape
   ``(..., G)`` and applies the group-inclusion policy; every fairness metric is a function of it,
   vectorised over the leading axes, so that `fairness_gaps` evaluates 1,000 bootstrap replicates in one
   call of array operations.
3. `compute_metrics`, the entry point of the report: a predictions table in, a tidy table out, with one
   sort of the scores shared by every ranking metric and one grouping pass per attribute.

Every metric is a `Metric` in the registry `METRICS`, with its direction, its unit and the aliases papers
use; its function's docstring states its formula. The module does not import torch, so analysis code
starts fast.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.groups import ATTRIBUTES
from bench.registry import Registry

__all__ = [
    "ATTRIBUTES",
    "DEFAULT_POLICY",
    "METRICS",
    "POLICIES",
    "RESULT_COLUMNS",
    "TABLE_COLUMNS",
    "GroupStats",
    "Metric",
    "MetricValue",
    "Samples",
    "accuracy",
    "auc",
    "average_precision",
    "brier_score",
    "compute_metrics",
    "eer",
    "fairness_gaps",
    "group_auc",
    "group_table",
    "log_loss",
    "video_auc",
]

DEFAULT_POLICY = "both-classes"
POLICIES: Mapping[str, str] = {
    "both-classes": "a group enters every gap only if it holds both reals and fakes (the paper's rule; "
                    "the public PG-FDD code drops a group whose AUC it cannot compute from all gaps)",
    "defined": "each quantity uses every group where it is defined (FPR: groups with reals; TPR/FNR: "
               "groups with fakes; ACC/PR: non-empty groups; AUC: groups with both classes)",
}
RESULT_COLUMNS = ("attribute", "metric", "value", "unit", "higher_is_better", "n_groups", "min_group_n",
                  "policy", "min_group_size")
TABLE_COLUMNS = ("n", "n_real", "n_fake", "FP", "TN", "TP", "FN", "FPR", "TPR", "FNR", "ACC", "PR", "AUC")

Kind = Literal["detection", "fairness"]
Needs = Literal["real", "fake", "any", "both"]

# One-line error messages (the CLI prints a BenchError as one line on stderr).
_MISSING_COLUMN = "predictions has no column {column!r} ({role}); its columns are: {columns}."
_BAD_LABELS = "{where} must hold 0 (real) or 1 (fake); found {count} other value(s), e.g. {examples}."
_BAD_SCORES = ("{where} must hold P(fake) in [0, 1] with no NaN; found {count} value(s) outside, "
               "e.g. {examples}.")
_BAD_GROUPS = ("{where} must hold integer group codes (-1 for unknown); found {count} other value(s), "
               "e.g. {examples}.")
_BAD_VIDEOS = "{where} must hold a video id for every row; found {count} missing id(s)."
_MIXED_VIDEO = ("{where}: {count} video id(s) hold both real and fake frames, e.g. {examples}; a video id "
                "must include the manipulation, since FF++ fakes of different methods share file names.")
_BAD_DTYPE = "{where} must hold numbers ({what}); got dtype {dtype}, e.g. {examples}."
_LENGTHS = "{names} must have the same length; got {lengths}."
_UNKNOWN_POLICY = "Unknown policy {policy!r}; expected one of: {choices}."
_BAD_THRESHOLD = "threshold must be a number in [0, 1]; got {value!r}."
_BAD_MIN_SIZE = "min_group_size must be an integer >= 1; got {value!r}."
_EMPTY = "predictions has no rows; there is nothing to compute metrics on."
_NOT_FAIRNESS = "fairness_gaps computes fairness metrics only; {names} are detection metrics."
_BAD_COUNTS = "tp, fp, tn, fn{auc} must be arrays of the same shape (..., G); got shapes {shapes}."


# ============================================================================================ registry
class MetricValue(NamedTuple):
    """A metric's value with the evidence behind it.

    ``value`` is a raw fraction (``Metric.scale`` turns it into the reported unit). For a fairness
    metric ``n_groups`` counts the groups that entered it and ``min_group_n`` is the smallest sample
    count among them (NaN when none entered). For a detection metric ``n_groups`` is NaN and
    ``min_group_n`` is the number of units it was computed over (samples; videos for video_AUC).
    Fairness values are arrays of the count arrays' leading shape; detection values are floats.
    """

    value: Any
    n_groups: Any
    min_group_n: Any


@dataclass(frozen=True)
class Metric:
    """A registered metric: what it is called, how to read it, and the function that computes it.

    ``kind`` is "detection" (computed over all samples of a test domain; ``fn`` takes `Samples`) or
    "fairness" (computed per attribute from per-group quantities; ``fn`` takes `GroupStats`). ``unit``
    "%" means the value is reported x100 (percentage points for gaps), "" means raw.
    """

    name: str
    kind: Kind
    higher_is_better: bool
    unit: Literal["%", ""]
    description: str
    fn: Callable[[Any], MetricValue]

    @property
    def scale(self) -> float:
        """The factor from the raw fraction ``fn`` returns to the reported value."""
        return 100.0 if self.unit == "%" else 1.0

    @property
    def doc(self) -> str:
        """The exact formula and edge cases, from the function's docstring."""
        return inspect.getdoc(self.fn) or ""


METRICS: Registry[Metric] = Registry("metric")


def _register(name: str, *, kind: Kind, higher_is_better: bool, unit: Literal["%", ""], description: str,
              aliases: Sequence[str] = ()) -> Callable[[Callable[[Any], MetricValue]],
                                                        Callable[[Any], MetricValue]]:
    """Register the decorated function as a `Metric`, tagged with its kind (so ``select("fairness")``
    works), and return the function unchanged."""

    def decorator(fn: Callable[[Any], MetricValue]) -> Callable[[Any], MetricValue]:
        metric = Metric(name=name, kind=kind, higher_is_better=higher_is_better, unit=unit,
                        description=description, fn=fn)
        METRICS.add(name, metric, tags=(kind,), aliases=aliases)
        return fn

    return decorator


# ============================================================================================ inputs
@dataclass(frozen=True, eq=False)
class Samples:
    """One test domain's predictions as arrays, with the single sort every ranking metric shares.

    ``y_true`` (N,) holds 0/1, ``score`` (N,) P(fake) in [0, 1], ``video`` (N,) optional video ids.
    Build it with `Samples.of` to validate; the constructor trusts its arguments.
    """

    y_true: np.ndarray
    score: np.ndarray
    threshold: float = 0.5
    video: np.ndarray | None = None

    @classmethod
    def of(cls, y_true: Any, score: Any, *, threshold: float = 0.5, video: Any = None) -> Samples:
        """Validated samples: labels 0/1, scores in [0, 1], equal lengths; otherwise a `BenchError`."""
        y = _labels(y_true, "y_true")
        s = _scores(score, "score")
        _same_length(y_true=y, score=s)
        v = None if video is None else np.asarray(video)
        if v is not None:
            _same_length(y_true=y, video=v)
        return cls(y, s, _threshold(threshold), v)

    @property
    def n(self) -> int:
        return int(self.y_true.shape[0])

    @cached_property
    def order(self) -> np.ndarray:
        """Indices that sort ``score`` ascending (stable), shared by AUC, AP, EER and the group AUCs."""
        return np.argsort(self.score, kind="stable")

    @cached_property
    def y_sorted(self) -> np.ndarray:
        return self.y_true[self.order]

    @cached_property
    def score_sorted(self) -> np.ndarray:
        return self.score[self.order]

    @cached_property
    def video_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-video (label, mean score); a `BenchError` if a video mixes reals and fakes."""
        if self.video is None:
            raise BenchError("video_AUC needs video ids; pass video= (or a 'video' column).")
        return _video_means(self.y_true, self.score, self.video, "'video'")


def _numeric(values: Any, where: str, kinds: str, what: str) -> np.ndarray:
    """A 1-D numpy array of one of the dtype ``kinds``; pandas' nullable columns become float with NaN."""
    dtype = getattr(values, "dtype", None)
    nullable = isinstance(values, pd.Series | pd.Index) and isinstance(dtype, pd.api.extensions.ExtensionDtype)
    if nullable and (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    a = np.asarray(values)
    if a.ndim != 1:
        raise BenchError(f"{where} must be one-dimensional; got shape {a.shape}.")
    if a.dtype.kind not in kinds:
        raise BenchError(_BAD_DTYPE.format(where=where, what=what, dtype=a.dtype, examples=_examples(a)))
    return a


def _labels(values: Any, where: str) -> np.ndarray:
    a = _numeric(values, where, "biuf", "0 (real) or 1 (fake)")
    if a.dtype.kind == "b":
        return a.astype(np.int8)
    bad = ~((a == 0) | (a == 1))  # NaN compares unequal, so it is bad too
    if bad.any():
        raise BenchError(_BAD_LABELS.format(where=where, count=int(bad.sum()), examples=_examples(a[bad])))
    return a.astype(np.int8)


def _scores(values: Any, where: str) -> np.ndarray:
    a = _numeric(values, where, "biuf", "P(fake) in [0, 1]").astype(np.float64, copy=False)
    if a.size and not (a.min() >= 0.0 and a.max() <= 1.0):  # False for NaN as well
        bad = ~((a >= 0.0) & (a <= 1.0))
        raise BenchError(_BAD_SCORES.format(where=where, count=int(bad.sum()), examples=_examples(a[bad])))
    return a


def _group_codes(values: Any, where: str) -> np.ndarray:
    a = _numeric(values, where, "biuf", "integer group codes, -1 for unknown")
    if a.dtype.kind in "iub":
        return a.astype(np.int64, copy=False)
    bad = ~np.isfinite(a)
    bad[~bad] = a[~bad] != np.round(a[~bad])
    if bad.any():
        raise BenchError(_BAD_GROUPS.format(where=where, count=int(bad.sum()), examples=_examples(a[bad])))
    return a.astype(np.int64)


def _examples(values: np.ndarray, k: int = 3) -> str:
    return ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:k])


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise BenchError(_LENGTHS.format(names=", ".join(lengths), lengths=lengths))


def _threshold(value: Any) -> float:
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    if not ok:
        raise BenchError(_BAD_THRESHOLD.format(value=value))
    return float(value)


def _policy(value: Any) -> str:
    if value not in POLICIES:
        raise BenchError(_UNKNOWN_POLICY.format(policy=value, choices=", ".join(map(repr, POLICIES))))
    return str(value)


def _min_group_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BenchError(_BAD_MIN_SIZE.format(value=value))
    return int(value)


# ============================================================================================ array cores
def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den == 0 (an undefined rate is NaN, never 0)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _group_auc_sorted(y: np.ndarray, s: np.ndarray, g: np.ndarray | None, n_groups: int) -> np.ndarray:
    """Per-group Mann–Whitney AUC of samples sorted by (group, score) ascending; (G,) with NaN where a
    group lacks a class. ``g`` None means one group. Tied scores share their mid-rank (ties count half)."""
    n_total = y.shape[0]
    if n_total == 0:
        return np.full(n_groups, np.nan)
    new_run = np.empty(n_total, dtype=bool)  # a run = consecutive samples of one group with one score
    new_run[0] = True
    np.not_equal(s[1:], s[:-1], out=new_run[1:])
    if g is None:
        g = np.zeros(n_total, dtype=np.intp)
    else:
        new_run[1:] |= g[1:] != g[:-1]
    n = np.bincount(g, minlength=n_groups).astype(np.float64)
    n1 = np.bincount(g, weights=y, minlength=n_groups)
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], n_total)  # exclusive
    run_group = g[starts]
    first = np.cumsum(n) - n  # position of each group's first sample
    mid_rank = (starts + ends - 1) / 2.0 - first[run_group] + 1.0  # 1-based rank within the group
    positives = np.add.reduceat(y, starts, dtype=np.int64)
    rank_sum = np.bincount(run_group, weights=positives * mid_rank, minlength=n_groups)
    n0 = n - n1
    return _ratio(rank_sum - n1 * (n1 + 1.0) / 2.0, np.where((n1 > 0) & (n0 > 0), n1 * n0, 0.0))


def _operating_points(y_sorted: np.ndarray, s_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (TP, FP) when predicting fake at each distinct score, from the highest score down."""
    y_desc, s_desc = y_sorted[::-1], s_sorted[::-1]
    last = np.append(np.flatnonzero(s_desc[1:] != s_desc[:-1]), s_desc.shape[0] - 1)
    tp = np.cumsum(y_desc, dtype=np.int64)[last]
    return tp, last + 1 - tp


def _average_precision_sorted(y_sorted: np.ndarray, s_sorted: np.ndarray) -> float:
    if y_sorted.shape[0] == 0:
        return float("nan")
    tp, fp = _operating_points(y_sorted, s_sorted)
    if tp[-1] == 0:
        return float("nan")
    recall = tp / tp[-1]
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _eer_sorted(y_sorted: np.ndarray, s_sorted: np.ndarray) -> float:
    if y_sorted.shape[0] == 0:
        return float("nan")
    tp, fp = _operating_points(y_sorted, s_sorted)
    n_fake, n_real = tp[-1], fp[-1]
    if n_fake == 0 or n_real == 0:
        return float("nan")
    fpr = np.concatenate(([0.0], fp / n_real))
    fnr = np.concatenate(([1.0], 1.0 - tp / n_fake))
    d = fpr - fnr  # strictly increasing from -1 to +1: every operating point moves FPR up or FNR down
    k = int(np.argmax(d >= 0.0))
    if d[k] == 0.0:
        return float(fpr[k])
    t = -d[k - 1] / (d[k] - d[k - 1])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def _video_means(y: np.ndarray, s: np.ndarray, video: np.ndarray,
                 where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-video (label, mean frame score), videos in order of first appearance; one factorize and three
    bincounts, no groupby."""
    codes, uniques = pd.factorize(video, use_na_sentinel=True)
    if codes.size and codes.min() < 0:
        raise BenchError(_BAD_VIDEOS.format(where=where, count=int((codes < 0).sum())))
    frames = np.bincount(codes, minlength=len(uniques))
    fakes = np.bincount(codes, weights=y, minlength=len(uniques))
    mixed = (fakes > 0) & (fakes < frames)
    if mixed.any():
        raise BenchError(_MIXED_VIDEO.format(where=where, count=int(mixed.sum()),
                                             examples=_examples(np.asarray(uniques)[mixed])))
    mean_score = np.bincount(codes, weights=s, minlength=len(uniques)) / frames
    return (fakes > 0).astype(np.int8), mean_score


# ============================================================================================ array API
def auc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve, ties counting half (the Mann–Whitney statistic).

    AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0), where R_1 is the sum of the fakes' ranks among all scores
    (tied scores share their mid-rank), n_1 the number of fakes and n_0 of reals. Equals
    P(score_fake > score_real) + 0.5 P(score_fake = score_real), and scikit-learn's ``roc_auc_score``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0 (real) or 1 (fake).
    score : array-like of shape (n_samples,)
        P(fake) in [0, 1].

    Returns
    -------
    float
        In [0, 1], higher is better; NaN when either class is absent.
    """
    d = Samples.of(y_true, score)
    return float(_group_auc_sorted(d.y_sorted, d.score_sorted, None, 1)[0])


def accuracy(y_true: Any, score: Any, *, threshold: float = 0.5) -> float:
    """Fraction of samples classified correctly, a sample being predicted fake when score >= threshold.

    ACC = (TP + TN) / n. Higher is better; NaN for no samples.
    """
    d = Samples.of(y_true, score, threshold=threshold)
    return _accuracy(d).value


def average_precision(y_true: Any, score: Any) -> float:
    """Average precision, the same definition as scikit-learn's ``average_precision_score``.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct scores taken as thresholds from the highest down,
    where P_k and R_k are the precision and recall (fake = positive) when predicting fake at score >= the
    k-th threshold, and R_0 = 0. No interpolation. Higher is better; NaN when there is no fake.
    """
    d = Samples.of(y_true, score)
    return _average_precision_sorted(d.y_sorted, d.score_sorted)


def eer(y_true: Any, score: Any) -> float:
    """Equal error rate: the error where the false-positive rate equals the false-negative rate.

    The operating points are (FPR_k, FNR_k) for predicting fake at score >= each distinct score, plus
    (0, 1) for predicting nothing fake. FPR - FNR rises strictly along them from -1 to +1. When it is 0
    at a point, EER is that point's FPR. Otherwise the crossing lies between the two points k-1, k that
    bracket it and is interpolated linearly along the ROC segment between them:
    t = (FNR_{k-1} - FPR_{k-1}) / ((FNR_{k-1} - FPR_{k-1}) - (FNR_k - FPR_k)),
    EER = FPR_{k-1} + t (FPR_k - FPR_{k-1}) (= FNR at the same t).
    The public PG-FDD code reports instead the FPR of the point where |FNR - FPR| is smallest, without
    interpolation; the two agree when a point lies on the crossing. Lower is better; NaN when either class
    is absent.
    """
    d = Samples.of(y_true, score)
    return _eer_sorted(d.y_sorted, d.score_sorted)


def video_auc(y_true: Any, score: Any, video: Any) -> float:
    """AUC over videos: each video's score is the mean of its frames' scores, its label its frames' label.

    Frames are grouped by ``video``; the id must distinguish manipulations (FF++ fakes of different
    methods share file names), and a video whose frames mix reals and fakes is a `BenchError`. Then
    `auc` over the videos. Higher is better; NaN when the videos lack a class.
    """
    d = Samples.of(y_true, score, video=video)
    return _video_auc(d).value


def log_loss(y_true: Any, score: Any) -> float:
    """Mean binary cross-entropy in nats, with probabilities clipped to [eps, 1 - eps].

    LL = -(1/n) sum_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)], p_i = clip(score_i, eps, 1 - eps), where eps is
    the float64 machine epsilon (as scikit-learn's ``log_loss``), so a confident mistake costs about 36
    nats rather than infinity. Lower is better; NaN for no samples.
    """
    return _log_loss(Samples.of(y_true, score)).value


def brier_score(y_true: Any, score: Any) -> float:
    """Brier score: BS = (1/n) sum_i (score_i - y_i)^2. Lower is better; NaN for no samples."""
    return _brier(Samples.of(y_true, score)).value


def group_auc(y_true: Any, score: Any, groups: Any) -> pd.Series:
    """Per-group AUC (ties count half), indexed by the group codes present; NaN for a group lacking a class.

    One stable sort by score, then a stable sort of the group codes (a radix sort for small codes), gives
    (group, score) order; mid-ranks within each group come from runs of equal (group, score), and the rank
    sums of the fakes from one ``bincount``: no Python loop over samples or groups. Negative codes mean
    unknown and are left out.
    """
    return group_table(y_true, score, groups)["AUC"]


def group_table(y_true: Any, score: Any, groups: Any, *, threshold: float = 0.5) -> pd.DataFrame:
    """Per-group quantities for one attribute, indexed by group code (the codes present, ascending).

    Columns: n, n_real, n_fake, FP, TN, TP, FN (counts, a sample predicted fake when score >= threshold),
    FPR = FP / (FP + TN), TPR = TP / (TP + FN), FNR = FN / (TP + FN), ACC = (TP + TN) / n,
    PR = (TP + FP) / n (positive rate) and AUC (as `auc`, within the group). FPR is NaN without reals, TPR
    and FNR without fakes, AUC without both: undefined is NaN, never 0, never an exception. Negative group
    codes mean unknown; those samples are left out.
    """
    d = Samples.of(y_true, score, threshold=threshold)
    g = _group_codes(groups, "groups")
    _same_length(y_true=d.y_true, groups=g)
    counts, group_aucs = _per_group(d, g)
    stats = GroupStats(*counts, auc=group_aucs)
    present = np.flatnonzero(stats.n > 0)
    table = pd.DataFrame({
        "n": stats.n, "n_real": stats.n_real, "n_fake": stats.n_fake,
        "FP": stats.fp, "TN": stats.tn, "TP": stats.tp, "FN": stats.fn,
        "FPR": stats.fpr, "TPR": stats.tpr, "FNR": stats.fnr, "ACC": stats.acc, "PR": stats.pr,
        "AUC": stats.auc_values,
    }).iloc[present]
    table.index = pd.Index(present, name="group")
    return table.astype({c: np.int64 for c in TABLE_COLUMNS[:7]})


def _per_group(d: Samples, groups: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """(TP, FP, TN, FN) and AUC per group code 0..G-1 of one attribute, from the shared score order."""
    g = groups[d.order]
    y, s = d.y_sorted, d.score_sorted
    known = g >= 0
    if not known.all():
        g, y, s = g[known], y[known], s[known]
    n_groups = int(g.max()) + 1 if g.size else 0
    if n_groups == 0:
        empty = np.zeros(0)
        return (empty, empty, empty, empty), empty
    # A stable (radix) sort of the small group codes keeps score order within each group, and its indices
    # rise within each group, so the gathers below stream through memory.
    by_group = np.argsort(g.astype(np.min_scalar_type(n_groups)), kind="stable")
    g, y, s = g[by_group], y[by_group], s[by_group]
    cell = g * 4 + y * 2 + (s >= d.threshold)  # 0 TN, 1 FP, 2 FN, 3 TP
    tn, fp, fn, tp = np.bincount(cell, minlength=4 * n_groups).reshape(n_groups, 4).T
    return (tp, fp, tn, fn), _group_auc_sorted(y, s, g, n_groups)


# ============================================================================================ count layer
@dataclass(frozen=True, eq=False)
class GroupStats:
    """Per-group counts of one attribute, arrays of shape (..., G), and the group-inclusion policy.

    The leading axes are free (bootstrap replicates, say), so every fairness metric computed from this is
    vectorised. ``auc`` (same shape, optional) holds per-group AUCs; without it the AUC metrics are NaN.
    ``policy`` (see `POLICIES`) and ``min_group_size`` decide which groups enter each gap: a group with
    n < min_group_size never does.
    """

    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray
    auc: np.ndarray | None = None
    policy: str = DEFAULT_POLICY
    min_group_size: int = 1

    def __post_init__(self) -> None:
        arrays = [np.asarray(a, dtype=np.float64) for a in (self.tp, self.fp, self.tn, self.fn)]
        auc_ = None if self.auc is None else np.asarray(self.auc, dtype=np.float64)
        shapes = [a.shape for a in arrays] + ([] if auc_ is None else [auc_.shape])
        if len(set(shapes)) != 1 or arrays[0].ndim == 0:
            raise BenchError(_BAD_COUNTS.format(auc="" if auc_ is None else ", auc", shapes=shapes))
        for name, a in zip(("tp", "fp", "tn", "fn"), arrays, strict=True):
            object.__setattr__(self, name, a)
        object.__setattr__(self, "auc", auc_)
        object.__setattr__(self, "policy", _policy(self.policy))
        object.__setattr__(self, "min_group_size", _min_group_size(self.min_group_size))

    @cached_property
    def n_real(self) -> np.ndarray:
        return self.fp + self.tn

    @cached_property
    def n_fake(self) -> np.ndarray:
        return self.tp + self.fn

    @cached_property
    def n(self) -> np.ndarray:
        return self.n_real + self.n_fake

    @cached_property
    def fpr(self) -> np.ndarray:
        return _ratio(self.fp, self.n_real)

    @cached_property
    def tpr(self) -> np.ndarray:
        return _ratio(self.tp, self.n_fake)

    @cached_property
    def fnr(self) -> np.ndarray:
        return _ratio(self.fn, self.n_fake)

    @cached_property
    def acc(self) -> np.ndarray:
        return _ratio(self.tp + self.tn, self.n)

    @cached_property
    def pr(self) -> np.ndarray:
        return _ratio(self.tp + self.fp, self.n)

    @cached_property
    def auc_values(self) -> np.ndarray:
        return np.full(self.tp.shape, np.nan) if self.auc is None else self.auc

    @cached_property
    def fpr_all(self) -> np.ndarray:
        """The attribute's pooled FPR over all its groups, shape (..., 1), whatever the policy."""
        return _ratio(self.fp.sum(-1), self.n_real.sum(-1))[..., None]

    @cached_property
    def tpr_all(self) -> np.ndarray:
        """The attribute's pooled TPR over all its groups, shape (..., 1), whatever the policy."""
        return _ratio(self.tp.sum(-1), self.n_fake.sum(-1))[..., None]

    def eligible(self, needs: Needs) -> np.ndarray:
        """Which groups may enter a gap of a quantity that needs reals, fakes, any sample, or both.

        ``both-classes``: groups with both reals and fakes, whatever the quantity. ``defined``: groups
        where the quantity is defined. Both: and n >= min_group_size. Shape (..., G), bool.
        """
        big = self.n >= self.min_group_size
        has_real, has_fake = self.n_real > 0, self.n_fake > 0
        if self.policy == "both-classes" or needs == "both":
            return big & has_real & has_fake
        if needs == "real":
            return big & has_real
        if needs == "fake":
            return big & has_fake
        return big & (self.n > 0)


def fairness_gaps(tp: Any, fp: Any, tn: Any, fn: Any, auc: Any = None, *,
                  metrics: str | Sequence[str] | None = None, policy: str = DEFAULT_POLICY,
                  min_group_size: int = 1) -> dict[str, MetricValue]:
    """Every selected fairness metric from per-group count arrays, vectorised over leading axes.

    ``tp, fp, tn, fn`` (and ``auc``, optional) have shape (..., G): G groups of one attribute, any leading
    axes (e.g. (B, G) for B bootstrap replicates). ``metrics`` selects fairness metrics by name, alias,
    glob or "all" (default: all fairness metrics). Returns {canonical name: MetricValue} whose fields have
    the leading shape (...,); values are raw fractions (multiply by ``METRICS.get(name).scale`` to
    report).

    Example: ``fairness_gaps(tp, fp, tn, fn, auc, metrics="F_*")["F_FPR"].value`` has shape (B,).
    """
    stats = GroupStats(tp, fp, tn, fn, auc=auc, policy=policy, min_group_size=min_group_size)
    spec = "fairness" if metrics is None or metrics == "all" else metrics
    chosen = [METRICS.get(name) for name in METRICS.select(spec)]
    detection = [m.name for m in chosen if m.kind != "fairness"]
    if detection:
        raise BenchError(_NOT_FAIRNESS.format(names=", ".join(detection)))
    return {m.name: m.fn(stats) for m in chosen}


def _entered(stats: GroupStats, mask: np.ndarray, value: np.ndarray) -> MetricValue:
    """Attach the groups that entered (``mask``, (..., G)) to a gap; NaN when fewer than two did."""
    k = mask.sum(-1)
    smallest = np.min(np.where(mask, stats.n, np.inf), axis=-1, initial=np.inf)
    return MetricValue(np.where(k >= 2, value, np.nan), k, np.where(k > 0, smallest, np.nan))


def _usable(stats: GroupStats, values: np.ndarray, needs: Needs) -> np.ndarray:
    return stats.eligible(needs) & ~np.isnan(values)


def _spread(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """max - min of ``values`` over the groups in ``mask`` (NaN where fewer than two), along the last axis."""
    hi = np.max(np.where(mask, values, -np.inf), axis=-1, initial=-np.inf)
    lo = np.min(np.where(mask, values, np.inf), axis=-1, initial=np.inf)
    return np.where(mask.sum(-1) >= 2, hi - lo, np.nan)


def _gap(stats: GroupStats, values: np.ndarray, needs: Needs) -> MetricValue:
    mask = _usable(stats, values, needs)
    return _entered(stats, mask, _spread(values, mask))


def _deviation_sum(values: np.ndarray, pooled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sum_g |values_g - pooled| over the groups in ``mask``; NaN where fewer than two."""
    total = np.where(mask, np.abs(values - pooled), 0.0).sum(-1)
    return np.where(mask.sum(-1) >= 2, total, np.nan)


def _worst(stats: GroupStats, values: np.ndarray, needs: Needs) -> MetricValue:
    mask = _usable(stats, values, needs)
    return _entered(stats, mask, np.min(np.where(mask, values, np.inf), axis=-1, initial=np.inf))


# ============================================================================================ detection
def _detection(value: float, units: int) -> MetricValue:
    return MetricValue(float(value), float("nan"), units)


@_register("AUC", kind="detection", higher_is_better=True, unit="%", aliases=("auc", "AUROC", "roc_auc"),
           description="Area under the ROC curve over all samples, ties counting half")
def _auc(d: Samples) -> MetricValue:
    """AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0) over all samples of the domain, R_1 being the sum of the
    fakes' mid-ranks (ties count half); = P(s_fake > s_real) + 0.5 P(s_fake = s_real). Reported x100,
    higher is better; NaN when either class is absent."""
    return _detection(_group_auc_sorted(d.y_sorted, d.score_sorted, None, 1)[0], d.n)


@_register("ACC", kind="detection", higher_is_better=True, unit="%", aliases=("acc", "accuracy"),
           description="Accuracy at the threshold (fake when score >= threshold)")
def _accuracy(d: Samples) -> MetricValue:
    """ACC = (TP + TN) / n, a sample predicted fake when score >= threshold. Reported x100, higher is
    better; NaN for no samples."""
    correct = np.count_nonzero((d.score >= d.threshold) == (d.y_true == 1))
    return _detection(_ratio(correct, d.n), d.n)


@_register("AP", kind="detection", higher_is_better=True, unit="%", aliases=("ap", "average_precision"),
           description="Average precision (scikit-learn's definition), fake = positive")
def _average_precision(d: Samples) -> MetricValue:
    """AP = sum_k (R_k - R_{k-1}) P_k over distinct scores as thresholds, highest first, R_0 = 0 (no
    interpolation; scikit-learn's ``average_precision_score``). Reported x100, higher is better; NaN when
    there is no fake."""
    return _detection(_average_precision_sorted(d.y_sorted, d.score_sorted), d.n)


@_register("EER", kind="detection", higher_is_better=False, unit="%", aliases=("eer",),
           description="Equal error rate (FPR = FNR), linearly interpolated on the ROC")
def _eer(d: Samples) -> MetricValue:
    """EER: the error where FPR = FNR. Operating points (FPR_k, FNR_k) at each distinct score, plus (0, 1);
    the crossing is interpolated linearly between the two points k-1, k that bracket it:
    t = (FNR_{k-1} - FPR_{k-1}) / ((FNR_{k-1} - FPR_{k-1}) - (FNR_k - FPR_k)),
    EER = FPR_{k-1} + t (FPR_k - FPR_{k-1}). Reported x100, lower is better; NaN when a class is absent."""
    return _detection(_eer_sorted(d.y_sorted, d.score_sorted), d.n)


@_register("video_AUC", kind="detection", higher_is_better=True, unit="%", aliases=("video_auc",),
           description="AUC over videos, a video's score being the mean of its frames' P(fake)")
def _video_auc(d: Samples) -> MetricValue:
    """video_AUC = AUC over videos, video v scored mean_{i in v} score_i and labelled its frames' label
    (frames of one video id must share a label; the id must include the manipulation). Reported x100,
    higher is better; NaN when the videos lack a class. min_group_n counts videos."""
    labels, means = d.video_scores
    order = np.argsort(means, kind="stable")
    return _detection(_group_auc_sorted(labels[order], means[order], None, 1)[0], labels.shape[0])


@_register("log_loss", kind="detection", higher_is_better=False, unit="", aliases=("logloss", "bce", "nll"),
           description="Mean binary cross-entropy in nats, probabilities clipped to [eps, 1-eps]")
def _log_loss(d: Samples) -> MetricValue:
    """LL = -(1/n) sum_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)], p_i = clip(score_i, eps, 1 - eps), eps the
    float64 machine epsilon (as scikit-learn). Raw (nats), lower is better; NaN for no samples."""
    if d.n == 0:
        return _detection(float("nan"), 0)
    eps = np.finfo(np.float64).eps
    p = np.clip(d.score, eps, 1.0 - eps)
    return _detection(-np.mean(np.where(d.y_true == 1, np.log(p), np.log1p(-p))), d.n)


@_register("brier", kind="detection", higher_is_better=False, unit="", aliases=("brier_score",),
           description="Brier score: mean squared error of P(fake)")
def _brier(d: Samples) -> MetricValue:
    """BS = (1/n) sum_i (score_i - y_i)^2. Raw, lower is better; NaN for no samples."""
    if d.n == 0:
        return _detection(float("nan"), 0)
    return _detection(np.mean((d.score - d.y_true) ** 2), d.n)


# ============================================================================================ fairness
# Every fairness metric: groups g are those that enter under the policy (see GroupStats.eligible); the
# value is NaN when fewer than two groups enter. Reported x100 (percentage points).

@_register("F_FPR", kind="fairness", higher_is_better=False, unit="%", aliases=("fpr_gap",),
           description="False-positive-rate gap: max_g FPR_g - min_g FPR_g")
def _f_fpr(q: GroupStats) -> MetricValue:
    """F_FPR = max_g FPR_g - min_g FPR_g, FPR_g = FP_g / (FP_g + TN_g). Under ``defined``, over groups with
    reals. Lower is better; NaN with fewer than two groups."""
    return _gap(q, q.fpr, "real")


@_register("F_OAE", kind="fairness", higher_is_better=False, unit="%", aliases=("acc_gap", "accuracy_gap"),
           description="Overall accuracy equality: max_g ACC_g - min_g ACC_g")
def _f_oae(q: GroupStats) -> MetricValue:
    """F_OAE = max_g ACC_g - min_g ACC_g, ACC_g = (TP_g + TN_g) / n_g. Under ``defined``, over non-empty
    groups. Lower is better; NaN with fewer than two groups."""
    return _gap(q, q.acc, "any")


@_register("F_DP", kind="fairness", higher_is_better=False, unit="%",
           aliases=("dp_gap", "demographic_parity_difference"),
           description="Demographic parity: max_g PR_g - min_g PR_g, PR = predicted-fake rate")
def _f_dp(q: GroupStats) -> MetricValue:
    """F_DP = max_g PR_g - min_g PR_g, PR_g = (TP_g + FP_g) / n_g (fairlearn's
    demographic_parity_difference, between groups). Under ``defined``, over non-empty groups. Lower is
    better; NaN with fewer than two groups."""
    return _gap(q, q.pr, "any")


@_register("F_MEO", kind="fairness", higher_is_better=False, unit="%",
           aliases=("MEO", "equalized_odds_difference"),
           description="Maximum equalized odds: max(FPR gap, TPR gap)")
def _f_meo(q: GroupStats) -> MetricValue:
    """F_MEO = max(max_g FPR_g - min_g FPR_g, max_g TPR_g - min_g TPR_g) (fairlearn's
    equalized_odds_difference, between groups, worst case). Under ``defined`` the FPR gap runs over groups
    with reals and the TPR gap over groups with fakes, and NaN unless both gaps have two groups; n_groups
    counts the union. Lower is better."""
    fpr_mask, tpr_mask = _usable(q, q.fpr, "real"), _usable(q, q.tpr, "fake")
    value = np.maximum(_spread(q.fpr, fpr_mask), _spread(q.tpr, tpr_mask))  # NaN if either is NaN
    return _entered(q, fpr_mask | tpr_mask, value)


@_register("F_EFPR", kind="fairness", higher_is_better=False, unit="%", aliases=("FFPR", "EFPR"),
           description="Sum of FPR deviations from the attribute's pooled FPR (DAW-FDD's FFPR)")
def _f_efpr(q: GroupStats) -> MetricValue:
    """F_EFPR = sum_g |FPR_g - FPR_all|, FPR_all being the attribute's pooled FPR over all its samples with
    a known group (every group, whatever the policy, as the public PG-FDD code pools all samples). The
    figure DAW-FDD calls FFPR. Under ``defined``, over groups with reals. Lower is better; NaN with fewer
    than two groups."""
    mask = _usable(q, q.fpr, "real")
    return _entered(q, mask, _deviation_sum(q.fpr, q.fpr_all, mask))


@_register("F_EO", kind="fairness", higher_is_better=False, unit="%", aliases=("FEO",),
           description="Sum of FPR and TPR deviations from the attribute's pooled rates")
def _f_eo(q: GroupStats) -> MetricValue:
    """F_EO = sum_g (|FPR_g - FPR_all| + |TPR_g - TPR_all|), FPR_all and TPR_all pooled over all samples of
    the attribute with a known group (every group, whatever the policy). Under ``defined`` the FPR terms run
    over groups with reals and the TPR terms over groups with fakes, and NaN unless both have two groups;
    n_groups counts the union. Lower is better."""
    fpr_mask, tpr_mask = _usable(q, q.fpr, "real"), _usable(q, q.tpr, "fake")
    value = _deviation_sum(q.fpr, q.fpr_all, fpr_mask) + _deviation_sum(q.tpr, q.tpr_all, tpr_mask)
    return _entered(q, fpr_mask | tpr_mask, value)


@_register("G_AUC", kind="fairness", higher_is_better=False, unit="%", aliases=("auc_gap",),
           description="AUC gap: max_g AUC_g - min_g AUC_g")
def _g_auc(q: GroupStats) -> MetricValue:
    """G_AUC = max_g AUC_g - min_g AUC_g, AUC_g the within-group AUC (ties count half), over groups with
    both classes under either policy. Lower is better; NaN with fewer than two groups or no AUCs given."""
    return _gap(q, q.auc_values, "both")


@_register("F_FNR", kind="fairness", higher_is_better=False, unit="%", aliases=("fnr_gap",),
           description="False-negative-rate gap: max_g FNR_g - min_g FNR_g")
def _f_fnr(q: GroupStats) -> MetricValue:
    """F_FNR = max_g FNR_g - min_g FNR_g, FNR_g = FN_g / (TP_g + FN_g) = 1 - TPR_g (so it equals the TPR
    gap). Under ``defined``, over groups with fakes. Lower is better; NaN with fewer than two groups."""
    return _gap(q, q.fnr, "fake")


@_register("worst_AUC", kind="fairness", higher_is_better=True, unit="%",
           aliases=("worst_group_AUC", "min_group_AUC"),
           description="Worst-group AUC: min_g AUC_g")
def _worst_auc(q: GroupStats) -> MetricValue:
    """worst_AUC = min_g AUC_g over groups with both classes. Higher is better. Like every fairness metric
    it is NaN when fewer than two groups enter: a single group has no one to be worse than."""
    return _worst(q, q.auc_values, "both")


@_register("worst_ACC", kind="fairness", higher_is_better=True, unit="%",
           aliases=("worst_group_ACC", "min_group_ACC"),
           description="Worst-group accuracy: min_g ACC_g")
def _worst_acc(q: GroupStats) -> MetricValue:
    """worst_ACC = min_g ACC_g. Under ``defined``, over non-empty groups. Higher is better; NaN when fewer
    than two groups enter."""
    return _worst(q, q.acc, "any")


# ============================================================================================ entry point
def compute_metrics(
    predictions: pd.DataFrame,
    *,
    metrics: str | Sequence[str] | None = None,
    attributes: str | Sequence[str] = ATTRIBUTES,
    threshold: float = 0.5,
    policy: str = DEFAULT_POLICY,
    min_group_size: int = 1,
) -> pd.DataFrame:
    """Every selected metric on one test domain's predictions, as a tidy table.

    ``predictions`` has columns ``label`` (0 real, 1 fake), ``score`` (P(fake) in [0, 1]), ``video`` (ids
    including the manipulation; needed only for video_AUC) and one integer column per attribute (gender
    0 male 1 female; race 0 Asian 1 White 2 Black 3 Others; intersection = gender*4 + race; -1 unknown,
    left out of that attribute). ``metrics`` selects by name, alias, glob, tag ("detection", "fairness")
    or "all" (default: all). Detection metrics use every row; fairness metrics are computed for each of
    ``attributes`` with the group-inclusion ``policy`` (see `POLICIES`) and ``min_group_size``.

    Returns one row per (attribute, metric), detection metrics first: ``attribute`` ("all" for
    detection), ``metric`` (canonical name), ``value`` (in ``unit``: x100 for "%"), ``unit``,
    ``higher_is_better``, ``n_groups`` (groups that entered the gap; <NA> for detection), ``min_group_n``
    (smallest n among them; for detection the number of samples, of videos for video_AUC), ``policy`` and
    ``min_group_size`` (the call's settings, on every row; detection metrics do not depend on them).

    Bad input (a missing column, labels not 0/1, scores outside [0, 1] or NaN, an unknown metric or
    policy) raises `BenchError` with a one-line message naming the column or argument.
    """
    policy = _policy(policy)
    min_group_size = _min_group_size(min_group_size)
    threshold = _threshold(threshold)
    chosen = [METRICS.get(name) for name in METRICS.select("all" if metrics is None else metrics)]
    attributes = (attributes,) if isinstance(attributes, str) else tuple(attributes)
    detection = [m for m in chosen if m.kind == "detection"]
    fairness = [m for m in chosen if m.kind == "fairness"]

    needed = {"label": "0 real / 1 fake", "score": "P(fake)"}
    if any(m.name == "video_AUC" for m in detection):
        needed["video"] = "video id, for video_AUC"
    if fairness:
        needed.update({a: "integer group codes, -1 unknown" for a in attributes})
    _require_columns(predictions, needed)
    if len(predictions) == 0:
        raise BenchError(_EMPTY)

    video = predictions["video"].to_numpy() if "video" in needed else None
    data = Samples(_labels(predictions["label"], "column 'label'"),
                   _scores(predictions["score"], "column 'score'"), threshold, video)

    rows = [_row("all", m, m.fn(data), policy, min_group_size) for m in detection]
    for attribute in attributes if fairness else ():
        groups = _group_codes(predictions[attribute], f"column {attribute!r}")
        counts, group_aucs = _per_group(data, groups)
        if counts[0].size == 0:  # no sample has a known group: no group enters any gap
            counts, group_aucs = (np.zeros(1),) * 4, np.full(1, np.nan)
        stats = GroupStats(*counts, auc=group_aucs, policy=policy, min_group_size=min_group_size)
        rows += [_row(attribute, m, m.fn(stats), policy, min_group_size) for m in fairness]
    return _result_frame(rows)


def _require_columns(predictions: pd.DataFrame, needed: Mapping[str, str]) -> None:
    if not isinstance(predictions, pd.DataFrame):
        raise BenchError(f"predictions must be a pandas DataFrame; got {type(predictions).__name__}.")
    for column, role in needed.items():
        if column not in predictions.columns:
            names = [str(c) for c in predictions.columns]
            listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") or "(none)"
            raise BenchError(_MISSING_COLUMN.format(column=column, role=role, columns=listed))


def _row(attribute: str, metric: Metric, result: MetricValue, policy: str, min_group_size: int) -> dict:
    return {
        "attribute": attribute,
        "metric": metric.name,
        "value": float(result.value) * metric.scale,
        "unit": metric.unit,
        "higher_is_better": metric.higher_is_better,
        "n_groups": float(result.n_groups),
        "min_group_n": float(result.min_group_n),
        "policy": policy,
        "min_group_size": min_group_size,
    }


def _result_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return frame.astype({"value": np.float64, "higher_is_better": bool, "n_groups": "Int64",
                         "min_group_n": "Int64", "min_group_size": np.int64})
