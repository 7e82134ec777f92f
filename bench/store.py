"""The results folder: layout, atomic writes, done markers, locks, and reading runs back.

Layout (names other tools rely on; keep them; `JobFiles` is the one place that spells them)::

    <out>/runs/<job>/config.json                 resolved config + provenance, rewritten as the job goes
    <out>/runs/<job>/log.csv                     one row per epoch
    <out>/runs/<job>/predictions/<domain>.csv.gz one row per test frame
    <out>/runs/<job>/validation.csv.gz           the same for the training domain's validation split
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

import errno
import fcntl
import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.csv_text import csv_text
from bench.errors import BenchError
from bench.groups import N_GROUPS

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

    @property
    def validation(self) -> Path:
        """The selected weights' predictions on the training domain's validation split (outside
        ``predictions/``, so never taken for a test domain); for post-hoc methods fitted on it."""
        return self.folder / f"validation{_PREDICTION_SUFFIX}"

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

    @property
    def validation(self) -> Path:
        return JobFiles(self.path).validation


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

    def needs_predictions(self, job_id: str, domains: list[str]) -> bool:
        """Whether a finished job lacks a requested test domain's predictions or its validation predictions."""
        return bool(self.missing_predictions(job_id, domains)) or not self.job_files(job_id).validation.exists()

    def is_done(self, job_id: str) -> bool:
        return self.job_files(job_id).done.exists()

    def missing_predictions(self, job_id: str, domains: list[str]) -> list[str]:
        return [d for d in domains if not self.predictions_path(job_id, d).exists()]

    def state(self, job_id: str, domains: list[str]) -> str:
        """``done``, ``predict`` (done, but some requested test domains or the validation split lack
        predictions), ``running``,
        ``incomplete`` (started, not finished: a rerun resumes it) or ``pending``."""
        folder = self.job_dir(job_id)
        if not folder.exists():
            return "pending"
        if self.is_done(job_id):
            return "predict" if self.needs_predictions(job_id, domains) else "done"
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
            for leftover in (*files.folder.glob(".*.tmp-*"), *files.predictions.glob(".*.tmp-*")):
                leftover.unlink(missing_ok=True)  # a write cut short by a kill; nobody else writes here now
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
                records.append(RunRecord(job_id=files.folder.name, path=files.folder, config=_read_record(files)))
        return records

    def unfinished_runs(self) -> list[Path]:
        return [f for f in sorted(self.runs.glob("*/")) if not JobFiles(f).done.exists()]


# ------------------------------------------------------------------------------------------ writing
def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``path`` whole or not at all: the bytes go to a temporary file beside it, which then replaces it,
    so a process killed mid-write leaves the old file (or none), never half of the new one.

    ``durable`` also flushes the bytes to the disk before the replacement, so that a power cut right after
    cannot leave an empty file either: for what only training produces (predictions, checkpoints, job
    records). The report's tables, figures and report.md are rebuilt from those in seconds, so they skip it
    (``durable=False``): on the default grid the report writes about 70 files, and the flushes cost 0.1-0.2 s
    of its time (more on a busy disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except IsADirectoryError as exc:  # a folder the user made where a file goes: kept, and named
            raise BenchError(f"{str(path)!r} is a folder, not a file, so it cannot be written; move or rename that "
                             f"folder, then run the command again.") from exc
    finally:
        tmp.unlink(missing_ok=True)


def move_into(paths: Sequence[Path], folder: Path) -> list[Path]:
    """Move ``paths`` into ``folder`` (made if missing), each replacing the file of its name there; the new
    paths. Each move is one rename, so every file there is whole at every moment; where ``folder`` is on
    another file system (a link to another disk), it is written there by `atomic_write_bytes` instead."""
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        target = folder / path.name
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            atomic_write_bytes(target, path.read_bytes(), durable=False)
            path.unlink()
        moved.append(target)
    return moved


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode(), durable=durable)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def atomic_write_csv(path: Path, frame: pd.DataFrame, *, durable: bool = True) -> None:
    """CSV (gzip-compressed when ``path`` ends in .gz, with a fixed mtime so equal tables give equal bytes):
    pandas' ``to_csv(index=False)`` text, written by `bench.csv_text` (the same characters, faster);
    ``durable`` as in `atomic_write_bytes`."""
    text = csv_text(frame).encode()
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(text)
        text = buffer.getvalue()
    atomic_write_bytes(path, text, durable=durable)


