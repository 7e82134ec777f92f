"""Statistical tests for the report: DeLong, paired tests over seeds and pairs, corrections, rank tests.

Everything here is a pure function of arrays, tested against references (scipy, statsmodels, pROC's
published values, brute force). The module does not import torch, so ``bench report`` starts fast. The
bootstrap (resamples, intervals) is `bench.bootstrap`, every metric per replicate `bench.replicates`.

The pieces, and why each is the one used:

- `delong_test` (and `delong_parts`, `delong_contrast`): DeLong's test for correlated AUCs with the fast
  mid-rank algorithm of Sun & Xu (2014); with clusters, Obuchowski's (1997) clustered variance, which
  reduces to DeLong's exactly when every cluster is one sample.
- `sign_flip_test`: the exact paired permutation test over seeds (all 2^S sign patterns), with Hartigan's
  (1969) exact interval from subset means.
- `wilcoxon_test`: signed-rank test over train/test pairs, with the Hodges-Lehmann estimate and its
  exact distribution-free interval.
- `pooled_test`: the test that makes the report's claims and decides its ranks: the mean difference over
  training jobs (a training domain and seed each) with a variance of two levels, the test sets' (from the
  shared bootstrap replicates) and the training runs' (a method-of-moments estimate of the spread between
  jobs beyond test-set noise; on one training domain the spread of each method's seeds, as in Welch's
  test, with up to twice the degrees of freedom), referred to Student's t with Satterthwaite's degrees of
  freedom. Unlike the exact tests above it has no floor, so one training domain with three seeds can make
  a claim.
- `sign_flip_floor`, `wilcoxon_floor`: the smallest p-value each exact test can reach with n values.
- `sign_flip_tests`, `wilcoxon_tests`, `delong_contrasts`: the same tests of many samples (contrasts) at
  once, with the same numbers; the report runs tens of thousands of them, and one scipy call per Wilcoxon
  test cost more than everything else in its significance table.
- `holm`, `benjamini_hochberg`: multiple-comparison corrections (family = the p-values passed in, or each
  family of ``families`` on its own, all at once: the report corrects thousands of families).
- `friedman_test`, `nemenyi_cd`: the Friedman test and Nemenyi critical difference for a CD diagram.
  Mean-rank post-hoc tests depend on which other methods are in the comparison (Benavoli, Corani &
  Mangili, JMLR 2016), so the report shows them as a description and makes its claims with the pairwise
  Wilcoxon tests and Holm's correction instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from bench import distributions
from bench.bootstrap import LENGTHS, check_alpha
from bench.errors import BenchError

__all__ = [
    "DeLongParts",
    "DeLongResult",
    "FriedmanResult",
    "PooledResult",
    "TestResult",
    "benjamini_hochberg",
    "contrast_moments",
    "delong_contrast",
    "delong_contrasts",
    "delong_covariance",
    "delong_parts",
    "delong_test",
    "friedman_test",
    "holm",
    "nemenyi_cd",
    "pooled_test",
    "rank_rows",
    "sign_flip_floor",
    "sign_flip_test",
    "sign_flip_tests",
    "wilcoxon_floor",
    "wilcoxon_test",
    "wilcoxon_tests",
]


# ============================================================================================ DeLong
class DeLongParts(NamedTuple):
    """Per-classifier pieces of DeLong's variance, for any set of classifiers scored on one test set.

    ``auc`` (k,); ``fake`` (k, C) and ``real`` (k, C): per cluster, the sum over its fakes (reals) of the
    centred placement values V10 - AUC (V01 - AUC); ``n_fake``, ``n_real`` sample counts; ``c_fake``,
    ``c_real``, ``c_all`` the numbers of clusters holding fakes, reals, anything.
    """

    auc: np.ndarray
    fake: np.ndarray
    real: np.ndarray
    n_fake: int
    n_real: int
    c_fake: int
    c_real: int
    c_all: int


class DeLongResult(NamedTuple):
    """A DeLong comparison: the contrast's estimate, standard error, z, two-sided p and (1 - alpha) CI."""

    estimate: float
    se: float
    z: float
    p: float
    low: float
    high: float


