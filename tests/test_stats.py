"""Tests of bench.stats against references: pROC's published DeLong results, brute force, scipy, statsmodels,
simulations with a known truth, and hand-worked values."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from bench import bootstrap as B
from bench import distributions as D
from bench import replicates as RP
from bench import stats as S
from bench.errors import BenchError
from bench.metrics import compute_metrics, fairness_gaps

FIXTURES = Path(__file__).parent / "fixtures"


# ------------------------------------------------------------------------------------------ helpers
def asah() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "asah.csv", comment="#")


def clustered_predictions(n_videos: int = 240, frames: int = 4, seed: int = 0, ties: bool = True) -> pd.DataFrame:
    """Videos with one label and one group each, frames sharing a video effect; some unknown races."""
    rng = np.random.default_rng(seed)
    video = np.repeat(np.arange(n_videos), frames)
    label = (rng.random(n_videos) < 0.6).astype(int)[video]
    gender = rng.integers(0, 2, n_videos)[video]
    race = rng.integers(0, 4, n_videos)[video]
    race[rng.random(video.size) < 0.02] = -1
    score = 1 / (1 + np.exp(-(1.6 * label - 0.8 + rng.normal(0, 0.7, n_videos)[video] + rng.normal(0, 1, video.size))))
    if ties:
        score = score.round(2)
    return pd.DataFrame({"label": label, "score": score, "video": [f"v{v}" for v in video],
                         "identity": (np.arange(n_videos) // 3)[video], "gender": gender, "race": race,
                         "intersection": np.where(race >= 0, gender * 4 + race, -1)})


def brute_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) by explicit pairwise comparisons: AUCs and S10 / m + S01 / n."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (k, m, n)
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    auc = v10.mean(axis=1)
    return auc, np.cov(v10) / pos.shape[1] + np.cov(v01) / neg.shape[1]


# ------------------------------------------------------------------------------------------ DeLong
@pytest.mark.parametrize(("a", "b", "z", "p", "low", "high"), [
    # pROC 1.18 roc.test(..., method="delong", paired=TRUE) on aSAH, outcome Poor = case (its test suite values)
    ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, 0.0104061769564846, 0.174214419249478),
    ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, 0.0634011709339876, 0.3600405634833566),
    ("ndka", "s100b", -1.39077002573558, 0.164295175223054, -0.2876917446341914, 0.0488706064228094),
])
def test_delong_reproduces_proc_on_asah(a: str, b: str, z: float, p: float, low: float, high: float) -> None:
    data = asah()
    y = (data["outcome"] == "Poor").to_numpy().astype(int)
    result = S.delong_test(y, data[a], data[b])
    assert result.z == pytest.approx(z, rel=1e-10)
    assert result.p == pytest.approx(p, rel=1e-10)
    assert (result.low, result.high) == pytest.approx((low, high), rel=1e-10)


def test_delong_aucs_and_variances_reproduce_proc() -> None:
    data = asah()
    y = (data["outcome"] == "Poor").to_numpy().astype(int)
    parts = S.delong_parts(y, np.vstack([data["wfns"], data["ndka"]]))
    assert parts.auc == pytest.approx([0.823678861788618, 0.611957994579946], rel=1e-12)
    assert np.diag(S.delong_covariance(parts)) == pytest.approx([0.00146991470882363, 0.0031908105493913], rel=1e-10)


def test_delong_equals_brute_force_with_ties() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    scores = np.vstack([(y + rng.normal(0, 1, 150)).round(1), (0.5 * y + rng.normal(0, 1, 150)).round(1),
                        rng.integers(0, 3, 150).astype(float)])  # coarse: many ties
    auc, cov = brute_delong(y, scores)
    parts = S.delong_parts(y, scores)
    assert parts.auc == pytest.approx(auc, abs=1e-12)
    assert S.delong_covariance(parts) == pytest.approx(cov, abs=1e-12)
    # one sample per cluster: the clustered variance is DeLong's exactly
    clustered = S.delong_parts(y, scores, clusters=np.arange(150)[::-1])
    assert S.delong_covariance(clustered) == pytest.approx(cov, abs=1e-12)


def test_delong_parts_use_scipys_mid_ranks_to_the_last_digit() -> None:
    """The placements come from one sort per classifier, not scipy's three rankings: the same numbers bit for
    bit (coarse scores with many ties, several classifiers, clusters of several samples; a NaN score
    propagates as scipy's ranks do)."""
    rng = np.random.default_rng(4)
    for trial in range(60):
        n = int(rng.integers(4, 400))
        y = rng.integers(0, 2, n)
        y[:2] = (0, 1)
        scores = rng.random((int(rng.integers(1, 4)), n)).round(int(rng.integers(0, 4)))
        clusters = rng.integers(0, max(2, n // 3), n)
        fake, real = y == 1, y == 0
        tz, tx, ty = (sps.rankdata(v, axis=1) for v in (scores, scores[:, fake], scores[:, real]))
        v10, v01 = (tz[:, fake] - tx) / real.sum(), 1.0 - (tz[:, real] - ty) / fake.sum()
        auc = v10.mean(axis=1)
        codes = pd.factorize(clusters)[0]
        parts = S.delong_parts(y, scores, clusters=clusters)
        assert np.array_equal(parts.auc, auc), trial
        for got, placements, members in ((parts.fake, v10, fake), (parts.real, v01, real)):
            want = np.stack([np.bincount(codes[members], weights=row - a, minlength=codes.max() + 1)
                             for row, a in zip(placements, auc, strict=True)])
            assert np.array_equal(got, want), trial
        assert (parts.c_fake, parts.c_real) == (len(set(codes[fake])), len(set(codes[real])))
    scores[0, 0] = np.nan
    assert np.isnan(S.delong_parts(y, scores).auc[0])


def test_identical_curves_give_p_one() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    result = S.delong_test(y, s, s)
    assert (result.estimate, result.se, result.z, result.p) == (0.0, 0.0, 0.0, 1.0)


def test_delong_variance_agrees_with_bootstrap_on_large_samples() -> None:
    """Two correlated scores on 6,000 independent samples: DeLong's variance of AUC_a - AUC_b against the
    bootstrap variance of the same difference (2,000 paired resamples) agree within 10%."""
    rng = np.random.default_rng(7)
    n = 6000
    y = (rng.random(n) < 0.4).astype(int)
    shared = rng.normal(0, 1, n)
    a = 1.0 * y + shared + rng.normal(0, 0.8, n)
    b = 0.8 * y + shared + rng.normal(0, 1.0, n)
    delong = S.delong_test(y, a, b)
    boot = B.cluster_bootstrap(np.arange(n), strata=y, n_boot=2000, seed=3)
    result = B.paired_bootstrap(lambda w: RP.weighted_auc(y, a, w), lambda w: RP.weighted_auc(y, b, w), boot)
    assert result.estimate == pytest.approx(delong.estimate, abs=1e-12)
    assert np.var(result.replicates, ddof=1) == pytest.approx(delong.se**2, rel=0.10)


def test_clustered_delong_variance_agrees_with_cluster_bootstrap() -> None:
    """Frames of a video share a random effect, so frames are not independent: the clustered (Obuchowski)
    variance agrees with the video bootstrap within 10%, while DeLong's frame-level variance is far too small."""
    rng = np.random.default_rng(11)
    n_videos, frames = 1500, 8
    video = np.repeat(np.arange(n_videos), frames)
    y = (rng.random(n_videos) < 0.5).astype(int)[video]
    effect_a, effect_b = rng.normal(0, 1.0, (2, n_videos))[:, video]  # each method errs on whole videos
    a = y + effect_a + rng.normal(0, 0.5, video.size)
    b = 0.7 * y + 0.6 * effect_a + 0.8 * effect_b + rng.normal(0, 0.7, video.size)
    clustered = S.delong_test(y, a, b, clusters=video)
    naive = S.delong_test(y, a, b)
    boot = B.cluster_bootstrap(video, strata=y, n_boot=2000, seed=5)
    result = B.paired_bootstrap(lambda w: RP.weighted_auc(y, a, w), lambda w: RP.weighted_auc(y, b, w), boot)
    boot_var = np.var(result.replicates, ddof=1)
    assert boot_var == pytest.approx(clustered.se**2, rel=0.10)
    assert naive.se**2 < 0.6 * boot_var


# ------------------------------------------------------------------------------------------ bootstrap
def test_cluster_bootstrap_keeps_every_stratum_and_is_reproducible() -> None:
    clusters = np.repeat(np.arange(10), 3)  # 10 clusters of 3 samples
    strata = np.repeat([0, 0, 0, 1, 1, 1, 1, 2, 2, 2], 3)
    strata[-1] = 5  # cluster 9 mixes strata 2 and 5: it goes to a stratum of its own
    boot = B.cluster_bootstrap(clusters, strata=strata, n_boot=500, seed=1)
    assert boot.counts.shape == (500, 10)
    assert (boot.counts[:, :3].sum(axis=1) == 3).all()
    assert (boot.counts[:, 3:7].sum(axis=1) == 4).all()
    assert (boot.counts[:, 7:9].sum(axis=1) == 2).all()
    assert (boot.counts[:, 9] == 1).all()  # the lone mixed cluster is always drawn once
    again = B.cluster_bootstrap(clusters, strata=strata, n_boot=500, seed=1)
    assert np.array_equal(boot.counts, again.counts)
    assert not np.array_equal(boot.counts, B.cluster_bootstrap(clusters, strata=strata, n_boot=500, seed=2).counts)
    # weights and indices describe the same resample; each cluster is drawn about once on average
    idx = boot.indices(4)
    assert np.array_equal(np.bincount(idx, minlength=30), boot.weights(slice(4, 5))[0])
    assert boot.counts[:, :7].mean() == pytest.approx(1.0, abs=0.05)


def test_interval_and_p_value_by_hand() -> None:
    # replicates 1..99: quantiles at 2.5% and 97.5% are 3.45 and 96.55 (linear interpolation)
    r = np.arange(1.0, 100.0)
    low, high = B.bootstrap_interval(r, alpha=0.05, method="percentile")
    assert (low, high) == pytest.approx((3.45, 96.55))
    # basic interval around the estimate 40: 2 * 40 - (96.55, 3.45)
    assert B.bootstrap_interval(r, estimate=40.0, alpha=0.05) == pytest.approx((-16.55, 76.55))
    # percentile p of "= 0": no replicate <= 0 -> 2 * (0 + 1) / 100
    assert B.bootstrap_p_value(r, method="percentile") == pytest.approx(0.02)
    # basic p around the estimate 40: reference 2 * 40 = 80, 20 replicates >= 80 -> 2 * (20 + 1) / 100
    assert B.bootstrap_p_value(r, estimate=40.0) == pytest.approx(0.42)
    assert np.isnan(B.bootstrap_p_value(np.full(5, np.nan), estimate=1.0))
    with pytest.raises(BenchError, match="needs the estimate"):
        B.bootstrap_interval(r)


def test_nan_quantiles_equal_numpys_slice_by_slice() -> None:
    """`nan_quantiles` (every slice at once) gives np.nanquantile's numbers bit for bit: slices of 1 to 40
    values, ties, NaNs from none to all, quantiles 0, 1 and in between, along a middle axis too."""
    rng = np.random.default_rng(7)
    for trial in range(300):
        values = rng.normal(size=(3, int(rng.integers(1, 40)), 2)) * rng.choice([1e-3, 1.0, 100.0])
        if trial % 3 == 0:
            values = np.round(values, 1)  # ties
        values[rng.random(values.shape) < rng.choice([0.0, 0.3, 0.9, 1.0])] = np.nan
        qs = (0.025, 0.975, 0.0, 1.0, float(rng.random()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN, as nan_quantiles says
            expected = np.nanquantile(values, qs, axis=1)
        for want, got in zip(expected, B.nan_quantiles(values, qs, axis=1), strict=True):
            assert np.array_equal(want, got, equal_nan=True), (trial, want, got)


def test_basic_interval_covers_a_zero_gap_the_percentile_interval_misses() -> None:
    """Four groups with equal FPR (true gap 0): resampled max - min gaps all exceed the observed one, so the
    percentile interval never covers 0; the basic interval does most of the time (why it is the default)."""
    rng = np.random.default_rng(0)
    n, covered = 100, {"basic": 0, "percentile": 0}
    ones = np.full((1, 4), n / 2.0)
    for _ in range(100):
        fp = rng.binomial(n, 0.2, size=(1, 4))
        fp_boot = rng.binomial(n, fp / n, size=(400, 4))
        estimate = fairness_gaps(ones, fp, n - fp, ones, metrics="F_FPR")["F_FPR"].value[0]
        reps = fairness_gaps(np.full((400, 4), n / 2.0), fp_boot, n - fp_boot, np.full((400, 4), n / 2.0),
                             metrics="F_FPR")["F_FPR"].value
        for method in covered:
            low, high = B.bootstrap_interval(reps, estimate=estimate, method=method)
            covered[method] += bool(low <= 0.0 <= high)
    assert covered["percentile"] == 0
    assert covered["basic"] >= 70


def test_bootstrap_intervals_cover_the_truth() -> None:
    """200 simulated test sets of clustered frames with a known truth: the 95% intervals of AUC and of a
    two-group FPR gap (stratified video bootstrap, as the report draws it) cover the truth in 90-99% of them.

    Each test set has 150 videos per (label, gender) cell (the stratified bootstrap conditions on that
    composition, so it is held fixed) of 2 frames. A frame's logit is mu[label, gender] + a video effect
    N(0, 0.8^2) + frame noise N(0, 0.6^2), reals at mu = -1.0 (male) and -0.3 (female), fakes 1.2 higher;
    a frame is predicted fake when its logit >= 0. With s = sqrt(0.8^2 + 0.6^2): FPR_g = Phi(mu_real_g / s),
    and AUC = mean over (fake gender, real gender) of Phi((1.2 + mu_fake_g - mu_real_g') / (sqrt(2) s)).
    Each simulation's 400 replicates are computed at once; 200 x 400 resampled test sets take seconds.
    """
    rng = np.random.default_rng(2024)
    sd = math.hypot(0.8, 0.6)
    mu_real, delta = np.array([-1.0, -0.3]), 1.2
    true_auc = 100 * np.mean([sps.norm.cdf((delta + mu_real[a] - mu_real[b]) / (math.sqrt(2) * sd))
                              for a in (0, 1) for b in (0, 1)])
    true_gap = 100 * abs(np.diff(sps.norm.cdf(mu_real / sd))[0])
    n_sims, per_cell, frames = 200, 150, 2
    label, gender = np.repeat([0, 0, 1, 1], per_cell), np.repeat([0, 1, 0, 1], per_cell)
    video = np.repeat(np.arange(label.size), frames)
    hits = {"AUC": 0, "F_FPR": 0}
    for sim in range(n_sims):
        mu = mu_real[gender] + delta * label
        logit = mu[video] + rng.normal(0, 0.8, label.size)[video] + rng.normal(0, 0.6, video.size)
        frame = pd.DataFrame({"label": label[video], "score": 1 / (1 + np.exp(-logit)), "gender": gender[video]})
        boot = B.cluster_bootstrap(video, strata=frame["label"] * 10 + frame["gender"], n_boot=400, seed=sim)
        rep = RP.replicate_metrics(frame, boot, metrics=["AUC", "F_FPR"], attributes=["gender"])
        point = compute_metrics(frame, metrics=["AUC", "F_FPR"], attributes=["gender"]).set_index("metric")["value"]
        for metric, truth, key in (("AUC", true_auc, ("all", "AUC")), ("F_FPR", true_gap, ("gender", "F_FPR"))):
            low, high = B.bootstrap_interval(rep.values[key], estimate=point[metric])
            hits[metric] += bool(low <= truth <= high)
    for metric, count in hits.items():
        assert 0.90 <= count / n_sims <= 0.99, (metric, count / n_sims)


def test_paired_bootstrap_of_a_method_against_itself_is_zero() -> None:
    frame = clustered_predictions()
    boot = B.cluster_bootstrap(frame["video"], strata=frame["label"], n_boot=200, seed=0)
    y, s = frame["label"].to_numpy(), frame["score"].to_numpy()
    result = B.paired_bootstrap(lambda w: RP.weighted_auc(y, s, w), lambda w: RP.weighted_auc(y, s, w), boot)
    assert (result.estimate, result.low, result.high, result.p) == (0.0, 0.0, 0.0, 1.0)


# ------------------------------------------------------------------------------------------ replicate engine
@pytest.mark.parametrize("cluster", ["video", "identity", "none"])
@pytest.mark.parametrize("strategy", ["pairs", "scan"])
def test_replicates_equal_compute_metrics_on_the_resampled_table(cluster: str, strategy: str) -> None:
    """Each replicate's values are compute_metrics on the explicitly resampled table (ties, unknown groups,
    clusters mixing labels and groups), whichever AUC strategy runs."""
    frame = clustered_predictions(n_videos=120)
    clusters = np.arange(len(frame)) if cluster == "none" else frame[cluster].to_numpy()
    boot = B.cluster_bootstrap(clusters, strata=frame["label"] * 10 + frame["intersection"], n_boot=6, seed=4)
    rep = RP.replicate_metrics(frame, boot, strategy=strategy)
    assert set(rep.values) == {("all", m) for m in ("AUC", "ACC", "log_loss", "brier")} | {
        (a, m) for a in ("gender", "race", "intersection") for m in
        ("F_FPR", "F_OAE", "F_DP", "F_MEO", "F_EFPR", "F_EO", "G_AUC", "F_FNR", "worst_AUC", "worst_ACC")}
    for b in range(boot.n_boot):
        resampled = frame.iloc[boot.indices(b)].reset_index(drop=True)
        reference = compute_metrics(resampled).set_index(["attribute", "metric"])["value"]
        for key, values in rep.values.items():
            assert values[b] == pytest.approx(reference[key], abs=1e-9, nan_ok=True), (key, b)
        rates = resampled[resampled["intersection"] >= 0]
        reals = rates[rates["label"] == 0].groupby("intersection")["score"].apply(lambda x: (x >= 0.5).mean())
        assert rep.fpr["intersection"][b, reals.index] == pytest.approx(reals.to_numpy())


def test_replicates_of_files_sharing_a_bootstrap_and_of_reordered_attributes() -> None:
    """Files of one test set share the AUC engine's layout (kept with the resamples); a file whose labels or
    groups differ on the same resamples gets its own, and attributes in any order are read from their own
    cells: each file's replicates equal compute_metrics on its resampled table."""
    frame = clustered_predictions(n_videos=80)
    boot = B.cluster_bootstrap(frame["video"], strata=frame["label"] * 10 + frame["intersection"], n_boot=4, seed=2)
    rescored = frame.assign(score=frame["score"].to_numpy()[::-1].copy())  # same samples, other scores
    regrouped = frame.assign(race=np.where(frame["race"] >= 0, (frame["race"] + 1) % 4, -1))
    regrouped["intersection"] = np.where(regrouped["race"] >= 0, regrouped["gender"] * 4 + regrouped["race"], -1)
    relabelled = frame.assign(label=1 - frame["label"])
    attributes = ("gender", "intersection", "race")
    for table in (frame, rescored, regrouped, relabelled):
        rep = RP.replicate_metrics(table, boot, attributes=attributes, strategy="pairs")
        for b in range(boot.n_boot):
            resampled = table.iloc[boot.indices(b)].reset_index(drop=True)
            reference = compute_metrics(resampled, attributes=attributes).set_index(["attribute", "metric"])["value"]
            for key, values in rep.values.items():
                assert values[b] == pytest.approx(reference[key], abs=1e-9, nan_ok=True), (key, b)
    assert len(boot.memo) == 1  # one layout kept: the last one made


def test_fairness_replicates_equal_each_attribute_alone_bit_for_bit() -> None:
    """Attributes evaluated together (padded with empty groups) give the numbers each gives alone, to the
    last bit: the padding changes no sum's order."""
    frame = clustered_predictions(n_videos=150, ties=False)
    boot = B.cluster_bootstrap(frame["video"], strata=frame["label"] * 10 + frame["intersection"], n_boot=300,
                               seed=5)
    together = RP.replicate_metrics(frame, boot, metrics="fairness")
    for attribute in ("gender", "race", "intersection"):
        alone = RP.replicate_metrics(frame, boot, metrics="fairness", attributes=[attribute])
        for (a, metric), values in alone.values.items():
            assert np.array_equal(values, together.values[(a, metric)], equal_nan=True), (a, metric)


def test_float32_pair_products_only_where_exact() -> None:
    """The cell-pair products run in float32 only while every partial sum stays exact; with videos so long
    that they would not, they run in float64; with so many short ones that a replicate's numerator could
    pass float32's whole numbers, the products with the real cells' counts run in float64. Either way the
    AUCs equal the prefix scan's to the last bit."""
    rng = np.random.default_rng(1)
    for videos, frames, single, single_sums in ((12, 3, True, True), (12, 1500, False, False),
                                               (600, 100, True, False)):
        video = np.repeat(np.arange(videos), frames)
        label = (video % 2).astype(int)
        score = (0.6 * rng.random(video.size) + 0.4 * label).round(3)  # ties between the classes; AUC near 1,
        # so that the numerators (about 9e8 in the last case) are far beyond float32's whole numbers
        groups = np.zeros(video.size, dtype=np.intp)
        boot = B.cluster_bootstrap(video, strata=label, n_boot=5, seed=3)
        engine = RP._AucEngine(label, score, {"all": (groups, 1)}, boot, "pairs")
        assert engine.layout is not None and engine.layout.single == single
        assert engine.layout.single_sums == single_sums
        aucs = engine.apply(boot.float_counts, slice(0, 5))["all"][:, 0]
        assert np.array_equal(aucs, RP.weighted_auc(label, score, boot.weights()))


def test_float32_cell_counts_only_where_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-group confusion counts of the replicates come from float32 counts while no replicate holds
    more samples than float32's whole numbers, from float64 otherwise: the same values either way."""
    frame = clustered_predictions(n_videos=40, frames=3)
    clusters = frame["video"].to_numpy()
    fast = B.cluster_bootstrap(clusters, strata=frame["label"].to_numpy(), n_boot=50, seed=2)
    assert fast.exact_single_counts is not None and fast.exact_single_counts.dtype == np.float32
    monkeypatch.setattr(B, "_SINGLE_WHOLE", 100.0)  # fewer than the 120 samples of every replicate
    slow = B.cluster_bootstrap(clusters, strata=frame["label"].to_numpy(), n_boot=50, seed=2)
    assert slow.exact_single_counts is None
    a, b = RP.replicate_metrics(frame, fast), RP.replicate_metrics(frame, slow)
    assert a.values.keys() == b.values.keys()
    for key, values in a.values.items():
        assert np.array_equal(values, b.values[key], equal_nan=True), key
    for rates, other in ((a.fpr, b.fpr), (a.tpr, b.tpr)):
        for attribute, values in rates.items():
            assert np.array_equal(values, other[attribute], equal_nan=True), attribute


def test_weighted_helpers_equal_repeated_samples() -> None:
    frame = clustered_predictions(n_videos=50, frames=2)
    y, s, g = frame["label"].to_numpy(), frame["score"].to_numpy(), frame["intersection"].to_numpy()
    weights = np.random.default_rng(3).integers(0, 3, size=(3, len(frame))).astype(float)
    aucs = RP.weighted_auc(y, s, weights)
    group_aucs = RP.weighted_auc(y, s, weights, groups=g, n_groups=8)
    tp, fp, tn, fn = RP.weighted_group_counts(y, s >= 0.5, g, weights, n_groups=8)
    for b in range(3):
        repeated = frame.loc[frame.index.repeat(weights[b].astype(int))]
        table = compute_metrics(repeated, metrics=["AUC", "G_AUC"], attributes=["intersection"])
        assert aucs[b] * 100 == pytest.approx(table.loc[table.metric == "AUC", "value"].item())
        known = repeated[repeated["intersection"] >= 0]
        for group, rows in known.groupby("intersection"):
            if rows["label"].nunique() == 2:
                assert group_aucs[b, group] == pytest.approx(RP.weighted_auc(rows["label"], rows["score"],
                                                                            np.ones((1, len(rows))))[0])
            assert tp[b, group] == ((rows["label"] == 1) & (rows["score"] >= 0.5)).sum()
            assert fp[b, group] == ((rows["label"] == 0) & (rows["score"] >= 0.5)).sum()
            assert tn[b, group] + fn[b, group] == (rows["score"] < 0.5).sum()


# ------------------------------------------------------------------------------------------ corrections
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holm_and_bh_agree_with_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.05, 6), rng.uniform(0, 1, 14), [0.01, 0.01, 1.0]])  # ties, a one
    rng.shuffle(p)
    for ours, method in ((S.holm, "holm"), (S.benjamini_hochberg, "fdr_bh")):
        assert ours(p) == pytest.approx(multipletests(p, method=method)[1], abs=1e-12)
    with_nan = p.copy()
    with_nan[[2, 7]] = np.nan  # NaN stays NaN and is not part of the family
    valid = ~np.isnan(with_nan)
    adjusted = S.holm(with_nan)
    assert np.isnan(adjusted[~valid]).all()
    assert adjusted[valid] == pytest.approx(multipletests(with_nan[valid], method="holm")[1])
    assert S.benjamini_hochberg(with_nan)[valid] == pytest.approx(
        multipletests(with_nan[valid], method="fdr_bh")[1])


# ------------------------------------------------------------------------------------------ rank tests
@pytest.mark.parametrize(("k", "n", "seed"), [(3, 8, 0), (4, 12, 1), (5, 6, 2), (6, 20, 3)])
def test_friedman_agrees_with_scipy(k: int, n: int, seed: int) -> None:
    values = np.random.default_rng(seed).integers(0, 6, size=(n, k)).astype(float)  # small range: ties
    reference = sps.friedmanchisquare(*values.T)
    for higher in (True, False):
        result = S.friedman_test(values, higher_is_better=higher)
        assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
        assert result.p == pytest.approx(reference.pvalue, rel=1e-10)
        assert result.mean_ranks.sum() == pytest.approx(k * (k + 1) / 2)


def test_friedman_mean_ranks_by_hand() -> None:
    # three blocks, methods a b c: (90, 80, 70), (85, 85, 60), (70, 75, 65); higher is better
    # ranks (1, 2, 3), (1.5, 1.5, 3), (2, 1, 3) -> mean ranks 1.5, 1.5, 3
    result = S.friedman_test([[90, 80, 70], [85, 85, 60], [70, 75, 65]], higher_is_better=True)
    assert result.mean_ranks == pytest.approx([1.5, 1.5, 3.0])
    assert S.friedman_test([[90, 80, 70], [85, 85, 60], [70, 75, 65]],
                           higher_is_better=False).mean_ranks == pytest.approx([2.5, 2.5, 1.0])


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850), (8, 3.031),
                                      (10, 3.164)])
