"""The run path's wiring that mutation testing (docs/CONTRIBUTING.md) found unguarded, on one tiny finished job.

A job computed away from the results store (what the dask backend's workers do, `bench.jobs.remote_job`)
writes the files a local run writes, bit for bit on one CPU thread; the client stores them with DONE last
and clears an earlier local run's leftovers; a predict-only job gets the model it needs and trains nothing
(called directly, without a cluster, so the suite checks it in seconds). A finished job whose record is lost
or damaged is predicted again and says why; a job that raises fails alone with its message and traceback;
the record names the packages it ran with; the runner tells the method its training split and draws batches
of the configured size; an undefined validation score never wins the selection; the validation loss is the
mean BCE."""

from __future__ import annotations

import json
import math
import platform
import shutil
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

import bench.jobs
from bench.config import build_config
from bench.data.cache import ensure_cache
from bench.errors import BenchError, TrainingDiverged
from bench.freshness import CurrentData
from bench.jobs import Pending, make_plan, pending, remote_inputs, remote_job, run_job, store_output
from bench.method import METHODS
from bench.predict import bce_from_logits
from bench.store import Store
from bench.train import _Progress, build_method, make_sampler, selection_objectives

SETS = ["plan.methods=xception", "plan.train=synth-dfd", "plan.test=synth-dfd", "plan.controls=false",
        "train.device=cpu", "train.threads=1", "train.epochs=1", "train.steps_per_epoch=2",
        "data.synthetic_scale=0.3"]
