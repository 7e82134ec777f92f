"""Tests of bench.metrics: hand-worked examples, scikit-learn and fairlearn references, edge cases."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench import metrics as M
from bench.errors import BenchError, UnknownNameError

FAIRNESS = ["F_FPR", "F_OAE", "F_DP", "F_MEO", "F_EFPR", "F_EO", "G_AUC", "F_FNR", "worst_AUC", "worst_ACC"]
DETECTION = ["AUC", "ACC", "AP", "EER", "video_AUC", "log_loss", "brier"]


# ------------------------------------------------------------------------------------------ fixtures
def hand_groups() -> pd.DataFrame:
    """Four groups of one attribute, threshold 0.5 (fake when score >= 0.5).

    group 0: reals 0.2, 0.7; fakes 0.8, 0.4 -> FP 1 TN 1 TP 1 FN 1, n 4
             FPR 1/2, TPR 1/2, FNR 1/2, ACC 2/4, PR 2/4
             AUC: (0.8>0.2) + (0.8>0.7) + (0.4>0.2) + (0.4<0.7) = 3 of 4 pairs -> 0.75
    group 1: reals 0.1, 0.3, 0.6; fake 0.9 -> FP 1 TN 2 TP 1 FN 0, n 4
             FPR 1/3, TPR 1, FNR 0, ACC 3/4, PR 2/4, AUC 1
    group 2: real 0.5; fakes 0.5, 0.2 -> FP 1 TN 0 TP 1 FN 1, n 3
             FPR 1, TPR 1/2, FNR 1/2, ACC 1/3, PR 2/3
             AUC: tie (0.5 = 0.5) counts 1/2, (0.2 < 0.5) 0 -> 0.5 / 2 = 0.25
    group 3: reals 0.1, 0.2 only -> FP 0 TN 2, n 2: FPR 0, ACC 1, PR 0; TPR, FNR, AUC undefined (NaN)
    Pooled over all four groups: FPR_all = (1+1+1+0) / (2+3+1+2) = 3/8, TPR_all = (1+1+1) / (2+1+2) = 3/5.
    """
    rows = [
        (0, 0, 0.2), (0, 0, 0.7), (0, 1, 0.8), (0, 1, 0.4),
        (1, 0, 0.1), (1, 0, 0.3), (1, 0, 0.6), (1, 1, 0.9),
        (2, 0, 0.5), (2, 1, 0.5), (2, 1, 0.2),
        (3, 0, 0.1), (3, 0, 0.2),
    ]
    g, y, s = map(np.array, zip(*rows, strict=True))
    return pd.DataFrame({"label": y, "score": s, "group": g, "video": [f"v{i}" for i in range(len(g))]})


def random_predictions(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gender = rng.integers(0, 2, n)
    race = rng.integers(0, 4, n)
    label = rng.integers(0, 2, n)
    score = np.clip(0.15 * label + rng.integers(0, 20, n) / 20, 0, 1)  # coarse: many ties
    return pd.DataFrame({"label": label, "score": score, "video": [f"v{i}" for i in range(n)],
                         "gender": gender, "race": race, "intersection": gender * 4 + race})


def value(table: pd.DataFrame, metric: str, attribute: str | None = None) -> float:
    rows = table[(table.metric == metric) & ((attribute is None) | (table.attribute == attribute))]
    assert len(rows) == 1
    return float(rows.value.iloc[0])


# ------------------------------------------------------------------------------------------ detection, by hand
def test_auc_by_hand() -> None:
    # fakes 0.35, 0.8 vs reals 0.1, 0.4: (0.35>0.1) + (0.35<0.4) + (0.8>0.1) + (0.8>0.4) = 3 of 4
    assert M.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # fakes 0.5, 0.9 vs reals 0.5, 0.2: tie 0.5 + 1 + 1 + 1 = 3.5 of 4
    assert M.auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)


def test_accuracy_by_hand() -> None:
    # predictions (score >= 0.5) = 1, 1, 0, 1 vs labels 0, 1, 0, 1: 3 of 4 right
    assert M.accuracy([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.75)
    # at threshold 0.6: predictions 0, 0, 0, 1: 3 of 4 right (the tie at 0.5 is now real)
    assert M.accuracy([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], threshold=0.6) == pytest.approx(0.75)
    # at threshold 0.95: all predicted real: 2 of 4
    assert M.accuracy([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], threshold=0.95) == pytest.approx(0.5)


def test_average_precision_by_hand() -> None:
    # scores high to low: 0.8 fake (P 1, R 1/2), 0.4 real (P 1/2, R 1/2), 0.35 fake (P 2/3, R 1),
    # 0.1 real (P 1/2, R 1): AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 + 0 * 1/2 = 5/6
    assert M.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)


def test_eer_by_hand() -> None:
    # 2 fakes, 3 reals. Operating points (FPR, FNR): start (0, 1); >= 0.9: (0, 1/2);
    # >= 0.8: (1/3, 1/2); >= 0.7: (2/3, 1/2). FPR - FNR: -1, -1/2, -1/6, +1/6: the crossing lies between
    # (1/3, 1/2) and (2/3, 1/2), where FNR stays 1/2, so EER = 1/2 (t = (1/6) / (1/3) = 1/2).
    assert M.eer([1, 0, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.1]) == pytest.approx(0.5)
    # Tie: >= 0.9: (0, 1/2); >= 0.5 (one fake and one real tied): (1/3, 0). FPR - FNR goes -1/2 -> 1/3,
    # t = (1/2) / (1/2 + 1/3) = 3/5, EER = 0 + 3/5 * 1/3 = 1/5 (and FNR = 1/2 - 3/5 * 1/2 = 1/5).
    assert M.eer([1, 1, 0, 0, 0], [0.9, 0.5, 0.5, 0.2, 0.1]) == pytest.approx(0.2)
    # Crossing exactly at a point: (0, 1) -> (0, 1/2) -> (1/2, 1/2): EER = 1/2
    assert M.eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]) == pytest.approx(0.5)
    # All scores tied: one segment from (0, 1) to (1, 0), crossing at 1/2
    assert M.eer([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # Perfect separation: (0, 1) -> (0, 0): EER 0
    assert M.eer([0, 1], [0.2, 0.7]) == 0.0


def test_video_auc_by_hand() -> None:
    # video means: a (real) (0.25 + 0.5) / 2 = 0.375; b (fake) (0.5 + 0.75) / 2 = 0.625;
    # c (real) (0.25 + 1) / 2 = 0.625; d (fake) (0 + 0.25) / 2 = 0.125.
    # fakes 0.625, 0.125 vs reals 0.375, 0.625: 1 + 1/2 (tie) + 0 + 0 = 1.5 of 4 = 0.375
    video = ["a", "a", "b", "b", "c", "c", "d", "d"]
    label = [0, 0, 1, 1, 0, 0, 1, 1]
    score = [0.25, 0.5, 0.5, 0.75, 0.25, 1.0, 0.0, 0.25]
    assert M.video_auc(label, score, video) == pytest.approx(0.375)


def test_log_loss_and_brier_by_hand() -> None:
    # -(ln 0.8 + ln(1 - 0.4)) / 2 = (0.2231436 + 0.5108256) / 2 = 0.3669846
    assert M.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(0.3669846, abs=1e-7)
    # ((0.8 - 1)^2 + (0.4 - 0)^2) / 2 = (0.04 + 0.16) / 2 = 0.1
    assert M.brier_score([1, 0], [0.8, 0.4]) == pytest.approx(0.1)
    # a confident mistake is clipped: -ln(eps) = 36.04, not infinity
    assert M.log_loss([1], [0.0]) == pytest.approx(-np.log(np.finfo(float).eps))


def test_detection_undefined_is_nan() -> None:
    for fn in (M.auc, M.eer):
        assert np.isnan(fn([1, 1], [0.2, 0.7]))
        assert np.isnan(fn([0, 0], [0.2, 0.7]))
    assert np.isnan(M.average_precision([0, 0], [0.2, 0.7]))
    assert M.average_precision([1, 1], [0.2, 0.7]) == 1.0
    for fn in (M.auc, M.accuracy, M.average_precision, M.eer, M.log_loss, M.brier_score):
        assert np.isnan(fn([], []))


# ------------------------------------------------------------------------------------------ references
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_matches_sklearn(seed: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = np.clip(0.2 * y + rng.integers(0, 12, 500) / 12, 0, 1)  # heavy ties
    s[:5] = [0.0, 1.0, 0.0, 1.0, 0.5]
    assert M.auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
    assert M.log_loss(y, s) == pytest.approx(sk.log_loss(y, s), rel=1e-12)
    assert M.brier_score(y, s) == pytest.approx(sk.brier_score_loss(y, s), abs=1e-12)
    assert M.accuracy(y, s) == pytest.approx(sk.accuracy_score(y, s >= 0.5), abs=1e-12)
    # EER lies between the FPR and FNR of the sklearn ROC point nearest the crossing
    fpr, tpr, _ = sk.roc_curve(y, s)
    k = np.nanargmin(np.abs(1 - tpr - fpr))
    lo, hi = sorted([fpr[k], 1 - tpr[k]])
    assert lo - 1e-12 <= M.eer(y, s) <= hi + 1e-12


def test_group_auc_matches_sklearn_per_group() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    d = random_predictions(3000, seed=3)
    d.loc[d.intersection == 5, "label"] = 0  # group 5: reals only
    d.loc[d.index[:40], "intersection"] = -1  # unknown: left out
    got = M.group_auc(d.label, d.score, d.intersection)
    known = d[d.intersection >= 0]
    for code, part in known.groupby("intersection"):
        if part.label.nunique() == 2:
            assert got[code] == pytest.approx(sk.roc_auc_score(part.label, part.score), abs=1e-12)
        else:
            assert np.isnan(got[code])
    assert list(got.index) == sorted(known.intersection.unique())


def _fairlearn_frame(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = random_predictions(1500, seed=seed)
    return d.label.to_numpy(), d.score.to_numpy(), d.intersection.to_numpy()


@pytest.mark.parametrize("seed", [0, 1])
def test_dp_and_meo_match_fairlearn(seed: int) -> None:
    fm = pytest.importorskip("fairlearn.metrics")
    y, s, g = _fairlearn_frame(seed)
    pred = (s >= 0.5).astype(int)
    table = M.group_table(y, s, g)
    assert (table.n_real > 0).all() and (table.n_fake > 0).all()  # definitions coincide here
    gaps = M.fairness_gaps(table.TP, table.FP, table.TN, table.FN, table.AUC)
    dp = fm.demographic_parity_difference(y, pred, sensitive_features=g, method="between_groups")
    eo = fm.equalized_odds_difference(y, pred, sensitive_features=g, method="between_groups",
                                      agg="worst_case")
    assert float(gaps["F_DP"].value) == pytest.approx(dp, abs=1e-12)
    assert float(gaps["F_MEO"].value) == pytest.approx(eo, abs=1e-12)


# ------------------------------------------------------------------------------------------ per-group table
def test_group_table_by_hand() -> None:
    d = hand_groups()
    t = M.group_table(d.label, d.score, d.group)
    assert list(t.columns) == list(M.TABLE_COLUMNS)
    assert list(t.index) == [0, 1, 2, 3]
    assert t.loc[:, ["n", "n_real", "n_fake", "FP", "TN", "TP", "FN"]].values.tolist() == [
        [4, 2, 2, 1, 1, 1, 1], [4, 3, 1, 1, 2, 1, 0], [3, 1, 2, 1, 0, 1, 1], [2, 2, 0, 0, 2, 0, 0]]
    np.testing.assert_allclose(t.FPR, [1 / 2, 1 / 3, 1, 0])
    np.testing.assert_allclose(t.TPR, [1 / 2, 1, 1 / 2, np.nan])
    np.testing.assert_allclose(t.FNR, [1 / 2, 0, 1 / 2, np.nan])
    np.testing.assert_allclose(t.ACC, [2 / 4, 3 / 4, 1 / 3, 1])
    np.testing.assert_allclose(t.PR, [2 / 4, 2 / 4, 2 / 3, 0])
    np.testing.assert_allclose(t.AUC, [0.75, 1.0, 0.25, np.nan])


def test_group_table_skips_unknown_and_keeps_nan_not_zero() -> None:
    t = M.group_table([1, 1, 0, 1], [0.9, 0.2, 0.3, 0.6], [0, 0, -1, 2])
    assert list(t.index) == [0, 2]  # -1 is unknown; group 1 absent
    assert t.FPR.isna().all() and t.AUC.isna().all()  # no reals anywhere: undefined, not 0
    np.testing.assert_allclose(t.TPR, [0.5, 1.0])


# ------------------------------------------------------------------------------------------ fairness, by hand
BOTH_CLASSES = {  # groups 0, 1, 2 (group 3 has no fakes); see hand_groups for the per-group numbers
    "F_FPR": 1 - 1 / 3,  # FPR 1/2, 1/3, 1
    "F_OAE": 3 / 4 - 1 / 3,  # ACC 1/2, 3/4, 1/3
    "F_DP": 2 / 3 - 1 / 2,  # PR 1/2, 1/2, 2/3
    "F_MEO": max(1 - 1 / 3, 1 - 1 / 2),  # max(FPR gap 2/3, TPR gap 1/2)
    "F_EFPR": 1 / 8 + 1 / 24 + 5 / 8,  # |1/2 - 3/8| + |1/3 - 3/8| + |1 - 3/8| = 19/24
    "F_EO": 19 / 24 + (1 / 10 + 2 / 5 + 1 / 10),  # + |1/2 - 3/5| + |1 - 3/5| + |1/2 - 3/5|
    "G_AUC": 1 - 0.25,  # AUC 0.75, 1, 0.25
    "F_FNR": 1 / 2 - 0,  # FNR 1/2, 0, 1/2
    "worst_AUC": 0.25,
    "worst_ACC": 1 / 3,
}
DEFINED = {  # each quantity over the groups where it is defined: group 3 enters FPR, ACC and PR
    "F_FPR": 1 - 0,  # FPR 1/2, 1/3, 1, 0
    "F_OAE": 1 - 1 / 3,  # ACC 1/2, 3/4, 1/3, 1
    "F_DP": 2 / 3 - 0,  # PR 1/2, 1/2, 2/3, 0
    "F_MEO": max(1 - 0, 1 - 1 / 2),
    "F_EFPR": 19 / 24 + 3 / 8,  # + |0 - 3/8| = 7/6
    "F_EO": 7 / 6 + 3 / 5,
    "G_AUC": 0.75,  # AUC undefined for group 3
    "F_FNR": 1 / 2,  # FNR undefined for group 3
    "worst_AUC": 0.25,
    "worst_ACC": 1 / 3,  # group 3's ACC 1 is not the worst
}


@pytest.mark.parametrize(("policy", "expected"), [("both-classes", BOTH_CLASSES), ("defined", DEFINED)])
def test_fairness_by_hand(policy: str, expected: dict[str, float]) -> None:
    d = hand_groups()
    out = M.compute_metrics(d, metrics="fairness", attributes=["group"], policy=policy)
    assert list(out.metric) == FAIRNESS
    for name, want in expected.items():
        assert value(out, name) == pytest.approx(100 * want, abs=1e-9), name
    assert (out.policy == policy).all()
    n_groups = dict(zip(out.metric, out.n_groups, strict=True))
    min_n = dict(zip(out.metric, out.min_group_n, strict=True))
    if policy == "both-classes":
        assert set(n_groups.values()) == {3} and set(min_n.values()) == {3}
    else:
        assert n_groups["F_FPR"] == 4 and min_n["F_FPR"] == 2  # group 3 (n 2) enters
        assert n_groups["G_AUC"] == 3 and min_n["G_AUC"] == 3
        assert n_groups["F_MEO"] == 4 and n_groups["F_FNR"] == 3


def test_policies_differ_on_the_crafted_example() -> None:
    d = hand_groups()
    both = M.compute_metrics(d, metrics="F_FPR", attributes="group")
    defined = M.compute_metrics(d, metrics="F_FPR", attributes="group", policy="defined")
    assert value(both, "F_FPR") == pytest.approx(100 * 2 / 3)
    assert value(defined, "F_FPR") == pytest.approx(100.0)


def test_min_group_size_excludes_tiny_groups() -> None:
    d = hand_groups()  # n = 4, 4, 3, 2
    out = M.compute_metrics(d, metrics=["F_FPR", "G_AUC"], attributes="group", min_group_size=4)
    # groups 0 and 1 only: FPR 1/2 - 1/3 = 1/6; AUC 1 - 0.75 = 0.25
    assert value(out, "F_FPR") == pytest.approx(100 / 6)
    assert value(out, "G_AUC") == pytest.approx(25.0)
    assert list(out.n_groups) == [2, 2] and list(out.min_group_n) == [4, 4]
    assert (out.min_group_size == 4).all()
    none = M.compute_metrics(d, metrics=["F_FPR"], attributes="group", min_group_size=5)
    assert np.isnan(value(none, "F_FPR")) and none.n_groups.iloc[0] == 0 and pd.isna(none.min_group_n.iloc[0])


def test_fewer_than_two_groups_is_nan() -> None:
    d = hand_groups()
    d = d[d.group.isin([0, 3])]  # group 3 has no fakes: one group under both-classes
    out = M.compute_metrics(d, metrics="fairness", attributes="group")
    assert out.value.isna().all()
    assert (out.n_groups == 1).all()
    single = M.compute_metrics(d.assign(group=0), metrics="fairness", attributes="group", policy="defined")
    assert single.value.isna().all()
    unknown = M.compute_metrics(d.assign(group=-1), metrics="F_*", attributes="group")
    assert unknown.value.isna().all() and (unknown.n_groups == 0).all()


def test_group_with_only_reals_leaves_other_groups_gaps() -> None:
    d = hand_groups()
    t = M.group_table(d.label, d.score, d.group)
    assert np.isnan(t.loc[3, "AUC"]) and np.isnan(t.loc[3, "TPR"])
    out = M.compute_metrics(d, metrics=["G_AUC", "F_FPR"], attributes="group")
    assert out.value.notna().all() and (out.n_groups == 3).all()


# ------------------------------------------------------------------------------------------ count layer
def test_fairness_gaps_is_vectorised_over_leading_axes() -> None:
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 6, size=(4, 3, 5, 4)).astype(float)  # (B1, B2, G, [tp fp tn fn])
    counts[0, 0, 1, [0, 3]] = 0  # one group without fakes in one replicate
    counts[1, 2, :, :] = 0  # an empty replicate
    tp, fp, tn, fn = np.moveaxis(counts, -1, 0)
    auc = rng.random((4, 3, 5))
    for policy in M.POLICIES:
        batch = M.fairness_gaps(tp, fp, tn, fn, auc, policy=policy, min_group_size=2)
        assert set(batch) == set(FAIRNESS)
        for i in range(4):
            for j in range(3):
                one = M.fairness_gaps(tp[i, j], fp[i, j], tn[i, j], fn[i, j], auc[i, j], policy=policy,
                                      min_group_size=2)
                for name, res in batch.items():
                    assert res.value.shape == (4, 3)
                    np.testing.assert_equal(res.value[i, j], one[name].value)
                    np.testing.assert_equal(res.n_groups[i, j], one[name].n_groups)
                    np.testing.assert_equal(res.min_group_n[i, j], one[name].min_group_n)
    empty = M.fairness_gaps(tp, fp, tn, fn, auc)
    assert np.isnan(empty["F_FPR"].value[1, 2]) and empty["F_FPR"].n_groups[1, 2] == 0


def _brute_gaps(tp, fp, tn, fn, auc, policy: str, min_group_size: int) -> dict[str, tuple[float, int, float]]:
    """Every fairness metric of one replicate's (G,) counts, group by group in plain Python (the definitions
    of docs/METRICS.md): {name: (value, groups entered, smallest n among them)}."""
    groups = range(len(tp))
    n_real = [fp[g] + tn[g] for g in groups]
    n_fake = [tp[g] + fn[g] for g in groups]
    n = [n_real[g] + n_fake[g] for g in groups]
    rate = {"fpr": [fp[g] / n_real[g] if n_real[g] else None for g in groups],
            "tpr": [tp[g] / n_fake[g] if n_fake[g] else None for g in groups],
            "fnr": [fn[g] / n_fake[g] if n_fake[g] else None for g in groups],
            "acc": [(tp[g] + tn[g]) / n[g] if n[g] else None for g in groups],
            "pr": [(tp[g] + fp[g]) / n[g] if n[g] else None for g in groups],
            "auc": [None if np.isnan(auc[g]) else auc[g] for g in groups]}
    needs = {"fpr": "real", "tpr": "fake", "fnr": "fake", "acc": "any", "pr": "any", "auc": "both"}

    def members(quantity: str) -> list[int]:
        need = "both" if policy == "both-classes" else needs[quantity]
        ok = {"real": lambda g: n_real[g] > 0, "fake": lambda g: n_fake[g] > 0, "any": lambda g: n[g] > 0,
              "both": lambda g: n_real[g] > 0 and n_fake[g] > 0}[need]
        return [g for g in groups if ok(g) and n[g] >= min_group_size and rate[quantity][g] is not None]

    def result(entered: set[int], value: float, enough: bool) -> tuple[float, int, float]:
        return (value if enough and len(entered) >= 2 else np.nan, len(entered),
                min(n[g] for g in entered) if entered else np.nan)

    def gap(quantity: str) -> tuple[float, int, float]:
        gs = members(quantity)
        values = [rate[quantity][g] for g in gs]
        return result(set(gs), max(values) - min(values) if values else np.nan, True)

    fpr_all = sum(fp) / sum(n_real) if sum(n_real) else np.nan
    tpr_all = sum(tp) / sum(n_fake) if sum(n_fake) else np.nan
    f, t = members("fpr"), members("tpr")
    meo = max(gap("fpr")[0], gap("tpr")[0]) if len(f) >= 2 and len(t) >= 2 else np.nan
    efpr = sum(abs(rate["fpr"][g] - fpr_all) for g in f)
    eo = efpr + sum(abs(rate["tpr"][g] - tpr_all) for g in t)
    both = len(f) >= 2 and len(t) >= 2
    worst_auc, worst_acc = members("auc"), members("acc")
    return {"F_FPR": gap("fpr"), "F_OAE": gap("acc"), "F_DP": gap("pr"), "F_FNR": gap("fnr"),
            "G_AUC": gap("auc"), "F_MEO": result(set(f) | set(t), meo, True),
            "F_EFPR": result(set(f), efpr, True), "F_EO": result(set(f) | set(t), eo, both),
            "worst_AUC": result(set(worst_auc), min((rate["auc"][g] for g in worst_auc), default=np.nan), True),
            "worst_ACC": result(set(worst_acc), min((rate["acc"][g] for g in worst_acc), default=np.nan), True)}


@pytest.mark.parametrize("n_groups", [4, 9, 70])  # a few groups (reduced group-axis first) and many
def test_fairness_gaps_over_replicates_match_brute_force(n_groups: int) -> None:
    rng = np.random.default_rng(n_groups)
    counts = rng.integers(0, 4, size=(2, 5, n_groups, 4)).astype(float)  # (B1, B2, G, [tp fp tn fn])
    counts[..., :2, 2:] = 0  # two groups without reals, in every replicate
    counts[0, 1, 2:5, [0, 3]] = 0  # groups without fakes in one replicate
    counts[1, 3] = 0  # an empty replicate
    tp, fp, tn, fn = np.moveaxis(counts, -1, 0)
    auc = rng.random(tp.shape)
    auc[0, :, 3] = np.nan  # an AUC missing where the group has both classes: it must not enter
    for policy in M.POLICIES:
        batch = M.fairness_gaps(tp, fp, tn, fn, auc, policy=policy, min_group_size=2)
        for index in np.ndindex(tp.shape[:-1]):
            want = _brute_gaps(tp[index], fp[index], tn[index], fn[index], auc[index], policy, 2)
            for name, (value_, k, smallest) in want.items():
                got = batch[name]
                assert got.value[index] == pytest.approx(value_, rel=1e-12, nan_ok=True), (policy, name, index)
                assert got.n_groups[index] == k, (policy, name, index)
                assert got.min_group_n[index] == pytest.approx(smallest, nan_ok=True), (policy, name, index)


def test_fairness_gaps_matches_compute_metrics_and_selects() -> None:
    d = random_predictions(1000, seed=5)
    t = M.group_table(d.label, d.score, d.race)
    gaps = M.fairness_gaps(t.TP, t.FP, t.TN, t.FN, t.AUC, metrics="F_*")
    assert list(gaps) == ["F_FPR", "F_OAE", "F_DP", "F_MEO", "F_EFPR", "F_EO", "F_FNR"]
    out = M.compute_metrics(d, metrics="F_*", attributes=["race"])
    for name, res in gaps.items():
        assert value(out, name) == pytest.approx(100 * float(res.value), abs=1e-12)
    no_auc = M.fairness_gaps(t.TP, t.FP, t.TN, t.FN, metrics=["G_AUC", "worst_AUC"])
    assert all(np.isnan(r.value) and r.n_groups == 0 for r in no_auc.values())
    with pytest.raises(BenchError, match="detection"):
        M.fairness_gaps(t.TP, t.FP, t.TN, t.FN, metrics=["AUC", "F_DP"])
    with pytest.raises(BenchError, match="same shape"):
        M.fairness_gaps([1, 2], [1, 2], [1, 2], [1])


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # the one-table metric below, on a table's unknown groups
@pytest.mark.parametrize("policy", list(M.POLICIES))
def test_metric_rows_of_several_tables_equal_each_table_alone(policy: str) -> None:
    """`metric_rows_of` stacks the per-group counts of tables whose attribute has as many groups and evaluates
    each bootstrapped fairness metric once on the stack; every row equals fairness_gaps on that table's own
    (G,) counts to the last bit (tables with other group counts, an attribute with no known group, and a
    fairness metric that handles one table's counts only, evaluated table by table)."""
    from bench.metric_core import Samples, per_group

    def scalar_gap(q: M.GroupStats) -> M.MetricValue:
        """Works on one table's (G,) counts only."""
        return M.MetricValue(float(np.nanmax(q.pr) - np.nanmin(q.pr)), 2, 1)

    fewer = random_predictions(200, seed=2).assign(race=lambda d: d["race"] % 3)
    fewer["intersection"] = fewer["gender"] * 4 + fewer["race"]  # codes 0..6, one of them never used
    tables = [random_predictions(300, seed=1), fewer, random_predictions(250, seed=3),
              random_predictions(150, seed=4).assign(gender=-1)]
    M.register_metric("throwaway", kind="fairness", higher_is_better=False, unit="%", description="x",
                      bootstrapped=False)(scalar_gap)
    try:
        together = M.metric_rows_of(tables, policy=policy, min_group_size=2)
        names = [*FAIRNESS, "throwaway"]
        for table, rows in zip(tables, together, strict=True):
            pd.testing.assert_frame_equal(M.result_frame(rows), M.compute_metrics(table, policy=policy,
                                                                                  min_group_size=2), check_exact=True)
            assert [(r["attribute"], r["metric"]) for r in rows] == [("all", m) for m in DETECTION] + [
                (a, m) for a in ("gender", "race", "intersection") for m in names]
            data = Samples(table["label"].to_numpy(), table["score"].to_numpy().astype(float))
            for attribute in ("gender", "race", "intersection"):
                counts, aucs = per_group(data, table[attribute].to_numpy())
                if counts[0].size == 0:
                    counts, aucs = (np.zeros(1),) * 4, np.full(1, np.nan)
                want = M.fairness_gaps(*counts, aucs, metrics=FAIRNESS, policy=policy, min_group_size=2)
                want["throwaway"] = scalar_gap(M.GroupStats(*counts, auc=aucs, policy=policy, min_group_size=2))
                got = {r["metric"]: r for r in rows if r["attribute"] == attribute}
                for name, result in want.items():
                    row = got[name]
                    np.testing.assert_equal(row["value"], float(result.value) * 100, err_msg=f"{attribute} {name}")
                    np.testing.assert_equal(row["n_groups"], float(result.n_groups))
                    np.testing.assert_equal(row["min_group_n"], float(result.min_group_n))
    finally:
        M.METRICS.remove("throwaway")
    with pytest.raises(BenchError, match="no column 'race'"):
        M.metric_rows_of([tables[0], tables[1].drop(columns="race")])


# ------------------------------------------------------------------------------------------ compute_metrics
def test_compute_metrics_table_shape_and_units() -> None:
    d = random_predictions(500, seed=11)
    out = M.compute_metrics(d)
    assert list(out.columns) == list(M.RESULT_COLUMNS)
    assert len(out) == len(DETECTION) + 3 * len(FAIRNESS)
    assert list(out.metric[: len(DETECTION)]) == DETECTION
    assert list(out.attribute) == ["all"] * 7 + ["gender"] * 10 + ["race"] * 10 + ["intersection"] * 10
    assert value(out, "AUC") == pytest.approx(100 * M.auc(d.label, d.score))
    assert value(out, "brier") == pytest.approx(M.brier_score(d.label, d.score))
    assert value(out, "video_AUC") == pytest.approx(value(out, "AUC"))  # one frame per video
    det = out[out.attribute == "all"]
    assert det.n_groups.isna().all() and (det.min_group_n == 500).all()
    assert dict(zip(out.metric, out.unit, strict=False))["log_loss"] == ""
    hib = dict(zip(out.metric, out.higher_is_better, strict=False))
    assert hib["AUC"] and hib["worst_AUC"] and hib["worst_ACC"] and not hib["EER"] and not hib["F_FPR"]
    assert (out[out.attribute == "gender"].n_groups == 2).all()


def test_compute_metrics_video_grouping() -> None:
    d = pd.DataFrame({"video": ["a", "a", "b", "b", "c", "c", "d", "d"], "label": [0, 0, 1, 1, 0, 0, 1, 1],
                      "score": [0.25, 0.5, 0.5, 0.75, 0.25, 1.0, 0.0, 0.25]})
    out = M.compute_metrics(d, metrics=["video_auc"])
    assert list(out.metric) == ["video_AUC"] and out.min_group_n.iloc[0] == 4  # four videos
    assert value(out, "video_AUC") == pytest.approx(37.5)
    with pytest.raises(BenchError, match="both real and fake"):
        M.compute_metrics(d.assign(label=[0, 1, 1, 1, 0, 0, 1, 1]), metrics="video_AUC")


def test_attributes_are_computed_from_their_own_columns() -> None:
    d = random_predictions(800, seed=2)
    out = M.compute_metrics(d, metrics="G_AUC")
    for attribute in M.ATTRIBUTES:
        per_group = M.group_auc(d.label, d.score, d[attribute])
        assert value(out, "G_AUC", attribute) == pytest.approx(100 * (per_group.max() - per_group.min()))


# ------------------------------------------------------------------------------------------ registry
def test_registry_aliases_and_selection() -> None:
    assert set(M.METRICS.names()) == set(DETECTION + FAIRNESS)
    expected = {"auc": "AUC", "AUROC": "AUC", "acc": "ACC", "ap": "AP", "eer": "EER", "video_auc": "video_AUC",
                "logloss": "log_loss", "brier_score": "brier", "fpr_gap": "F_FPR", "FFPR": "F_EFPR",
                "FEO": "F_EO", "equalized_odds_difference": "F_MEO",
                "demographic_parity_difference": "F_DP", "auc_gap": "G_AUC", "fnr_gap": "F_FNR"}
    for alias, name in expected.items():
        assert M.METRICS.entry(alias).name == name
        assert M.METRICS.get(alias).name == name
    assert M.METRICS.select("F_*") == ["F_FPR", "F_OAE", "F_DP", "F_MEO", "F_EFPR", "F_EO", "F_FNR"]
    assert M.METRICS.select("fairness") == FAIRNESS
    assert M.METRICS.select("detection") == DETECTION
    assert M.METRICS.select("all") == DETECTION + FAIRNESS
    out = M.compute_metrics(hand_groups(), metrics=["auc", "FFPR"], attributes="group")
    assert list(out.metric) == ["AUC", "F_EFPR"]


def test_every_metric_documents_formula_direction_and_nan() -> None:
    for entry in M.METRICS.entries():
        metric = entry.obj
        assert metric.kind in ("detection", "fairness") and metric.unit in ("%", "")
        assert metric.description and "\n" not in metric.description
        assert "=" in metric.doc, metric.name
        assert "better" in metric.doc, metric.name
        assert "NaN" in metric.doc, metric.name
    assert M.METRICS.get("F_FPR").scale == 100.0 and M.METRICS.get("brier").scale == 1.0


def test_import_does_not_load_torch() -> None:
    code = "import sys, bench.metrics; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("change", "kwargs", "message"), [
    (lambda d: d.drop(columns="score"), {}, "no column 'score'"),
    (lambda d: d.drop(columns="race"), {}, "no column 'race'"),
    (lambda d: d.drop(columns="video"), {"metrics": "video_AUC"}, "no column 'video'"),
    (lambda d: d.assign(label=d.label.replace(1, 2)), {}, "column 'label' must hold 0"),
    (lambda d: d.assign(label=d.label.astype(str)), {}, "column 'label' must hold numbers .*dtype object"),
    (lambda d: d.assign(score=d.score * 2), {}, r"column 'score' must hold P\(fake\) in \[0, 1\]"),
    (lambda d: d.assign(score=d.score.where(d.index > 0)), {}, "column 'score'.*nan"),
    (lambda d: d.assign(gender=d.gender.where(d.index > 0)), {}, "column 'gender' must hold integer"),
    (lambda d: d.assign(race=d.race.astype("Int64").where(d.index > 0)), {}, "column 'race' must hold integer"),
    (lambda d: d.assign(race=d.race + 0.5), {}, "column 'race' must hold integer"),
    (lambda d: d.assign(video=d.video.where(d.index > 0)), {}, "video id"),
    (lambda d: d.iloc[:0], {}, "no rows"),
    (lambda d: d, {"policy": "all-groups"}, "Unknown policy 'all-groups'; expected one of"),
    (lambda d: d, {"threshold": 1.5}, "threshold must be a number in"),
    (lambda d: d, {"min_group_size": 0}, "min_group_size must be an integer >= 1"),
    (lambda d: d, {"metrics": "F_FRP"}, "Unknown metric 'F_FRP'"),
])
def test_bad_input_raises_bench_error(change, kwargs, message) -> None:
    d = change(random_predictions(50))
    with pytest.raises(BenchError, match=message) as info:
        M.compute_metrics(d, **kwargs)
    assert "\n" not in str(info.value)


