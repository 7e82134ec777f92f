"""Level and power of the report's claims on simulated studies, and ranks that follow the tests.

The report claims a difference from the baseline when the pooled test's vs-baseline row is significant
(Holm within its family; with two methods the family is that one row). The simulated studies
(`fixtures.simulated_design`) plant intersectional F_FPR gaps of 20 pp (baseline), 10 pp ("fairer") and
20 pp ("same"); each planted method is compared with the baseline alone, as in a two-method study. One
study goes through `bench.significance.significance` and `bench.tables.leaderboard` themselves, and their
pooled rows are checked to equal `bench.stats.pooled_test` on the inputs rebuilt from the study; the rates
over 50 (default design) or 150 (paper's protocol) studies then call that same function once, vectorised
over the studies, so the whole simulation takes seconds. docs/STATISTICS.md reports these rates.
"""

from __future__ import annotations

import math

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
N_PAPER = 150
ALPHA = 0.05


def claim_rates(design: Design, n_studies: int = N_STUDIES) -> dict[str, dict[str, float]]:
    """Per planted method and scope, the share of ``n_studies`` simulated studies (the baseline and both
    planted methods) in which the report claims a difference from the baseline: for "fairer" a claim that
    it is fairer, for "same" any claim."""
    studies = [simulate_study(design, {"base": BASELINE, **PLANTED}, seed=i) for i in range(n_studies)]
    rates: dict[str, dict[str, float]] = {method: {} for method in PLANTED}
    for method in PLANTED:
        for scope in ("cross", "intra"):
            e, r, per_method = zip(*(pooled_inputs(study, method, "base", scope) for study in studies), strict=True)
            mine = None if per_method[0] is None else tuple(np.stack(x) for x in zip(*per_method, strict=True))
            result = S.pooled_test(np.stack(e), np.stack(r), alpha=ALPHA, per_method=mine)
            claimed = result.p < ALPHA
            rates[method][scope] = float(np.mean(claimed & (result.estimate < 0) if method == "fairer" else claimed))
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


@pytest.mark.parametrize(("design", "seed", "n_jobs"), [(DEFAULT_DESIGN, 1, 4), (PAPER_DESIGN, 0, 3)],
                         ids=["default", "paper"])
def test_the_report_claims_and_ranks_through_the_pooled_test(design: Design, seed: int, n_jobs: int) -> None:
    """One simulated study through the report's own functions: its pooled rows are `pooled_test` on the
    study's jobs (on the paper's protocol, one training domain, with the spread measured per method), its
    claim is the Holm-corrected row, and the leaderboard ranks follow it."""
    study = simulate_study(design, {"base": BASELINE, "fairer": PLANTED["fairer"]}, seed=seed)
    sig = SG.significance(study.tidy, study.resampled, {}, baseline="base", alpha=ALPHA)
    pooled = sig[(sig["level"] == "pooled") & (sig["comparison"] == "vs baseline")].set_index("scope")
    for scope in ("cross", "intra"):
        e, r, per_method = pooled_inputs(study, "fairer", "base", scope)
        assert (per_method is None) == (len(design.trains) > 1)
        expected = S.pooled_test(e, r, alpha=ALPHA, per_method=per_method)
        row = pooled.loc[scope]
        assert (row["method"], row["other"], row["n"]) == ("fairer", "base", n_jobs)
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
    rates = claim_rates(DEFAULT_DESIGN)
    found, false = rates["fairer"], rates["same"]
    print("default design, claims of a planted 10 pp:", found, "of a planted zero:", false)
    assert found["cross"] >= 0.8, found
    assert max(false.values()) <= 0.10, false


def test_papers_protocol_keeps_its_level_and_finds_a_planted_difference() -> None:
    """The paper's protocol (1 training x 4 test domains, 3 seeds), issue 13's bar: a planted zero is
    claimed in <= 5% of the studies in either scope, and a planted 10 pp difference cross-domain in >= 80%,
    where the sign-flip and Wilcoxon tests never can (their floor with 3 seeds or 3 pairs is 0.25). The
    jobs share one training domain, so the pooled test measures the spread between seeds within each method
    (up to 4 degrees of freedom instead of 2; the paired spread claimed about 53%). 150 studies, not 50:
    the test's power is about 84% (400 studies, docs/STATISTICS.md), and with 50 the Monte-Carlo error
    (+-5 pp) would put the 80% bar at a coin toss. An oracle z-test that knew the variance would claim it
    in over 99%; the rest is the price of estimating the training noise from three seeds."""
    rates = claim_rates(PAPER_DESIGN, N_PAPER)
    found, false = rates["fairer"], rates["same"]
    print("paper's protocol, claims of a planted zero:", false, "of a planted 10 pp:", found)
    assert max(false.values()) <= 0.05, false
    assert found["cross"] >= 0.8, found
    assert S.sign_flip_floor(3) == S.wilcoxon_floor(3) == 0.25


# ------------------------------------------------------------------------------------------ one training domain
def bootstrap_parts(replicates: np.ndarray) -> tuple[float, float]:
    """From the full bootstrap covariance Sigma of J jobs: V_test = 1'Sigma 1 / J^2 and the jobs' own test
    noise s_n / J = (tr(Sigma) / J - V_test) / (J - 1)."""
    sigma, j = np.cov(replicates), replicates.shape[0]
    v_test = sigma.sum() / j**2
    return v_test, (np.trace(sigma) / j - v_test) / (j - 1)


