"""Significance with a known truth: in the golden results (tests/fixtures/results_factory.py) `fair-x` is the
baseline with a sixth of its bias on reals (fairer by construction) and `strong-x` the baseline with a
larger separation of fakes (stronger). The report on them must favour each where it was built to be better,
call significant only what its corrected p says, and its sign-flip and Wilcoxon rows must be what the
definitions give on its own metrics.csv (recomputed here by enumeration, not with the harness's code)."""

from __future__ import annotations

import io
import itertools
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.results_factory import GOLDEN_METHODS
from scipy.stats import wilcoxon

from bench import report as R
from bench.predictions import ReportSettings

GOLDEN_RESULTS = Path(__file__).parent / "fixtures" / "golden_results"
ALPHA = 0.05
FAIRNESS = "intersection/F_FPR"  # lower is fairer; the bias of the factory raises the FPR of some groups


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("truth") / "results"
    shutil.copytree(GOLDEN_RESULTS, out)
    with redirect_stdout(io.StringIO()):
        report = R.build_report(out, settings=ReportSettings(n_boot=0, seed=0, plots=False, alpha=ALPHA),
                                progress=False)
    folder = report.path.parent / "tables"
    return pd.read_csv(folder / "significance.csv"), pd.read_csv(folder / "metrics.csv")


def test_the_fixture_is_built_with_the_truth_the_test_assumes() -> None:
    base, fair, strong = GOLDEN_METHODS["xception"], GOLDEN_METHODS["fair-x"], GOLDEN_METHODS["strong-x"]
    assert fair.bias < base.bias and fair.strength == base.strength
    assert strong.strength > base.strength and strong.bias == base.bias


def test_favours_points_to_the_method_built_better(tables) -> None:
    sig, _ = tables
    vs = sig[sig["comparison"] == "vs baseline"]
    strong_auc = vs[(vs["method"] == "strong-x") & (vs["column"] == "AUC")]
    assert len(strong_auc) > 0 and (strong_auc["favours"] == "strong-x").all() and (strong_auc["estimate"] > 0).all()
    aggregate = vs["level"].isin(["seeds", "pairs"])
    fair_gap = vs[aggregate & (vs["method"] == "fair-x") & (vs["column"] == FAIRNESS)]
    assert len(fair_gap) == 4 and (fair_gap["favours"] == "fair-x").all() and (fair_gap["estimate"] < 0).all()
    # a pairwise row names the same winner whichever way round the pair is listed
    pairwise = sig[(sig["comparison"] == "pairwise") & sig["level"].isin(["seeds", "pairs"]) & (sig["column"] == "AUC")]
    strong_rows = pairwise[(pairwise["method"] == "strong-x") | (pairwise["other"] == "strong-x")]
    assert len(strong_rows) == 8 and (strong_rows["favours"] == "strong-x").all()


def test_favours_follows_the_sign_of_the_estimate_and_the_direction_of_the_column(tables) -> None:
    sig, metrics = tables
    higher = {("all" if a == "all" else a, m): h for a, m, h in
              metrics[["attribute", "metric", "higher_is_better"]].drop_duplicates().itertuples(index=False)}
    rows = sig[sig["estimate"].abs() > 1e-9]
    for row in rows.itertuples(index=False):
        attribute, metric = row.column.split("/") if "/" in row.column else ("all", row.column)
        better = row.method if (row.estimate > 0) == bool(higher[attribute, metric]) else row.other
        assert row.favours == better, row


def test_significant_is_the_corrected_p_below_alpha(tables) -> None:
    sig, _ = tables
    assert (sig["significant"] == (sig["p_holm"] < ALPHA)).all()
    assert (sig["p_holm"] >= sig["p"] - 1e-12).all()
    # the construction is strong enough to show at the pair level: DeLong on strong-x's AUC, in-domain
    delong = sig[(sig["comparison"] == "vs baseline") & (sig["method"] == "strong-x") & (sig["column"] == "AUC")
                 & (sig["level"] == "pair") & (sig["scope"] == "intra")]
    assert len(delong) == 2 and delong["significant"].all()


def differences(metrics: pd.DataFrame, scope: str, column: str, method: str, other: str) -> pd.Series:
    """method - other, per (train, test, seed), for one scope and one table column."""
    attribute, metric = column.split("/") if "/" in column else ("all", column)
    m = metrics[(metrics["role"] == "main") & (metrics["scope"] == scope) & (metrics["attribute"] == attribute)
                & (metrics["metric"] == metric)]
    wide = m.pivot_table(index=["train", "test", "seed"], columns="method", values="value")
    return wide[method] - wide[other]


@pytest.mark.parametrize(("method", "scope", "column"), [("fair-x", "cross", FAIRNESS), ("strong-x", "intra", "AUC")])
def test_one_sign_flip_row_recomputed_from_metrics(tables, method: str, scope: str, column: str) -> None:
    sig, metrics = tables
    per_seed = differences(metrics, scope, column, method, "xception").groupby(level="seed").mean().to_numpy()
    observed = per_seed.mean()
    patterns = [np.mean(np.array(signs) * per_seed) for signs in itertools.product([1, -1], repeat=len(per_seed))]
    p = np.mean([abs(v) >= abs(observed) - 1e-9 for v in patterns])
    (row,) = sig[(sig["comparison"] == "vs baseline") & (sig["method"] == method) & (sig["level"] == "seeds")
                 & (sig["scope"] == scope) & (sig["column"] == column)].itertuples(index=False)
    assert row.test_name.startswith("sign-flip") and row.n == len(per_seed)
    assert row.estimate == pytest.approx(observed) and row.p == pytest.approx(p)


@pytest.mark.parametrize(("method", "column"), [("fair-x", FAIRNESS), ("strong-x", "AUC")])
def test_one_wilcoxon_row_recomputed_from_metrics(tables, method: str, column: str) -> None:
    sig, metrics = tables
    per_pair = differences(metrics, "cross", column, method, "xception").groupby(level=["train", "test"]).mean()
    d = per_pair.to_numpy()
    walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]  # Hodges-Lehmann
    (row,) = sig[(sig["comparison"] == "vs baseline") & (sig["method"] == method) & (sig["level"] == "pairs")
                 & (sig["scope"] == "cross") & (sig["column"] == column)].itertuples(index=False)
    assert row.test_name == "Wilcoxon" and row.n == len(d) == 4
    assert row.estimate == pytest.approx(np.median(walsh))
    assert row.p == pytest.approx(wilcoxon(d).pvalue)
