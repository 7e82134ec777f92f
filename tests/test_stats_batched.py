"""The batched tests of bench.stats (`wilcoxon_tests`, `sign_flip_tests`, `delong_contrasts`) and the
bootstrap interval's quantiles, which the report runs tens of thousands of times, against references
sample by sample: scipy's Wilcoxon p-values, brute-force enumeration of sign patterns, the normal
distribution by hand and numpy's nanquantile. Each batch mixes sample sizes, ties, zeros and NaNs in a
shuffled order, so a result filed under the wrong sample fails too."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import bootstrap as B
from bench import stats as S


def patterns(n: int) -> np.ndarray:
    """Every 0/1 pattern of length n, one per row."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64).reshape(-1, n)


def brute_signed_rank(d: np.ndarray) -> tuple[float, np.ndarray]:
    """Two-sided p of the signed-rank statistic over the nonzero differences (mid-ranks, every sign pattern
    enumerated) and the null counts of W+ for n untied ranks 1..n (all d, for the Hodges-Lehmann interval)."""
    nonzero = d[d != 0]
    ranks = sps.rankdata(np.abs(nonzero))
    null = patterns(nonzero.size) @ ranks
    observed = ranks[nonzero > 0].sum()
    p = min(1.0, 2 * min(np.mean(null <= observed + 1e-9), np.mean(null >= observed - 1e-9)))
    untied = patterns(d.size) @ np.arange(1.0, d.size + 1)
    return p, np.bincount(untied.astype(int), minlength=d.size * (d.size + 1) // 2 + 1)


def shuffled(samples: list[np.ndarray], seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(samples))
    return [samples[i] for i in order]


def test_batched_wilcoxon_p_equals_scipy_sample_by_sample() -> None:
    """Untied samples of 1..60 values (exact up to 50, normal beyond), some with zeros and NaNs, many of the
    small ones with equal statistics (scipy is asked once per statistic): every p is exactly scipy's on the
    sample's nonzero values, whatever else is in the batch."""
    rng = np.random.default_rng(1)
    samples = []
    for n in range(1, 61):
        for _ in range(30 if n <= 6 else 3):
            d = rng.normal(size=n)
            if rng.random() < 0.3:
                d[rng.integers(0, n)] = 0.0
            if rng.random() < 0.2:
                d = np.append(d, np.nan)
            samples.append(d)
    samples = shuffled(samples, 2)
    result = S.wilcoxon_tests(samples)
    for i, d in enumerate(samples):
        nonzero = d[(d != 0) & ~np.isnan(d)]
        want = 1.0 if nonzero.size == 0 else sps.wilcoxon(nonzero).pvalue
        assert result.p[i] == want, (i, d)
        assert result.n[i] == np.count_nonzero(~np.isnan(d))
        assert result.exact[i] == (nonzero.size <= 50)


def test_batched_wilcoxon_with_ties_equals_brute_force() -> None:
    """Tied samples of 2..12 values (integers, so ties and zeros are common): p by enumerating every sign
    pattern of the mid-ranks; the Hodges-Lehmann estimate and its interval from the Walsh averages and the
    enumerated null of W+; beyond 16 tied values the normal approximation, as scipy gives it."""
    rng = np.random.default_rng(3)
    samples = [rng.integers(-4, 6, size=n).astype(np.float64) for n in range(2, 13) for _ in range(4)]
    samples += [rng.integers(-9, 12, size=n).astype(np.float64) for n in (20, 30)]
    samples = shuffled(samples, 4)
    result = S.wilcoxon_tests(samples, alpha=0.1)
    for i, d in enumerate(samples):
        walsh = np.sort([(d[a] + d[b]) / 2 for a in range(d.size) for b in range(a, d.size)])
        assert result.estimate[i] == pytest.approx(np.median(walsh), rel=1e-12, abs=1e-15)
        if np.all(d == 0):
            assert result.p[i] == 1.0
            continue
        if d.size > 16:
            assert not result.exact[i]
            assert result.p[i] == pytest.approx(sps.wilcoxon(d[d != 0], method="asymptotic").pvalue, rel=1e-12)
            continue
        p, null = brute_signed_rank(d)
        assert result.p[i] == pytest.approx(p, rel=1e-12), (i, d)
        k = int(np.sum(np.cumsum(null) / 2.0**d.size <= 0.05))  # P(W+ <= k - 1) <= alpha / 2
        low, high = (walsh[k - 1], walsh[-k]) if k >= 1 else (-math.inf, math.inf)
        assert (result.low[i], result.high[i]) == pytest.approx((low, high), rel=1e-12, abs=1e-15)
    # alpha / 2 = 1/16 = P(W+ = 0) with four values exactly: k = 1, the extreme Walsh averages (1 and 4)
    edge = S.wilcoxon_tests([np.arange(1.0, 5.0), np.arange(1.0, 4.0)], alpha=0.125)
    assert edge.low.tolist() == [1.0, -math.inf] and edge.high.tolist() == [4.0, math.inf]


def test_batched_sign_flip_equals_brute_force() -> None:
    """1..10 seeds: p, mean and Hartigan's interval by enumerating every sign pattern and subset; samples
    past ``max_exact`` draw their Monte-Carlo patterns from the seed each, as they would alone."""
    rng = np.random.default_rng(5)
    samples = [rng.normal(0.3, 1.0, size=n) for n in range(1, 11) for _ in range(3)] + [np.array([np.nan])]
    samples = shuffled(samples, 6)
    result = S.sign_flip_tests(samples, alpha=0.2)
    for i, d in enumerate(samples):
        if np.isnan(d).all():
            assert result.n[i] == 0 and np.isnan(result.p[i])
            continue
        signs = 1.0 - 2.0 * patterns(d.size)
        p = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-9)
        subsets = [list(s) for r in range(1, d.size + 1) for s in itertools.combinations(range(d.size), r)]
        means = np.sort([d[s].mean() for s in subsets])
        k = math.floor(2**d.size * 0.2 / 2)
        low, high = (means[k - 1], means[-k]) if k >= 1 else (-math.inf, math.inf)
        assert result.p[i] == pytest.approx(p, rel=1e-12) and result.exact[i]
        assert (result.estimate[i], result.low[i], result.high[i]) == pytest.approx((d.mean(), low, high), rel=1e-12)
    big = [rng.normal(size=6), rng.normal(size=6) + 1.0]
    together = S.sign_flip_tests(big, max_exact=4, n_resamples=2000)
    alone = [S.sign_flip_test(d, max_exact=4, n_resamples=2000) for d in big]
    assert together.p.tolist() == [a.p for a in alone] and not together.exact.any()


