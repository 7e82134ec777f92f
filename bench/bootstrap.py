"""The cluster bootstrap: resamples of a test set, and intervals and p-values from replicates.

- `cluster_bootstrap`: resamples *clusters* (videos by default, identities on request), stratified by
  label x group. Frames of one video are not independent, so resampling frames would make every interval
  too narrow; stratifying keeps each (label, group) cell's number of clusters fixed, so no group loses a
  class in a resample and every gap stays defined. A resample is stored as draw counts per cluster
  (B, C): statistics that are sums over samples become matrix products, and every method predicting the
  same test set sees the same resamples, which is what makes a difference between two methods *paired*.
- `bootstrap_interval`, `bootstrap_p_value`, `bootstrap_ci` and `paired_bootstrap`: basic (reverse
  percentile; the default, because resampling inflates max - min gaps) or percentile intervals and the
  matching two-sided p-value, for any statistic written as a function of sample weights;
  `interval_and_p_value`: the basic interval and p-value of many slices of replicates from one sort (the
  report's paired bootstrap).

Every metric of every replicate at once is `bench.replicates.replicate_metrics`; the tests (DeLong,
sign-flip, Wilcoxon, corrections, Friedman) are in `bench.stats`. Pure functions of arrays, no torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from bench.errors import BenchError

__all__ = [
    "BootstrapResult",
    "ClusterBootstrap",
    "bootstrap_ci",
    "bootstrap_interval",
    "bootstrap_p_value",
    "check_alpha",
    "cluster_bootstrap",
    "interval_and_p_value",
    "paired_bootstrap",
]

_BAD_ALPHA = "alpha must be a number strictly between 0 and 1; got {value!r}."
_BAD_N_BOOT = "the number of bootstrap replicates must be an integer >= 1; got {value!r}."
LENGTHS = "{what}: expected {expected} values (one per sample), got {got}."
_SINGLE_WHOLE = 2.0**24  # float32 holds every whole number up to this


def check_alpha(value: Any) -> float:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool) and 0.0 < value < 1.0
    if not ok:
        raise BenchError(_BAD_ALPHA.format(value=value))
    return float(value)


@dataclass(frozen=True, eq=False)
class ClusterBootstrap:
    """B stratified cluster resamples of one test set of N samples, stored as draw counts.

    ``codes`` (N,) gives each sample's cluster in 0..C-1, ``counts`` (B, C) how often each cluster is drawn
    in each replicate, ``strata`` (C,) each cluster's stratum. A sample appears in replicate b as often as
    its cluster was drawn, so ``weights()`` are the resampled data as integer sample weights. Build it with
    `cluster_bootstrap`.
    """

    codes: np.ndarray
    counts: np.ndarray
    strata: np.ndarray

    @property
    def n_boot(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_clusters(self) -> int:
        return int(self.counts.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.codes.shape[0])

    @functools.cached_property
    def float_counts(self) -> np.ndarray:
        """``counts`` as float64 (B, C), read-only, made once: every prediction file of the test set
        multiplies its replicates by them (`bench.replicates.replicate_metrics`)."""
        counts = self.counts.astype(np.float64)
        counts.flags.writeable = False
        return counts

    @functools.cached_property
    def exact_single_counts(self) -> np.ndarray | None:
        """``counts`` as float32 (B, C), read-only, made once, where that is exact for every sum of them over
        clusters weighted by the clusters' sample counts (no replicate holds more than 2**24 samples, so every
        partial sum is a whole number float32 holds); None otherwise. For the per-group confusion counts of
        every replicate (`bench.replicates.replicate_metrics`): the same numbers as in float64, faster."""
        drawn = self.float_counts @ np.bincount(self.codes, minlength=self.n_clusters).astype(np.float64)
        if drawn.max(initial=0.0) > _SINGLE_WHOLE:
            return None
        counts = self.counts.astype(np.float32)
        counts.flags.writeable = False
        return counts

    @functools.cached_property
    def memo(self) -> dict[Any, Any]:
        """What the prediction files of this test set share and a caller derives from these resamples once
        (the AUC engine's layout of the clusters by label and group: `bench.replicates`), by the caller's key."""
        return {}

    def weights(self, rows: slice = slice(None)) -> np.ndarray:
        """Sample weights (b, N), float64, of the replicates ``rows``: how often each sample is drawn."""
        return self.counts[rows][:, self.codes].astype(np.float64)

    def indices(self, replicate: int) -> np.ndarray:
        """The resampled sample indices of one replicate (each sample repeated as often as it is drawn)."""
        return np.repeat(np.arange(self.n_samples), self.counts[replicate][self.codes])


def cluster_bootstrap(clusters: Any, *, strata: Any = None, n_boot: int = 1000,
                      seed: int | np.random.SeedSequence | np.random.Generator = 0) -> ClusterBootstrap:
    """Draw ``n_boot`` stratified cluster resamples of a test set.

    ``clusters`` (N,) holds each sample's cluster id (videos, identities; ``np.arange(N)`` for no
    clustering). ``strata`` (N,) optional holds each sample's stratum (the report uses label x
    intersection group). A cluster whose samples all share one stratum belongs to it; clusters that mix
    strata (an identity with real and fake videos, say) form one extra stratum of their own. Within each
    stratum of C_h clusters a replicate draws C_h clusters uniformly with replacement, so every stratum
    keeps its number of clusters in every replicate.

    The draws are reproducible from ``seed`` (an int, a `SeedSequence` or a `Generator`).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise BenchError(_BAD_N_BOOT.format(value=n_boot))
    codes, uniques = pd.factorize(np.asarray(clusters), use_na_sentinel=True)
    if codes.size and codes.min() < 0:
        raise BenchError(f"clusters: {int((codes < 0).sum())} sample(s) have no cluster id.")
    n_clusters = len(uniques)
    if strata is None:
        cluster_strata = np.zeros(n_clusters, dtype=np.int64)
    else:
        s_codes, _ = pd.factorize(np.asarray(strata))
        if s_codes.shape != codes.shape:
            raise BenchError(LENGTHS.format(what="strata", expected=codes.shape[0], got=s_codes.shape[0]))
        lo = np.full(n_clusters, np.iinfo(np.int64).max)
        hi = np.full(n_clusters, -1)
        np.minimum.at(lo, codes, s_codes)
        np.maximum.at(hi, codes, s_codes)
        cluster_strata = np.where(lo == hi, lo, s_codes.max() + 1)  # mixed clusters: one extra stratum
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    counts = np.zeros((int(n_boot), n_clusters), dtype=np.uint16)
    for stratum in np.unique(cluster_strata):
        members = np.flatnonzero(cluster_strata == stratum)
        size = members.shape[0]
        rows = max(1, 2_000_000 // max(size, 1))  # bound the (rows, size) draw matrix
        for start in range(0, int(n_boot), rows):
            stop = min(int(n_boot), start + rows)
            draws = rng.integers(0, size, size=(stop - start, size), dtype=np.int64)
            draws += (np.arange(stop - start) * size)[:, None]
            counts[start:stop, members] = np.bincount(draws.ravel(), minlength=(stop - start) * size).reshape(
                stop - start, size)
    return ClusterBootstrap(codes=codes.astype(np.intp), counts=counts, strata=cluster_strata)


Interval = Literal["basic", "percentile"]


def nan_quantiles(values: Any, quantiles: Sequence[float], *, axis: int = -1) -> list[np.ndarray]:
    """``np.nanquantile(values, q, axis=axis)`` for each q (linear interpolation, numpy's default), NaN where
    a slice has no defined value: the same numbers, computed for every slice at once.

    numpy evaluates a NaN-aware quantile along an axis one slice at a time (a Python-level loop), which
    made the report's intervals several seconds on a full grid. Here one sort puts each slice's NaNs last,
    and each quantile's order statistics are picked with numpy's own index and interpolation formulas
    (H&F method 7: virtual index (n - 1) q, the lerp taken from the nearer end), so the results
    equal numpy's bit for bit (tested).
    """
    v = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    ordered = np.sort(v, axis=-1)  # NaN sort last
    return _sorted_quantiles(ordered, (~np.isnan(v)).sum(axis=-1), quantiles)


def _sorted_quantiles(ordered: np.ndarray, n: np.ndarray, quantiles: Sequence[float]) -> list[np.ndarray]:
    """`nan_quantiles` of slices already sorted along the last axis (NaN last), ``n`` the defined values of each."""
    last = np.maximum(n - 1, 0)
    out = []
    for q in quantiles:
        virtual = (n - 1) * q
        below = np.floor(virtual).astype(np.intp)
        lower = np.clip(below, 0, last)
        upper = np.clip(below + 1, 0, last)
        upper = np.where(virtual >= n - 1, last, upper)
        a = np.take_along_axis(ordered, lower[..., None], axis=-1)[..., 0]
        b = np.take_along_axis(ordered, upper[..., None], axis=-1)[..., 0]
        t = virtual - below
        with np.errstate(invalid="ignore"):
            diff = b - a
            value = np.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)
        out.append(np.where(n > 0, value, np.nan))
    return out



