"""The arrays every metric is computed from, and the exact cores the registered metrics share.

`bench.metrics` holds the registry and one small function per metric; this module holds what those
functions stand on, so that adding a metric never means touching it:

- `Samples`: one test domain's labels and scores, validated, with the single sort every ranking metric
  shares; and the input checks that turn bad data into one-line `BenchError`s;
- exact array cores: the mid-rank AUC of sorted samples (overall or per group), average precision and
  the EER from the operating points, per-video mean scores;
- `GroupStats`: per-group confusion counts of one attribute as arrays (..., G) with the group-inclusion
  policy, and the helpers a fairness metric is written with (`gap`, `worst`, `deviation_sum`,
  `usable`, `entered`), vectorised over the leading axes so that the bootstrap evaluates every
  replicate in one call. What several metrics share (a quantity's mask of groups, its max - min, how many
  groups entered and the smallest) is computed once per `GroupStats`.

Torch-free, like every analysis module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from bench.errors import BenchError

DEFAULT_POLICY = "both-classes"
POLICIES: Mapping[str, str] = {
    "both-classes": "a group enters every gap only if it holds both reals and fakes (the paper's rule; "
                    "the public PG-FDD code drops a group whose AUC it cannot compute from all gaps)",
    "defined": "each quantity uses every group where it is defined (FPR: groups with reals; TPR/FNR: "
               "groups with fakes; ACC/PR: non-empty groups; AUC: groups with both classes)",
}

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


Needs = Literal["real", "fake", "any", "both"]

# One-line error messages (the CLI prints a BenchError as one line on stderr).
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
_BAD_COUNTS = "tp, fp, tn, fn{auc} must be arrays of the same shape (..., G); got shapes {shapes}."


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
        y = as_labels(y_true, "y_true")
        s = as_scores(score, "score")
        same_length(y_true=y, score=s)
        v = None if video is None else np.asarray(video)
        if v is not None:
            same_length(y_true=y, video=v)
        return cls(y, s, as_threshold(threshold), v)

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
        return video_means(self.y_true, self.score, self.video, "'video'")


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
        raise BenchError(_BAD_DTYPE.format(where=where, what=what, dtype=a.dtype, examples=examples(a)))
    return a


def as_labels(values: Any, where: str) -> np.ndarray:
    a = _numeric(values, where, "biuf", "0 (real) or 1 (fake)")
    if a.dtype.kind == "b":
        return a.astype(np.int8)
    bad = ~((a == 0) | (a == 1))  # NaN compares unequal, so it is bad too
    if bad.any():
        raise BenchError(_BAD_LABELS.format(where=where, count=int(bad.sum()), examples=examples(a[bad])))
    return a.astype(np.int8)


def as_scores(values: Any, where: str) -> np.ndarray:
    a = _numeric(values, where, "biuf", "P(fake) in [0, 1]").astype(np.float64, copy=False)
    if a.size and not (a.min() >= 0.0 and a.max() <= 1.0):  # False for NaN as well
        bad = ~((a >= 0.0) & (a <= 1.0))
        raise BenchError(_BAD_SCORES.format(where=where, count=int(bad.sum()), examples=examples(a[bad])))
    return a


def as_group_codes(values: Any, where: str) -> np.ndarray:
    a = _numeric(values, where, "biuf", "integer group codes, -1 for unknown")
    if a.dtype.kind in "iub":
        return a.astype(np.int64, copy=False)
    bad = ~np.isfinite(a)
    bad[~bad] = a[~bad] != np.round(a[~bad])
    if bad.any():
        raise BenchError(_BAD_GROUPS.format(where=where, count=int(bad.sum()), examples=examples(a[bad])))
    return a.astype(np.int64)


def examples(values: np.ndarray, k: int = 3) -> str:
    return ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:k])


def same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise BenchError(_LENGTHS.format(names=", ".join(lengths), lengths=lengths))


def as_threshold(value: Any) -> float:
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    if not ok:
        raise BenchError(_BAD_THRESHOLD.format(value=value))
    return float(value)


def as_policy(value: Any) -> str:
    if value not in POLICIES:
        raise BenchError(_UNKNOWN_POLICY.format(policy=value, choices=", ".join(map(repr, POLICIES))))
    return str(value)


def as_min_group_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BenchError(_BAD_MIN_SIZE.format(value=value))
    return int(value)


# ============================================================================================ array cores
def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den == 0 (an undefined rate is NaN, never 0)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.empty(np.broadcast(num, den).shape)
    with np.errstate(divide="ignore", invalid="ignore"):  # a plain division (a masked one is about 3x slower) ...
        np.divide(num, den, out=out)
    undefined = ~(den > 0)
    if undefined.any():  # ... then NaN where the denominator is not positive
        out[np.broadcast_to(undefined, out.shape)] = np.nan
    return out


def rank_auc_sorted(y: np.ndarray, s: np.ndarray, g: np.ndarray | None, n_groups: int) -> np.ndarray:
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
    return ratio(rank_sum - n1 * (n1 + 1.0) / 2.0, np.where((n1 > 0) & (n0 > 0), n1 * n0, 0.0))


def _operating_points(y_sorted: np.ndarray, s_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (TP, FP) when predicting fake at each distinct score, from the highest score down."""
    y_desc, s_desc = y_sorted[::-1], s_sorted[::-1]
    last = np.append(np.flatnonzero(s_desc[1:] != s_desc[:-1]), s_desc.shape[0] - 1)
    tp = np.cumsum(y_desc, dtype=np.int64)[last]
    return tp, last + 1 - tp