@pytest.mark.parametrize("alpha", [0.5, 0.9])
def test_sign_flip_of_one_or_two_seeds_equals_enumeration_to_the_last_digit(alpha: float) -> None:
    """One or two seeds (the default grid's case, tested all at once as one matrix product): p, mean and
    Hartigan's interval (finite with two seeds, alpha large enough for k >= 1) equal the enumeration of every
    sign pattern and subset bit for bit, zero and negative-zero differences and ties included."""
    rng = np.random.default_rng(9)
    samples = [rng.normal(size=n).round(int(rng.integers(0, 3))) for n in (1, 2) for _ in range(40)]
    samples += [np.array([0.0]), np.array([-0.0]), np.array([-0.0, 0.0]), np.array([1.5, -1.5]), np.array([2.0, 2.0])]
    result = S.sign_flip_tests(samples, alpha=alpha)
    for i, d in enumerate(samples):
        sums = [sum(sign * v for sign, v in zip(signs, d, strict=True)) for signs in itertools.product((1.0, -1.0),
                                                                                                  repeat=d.size)]
        tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
        p = np.mean([abs(x) >= abs(d.sum()) - tol for x in sums])
        means = np.sort([d[list(s)].sum() / len(s) for r in range(1, d.size + 1)
                         for s in itertools.combinations(range(d.size), r)])
        k = math.floor(2**d.size * alpha / 2)  # 0 with one seed: an infinite interval
        want = (p, d.mean(), *((means[k - 1], means[-k]) if k >= 1 else (-math.inf, math.inf)))
        assert (result.p[i], result.estimate[i], result.low[i], result.high[i]) == want, (d, want)


