"""Detection and fairness metrics: one registry, exact formulas, NaN for anything undefined.

The definitions are those of docs/METRICS.md. "Fake" is the positive class (label 1) and ``score`` is
P(fake); a sample is predicted fake when ``score >= threshold`` (0.5 unless set).

Every metric is one function here, registered with `register_metric`: its name, kind, direction, unit,
the aliases papers use, and whether the report's bootstrap covers it; its docstring states its formula.
A detection metric takes `Samples` (all predictions of a test domain); a fairness metric takes
`GroupStats` (per-group counts of one attribute, any leading axes), so it is vectorised over bootstrap
replicates by construction. A bootstrapped detection metric also gives its per-replicate formula
(``replicate=``, a function of `WeightedSamples`); registration refuses a metric declared bootstrapped
whose per-replicate computation does not exist or does not return one value per replicate.

Besides the registry: plain array functions in the manner of scikit-learn (`auc`, `accuracy`,
`average_precision`, `eer`, `video_auc`, `log_loss`, `brier_score`, `group_auc`, `group_table`),
`fairness_gaps` (every fairness metric from count arrays), and `compute_metrics`: a predictions table in,
a tidy table out, with one sort of the scores shared by every ranking metric and one grouping pass per
attribute (the report's entry point, `metric_rows_of`, does the same for many tables at once). The arrays
these stand on (validation, `Samples`, `GroupStats`, the exact cores) live in `bench.metric_core`. No torch
here: analysis code starts fast.

The module is longer than the project's 600-line guide on purpose: it is the one file a metric is added
to (docs/CONTRIBUTING.md), one short registered function per metric with its formula in the docstring,
and spreading the definitions over several files would break that.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.groups import ATTRIBUTES
from bench.metric_core import (
    DEFAULT_POLICY,
    POLICIES,
    GroupStats,
    MetricValue,
    Samples,
    as_group_codes,
    as_labels,
    as_min_group_size,
    as_policy,
    as_scores,
    as_threshold,
    average_precision_sorted,
    deviation_sum,
    eer_sorted,
    entered,
    gap,
    per_group,
    rank_auc_sorted,
    ratio,
    same_length,
    usable,
    worst,
)
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
    "WeightedSamples",
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
    "metric_rows",
    "metric_rows_of",
    "register_metric",
    "result_frame",
    "video_auc",
]

RESULT_COLUMNS = ("attribute", "metric", "value", "unit", "higher_is_better", "n_groups", "min_group_n",
                  "policy", "min_group_size")
TABLE_COLUMNS = ("n", "n_real", "n_fake", "FP", "TN", "TP", "FN", "FPR", "TPR", "FNR", "ACC", "PR", "AUC")

Kind = Literal["detection", "fairness"]
Replicate = Callable[["WeightedSamples"], np.ndarray]

# One-line error messages (the CLI prints a BenchError as one line on stderr).
_MISSING_COLUMN = "predictions has no column {column!r} ({role}); its columns are: {columns}."
_EMPTY = "predictions has no rows; there is nothing to compute metrics on."
_NOT_FAIRNESS = "fairness_gaps computes fairness metrics only; {names} are detection metrics."
_NO_REPLICATE = ("Metric {name!r} is declared bootstrapped but has no per-replicate formula: give "
                 "replicate=<function of WeightedSamples returning one value per replicate>, or register it "
                 "with bootstrapped=False (the report then says it has no CI).")
_FAIRNESS_REPLICATE = ("Metric {name!r} is a fairness metric: its function of GroupStats is already "
                       "vectorised over replicates; drop replicate=.")
_NOT_VECTORISED = ("Metric {name!r} is declared bootstrapped, but its {what} does not give one value per "
                   "replicate on a 2-replicate probe ({problem}); write it with array operations over the "
                   "leading axis, or register it with bootstrapped=False.")


# ============================================================================================ registry
@dataclass(frozen=True)
class Metric:
    """A registered metric: what it is called, how to read it, and the function that computes it.

    ``kind`` is "detection" (computed over all samples of a test domain; ``fn`` takes `Samples`) or
    "fairness" (computed per attribute from per-group quantities; ``fn`` takes `GroupStats`). ``unit``
    "%" means the value is reported x100 (percentage points for gaps), "" means raw. ``bootstrapped``:
    the report's bootstrap gives it a CI (a fairness metric through ``fn`` on (B, G) counts, a detection
    metric through ``replicate``, a function of `WeightedSamples` returning (B,) raw fractions).
    """

    name: str
    kind: Kind
    higher_is_better: bool
    unit: Literal["%", ""]
    description: str
    fn: Callable[[Any], MetricValue]
    bootstrapped: bool = False
    replicate: Replicate | None = None
    group_auc: bool = False  # fn reads GroupStats.auc_values: the bootstrap then computes per-group AUCs

    @property
    def scale(self) -> float:
        """The factor from the raw fraction ``fn`` returns to the reported value."""
        return 100.0 if self.unit == "%" else 1.0

    @property
    def doc(self) -> str:
        """The exact formula and edge cases, from the function's docstring."""
        return inspect.getdoc(self.fn) or ""