def test_nullable_and_float_columns_are_accepted() -> None:
    d = random_predictions(300, seed=4)
    plain = M.compute_metrics(d)
    nullable = d.astype({"label": "Int64", "gender": "Int64", "race": "float64", "score": "Float64"})
    pd.testing.assert_frame_equal(M.compute_metrics(nullable), plain)


def test_unknown_metric_is_unknown_name_error() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean"):
        M.compute_metrics(random_predictions(20), metrics="F_DPP")


def test_array_functions_validate() -> None:
    with pytest.raises(BenchError, match="y_true must hold 0"):
        M.auc([0, 2], [0.1, 0.2])
    with pytest.raises(BenchError, match="score must hold"):
        M.auc([0, 1], [0.1, np.nan])
    with pytest.raises(BenchError, match="same length"):
        M.auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(BenchError, match="groups must hold integer"):
        M.group_table([0, 1], [0.1, 0.2], [0.5, 1])


def test_ratio_is_nan_where_the_denominator_is_not_positive() -> None:
    """An undefined rate is NaN, never 0 or inf, wherever the denominator sits (broadcast or 0-d)."""
    from bench.metric_core import ratio

    got = ratio(np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]), np.array([0.0, 2.0, -1.0]))
    np.testing.assert_array_equal(got, [[np.nan, 1.0, np.nan], [np.nan, 2.0, np.nan]])
    column = ratio(np.array([0.0, 1.0]), np.array([[0.0], [4.0]]))
    np.testing.assert_array_equal(column, [[np.nan, np.nan], [0.0, 0.25]])
    assert np.isnan(ratio(1, 0)) and ratio(1, 4) == 0.25 and ratio(3, 4).shape == ()