def test_nemenyi_cd_matches_demsar_table(k: int, q: float) -> None:
    # Demsar (2006), Table 5(a): critical values q_0.05 for the two-tailed Nemenyi test
    assert S.nemenyi_cd(k, 14) == pytest.approx(q * math.sqrt(k * (k + 1) / (6 * 14)), abs=2e-3)


# ------------------------------------------------------------------------------------------ paired tests
@pytest.mark.parametrize("n", range(1, 9))
def test_sign_flip_is_exact(n: int) -> None:
    d = np.random.default_rng(n).normal(0.3, 1, n).round(2)
    patterns = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
    brute = np.mean(np.abs(patterns @ d) >= abs(d.sum()) - 1e-12)
    result = S.sign_flip_test(d)
    assert result.exact and result.n == n
    assert result.p == pytest.approx(brute, abs=1e-15)
    assert result.p * 2**n == pytest.approx(round(result.p * 2**n))  # a multiple of 1 / 2^S
    assert result.estimate == pytest.approx(d.mean())


def test_sign_flip_agrees_with_scipy_permutation_test() -> None:
    d = np.array([0.8, 1.3, -0.2, 0.9, 1.1, 0.4, 0.7])
    reference = sps.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                     alternative="two-sided")
    assert S.sign_flip_test(d).p == pytest.approx(reference.pvalue)


