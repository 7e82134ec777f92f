"""The few distribution functions the report's tests need, without importing ``scipy.stats``.

Why this module exists: importing ``scipy.stats`` costs about 0.4-0.5 s of ``bench report``'s start (after
numpy, pandas, ``scipy.sparse`` and ``scipy.special``, which the report needs anyway), and the report uses
only a handful of its functions. Each one is computed here from ``scipy.special`` (cheap to import) and
numpy, with the same numbers, bit for bit but for one (``tests/test_distributions.py`` checks every one
against ``scipy.stats`` itself):

- `norm_sf`, `norm_ppf`, `t_sf`, `t_ppf`, `chi2_sf`: the ``scipy.special`` function that ``scipy.stats``
  calls for each (``ndtr``, ``ndtri``, ``stdtr``, ``stdtrit``, ``chdtrc``), with the edges handled as its
  generic distribution methods handle them (NaN, infinite values, the ends of the support, invalid degrees
  of freedom).
- `rankdata`: ``scipy.stats.rankdata(a, axis=-1)`` (average ranks for ties; a row holding a NaN is all NaN).
- `wilcoxon_p`: the two-sided p of ``scipy.stats.wilcoxon(d, method="exact" | "asymptotic", axis=-1)`` with
  its defaults (zeros dropped, no continuity correction), and `signed_rank_counts`, the exact null.
- `studentized_range_ppf`: the quantile of the studentized range with infinite degrees of freedom (Nemenyi's
  critical difference) from first principles (a trapezoidal integral and Newton's method), within a few
  ulps of the exact value. The one function here that is not scipy's to the bit: scipy's own quantile is up
  to 2.5e-14 relative from it (its quadrature's and root search's tolerances; tests hold the two within
  5e-14), and scipy's recipe would need scipy.integrate and scipy.optimize.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "chi2_sf",
    "norm_ppf",
    "norm_sf",
    "rankdata",
    "signed_rank_counts",
    "studentized_range_cdf",
    "studentized_range_ppf",
    "studentized_range_sf",
    "t_ppf",
    "t_sf",
    "wilcoxon_p",
]


# ============================================================================================ continuous
def _scalar_or_array(out: np.ndarray) -> Any:
    """A 0-d result as a numpy scalar, as scipy.stats returns it; any other shape as the array."""
    return out[()] if out.ndim == 0 else out


def _sf(x: Any, valid: Any, lower: float, function: Any, *args: np.ndarray) -> Any:
    """The survival function as scipy.stats' generic ``sf`` evaluates it: NaN where ``valid`` (the shape
    parameters' check) fails or x is NaN, 1 at and below the support's lower end ``lower``, 0 at +inf, and
    ``function(x, *args)`` strictly inside the support (lower, inf)."""
    x = np.asarray(x, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    shape = np.broadcast_shapes(x.shape, valid.shape, *(a.shape for a in args))
    x, valid, *args = np.broadcast_arrays(x, valid, *args)
    out = np.zeros(shape)
    with np.errstate(invalid="ignore"):
        inside = valid & (x > lower) & (x < np.inf)
        out[~valid | np.isnan(x)] = np.nan
        out[valid & (x <= lower)] = 1.0
    if inside.any():
        out[inside] = function(x[inside], *(a[inside] for a in args))
    return _scalar_or_array(out)


def _ppf(q: Any, valid: Any, lower: float, function: Any, *args: np.ndarray) -> Any:
    """The quantile as scipy.stats' generic ``ppf`` evaluates it: NaN where ``valid`` fails or q is not in
    [0, 1] (or NaN), the support's ends at q = 0 and q = 1, and ``function(q, *args)`` in between, plus 0.0
    (scipy adds the location 0, which turns a -0.0 into 0.0)."""
    q = np.asarray(q, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    shape = np.broadcast_shapes(q.shape, valid.shape, *(a.shape for a in args))
    q, valid, *args = np.broadcast_arrays(q, valid, *args)
    out = np.full(shape, np.nan)
    with np.errstate(invalid="ignore"):
        inside = valid & (q > 0.0) & (q < 1.0)
        out[valid & (q == 0.0)] = lower
        out[valid & (q == 1.0)] = np.inf
    if inside.any():
        out[inside] = function(q[inside], *(a[inside] for a in args)) + 0.0
    return _scalar_or_array(out)


def _positive(df: Any) -> tuple[np.ndarray, np.ndarray]:
    """Degrees of freedom as floats and where they are valid (> 0, inf included; NaN is not)."""
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return df, df > 0


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``: ``special.ndtr(-x)``."""
    return _sf(x, True, -np.inf, lambda v: special.ndtr(-v))


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)``: ``special.ndtri(q)``."""
    return _ppf(q, True, -np.inf, special.ndtri)


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``: ``special.stdtr(df, -x)``."""
    df, valid = _positive(df)
    return _sf(x, valid, -np.inf, lambda v, d: special.stdtr(d, -v), df)


