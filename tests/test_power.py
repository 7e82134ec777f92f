"""Level and power of the report's claims on simulated studies, and ranks that follow the tests.

The report claims a difference from the baseline when the pooled test's vs-baseline row is significant
(Holm within its family; with two methods the family is that one row). The simulated studies
(`fixtures.simulated_design`) plant intersectional F_FPR gaps of 20 pp (baseline) and 10 pp or 20 pp
(the other method). One study goes through `bench.significance.significance` and `bench.tables.leaderboard`
themselves, and their pooled rows are checked to equal `bench.stats.pooled_test` on the inputs rebuilt from
the study; the 50-study rates then call that same function once, vectorised over the studies, so the whole
simulation takes seconds. docs/STATISTICS.md reports these rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fixtures.simulated_design import (
    COLUMN,
    DEFAULT_DESIGN,
    PAPER_DESIGN,
    Design,
    fpr_profile,
    pooled_inputs,
    simulate_study,
)
from scipy import stats as sps

from bench import significance as SG
from bench import stats as S
from bench import tables as T
from bench.metrics import compute_metrics
from bench.render import render_leaderboard, to_markdown
from bench.tidy import Tidy

BASELINE = fpr_profile(0.10, 0.30)
PLANTED = {"fairer": fpr_profile(0.10, 0.20), "same": fpr_profile(0.10, 0.30)}  # 10 pp and 0 pp from the baseline
N_STUDIES = 50
ALPHA = 0.05


def claim_rates(design: Design, method: str, n_studies: int = N_STUDIES) -> dict[str, float]:
    """Per scope, the share of ``n_studies`` simulated two-method studies (the baseline and ``method``) in
    which the report claims a difference from the baseline: for "fairer" a claim that it is fairer, for
    "same" any claim."""
    studies = [simulate_study(design, {"base": BASELINE, method: PLANTED[method]}, seed=i) for i in range(n_studies)]
    rates = {}
    for scope in ("cross", "intra"):
        e, r = zip(*(pooled_inputs(study, method, "base", scope) for study in studies), strict=True)
        result = S.pooled_test(np.stack(e), np.stack(r), alpha=ALPHA)
        claimed = result.p < ALPHA
        rates[scope] = float(np.mean(claimed & (result.estimate < 0) if method == "fairer" else claimed))
    return rates


def test_the_simulated_gap_is_the_metric() -> None:
    """A simulated file's F_FPR is `compute_metrics`' intersection F_FPR on frames with those decisions."""
    study = simulate_study(PAPER_DESIGN, {"base": BASELINE}, n_boot=5, seed=3)
    row = study.tidy.frame.iloc[2]
    videos = study.videos[row["test"]]
    frames = PAPER_DESIGN.frames_per_video
    fp = study.false_positives[row["file"]]
    video = np.repeat(np.arange(len(videos)), frames)
    predicted = np.tile(np.arange(frames), len(videos)) < fp[video]  # the first fp frames of a video say fake
    group = videos["intersection"].to_numpy()[video]
    table = pd.DataFrame({"label": videos["label"].to_numpy()[video], "score": np.where(predicted, 0.9, 0.1),
                          "video": video, "intersection": group, "gender": group // 4, "race": group % 4})
    value = compute_metrics(table, metrics="F_FPR", attributes=["intersection"])["value"].iloc[0]
    assert row["value"] == pytest.approx(value)


def test_the_report_claims_and_ranks_through_the_pooled_test() -> None:
    """One simulated study through the report's own functions: its pooled rows are `pooled_test` on the
    study's jobs, its claim is the Holm-corrected row, and the leaderboard ranks follow it."""
    study = simulate_study(DEFAULT_DESIGN, {"base": BASELINE, "fairer": PLANTED["fairer"]}, seed=1)
    sig = SG.significance(study.tidy, study.resampled, {}, baseline="base", alpha=ALPHA)
    pooled = sig[(sig["level"] == "pooled") & (sig["comparison"] == "vs baseline")].set_index("scope")
    for scope in ("cross", "intra"):
        expected = S.pooled_test(*pooled_inputs(study, "fairer", "base", scope), alpha=ALPHA)
        row = pooled.loc[scope]
        assert (row["method"], row["other"], row["n"]) == ("fairer", "base", 4)
        assert (row["estimate"], row["se"], row["df"], row["p"]) == pytest.approx(
            (float(expected.estimate), float(expected.se), float(expected.df), float(expected.p)))
        assert row["p_holm"] == pytest.approx(row["p"]) and row["p_min"] == 0.0
        assert row["significant"] == (row["p"] < ALPHA)
    board = T.leaderboard(study.tidy, study.resampled, alpha=ALPHA, significance=sig).set_index(["scope", "method"])
    for scope in ("cross", "intra"):
        claimed = bool(pooled.loc[scope, "significant"] and pooled.loc[scope, "favours"] == "fairer")
        assert board.loc[(scope, "fairer"), ["rank", "best"]].tolist() == [1, True]
        assert board.loc[(scope, "base"), ["rank", "best"]].tolist() == [2 if claimed else 1, not claimed]
    assert pooled["significant"].any()  # this study has a claim, so the ranks above are tested both ways
    assert set(board["rank_test"]) == {"pooled t"}


