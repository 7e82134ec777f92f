"""Building a frame cache: the writer a format fills, resumable progress, the locked build, and the filling
from image files (decode, crop, resize, once, in parallel processes, resumably).

A cache is built in a hidden building folder (``.<name>-<key hash>.building``) and renamed into place,
under a file lock, so an interrupted or concurrent build never leaves a cache that looks finished; the
``COMPLETE`` marker is written last. Formats that decode image files build resumably: the building folder
keeps the images written so far and a log of finished row ranges, so a build interrupted by Ctrl-C, a kill
or a crash goes on where it stopped when it is run again. Bad input (an unreadable annotation, a missing or
undecodable image) is found before anything is written, or removes the building folder: nothing is left
in the cache on error. Finding and opening built caches is cache.py's job.

Rows are decoded in contiguous chunks. Each chunk is written straight into the cache's memory-mapped
image array by a worker process (loky, through joblib: the project's process pool), flushed, and only
then logged as done by the parent, so an interrupted build loses at most the chunks in flight and a
rerun decodes only what is missing. Unreadable images are never skipped silently: they fail the build
with a list, or, with ``skip_bad``, are left out of the cache and listed in it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from bench.data.images import Crop, FrameError, image_size, load_frame
from bench.data.manifest import SPLITS, manifest_hash, validate_manifest
from bench.data.readers import ReadResult
from bench.errors import DataError, absent
from bench.progress import progress_bar

CACHE_LAYOUT_VERSION = 1
COMPLETE = "COMPLETE"  # the marker of a finished cache, written last
CHUNK = 256  # rows per task: large enough that process overhead vanishes, small enough to lose little
# With the default worker count, fewer frames than this are decoded in this process: starting the worker
# processes (about a second or two) costs more than it saves below it. An explicit --workers N always uses N.
MIN_PARALLEL = 4096


CHECKSUMMED = ("images.npy", "manifest.csv")  # the files meta.json gives a size and CRC-32 of


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished cache (its writer wrote the marker last)."""
    return (folder / COMPLETE).exists()


def file_checksum(path: Path) -> dict[str, Any]:
    """Size and CRC-32 of a cache file: CRC-32 because zlib computes it at gigabytes per second (several
    times a cryptographic hash), and a cache is checked every time it is opened, against flipped or lost
    bytes, not against an adversary."""
    crc = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 24):
            crc = zlib.crc32(block, crc)
    return {"bytes": path.stat().st_size, "crc32": f"{crc:08x}"}


@dataclass(frozen=True)
class BuildOptions:
    """How a cache is built, not which data it is of, so none of it is in the key: a cache built with
    ``skip_bad`` lists what it left out (meta.json, skipped.csv) and is the one later runs use; delete it to
    rebuild after fixing the images."""

    workers: int = 0  # processes that decode images; 0: one per available CPU core
    skip_bad: bool = False  # leave unreadable images out (listed in the cache) instead of failing the build
    progress: bool = True  # a progress bar on stderr (TQDM_DISABLE=1 silences it too)


@dataclass
class BuildProgress:
    """A resumable build's state, mirrored in its building folder: which rows are written, which failed.

    ``done.log`` gets one ``start stop`` line per finished range of rows, appended and synced only after
    those rows' pixels were flushed, so a row marked done is on disk; ``bad.log`` one JSON line per image
    that could not be decoded. A line cut short by a kill is ignored on reading.
    """

    folder: Path
    images: np.ndarray  # (N, H, W, 3) uint8, memory-mapped read-write
    done: np.ndarray  # (N,) bool
    bad: dict[int, str] = field(default_factory=dict)  # row -> reason

    def record(self, start: int, stop: int, bad: list[tuple[int, str]]) -> None:
        if bad:
            _append(self.folder / "bad.log", "".join(json.dumps({"row": r, "reason": why}) + "\n" for r, why in bad))
            self.bad.update(bad)
        _append(self.folder / "done.log", f"{start} {stop}\n")
        self.done[start:stop] = True

    @classmethod
    def load(cls, folder: Path, images: np.ndarray) -> BuildProgress:
        done = np.zeros(images.shape[0], dtype=bool)
        for line in _complete_lines(folder / "done.log"):
            parts = line.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                done[int(parts[0]):int(parts[1])] = True
        bad: dict[int, str] = {}
        for line in _complete_lines(folder / "bad.log"):
            try:
                item = json.loads(line)
                bad[int(item["row"])] = str(item["reason"])
            except (ValueError, KeyError, TypeError):
                continue
        return cls(folder=folder, images=images, done=done, bad=bad)