def t_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.ppf(q, df)``: ``special.stdtrit(df, q)``."""
    df, valid = _positive(df)
    return _ppf(q, valid, -np.inf, lambda v, d: special.stdtrit(d, v), df)


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)``: ``special.chdtrc(df, x)`` on (0, inf), 1 at and below 0."""
    df, valid = _positive(df)
    return _sf(x, valid, 0.0, lambda v, d: special.chdtrc(d, v), df)


# ============================================================================================ ranks
def _sorted_runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``a`` (last axis): the stable sort order, and for each sorted position the first and
    last sorted position of its run of equal values (every NaN a run of its own, as NaN != NaN)."""
    size = a.shape[-1]
    order = np.argsort(a, axis=-1, kind="stable")
    ordered = np.take_along_axis(a, order, axis=-1)
    change = ordered[..., 1:] != ordered[..., :-1]  # a new run starts after each of these positions
    position = np.broadcast_to(np.arange(size), a.shape)
    starts = np.concatenate([np.ones((*a.shape[:-1], 1), dtype=bool), change], axis=-1)
    ends = np.concatenate([change, np.ones((*a.shape[:-1], 1), dtype=bool)], axis=-1)
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, position, size - 1), axis=-1), axis=-1), axis=-1)
    return order, first, last


def _average_ranks(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks along the last axis (NaN ranked last, each on its own) and, per row, sum(t^3 - t) over
    the runs of t equal values. A run from sorted position s to e has the ranks s + 1 .. e + 1, whose average
    (s + e + 2) / 2 is a whole number or a half: exact, so the same floats as scipy's."""
    order, first, last = _sorted_runs(a)
    ranks = np.empty(a.shape)
    np.put_along_axis(ranks, order, (first + last + 2) / 2.0, axis=-1)
    t = (last - first + 1).astype(np.float64)
    return ranks, (t * t - 1.0).sum(axis=-1)  # each of a run's t positions adds t^2 - 1: t^3 - t per run


def rankdata(a: Any) -> np.ndarray:
    """``scipy.stats.rankdata(a, axis=-1)``: average ranks (ties share the mean of their ranks) along the last
    axis, as floats; a row that holds a NaN is NaN throughout (scipy's default ``nan_policy="propagate"``)."""
    a = np.asarray(a)
    if a.ndim == 0:
        raise ValueError("rankdata needs at least one axis.")
    if a.size == 0:
        return np.empty(a.shape)
    ranks, _ = _average_ranks(a)
    if a.dtype.kind in "fc":
        ranks[np.isnan(a).any(axis=-1)] = np.nan
    return ranks