def delong_parts(y_true: Any, scores: Any, *, clusters: Any = None) -> DeLongParts:
    """DeLong's structural components of k classifiers (``scores`` (k, N) or (N,)) on one test set.

    Fast mid-rank algorithm (Sun & Xu 2014): with T_x the mid-ranks of the fakes' scores among fakes,
    T_y of the reals' among reals and T_z among all, the placement values are
    V10_i = (T_z,i - T_x,i) / n_real for each fake and V01_j = 1 - (T_z,j - T_y,j) / n_fake for each real
    (ties count half), and AUC = mean V10 = mean V01: one sort per classifier (all three rankings are read
    from it, `_mid_ranks`) instead of n_fake x n_real comparisons. The centred placements are then summed per
    cluster (``clusters`` (N,); None: each sample is its own cluster).
    """
    y = np.asarray(y_true)
    z = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if z.shape[1] != y.shape[0]:
        raise BenchError(LENGTHS.format(what="scores", expected=y.shape[0], got=z.shape[1]))
    fake, real = y == 1, y == 0
    n_fake, n_real = int(fake.sum()), int(real.sum())
    if n_fake == 0 or n_real == 0:
        raise BenchError("DeLong's test needs both fakes and reals in the test set.")
    if np.isnan(z).any():  # scipy's ranks propagate NaN
        rank = distributions.rankdata
        tz, tx, ty = rank(z), rank(z[:, fake]), rank(z[:, real])
    else:
        tz, tx, ty = _mid_ranks(z, fake)
    v10 = (tz[:, fake] - tx) / n_real
    v01 = 1.0 - (tz[:, real] - ty) / n_fake
    auc = v10.mean(axis=1)
    codes = np.arange(y.shape[0]) if clusters is None else pd.factorize(np.asarray(clusters))[0]
    n_clusters = int(codes.max()) + 1
    fake_sums = _cluster_sums(v10 - auc[:, None], codes[fake], n_clusters)
    real_sums = _cluster_sums(v01 - auc[:, None], codes[real], n_clusters)
    return DeLongParts(auc=auc, fake=fake_sums, real=real_sums, n_fake=n_fake, n_real=n_real,
                       c_fake=int(np.count_nonzero(np.bincount(codes[fake], minlength=n_clusters))),
                       c_real=int(np.count_nonzero(np.bincount(codes[real], minlength=n_clusters))),
                       c_all=n_clusters)


