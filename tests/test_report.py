"""Tests of bench.report: the golden tables of committed prediction fixtures, the definitions behind each
number (recomputed by brute force), the significance families, the CLI, and the speed of the full report.

Golden files: ``tests/fixtures/golden/`` holds the tables `bench report` writes for the committed results
folder ``tests/fixtures/golden_results`` (3 methods x 2 training domains x 2 seeds x 3 test domains, plus
the baseline's control, 144 frames per test domain; 200 bootstrap replicates, seed 0). After an intended
change, regenerate them with ``BENCH_UPDATE_GOLDEN=1 pytest tests/test_report.py -k golden`` and review
the diff.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.results_factory import MethodModel, write_results

from bench import bootstrap as B
from bench import report as R
from bench import stats as S
from bench.__main__ import main
from bench.metrics import METRICS, compute_metrics
from bench.predictions import Report, ReportSettings, Selection
from bench.store import read_predictions

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN_RESULTS = FIXTURES / "golden_results"
GOLDEN = FIXTURES / "golden"
GOLDEN_TABLES = ("metrics", "leaderboard", "leaderboard_gender", "leaderboard_race", "leaderboard_intersection",
                 "pairs", "paper_pairs", "group_rates", "significance", "power", "friedman", "groups", "controls",
                 "provenance", "seeds")
GOLDEN_RENDERINGS = ("leaderboard_intersection.md", "leaderboard_intersection.tex", "paper_pairs.md",
                     "friedman.md")


def copy_results(tmp_path: Path, *, keep: str | tuple[str, ...] | None = None) -> Path:
    """A writable copy of the golden results folder (optionally only the jobs whose name starts with ``keep``)."""
    target = tmp_path / "results"
    shutil.copytree(GOLDEN_RESULTS, target)
    if keep is not None:
        for job in (target / "runs").iterdir():
            if not job.name.startswith(keep):
                shutil.rmtree(job)
    return target


@pytest.fixture(scope="module")
def golden_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, str]:
    out = copy_results(tmp_path_factory.mktemp("golden"))
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        report = R.build_report(out, settings=ReportSettings(n_boot=200, seed=0, plots=False), progress=False)
    return report, buffer.getvalue()


# ------------------------------------------------------------------------------------------ golden files
def test_golden_tables(golden_report: tuple[Report, str]) -> None:
    """Every table (CSV), the main renderings and the terminal summary equal the committed golden files."""
    report, printed = golden_report
    tables = report.path.parent / "tables"
    summary = printed.split("\nTables written to")[0] + "\n"
    if os.environ.get("BENCH_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for name in GOLDEN_TABLES:
            shutil.copy(tables / f"{name}.csv", GOLDEN / f"{name}.csv")
        for name in GOLDEN_RENDERINGS:
            shutil.copy(tables / name, GOLDEN / name)
        (GOLDEN / "summary.txt").write_text(summary)
    for name in GOLDEN_TABLES:
        got = pd.read_csv(tables / f"{name}.csv", keep_default_na=False, na_values=[""])
        want = pd.read_csv(GOLDEN / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(got.columns) == list(want.columns), name
        assert got.shape == want.shape, name
        for column in want.columns:
            if pd.api.types.is_numeric_dtype(want[column]) and not pd.api.types.is_bool_dtype(want[column]):
                assert np.allclose(got[column].to_numpy(float), want[column].to_numpy(float), rtol=1e-9, atol=1e-9,
                                   equal_nan=True), (name, column)
            else:
                assert got[column].astype(str).tolist() == want[column].astype(str).tolist(), (name, column)
    for name in GOLDEN_RENDERINGS:
        assert (tables / name).read_text() == (GOLDEN / name).read_text(), name
    assert summary == (GOLDEN / "summary.txt").read_text()


def test_every_table_has_every_format(golden_report: tuple[Report, str]) -> None:
    report, _ = golden_report
    tables = report.path.parent / "tables"
    for name in report.tables:
        for suffix in ("csv", "md", "tex"):
            assert (tables / f"{name}.{suffix}").stat().st_size > 0, (name, suffix)
    tex = (tables / "leaderboard_intersection.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 2 and r"\textbf{" in tex and r"$\pm$" in tex


# ------------------------------------------------------------------------------------------ definitions
def test_leaderboard_follows_its_definition(golden_report: tuple[Report, str]) -> None:
    """mean and std (ddof=1) over seeds of the pair averages, ranks by direction, best = rank 1; controls out."""
    report, _ = golden_report
    tidy = pd.read_csv(report.path.parent / "tables" / "metrics.csv")
    main_rows = tidy[tidy["role"] == "main"]
    board = report.tables["leaderboard_intersection"].set_index(["scope", "method"])
    assert set(board.index.get_level_values("method")) == {"xception", "fair-x", "strong-x"}
    for (scope, method), row in board.iterrows():
        for metric in ("AUC", "F_FPR", "worst_AUC"):
            attribute = "all" if metric == "AUC" else "intersection"
            rows = main_rows[(main_rows["method"] == method) & (main_rows["scope"] == scope)
                             & (main_rows["attribute"] == attribute) & (main_rows["metric"] == metric)]
            per_seed = rows.groupby("seed")["value"].mean()
            assert row[metric] == pytest.approx(per_seed.mean())
            assert row[f"{metric} std"] == pytest.approx(per_seed.std(ddof=1))
            assert row["n_seeds"] == 2 and row["n_pairs"] == (2 if scope == "intra" else 4)
    for scope, rows in board.groupby(level="scope"):
        for metric in ("AUC", "F_FPR", "worst_AUC"):
            best = rows[metric].idxmax() if METRICS.get(metric).higher_is_better else rows[metric].idxmin()
            assert rows.loc[best, f"{metric} rank"] == 1, (scope, metric)
    whole = report.tables["leaderboard"].set_index(["scope", "method"])
    assert whole.loc[board.index, "intersection/F_FPR"].to_numpy() == pytest.approx(board["F_FPR"].to_numpy())


def test_leaderboard_interval_equals_brute_force_resampling(tmp_path: Path) -> None:
    """The CI of a leaderboard cell: resample every test set with the report's own resamples, run
    compute_metrics on each resampled table, average like the cell, take the basic interval (cut to the
    metric's range)."""
    out = copy_results(tmp_path, keep=("fair-x", "xception__dA__"))
    report = R.build_report(out, settings=ReportSettings(n_boot=8, seed=3, plots=False), progress=False,
                            echo=False)
    board = report.leaderboard_long.set_index(["method", "scope", "column"])
    for (method, scope), column in ((("fair-x", "cross"), "intersection/F_FPR"), (("xception", "intra"), "AUC"),
                                    (("fair-x", "intra"), "gender/G_AUC")):
        attribute, metric = ("all", column) if "/" not in column else column.split("/")
        per_seed: dict[int, list[np.ndarray]] = {}
        for test_set in report.test_sets.values():
            for f in test_set.files:
                if f.run.method != method or f.scope != scope or f.run.role != "main":
                    continue
                values = []
                for b in range(8):
                    table = compute_metrics(f.frame.iloc[test_set.boot.indices(b)].reset_index(drop=True))
                    values.append(table.set_index(["attribute", "metric"]).loc[(attribute, metric), "value"])
                per_seed.setdefault(f.run.seed, []).append(np.array(values))
        cell = np.mean([np.mean(v, axis=0) for v in per_seed.values()], axis=0)
        low, high = B.bootstrap_interval(cell, estimate=board.loc[(method, scope, column), "mean"])
        ceiling = 100.0 if column == "AUC" else np.inf  # cut to the metric's range
        assert board.loc[(method, scope, column), "ci_low"] == pytest.approx(max(low, 0.0))
        assert board.loc[(method, scope, column), "ci_high"] == pytest.approx(min(high, ceiling))


def test_significance_rows_and_families(golden_report: tuple[Report, str]) -> None:
    report, _ = golden_report
    sig = report.tables["significance"]
    assert set(sig["comparison"]) == {"vs baseline", "pairwise"}
    assert set(sig.loc[sig["comparison"] == "vs baseline", "other"]) == {"xception"}
    assert set(sig["level"]) == {"pair", "seeds", "pairs", "pooled"}
    assert set(sig.loc[sig["column"] == "AUC", "test_name"]) == {"DeLong", "sign-flip", "Wilcoxon", "pooled t"}
    assert not set(zip(sig["method"], sig["other"], strict=True)) & set(zip(sig["other"], sig["method"], strict=True))
    for _, family in sig.groupby(["comparison", "level", "scope", "column"]):
        p = family["p"].to_numpy(float)
        assert (family["family_size"] == np.count_nonzero(~np.isnan(p))).all()
        assert family["p_holm"].to_numpy(float) == pytest.approx(S.holm(p), nan_ok=True)
        assert family["p_bh"].to_numpy(float) == pytest.approx(S.benjamini_hochberg(p), nan_ok=True)
    # pair level, AUC: DeLong on the seed-averaged AUCs of both methods over the same (aligned) test samples
    row = sig[(sig["comparison"] == "vs baseline") & (sig["method"] == "strong-x") & (sig["level"] == "pair")
              & (sig["train"] == "dA") & (sig["test"] == "dC") & (sig["column"] == "AUC")].iloc[0]
    test_set = report.test_sets["dC"]
    frames = {(f.run.method, f.run.seed): f.frame for f in test_set.files if f.run.train == "dA"}
    scores = np.vstack([frames[("strong-x", s)]["score"] for s in (0, 1)] +
                       [frames[("xception", s)]["score"] for s in (0, 1)])
    parts = S.delong_parts(test_set.reference["label"], scores, clusters=test_set.reference["video"])
    expected = S.delong_contrast(parts.auc, S.delong_covariance(parts), [0.5, 0.5, -0.5, -0.5])
    assert row["estimate"] == pytest.approx(100 * expected.estimate)
    assert row["p"] == pytest.approx(expected.p)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((100 * expected.low, 100 * expected.high))
    assert row["n"] == test_set.reference["video"].nunique()


def test_a_method_against_its_copy_differs_by_nothing(tmp_path: Path) -> None:
    out = copy_results(tmp_path, keep="xception__dA__")
    for job in list((out / "runs").glob("xception__dA__*")):
        twin = out / "runs" / job.name.replace("xception", "twin")
        shutil.copytree(job, twin)
        config = json.loads((twin / "config.json").read_text())
        config["job"]["method"] = "twin"
        (twin / "config.json").write_text(json.dumps(config))
    report = R.build_report(out, settings=ReportSettings(n_boot=50, plots=False, baseline="xception"),
                            progress=False, echo=False)
    sig = report.tables["significance"]
    rows = sig[(sig["method"] == "twin") & (sig["other"] == "xception") & (sig["level"] == "pair")]
    assert len(rows) > 0
    assert (rows["estimate"].abs() < 1e-12).all()
    assert (rows["p"] == 1.0).all()
    assert (rows["ci_low"].abs() < 1e-12).all() and (rows["ci_high"].abs() < 1e-12).all()


def test_controls_are_reported_apart(golden_report: tuple[Report, str]) -> None:
    report, _ = golden_report
    controls = report.tables["controls"]
    assert controls[["method", "domain", "control", "seeds_on", "seeds_off"]].values.tolist() == [
        ["xception", "dA", "dA-nobias", 2, 2]]
    assert "dA-nobias" not in set(report.tables["paper_pairs"]["train"])
    assert set(report.tables["provenance"]["role"]) == {"main", "control"}
    assert "dA-nobias" in set(report.tables["metrics"]["test"])


def test_report_md_has_every_section(golden_report: tuple[Report, str]) -> None:
    report, _ = golden_report
    text = report.path.read_text()
    for heading in ("## Settings", "## Leaderboards", "### intersection", "### gender", "### race",
                    "## Per train -> test pair", "### dA → dC", "## Significance", "Friedman test",
                    "Benavoli", "## Metric definitions", "## Model selection", "## Seeds",
                    "## Groups behind each gap", "## Benchmark check", "## Provenance"):
        assert heading in text, heading
    assert "val_auc" in text and "7be9049800" in text  # the selection rule and a job's identity hash
    assert "F_FPR = max_g FPR_g - min_g FPR_g" in text  # a metric's definition, from its docstring


def test_test_sets_split_on_any_difference_in_ids_labels_or_groups() -> None:
    """Files of one domain form one test set only when their sample ids, labels and intersection groups
    are the same row by row; one value changed, at the same length, is another test set."""
    from bench.predictions import PredictionFile, group_test_sets
    from bench.store import RunRecord

    base = pd.DataFrame({"sample": ["a", "b", "c"], "label": [0, 1, 1], "intersection": [0, 1, 2],
                         "video": ["v1", "v2", "v3"]})
    variants = [base, base.copy(), base.assign(label=[0, 1, 0]), base.assign(sample=["a", "b", "d"]),
                base.assign(intersection=[0, 1, 3]), base.assign(score=0.5)]
    files = [PredictionFile(run=RunRecord(job_id=f"job{i}", path=Path("."), config={}), domain="d", frame=frame,
                            index=i) for i, frame in enumerate(variants)]
    sets, warnings = group_test_sets(files, cluster="video")
    assert [[f.index for f in s.files] for s in sets.values()] == [[0, 1, 5], [2], [3], [4]]
    assert list(sets) == ["d#1", "d#2", "d#3", "d#4"] and "4 different sample sets" in warnings[0]


def test_mismatched_test_samples_are_not_compared(tmp_path: Path) -> None:
    out = copy_results(tmp_path, keep=("fair-x", "xception__dA"))
    path = next((out / "runs").glob("fair-x__dA__s0__*")) / "predictions" / "dC.csv.gz"
    frame = read_predictions(path)
    frame.iloc[5:].to_csv(path, index=False, compression="gzip")  # a changed data set: other samples
    report = R.build_report(out, settings=ReportSettings(n_boot=20, plots=False), progress=False, echo=False)
    assert any("different sample sets" in w for w in report.warnings)
    assert set(report.test_sets) == {"dA", "dB", "dC#1", "dC#2", "dA-nobias"}
    sig = report.tables["significance"]
    pair = sig[(sig["level"] == "pair") & (sig["train"] == "dA") & (sig["test"] == "dC")
               & ((sig["method"] == "fair-x") | (sig["other"] == "fair-x"))]
    assert pair.empty
    assert len(report.tables["leaderboard"])  # the file still counts for its own metrics


def test_single_method_report(tmp_path: Path) -> None:
    out = copy_results(tmp_path, keep="xception")
    report = R.build_report(out, settings=ReportSettings(n_boot=20, plots=False), progress=False, echo=False)
    assert report.tables["significance"].empty and report.tables["friedman"].empty
    assert "there is nothing to compare" in report.path.read_text()


def test_one_job(tmp_path: Path) -> None:
    """One method, one training domain, one seed: no std (NaN, left out of the renderings), no comparisons."""
    out = copy_results(tmp_path, keep="fair-x__dA__s0")
    report = R.build_report(out, settings=ReportSettings(n_boot=20, plots=False), progress=False, echo=False)
    paper = report.tables["paper_pairs"]
    assert list(paper["test"]) == ["dA", "dB", "dC"] and paper["AUC std"].isna().all()
    assert paper["intersection/F_FPR"].notna().all()
    board = report.tables["leaderboard_intersection"]
    assert board["AUC std"].isna().all() and board["AUC ci_low"].notna().all()
    assert "±" not in (out / "tables" / "paper_pairs.md").read_text()
    assert report.tables["significance"].empty


@pytest.mark.parametrize("cluster", ["identity", "none"])
def test_other_cluster_units(tmp_path: Path, cluster: str) -> None:
    out = copy_results(tmp_path, keep="fair-x")
    report = R.build_report(out, settings=ReportSettings(n_boot=30, plots=False, cluster=cluster), progress=False,
                            echo=False)
    board = report.leaderboard_long
    assert board["ci_low"].notna().any()
    assert (board.loc[board["column"] == "AUC", "ci_low"] < board.loc[board["column"] == "AUC", "mean"]).all()


# ------------------------------------------------------------------------------------------ CLI
def test_cli_flags(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = copy_results(tmp_path, keep="fair-x")
    code = main(["report", "--out", str(out), "--bootstrap", "25", "--alpha", "0.1", "--cluster", "identity",
                 "--formats", "csv,md", "--no-plots", "--no-progress", "--seed", "4", "--baseline", "fair-x"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Leaderboard" in printed and "Report:" in printed
    tables = out / "tables"
    assert (tables / "leaderboard.csv").exists() and (tables / "leaderboard.md").exists()
    assert not list(tables.glob("*.tex")) and not (out / "figures").exists()
    text = (out / "report.md").read_text()
    assert "25 replicates, clusters = identity" in text and "90% intervals" in text


# ------------------------------------------------------------------------------------------ selection
def test_a_selection_reports_exactly_its_jobs_in_its_own_folder(tmp_path: Path) -> None:
    """--train dA gives the numbers of a folder that holds only the dA-trained jobs, written under
    reports/train-dA; the whole folder's report stays untouched."""
    out = copy_results(tmp_path / "all")
    only_da = copy_results(tmp_path / "dA", keep=("xception__dA__", "fair-x__dA__", "strong-x__dA__"))
    main_report = main(["report", "--out", str(out), "--no-plots", "--no-progress", "--bootstrap", "20"])
    assert main_report == 0
    before = (out / "report.md").read_bytes(), (out / "tables" / "metrics.csv").read_bytes()
    part = R.build_report(out, settings=ReportSettings(n_boot=20, plots=False, selection=Selection(train="dA")),
                          progress=False, echo=False)
    reference = R.build_report(only_da, settings=ReportSettings(n_boot=20, plots=False), progress=False,
                               echo=False)
    assert part.path == out / "reports" / "train-dA" / "report.md" and part.path.exists()
    assert (out / "reports" / "train-dA" / "tables" / "leaderboard.csv").exists()
    assert before == ((out / "report.md").read_bytes(), (out / "tables" / "metrics.csv").read_bytes())
    pd.testing.assert_frame_equal(part.tables["metrics"].drop(columns="job"),
                                  reference.tables["metrics"].drop(columns="job"))
    columns = ["scope", "method", "n_seeds", "n_pairs", "AUC", "intersection/F_FPR"]
    pd.testing.assert_frame_equal(part.tables["leaderboard"][columns], reference.tables["leaderboard"][columns])
    assert set(part.tables["provenance"]["train"]) == {"dA"}
    assert "| selection          | --train dA " in part.path.read_text()


def test_selection_by_method_glob_and_test_domain(tmp_path: Path) -> None:
    out = copy_results(tmp_path)
    part = R.build_report(out, settings=ReportSettings(
        n_boot=0, plots=False, selection=Selection(methods="*-x", test="dB,dC")), report_dir=tmp_path / "mine",
        progress=False, echo=False)
    metrics = part.tables["metrics"]
    assert set(metrics["method"]) == {"fair-x", "strong-x"} and set(metrics["test"]) == {"dB", "dC"}
    assert part.path == tmp_path / "mine" / "report.md"
    assert Selection(methods="*-x", test="dB,dC").folder_name() == "methods-x-x_test-dB+dC"
    assert Selection(train="all").everything and R.report_folder(out, Selection()) == out


@pytest.mark.parametrize(("argv", "message"), [
    (["--train", "dZ"], "--train 'dZ' matches nothing in this results folder; there: dA, dA-nobias, dB."),
    (["--methods", "nobody*"], "--methods 'nobody*' matches nothing in this results folder; there: fair-x, "),
])
def test_selection_that_matches_nothing_names_what_there_is(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                             argv: list[str], message: str) -> None:
    out = copy_results(tmp_path)
    assert main(["report", "--out", str(out), "--no-plots", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (out / "reports").exists() and not (out / "report.md").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--formats", "csv,pdf"], "Unknown format(s) 'pdf' in --formats"),
    (["--bootstrap", "-5"], "--bootstrap must be a whole number >= 0"),
    (["--alpha", "0.7"], "--alpha must be a number between 0 and 0.5"),
    (["--baseline", "nobody"], "--baseline 'nobody' has no finished runs"),
])
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                 message: str) -> None:
    out = copy_results(tmp_path, keep="fair-x__dA__s0")
    assert main(["report", "--out", str(out), "--no-plots", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_failing_report_stops_its_figure_processes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The figure processes start before the predictions are read; a report that then fails ends them
    (none is left running) and leaves no figures folder behind."""
    import multiprocessing

    out = copy_results(tmp_path, keep="fair-x__dA__s0")
    before = set(multiprocessing.active_children())  # other tests' pools may still be there
    assert main(["report", "--out", str(out), "--no-progress", "--baseline", "nobody"]) == 2
    assert "--baseline 'nobody' has no finished runs" in capsys.readouterr().err
    assert set(multiprocessing.active_children()) - before == set()
    assert not (out / "figures").exists() and not (out / "report.md").exists()


def test_cli_rejects_an_unknown_cluster_unit(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--cluster", "frame"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'frame'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ speed
BENCH_METHODS = {"xception": MethodModel(2.0, 1.2, 1.0), "fair-x": MethodModel(2.0, 0.2, 1.0),
                 "strong-x": MethodModel(3.0, 1.2, 1.0), "weak-x": MethodModel(1.2, 1.0, 1.2)}


def test_full_report_speed(benchmark, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The full report without figures for 16 jobs (4 methods x 2 training domains x 2 seeds) x 4 test domains
    x 25,000 predictions each (1,000 videos of 25 frames) with 1,000 bootstrap replicates: under 60 s.

    With ``--benchmark-enable`` it runs at that size and asserts the time. By default (benchmarks disabled,
    pytest's usual run) the same code runs once on 60 videos of 5 frames with 100 replicates, so the suite
    stays fast while every step of the full report is still exercised and checked.
    """
    full = not benchmark.disabled
    root = tmp_path_factory.mktemp("bench")
    write_results(root, methods=BENCH_METHODS, trains=["dA", "dB"], tests=["dA", "dB", "dC", "dD"], seeds=[0, 1],
                  n_videos=1000 if full else 40, frames_per_video=25 if full else 4)
    n_boot = 1000 if full else 50
    tables = benchmark.pedantic(R.make_report, args=(root,), kwargs={"n_boot": n_boot, "plots": False,
                                                                     "progress": False, "echo": False},
                                rounds=1, iterations=1)
    metrics = tables["metrics"]
    assert metrics["job"].nunique() == 16 and metrics.groupby("job")["test"].nunique().eq(4).all()
    assert len(read_predictions(next(root.glob("runs/*/predictions/dC.csv.gz")))) == (25_000 if full else 160)
    assert tables["leaderboard"]["AUC ci_low"].notna().all()
    assert len(tables["significance"]) > 0 and len(tables["friedman"]) > 0
    if full:
        assert benchmark.stats.stats.max < 60.0


def test_a_report_does_not_import_scipy_stats(tmp_path: Path) -> None:
    """A whole report (every table, no figures) runs without importing scipy.stats, which costs about 0.4-0.5 s
    of its start: `bench.distributions` computes what the report used of it."""
    out = copy_results(tmp_path)
    code = ("import sys\nfrom pathlib import Path\nfrom bench.report import make_report\n"
            f"tables = make_report(Path({str(out)!r}), n_boot=20, plots=False, progress=False, echo=False)\n"
            "print(len(tables['friedman']), len(tables['significance']), 'scipy.stats' in sys.modules)")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    friedman, significance, imported = done.stdout.split()[-3:]
    assert int(friedman) > 0 and int(significance) > 0  # Nemenyi's quantile and every test ran
    assert imported == "False"


def test_a_methods_intervals_do_not_depend_on_the_other_methods(tmp_path: Path) -> None:
    """Each test set's resamples depend only on --seed and the test set, so adding methods to a results folder
    leaves the intervals of the methods already there unchanged."""
    settings = ReportSettings(n_boot=40, plots=False, seed=9)
    alone = R.build_report(copy_results(tmp_path / "a", keep="fair-x"), settings=settings, progress=False, echo=False)
    together = R.build_report(copy_results(tmp_path / "b", keep=("fair-x", "strong-x")), settings=settings,
                              progress=False, echo=False)
    for key in alone.test_sets:
        assert np.array_equal(alone.test_sets[key].boot.counts, together.test_sets[key].boot.counts)
    mine = together.leaderboard_long[together.leaderboard_long["method"] == "fair-x"]
    a = alone.leaderboard_long.set_index(["scope", "column"])
    b = mine.set_index(["scope", "column"]).loc[a.index]
    assert np.allclose(a[["mean", "ci_low", "ci_high"]], b[["mean", "ci_low", "ci_high"]], equal_nan=True)


def test_a_table_too_long_to_read_is_csv_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables over `READING_ROWS` rows get no Markdown/LaTeX copy (and a stale copy from an earlier, shorter
    report is removed); shorter ones get all three; the CSV holds every row either way."""
    from bench import render

    monkeypatch.setattr(render, "READING_ROWS", 3)
    stale = tmp_path / "long.md"
    stale.write_text("an earlier report's rendering")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    written = render.write_table(render.Table("long", frame), tmp_path, ("csv", "md", "tex"))
    assert written == [tmp_path / "long.csv"] and not stale.exists() and not (tmp_path / "long.tex").exists()
    assert len(pd.read_csv(tmp_path / "long.csv")) == 4
    short = render.write_table(render.Table("short", frame.head(3)), tmp_path, ("csv", "md", "tex"))
    assert [p.suffix for p in short] == [".csv", ".md", ".tex"] and "| 3" in (tmp_path / "short.md").read_text()


@pytest.mark.parametrize("formats", [("csv", "md", "tex"), ("md",), ("csv",)])
def test_write_tables_writes_what_write_table_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     formats: tuple[str, ...]) -> None:
    """The long tables' CSV files come from a forked process; the files are the same, byte for byte, as one
    `write_table` per table writes, and a stale rendering of a long table is removed either way."""
    from bench import render

    monkeypatch.setattr(render, "READING_ROWS", 3)
    frames = {"long": pd.DataFrame({"x": [0.1, 2.0, np.nan, 1 / 3], "y": ["a,b", "c", "d", "e"]}),
              "short": pd.DataFrame({"x": [1.5, 2.25], "flag": [True, False]}),
              "other_long": pd.DataFrame({"n": range(5)})}
    tables = [render.Table(name, frame) for name, frame in frames.items()]
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir()
    for table in tables:
        render.write_table(table, one, formats)
    many.mkdir()
    (many / "long.md").write_text("an earlier report's rendering")
    render.write_tables(tables, many, formats)
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in many.iterdir()) and names
    assert all((one / n).read_bytes() == (many / n).read_bytes() for n in names)
    assert ("long.csv" in names) == ("csv" in formats) and "long.md" not in names