def bootstrap_interval(replicates: Any, *, estimate: Any = None, alpha: float = 0.05, method: Interval = "basic",
                       axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """A (1 - alpha) bootstrap interval from replicates along ``axis``.

    ``percentile``: (q_{alpha/2}, q_{1-alpha/2}), the quantiles of the replicates. ``basic`` (the default; also
    called reverse percentile): (2 theta - q_{1-alpha/2}, 2 theta - q_{alpha/2}) around the ``estimate``
    theta. The two agree when the replicates are symmetric about the estimate (AUC, rates); they differ for
    max - min gaps, which resampling inflates (the largest of several noisy rates is biased upwards): the
    percentile interval then sits above the estimate and misses a small true gap, the basic interval
    corrects for that shift. Neither is exact when several groups share the extreme rate (the gap is not
    a smooth function there), which is why the report shows how many groups entered each gap.

    Replicates where the statistic is undefined (NaN) are left out; an all-NaN set gives NaN. Quantiles
    interpolate linearly between order statistics (numpy's default).
    """
    alpha = check_alpha(alpha)
    if method not in ("basic", "percentile"):
        raise BenchError(f"Unknown interval method {method!r}; expected 'basic' or 'percentile'.")
    low, high = nan_quantiles(replicates, (alpha / 2.0, 1.0 - alpha / 2.0), axis=axis)
    if method == "percentile":
        return low, high
    if estimate is None:
        raise BenchError("The basic bootstrap interval needs the estimate (the statistic on the data).")
    theta = np.asarray(estimate, dtype=np.float64)
    return 2.0 * theta - high, 2.0 * theta - low


def bootstrap_p_value(replicates: Any, *, estimate: Any = None, null: float = 0.0, method: Interval = "basic",
                      axis: int = -1) -> np.ndarray:
    """Two-sided bootstrap p-value of H0: statistic = ``null``, the smallest alpha whose interval excludes it.

    With B defined replicates r and the reference point c = ``null`` (``percentile``) or c = 2 theta - null
    (``basic``, theta the ``estimate``: the replicates shifted to satisfy H0),
    p = min(1, 2 min(1 + #{r <= c}, 1 + #{r >= c}) / (B + 1)); the +1 keeps a Monte-Carlo p-value from
    being 0. So p < alpha exactly when the (1 - alpha) interval of the same method excludes ``null`` (up to
    the +1). NaN when no replicate is defined.
    """
    r = np.asarray(replicates, dtype=np.float64)
    if method == "basic":
        if estimate is None:
            raise BenchError("The basic bootstrap p-value needs the estimate (the statistic on the data).")
        reference = 2.0 * np.expand_dims(np.asarray(estimate, dtype=np.float64), axis) - null
    else:
        reference = np.asarray(null, dtype=np.float64)
    n = r.shape[axis] - np.count_nonzero(np.isnan(r), axis=axis)
    below = np.count_nonzero(r <= reference, axis=axis)  # a NaN replicate compares False: not counted
    above = np.count_nonzero(r >= reference, axis=axis)
    p = _two_sided_p(below, above, n)
    undefined = (n == 0) | np.isnan(reference).any(axis=axis if reference.ndim else None)
    return np.where(undefined, np.nan, p)


def interval_and_p_value(replicates: Any, *, estimate: Any, alpha: float = 0.05) -> tuple[np.ndarray, ...]:
    """`bootstrap_interval` and `bootstrap_p_value` (basic, against 0) of the same replicates (..., B), along
    the last axis, from one sort: the p-value's counts are read from the sorted replicates by a binary search
    per slice, not by comparing every replicate again. The same numbers as those two functions (the counts
    are whole numbers); the report's paired bootstrap runs thousands of slices at once through this."""
    alpha = check_alpha(alpha)
    r = np.asarray(replicates, dtype=np.float64)
    ordered = np.sort(r, axis=-1)  # NaN sort last: a slice without NaN ends in a number
    n = np.full(r.shape[:-1], r.shape[-1], dtype=np.intp)
    if r.shape[-1]:
        gaps = np.isnan(ordered[..., -1])
        n[gaps] = r.shape[-1] - np.count_nonzero(np.isnan(ordered[gaps]), axis=-1)
    q_low, q_high = _sorted_quantiles(ordered, n, (alpha / 2.0, 1.0 - alpha / 2.0))
    theta = np.asarray(estimate, dtype=np.float64)
    reference = 2.0 * theta  # bootstrap_p_value's basic reference, null = 0
    below = _count_sorted(ordered, n, reference, strict=False)  # #{r <= c}
    above = n - _count_sorted(ordered, n, reference, strict=True)  # #{r >= c} = n - #{r < c}
    p = np.where((n == 0) | np.isnan(reference), np.nan, _two_sided_p(below, above, n))
    return 2.0 * theta - q_high, 2.0 * theta - q_low, p


def _two_sided_p(below: np.ndarray, above: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The two-sided bootstrap p-value from how many of ``n`` replicates lie at or below and at or above the
    reference: 2 (min + 1) / (n + 1), at most 1."""
    with np.errstate(all="ignore"):
        return np.minimum(1.0, 2.0 * (np.minimum(below, above) + 1.0) / (n + 1.0))


def _count_sorted(ordered: np.ndarray, n: np.ndarray, bound: np.ndarray, *, strict: bool) -> np.ndarray:
    """Per slice of ``ordered`` (sorted along the last axis, its ``n`` defined values first), how many values
    are below ``bound`` (``strict``) or at most ``bound``: a binary search of all slices at once. 0 where the
    bound is NaN (no value compares below it)."""
    lo = np.zeros(n.shape, dtype=np.intp)
    hi = np.asarray(n, dtype=np.intp).copy()
    top = max(ordered.shape[-1] - 1, 0)
    for _ in range(int(ordered.shape[-1]).bit_length() + 1):
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        value = np.take_along_axis(ordered, np.minimum(mid, top)[..., None], axis=-1)[..., 0]
        right = active & ((value < bound) if strict else (value <= bound))
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
    return lo


class BootstrapResult(NamedTuple):
    """A bootstrap estimate: the statistic on the data, its interval (basic unless asked otherwise), and (for a
    difference) a two-sided p-value of "no difference"; ``replicates`` (B,) are kept for further use."""

    estimate: float
    low: float
    high: float
    p: float
    replicates: np.ndarray


Statistic = Callable[[np.ndarray], np.ndarray]


def _apply(statistic: Statistic, boot: ClusterBootstrap, chunk: int) -> np.ndarray:
    """``statistic`` on every replicate, in chunks of rows: weights (b, N) -> values (b,)."""
    out = np.empty(boot.n_boot)
    for start in range(0, boot.n_boot, chunk):
        rows = slice(start, min(boot.n_boot, start + chunk))
        out[rows] = np.asarray(statistic(boot.weights(rows)), dtype=np.float64).reshape(-1)
    return out


def bootstrap_ci(statistic: Statistic, boot: ClusterBootstrap, *, alpha: float = 0.05, method: Interval = "basic",
                 chunk: int = 128) -> BootstrapResult:
    """Bootstrap interval (`bootstrap_interval`) of any statistic of a weighted sample.

    ``statistic`` maps sample weights of shape (b, N) to values (b,) (vectorised over replicates); the
    estimate is its value at unit weights. Any metric fits: e.g.
    ``lambda w: weighted_auc(y, score, w)``, or fairness gaps through `weighted_group_counts` and
    `bench.metrics.fairness_gaps`. ``p`` is `bootstrap_p_value` against 0.
    """
    estimate = float(np.asarray(statistic(np.ones((1, boot.n_samples)))).reshape(-1)[0])
    replicates = _apply(statistic, boot, chunk)
    low, high = bootstrap_interval(replicates, estimate=estimate, alpha=alpha, method=method)
    p = bootstrap_p_value(replicates, estimate=estimate, method=method)
    return BootstrapResult(estimate, float(low), float(high), float(p), replicates)


def paired_bootstrap(statistic_a: Statistic, statistic_b: Statistic, boot: ClusterBootstrap, *,
                     alpha: float = 0.05, method: Interval = "basic", chunk: int = 128) -> BootstrapResult:
    """Bootstrap of the difference A - B of a statistic of two methods on the same test samples.

    Both statistics see the same resampled test sets (the same weights), so the interval reflects the
    variability of the difference, which is much smaller than that of either statistic when the two
    methods err on the same samples. ``p`` is the two-sided `bootstrap_p_value` of "no difference".
    """

    def difference(w: np.ndarray) -> np.ndarray:
        return np.asarray(statistic_a(w), dtype=np.float64) - np.asarray(statistic_b(w), dtype=np.float64)

    return bootstrap_ci(difference, boot, alpha=alpha, method=method, chunk=chunk)
