"""`bench.distributions` against scipy.stats itself, the independent reference: the same numbers, bit for bit
(``assert_array_equal``), over wide random and edge inputs; the studentized range quantile within 5e-14
relative. And the reason the module exists: neither ``import bench.report`` nor the functions here import
scipy.stats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from bench import distributions as D
from bench import stats as S

ROOT = Path(__file__).resolve().parent.parent
EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-8, -1e-8, 0.5, 1.0, -1.0, 2.0,
                  8.0, -8.0, 37.0, -37.0, 38.5, -38.5, 40.0, -40.0, 1e3, -1e3, 1e300, -1e300])
DFS = np.concatenate([[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 29.5, 30.0, 100.0, 1e3, 1e4, 1e5, 1e6,
                       np.inf, np.nan, 0.0, -1.0, -np.inf],
                      np.arange(1.0, 60.0), np.geomspace(1.0, 1e6, 40)])


def assert_bits(ours: object, theirs: object) -> None:
    """The same floats: equal values, NaN where NaN, and the same sign of zero (-0.0 prints apart from 0.0)."""
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    np.testing.assert_array_equal(a, b, strict=True)
    number = ~np.isnan(b)
    np.testing.assert_array_equal(np.signbit(a[number]), np.signbit(b[number]))


def _xs(rng: np.random.Generator) -> np.ndarray:
    """Statistics of every size: the edges, and random values from 1e-6 to 1e3 of either sign."""
    wide = rng.standard_normal(2000) * np.exp(rng.uniform(np.log(1e-6), np.log(1e3), 2000))
    return np.concatenate([EDGES, wide, rng.uniform(-6.0, 6.0, 1000)])


def _qs(rng: np.random.Generator) -> np.ndarray:
    """Probabilities: the edges (0, 1, outside, NaN, the tails to 1e-300 and 1 - 2^-53) and random ones."""
    tails = np.geomspace(1e-300, 0.5, 200)
    return np.concatenate([[np.nan, 0.0, 1.0, -0.0, -0.1, 1.1, np.inf, -np.inf, 0.5, 1.0 - 2.0**-53, 2.0**-1074],
                           tails, 1.0 - tails, rng.uniform(0.0, 1.0, 2000), [0.8, 0.9, 0.95, 0.975, 0.99, 0.999]])


# ============================================================================================ continuous
def test_norm_sf_and_ppf_are_scipys_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    x, q = _xs(rng), _qs(rng)
    assert_bits(D.norm_sf(x), sps.norm.sf(x))
    assert_bits(D.norm_ppf(q), sps.norm.ppf(q))
    for value in (0.3, -2.5, np.inf, np.nan):  # scalars stay scalars
        assert np.ndim(D.norm_sf(value)) == 0
        assert_bits(D.norm_sf(value), sps.norm.sf(value))
    assert D.norm_ppf(0.975) == sps.norm.ppf(0.975) and np.ndim(D.norm_ppf(0.975)) == 0
    assert str(D.norm_ppf(0.5)) == str(sps.norm.ppf(0.5)) == "0.0"  # not -0.0


def test_t_sf_and_ppf_are_scipys_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    x = _xs(rng)[:, None]
    q = _qs(rng)[:, None]
    df = DFS[None, :]
    assert_bits(D.t_sf(x, df), sps.t.sf(x, df))
    assert_bits(D.t_ppf(q, df), sps.t.ppf(q, df))
    # paired (not crossed) random arguments, as the report passes them: one df per test
    x, q = rng.standard_normal(3000) * 5.0, rng.uniform(0.0, 1.0, 3000)
    df = np.exp(rng.uniform(0.0, np.log(1e6), 3000))
    assert_bits(D.t_sf(np.abs(x), df), sps.t.sf(np.abs(x), df))
    assert_bits(D.t_ppf(q, df), sps.t.ppf(q, df))
    assert_bits(D.t_ppf(0.975, df), sps.t.ppf(0.975, df))
    for args in ((0.975, 3), (0.8, np.inf), (0.5, 7.0), (0.975, np.nan)):
        assert_bits(D.t_ppf(*args), sps.t.ppf(*args))
        assert_bits(D.t_sf(*args), sps.t.sf(*args))
        assert np.ndim(D.t_ppf(*args)) == 0


def test_chi2_sf_is_scipys_bit_for_bit() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([_xs(rng), np.abs(_xs(rng)) * 100.0])[:, None]
    df = DFS[None, :]
    assert_bits(D.chi2_sf(x, df), sps.chi2.sf(x, df))
    for statistic, dof in ((6.5, 2), (0.0, 1), (1e4, 59), (3.0, 1)):
        assert D.chi2_sf(statistic, dof) == sps.chi2.sf(statistic, dof)


# ============================================================================================ ranks
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 1), (50, 2), (40, 17), (5, 300), (4, 3, 9)])
def test_rankdata_is_scipys_bit_for_bit(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 4, shape).astype(float),  # many ties
                   rng.standard_normal(shape), rng.integers(-3, 3, shape) * 0.0,  # 0.0 and -0.0 tie
                   np.round(rng.standard_normal(shape), 1)):
        assert_bits(D.rankdata(values), sps.rankdata(values, axis=-1))
        assert_bits(D.rankdata(-values), sps.rankdata(-values, axis=-1))
    integers = rng.integers(0, 5, shape)
    assert_bits(D.rankdata(integers), sps.rankdata(integers, axis=-1))


def test_rankdata_nan_inf_and_empty() -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 5, (30, 8)).astype(float)
    values[rng.uniform(size=values.shape) < 0.05] = np.nan  # a row with a NaN is NaN throughout
    values[rng.uniform(size=values.shape) < 0.05] = np.inf
    values[rng.uniform(size=values.shape) < 0.05] = -np.inf
    assert_bits(D.rankdata(values), sps.rankdata(values, axis=-1))
    assert np.isnan(D.rankdata(values)).any() and not np.isnan(D.rankdata(values)).all()
    for empty in (np.empty((0,)), np.empty((3, 0)), np.empty((0, 4))):
        assert D.rankdata(empty).shape == sps.rankdata(empty, axis=-1).shape


# ============================================================================================ Wilcoxon
def _signed_ranks(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """Rows of n distinct magnitudes with random signs (any W+)."""
    magnitude = np.argsort(rng.uniform(size=(rows, n)), axis=1) + 1.0 + rng.uniform(0.0, 0.5, (rows, 1))
    return magnitude * rng.choice([-1.0, 1.0], size=(rows, n), p=None) * rng.uniform(0.5, 2.0, (rows, 1))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 31, 40, 49, 50])
def test_wilcoxon_exact_is_scipys_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    rows = _signed_ranks(rng, 300, n)
    rows[0], rows[1] = np.arange(1.0, n + 1.0), -np.arange(1.0, n + 1.0)  # the floors: all of one sign
    assert_bits(D.wilcoxon_p(rows, exact=True),
                                  sps.wilcoxon(rows, method="exact", axis=-1).pvalue)


def test_wilcoxon_exact_every_statistic() -> None:
    """Every value of W+ for n = 1 .. 12 (every subset of the ranks positive), and with zeros, which are dropped."""
    for n in range(1, 13):
        signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        rows = signs * np.arange(1.0, n + 1.0)
        assert_bits(D.wilcoxon_p(rows, exact=True),
                                      sps.wilcoxon(rows, method="exact", axis=-1).pvalue)
    rng = np.random.default_rng(5)
    rows = _signed_ranks(rng, 200, 12)
    rows[rng.uniform(size=rows.shape) < 0.2] = 0.0
    for row in rows:  # one call per row: scipy's exact null is per number of nonzero values
        assert D.wilcoxon_p(row, exact=True) == sps.wilcoxon(row, method="exact").pvalue


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scipy's 0 / 0: NaN
@pytest.mark.parametrize("n", [1, 2, 5, 16, 17, 30, 51, 80, 150, 400])
def test_wilcoxon_asymptotic_is_scipys_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    for values in (rng.standard_normal((200, n)),  # no ties
                   np.round(rng.standard_normal((200, n)), 1),  # ties, and zeros (dropped)
                   rng.integers(-3, 4, (200, n)).astype(float),  # heavy ties, many zeros
                   _signed_ranks(rng, 200, n) + rng.normal(3.0, 0.1, (200, 1))):  # one-sided: extreme z
        assert_bits(D.wilcoxon_p(values, exact=False),
                                      sps.wilcoxon(values, method="asymptotic", axis=-1).pvalue)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_wilcoxon_nan_and_all_zero_rows() -> None:
    values = np.array([[1.0, -2.0, np.nan, 4.0], [0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 0.0]])
    for exact in (True, False):
        ours = D.wilcoxon_p(values, exact=exact)
        theirs = sps.wilcoxon(values, method="exact" if exact else "asymptotic", axis=-1).pvalue
        assert_bits(ours, theirs)


def test_wilcoxon_floor_is_scipys() -> None:
    S.wilcoxon_floor.cache_clear()
    for n in range(1, 90):
        assert S.wilcoxon_floor(n) == float(sps.wilcoxon(np.arange(1.0, n + 1.0)).pvalue), n


def test_signed_rank_counts_are_scipys_null() -> None:
    """The exact null counts over 2^n are scipy's exact distribution of W+ (its private pmf), bit for bit."""
    from scipy.stats._hypotests import _get_wilcoxon_distr

    for n in range(1, 51):
        assert_bits(D.signed_rank_counts(n) / 2.0**n, _get_wilcoxon_distr(n))