def per_method_by_hand(a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> tuple[float, float, float]:
    """se, df and p of the pooled test with the spread measured per method, as docs/STATISTICS.md writes it."""
    j = a.shape[0]
    v_test, own = bootstrap_parts(ra - rb)
    sides = [max(np.var(x, ddof=1) / j, bootstrap_parts(reps)[1]) for x, reps in ((a, ra), (b, rb))]
    var = max(max(v_test - own, 0.0) + sum(sides), v_test)
    df = var**2 * (j - 1) / (sides[0] ** 2 + sides[1] ** 2)
    return math.sqrt(var), df, 2 * sps.t.sf(abs((a - b).mean()) / math.sqrt(var), df)


def test_one_training_domain_measures_the_spread_per_method() -> None:
    """Jobs that differ by seed only: the spread between seeds is measured within each method (Welch), with
    each method's part floored at its own test noise; without test noise it is Welch's two-sample t-test."""
    rng = np.random.default_rng(7)
    a, b = np.array([12.0, 15.5, 9.0]), np.array([20.0, 21.0, 19.2])
    flat = np.ones(40)
    welch = sps.ttest_ind(a, b, equal_var=False)
    result = S.pooled_test(a - b, np.outer(a - b, flat), per_method=(a, np.outer(a, flat)))
    assert (result.p, result.df) == pytest.approx((welch.pvalue, welch.df))
    paired = S.pooled_test(a - b, np.outer(a - b, flat))  # the paired spread: J - 1 degrees of freedom
    assert paired.df == pytest.approx(2.0) and paired.p == pytest.approx(sps.ttest_rel(a, b).pvalue)
    shared = rng.normal(0.0, 1.0, 300)  # test noise every job shares, and each job's own
    ra = a[:, None] + 1.2 * shared + rng.normal(0.0, 1.0, (3, 300))
    rb = b[:, None] + shared + rng.normal(0.0, 2.5, (3, 300))  # b's own noise exceeds its spread: the floor
    result = S.pooled_test(a - b, ra - rb, per_method=(a, ra))
    se, df, p = per_method_by_hand(a, b, ra, rb)
    assert (result.se, result.df, result.p) == pytest.approx((se, df, p))
    assert np.var(b, ddof=1) / 3 < bootstrap_parts(rb)[1]  # so b's part is its floor here
    stacked = S.pooled_test(np.stack([a - b, b - a]), np.stack([ra - rb, rb - ra]),
                            per_method=(np.stack([a, b]), np.stack([ra, rb])))
    assert stacked.p == pytest.approx([p, p]) and stacked.df == pytest.approx([df, df])
    holes_a, holes_b = np.append(ra, ra[:1], axis=0), np.append(rb, rb[:1], axis=0)
    holes_a[0, :5] = np.nan  # replicates undefined for one method on a kept job: left out for both methods
    gappy = S.pooled_test(np.append(a - b, np.nan), holes_a - holes_b, per_method=(np.append(a, np.nan), holes_a))
    assert gappy.n == 3 and (gappy.se, gappy.df) == pytest.approx(per_method_by_hand(a, b, ra[:, 5:], rb[:, 5:])[:2])
    one = S.pooled_test((a - b)[:1], (ra - rb)[:1], per_method=(a[:1], ra[:1]))
    assert one.df == math.inf and one.se == pytest.approx((ra - rb)[0].std(ddof=1))


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


def test_families_are_numbered_as_groupby_numbers_them() -> None:
    """The correction families (comparison, level, scope, column) are numbered from the columns' codes: the
    numbers pandas' ``groupby(sort=False).ngroup()`` gives, first appearance first."""
    rng = np.random.default_rng(2)
    keys = ["comparison", "level", "scope", "column"]
    table = pd.DataFrame({key: rng.choice([f"{key}{i}" for i in range(2 + j)], size=500) for j, key in enumerate(keys)})
    expected = table.groupby(keys, sort=False).ngroup().to_numpy()
    assert np.array_equal(SG._group_numbers(table, keys), expected) and expected.max() > 20


def test_paired_differences_over_the_keys_both_methods_have() -> None:
    """The seeds and pairs levels pair two methods' values over the keys both have, in sorted key order:
    equal key sets, overlapping ones (a seed or a pair missing on either side) and disjoint ones."""
    rng = np.random.default_rng(8)
    nested = {}
    for cell in range(30):
        keys = [k for k in range(6) if rng.random() < 0.7] if cell % 3 else list(range(6))
        nested[("m", cell)] = {(f"d{k}", k): float(rng.normal()) for k in rng.permutation(keys).tolist()}
    nested[("m", 99)] = {("d9", 9): 1.0}
    values = SG._Sorted(nested)
    for a in nested:
        for b in nested:
            common = sorted(nested[a].keys() & nested[b].keys())
            got = values.differences(a, b)
            if not common:
                assert got is None
            else:
                assert got.tolist() == [nested[a][k] - nested[b][k] for k in common]
