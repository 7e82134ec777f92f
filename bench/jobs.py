"""The plan (methods x train domains x seeds), job identity, and running jobs one by one or in parallel.

A job trains one method on one domain with one seed and predicts every test domain. Its identity is
the method, its resolved config, the training domain's data (the cache key: description and image
size, which determine the manifest), the seed, the result-changing training settings and the execution
settings that change the numbers, resolved to what the job will use (`compute_identity`: device type,
precision, channels-last, and the CPU thread count; a job runs with the threads its identity names), and
the method's code revision (`Method.revision`, when above 1). A short hash
of it names the job's folder, so the same command run again finds and skips finished work, and a
changed setting never overwrites old results. Test domains are not part of the identity: asking a
finished job for a new test domain predicts it with the saved weights, without retraining.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from bench.backbones import require_backbone
from bench.config import MethodConfig, RunConfig, check_sections, identity_dict, resolve_method_config, to_dict
from bench.data.cache import FrameCache, cache_path, ensure_cache
from bench.data.datasets import DatasetDescription, discover, select_datasets
from bench.data.loader import DeviceLoader
from bench.device import Runtime, claim_device, compute_identity, describe, resolve_device
from bench.errors import BenchError, TrainingDiverged, UnknownNameError
from bench.freshness import CurrentData, stale_reason
from bench.method import METHODS
from bench.predict import predict_logits, predictions_frame
from bench.store import (
    JobBusy,
    JobFiles,
    Store,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    write_predictions,
)
from bench.train import load_trained, train_method


@dataclass(frozen=True)
class Job:
    """One unit of work: a method trained on one domain with one seed, predicting the test domains.

    It carries the descriptions of its domains as the plan resolved them, so running it never looks
    for descriptions again (a worker uses the client's).
    """

    method: str
    train: str
    seed: int
    tests: tuple[str, ...]
    method_config: MethodConfig
    identity: dict[str, Any] = field(compare=False)
    datasets: dict[str, DatasetDescription] = field(compare=False, repr=False)  # train and test domains, by name
    job_id: str
    role: str = "main"  # "control": the baseline on a bias-free twin of a training domain
    control_for: str | None = None  # for a control: the training domain it is the twin of
    threads: int = 0  # CPU threads the job runs with (part of its identity); 0 on a GPU: torch's default

    @property
    def label(self) -> str:
        return f"{self.method} on {self.train} (seed {self.seed})"


@dataclass(frozen=True)
class Pending:
    """What a job still has to do, read from its folder: `Store.state`'s answer, with a finished job whose
    record cannot be read, or whose predictions are stale or unrecorded, turned into ``predict``; the test
    domains to (re)predict; and why, in words."""

    state: str
    tests: tuple[str, ...]
    notes: tuple[str, ...] = ()


def pending(job: Job, store: Store, current: CurrentData) -> Pending:
    """What `run_job` would do for ``job`` now (``current``: the domains' current data, shared by a plan)."""
    state = store.state(job.job_id, list(job.tests))
    if state not in ("done", "predict"):
        return Pending(state, job.tests)
    files = store.job_files(job.job_id)
    record = _read_json(files.config)
    if record is None:
        return Pending("predict", job.tests, (f"its record {files.config} is missing or unreadable, so every test "
                                              f"domain is predicted again from model.pt",))
    recorded = record.get("predictions") if isinstance(record.get("predictions"), dict) else {}
    tests, notes = [], []
    for domain in job.tests:
        if not files.prediction(domain).exists():
            tests.append(domain)
        elif why := stale_reason(recorded.get(domain), job.datasets[domain], current):
            tests.append(domain)
            notes.append(f"{domain} predicted again: {why}")
    if not tests and files.validation.exists():
        return Pending("done", (), tuple(notes))
    return Pending("predict", tuple(tests), tuple(notes))  # new test domains, or only the validation split


@dataclass
class JobResult:
    job: Job
    status: str  # done | predicted | failed | busy
    seconds: float = 0.0
    message: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    user_error: bool = False  # failed on a `BenchError`: the user's input, not the job, must change


def make_plan(run: RunConfig, *, descriptions: dict[str, DatasetDescription] | None = None,
              jobs_at_once: int = 1) -> list[Job]:
    """Every job of ``run.plan``, in a stable order (method, train domain, seed), controls last.

    ``jobs_at_once``: how many jobs will run at a time on this machine's CPU, which sets each job's share
    of the cores when ``train.threads`` is 0 (and so its identity)."""
    descriptions = descriptions if descriptions is not None else discover(run.data)
    check_sections(run, METHODS)  # a [section] or --set of neither a section nor a method
    compute = compute_identity(device=run.train.device, precision=run.train.precision,
                               channels_last=run.train.channels_last, threads=run.train.threads,
                               jobs_at_once=jobs_at_once)
    methods = METHODS.select(run.plan.methods)
    for method in methods:  # an unknown backbone or a missing weights file: before any work, not in every job
        config = resolve_method_config(METHODS.get(method).Config, run, method)
        require_backbone(config.backbone, pretrained=config.pretrained, key=f"{method}.backbone")
    trains = select_datasets(run.plan.train, descriptions, all_means=[run.data.suite])
    tests = select_datasets(run.plan.test, descriptions, all_means={descriptions[t].suite for t in trains})
    if not run.plan.seeds:
        raise BenchError("No seeds to run; give at least one with --seeds (e.g. --seeds 0,1,2).")
    test_data = [descriptions[t] for t in tests]
    plan = [_job(run, method, descriptions[train], seed, test_data, compute=compute)
            for method in methods for train in trains for seed in run.plan.seeds]
    if run.plan.controls:
        if run.plan.baseline not in METHODS:
            raise UnknownNameError(f"plan.baseline {run.plan.baseline!r} is not a method; "
                                   f"available: {', '.join(METHODS)}.")
        for train in trains:
            for control in (d for d in descriptions.values() if d.control_for == train):
                plan += [_job(run, run.plan.baseline, control, seed, [control, *test_data], role="control",
                              control_for=train, compute=compute) for seed in run.plan.seeds]
    return plan


def _job(run: RunConfig, method: str, train: DatasetDescription, seed: int, tests: list[DatasetDescription], *,
         compute: dict[str, Any], role: str = "main", control_for: str | None = None) -> Job:
    config = resolve_method_config(METHODS.get(method).Config, run, method)
    identity = {
        "method": method,
        "method_config": dataclasses.asdict(config),
        "train_data": cache_path(train, run.data)[0].name,
        "seed": seed,
        "train_config": identity_dict(run.train),
        "compute": compute,
    }
    revision = METHODS.get(method).revision
    if revision != 1:  # revision 1 is implicit: jobs from before revisions existed keep their names
        identity["method_revision"] = revision
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return Job(method=method, train=train.name, seed=seed, tests=tuple(dict.fromkeys(d.name for d in tests)),
               method_config=config, identity=identity, datasets={d.name: d for d in (train, *tests)},
               job_id=f"{method}__{train.name}__s{seed}__{digest}", role=role, control_for=control_for,
               threads=compute.get("threads", 0))


# ------------------------------------------------------------------------------------------ one job
def run_job(job: Job, *, run: RunConfig, out: Path, progress: bool = True) -> JobResult:
    """Run one job in its folder of the results store: train if needed (resuming from the last finished
    epoch), predict the missing test domains, mark it done.

    Errors end this job only: the result carries the message and the job's error file the traceback.
    KeyboardInterrupt is not caught: an interrupted job stays incomplete and resumes on the next run.
    """
    store = Store(out)
    t0 = time.perf_counter()
    try:
        with store.lock(job.job_id):
            todo = pending(job, store, CurrentData(run.data))
            if todo.state == "done":
                return JobResult(job, "done", message="already finished")
            summary, notes = _work(job, run=run, files=store.job_files(job.job_id), state=todo.state,
                                   tests=list(todo.tests), progress=progress)
            store.mark_done(job.job_id)
        return JobResult(job, "predicted" if todo.state == "predict" and "retrained" not in summary else "done",
                         seconds=time.perf_counter() - t0, summary=summary, message="; ".join([*todo.notes, *notes]))
    except JobBusy as exc:
        return JobResult(job, "busy", message=str(exc))
    except BenchError as exc:
        return _failed(job, store, t0, str(exc), traceback.format_exc(), user_error=True)
    except TrainingDiverged as exc:
        return _failed(job, store, t0, str(exc), traceback.format_exc())
    except Exception as exc:  # a bug or an environment problem: keep the traceback for the report
        return _failed(job, store, t0, f"{type(exc).__name__}: {exc}", traceback.format_exc())


@dataclass
class JobOutput:
    """A job computed away from the results store: its folder's files, by relative path, for the client."""

    files: dict[str, bytes]
    summary: dict[str, Any]
    seconds: float


def remote_job(job: Job, *, run: RunConfig, state: str, tests: list[str], inputs: dict[str, bytes]) -> JobOutput:
    """Run one job in a temporary folder of this worker and return its files; nothing touches the client's
    disk. ``inputs`` are files the job needs from the store (a finished job's model and config when only
    new test domains are to be predicted). A worker that dies takes only its temporary folder with it."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        folder = Path(tmp)
        for name, data in inputs.items():
            (folder / name).write_bytes(data)
        summary, _ = _work(job, run=run, files=JobFiles(folder), state=state, tests=tests, progress=False)
        written = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                   if p.is_file() and not p.name.startswith(".")}
    return JobOutput(files=written, summary=summary, seconds=time.perf_counter() - t0)


def store_output(job: Job, output: JobOutput, *, store: Store, state: str) -> JobResult:
    """Write a remote job's files into the store (each atomically, DONE last) under the job's lock."""
    with store.lock(job.job_id):
        files = store.job_files(job.job_id)
        for stale in (files.checkpoint, files.error):  # from an earlier, interrupted local run
            stale.unlink(missing_ok=True)
        for name, data in output.files.items():
            if files.folder / name != files.done:
                atomic_write_bytes(files.folder / name, data)
        store.mark_done(job.job_id)
    return JobResult(job, "predicted" if state == "predict" else "done", seconds=output.seconds,
                     summary=output.summary)


def remote_inputs(job: Job, store: Store, state: str) -> dict[str, bytes]:
    """What a remote worker needs from the store for ``state``: a finished job's model and record."""
    if state != "predict":
        return {}
    files = store.job_files(job.job_id)
    return {str(p.relative_to(files.folder)): p.read_bytes() for p in (files.model, files.config, files.validation)
            if p.is_file()}


def _work(job: Job, *, run: RunConfig, files: JobFiles, state: str, tests: list[str],
          progress: bool) -> tuple[dict, list[str]]:
    """Train (or load) the job's method in its folder and write the predictions of ``tests`` there (and of
    any test domain whose file the record does not vouch for); returns the training summary and notes."""
    if job.threads:
        torch.set_num_threads(job.threads)
    files.folder.mkdir(parents=True, exist_ok=True)
    files.error.unlink(missing_ok=True)
    with claim_device(resolve_device(run.train.device)) as device:
        runtime = Runtime.on(device, precision=run.train.precision, progress=progress)
        return _work_on(job, run=run, files=files, state=state, tests=tests, runtime=runtime)


def _work_on(job: Job, *, run: RunConfig, files: JobFiles, state: str, tests: list[str],
             runtime: Runtime) -> tuple[dict, list[str]]:
    train_cache = ensure_cache(job.datasets[job.train], run.data)
    test_caches = {d: ensure_cache(job.datasets[d], run.data) for d in job.tests}
    for domain in tests:  # before hours of training, not after
        if len(test_caches[domain].rows("test")) == 0:
            raise BenchError(f"Test domain {domain!r} has no test split; give it one or leave it out of --test.")
    record = _read_json(files.config) or _initial_record(job, run, train_cache.manifest_hash)
    record["provenance"].update(device=describe(runtime.device), host=socket.gethostname())
    record["data"]["train"]["data_notes"] = train_cache.notes  # how the data was read (duplicates, leaks, ...)
    if not isinstance(record.get("predictions"), dict):
        record["predictions"] = {}
    atomic_write_json(files.config, record)

    notes: list[str] = []
    method_cls = METHODS.get(job.method)
    method = None
    if files.model.exists():  # written once, when training ended: never train again for it
        try:
            method = load_trained(method_cls, job.method_config, train_cache, run.train, runtime.device, files)
        except Exception as exc:  # a truncated or foreign file: the job is trained again, and says so
            notes.append(f"its model.pt could not be read ({type(exc).__name__}), so it was retrained")
            files.model.unlink()
    elif state == "predict":
        notes.append("its model.pt is missing, so it was retrained")
    if method is None:
        if state == "predict" or not files.checkpoint.exists():
            shutil.rmtree(files.predictions, ignore_errors=True)  # from weights that were not kept
            files.validation.unlink(missing_ok=True)
            record["predictions"], tests = {}, list(job.tests)
        result = train_method(method_cls=method_cls, config=job.method_config, cache=train_cache,
                              train=run.train, seed=job.seed, runtime=runtime, files=files,
                              label=f"{job.method}/{job.train}/s{job.seed}")
        method = result.method
        record["training"] = {"best_epoch": result.best_epoch, "selection": run.train.selection,
                              "selection_score": result.best_score, "epochs": result.epochs_run,
                              "seconds": round(result.seconds, 2),
                              "train_images_per_second": round(result.images_per_second, 1),
                              "resumed_from_epoch": result.resumed_from_epoch}
        record["notes"] = result.notes
        atomic_write_json(files.config, record)
    if not files.validation.exists():  # for post-hoc methods; a job from before gains it without retraining
        _predict_split(method, train_cache, "val", files.validation, run=run, runtime=runtime)
    # ``tests`` of a job in its prediction phase are what `pending` found; otherwise every domain, of which
    # those already predicted and recorded (before an interruption) are kept.
    current = CurrentData(run.data)
    todo = [d for d in job.tests if d in tests and (state == "predict" or not files.prediction(d).exists()
                                                    or stale_reason(record["predictions"].get(d), job.datasets[d],
                                                                    current))]
    for domain in todo:
        cache = test_caches[domain]
        rows = cache.rows("test")
        seconds = _predict_split(method, cache, "test", files.prediction(domain), run=run, runtime=runtime)
        record["predictions"][domain] = {"manifest_hash": cache.manifest_hash, "cache": cache.path.name,
                                         "frames": len(rows),
                                         "images_per_second": round(len(rows) / max(seconds, 1e-9), 1),
                                         "data_notes": cache.notes}
        atomic_write_json(files.config, record)  # each domain recorded as soon as its file is in place
    record["provenance"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(files.config, record)
    files.checkpoint.unlink(missing_ok=True)
    summary = dict(record.get("training", {}))
    if notes:
        summary["retrained"] = True
    return summary, notes


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    whole = isinstance(value, dict) and all(isinstance(value.get(k), dict) for k in ("job", "data", "provenance"))
    return value if whole and isinstance(value["data"].get("train"), dict) else None


def _predict_split(method: torch.nn.Module, cache: FrameCache, split: str, path: Path, *, run: RunConfig,
                   runtime: Runtime) -> float:
    """Write ``method``'s predictions on ``split`` of ``cache`` to ``path``; returns the seconds it took."""
    rows = cache.rows(split)
    loader = DeviceLoader(cache, device=runtime.device, channels_last=run.train.channels_last)
    t0 = time.perf_counter()
    logits = predict_logits(method, loader, rows, batch_size=run.train.eval_batch_size, runtime=runtime,
                            desc=f"predict {cache.name} {split}")
    seconds = time.perf_counter() - t0
    write_predictions(path, predictions_frame(cache, rows, logits))
    return seconds


def _initial_record(job: Job, run: RunConfig, train_manifest_hash: str) -> dict[str, Any]:
    run_dict = to_dict(run)
    return {
        "job": {"id": job.job_id, "method": job.method, "train": job.train, "seed": job.seed,
                "role": job.role, "control_for": job.control_for, "tests": list(job.tests)},
        "identity": job.identity,
        "method_config": dataclasses.asdict(job.method_config),
        "config": {"preset": run.preset, "data": run_dict["data"], "train": run_dict["train"]},
        "data": {"train": {"name": job.train, "manifest_hash": train_manifest_hash}},
        "predictions": {},
        "provenance": provenance(),
    }


def provenance() -> dict[str, Any]:
    """Where and with what a job ran: git revision, package versions, Python, platform."""
    packages = {}
    for name in ("fairness-generalization-bench", "torch", "timm", "numpy", "pandas", "scikit-learn"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"git_revision": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
            "packages": packages, "python": sys.version.split()[0], "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _failed(job: Job, store: Store, t0: float, message: str, trace: str, *, user_error: bool = False) -> JobResult:
    files = store.job_files(job.job_id)
    if files.folder.exists():
        atomic_write_text(files.error, trace)
    return JobResult(job, "failed", seconds=time.perf_counter() - t0, message=message, user_error=user_error)