METRICS: Registry[Metric] = Registry("metric")


@dataclass(frozen=True, eq=False)
class WeightedSamples:
    """B resampled copies of one test domain's predictions, as integer weights: what the per-replicate
    formula of a bootstrapped detection metric is computed from.

    A replicate draws clusters (videos, say) with replacement; ``counts`` (B, C) says how often each
    cluster is drawn and ``codes`` (N,) each sample's cluster, so sample i has weight counts[:, codes[i]].
    `total` and `mean` give weighted sums and means of any per-sample quantity, one value per replicate,
    through one matrix product; `auc` the overall AUC per replicate (computed on first use by the
    report's AUC engine, ``auc_fn``).
    """

    samples: Samples
    counts: np.ndarray
    codes: np.ndarray
    auc_fn: Callable[[], np.ndarray]

    @property
    def n_boot(self) -> int:
        return int(self.counts.shape[0])

    def total(self, values: Any) -> np.ndarray:
        """sum_i w_i v_i per replicate, (B,), of a per-sample quantity ``values`` (N,)."""
        per_cluster = np.bincount(self.codes, weights=np.asarray(values, dtype=np.float64),
                                  minlength=self.counts.shape[1])
        return self.counts @ per_cluster

    @cached_property
    def n(self) -> np.ndarray:
        """The number of samples in each replicate, (B,)."""
        return self.counts @ np.bincount(self.codes, minlength=self.counts.shape[1]).astype(np.float64)

    def mean(self, values: Any) -> np.ndarray:
        """sum_i w_i v_i / sum_i w_i per replicate, (B,); NaN for an empty replicate."""
        return ratio(self.total(values), self.n)

    @cached_property
    def auc(self) -> np.ndarray:
        """The AUC over all samples of each replicate, (B,) raw fraction, ties counting half."""
        return np.asarray(self.auc_fn(), dtype=np.float64)


def register_metric(name: str, *, kind: Kind, higher_is_better: bool, unit: Literal["%", ""], description: str,
                    bootstrapped: bool, aliases: Sequence[str] = (),
                    replicate: Replicate | None = None) -> Callable[[Callable[[Any], MetricValue]],
                                                                    Callable[[Any], MetricValue]]:
    """Register the decorated function as a `Metric`, tagged with its kind (so ``select("fairness")``
    works), and return the function unchanged.

    ``bootstrapped=True`` puts the metric under the report's bootstrap (a CI in every leaderboard); it is
    refused unless the per-replicate computation exists and gives one value per replicate: for a fairness
    metric the function itself on (2, G) counts, for a detection metric ``replicate`` on two replicates.
    """

    def decorator(fn: Callable[[Any], MetricValue]) -> Callable[[Any], MetricValue]:
        metric = Metric(name=name, kind=kind, higher_is_better=higher_is_better, unit=unit,
                        description=description, fn=fn, bootstrapped=bootstrapped, replicate=replicate)
        METRICS.add(name, _check_replicable(metric), tags=(kind,), aliases=aliases)
        return fn

    return decorator


