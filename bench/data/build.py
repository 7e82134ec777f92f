"""Filling a frame cache from image files: decode, crop, resize, once, in parallel processes, resumably.

Rows are decoded in contiguous chunks. Each chunk is written straight into the cache's memory-mapped
image array by a worker process (loky, through joblib: the project's process pool), flushed, and only
then logged as done by the parent, so an interrupted build loses at most the chunks in flight and a
rerun decodes only what is missing. Unreadable images are never skipped silently: they fail the build
with a list, or, with ``skip_bad``, are left out of the cache and listed in it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from bench.data.cache import BuildProgress, CacheWriter
from bench.data.images import Crop, FrameError, image_size, load_frame
from bench.data.readers import ReadResult
from bench.errors import DataError
from bench.progress import progress_bar

CHUNK = 256  # rows per task: large enough that process overhead vanishes, small enough to lose little
# With the default worker count, fewer frames than this are decoded in this process: starting the worker
# processes (about a second or two) costs more than it saves below it. An explicit --workers N always uses N.
MIN_PARALLEL = 4096


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
    raise DataError(f"{read.origin(first)}: expected an image file, but {root / read.manifest['path'].iat[first]} "
                    f"does not exist; {len(missing)} of {len(read.manifest)} frames are missing under root "
                    f"{str(root)!r} ({examples}){hint}.")


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