# ============================================================================================ studentized range
PROBABILITIES = [0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999]


@pytest.mark.parametrize("k", [*range(2, 21), 25, 30, 37, 45, 50, 59, 60])
def test_studentized_range_quantile_within_5e_14_of_scipy(k: int) -> None:
    """The quantile from first principles is scipy's to 5e-14 relative (measured: within 2.5e-14, scipy's own
    error; the grid's is about one ulp), and the inverse of the cdf and of the survival function."""
    ours = np.array([D.studentized_range_ppf(p, k) for p in PROBABILITIES])
    theirs = np.array([sps.studentized_range.ppf(p, k, np.inf) for p in PROBABILITIES])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0.0)
    assert np.all(np.abs(ours - theirs) <= 5e-14 * theirs)
    for p, q in zip(PROBABILITIES, ours, strict=True):  # the quantile is the cdf's inverse, to rounding
        assert D.studentized_range_cdf(q, k) == pytest.approx(p, rel=1e-14, abs=0.0)
        assert D.studentized_range_sf(q, k) == pytest.approx(1.0 - p, rel=1e-12, abs=0.0)


def test_studentized_range_two_groups_is_a_folded_normal() -> None:
    """With k = 2 the range is |Z1 - Z2| = sqrt(2) |Z|: P(R <= q) = 2 Phi(q / sqrt 2) - 1."""
    for q in (0.1, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0):
        assert D.studentized_range_cdf(q, 2) == pytest.approx(2.0 * sps.norm.cdf(q / np.sqrt(2.0)) - 1.0,
                                                              rel=1e-14, abs=1e-16)
        assert D.studentized_range_sf(q, 2) == pytest.approx(2.0 * sps.norm.sf(q / np.sqrt(2.0)), rel=1e-13)


