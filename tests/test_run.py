"""`bench run`, `status` and `report` end to end on the quick preset (CPU, seconds per job)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import bench.backends
import bench.data.datasets
import bench.jobs
import bench.train
from bench.__main__ import main
from bench.config import build_config
from bench.store import PREDICTION_COLUMNS, Store, read_predictions

# The quick preset, smaller still: these tests are about plumbing, not about what the models learn (two
# epochs of 4 steps: every method still trains, selects an epoch, and predicts every test domain).
QUICK = ["--preset", "quick", "--no-progress", "--set", "train.epochs=2", "--set", "data.synthetic_scale=0.3",
         "--set", "train.steps_per_epoch=4"]
ALL_TESTS = ["synth-ff", "synth-celebdf", "synth-dfd", "synth-dfdc"]
# What `--methods all` means: every registered method but the ablations.
MAIN_METHODS = ["xception", "xception-sam", "dag-fdd", "daw-fdd", "daw-fdd-lb", "reweight", "resample", "group-dro",
                "pg-fdd", "adv-debias", "domain-ind", "eo-reg", "swad"]


def run(out: Path, *args: str) -> int:
    """`bench run` on the quick preset; the baseline alone unless ``args`` choose methods."""
    methods = [] if "--methods" in args else ["--methods", "xception"]
    return main(["run", *QUICK, "--out", str(out), *methods, *args])


def job_dirs(out: Path) -> dict[str, Path]:
    """Job folders by training domain (for tests that run one method)."""
    return {p.name.split("__")[1]: p for p in sorted((out / "runs").iterdir())}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results")
    assert run(out, "--methods", "all", "--train", "synth-ff,synth-dfdc") == 0
    return out


def test_every_job_predicts_every_test_domain(finished: Path) -> None:
    folders = sorted((finished / "runs").iterdir())
    jobs = {tuple(p.name.split("__")[:2]) for p in folders}
    assert jobs == {(m, t) for m in MAIN_METHODS for t in ("synth-ff", "synth-dfdc")} | {
        ("xception", "synth-ff-nobias")}  # the control comes with synth-ff
    for folder in folders:
        method, train = folder.name.split("__")[:2]
        assert (folder / "DONE").exists()
        assert not (folder / "checkpoint.pt").exists()
        config = json.loads((folder / "config.json").read_text())
        assert (config["job"]["method"], config["job"]["train"]) == (method, train)
        assert config["provenance"]["packages"]["torch"] == torch.__version__.split("+")[0]
        assert config["identity"]["seed"] == 0 and config["training"]["best_epoch"] in (1, 2)
        assert config["data"]["train"]["manifest_hash"]
        expected = ALL_TESTS + (["synth-ff-nobias"] if train == "synth-ff-nobias" else [])
        assert sorted(config["predictions"]) == sorted(expected)
        for domain in expected:
            frame = read_predictions(folder / "predictions" / f"{domain}.csv.gz")
            assert list(frame.columns) == list(PREDICTION_COLUMNS)
            assert len(frame) == config["predictions"][domain]["frames"] > 0
            assert frame["score"].between(0, 1).all()
            assert (frame["domain"] == domain).all()
        log = pd.read_csv(folder / "log.csv")
        assert list(log["epoch"]) == [1, 2]
        assert log["selected"].sum() == 1
        assert {"loss", "val_auc", "val_loss", "lr", "images_per_s"} <= set(log.columns)
    pg_log = pd.read_csv(next(f for f in folders if f.name.startswith("pg-fdd__")) / "log.csv")
    assert {"loss_fair", "loss_rec", "loss_dem", "sam_loss"} <= set(pg_log.columns)


def test_rerun_skips_finished_jobs_and_trains_nothing(finished: Path, capsys: pytest.CaptureFixture) -> None:
    before = {p: p.stat().st_mtime_ns for p in (finished / "runs").rglob("*") if p.is_file()}
    assert run(finished, "--methods", "all", "--train", "synth-ff,synth-dfdc") == 0
    jobs = 2 * len(MAIN_METHODS) + 1  # two training domains, and the control of synth-ff
    assert f"{jobs} of {jobs} job(s) already finished" in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for p in (finished / "runs").rglob("*") if p.is_file()}
    assert before == after


def test_status_and_dry_run(finished: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["status", *QUICK[:2], *QUICK[3:], "--out", str(finished), "--methods", "xception",
                 "--train", "synth-ff,synth-dfd"]) == 0
    out = capsys.readouterr().out
    assert "2 done, 1 pending (of 3 jobs" in out
    assert main(["run", *QUICK, "--out", str(finished / "elsewhere"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{4 * len(MAIN_METHODS) + 1} job(s); nothing was run" in out  # methods x 4 domains + the control
    assert not (finished / "elsewhere").exists()


def test_report_writes_tables(finished: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "--out", str(finished), "--bootstrap", "10", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard" in out and "Benchmark check" in out
    tidy = pd.read_csv(finished / "tables" / "metrics.csv")
    assert {"method", "role", "train", "test", "seed", "scope", "attribute", "metric", "value"} <= set(tidy.columns)
    assert set(tidy["test"]) == set(ALL_TESTS) | {"synth-ff-nobias"}
    intra = tidy[(tidy["train"] == tidy["test"])]
    assert (intra["scope"] == "intra").all()
    board = pd.read_csv(finished / "tables" / "leaderboard.csv")
    assert set(board["scope"]) == {"intra", "cross"}
    assert "intersection/F_FPR" in board.columns and "AUC" in board.columns
    controls = pd.read_csv(finished / "tables" / "controls.csv")
    assert list(controls["control"]) == ["synth-ff-nobias"]


def test_new_test_domain_is_predicted_without_retraining(tmp_path: Path) -> None:
    assert run(tmp_path, "--train", "synth-dfd", "--test", "synth-dfd", "--no-controls") == 0
    (folder,) = job_dirs(tmp_path).values()
    log_before = (folder / "log.csv").read_bytes()
    assert sorted(p.name for p in (folder / "predictions").iterdir()) == ["synth-dfd.csv.gz"]
    assert run(tmp_path, "--train", "synth-dfd", "--test", "synth-dfd,synth-celebdf", "--no-controls") == 0
    assert (folder / "log.csv").read_bytes() == log_before
    assert sorted(p.name for p in (folder / "predictions").iterdir()) == ["synth-celebdf.csv.gz", "synth-dfd.csv.gz"]
    assert len(job_dirs(tmp_path)) == 1


def test_changed_setting_is_a_new_job_and_keeps_the_old(tmp_path: Path) -> None:
    args = ["--train", "synth-dfd", "--test", "synth-dfd", "--no-controls"]
    assert run(tmp_path, *args) == 0
    assert run(tmp_path, *args, "--set", "xception.lr=0.01") == 0
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_interrupted_job_leaves_nothing_finished_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = bench.train._Progress.save

    def save_then_interrupt(self, path, method) -> None:
        original(self, path, method)
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.train._Progress, "save", save_then_interrupt)
    args = ["--train", "synth-dfd", "--test", "synth-dfd", "--no-controls"]
    assert run(tmp_path, *args) == 130
    (folder,) = job_dirs(tmp_path).values()
    assert not (folder / "DONE").exists()
    assert not (folder / "predictions").exists()
    assert (folder / "checkpoint.pt").exists()
    assert len(pd.read_csv(folder / "log.csv")) == 1
    assert not [p for p in folder.rglob("*") if ".tmp-" in p.name]

    monkeypatch.setattr(bench.train._Progress, "save", original)
    assert main(["status", *QUICK[:2], *QUICK[3:], "--out", str(tmp_path), "--methods", "xception", *args]) == 0
    assert run(tmp_path, *args) == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["training"]["resumed_from_epoch"] == 1
    assert list(pd.read_csv(folder / "log.csv")["epoch"]) == [1, 2]
    assert (folder / "DONE").exists() and (folder / "predictions" / "synth-dfd.csv.gz").exists()


def test_diverging_job_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    original = bench.train.build_method

    def build(method_cls, config, cache, *args, **kwargs):
        method, notes = original(method_cls, config, cache, *args, **kwargs)
        if cache.name == "synth-dfd":
            method.update = lambda batch: {"loss": torch.tensor(float("nan"))}
        return method, notes

    monkeypatch.setattr(bench.train, "build_method", build)
    code = run(tmp_path, "--train", "synth-dfd,synth-celebdf", "--test", "synth-celebdf")
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED xception on synth-dfd (seed 0)" in err and "loss became nan" in err
    jobs = job_dirs(tmp_path)
    assert (jobs["synth-celebdf"] / "DONE").exists()
    assert not (jobs["synth-dfd"] / "DONE").exists()
    assert "TrainingDiverged" in (jobs["synth-dfd"] / "error.txt").read_text()


def test_a_job_runs_on_the_descriptions_its_plan_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = build_config(preset="quick", sets=[
        "train.epochs=1", "data.synthetic_scale=0.3", 'plan.methods="xception"', 'plan.train="synth-dfd"',
        'plan.test="synth-dfd,synth-celebdf"', "plan.controls=false"])
    plan = bench.jobs.make_plan(settings)

    def no_discovery(*args: object, **kwargs: object) -> None:
        raise AssertionError("dataset descriptions looked up again after planning")

    for module in (bench.data.datasets, bench.jobs, bench.backends):
        monkeypatch.setattr(module, "discover", no_discovery, raising=False)
    results = bench.backends.execute(plan, run=settings, store=Store(tmp_path), progress=False, log=lambda line: None)
    assert [(r.status, r.message) for r in results] == [("done", "")]
    (folder,) = job_dirs(tmp_path).values()
    assert sorted(p.name for p in (folder / "predictions").iterdir()) == ["synth-celebdf.csv.gz", "synth-dfd.csv.gz"]


def test_parallel_jobs(tmp_path: Path) -> None:
    assert run(tmp_path, "--train", "synth-dfd,synth-celebdf", "--test", "synth-dfd", "--jobs", "2",
               "--set", "train.epochs=1") == 0
    assert all((p / "DONE").exists() for p in job_dirs(tmp_path).values())
    assert len(job_dirs(tmp_path)) == 2


def test_print_config_shows_resolved_methods(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--preset", "quick", "--print-config", "--set", "xception.lr=0.125"]) == 0
    out = capsys.readouterr().out
    assert "[train]" in out and "[xception]" in out and "lr = 0.125" in out and 'backbone = "bench-small"' in out


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--methods", "xcepton"], "Unknown method 'xcepton'. Did you mean 'xception'?"),
    (["run", "--train", "synth-f"], "Unknown dataset 'synth-f'."),
    (["run", "--preset", "fast"], "Unknown preset 'fast'."),
    (["run", "--set", "train.epoch=3"], "Unknown config key 'train.epoch'. Did you mean 'epochs'?"),
    (["run", "--set", "epochs=3"], "Malformed --set 'epochs=3'"),
    (["run", "--set", "xceptio.lr=3"], "Unknown method 'xceptio'"),
    (["run", "--config", "nowhere.toml"], "Config file 'nowhere.toml' does not exist"),
    (["run", "--seeds", "one"], "Bad --seeds 'one'"),
    (["run", "--jobs", "0"], "expected a whole number >= 1"),
    (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["report", "--out", "/nonexistent/results"], "No finished runs in /nonexistent/results/runs"),
    (["report", "--metrics", "F_FRP"], "Unknown metric 'F_FRP'. Did you mean 'F_FPR'?"),
])
def test_user_errors_are_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) if "--jobs" in argv or "--frobnicate" in argv else _nullcontext() as exit_info:
        code = main([*argv, "--dry-run"] if argv[0] == "run" else argv)
    if exit_info is not None:
        code = exit_info.value.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_error_without_traceback_in_a_real_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--methods", "nope", "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: Unknown method 'nope'.") and "Traceback" not in proc.stderr


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