def _check_replicable(metric: Metric) -> Metric:
    """Refuse a bootstrapped metric whose per-replicate computation is missing or not vectorised; return
    the metric with ``group_auc`` set (whether its function read the per-group AUCs on the probe)."""
    if metric.kind == "fairness" and metric.replicate is not None:
        raise BenchError(_FAIRNESS_REPLICATE.format(name=metric.name))
    if not metric.bootstrapped:
        return metric
    if metric.kind == "detection" and metric.replicate is None:
        raise BenchError(_NO_REPLICATE.format(name=metric.name))
    what = "function" if metric.kind == "fairness" else "replicate formula"
    reads_auc = False
    try:
        if metric.kind == "fairness":
            counts = np.array([[3.0, 2.0, 4.0], [1.0, 5.0, 2.0]])  # (2 replicates, 3 groups)
            probe = GroupStats(counts, counts[::-1], counts + 1.0, counts[:, ::-1], auc=np.full(counts.shape, 0.5))
            value = metric.fn(probe).value
            reads_auc = "auc_values" in vars(probe)  # the cached property was computed
        else:
            value = metric.replicate(_probe())
        problem = f"got shape {np.shape(value)}" if np.shape(value) != (2,) else ""
    except Exception as error:  # any failure on the probe means the formula cannot run per replicate
        problem = f"{type(error).__name__}: {error}"
    if problem:
        raise BenchError(_NOT_VECTORISED.format(name=metric.name, what=what, problem=problem))
    return dataclasses.replace(metric, group_auc=reads_auc)


def _probe() -> WeightedSamples:
    """Two replicates of four samples in three clusters, to try a detection metric's replicate formula."""
    samples = Samples(np.array([0, 1, 0, 1], dtype=np.int8), np.array([0.2, 0.7, 0.6, 0.4]))
    return WeightedSamples(samples, counts=np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]),
                           codes=np.array([0, 0, 1, 2]), auc_fn=lambda: np.full(2, 0.5))


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
    return float(rank_auc_sorted(d.y_sorted, d.score_sorted, None, 1)[0])


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
    return average_precision_sorted(d.y_sorted, d.score_sorted)


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
    return eer_sorted(d.y_sorted, d.score_sorted)


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
    g = as_group_codes(groups, "groups")
    same_length(y_true=d.y_true, groups=g)
    counts, group_aucs = per_group(d, g)
    stats = GroupStats(*counts, auc=group_aucs)
    present = np.flatnonzero(stats.n > 0)
    columns = dict(zip(TABLE_COLUMNS, (
        stats.n, stats.n_real, stats.n_fake, stats.fp, stats.tn, stats.tp, stats.fn,
        stats.fpr, stats.tpr, stats.fnr, stats.acc, stats.pr, stats.auc_values), strict=True))
    counts = TABLE_COLUMNS[:7]  # whole numbers, as int64 (built as arrays: pandas' astype per column is slow)
    return pd.DataFrame({c: np.asarray(v)[present].astype(np.int64 if c in counts else np.float64)
                         for c, v in columns.items()}, index=pd.Index(present, name="group"))


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


# ============================================================================================ detection
def _detection(value: float, units: int) -> MetricValue:
    return MetricValue(float(value), float("nan"), units)


@register_metric("AUC", kind="detection", higher_is_better=True, unit="%", aliases=("auc", "AUROC", "roc_auc"),
                 description="Area under the ROC curve over all samples, ties counting half",
                 bootstrapped=True, replicate=lambda w: w.auc)
def _auc(d: Samples) -> MetricValue:
    """AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0) over all samples of the domain, R_1 being the sum of the
    fakes' mid-ranks (ties count half); = P(s_fake > s_real) + 0.5 P(s_fake = s_real). Reported x100,
    higher is better; NaN when either class is absent."""
    return _detection(rank_auc_sorted(d.y_sorted, d.score_sorted, None, 1)[0], d.n)