def average_precision_sorted(y_sorted: np.ndarray, s_sorted: np.ndarray) -> float:
    if y_sorted.shape[0] == 0:
        return float("nan")
    tp, fp = _operating_points(y_sorted, s_sorted)
    if tp[-1] == 0:
        return float("nan")
    recall = tp / tp[-1]
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def eer_sorted(y_sorted: np.ndarray, s_sorted: np.ndarray) -> float:
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


def video_means(y: np.ndarray, s: np.ndarray, video: np.ndarray,
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
                                             examples=examples(np.asarray(uniques)[mixed])))
    mean_score = np.bincount(codes, weights=s, minlength=len(uniques)) / frames
    return (fakes > 0).astype(np.int8), mean_score


def per_group(d: Samples, groups: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
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
    return (tp, fp, tn, fn), rank_auc_sorted(y, s, g, n_groups)


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
        object.__setattr__(self, "policy", as_policy(self.policy))
        object.__setattr__(self, "min_group_size", as_min_group_size(self.min_group_size))

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
        return ratio(self.fp, self.n_real)

    @cached_property
    def tpr(self) -> np.ndarray:
        return ratio(self.tp, self.n_fake)

    @cached_property
    def fnr(self) -> np.ndarray:
        return ratio(self.fn, self.n_fake)

    @cached_property
    def acc(self) -> np.ndarray:
        return ratio(self.tp + self.tn, self.n)

    @cached_property
    def pr(self) -> np.ndarray:
        return ratio(self.tp + self.fp, self.n)

    @cached_property
    def auc_values(self) -> np.ndarray:
        return np.full(self.tp.shape, np.nan) if self.auc is None else self.auc

    @cached_property
    def fpr_all(self) -> np.ndarray:
        """The attribute's pooled FPR over all its groups, shape (..., 1), whatever the policy."""
        return ratio(self.fp.sum(-1), self.n_real.sum(-1))[..., None]

    @cached_property
    def tpr_all(self) -> np.ndarray:
        """The attribute's pooled TPR over all its groups, shape (..., 1), whatever the policy."""
        return ratio(self.tp.sum(-1), self.n_fake.sum(-1))[..., None]

    def eligible(self, needs: Needs) -> np.ndarray:
        """Which groups may enter a gap of a quantity that needs reals, fakes, any sample, or both.

        ``both-classes``: groups with both reals and fakes, whatever the quantity. ``defined``: groups
        where the quantity is defined. Both: and n >= min_group_size. Shape (..., G), bool. Made once per
        rule (under ``both-classes`` one mask serves every quantity).
        """
        rule = "both" if self.policy == "both-classes" else needs
        return self._shared(("eligible", rule), (), lambda: self._eligible(rule))

    def _eligible(self, rule: Needs) -> np.ndarray:
        big = self.n >= self.min_group_size
        has_real, has_fake = self.n_real > 0, self.n_fake > 0
        if rule == "both":
            return big & has_real & has_fake
        if rule == "real":
            return big & has_real
        if rule == "fake":
            return big & has_fake
        return big & (self.n > 0)

    def usable(self, values: np.ndarray, needs: Needs) -> np.ndarray:
        """`eligible` groups where ``values`` is defined (not NaN); the `eligible` mask itself (the same
        array) when no eligible group's value is NaN, so metrics over different quantities share it."""
        def make() -> np.ndarray:
            allowed = self.eligible(needs)
            undefined = np.isnan(values)
            return allowed & ~undefined if (allowed & undefined).any() else allowed

        return self._shared(("usable", needs), (values,), make)

    def spread(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """max - min of ``values`` over the groups in ``mask`` (NaN where fewer than two), along the last
        axis; made once per (values, mask) pair (several metrics share a gap: F_FPR and F_MEO, say)."""
        def make() -> np.ndarray:
            hi, lo = self.extreme(np.maximum, values, mask), self.extreme(np.minimum, values, mask)
            return np.where(self.count(mask) >= 2, hi - lo, np.nan)

        return self._shared(("spread",), (values, mask), make)

    def extreme(self, ufunc: np.ufunc, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The largest (``np.maximum``) or smallest (``np.minimum``) of ``values`` over the groups in ``mask``
        (-inf, resp. inf, where none is), made once per (values, mask) pair: a gap's minimum is also the
        worst group's value, and the smallest group's n serves every metric over the same mask."""
        fill = -np.inf if ufunc is np.maximum else np.inf

        def make() -> np.ndarray:
            if values.shape == mask.shape and values.ndim > 1 and values.shape[-1] <= _FEW_GROUPS:
                return ufunc.reduce(np.where(self.front(mask), self.front(values), fill), axis=0, initial=fill)
            return group_reduce(ufunc, np.where(mask, values, fill), fill)

        return self._shared(("extreme", ufunc.__name__), (values, mask), make)

    def front(self, values: np.ndarray) -> np.ndarray:
        """``values`` with the group axis first, in C order (see `group_reduce`), made once per array."""
        return self._shared(("front",), (values,), lambda: np.ascontiguousarray(np.moveaxis(values, -1, 0)))

    def count(self, mask: np.ndarray) -> np.ndarray:
        """`count_groups` of ``mask``, made once per mask."""
        def make() -> np.ndarray:
            if mask.ndim > 1 and mask.shape[-1] <= _FEW_GROUPS:
                return self.front(mask).sum(axis=0, dtype=np.int64)
            return count_groups(mask)

        return self._shared(("count",), (mask,), make)

    def either(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a | b``, made once; ``a`` itself when both are the same mask."""
        return a if a is b else self._shared(("either",), (a, b), lambda: a | b)

    def entering(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the groups in ``mask``: whether at least two enter, how many, and the smallest group's n
        (NaN where none does); made once per mask."""
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            k = self.count(mask)
            smallest = self.extreme(np.minimum, self.n, mask)
            return k >= 2, k, np.where(k > 0, smallest, np.nan)

        return self._shared(("entering",), (mask,), make)

    @cached_property
    def _memo(self) -> dict[tuple[Any, ...], tuple[tuple[np.ndarray, ...], Any]]:
        return {}

    def _shared(self, key: tuple[Any, ...], arrays: tuple[np.ndarray, ...], make: Any) -> Any:
        """``make()``, computed once per ``key`` and the identity of ``arrays`` (held here, so that no other
        array can take the id of one while it is cached)."""
        full = (*key, *map(id, arrays))
        kept = self._memo.get(full)
        if kept is not None and all(a is b for a, b in zip(kept[0], arrays, strict=True)):
            return kept[1]
        value = make()
        self._memo[full] = (arrays, value)
        return value


# numpy reduces along a short last axis element by element (about ten times slower than the same
# reduction over a leading axis): with few groups the group axis is moved to the front (one copy), and
# each group's slice is then combined with the next in one pass over the replicates. Only exact
# reductions (max, min, counting) go this way, so the result does not depend on the order.
_FEW_GROUPS = 64


def group_reduce(ufunc: np.ufunc, values: np.ndarray, initial: float) -> np.ndarray:
    """``ufunc.reduce(values, axis=-1, initial=initial)`` for an exact ``ufunc`` (np.maximum, np.minimum)."""
    if values.ndim > 1 and values.shape[-1] <= _FEW_GROUPS:
        return ufunc.reduce(np.ascontiguousarray(np.moveaxis(values, -1, 0)), axis=0, initial=initial)
    return ufunc.reduce(values, axis=-1, initial=initial)


def count_groups(mask: np.ndarray) -> np.ndarray:
    """``mask.sum(-1)``: how many groups are in ``mask`` (int64)."""
    if mask.ndim > 1 and mask.shape[-1] <= _FEW_GROUPS:
        return np.ascontiguousarray(np.moveaxis(mask, -1, 0)).sum(axis=0, dtype=np.int64)
    return mask.sum(-1, dtype=np.int64)


def entered(stats: GroupStats, mask: np.ndarray, value: np.ndarray) -> MetricValue:
    """Attach the groups that entered (``mask``, (..., G)) to a gap; NaN when fewer than two did."""
    enough, k, smallest = stats.entering(mask)
    return MetricValue(np.where(enough, value, np.nan), k, smallest)


def usable(stats: GroupStats, values: np.ndarray, needs: Needs) -> np.ndarray:
    return stats.usable(values, needs)


def gap(stats: GroupStats, values: np.ndarray, needs: Needs) -> MetricValue:
    mask = usable(stats, values, needs)
    return entered(stats, mask, stats.spread(values, mask))


def deviation_sum(values: np.ndarray, pooled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sum_g |values_g - pooled| over the groups in ``mask``; NaN where fewer than two."""
    total = np.where(mask, np.abs(values - pooled), 0.0).sum(-1)
    return np.where(count_groups(mask) >= 2, total, np.nan)


def worst(stats: GroupStats, values: np.ndarray, needs: Needs) -> MetricValue:
    mask = usable(stats, values, needs)
    return entered(stats, mask, stats.extreme(np.minimum, values, mask))