def test_default_design_finds_a_planted_difference_and_no_planted_zero() -> None:
    """Default design (4 training x 4 test domains, one seed): a planted 10 pp difference is claimed
    cross-domain in >= 80% of 50 studies, a planted zero in <= 10% in either scope."""
    found = claim_rates(DEFAULT_DESIGN, "fairer")
    false = claim_rates(DEFAULT_DESIGN, "same")
    print("default design, claims of a planted 10 pp:", found, "of a planted zero:", false)
    assert found["cross"] >= 0.8, found
    assert max(false.values()) <= 0.10, false


def test_papers_protocol_keeps_its_level_and_can_claim() -> None:
    """The paper's protocol (1 training x 4 test domains, 3 seeds): a planted zero is claimed in <= 5% of
    50 studies in either scope. A planted 10 pp difference is claimed cross-domain in about half of them
    (0.5 here; not the 80% issue 13 hoped for: three seeds leave the spread between jobs two degrees of
    freedom, see docs/STATISTICS.md), where the sign-flip and Wilcoxon tests never can (their floor with 3
    seeds or 3 pairs is 0.25); the bound 0.4 guards that the pooled test keeps claiming there."""
    false = claim_rates(PAPER_DESIGN, "same")
    found = claim_rates(PAPER_DESIGN, "fairer")
    print("paper's protocol, claims of a planted zero:", false, "of a planted 10 pp:", found)
    assert max(false.values()) <= 0.05, false
    assert found["cross"] >= 0.4, found
    assert S.sign_flip_floor(3) == S.wilcoxon_floor(3) == 0.25