def test_studentized_range_edges() -> None:
    ppf = D.studentized_range_ppf
    assert ppf(0.0, 5) == 0.0 and ppf(1.0, 5) == np.inf
    assert np.isnan(ppf(1.5, 5)) and np.isnan(ppf(0.9, 1)) and np.isnan(ppf(np.nan, 5))
    assert str(ppf(0.0, 5)) == str(sps.studentized_range.ppf(0.0, 5, np.inf))
    assert D.studentized_range_cdf(0.0, 4) == 0.0 and D.studentized_range_cdf(np.inf, 4) == 1.0
    assert D.studentized_range_sf(0.0, 4) == 1.0 and D.studentized_range_sf(np.inf, 4) == 0.0
    for p in (0.05, 0.3, 0.5):  # the lower half too (solved on the cdf)
        reference = sps.studentized_range.ppf(p, 6, np.inf)
        assert D.studentized_range_ppf(p, 6) == pytest.approx(reference, rel=1e-12)


# ============================================================================================ imports
def test_the_report_does_not_import_scipy_stats() -> None:
    """``import bench.report`` (and these functions) leave scipy.stats unimported: it costs about 0.4-0.5 s."""
    code = ("import sys, bench.report, bench.distributions as D, bench.stats as S\n"
            "D.t_ppf(0.975, 3.0), D.t_sf(2.0, 3.0), D.norm_sf(1.0), D.norm_ppf(0.9), D.chi2_sf(3.0, 2)\n"
            "D.wilcoxon_p([[1.0, -2.0, 3.0]], exact=True), D.wilcoxon_p([[1.0, -2.0, 2.0]], exact=False)\n"
            "S.rank_rows([[1.0, 2.0], [2.0, 2.0]], higher_is_better=True), S.nemenyi_cd(5, 10)\n"
            "D.studentized_range_ppf(0.9, 7)\n"
            "print('scipy.stats' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": ""})
    assert done.stdout.strip() == "False", done.stderr