def test_sign_flip_interval_by_hand() -> None:
    # S = 6: k = floor(64 * 0.025) = 1, so the interval is the smallest and largest subset mean = min and max
    d = np.array([0.5, 1.5, -0.5, 2.0, 1.0, 0.25])
    result = S.sign_flip_test(d)
    assert (result.low, result.high) == (-0.5, 2.0)
    # S = 5 cannot reach p < 0.05 (min p = 2/32): no finite interval, p = 1/16 when all differences agree
    five = S.sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (five.low, five.high, five.p) == (-math.inf, math.inf, 1 / 16)
    assert S.sign_flip_test([1.0, 2.0]).p == 0.5


def test_wilcoxon_against_scipy_and_by_hand() -> None:
    d = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30, -0.2])
    result = S.wilcoxon_test(d)
    assert result.p == pytest.approx(sps.wilcoxon(d).pvalue)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(10) for j in range(i, 10)])
    assert result.estimate == pytest.approx(np.median(walsh))
    # n = 10: P(W+ <= 8) = 25/1024 <= 0.025 < P(W+ <= 9) = 33/1024, so the 9th smallest and largest Walsh means
    assert (result.low, result.high) == pytest.approx((walsh[8], walsh[-9]))
    assert D.signed_rank_counts(10)[:10].cumsum()[8] == 25 and D.signed_rank_counts(10)[:10].cumsum()[9] == 33
    assert S.wilcoxon_test([0.0, 0.0, 0.0]).p == 1.0
    short = S.wilcoxon_test([1.0, 2.0, 3.0, 4.0])  # four pairs cannot reach 0.05: no finite interval
    assert (short.low, short.high) == (-math.inf, math.inf)