def _correct(d: Samples) -> np.ndarray:
    """Per sample: classified correctly at the threshold."""
    return (d.score >= d.threshold) == (d.y_true == 1)


@register_metric("ACC", kind="detection", higher_is_better=True, unit="%", aliases=("acc", "accuracy"),
                 description="Accuracy at the threshold (fake when score >= threshold)",
                 bootstrapped=True, replicate=lambda w: w.mean(_correct(w.samples)))
def _accuracy(d: Samples) -> MetricValue:
    """ACC = (TP + TN) / n, a sample predicted fake when score >= threshold. Reported x100, higher is
    better; NaN for no samples."""
    return _detection(ratio(np.count_nonzero(_correct(d)), d.n), d.n)


@register_metric("AP", kind="detection", higher_is_better=True, unit="%", aliases=("ap", "average_precision"),
                 description="Average precision (scikit-learn's definition), fake = positive", bootstrapped=False)
def _average_precision(d: Samples) -> MetricValue:
    """AP = sum_k (R_k - R_{k-1}) P_k over distinct scores as thresholds, highest first, R_0 = 0 (no
    interpolation; scikit-learn's ``average_precision_score``). Reported x100, higher is better; NaN when
    there is no fake. Not bootstrapped: it needs a full ROC per replicate."""
    return _detection(average_precision_sorted(d.y_sorted, d.score_sorted), d.n)


@register_metric("EER", kind="detection", higher_is_better=False, unit="%", aliases=("eer",),
                 description="Equal error rate (FPR = FNR), linearly interpolated on the ROC", bootstrapped=False)
def _eer(d: Samples) -> MetricValue:
    """EER: the error where FPR = FNR. Operating points (FPR_k, FNR_k) at each distinct score, plus (0, 1);
    the crossing is interpolated linearly between the two points k-1, k that bracket it:
    t = (FNR_{k-1} - FPR_{k-1}) / ((FNR_{k-1} - FPR_{k-1}) - (FNR_k - FPR_k)),
    EER = FPR_{k-1} + t (FPR_k - FPR_{k-1}). Reported x100, lower is better; NaN when a class is absent.
    Not bootstrapped: it needs a full ROC per replicate."""
    return _detection(eer_sorted(d.y_sorted, d.score_sorted), d.n)


@register_metric("video_AUC", kind="detection", higher_is_better=True, unit="%", aliases=("video_auc",),
                 description="AUC over videos, a video's score being the mean of its frames' P(fake)",
                 bootstrapped=False)
def _video_auc(d: Samples) -> MetricValue:
    """video_AUC = AUC over videos, video v scored mean_{i in v} score_i and labelled its frames' label
    (frames of one video id must share a label; the id must include the manipulation). Reported x100,
    higher is better; NaN when the videos lack a class. min_group_n counts videos. Not bootstrapped."""
    labels, means = d.video_scores
    order = np.argsort(means, kind="stable")
    return _detection(rank_auc_sorted(labels[order], means[order], None, 1)[0], labels.shape[0])


def _cross_entropy(d: Samples) -> np.ndarray:
    """Per sample: -[y ln p + (1 - y) ln(1 - p)], p = clip(score, eps, 1 - eps)."""
    eps = np.finfo(np.float64).eps
    p = np.clip(d.score, eps, 1.0 - eps)
    return -np.where(d.y_true == 1, np.log(p), np.log1p(-p))


@register_metric("log_loss", kind="detection", higher_is_better=False, unit="", aliases=("logloss", "bce", "nll"),
                 description="Mean binary cross-entropy in nats, probabilities clipped to [eps, 1-eps]",
                 bootstrapped=True, replicate=lambda w: w.mean(_cross_entropy(w.samples)))
def _log_loss(d: Samples) -> MetricValue:
    """LL = -(1/n) sum_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)], p_i = clip(score_i, eps, 1 - eps), eps the
    float64 machine epsilon (as scikit-learn). Raw (nats), lower is better; NaN for no samples."""
    if d.n == 0:
        return _detection(float("nan"), 0)
    return _detection(np.mean(_cross_entropy(d)), d.n)