def _mid_ranks(z: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scipy's ``rankdata`` (mid-ranks, ties averaged) of each row of ``z`` (k, N) among all samples, of its
    fakes among the fakes and of its reals among the reals, from one sort per row: a run of equal scores
    holding samples ``start`` .. ``end`` - 1 of the sorted row has the ranks start + 1 .. end, so its mid-rank
    is (start + end + 1) / 2, and the same counted over fakes (reals) only gives their ranks among
    themselves (the order within a run does not matter). Whole numbers and halves, so scipy's floats."""
    k, size = z.shape
    tz, tx, ty = np.empty((k, size)), np.empty((k, int(fake.sum()))), np.empty((k, size - int(fake.sum())))
    for row in range(k):
        order = np.argsort(z[row])
        ordered = z[row][order]
        first = np.empty(size, dtype=bool)  # the first sample of each run of equal scores
        first[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        bounds = np.append(starts, size)  # each run's start and, next to it, its end
        run = np.cumsum(first) - 1
        fakes = np.zeros(size + 1, dtype=np.int64)  # fakes among the first i sorted samples
        np.cumsum(fake[order], out=fakes[1:])
        for out, counted, kept in ((tz, bounds, slice(None)), (tx, fakes[bounds], fake),
                                   (ty, bounds - fakes[bounds], ~fake)):
            full = np.empty(size)
            full[order] = ((counted[:-1] + counted[1:] + 1) / 2.0)[run]
            out[row] = full[kept]
    return tz, tx, ty


def _cluster_sums(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """(k, n) values summed per cluster -> (k, C)."""
    out = np.zeros((values.shape[0], n_clusters))
    for row in range(values.shape[0]):
        out[row] = np.bincount(codes, weights=values[row], minlength=n_clusters)
    return out


def delong_covariance(parts: DeLongParts) -> np.ndarray:
    """The (k, k) covariance of the k AUCs.

    Cov = F F^T c_f / ((c_f - 1) m^2) + R R^T c_r / ((c_r - 1) n^2) + (F R^T + R F^T) c / ((c - 1) m n),
    F, R the per-cluster sums of centred placements of the m fakes and n reals, c_f, c_r, c the numbers of
    clusters with fakes, with reals, in all (Obuchowski 1997, from the first-order expansion
    AUC - theta = sum_clusters (F_c / m + R_c / n)). With one sample per cluster the cross term vanishes
    and this is DeLong's S10 / m + S01 / n exactly.
    """
    m, n = parts.n_fake, parts.n_real
    f, r = parts.fake, parts.real

    def factor(count: int) -> float:
        return count / (count - 1.0) if count > 1 else np.nan

    return (factor(parts.c_fake) * (f @ f.T) / m**2 + factor(parts.c_real) * (r @ r.T) / n**2
            + factor(parts.c_all) * (f @ r.T + r @ f.T) / (m * n))


def delong_contrast(auc: Any, covariance: Any, contrast: Any, *, alpha: float = 0.05) -> DeLongResult:
    """Normal test of a linear contrast L . AUC with variance L^T Cov L (DeLong et al. 1988).

    E.g. L = (1/S_a, ..., -1/S_b, ...) compares the seed-averaged AUCs of two methods. When the variance
    is 0 (identical curves; below 1e-12 counts as rounding) the difference is 0 too and p = 1, as pROC does.
    """
    result = delong_contrasts(*contrast_moments(auc, covariance, contrast), alpha=alpha)
    return DeLongResult(*(float(v) for v in result))


def contrast_moments(auc: Any, covariance: Any, contrast: Any) -> tuple[float, float]:
    """L . AUC and its variance L^T Cov L, for `delong_contrasts`."""
    theta = np.asarray(auc, dtype=np.float64)
    lvec = np.asarray(contrast, dtype=np.float64)
    return float(lvec @ theta), float(lvec @ np.asarray(covariance, dtype=np.float64) @ lvec)


def delong_contrasts(estimates: Any, variances: Any, *, alpha: float = 0.05) -> DeLongResult:
    """`delong_contrast` of many contrasts at once, from their estimates and variances (`contrast_moments`):
    a `DeLongResult` of arrays (the report tests one contrast per train -> test pair and comparison)."""
    alpha = check_alpha(alpha)
    estimate = np.asarray(estimates, dtype=np.float64)
    variance = np.asarray(variances, dtype=np.float64)
    se = np.where(np.isfinite(variance), np.sqrt(np.maximum(variance, 0.0)), np.nan)
    same = (se < 1e-12) & (np.abs(estimate) < 1e-12)  # the same curves, up to rounding in the sums
    estimate, se = np.where(same, 0.0, estimate), np.where(same, 0.0, se)
    with np.errstate(divide="ignore", invalid="ignore"):
        zero_se = np.where(estimate == 0.0, 0.0, np.copysign(np.inf, estimate))
        z = np.where(se == 0.0, zero_se, estimate / se)
    p = np.where(np.isnan(z), np.nan, 2.0 * distributions.norm_sf(np.abs(z)))
    half = distributions.norm_ppf(1.0 - alpha / 2.0) * se
    return DeLongResult(estimate, se, z, p, estimate - half, estimate + half)


def delong_test(y_true: Any, score_a: Any, score_b: Any, *, clusters: Any = None,
                alpha: float = 0.05) -> DeLongResult:
    """DeLong's test of AUC_a = AUC_b for two classifiers scored on the same samples (a - b).

    With ``clusters`` (N,), the variance is Obuchowski's clustered one (frames of a video are not
    independent); without, it is DeLong's and matches pROC's ``roc.test(..., method="delong")``.
    """
    parts = delong_parts(y_true, np.vstack([np.asarray(score_a, dtype=np.float64),
                                            np.asarray(score_b, dtype=np.float64)]), clusters=clusters)
    return delong_contrast(parts.auc, delong_covariance(parts), [1.0, -1.0], alpha=alpha)


# ============================================================================================ paired tests
class TestResult(NamedTuple):
    """A paired test: estimate of the difference, its (1 - alpha) interval, two-sided p, number of pairs,
    and whether the p-value is exact (complete enumeration) or approximate."""

    estimate: float
    low: float
    high: float
    p: float
    n: int
    exact: bool


def sign_flip_test(differences: Any, *, alpha: float = 0.05, max_exact: int = 16, n_resamples: int = 100_000,
                   seed: int = 0) -> TestResult:
    """Exact paired permutation (sign-flip) test of mean difference 0, e.g. over training seeds.

    Under H0 each paired difference d_s is as likely to have either sign, so the 2^S sign patterns are
    equally likely. p = #{patterns e: |sum_s e_s d_s| >= |sum_s d_s|} / 2^S, enumerated exactly for
    S <= ``max_exact`` (else ``n_resamples`` random patterns, plus the observed one). The interval is
    Hartigan's (1969): the k-th smallest and largest of the 2^S - 1 subset means, k = floor(2^S alpha / 2),
    exact under symmetry; infinite when k = 0 (too few seeds: S = 5 can never reach p < 0.05). NaN
    differences (a seed missing on one side) are dropped.
    """
    return _one(sign_flip_tests([differences], alpha=alpha, max_exact=max_exact, n_resamples=n_resamples,
                                seed=seed))


def sign_flip_tests(samples: Sequence[Any], *, alpha: float = 0.05, max_exact: int = 16,
                    n_resamples: int = 100_000, seed: int = 0) -> TestResult:
    """`sign_flip_test` of every sample in ``samples`` (each its own paired differences), as a `TestResult`
    of arrays in the order of ``samples``: the sign patterns and subsets of each sample size are built once
    and shared by every sample of that size (the report runs thousands of these)."""
    alpha = check_alpha(alpha)
    batch = _Batch(samples)
    for n, rows in batch.by_size():
        if n == 0:
            continue
        if n > max_exact:  # Monte-Carlo: every sample draws its own patterns from ``seed``, as one call would
            for row in rows:
                d = batch.values[row]
                rng = np.random.default_rng(seed)
                signs = rng.choice([-1.0, 1.0], size=(n_resamples, n))
                tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
                p = float((np.sum(np.abs(signs @ d) >= abs(d.sum()) - tol) + 1) / (n_resamples + 1))
                batch.set(row, float(d.mean()), *_t_interval(d, alpha), min(1.0, p), exact=False)
            continue
        signs, subsets, sizes = _sign_patterns(n)
        k = math.floor(2**n * alpha / 2.0)
        d = np.stack([batch.values[row] for row in rows])
        tol = 1e-12 * np.maximum(1.0, np.abs(d).sum(axis=1))
        observed = np.abs(d.sum(axis=1)) - tol
        if n <= 2:  # sums of at most two exact products: every order of summation gives the same bits
            p = np.mean(np.abs(d @ signs.T) >= observed[:, None], axis=1)
            means = np.sort((d @ subsets.T) / sizes, axis=1)
        else:  # one matrix-vector product per sample: a product of matrices sums in another order (last digits)
            p = np.array([np.mean(np.abs(signs @ row) >= bound) for row, bound in zip(d, observed, strict=True)])
            means = np.sort(np.stack([subsets @ row for row in d]) / sizes, axis=1)
        low, high = (means[:, k - 1], means[:, -k]) if k >= 1 else (-math.inf, math.inf)
        batch.set(rows, d.mean(axis=1), low, high, np.minimum(1.0, p), exact=True)
    return batch.result()


def _blocks(rows: Any, n: int) -> list[slice]:
    """Slices of ``rows`` small enough for a (rows, 2^n) matrix of sign-pattern sums (4M numbers at most)."""
    step = max(1, 2**22 // 2**n)
    return [slice(start, start + step) for start in range(0, len(rows), step)]


@functools.lru_cache(maxsize=32)
def _sign_patterns(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All 2^n sign patterns as +-1 rows, every nonempty subset as 0/1 rows and the subsets' sizes."""
    signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)  # (2^S, S), all patterns
    subsets = (1.0 - signs[1:]) / 2.0  # every nonempty subset, as 0/1 rows
    for array in (signs, subsets):
        array.flags.writeable = False
    sizes = subsets.sum(axis=1)
    sizes.flags.writeable = False
    return signs, subsets, sizes


class _Batch:
    """Many paired samples (NaNs dropped) and the `TestResult` arrays their tests fill in, row by row or by
    groups of rows of one sample size; rows never filled (empty samples) stay NaN with n = 0, exact."""

    def __init__(self, samples: Sequence[Any]) -> None:
        self.values = [_paired(s) for s in samples]
        self.n = np.array([v.shape[0] for v in self.values], dtype=np.int64)
        count = len(self.values)
        self.estimate, self.low, self.high, self.p = (np.full(count, np.nan) for _ in range(4))
        self.exact = np.ones(count, dtype=bool)

    def by_size(self) -> list[tuple[int, np.ndarray]]:
        """(sample size, the rows of that size), sizes ascending."""
        return [(int(n), np.flatnonzero(self.n == n)) for n in np.unique(self.n)]

    def set(self, rows: Any, estimate: Any, low: Any, high: Any, p: Any, *, exact: Any) -> None:
        self.estimate[rows], self.low[rows], self.high[rows], self.p[rows] = estimate, low, high, p
        self.exact[rows] = exact

    def result(self) -> TestResult:
        return TestResult(self.estimate, self.low, self.high, self.p, self.n, self.exact)


def _one(result: TestResult) -> TestResult:
    """The single test of a batch of one, as Python scalars."""
    return TestResult(float(result.estimate[0]), float(result.low[0]), float(result.high[0]), float(result.p[0]),
                      int(result.n[0]), bool(result.exact[0]))


def _paired(differences: Any) -> np.ndarray:
    """The paired differences as floats, NaNs (a value missing on one side) dropped."""
    d = np.asarray(differences, dtype=np.float64)
    return d[~np.isnan(d)]


def _t_interval(d: np.ndarray, alpha: float) -> tuple[float, float]:
    half = distributions.t_ppf(1.0 - alpha / 2.0, d.shape[0] - 1) * d.std(ddof=1) / math.sqrt(d.shape[0])
    return float(d.mean() - half), float(d.mean() + half)


def wilcoxon_test(differences: Any, *, alpha: float = 0.05) -> TestResult:
    """Wilcoxon signed-rank test of "no difference" over paired values (e.g. train -> test pairs).

    p is two-sided with zeros dropped: exact (scipy's distribution without ties, every sign pattern of the
    mid-ranks with ties) up to 50 values without ties or 16 with them, the normal approximation beyond.
    The estimate is the Hodges-Lehmann estimator (median of the Walsh averages (d_i + d_j) / 2, i <= j)
    and the interval its exact distribution-free companion:
    the k-th smallest and largest Walsh averages, k - 1 the largest count with P(W+ <= k - 1) <= alpha / 2
    under H0; infinite when no such k exists (fewer than 6 pairs at alpha = 0.05). NaNs are dropped;
    all-zero differences give p = 1.
    """
    return _one(wilcoxon_tests([differences], alpha=alpha))


def wilcoxon_tests(samples: Sequence[Any], *, alpha: float = 0.05) -> TestResult:
    """`wilcoxon_test` of every sample in ``samples``, as a `TestResult` of arrays in the order of
    ``samples``. Samples of one size share their Walsh-average indices and interval rank, and their p-values
    come from one call per kind of test: scipy's exact or normal p (`bench.distributions.wilcoxon_p`, the same
    numbers) for all untied samples with the same number of nonzero values at once, one enumeration of the sign
    patterns for the tied ones (the report runs thousands of these; one scipy call each cost more than the rest
    of the report's tests)."""
    alpha = check_alpha(alpha)
    batch = _Batch(samples)
    for n, rows in batch.by_size():
        if n == 0:
            continue
        d = np.stack([batch.values[row] for row in rows])
        i, j = np.triu_indices(n)
        walsh = np.sort((d[:, i] + d[:, j]) / 2.0, axis=1)
        estimate = np.median(walsh, axis=1)
        k = _walsh_rank(n, alpha)
        low, high = (walsh[:, k - 1], walsh[:, -k]) if k >= 1 else (-math.inf, math.inf)
        batch.set(rows, estimate, low, high, np.nan, exact=True)
    nonzero = [v[v != 0] for v in batch.values]
    size = np.array([v.shape[0] for v in nonzero], dtype=np.int64)
    zero = (size == 0) & (batch.n > 0)
    batch.set(zero, batch.estimate[zero], batch.estimate[zero], batch.estimate[zero], 1.0, exact=True)
    for m in np.unique(size[size > 0]):
        rows = np.flatnonzero(size == m)
        values = np.stack([nonzero[row] for row in rows])
        tied = (np.diff(np.sort(np.abs(values), axis=1), axis=1) == 0).any(axis=1)
        for ties in (False, True):
            chosen = rows[tied == ties]
            if chosen.size == 0:
                continue
            exact = m <= (_MAX_ENUMERATED if ties else 50)
            if ties and exact:  # scipy's "auto" enumerates these too, through permutation_test: seconds per call
                batch.p[chosen] = _tied_signed_rank_p(values[tied == ties])
            elif exact:  # the exact p depends on W+ alone: computed once per value of W+
                untied = values[tied == ties]
                ranks = np.argsort(np.argsort(np.abs(untied), axis=1), axis=1) + 1
                _, first, inverse = np.unique(np.where(untied > 0, ranks, 0).sum(axis=1), return_index=True,
                                              return_inverse=True)
                batch.p[chosen] = distributions.wilcoxon_p(untied[first], exact=True)[inverse]
            else:  # the normal approximation is anti-conservative on a few tied values: it is used beyond 16 only
                batch.p[chosen] = distributions.wilcoxon_p(values[tied == ties], exact=exact)
            batch.exact[chosen] = exact
    return batch.result()


_MAX_ENUMERATED = 16  # 2^16 sign patterns: milliseconds


@functools.lru_cache(maxsize=256)
def _walsh_rank(n: int, alpha: float) -> int:
    """k of the Hodges-Lehmann interval with n values: P(W+ <= k - 1) <= alpha / 2 < P(W+ <= k)."""
    cdf = np.cumsum(distributions.signed_rank_counts(n)) / 2.0**n
    return int(np.searchsorted(cdf, alpha / 2.0, side="right"))


def _tied_signed_rank_p(nonzero: np.ndarray) -> np.ndarray:
    """Exact two-sided p of the signed-rank statistic with tied |d| (mid-ranks), for each row of ``nonzero``
    (samples of one size): every sign pattern of the ranks enumerated, p = min(1, 2 min(P(W+ <= w),
    P(W+ >= w))), as scipy's permutation method gives. Rank sums are multiples of 1/2, so exact in floats."""
    ranks = distributions.rankdata(np.abs(nonzero))
    observed = np.where(nonzero > 0, ranks, 0.0).sum(axis=1)
    n = ranks.shape[1]
    signs = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)
    tolerance = 1e-9 * ranks.sum(axis=1)
    out = np.empty(ranks.shape[0])
    for block in _blocks(ranks, n):
        null = ranks[block] @ signs.T
        lower = np.mean(null <= (observed[block] + tolerance[block])[:, None], axis=1)
        upper = np.mean(null >= (observed[block] - tolerance[block])[:, None], axis=1)
        out[block] = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return out


def sign_flip_floor(n: int, *, max_exact: int = 16, n_resamples: int = 100_000) -> float:
    """The smallest two-sided p `sign_flip_test` can give with n differences: 2 / 2^n (all of one sign),
    or its Monte-Carlo floor 1 / (n_resamples + 1) beyond ``max_exact``; 1 with n = 0."""
    if n <= 0:
        return 1.0
    return min(1.0, 2.0 / 2.0**n) if n <= max_exact else max(2.0 / 2.0**n, 1.0 / (n_resamples + 1))


@functools.lru_cache(maxsize=256)
def wilcoxon_floor(n: int) -> float:
    """The smallest two-sided p `wilcoxon_test` can give with n nonzero differences: scipy's p of n
    distinct differences of one sign (2 / 2^n while the exact distribution is used, about 0.25 for 3)."""
    if n <= 0:
        return 1.0
    return float(distributions.wilcoxon_p(np.arange(1.0, n + 1.0), exact=n <= 50))  # scipy's "auto": exact to 50


class PooledResult(NamedTuple):
    """`pooled_test`'s result, arrays over the leading axes of its input: the mean difference over jobs, its
    standard error and (1 - alpha) interval, two-sided p, Satterthwaite's degrees of freedom, the two parts of
    the variance (``var_shared``: test-set noise common to the jobs, from the bootstrap; ``var_jobs``: the
    spread between jobs) and the number of jobs."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p: np.ndarray
    low: np.ndarray
    high: np.ndarray
    var_shared: np.ndarray
    var_jobs: np.ndarray
    n: np.ndarray


def pooled_test(differences: Any, replicates: Any, *, alpha: float = 0.05,
                per_method: tuple[Any, Any] | None = None) -> PooledResult:
    """Two-level test of "no difference" between two methods, pooled over training jobs and test videos.

    ``differences`` (..., J): per training job j (a training domain and seed both methods have) the
    difference e_j of the two methods' values averaged over the job's test domains of the scope;
    ``replicates`` (..., J, B): the same differences on B shared bootstrap replicates of the test sets
    (paired: both methods on the same resampled videos). Jobs with a NaN difference are left out, and so
    are replicates on which a kept job is NaN.

    The estimate is D = mean_j e_j. Write e_j = delta + c + a_j + n_j: c the test-set noise every job shares
    (the same videos), a_j the job's training noise (variance tau^2), n_j the test-set noise of its own
    (variance s_n). Then Var D = Var c + (tau^2 + s_n) / J. The second part is what the spread between jobs
    measures: V_jobs = sum_j (e_j - D)^2 / (J (J - 1)) is unbiased for it, with J - 1 degrees of freedom.
    The first comes from the bootstrap covariance Sigma of the e_j: with V_test = 1'Sigma 1 / J^2 (the
    bootstrap variance of D) and s_n = (tr(Sigma) / J - V_test) J / (J - 1), V_shared = max(0, V_test - s_n / J)
    (exact for jobs that share their test sets equally, and 0 for jobs on test sets of their own). So
    se^2 = max(V_shared + V_jobs, V_test) (the method-of-moments between-job variance of DerSimonian and
    Laird, never below the test noise the bootstrap measures), and t = D / se is referred to Student's t
    with Satterthwaite's df = se^4 (J - 1) / max(V_jobs, s_n / J)^2 (V_shared's own df taken as infinite:
    B is large; the spread's part counted at least at the jobs' own test noise, so a spread that is small
    by chance buys no degrees of freedom): few jobs widen the test unless the shared test noise dominates.
    Systematic differences between training domains count as job noise, which makes the test conservative
    across domains. The interval is D -+ t_{df, 1 - alpha/2} se. With one job the spread cannot be measured:
    the test is then over the test videos only (se^2 = V_test, df = inf) and says nothing about retraining.

    ``per_method``: when the jobs differ by seed only (one training domain, as in the paper's protocol), the
    first method's own job values (..., J) and replicates (..., J, B) (the second's follow: they minus the
    differences). The two methods' seeds are separate training runs, so the spread is then measured within
    each method, as in Welch's two-sample test, and has up to 2 (J - 1) degrees of freedom instead of J - 1:
    with V_m = max(sum_j (x_mj - mean_m)^2 / (J (J - 1)), s_nm / J), each method's spread floored at its own
    test noise (from its own bootstrap replicates, as above), se^2 = max(V_shared + V_1 + V_2, V_test) and
    df = se^4 (J - 1) / (V_1^2 + V_2^2). A training domain's effect on both methods would not cancel within
    a method, which is why this is for jobs of one training domain only.
    """
    alpha = check_alpha(alpha)
    e = np.asarray(differences, dtype=np.float64)
    r = np.asarray(replicates, dtype=np.float64)
    if r.shape[:-1] != e.shape:
        raise BenchError(LENGTHS.format(what="replicates", expected=e.shape, got=r.shape[:-1]))
    keep = ~np.isnan(e)
    n = keep.sum(axis=-1)
    kept = r if keep.all() else np.where(keep[..., None], r, 0.0)
    valid = ~np.isnan(kept).any(axis=-2)  # (..., B): defined on every kept job
    n_valid = valid.sum(axis=-1)
    many = n > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate, var_jobs, var_test, own = _job_moments(e, r, keep, valid)
        var_shared = np.where(many, np.maximum(var_test - own, 0.0), var_test)
        if per_method is None:
            var = np.maximum(var_shared + var_jobs, var_test)  # the jobs' own test noise is known: a floor
            uncertain = np.maximum(var_jobs, own) ** 2  # the spread's share, at least its known floor
        else:
            first, first_reps = (np.asarray(x, dtype=np.float64) for x in per_method)
            if first.shape != e.shape or first_reps.shape != r.shape:
                raise BenchError(LENGTHS.format(what="per_method", expected=(e.shape, r.shape),
                                                got=(first.shape, first_reps.shape)))
            sides = [np.maximum(*_job_moments(x, reps, keep, valid)[1::2])  # max(spread, own) per method
                     for x, reps in ((first, first_reps), (first - e, first_reps - r))]
            var_jobs = sides[0] + sides[1]
            var = np.maximum(var_shared + var_jobs, var_test)
            uncertain = sides[0] ** 2 + sides[1] ** 2
        se = np.sqrt(var)
        df = np.where(uncertain > 0, var**2 * np.maximum(n - 1, 1) / uncertain, np.inf)
        t = np.where(se > 0, estimate / se, np.where(estimate == 0, 0.0, np.copysign(np.inf, estimate)))
    bad = (n == 0) | (n_valid < 2)
    p = np.where(bad, np.nan, 2.0 * distributions.t_sf(np.abs(t), df))
    half = distributions.t_ppf(1.0 - alpha / 2.0, df) * se
    nan = np.where(bad, np.nan, 1.0)
    return PooledResult(estimate * nan, se * nan, df * nan, p, (estimate - half) * nan, (estimate + half) * nan,
                        var_shared * nan, var_jobs * nan, n)


def _job_moments(values: np.ndarray, replicates: np.ndarray, keep: np.ndarray,
                 valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Over the kept jobs (``keep`` (..., J)) and valid replicates (``valid`` (..., B)): the mean over jobs,
    the spread's variance of that mean sum_j (x_j - mean)^2 / (J (J - 1)), its bootstrap variance
    V_test = 1'Sigma 1 / J^2, and the jobs' own test noise s_n / J = (tr(Sigma) / J - V_test) / (J - 1)
    (spread and own noise are 0 with one job)."""
    n = keep.sum(axis=-1)
    n_valid = valid.sum(axis=-1)
    mean = np.where(keep, values, 0.0).sum(axis=-1) / n
    if keep.all() and valid.all():  # nothing to leave out (the usual case): the masked copies would equal these
        rep = replicates
        centred = rep - rep.sum(axis=-1, keepdims=True) / n_valid[..., None, None]
    else:
        rep = np.where(keep[..., None] & valid[..., None, :], replicates, 0.0)
        rep_mean = rep.sum(axis=-1, keepdims=True) / n_valid[..., None, None]
        centred = np.where(keep[..., None] & valid[..., None, :], rep - rep_mean, 0.0)
    trace = ((centred**2).sum(axis=-1) / (n_valid[..., None] - 1)).sum(axis=-1)  # tr(Sigma)
    var_test = ((centred.sum(axis=-2) / n[..., None]) ** 2).sum(axis=-1) / (n_valid - 1)  # 1'Sigma 1 / J^2
    spread = np.where(keep, (values - mean[..., None]) ** 2, 0.0).sum(axis=-1)
    many = n > 1
    own = np.where(many, (trace / n - var_test) / np.maximum(n - 1, 1), 0.0)
    return mean, np.where(many, spread / (n * np.maximum(n - 1, 1)), 0.0), var_test, own


# ============================================================================================ corrections
def holm(p_values: Any, *, families: Any = None) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    Sorted ascending, p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), m the number of non-NaN p-values
    (the family); NaN stays NaN and does not count. ``families`` (integers, one per p-value): each family
    corrected on its own, all at once; None: one family.
    """
    p, out, rows = _family(p_values, families)
    for order, m in rows:
        out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order], axis=-1))
    return out


def benjamini_hochberg(p_values: Any, *, families: Any = None) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false-discovery-rate control), in the input order.

    Sorted ascending, p~_(i) = min_{j >= i} min(1, m p_(j) / j), m the number of non-NaN p-values.
    ``families`` as for `holm`.
    """
    p, out, rows = _family(p_values, families)
    for order, m in rows:
        scaled = m * p[order] / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1])
    return out