# ------------------------------------------------------------------------------------------ ranks by hand
def hand_made_study() -> tuple[Tidy, pd.DataFrame]:
    """Four methods, AUC means A > B > C > D, and pairwise pooled rows where only A > C, A > D and B > D are
    significant (by hand, not by data); one more column whose rows are Wilcoxon's (no pooled test)."""
    means = {"A": 90.0, "B": 88.0, "C": 87.0, "D": 80.0}
    frame = pd.DataFrame([{"method": m, "role": "main", "train": "dA", "test": "dB", "seed": 0, "scope": "cross",
                           "attribute": attribute, "metric": metric, "value": v if metric == "AUC" else 100 - v,
                           "column": column, "file": i}
                          for i, (m, v) in enumerate(means.items())
                          for attribute, metric, column in (("all", "AUC", "AUC"), ("all", "EER", "EER"))])
    significant = {("A", "C"), ("A", "D"), ("B", "D")}
    rows = []
    for a, b in [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]:
        rows.append({"comparison": "pairwise", "method": a, "other": b, "level": "pooled", "scope": "cross",
                     "column": "AUC", "test_name": "pooled t", "p": 0.01 if (a, b) in significant else 0.3,
                     "favours": a, "significant": (a, b) in significant})
        rows.append({"comparison": "pairwise", "method": a, "other": b, "level": "pairs", "scope": "cross",
                     "column": "EER", "test_name": "Wilcoxon", "p": 0.01 if (a, b) == ("A", "D") else 0.5,
                     "favours": a, "significant": (a, b) == ("A", "D")})
        rows.append({"comparison": "pairwise", "method": a, "other": b, "level": "pairs", "scope": "cross",
                     "column": "AUC", "test_name": "Wilcoxon", "p": 0.5, "favours": b, "significant": True})
    return Tidy(frame), pd.DataFrame(rows)


def test_ranks_and_bold_follow_the_tests_on_a_hand_made_case() -> None:
    tidy, sig = hand_made_study()
    board = T.leaderboard(tidy, None, significance=sig).set_index(["column", "method"])
    auc = board.loc["AUC"]
    assert auc["rank"].to_dict() == {"A": 1, "B": 1, "C": 2, "D": 3}
    assert auc["best"].to_dict() == {"A": True, "B": True, "C": False, "D": False}
    assert set(auc["rank_test"]) == {"pooled t"}  # the pooled rows decide, not the (here absurd) Wilcoxon rows
    eer = board.loc["EER"]  # lower is better; only A beats D, by Wilcoxon, the one test this column has
    assert eer["rank"].to_dict() == {"A": 1, "B": 1, "C": 1, "D": 2}
    assert eer["best"].to_dict() == {"A": True, "B": True, "C": True, "D": False}
    assert set(eer["rank_test"]) == {"Wilcoxon"}
    wide = T.wide_leaderboard(board.reset_index(), ["AUC"])
    assert wide["method"].tolist() == ["A", "B", "C", "D"]  # by rank, then by mean
    lines = to_markdown(render_leaderboard(wide)).splitlines()[2:]
    assert ["**" in line for line in lines] == [True, True, False, False]
    alone = T.leaderboard(tidy, None, significance=None)  # no tests: nothing separates the methods
    assert (alone["rank"] == 1).all() and alone["best"].all()


def test_paper_table_ranks_follow_the_pair_level_tests() -> None:
    tidy, sig = hand_made_study()
    pair = sig[(sig["column"] == "AUC") & (sig["level"] == "pooled")]
    pair = pair.assign(level="pair", train="dA", test="dB", test_name="DeLong")
    table = T.paper_table(tidy, pair).set_index("method")
    assert table["AUC rank"].to_dict() == {"A": 1, "B": 1, "C": 2, "D": 3}
    assert table["AUC best"].to_dict() == {"A": True, "B": True, "C": False, "D": False}


def test_power_table_is_the_t_formula() -> None:
    sig = pd.DataFrame({"comparison": ["vs baseline"] * 3 + ["pairwise"], "level": "pooled", "scope": "cross",
                        "column": COLUMN, "method": ["a", "b", "c", "a"], "n": 3, "se": [2.0, 3.0, 4.0, 9.0],
                        "df": [4.0, 6.0, 8.0, 1.0], "family_size": 3})
    power = SG.power_table(sig, alpha=0.05).iloc[0]
    assert power["se"] == 3.0 and power["df"] == 6.0 and power["comparisons"] == 3
    assert power["mdd"] == pytest.approx((sps.t.ppf(0.975, 6) + sps.t.ppf(0.8, 6)) * 3.0)
    assert power["mdd_holm"] == pytest.approx((sps.t.ppf(1 - 0.05 / 6, 6) + sps.t.ppf(0.8, 6)) * 3.0)