def _squared_error(d: Samples) -> np.ndarray:
    """Per sample: (score - y)^2."""
    return (d.score - d.y_true) ** 2


@register_metric("brier", kind="detection", higher_is_better=False, unit="", aliases=("brier_score",),
                 description="Brier score: mean squared error of P(fake)",
                 bootstrapped=True, replicate=lambda w: w.mean(_squared_error(w.samples)))
def _brier(d: Samples) -> MetricValue:
    """BS = (1/n) sum_i (score_i - y_i)^2. Raw, lower is better; NaN for no samples."""
    if d.n == 0:
        return _detection(float("nan"), 0)
    return _detection(np.mean(_squared_error(d)), d.n)


# ============================================================================================ fairness
# Every fairness metric: groups g are those that enter under the policy (see GroupStats.eligible); the
# value is NaN when fewer than two groups enter. Reported x100 (percentage points).

@register_metric("F_FPR", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%", aliases=("fpr_gap",),
                 description="False-positive-rate gap: max_g FPR_g - min_g FPR_g")
def _f_fpr(q: GroupStats) -> MetricValue:
    """F_FPR = max_g FPR_g - min_g FPR_g, FPR_g = FP_g / (FP_g + TN_g). Under ``defined``, over groups with
    reals. Lower is better; NaN with fewer than two groups."""
    return gap(q, q.fpr, "real")


@register_metric("F_OAE", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%",
                 aliases=("acc_gap", "accuracy_gap"),
                 description="Overall accuracy equality: max_g ACC_g - min_g ACC_g")
def _f_oae(q: GroupStats) -> MetricValue:
    """F_OAE = max_g ACC_g - min_g ACC_g, ACC_g = (TP_g + TN_g) / n_g. Under ``defined``, over non-empty
    groups. Lower is better; NaN with fewer than two groups."""
    return gap(q, q.acc, "any")


@register_metric("F_DP", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%",
                 aliases=("dp_gap", "demographic_parity_difference"),
                 description="Demographic parity: max_g PR_g - min_g PR_g, PR = predicted-fake rate")
def _f_dp(q: GroupStats) -> MetricValue:
    """F_DP = max_g PR_g - min_g PR_g, PR_g = (TP_g + FP_g) / n_g (fairlearn's
    demographic_parity_difference, between groups). Under ``defined``, over non-empty groups. Lower is
    better; NaN with fewer than two groups."""
    return gap(q, q.pr, "any")


@register_metric("F_MEO", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%",
                 aliases=("MEO", "equalized_odds_difference"),
                 description="Maximum equalized odds: max(FPR gap, TPR gap)")
def _f_meo(q: GroupStats) -> MetricValue:
    """F_MEO = max(max_g FPR_g - min_g FPR_g, max_g TPR_g - min_g TPR_g) (fairlearn's
    equalized_odds_difference, between groups, worst case). Under ``defined`` the FPR gap runs over groups
    with reals and the TPR gap over groups with fakes, and NaN unless both gaps have two groups; n_groups
    counts the union. Lower is better."""
    fpr_mask, tpr_mask = usable(q, q.fpr, "real"), usable(q, q.tpr, "fake")
    value = np.maximum(q.spread(q.fpr, fpr_mask), q.spread(q.tpr, tpr_mask))  # NaN if either is NaN
    return entered(q, q.either(fpr_mask, tpr_mask), value)


@register_metric("F_EFPR", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%",
                 aliases=("FFPR", "EFPR"),
                 description="Sum of FPR deviations from the attribute's pooled FPR (DAW-FDD's FFPR)")
def _f_efpr(q: GroupStats) -> MetricValue:
    """F_EFPR = sum_g |FPR_g - FPR_all|, FPR_all being the attribute's pooled FPR over all its samples with
    a known group (every group, whatever the policy, as the public PG-FDD code pools all samples). The
    figure DAW-FDD calls FFPR. Under ``defined``, over groups with reals. Lower is better; NaN with fewer
    than two groups."""
    mask = usable(q, q.fpr, "real")
    return entered(q, mask, deviation_sum(q.fpr, q.fpr_all, mask))


