"""The results folder: layout, atomic writes, done markers, locks, and reading runs back.

Layout (names other tools rely on; keep them; `JobFiles` is the one place that spells them)::

    <out>/runs/<job>/config.json                 resolved config + provenance, rewritten as the job goes
    <out>/runs/<job>/log.csv                     one row per epoch
    <out>/runs/<job>/predictions/<domain>.csv.gz one row per test frame
    <out>/runs/<job>/model.pt                    the selected weights (predicts new test domains later)
    <out>/runs/<job>/checkpoint.pt               resumable training state (removed when the job is done)
    <out>/runs/<job>/error.txt                   the traceback of a failed job
    <out>/runs/<job>/DONE                        written last: training and predictions are complete
    <out>/tables/*.csv, <out>/figures/, <out>/report.md

Every file is written to a temporary name in the same folder and renamed into place, so an interrupted
write never leaves a file that looks finished. This module does not import torch: `bench report` reads
runs through it and must start fast.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError

DONE = "DONE"
PREDICTION_COLUMNS = ("sample", "video", "identity", "domain", "label", "logit", "score", "gender", "race",
                      "intersection", "manipulation")
_STRING = ("sample", "video", "identity", "domain")
_INT = ("label", "gender", "race", "intersection", "manipulation")
_PREDICTION_SUFFIX = ".csv.gz"


class JobBusy(BenchError):
    """Another process is running this job right now."""


@dataclass(frozen=True)
class JobFiles:
    """The files of one job's folder (wherever the folder is: in the store, or a remote worker's scratch)."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def log(self) -> Path:
        return self.folder / "log.csv"

    @property
    def model(self) -> Path:
        return self.folder / "model.pt"

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    @property
    def error(self) -> Path:
        return self.folder / "error.txt"

    @property
    def done(self) -> Path:
        return self.folder / DONE

    @property
    def lock(self) -> Path:
        return self.folder / ".lock"

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions"

    def prediction(self, domain: str) -> Path:
        return self.predictions / f"{domain}{_PREDICTION_SUFFIX}"

    def prediction_files(self) -> dict[str, Path]:
        """Every predictions file, by test domain."""
        return {p.name.removesuffix(_PREDICTION_SUFFIX): p
                for p in sorted(self.predictions.glob(f"*{_PREDICTION_SUFFIX}"))}


@dataclass(frozen=True)
class RunRecord:
    """A finished job as the report sees it."""

    job_id: str
    path: Path
    config: dict[str, Any]

    @property
    def method(self) -> str:
        return self.config["job"]["method"]

    @property
    def train(self) -> str:
        return self.config["job"]["train"]

    @property
    def seed(self) -> int:
        return int(self.config["job"]["seed"])

    @property
    def role(self) -> str:
        return self.config["job"].get("role", "main")

    def prediction_files(self) -> dict[str, Path]:
        return JobFiles(self.path).prediction_files()


class Store:
    """One results folder (``--out``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.tables = self.root / "tables"
        self.figures = self.root / "figures"

    def job_dir(self, job_id: str) -> Path:
        return self.runs / job_id

    def job_files(self, job_id: str) -> JobFiles:
        return JobFiles(self.job_dir(job_id))

    def predictions_path(self, job_id: str, domain: str) -> Path:
        return self.job_files(job_id).prediction(domain)

    def is_done(self, job_id: str) -> bool:
        return self.job_files(job_id).done.exists()

    def missing_predictions(self, job_id: str, domains: list[str]) -> list[str]:
        return [d for d in domains if not self.predictions_path(job_id, d).exists()]

    def state(self, job_id: str, domains: list[str]) -> str:
        """``done``, ``predict`` (done, but some requested test domains lack predictions), ``running``,
        ``incomplete`` (started, not finished: a rerun resumes it) or ``pending``."""
        folder = self.job_dir(job_id)
        if not folder.exists():
            return "pending"
        if self.is_done(job_id):
            return "predict" if self.missing_predictions(job_id, domains) else "done"
        return "running" if _is_locked(self.job_files(job_id).lock) else "incomplete"

    @contextmanager
    def lock(self, job_id: str) -> Iterator[Path]:
        """Hold the job's lock while working on it; a second process gets `JobBusy`."""
        files = self.job_files(job_id)
        files.folder.mkdir(parents=True, exist_ok=True)
        with files.lock.open("w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JobBusy(f"Job {job_id} is being run by another process; wait for it to finish.") from None
            for stale in files.folder.rglob(".*.tmp-*"):  # half-written by a killed process: the lock is ours
                stale.unlink(missing_ok=True)
            try:
                yield files.folder
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def mark_done(self, job_id: str) -> None:
        atomic_write_text(self.job_files(job_id).done, "")

    def finished_runs(self) -> list[RunRecord]:
        """Every job with a DONE marker, in folder order."""
        records = []
        for files in map(JobFiles, sorted(self.runs.glob("*/"))):
            if files.done.exists():
                records.append(RunRecord(job_id=files.folder.name, path=files.folder,
                                         config=json.loads(files.config.read_text())))
        return records

    def unfinished_runs(self) -> list[Path]:
        return [f for f in sorted(self.runs.glob("*/")) if not JobFiles(f).done.exists()]


# ------------------------------------------------------------------------------------------ writing
def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    """CSV (gzip-compressed when ``path`` ends in .gz, with a fixed mtime so equal tables give equal bytes)."""
    text = frame.to_csv(index=False).encode()
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(text)
        text = buffer.getvalue()
    atomic_write_bytes(path, text)


def write_predictions(path: Path, frame: pd.DataFrame) -> None:
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"Prediction frame lacks {missing}")  # a harness bug, not a user error
    atomic_write_csv(path, frame.loc[:, list(PREDICTION_COLUMNS)])


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions file with canonical dtypes; a malformed file is a `BenchError` naming it."""
    try:
        frame = pd.read_csv(path, dtype={c: str for c in _STRING}, keep_default_na=False)
    except (OSError, EOFError, gzip.BadGzipFile, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchError(f"Cannot read predictions {str(path)!r}: {exc}; delete the file (and the job's DONE "
                         f"marker) and rerun `bench run` to regenerate it.") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise BenchError(f"Predictions {str(path)!r} lack column(s) {', '.join(missing)}.")
    for col in _INT:
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype(np.int64)
    for col in ("logit", "score"):
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype(np.float64)
    return frame


def _is_locked(lock_path: Path) -> bool:
    if not lock_path.exists():
        return False
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"Not JSON-serialisable: {type(obj).__name__}")