class CacheWriter:
    """What a format fills while a cache is being built (in its building folder)."""

    def __init__(self, path: Path, *, name: str, image_size: int, options: BuildOptions | None = None) -> None:
        self.path = path
        self.name = name
        self.image_size = image_size
        self.options = options or BuildOptions()
        self.notes: list[str] = []  # how the data was read, kept in meta.json and shown by `bench data check`
        self.resumable = False  # True once `resume` was used: an interrupted build keeps its folder
        self._images: np.ndarray | None = None
        self._manifest: pd.DataFrame | None = None
        self._progress: BuildProgress | None = None
        self._skipped: dict[int, str] = {}

    def allocate(self, manifest: pd.DataFrame, *, source: str) -> np.ndarray:
        """Validate the manifest and return the writable (N, H, W, 3) uint8 array to fill, row-aligned."""
        self._manifest = validate_manifest(manifest, source=source)
        for leftover in ("done.log", "bad.log", "state.json"):
            (self.path / leftover).unlink(missing_ok=True)
        shape = (len(self._manifest), self.image_size, self.image_size, 3)
        self._images = np.lib.format.open_memmap(self.path / "images.npy", mode="w+", dtype=np.uint8,
                                                 shape=shape)
        return self._images

    def write_all(self, manifest: pd.DataFrame, images: np.ndarray, *, source: str) -> None:
        """Convenience for formats that produce everything in memory at once (the synthetic one)."""
        expected = (len(manifest), self.image_size, self.image_size, 3)
        if images.shape != expected or images.dtype != np.uint8:
            raise DataError(f"{source}: produced images of shape {images.shape} and dtype {images.dtype}; "
                            f"expected {expected} uint8.")
        self.allocate(manifest, source=source)[:] = images

    def resume(self, manifest: pd.DataFrame, *, source: str) -> BuildProgress:
        """Like `allocate`, but continue an interrupted build of the same manifest when the building folder
        holds one; the returned progress says which rows are still to be written."""
        validated = validate_manifest(manifest, source=source)
        state = {"manifest_hash": manifest_hash(validated), "frames": len(validated),
                 "image_size": self.image_size, "layout": CACHE_LAYOUT_VERSION}
        state_file = self.path / "state.json"
        try:
            same = json.loads(state_file.read_text()) == state and (self.path / "images.npy").exists()
            images = np.load(self.path / "images.npy", mmap_mode="r+") if same else None
        except (OSError, ValueError):
            images = None
        expected = (len(validated), self.image_size, self.image_size, 3)
        if images is None or images.shape != expected or images.dtype != np.uint8:
            images = self.allocate(validated, source=source)
            state_file.write_text(json.dumps(state))
            progress = BuildProgress(folder=self.path, images=images, done=np.zeros(len(validated), dtype=bool))
        else:
            progress = BuildProgress.load(self.path, images)
        self._manifest, self._images, self._progress = validated, progress.images, progress
        self.resumable = True
        return progress

    def skip(self, bad: dict[int, str]) -> None:
        """Leave these rows (row -> reason) out of the finished cache; they are listed in it (skipped.csv)."""
        self._skipped = dict(bad)

    def finish(self, key: dict[str, Any]) -> None:
        if self._images is None or self._manifest is None:
            raise DataError(f"Building the cache of {self.name!r} produced no frames.")
        if self._progress is not None and not self._progress.done.all():
            raise RuntimeError(f"cache of {self.name!r}: {int((~self._progress.done).sum())} rows were never written")
        self._images.flush()
        manifest = self._manifest
        if self._skipped:
            manifest = self._drop_skipped(manifest)
        del self._images
        self._images = None
        manifest.to_csv(self.path / "manifest.csv", index=False)
        for scratch in ("done.log", "bad.log", "state.json"):
            (self.path / scratch).unlink(missing_ok=True)
        missing = [s for s in SPLITS if not (manifest["split"] == s).any()]
        meta = {"name": self.name, "key": key, "layout": CACHE_LAYOUT_VERSION, "frames": len(manifest),
                "image_size": self.image_size, "manifest_hash": manifest_hash(manifest),
                "empty_splits": missing, "notes": self.notes, "skipped": len(self._skipped),
                "checksums": {name: file_checksum(self.path / name) for name in CHECKSUMMED},
                "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (self.path / "meta.json").write_text(json.dumps(meta, indent=2))
        (self.path / COMPLETE).write_text("")

    def _drop_skipped(self, manifest: pd.DataFrame) -> pd.DataFrame:
        """Compact the images without the skipped rows (one streaming copy) and record what was left out."""
        rows = np.array(sorted(self._skipped), dtype=np.int64)
        keep = np.setdiff1d(np.arange(len(manifest)), rows)
        skipped = manifest.iloc[rows].assign(reason=[self._skipped[int(r)] for r in rows])
        skipped.to_csv(self.path / "skipped.csv", index=False)
        target = self.path / "images.kept.npy"
        kept = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8,
                                         shape=(len(keep), *self._images.shape[1:]))
        for start in range(0, len(keep), 1024):
            kept[start:start + 1024] = self._images[keep[start:start + 1024]]
        kept.flush()
        del kept
        os.replace(target, self.path / "images.npy")
        return manifest.iloc[keep].reset_index(drop=True)