@register_metric("F_EO", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%", aliases=("FEO",),
                 description="Sum of FPR and TPR deviations from the attribute's pooled rates")
def _f_eo(q: GroupStats) -> MetricValue:
    """F_EO = sum_g (|FPR_g - FPR_all| + |TPR_g - TPR_all|), FPR_all and TPR_all pooled over all samples of
    the attribute with a known group (every group, whatever the policy). Under ``defined`` the FPR terms run
    over groups with reals and the TPR terms over groups with fakes, and NaN unless both have two groups;
    n_groups counts the union. Lower is better."""
    fpr_mask, tpr_mask = usable(q, q.fpr, "real"), usable(q, q.tpr, "fake")
    value = deviation_sum(q.fpr, q.fpr_all, fpr_mask) + deviation_sum(q.tpr, q.tpr_all, tpr_mask)
    return entered(q, q.either(fpr_mask, tpr_mask), value)


@register_metric("G_AUC", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%", aliases=("auc_gap",),
                 description="AUC gap: max_g AUC_g - min_g AUC_g")
def _g_auc(q: GroupStats) -> MetricValue:
    """G_AUC = max_g AUC_g - min_g AUC_g, AUC_g the within-group AUC (ties count half), over groups with
    both classes under either policy. Lower is better; NaN with fewer than two groups or no AUCs given."""
    return gap(q, q.auc_values, "both")


@register_metric("F_FNR", kind="fairness", bootstrapped=True, higher_is_better=False, unit="%", aliases=("fnr_gap",),
                 description="False-negative-rate gap: max_g FNR_g - min_g FNR_g")
def _f_fnr(q: GroupStats) -> MetricValue:
    """F_FNR = max_g FNR_g - min_g FNR_g, FNR_g = FN_g / (TP_g + FN_g) = 1 - TPR_g (so it equals the TPR
    gap). Under ``defined``, over groups with fakes. Lower is better; NaN with fewer than two groups."""
    return gap(q, q.fnr, "fake")


@register_metric("worst_AUC", kind="fairness", bootstrapped=True, higher_is_better=True, unit="%",
                 aliases=("worst_group_AUC", "min_group_AUC"),
                 description="Worst-group AUC: min_g AUC_g")
def _worst_auc(q: GroupStats) -> MetricValue:
    """worst_AUC = min_g AUC_g over groups with both classes. Higher is better. Like every fairness metric
    it is NaN when fewer than two groups enter: a single group has no one to be worse than."""
    return worst(q, q.auc_values, "both")


@register_metric("worst_ACC", kind="fairness", bootstrapped=True, higher_is_better=True, unit="%",
                 aliases=("worst_group_ACC", "min_group_ACC"),
                 description="Worst-group accuracy: min_g ACC_g")
def _worst_acc(q: GroupStats) -> MetricValue:
    """worst_ACC = min_g ACC_g. Under ``defined``, over non-empty groups. Higher is better; NaN when fewer
    than two groups enter."""
    return worst(q, q.acc, "any")


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
    return result_frame(metric_rows(predictions, metrics=metrics, attributes=attributes, threshold=threshold,
                                    policy=policy, min_group_size=min_group_size))


def metric_rows(predictions: pd.DataFrame, *, metrics: str | Sequence[str] | None = None,
                attributes: str | Sequence[str] = ATTRIBUTES, threshold: float = 0.5, policy: str = DEFAULT_POLICY,
                min_group_size: int = 1) -> list[dict[str, Any]]:
    """`compute_metrics`'s rows as plain dicts, before they become a table: the report gathers the rows of
    every prediction file (and its job's keys) into one table, `result_frame`, instead of a table per file."""
    return metric_rows_of([predictions], metrics=metrics, attributes=attributes, threshold=threshold, policy=policy,
                          min_group_size=min_group_size)[0]