TRAINED = {"config.json", "log.csv", "model.pt", "validation.csv.gz", "predictions/synth-dfd.csv.gz"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    """The job, its settings, and the store where it ran here, to the end."""
    run = build_config(preset="quick", sets=SETS)
    (job,) = make_plan(run)
    store = Store(tmp_path_factory.mktemp("local"))
    assert run_job(job, run=run, out=store.root, progress=False).status == "done"
    return job, run, store


def test_a_remote_job_gives_the_local_jobs_files_and_is_stored_done_last(finished, tmp_path: Path) -> None:
    job, run, local = finished
    ours = local.job_files(job.job_id)

    output = remote_job(job, run=run, state="pending", tests=list(job.tests), inputs={})
    assert set(output.files) == TRAINED  # no checkpoint, no DONE, no lock or temporary file
    for name in ("model.pt", "validation.csv.gz", "predictions/synth-dfd.csv.gz"):
        assert output.files[name] == (ours.folder / name).read_bytes(), name
    assert output.summary["epochs"] == 1 and output.summary["best_epoch"] == 1

    remote = Store(tmp_path / "remote")
    files = remote.job_files(job.job_id)
    files.folder.mkdir(parents=True)
    files.checkpoint.write_bytes(b"from an interrupted local run")
    files.error.write_text("an old failure")
    result = store_output(job, output, store=remote, state="pending")
    assert result.status == "done" and result.summary == output.summary
    assert not files.checkpoint.exists() and not files.error.exists()
    assert remote.state(job.job_id, list(job.tests)) == "done"
    for name, data in output.files.items():
        assert (files.folder / name).read_bytes() == data, name


def test_a_predict_only_remote_job_gets_the_model_and_trains_nothing(finished, tmp_path: Path) -> None:
    job, run, local = finished
    store = Store(tmp_path)
    shutil.copytree(local.root, store.root, dirs_exist_ok=True)
    files = store.job_files(job.job_id)
    assert remote_inputs(job, store, "pending") == {}
    inputs = remote_inputs(job, store, "predict")
    assert inputs == {name: (files.folder / name).read_bytes()
                      for name in ("model.pt", "config.json", "validation.csv.gz")}

    output = remote_job(job, run=run, state="predict", tests=list(job.tests), inputs=inputs)
    assert "log.csv" not in output.files and "retrained" not in output.summary  # loaded, not trained
    assert output.files["predictions/synth-dfd.csv.gz"] == files.prediction("synth-dfd").read_bytes()
    assert output.files["model.pt"] == inputs["model.pt"]
    assert store_output(job, output, store=store, state="predict").status == "predicted"


def test_a_done_job_whose_record_is_lost_is_predicted_again_and_says_why(finished, tmp_path: Path) -> None:
    job, run, local = finished
    store = Store(tmp_path)
    shutil.copytree(local.root, store.root, dirs_exist_ok=True)
    files = store.job_files(job.job_id)
    before = files.prediction("synth-dfd").read_bytes()
    files.config.unlink()
    todo = pending(job, store, CurrentData(run.data))
    assert todo.state == "predict" and todo.tests == job.tests
    assert len(todo.notes) == 1 and "record" in todo.notes[0] and "missing or unreadable" in todo.notes[0]
    result = run_job(job, run=run, out=store.root, progress=False)
    assert result.status == "predicted" and result.message == todo.notes[0]
    assert files.prediction("synth-dfd").read_bytes() == before  # the same model.pt, the same predictions
    assert json.loads(files.config.read_text())["predictions"]["synth-dfd"]["frames"] > 0
    assert pending(job, store, CurrentData(run.data)) == Pending("done", ())


def test_a_record_whose_predictions_entry_is_damaged_vouches_for_no_file(finished, tmp_path: Path) -> None:
    job, run, local = finished
    store = Store(tmp_path)
    shutil.copytree(local.root, store.root, dirs_exist_ok=True)
    files = store.job_files(job.job_id)
    record = json.loads(files.config.read_text())
    files.config.write_text(json.dumps({**record, "predictions": None}))
    todo = pending(job, store, CurrentData(run.data))
    assert todo.state == "predict" and todo.tests == ("synth-dfd",) and "synth-dfd" in todo.notes[0]
    assert run_job(job, run=run, out=store.root, progress=False).status == "predicted"
    again, before = (json.loads(files.config.read_text())["predictions"]["synth-dfd"],
                     record["predictions"]["synth-dfd"])
    assert [again[k] for k in ("manifest_hash", "cache", "frames")] == [before[k] for k in ("manifest_hash", "cache",
                                                                                          "frames")]


@pytest.mark.parametrize(("error", "message", "user_error"), [
    (RuntimeError("boom"), "RuntimeError: boom", False),  # a bug: the type is named, the traceback kept
    (BenchError("fix the data"), "fix the data", True),
    (TrainingDiverged("loss is nan"), "loss is nan", False),
])
def test_a_job_that_raises_fails_alone_with_its_message_and_traceback(finished, tmp_path: Path, monkeypatch,
                                                                      error: Exception, message: str,
                                                                      user_error: bool) -> None:
    job, run, _ = finished

    def train_method(**kwargs):
        raise error

    monkeypatch.setattr(bench.jobs, "train_method", train_method)
    result = run_job(job, run=run, out=tmp_path, progress=False)
    assert (result.status, result.message, result.user_error) == ("failed", message, user_error)
    files = Store(tmp_path).job_files(job.job_id)
    trace = files.error.read_text()
    assert trace.startswith("Traceback") and type(error).__name__ in trace and str(error) in trace
    assert not files.done.exists()


def test_the_record_says_with_what_the_job_ran(finished) -> None:
    """The report's provenance table shows these as columns `pkg <name>`: names as the package index spells them."""
    job, _, local = finished
    provenance = json.loads(local.job_files(job.job_id).config.read_text())["provenance"]
    names = ("fairness-generalization-bench", "torch", "timm", "numpy", "pandas", "scikit-learn")
    assert provenance["packages"] == {name: metadata.version(name) for name in names}
    assert provenance["python"] == platform.python_version() and provenance["platform"] == platform.platform()
    assert provenance["started"] <= provenance["finished"]


@pytest.mark.parametrize("selection", ["val_auc", "val_loss", "val_worst_auc", "val_dto"])
def test_an_epoch_whose_validation_score_is_undefined_is_never_selected_over_a_scored_one(selection: str) -> None:
    """A one-class validation split gives NaN scores: that epoch ranks last (-inf), even when it came first."""
    model = torch.nn.Linear(1, 1)
    state = _Progress(selection)
    rows = [{"epoch": 1, "val_auc": math.nan, "val_loss": math.nan, "val_worst_auc": math.nan, "val_F_FPR": 2.0},
            {"epoch": 2, "val_auc": 0.6, "val_loss": 0.7, "val_worst_auc": 0.5, "val_F_FPR": 9.0}]
    for epoch, row in enumerate(rows):
        state.history.append(row)
        state.observe(epoch, model)
    assert state.best_epoch == 1 and math.isfinite(state.best_score)
    assert selection_objectives(rows[0], selection)[0] == -math.inf


def test_the_runner_tells_the_method_its_training_split_and_draws_batches_of_the_configured_size(finished) -> None:
    job, run, _ = finished
    cache = ensure_cache(job.datasets[job.train], run.data)
    train_rows = cache.manifest.iloc[cache.rows("train")]
    groups = train_rows["intersection"].to_numpy()
    expected = np.bincount(groups[groups >= 0], minlength=8).tolist()
    cls = METHODS.get(job.method)
    method, _ = build_method(cls, job.method_config, cache, run.train, torch.device("cpu"), steps_per_epoch=3)
    assert list(method.info.group_counts) == expected and sum(expected) == (groups >= 0).sum() > 0
    assert (method.info.steps_per_epoch, method.info.epochs, method.info.image_size) == (3, 1, cache.image_size)

    standard = replace(run.train, sampler="standard", batch_size=5, steps_per_epoch=3)
    batches = list(make_sampler(cache, standard).epoch(0))
    assert [len(b) for b in batches] == [5, 5, 5] and set(np.concatenate(batches)) <= set(cache.rows("train"))


def test_the_validation_loss_is_the_mean_binary_cross_entropy() -> None:
    rng = np.random.default_rng(0)
    labels, logits = rng.integers(0, 2, 300), rng.normal(scale=3.0, size=300)
    assert bce_from_logits(labels, logits) == pytest.approx(log_loss(labels, 1 / (1 + np.exp(-logits))), rel=1e-9)
    assert bce_from_logits(np.array([1, 0]), np.array([800.0, -800.0])) == 0.0  # no overflow far out
    assert bce_from_logits(np.array([0]), np.array([800.0])) == pytest.approx(800.0)