def _family(p_values: Any, families: Any) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, int]]]:
    """The p-values as floats, an all-NaN output of their shape, and per family size m the positions of the
    non-NaN p-values of every family with m of them, a row per family in ascending order of p (ties in
    input order): the families a correction works on (NaN stays NaN and does not count), those of one size
    corrected together as the rows of a matrix."""
    p = np.asarray(p_values, dtype=np.float64)
    family = np.zeros(p.shape, dtype=np.int64) if families is None else np.asarray(families, dtype=np.int64)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.lexsort((p[valid], family[valid]))]  # stable: ties keep their input order
    starts = np.flatnonzero(np.r_[True, family[order][1:] != family[order][:-1]]) if order.size else order
    sizes = np.diff(np.r_[starts, order.size])
    rows = [(order[starts[sizes == m][:, None] + np.arange(m)], int(m)) for m in np.unique(sizes).tolist()]
    return p, np.full(p.shape, np.nan), rows


# ============================================================================================ rank tests
class FriedmanResult(NamedTuple):
    """Friedman's test over N blocks (train -> test pairs) and k treatments (methods).

    ``mean_ranks`` (k,) with rank 1 the best; ``cd`` the Nemenyi critical difference at ``alpha``.
    """

    statistic: float
    p: float
    mean_ranks: np.ndarray
    cd: float
    n_blocks: int
    k: int