def metric_rows_of(tables: Sequence[pd.DataFrame], *, metrics: str | Sequence[str] | None = None,
                   attributes: str | Sequence[str] = ATTRIBUTES, threshold: float = 0.5,
                   policy: str = DEFAULT_POLICY, min_group_size: int = 1) -> list[list[dict[str, Any]]]:
    """`metric_rows` of each of several predictions tables, the same rows to the last bit, in less time: the
    per-group counts of every table whose attribute has the same number of groups are stacked, and each
    fairness metric is evaluated once on the stack (its function is vectorised over leading axes) instead of
    once per table. A bad table raises the `BenchError` `metric_rows` would, the first one in order."""
    policy = as_policy(policy)
    min_group_size = as_min_group_size(min_group_size)
    threshold = as_threshold(threshold)
    chosen = [METRICS.get(name) for name in METRICS.select("all" if metrics is None else metrics)]
    attributes = (attributes,) if isinstance(attributes, str) else tuple(attributes)
    detection = [m for m in chosen if m.kind == "detection"]
    fairness = [m for m in chosen if m.kind == "fairness"]

    needed = {"label": "0 real / 1 fake", "score": "P(fake)"}
    if any(m.name == "video_AUC" for m in detection):
        needed["video"] = "video id, for video_AUC"
    if fairness:
        needed.update({a: "integer group codes, -1 unknown" for a in attributes})
    rows: list[list[dict[str, Any]]] = []
    # (attribute, number of groups) -> the tables with it, and their counts and group AUCs
    stacks: dict[tuple[str, int], list[tuple[int, tuple[np.ndarray, ...], np.ndarray]]] = {}
    for t, predictions in enumerate(tables):
        _require_columns(predictions, needed)
        if len(predictions) == 0:
            raise BenchError(_EMPTY)
        video = predictions["video"].to_numpy() if "video" in needed else None
        data = Samples(as_labels(predictions["label"], "column 'label'"),
                       as_scores(predictions["score"], "column 'score'"), threshold, video)
        rows.append([_row("all", m, m.fn(data), policy, min_group_size) for m in detection])
        for attribute in attributes if fairness else ():
            groups = as_group_codes(predictions[attribute], f"column {attribute!r}")
            counts, group_aucs = per_group(data, groups)
            if counts[0].size == 0:  # no sample has a known group: no group enters any gap
                counts, group_aucs = (np.zeros(1),) * 4, np.full(1, np.nan)
            stacks.setdefault((attribute, counts[0].size), []).append((t, counts, group_aucs))
    # A bootstrapped fairness metric is vectorised over leading axes (registration checks it): it is evaluated
    # on the stack; any other may handle one table's (G,) counts only, and is evaluated table by table.
    stacked = [m for m in fairness if m.bootstrapped]
    values: dict[tuple[int, str, str], MetricValue] = {}
    for (attribute, _), members in stacks.items():
        stats = GroupStats(*(np.stack([counts[k] for _, counts, _ in members]) for k in range(4)),
                           auc=np.stack([group_aucs for _, _, group_aucs in members]), policy=policy,
                           min_group_size=min_group_size)
        for m in stacked:
            result = m.fn(stats)
            for i, (t, _, _) in enumerate(members):
                values[t, attribute, m.name] = MetricValue(*(np.asarray(v)[i] for v in result))
        for t, counts, group_aucs in members if len(stacked) < len(fairness) else ():
            alone = GroupStats(*counts, auc=group_aucs, policy=policy, min_group_size=min_group_size)
            values |= {(t, attribute, m.name): m.fn(alone) for m in fairness if not m.bootstrapped}
    for t, table_rows in enumerate(rows):
        for attribute in attributes if fairness else ():
            table_rows += [_row(attribute, m, values[t, attribute, m.name], policy, min_group_size) for m in fairness]
    return rows


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


def result_frame(rows: list[dict[str, Any]], columns: Sequence[str] = RESULT_COLUMNS) -> pd.DataFrame:
    """Metric rows (`metric_rows`, with any further keys of ``columns``) as a table with the result's dtypes."""
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype({"value": np.float64, "higher_is_better": bool, "n_groups": "Int64",
                         "min_group_n": "Int64", "min_group_size": np.int64})
