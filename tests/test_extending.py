"""docs/CONTRIBUTING.md's recipes, followed: a throwaway metric and a throwaway figure registered from here
exactly as the page says (one decorated function each), found in a report, and removed from the registries
afterwards; and the registration refusals the page promises.

The numbers are checked against independent references: the metric's point value against pandas on the
prediction files, its CI against resampling the rows by hand with the report's own resamples.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import seaborn as sns

from bench import plots
from bench.bootstrap import bootstrap_interval
from bench.errors import BenchError
from bench.metric_core import entered, ratio, usable
from bench.metrics import METRICS, GroupStats, MetricValue, Samples, register_metric
from bench.plots import FIGURES, figure
from bench.predictions import Report, ReportSettings
from bench.report import build_report

GOLDEN_RESULTS = Path(__file__).parent / "fixtures" / "golden_results"
CAPTION = "AUC of every run per test domain (main runs): the spread over seeds at a glance."


@pytest.fixture(scope="module")
def extended() -> Iterator[None]:
    """Register the recipes' metrics and figure for this module's tests; unregister them afterwards."""
    added_metrics: list[str] = []
    added_figures: list[str] = []
    try:
        @register_metric("mean_score", kind="detection", higher_is_better=False, unit="%",
                         description="Mean P(fake) over all samples", aliases=("avg_score",),
                         bootstrapped=True, replicate=lambda w: w.mean(w.samples.score))
        def _mean_score(d: Samples) -> MetricValue:
            """mean_score = (1/n) sum_i score_i. Reported x100, lower is better; NaN for no samples."""
            return MetricValue(float(ratio(d.score.sum(), d.n)), float("nan"), d.n)

        added_metrics.append("mean_score")

        @register_metric("score_spread", kind="detection", higher_is_better=False, unit="",
                         description="Standard deviation of P(fake)", bootstrapped=False)
        def _score_spread(d: Samples) -> MetricValue:
            """score_spread = std_i score_i (ddof=0). Raw; NaN for no samples."""
            return MetricValue(float(np.std(d.score)) if d.n else float("nan"), float("nan"), d.n)

        added_metrics.append("score_spread")

        @register_metric("F_PR_ratio", kind="fairness", higher_is_better=True, unit="%", bootstrapped=True,
                         description="Demographic parity ratio: min_g PR_g / max_g PR_g")
        def _f_pr_ratio(q: GroupStats) -> MetricValue:
            """F_PR_ratio = min_g PR_g / max_g PR_g over the groups that enter. Higher is fairer."""
            mask = usable(q, q.pr, "any")
            low = np.min(np.where(mask, q.pr, np.inf), axis=-1, initial=np.inf)
            high = np.max(np.where(mask, q.pr, -np.inf), axis=-1, initial=-np.inf)
            return entered(q, mask, ratio(low, high))

        added_metrics.append("F_PR_ratio")

        @figure("auc_by_seed", needs=("metrics",), caption=CAPTION)
        def auc_by_seed(metrics: pd.DataFrame, folder: Path) -> list[Path]:
            rows = metrics[(metrics["metric"] == "AUC") & (metrics["role"] == "main")]
            if rows.empty:
                return []
            with plots._style():
                fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
                sns.stripplot(rows, x="test", y="value", hue="method", dodge=True, ax=ax)
                ax.set_ylabel("AUC (%)")
                return [plots._save(fig, folder / "auc_by_seed.png")]

        added_figures.append("auc_by_seed")
        yield
    finally:
        for name in added_metrics:
            METRICS.remove(name)
        for name in added_figures:
            FIGURES.remove(name)


@pytest.fixture(scope="module")
def report(extended: None, tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("extended") / "results"
    shutil.copytree(GOLDEN_RESULTS, out)
    for job in (out / "runs").iterdir():
        if not job.name.startswith(("fair-x__dA__", "xception__dA__s0")):
            shutil.rmtree(job)
    return build_report(out, settings=ReportSettings(n_boot=8, seed=5, formats=("csv", "md")), progress=False,
                        echo=False)


def test_the_new_metric_is_computed_and_bootstrapped(report: Report) -> None:
    metrics = report.tables["metrics"]
    rows = metrics[metrics["metric"] == "mean_score"]
    assert len(rows) == metrics["job"].nunique() * metrics["test"].nunique()
    for test_set in report.test_sets.values():
        for f in test_set.files:
            value = rows[(rows["job"] == f.run.job_id) & (rows["test"] == f.domain)]["value"].item()
            assert value == pytest.approx(100 * f.frame["score"].mean())
    board = report.tables["leaderboard"]
    assert board["mean_score ci_low"].notna().all() and board["mean_score ci_high"].notna().all()
    # the CI of one cell, by hand: each file's rows resampled with its test set's resamples, averaged like the cell
    long = report.leaderboard_long.set_index(["method", "scope", "column"])
    per_seed: dict[int, list[np.ndarray]] = {}
    for test_set in report.test_sets.values():
        for f in test_set.files:
            if f.run.method == "fair-x" and f.scope == "cross":
                scores = f.frame["score"].to_numpy()
                per_seed.setdefault(f.run.seed, []).append(
                    np.array([100 * scores[test_set.boot.indices(b)].mean() for b in range(test_set.boot.n_boot)]))
    cell = np.mean([np.mean(v, axis=0) for v in per_seed.values()], axis=0)
    mean = long.loc[("fair-x", "cross", "mean_score"), "mean"]
    low, high = bootstrap_interval(cell, estimate=mean)
    assert long.loc[("fair-x", "cross", "mean_score"), "ci_low"] == pytest.approx(max(low, 0.0))
    assert long.loc[("fair-x", "cross", "mean_score"), "ci_high"] == pytest.approx(min(high, 100.0))
    sig = report.tables["significance"]
    assert ((sig["column"] == "mean_score") & (sig["test_name"] == "paired bootstrap")).any()


def test_the_new_fairness_metric_is_per_attribute_with_a_ci(report: Report) -> None:
    metrics = report.tables["metrics"]
    f = next(iter(report.test_sets["dB"].files))
    rows = metrics[(metrics["metric"] == "F_PR_ratio") & (metrics["job"] == f.run.job_id) & (metrics["test"] == "dB")]
    assert set(rows["attribute"]) == {"gender", "race", "intersection"}
    frame = f.frame[f.frame["intersection"] >= 0]
    both = frame.groupby("intersection")["label"].nunique() == 2  # the default policy: groups with both classes
    rates = (frame["score"] >= 0.5).groupby(frame["intersection"]).mean()[both]
    expected = 100 * rates.min() / rates.max()
    assert rows.set_index("attribute").loc["intersection", "value"] == pytest.approx(expected)
    board = report.tables["leaderboard_intersection"]
    assert board["F_PR_ratio ci_low"].notna().all()


def test_a_metric_without_bootstrap_is_reported_without_a_ci(report: Report) -> None:
    board = report.tables["leaderboard"]
    assert "score_spread" in board.columns and "score_spread ci_low" not in board.columns
    text = report.path.read_text()
    note = next(line for line in text.splitlines() if "not bootstrapped" in line)
    assert "score_spread" in note and "no CI" in note
    assert "| score_spread " in text and "mean_score" in text  # both in the metric definitions
    sig = report.tables["significance"]
    assert not ((sig["column"] == "score_spread") & (sig["level"] == "pair")).any()


def test_the_new_figure_is_drawn_with_its_caption(report: Report) -> None:
    (path,) = report.figures["auc_by_seed"]
    assert path.exists() and path.stat().st_size > 5_000
    text = report.path.read_text()
    section = text.split("### auc by seed\n\n", 1)[1]
    assert section.startswith(CAPTION) and "](figures/auc_by_seed.png)" in section
    assert text.index("### heatmaps") < text.index("### auc by seed")  # registration order


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("detection", {"bootstrapped": True}, "has no per-replicate formula"),
    ("detection", {"bootstrapped": True, "replicate": lambda w: float(w.mean(w.samples.score).mean())},
     "one value per replicate"),
    ("fairness", {"bootstrapped": True, "replicate": lambda w: w.auc}, "drop replicate="),
])
def test_registration_refuses_a_bootstrap_it_cannot_do(kind: str, options: dict, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        register_metric("throwaway", kind=kind, higher_is_better=True, unit="%", description="x", **options)(
            lambda d: MetricValue(0.0, float("nan"), 0))
    assert "throwaway" not in METRICS


def test_registration_refuses_a_fairness_metric_that_is_not_vectorised() -> None:
    def scalar_gap(q: GroupStats) -> MetricValue:
        """Works on one replicate's (G,) counts only."""
        return MetricValue(float(np.nanmax(q.pr) - np.nanmin(q.pr)), 2, 1)

    with pytest.raises(BenchError, match="one value per replicate"):
        register_metric("throwaway", kind="fairness", higher_is_better=False, unit="%", description="x",
                        bootstrapped=True)(scalar_gap)
    register_metric("throwaway", kind="fairness", higher_is_better=False, unit="%", description="x",
                    bootstrapped=False)(scalar_gap)  # without the bootstrap it is fine
    assert not METRICS.get("throwaway").bootstrapped
    METRICS.remove("throwaway")


def test_a_figure_needs_a_caption() -> None:
    with pytest.raises(BenchError, match="needs a caption"):
        figure("throwaway", needs=("pairs",), caption=" ")
    assert "throwaway" not in FIGURES