def rank_rows(values: Any, *, higher_is_better: bool) -> np.ndarray:
    """Ranks within each row (block) of ``values`` (N, k): 1 = best, ties get their average rank."""
    v = np.asarray(values, dtype=np.float64)
    return distributions.rankdata(-v if higher_is_better else v)


def friedman_test(values: Any, *, higher_is_better: bool, alpha: float = 0.05) -> FriedmanResult:
    """Friedman's chi-square test that k methods rank alike over N blocks, with the tie correction.

    chi2 = [12 / (N k (k + 1)) sum_j R_j^2 - 3 N (k + 1)] / [1 - sum (t^3 - t) / (N k (k^2 - 1))], R_j the
    rank sums, t the sizes of tied groups within blocks; p from chi-square with k - 1 degrees of freedom
    (scipy's ``friedmanchisquare``, which needs k >= 3; this works from k = 2). Blocks with a NaN are
    dropped.
    """
    alpha = check_alpha(alpha)
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v).any(axis=1)]
    n_blocks, k = v.shape
    if n_blocks == 0 or k < 2:
        return FriedmanResult(float("nan"), float("nan"), np.full(k, np.nan), float("nan"), n_blocks, k)
    ranks = rank_rows(v, higher_is_better=higher_is_better)
    rank_sums = ranks.sum(axis=0)
    chi2 = 12.0 / (n_blocks * k * (k + 1)) * np.sum(rank_sums**2) - 3.0 * n_blocks * (k + 1)
    ties = sum(float(np.sum(c**3 - c)) for c in (np.unique(row, return_counts=True)[1] for row in v))
    correction = 1.0 - ties / (n_blocks * k * (k * k - 1.0))
    statistic = chi2 / correction if correction > 0 else float("nan")
    p = float(distributions.chi2_sf(statistic, k - 1)) if np.isfinite(statistic) else float("nan")
    return FriedmanResult(float(statistic), p, ranks.mean(axis=0), nemenyi_cd(k, n_blocks, alpha=alpha),
                          n_blocks, k)


def nemenyi_cd(k: int, n_blocks: int, *, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks: CD = q_alpha sqrt(k (k + 1) / (6 N)), q_alpha the
    studentized range quantile (k groups, infinite df) over sqrt(2) (Demsar 2006, Table 5)."""
    alpha = check_alpha(alpha)
    if k < 2 or n_blocks < 1:
        return float("nan")
    q = _studentized_range_quantile(1.0 - alpha, k) / math.sqrt(2.0)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n_blocks)))


@functools.lru_cache(maxsize=64)
def _studentized_range_quantile(probability: float, k: int) -> float:
    """The studentized range quantile (k groups, infinite df): a numerical integral inside a root search, the
    same for every scope and metric of a report (one per number of methods), so computed once (scipy's
    ``studentized_range.ppf(probability, k, np.inf)`` to 5e-14 relative: `bench.distributions`)."""
    return distributions.studentized_range_ppf(probability, k)