# ============================================================================================ Wilcoxon
@functools.lru_cache(maxsize=128)
def signed_rank_counts(n: int) -> np.ndarray:
    """Counts of the 2^n sign patterns of the ranks 1 .. n by W+ = the sum of the ranks with a plus sign
    (W+ = 0 .. n(n+1)/2): Wilcoxon's exact null distribution times 2^n. Whole numbers below 2^53 up to
    n = 50 (and far beyond), so exact. Read only (cached)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    counts.flags.writeable = False
    return counts


def wilcoxon_p(differences: Any, *, exact: bool) -> np.ndarray:
    """Two-sided p of Wilcoxon's signed-rank test of each row of ``differences`` (last axis), as
    ``scipy.stats.wilcoxon(differences, method="exact" if exact else "asymptotic", axis=-1).pvalue`` with its
    defaults (zeros dropped, no continuity correction); a row with a NaN gives NaN.

    With n nonzero values, W+ the sum of the (average) ranks of |d| over the positive d:

    - exact: p = min(1, 2 min(P(W+ >= floor(w)), P(W+ <= ceil(w)))) from the null counts of n untied ranks
      (`signed_rank_counts`; not exact with ties). Every probability is a whole number over 2^n <= 2^50, so
      it is exact in floats, whatever the order of summation, and equals scipy's to the bit.
    - asymptotic: z = (w - n(n+1)/4) / sqrt((n(n+1)(2n+1) - sum(t^3 - t) / 2) / 24), t the sizes of the
      groups of tied |d|, and p = 2 Phi(-|z|), computed in scipy's order (only the division by 24, the square
      root, the division by it and Phi round).
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim == 0:
        raise ValueError("wilcoxon_p needs at least one axis.")
    with np.errstate(invalid="ignore"):
        magnitude = np.where(d == 0.0, np.nan, np.abs(d))  # zeros dropped: ranked last, as NaNs, and not counted
        ranks, ties = _average_ranks(magnitude)
        w = np.where(d > 0.0, ranks, 0.0).sum(axis=-1)
        n = np.count_nonzero(~np.isnan(magnitude), axis=-1).astype(np.float64)
        if exact:
            p = np.empty(w.shape)
            for size in np.unique(n).tolist():
                chosen = n == size
                cumulative = np.cumsum(signed_rank_counts(int(size)))  # P(W+ <= k) 2^n, exact
                total = 2.0**size
                below = cumulative[np.ceil(w[chosen]).astype(np.int64)] / total  # P(W+ <= ceil(w))
                low = np.floor(w[chosen]).astype(np.int64)
                above = np.where(low > 0, total - cumulative[np.maximum(low - 1, 0)], total) / total  # P(W+ >= low)
                p[chosen] = np.clip(2.0 * np.minimum(above, below), 0.0, 1.0)
        else:
            mean = n * (n + 1.0) * 0.25
            se = np.sqrt((n * (n + 1.0) * (2.0 * n + 1.0) - ties / 2.0) / 24.0)
            with np.errstate(divide="ignore"):
                z = (w - mean) / se
            p = 2.0 * special.ndtr(-np.abs(z))
    p = np.where(np.isnan(d).any(axis=-1), np.nan, p)
    return _scalar_or_array(np.asarray(p, dtype=np.float64))


# ============================================================================================ studentized range
_GRID_STEP = 1.0 / 16.0  # the trapezoidal rule on the whole line: its error for these Gaussian integrands is
_GRID = np.arange(-14.0, 14.0 + _GRID_STEP / 2.0, _GRID_STEP)  # far below rounding at this step (see tests)
_DENSITY = np.exp(-_GRID * _GRID / 2.0) / math.sqrt(2.0 * math.pi)


def _between(q: float) -> np.ndarray:
    """Phi(z + q) - Phi(z) on the grid, each side of z = -q/2 from the tail where it has full precision."""
    z = _GRID
    return np.where(z > -q / 2.0, special.ndtr(-z) - special.ndtr(-z - q), special.ndtr(z + q) - special.ndtr(z))


def studentized_range_cdf(q: float, k: int) -> float:
    """P(R <= q) for the range R of k independent standard normals (the studentized range with infinite
    degrees of freedom): k * integral phi(z) [Phi(z + q) - Phi(z)]^(k - 1) dz, by the trapezoidal rule on
    z in [-14, 14] at step 1/16 (the integrand is analytic and decays like phi: the rule's error is far
    below the rounding of the sum, which math.fsum keeps to one rounding)."""
    if not q > 0.0:
        return 0.0 if q == q else float("nan")
    if q == math.inf:
        return 1.0
    terms = _DENSITY * _between(q) ** (k - 1)
    return min(1.0, k * _GRID_STEP * math.fsum(terms.tolist()))