def test_delong_contrasts_by_hand() -> None:
    """z = estimate / se, p = 2 (1 - Phi(|z|)), estimate -+ z_{1 - alpha/2} se; zero variance: p = 1 for a zero
    difference (identical curves), 0 otherwise; the batch equals one contrast at a time."""
    estimate = np.array([0.05, -0.02, 0.0, 0.03, 1e-14, 0.01])
    variance = np.array([4e-4, 1e-4, 0.0, 0.0, 1e-30, np.nan])
    result = S.delong_contrasts(estimate, variance, alpha=0.1)
    se = np.sqrt(variance[:2])
    assert result.p[:2] == pytest.approx(2 * sps.norm.sf(np.abs(estimate[:2] / se)), rel=1e-12)
    assert result.low[:2] == pytest.approx(estimate[:2] - sps.norm.ppf(0.95) * se, rel=1e-12)
    assert result.high[:2] == pytest.approx(estimate[:2] + sps.norm.ppf(0.95) * se, rel=1e-12)
    assert result.p[2] == 1.0 and result.p[3] == 0.0 and result.p[4] == 1.0 and result.estimate[4] == 0.0
    assert np.isnan(result.p[5]) and np.isnan(result.se[5])
    auc, cov = np.array([0.8, 0.7]), np.array([[4e-4, 1e-4], [1e-4, 3e-4]])
    one = S.delong_contrast(auc, cov, [1.0, -1.0])
    assert (one.estimate, one.se**2) == pytest.approx((0.1, 4e-4 + 3e-4 - 2e-4), rel=1e-12)
    assert one.p == pytest.approx(2 * sps.norm.sf(0.1 / math.sqrt(5e-4)), rel=1e-12)


@pytest.mark.parametrize(("axis", "alpha", "n_boot"), [(-1, 0.1, 40), (0, 0.1, 40), (1, 0.1, 40), (-1, 0.05, 1000)])
def test_bootstrap_interval_equals_nanquantile_slice_by_slice(axis: int, alpha: float, n_boot: int) -> None:
    """The intervals of many slices at once, some with NaN replicates and one all NaN, are numpy's
    nanquantile of each slice to the last digit (the quantiles fall between order statistics on both sides of
    the midpoint, where numpy interpolates from either end)."""
    rng = np.random.default_rng(7)
    r = rng.normal(size=(6, 5, n_boot)) * np.logspace(-3, 3, 5)[:, None]
    r[3] = r[3].round(1)  # tied replicates too
    r[0, 1, ::3] = np.nan
    r[2, 4] = np.nan
    r = np.moveaxis(r, -1, axis)
    low, high = B.bootstrap_interval(r, alpha=alpha, method="percentile", axis=axis)
    slices = np.moveaxis(r, axis, -1)
    for idx in np.ndindex(slices.shape[:-1]):
        values = slices[idx][~np.isnan(slices[idx])]
        want = np.quantile(values, [alpha / 2, 1 - alpha / 2]) if values.size else (np.nan, np.nan)
        assert np.array_equal([low[idx], high[idx]], want, equal_nan=True), idx


def test_corrections_of_many_families_at_once_equal_one_family_at_a_time() -> None:
    """Holm and Benjamini-Hochberg over interleaved families of different sizes, with ties, NaN and a family
    of NaN only, equal (bit for bit) each family corrected alone; the family sizes the report prints."""
    rng = np.random.default_rng(11)
    p = rng.random(600) ** 3
    p[::7] = np.round(p[::7], 1)  # ties
    p[rng.random(600) < 0.1] = np.nan
    families = rng.integers(0, 40, 600)
    p[families == 3] = np.nan
    for correct in (S.holm, S.benjamini_hochberg):
        together = correct(p, families=families)
        for family in np.unique(families):
            alone = correct(p[families == family])
            np.testing.assert_array_equal(together[families == family], alone, strict=True)
    assert np.isnan(S.holm(p, families=families)[families == 3]).all()


@pytest.mark.parametrize("n_boot", [1, 2, 7, 64, 1000])
def test_interval_and_p_value_of_one_sort_equal_the_two_functions(n_boot: int) -> None:
    """The pair level's interval and p-value from one sort (the counts by binary search) are
    `bootstrap_interval`'s and `bootstrap_p_value`'s to the last digit: ties, replicates equal to the
    reference 2 * estimate, NaN replicates, an all-NaN slice, a NaN estimate, references beyond every
    replicate on both sides."""
    rng = np.random.default_rng(n_boot)
    r = rng.normal(size=(40, n_boot)).round(1)  # many ties
    estimate = rng.normal(size=40).round(1) / 2.0
    r[0] = 2.0 * estimate[0]  # every replicate at the reference
    r[1, ::2] = 2.0 * estimate[1]
    r[2, ::3] = np.nan
    r[3] = np.nan
    estimate[4] = np.nan
    estimate[5], estimate[6] = 1e6, -1e6
    low, high, p = B.interval_and_p_value(r, estimate=estimate, alpha=0.05)
    want_low, want_high = B.bootstrap_interval(r, estimate=estimate, alpha=0.05)
    want_p = B.bootstrap_p_value(r, estimate=estimate)
    for got, want in ((low, want_low), (high, want_high), (p, want_p)):
        assert np.array_equal(got, want, equal_nan=True)
    assert np.isfinite(p[:2]).all() and np.isnan(p[3:5]).all()