def build_cache(path: Path, key: dict[str, Any], *, name: str, image_size: int, options: BuildOptions,
                fill: Callable[[CacheWriter], None]) -> None:
    """Build the cache folder ``path`` (unless another process finished it meanwhile): ``fill`` gets the
    writer of a building folder, which is renamed into place once finished.

    A build that fails on bad input (`DataError`) removes its building folder; one that is interrupted
    keeps it to resume when the writer was made resumable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent / f".{path.name}.lock"):
        if is_complete(path):  # another process built it while we waited
            return
        building = path.parent / f".{path.name}.building"
        building.mkdir(exist_ok=True)
        writer = CacheWriter(building, name=name, image_size=image_size, options=options)
        try:
            fill(writer)
            writer.finish(key)
            shutil.rmtree(path, ignore_errors=True)  # a half-built folder from an older layout
            building.rename(path)
        except DataError:
            shutil.rmtree(building, ignore_errors=True)  # bad input: leave nothing behind
            raise
        except BaseException:
            if not writer.resumable:
                shutil.rmtree(building, ignore_errors=True)
            raise


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fill_from_files(writer: CacheWriter, read: ReadResult, *, crop: Crop, source: str, command: str = "") -> None:
    """Decode every frame of ``read`` into ``writer`` (resuming an interrupted build of the same manifest).

    ``command`` is the `bench data build` command line to suggest in messages.
    """
    progress = writer.resume(read.manifest, source=source)
    writer.notes = list(read.notes)
    paths = [str(read.root / p) for p in read.manifest["path"]]
    tasks = _tasks(progress.done, chunk=_chunk_size(len(paths), writer.options.workers))
    bar = progress_bar(show=writer.options.progress, total=len(paths), initial=int(progress.done.sum()), unit="frame",
               desc=f"caching {writer.name}", smoothing=0.1)
    try:
        for start, stop, bad in _run(tasks, paths=paths, images_path=writer.path / "images.npy",
                                     size=writer.image_size, crop=crop, workers=writer.options.workers):
            progress.record(start, stop, bad)
            bar.update(stop - start)
    finally:
        bar.close()
    if progress.bad and not writer.options.skip_bad:
        raise DataError(_bad_message(progress, read, command))
    writer.skip(progress.bad)


def check_frames_exist(read: ReadResult, *, command: str = "") -> None:
    """Every frame file is present (a stat each: cheap next to decoding)."""
    root = read.root
    missing = [i for i, p in enumerate(read.manifest["path"]) if not (root / p).is_file()]
    if not missing:
        return
    first = missing[0]
    examples = ", ".join(read.manifest["path"].iat[i] for i in missing[:3]) + (", ..." if len(missing) > 3 else "")
    hint = f"; or run `{command} --skip-bad` to leave them out (listed in the cache)" if command else ""
    where = root / read.manifest["path"].iat[first]
    raise DataError(f"{read.origin(first)}: expected an image file, but {where} {absent(where)}; {len(missing)} "
                    f"of {len(read.manifest)} frames are missing under root {str(root)!r} ({examples}){hint}.")


@dataclass
class DecodeReport:
    """What decoding a set of rows found: the unreadable ones and the source image sizes."""

    rows: np.ndarray  # the rows decoded
    bad: dict[int, str]  # row -> reason
    sizes: np.ndarray  # (len(rows), 2) width, height of each source image (0, 0 when unreadable)


def decode_rows(read: ReadResult, rows: np.ndarray, *, size: int, crop: Crop, workers: int = 0,
                progress: bool = False) -> DecodeReport:
    """Decode ``rows`` without writing anything (for `bench data check`)."""
    paths = [str(read.root / read.manifest["path"].iat[int(r)]) for r in rows]
    chunk = _chunk_size(len(paths), workers)
    starts = list(range(0, len(paths), chunk))
    jobs = [(s, paths[s:s + chunk]) for s in starts]
    bad: dict[int, str] = {}
    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    bar = progress_bar(show=progress, total=len(paths), unit="frame", desc="decoding")
    n_workers = _workers(workers, len(paths), chunk)
    if n_workers == 1:
        results: Iterator = (_probe_chunk(s, p, size, crop) for s, p in jobs)
    else:
        results = Parallel(n_jobs=n_workers, backend="loky", return_as="generator_unordered")(
            delayed(_probe_chunk)(s, p, size, crop) for s, p in jobs)
    for start, chunk_sizes, chunk_bad in results:
        sizes[start:start + len(chunk_sizes)] = chunk_sizes
        bad.update({int(rows[start + i]): why for i, why in chunk_bad})
        bar.update(len(chunk_sizes))
    bar.close()
    return DecodeReport(rows=np.asarray(rows), bad=bad, sizes=sizes)


# ------------------------------------------------------------------------------------------ internals
@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path``, removed again when released.

    A waiter may end up holding a file that its owner removed meanwhile; it then tries again on the
    current file, so two processes never both hold "the" lock and no lock file outlives its use.
    """
    while True:
        handle = lock_path.open("a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            current = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        handle.close()
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _complete_lines(path: Path) -> list[str]:
    """Lines of an append-only log, without a last line that a kill cut short."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return text.split("\n")[:-1]


def _chunk_size(n: int, workers: int) -> int:
    per_worker = -(-n // (max(1, workers or available_cpus()) * 4))
    return max(16, min(CHUNK, per_worker))


def _workers(workers: int, n: int, chunk: int) -> int:
    if not workers and n < MIN_PARALLEL:
        return 1
    wanted = workers or available_cpus()
    return max(1, min(wanted, -(-n // chunk)))


def _tasks(done: np.ndarray, *, chunk: int) -> list[tuple[int, int]]:
    """Row ranges still to write: the runs of not-done rows, cut into chunks."""
    todo = np.flatnonzero(~done)
    if len(todo) == 0:
        return []
    breaks = np.flatnonzero(np.diff(todo) != 1) + 1
    tasks = []
    for run in np.split(todo, breaks):
        start, stop = int(run[0]), int(run[-1]) + 1
        tasks += [(s, min(s + chunk, stop)) for s in range(start, stop, chunk)]
    return tasks


def _run(tasks: list[tuple[int, int]], *, paths: list[str], images_path: Path, size: int, crop: Crop,
         workers: int) -> Iterator[tuple[int, int, list[tuple[int, str]]]]:
    if not tasks:
        return
    chunk = max(stop - start for start, stop in tasks)
    n_workers = _workers(workers, sum(stop - start for start, stop in tasks), chunk)
    calls = ((str(images_path), start, paths[start:stop], size, crop) for start, stop in tasks)
    if n_workers == 1:
        for args in calls:
            yield _decode_chunk(*args)
        return
    parallel = Parallel(n_jobs=n_workers, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(_decode_chunk)(*args) for args in calls)


def _decode_chunk(images_path: str, start: int, paths: list[str], size: int,
                  crop: Crop) -> tuple[int, int, list[tuple[int, str]]]:
    """Decode ``paths`` into rows ``start..`` of the cache file, flush, and report the unreadable ones."""
    images = np.load(images_path, mmap_mode="r+")
    bad: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        try:
            images[start + i] = load_frame(path, size=size, crop=crop)
        except FrameError as exc:
            images[start + i] = 0
            bad.append((start + i, str(exc)))
    images.flush()
    del images
    return start, start + len(paths), bad


def _probe_chunk(start: int, paths: list[str], size: int, crop: Crop) -> tuple[int, np.ndarray, list[tuple[int, str]]]:
    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    bad: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        try:
            load_frame(path, size=size, crop=crop)
            sizes[i] = image_size(path)
        except FrameError as exc:
            bad.append((i, str(exc)))
    return start, sizes, bad


def _bad_message(progress: BuildProgress, read: ReadResult, command: str) -> str:
    rows = sorted(progress.bad)
    first = rows[0]
    path = read.root / read.manifest["path"].iat[first]
    others = "; ".join(f"{read.manifest['path'].iat[r]} ({progress.bad[r]})" for r in rows[1:3])
    more = f"; {len(rows)} unreadable image(s) in all" + (f", also {others}" if others else "") + \
        (", ..." if len(rows) > 3 else "")
    fix = f"fix or replace them, or run `{command} --skip-bad` to leave them out (listed in the cache)" if command \
        else "fix or replace them, or build with --skip-bad to leave them out (listed in the cache)"
    return f"{read.origin(first)}: expected a decodable image, but {path} {progress.bad[first]}{more}; {fix}."