def studentized_range_sf(q: float, k: int) -> float:
    """P(R > q) = 1 - `studentized_range_cdf`, with its own relative precision (not 1 minus a number near 1):
    as k * integral phi(z) Q(z)^(k - 1) dz = 1 (Q = 1 - Phi), P(R > q) = k * integral phi(z) [Q(z)^(k - 1) -
    (Q(z) - Q(z + q))^(k - 1)] dz, and the bracket is Q(z)^(k - 1) (1 - r^(k - 1)) with r = 1 - Q(z + q) / Q(z),
    1 - r^(k - 1) = -expm1((k - 1) log r) (log1p(-Q(z + q) / Q(z)) right of z = -q/2, where both tails have
    full precision, log((Phi(z + q) - Phi(z)) / Q(z)) left of it). The same grid and rule."""
    if not q > 0.0:
        return 1.0 if q == q else float("nan")
    if q == math.inf:
        return 0.0
    z = _GRID
    tail = special.ndtr(-z)
    with np.errstate(divide="ignore"):
        log_r = np.where(z > -q / 2.0, np.log1p(-special.ndtr(-z - q) / tail), np.log(_between(q) / tail))
    terms = _DENSITY * tail ** (k - 1) * -np.expm1((k - 1) * log_r)
    return max(0.0, k * _GRID_STEP * math.fsum(terms.tolist()))


def _studentized_range_pdf(q: float, k: int) -> float:
    """d/dq of `studentized_range_cdf`: k (k - 1) * integral phi(z) phi(z + q) [Phi(z + q) - Phi(z)]^(k - 2) dz."""
    shifted = np.exp(-(_GRID + q) ** 2 / 2.0) / math.sqrt(2.0 * math.pi)
    terms = _DENSITY * shifted * _between(q) ** (k - 2)
    return k * (k - 1) * _GRID_STEP * math.fsum(terms.tolist())


def studentized_range_ppf(p: float, k: int) -> float:
    """The p quantile of the studentized range of k >= 2 groups with infinite degrees of freedom (Nemenyi's
    critical difference), to within a few ulps of the exact value (checked against 30-digit arithmetic for
    k = 2, 5, 10, 60): Newton's method with the density on `studentized_range_cdf` - p (below p = 1/2) or on
    (1 - p) - `studentized_range_sf` (from 1/2 on, where 1 - p is exact and the upper tail keeps its
    precision), kept inside a bracket that bisection takes over whenever a step would leave it.

    Not bit for bit scipy's ``studentized_range.ppf(p, k, np.inf)``, whose quadrature and root search stop at
    their tolerances: the two differ by up to 2.5e-14 relative (k = 2 .. 60, p = 0.8 .. 0.999: median 3 ulps,
    at most 7 at p = 0.95, 189 at p = 0.999), and scipy's is the one further from the exact value. Matching
    scipy to the bit would mean its quadrature and root finder, scipy.integrate and scipy.optimize (0.12 s
    to import); the report's critical differences move by a few ulps instead (2-5 in friedman.csv)."""
    if not (k >= 2 and 0.0 <= p <= 1.0):
        return float("nan")
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return math.inf
    upper = p >= 0.5

    def gap(x: float) -> float:  # cdf(x) - p, increasing in x
        return (1.0 - p) - studentized_range_sf(x, k) if upper else studentized_range_cdf(x, k) - p

    low, high = 0.0, 1.0
    while gap(high) < 0.0:
        low, high = high, 2.0 * high
    x = (low + high) / 2.0
    for _ in range(200):
        excess = gap(x)
        if excess == 0.0:
            return x
        if excess < 0.0:
            low = x
        else:
            high = x
        density = _studentized_range_pdf(x, k)
        step = x - excess / density if density > 0.0 else (low + high) / 2.0
        if not low < step < high:
            step = (low + high) / 2.0
        if step == x or high - low <= 2.0 * math.ulp(x):
            return step
        x = step
    return x
