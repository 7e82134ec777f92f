"""Post-hoc per-group thresholds (`bench.postprocess`): hand-worked group rates, agreement with fairlearn's
ThresholdOptimizer, the pooled fallback, and the post-processed scores the report ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from bench.errors import BenchError
from bench.postprocess import POSTPROCESSORS, frame_uniforms, pairwise_effect, parse_postprocessors
from bench.predictions import ReportSettings


def frame(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    """(group, label, score) rows as a predictions table."""
    out = pd.DataFrame(rows, columns=["intersection", "label", "score"])
    out["sample"] = [f"v{i}/f0" for i in range(len(out))]
    out["logit"] = np.log(out["score"] / (1 - out["score"]))
    return out


# Group 0 is separable at any threshold in (0.4, 0.6). Group 1's real at 0.65 sits above a fake: one pooled
# threshold in (0.4, 0.55) (the accuracy optimum) calls it fake, FPR 1/4 against group 0's 0. Equal FPRs at
# the best accuracy: group 1's threshold goes above 0.65, so FPR 0 for both and group 1 loses the fake at
# 0.55 (TPR 3/4). Group 2 (one real, one fake) is below any minimum size of 2 or more.
HAND = frame([(0, 0, s) for s in (0.1, 0.2, 0.3, 0.4)] + [(0, 1, s) for s in (0.6, 0.7, 0.8, 0.9)]
             + [(1, 0, s) for s in (0.15, 0.25, 0.35, 0.65)] + [(1, 1, s) for s in (0.55, 0.75, 0.85, 0.95)]
             + [(2, 0, 0.5), (2, 1, 0.45)])


def rates(table: pd.DataFrame, called: np.ndarray) -> dict[tuple[int, int], float]:
    """P(called fake) per (group, label): FPR for label 0, TPR for label 1."""
    return table.assign(called=called).groupby(["intersection", "label"])["called"].mean().to_dict()


def test_thr_fpr_gives_the_hand_computed_group_rates_and_counts_the_fallback() -> None:
    fitted = POSTPROCESSORS.get("thr-fpr")().fit(HAND, min_group_size=2)
    assert fitted.fallback == (2,) and sorted(fitted.rules) == [0, 1]
    called = (fitted.apply(HAND, seed=0, threshold=0.5)["score"] >= 0.5).to_numpy()
    got = rates(HAND, called)
    assert (got[0, 0], got[1, 0]) == (0.0, 0.0)  # equal FPRs
    assert (got[0, 1], got[1, 1]) == (1.0, 0.75)


def test_thr_eo_gives_the_hand_computed_group_rates() -> None:
    fitted = POSTPROCESSORS.get("thr-eo")().fit(HAND, min_group_size=2)
    expected = rates(HAND, fitted.probability(HAND["score"].to_numpy(), HAND["intersection"].to_numpy()))
    # group 1 cannot reach TPR 1 at FPR 0, so group 0 is randomised down to group 1's (0, 3/4)
    for key, value in {(0, 0): 0.0, (1, 0): 0.0, (0, 1): 0.75, (1, 1): 0.75}.items():
        assert expected[key] == pytest.approx(value, abs=1e-9)


def test_groups_below_the_minimum_size_fall_back_to_the_pooled_threshold() -> None:
    fitted = POSTPROCESSORS.get("thr-fpr")().fit(HAND, min_group_size=5)
    assert fitted.fallback == (0, 1, 2) and fitted.rules == {}
    called = (fitted.apply(HAND, seed=0, threshold=0.5)["score"] >= 0.5).to_numpy()
    got = rates(HAND, called)
    assert (got[0, 0], got[1, 0], got[0, 1], got[1, 1]) == (0.0, 0.25, 1.0, 1.0)  # one threshold for all: unfair
    unseen = frame([(5, 0, 0.65), (-1, 0, 0.65)])  # a group the validation split lacks, and an unknown group
    assert (fitted.apply(unseen, seed=0, threshold=0.5)["score"] >= 0.5).all()


class Scores(ClassifierMixin, BaseEstimator):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Scores:
        self.fitted_ = True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, 0]


@pytest.mark.parametrize(("name", "constraints"), [("thr-fpr", "false_positive_rate_parity"),
                                                   ("thr-eo", "equalized_odds")])
def test_agrees_with_fairlearns_threshold_optimizer_on_random_scores(name: str, constraints: str) -> None:
    rng = np.random.default_rng(3)
    n = 4000
    groups = rng.integers(0, 4, n)
    labels = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + labels * (0.5 + 0.5 * groups) - 0.3 * groups)))
    validation = pd.DataFrame({"intersection": groups, "label": labels, "score": score,
                               "sample": [f"s{i}" for i in range(n)]})
    ours = POSTPROCESSORS.get(name)().fit(validation, min_group_size=1)
    assert ours.fallback == ()
    reference = ThresholdOptimizer(estimator=Scores().fit(None, None), constraints=constraints, prefit=True,
                                   predict_method="predict").fit(score[:, None], labels, sensitive_features=groups)
    expected = reference._pmf_predict(score[:, None], sensitive_features=groups)[:, 1]
    np.testing.assert_allclose(ours.probability(score, groups), expected, rtol=0, atol=1e-12)
    # realised decisions: ours (a fixed draw per sample id) and fairlearn's (its own draws) agree on every
    # group's FPR and TPR within their randomisation (4 binomial standard errors of the difference)
    mine = rates(validation, ours.decide(validation, seed=0))
    theirs = rates(validation, reference.predict(score[:, None], sensitive_features=groups, random_state=0))
    target = rates(validation, expected)
    sizes = validation.groupby(["intersection", "label"]).size()
    for key, p in target.items():
        tolerance = 4 * np.sqrt(2 * p * (1 - p) / sizes[key]) + 1e-9
        assert abs(mine[key] - theirs[key]) <= tolerance
    fpr = [target[g, 0] for g in range(4)]
    assert max(fpr) - min(fpr) < 2e-3  # the constraint holds in expectation (up to fairlearn's grid)
    if name == "thr-eo":
        tpr = [target[g, 1] for g in range(4)]
        assert max(tpr) - min(tpr) < 2e-3


def test_post_processed_scores_carry_the_decision_and_are_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(0)
    n = 600
    validation = frame([(int(g), int(y), float(s)) for g, y, s in
                        zip(rng.integers(0, 3, n), rng.integers(0, 2, n), rng.uniform(0.01, 0.99, n), strict=True)])
    fitted = POSTPROCESSORS.get("thr-fpr")().fit(validation, min_group_size=5)
    for threshold in (0.5, 0.3):
        out = fitted.apply(validation, seed=7, threshold=threshold)
        np.testing.assert_array_equal(out["score"].to_numpy() >= threshold, fitted.decide(validation, seed=7) == 1)
        assert out["score"].between(0, 1).all()
        np.testing.assert_allclose(1 / (1 + np.exp(-out["logit"])), out["score"], rtol=1e-9)
    again = fitted.apply(validation, seed=7, threshold=0.5)
    pd.testing.assert_frame_equal(fitted.apply(validation, seed=7, threshold=0.5), again)
    # frames whose rule is not randomised keep their decision and their order within the group
    p = fitted.probability(validation["score"].to_numpy(), validation["intersection"].to_numpy())
    sure = (p == 0) | (p == 1)
    for _, part in again[sure].groupby("intersection"):
        original = validation.loc[part.index, "score"]
        assert (np.argsort(part["score"].to_numpy(), kind="stable")
                == np.argsort(original.to_numpy(), kind="stable")).all()
    u0, u1 = frame_uniforms(validation["sample"], seed=0), frame_uniforms(validation["sample"], seed=1)
    assert ((u0 > 0) & (u0 < 1)).all() and not np.array_equal(u0, u1)
    assert abs(u0.mean() - 0.5) < 0.05


def test_a_validation_split_with_one_class_is_refused() -> None:
    with pytest.raises(BenchError, match="both reals and fakes"):
        POSTPROCESSORS.get("thr-fpr")().fit(frame([(0, 1, 0.7), (1, 1, 0.8)]), min_group_size=1)


def test_unknown_post_processor_and_bad_minimum_are_user_errors() -> None:
    with pytest.raises(BenchError, match="--postprocess-min-group"):
        ReportSettings(postprocess_min_group=0)
    assert parse_postprocessors("thr-fpr, thr-eo,thr-fpr") == ("thr-fpr", "thr-eo")
    assert parse_postprocessors("all") == ("thr-fpr", "thr-eo") and parse_postprocessors("") == ()
    with pytest.raises(BenchError, match="thr-fpr"):
        parse_postprocessors("thr-fp")


def test_pairwise_effect_reads_post_processed_minus_original() -> None:
    common = {"comparison": "pairwise", "level": "pair", "scope": "intra", "train": "a", "test": "a", "n": 10,
              "test_name": "paired bootstrap", "p": 0.01, "p_holm": 0.02, "column": "intersection/F_FPR"}
    significance = pd.DataFrame([
        {**common, "method": "dag-fdd", "other": "dag-fdd+thr-fpr", "estimate": 4.0, "ci_low": 1.0, "ci_high": 6.0},
        {**common, "method": "xception+thr-fpr", "other": "xception", "estimate": -3.0, "ci_low": -5.0,
         "ci_high": -1.0},
        {**common, "method": "xception", "other": "dag-fdd", "estimate": 9.0, "ci_low": 8.0, "ci_high": 10.0}])
    fits = pd.DataFrame({"method": ["dag-fdd+thr-fpr", "xception+thr-fpr"]})
    table = pairwise_effect(significance, fits).set_index("method")
    assert table.loc["dag-fdd", ["estimate", "ci_low", "ci_high"]].tolist() == [-4.0, -6.0, -1.0]
    assert table.loc["xception", ["estimate", "ci_low", "ci_high"]].tolist() == [-3.0, -5.0, -1.0]
    assert set(table["postprocessor"]) == {"thr-fpr"}