def write_predictions(path: Path, frame: pd.DataFrame) -> None:
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"Prediction frame lacks {missing}")  # a harness bug, not a user error
    atomic_write_csv(path, frame.loc[:, list(PREDICTION_COLUMNS)])


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions file with canonical dtypes; a damaged file is a `BenchError` naming it and the fix."""
    try:
        frame = pd.read_csv(path, dtype={c: str for c in _STRING}, keep_default_na=False)
    except (OSError, EOFError, zlib.error, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError,
            ValueError) as exc:
        raise _damaged(path, f"it cannot be read: {exc}") from None
    return _checked_predictions(frame, path)


def read_prediction_files(paths: Sequence[Path], *, done: Callable[[int], Any] | None = None) -> list[pd.DataFrame]:
    """`read_predictions` of every path, in order: the same frames and the same errors, in less time.

    The CSV parser has a fixed cost per call, most of the reading time on the report's files (213 of about
    650 rows each on the default grid). Files in the plain shape `bench run` writes (the canonical header,
    then unquoted rows, one per line) are parsed by one call, checked together, and split back by their line
    counts (0.6-0.8 of the time on the default grid); any other file is read on its own, and so are all of
    them when the joint parse gives a column another type than its canonical one (one odd file would change
    the types the others are read with). A check the files fail together is repeated file by file, so its
    error names the file and row.
    ``done(k)`` is called as k more files are read (a progress bar)."""
    rows: dict[int, tuple[bytes, int]] = {}
    for i, path in enumerate(paths):
        plain = _plain_rows(path)
        if plain is not None:
            rows[i] = plain
        if done is not None:
            done(1)
    together = _parse_together(rows, paths) if len(rows) > 1 else {}
    return [together[i] if i in together else read_predictions(path) for i, path in enumerate(paths)]


_HEADER = ",".join(PREDICTION_COLUMNS).encode()


def _plain_rows(path: Path) -> tuple[bytes, int] | None:
    """The rows after the header of a gzip predictions file in the plain shape and their number, else None
    (the file is read on its own). A row lacking fields leaves NaN in the last, integer, column, and one
    with too many is a parser error: either sends every file back to be read on its own."""
    if not path.name.endswith(".gz"):
        return None
    try:
        header, _, rows = gzip.decompress(path.read_bytes()).partition(b"\n")
    except (OSError, EOFError, zlib.error):
        return None
    plain = (header == _HEADER and rows.endswith(b"\n") and not rows.startswith(b"\n") and b"\n\n" not in rows
             and b'"' not in rows and b"\r" not in rows)
    return (rows, rows.count(b"\n")) if plain else None


def _parse_together(rows: dict[int, tuple[bytes, int]], paths: Sequence[Path]) -> dict[int, pd.DataFrame]:
    """The checked frames of plain files (`_plain_rows`, by position in ``paths``), parsed as one CSV; empty
    when that parse fails or gives a column another type than its canonical one."""
    order = sorted(rows)
    try:
        joint = pd.read_csv(io.BytesIO(b"".join([_HEADER, b"\n", *(rows[i][0] for i in order)])),
                            dtype={c: str for c in _STRING}, keep_default_na=False)
    except ValueError:  # the parser's errors (and a bad encoding) are ValueErrors
        return {}
    counts = [rows[i][1] for i in order]
    canonical = all(joint[c].dtype == np.int64 for c in _INT) and all(
        joint[c].dtype == np.float64 for c in ("logit", "score"))
    if not canonical or len(joint) != sum(counts):
        return {}
    ends = np.cumsum(counts)
    frames = {i: joint.iloc[end - n:end].reset_index(drop=True) for i, n, end in zip(order, counts, ends, strict=True)}
    try:
        _checked_predictions(joint, paths[order[0]])  # every check is row by row: passed together, passed by each
    except BenchError:  # some file fails: check each, so that the error names it and its row
        frames = {i: _checked_predictions(frame, paths[i]) for i, frame in frames.items()}
    return frames


def _checked_predictions(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame``, read from ``path``, checked and with canonical dtypes (`read_predictions`)."""
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise _damaged(path, f"it lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise _damaged(path, "it holds no rows")
    for col in (*_INT, "logit", "score"):
        canonical = frame[col].dtype == (np.int64 if col in _INT else np.float64)  # as parsed, the usual case
        if canonical and col in _INT:
            continue  # whole numbers: finite, and kept as they are
        parsed = frame[col].dtype.kind in "iuf"  # the parser read every cell as a number
        values = frame[col].to_numpy(dtype=np.float64) if parsed else pd.to_numeric(
            frame[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        # a saturated logit may be infinite (its score says the same); any other column must be finite
        bad = np.isnan(values) if col == "logit" else ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _damaged(path, f"row {row + 2}, column {col!r}: expected a number, got {frame[col].iat[row]!r}")
        if col in _INT and frame[col].dtype.kind not in "iu" and (values != np.round(values)).any():
            raise _damaged(path, f"column {col!r} holds non-whole numbers")
        if not canonical:
            frame[col] = values.astype(np.int64) if col in _INT else values
    for col, low, high in _RANGES:
        values = frame[col].to_numpy()
        outside = (values < low) | (values > high)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise _damaged(path, f"row {row + 2}, column {col!r}: {frame[col].iat[row]} is outside {low}..{high}")
    return frame


# The valid range of every coded column (-1: an unknown attribute; bench.groups has the coding).
_RANGES = (("label", 0, 1), ("score", 0.0, 1.0), ("manipulation", 0, 10**6),
           *((attribute, -1, n - 1) for attribute, n in N_GROUPS.items()))


def _damaged(path: Path, what: str) -> BenchError:
    return BenchError(f"Predictions file {str(path)!r} is damaged: {what}. Delete this file alone and rerun the "
                      f"`bench run` command that made it: it predicts this test domain again from the job's saved "
                      f"model.pt, without retraining.")


def _read_record(files: JobFiles) -> dict[str, Any]:
    """A finished job's config.json; one that is missing or cut short is a `BenchError` saying what to do."""
    try:
        record = json.loads(files.config.read_text())
        job = record.get("job") if isinstance(record, dict) else None
        ok = isinstance(job, dict) and isinstance(job.get("seed"), int) and all(
            isinstance(job.get(k), str) for k in ("method", "train"))
    except (OSError, ValueError) as exc:
        why = "is missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc})"
    else:
        if ok:
            return record
        why = "does not describe the job (no job method, train domain and seed)"
    raise BenchError(f"Job {files.folder.name} is marked DONE but its record {str(files.config)!r} {why}. Rerun the "
                     f"`bench run` command that made it: it predicts the job's test domains again from its model.pt "
                     f"and rewrites the record (or delete the folder {str(files.folder)!r} to leave the job out).")


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