def test_signed_rank_null_equals_enumeration() -> None:
    n = 6
    sums = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s) for signs in
            itertools.product([0, 1], repeat=n)]
    assert D.signed_rank_counts(n) == pytest.approx(np.bincount(sums, minlength=n * (n + 1) // 2 + 1))


def test_wilcoxon_with_ties_is_exact_by_enumeration() -> None:
    """Tied differences: every sign pattern of the mid-ranks, as scipy's permutation method (not the normal
    approximation, which claims p = 0.20 for four tied pairs whose exact p is 0.375)."""
    d = np.array([1.0, 1.0, 2.0, -0.5, 3.0, 2.0, 1.5, 0.5])
    ranks = sps.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    null = np.array([(s * ranks).sum() for s in itertools.product([0, 1], repeat=d.size)])
    brute = min(1.0, 2 * min(np.mean(null <= observed), np.mean(null >= observed)))
    assert S.wilcoxon_test(d).p == pytest.approx(brute)
    assert S.wilcoxon_test(d).p == pytest.approx(sps.wilcoxon(d, method=sps.PermutationMethod()).pvalue)
    four = np.array([2.0, 2.0, 1.0, 3.0])  # all positive, two tied: 2 x 1/16
    assert S.wilcoxon_test(four).p == pytest.approx(0.125)


def test_floors_are_the_smallest_p_values_by_enumeration() -> None:
    for n in range(1, 7):
        signs = 1.0 - 2.0 * np.array(list(itertools.product([0, 1], repeat=n)))
        d = np.arange(1.0, n + 1.0)
        smallest_sign_flip = min(S.sign_flip_test(s * d).p for s in signs)
        smallest_wilcoxon = min(S.wilcoxon_test(s * d).p for s in signs)
        assert S.sign_flip_floor(n) == pytest.approx(smallest_sign_flip) == pytest.approx(2.0 / 2**n)
        assert S.wilcoxon_floor(n) == pytest.approx(smallest_wilcoxon)
    assert S.wilcoxon_floor(3) == pytest.approx(0.25)  # the paper's three cross-domain pairs
    assert S.sign_flip_floor(20) == pytest.approx(1.0 / 100_001)  # Monte-Carlo beyond 16 seeds


def _pooled_by_hand(e: np.ndarray, r: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """The pooled test as docs/STATISTICS.md writes it, with the full bootstrap covariance matrix."""
    j = e.shape[0]
    sigma = np.atleast_2d(np.cov(r))
    v_test = sigma.sum() / j**2
    if j == 1:
        se, df = math.sqrt(v_test), math.inf
    else:
        s_n = (np.trace(sigma) / j - v_test) * j / (j - 1)
        v_jobs = np.var(e, ddof=1) / j
        var = max(max(v_test - s_n / j, 0.0) + v_jobs, v_test)
        se, df = math.sqrt(var), var**2 * (j - 1) / max(v_jobs, s_n / j) ** 2
    t = e.mean() / se
    return e.mean(), se, df, 2 * sps.t.sf(abs(t), df)


def test_pooled_test_by_hand_and_against_references() -> None:
    rng = np.random.default_rng(5)
    # jobs sharing part of their test noise (a common replicate effect) plus noise of their own
    e = np.array([1.2, 0.4, 2.1, 0.9])
    r = e[:, None] + rng.normal(0, 0.5, 400)[None, :] + rng.normal(0, 0.8, (4, 400))
    result = S.pooled_test(e, r)
    estimate, se, df, p = _pooled_by_hand(e, r)
    assert (result.estimate, result.se, result.df, result.p) == pytest.approx((estimate, se, df, p))
    half = sps.t.ppf(0.975, df) * se
    assert (result.low, result.high) == pytest.approx((estimate - half, estimate + half))
    # without test-set noise it is the one-sample t-test over jobs
    flat = np.repeat(e[:, None], 50, axis=1)
    assert S.pooled_test(e, flat).p == pytest.approx(sps.ttest_1samp(e, 0.0).pvalue)
    # one job: a z-test with the bootstrap's standard deviation
    one = S.pooled_test(e[:1], r[:1])
    assert one.df == math.inf and one.p == pytest.approx(2 * sps.norm.sf(e[0] / r[0].std(ddof=1)))
    # vectorised over leading axes, NaN jobs and NaN replicates left out
    stacked = S.pooled_test(np.stack([e, e * 2]), np.stack([r, r * 2]))
    assert stacked.p[0] == pytest.approx(result.p) and stacked.estimate[1] == pytest.approx(2 * estimate)
    holes = r.copy()
    holes[1, :7] = np.nan
    with_nan = S.pooled_test(np.append(e, np.nan), np.vstack([holes, r[:1]]))
    assert with_nan.n == 4 and with_nan.p == pytest.approx(_pooled_by_hand(e, holes[:, 7:])[3])
    assert math.isnan(S.pooled_test(np.array([np.nan, np.nan]), r[:2]).p)


def test_pooled_test_has_no_floor_where_the_exact_tests_do() -> None:
    """Three jobs all in one direction: sign-flip and Wilcoxon cannot go below 0.25; the pooled test can."""
    e = np.array([10.0, 11.0, 9.5])
    r = e[:, None] + np.random.default_rng(0).normal(0, 1.0, (3, 500))
    assert S.sign_flip_test(e).p == 0.25 and S.wilcoxon_test(e).p == 0.25
    assert S.pooled_test(e, r).p < 0.01


# ------------------------------------------------------------------------------------------ user errors
@pytest.mark.parametrize(("call", "message"), [
    (lambda: B.cluster_bootstrap(np.arange(4), n_boot=0), "bootstrap replicates must be an integer >= 1"),
    (lambda: B.bootstrap_interval([1.0, 2.0], estimate=1.0, alpha=1.5), "alpha must be a number strictly"),
    (lambda: B.bootstrap_interval([1.0], estimate=1.0, method="bca"), "Unknown interval method 'bca'"),
    (lambda: S.delong_test([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]), "needs both fakes and reals"),
    (lambda: B.cluster_bootstrap(np.arange(4), strata=[0, 1], n_boot=5), "strata: expected 4 values"),
])
def test_user_errors_are_bench_errors(call, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        call()
