"""The frame cache: every frame of a dataset decoded, cropped and resized once, then memory-mapped.

Layout of one cache folder (``<cache root>/<dataset>-<key hash>/``): ``images.npy`` (uint8,
N x H x W x 3, RGB), ``manifest.csv`` (the validated manifest, row-aligned with the images),
``meta.json`` (the key the cache was built from, the manifest hash, notes on how the data was read,
frames left out) and ``COMPLETE``, written last. A cache is built in a hidden building folder
(``.<name>-<key hash>.building``) and renamed into place, under a file lock, so an interrupted or
concurrent build never leaves a cache that looks finished. A changed description, annotation file or
image size gives a new key, hence a new folder; an unchanged one is reused.

Formats that decode image files build resumably: the building folder keeps the images written so far
and a log of finished row ranges, so a build interrupted by Ctrl-C, a kill or a crash goes on where it
stopped when it is run again. Bad input (an unreadable annotation, a missing or undecodable image) is
found before anything is written, or removes the building folder: nothing is left in the cache on error.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.config import DataConfig, cache_root
from bench.data.datasets import FORMATS, DatasetDescription
from bench.data.manifest import SPLITS, group_counts, manifest_hash, validate_manifest
from bench.errors import DataError

CACHE_LAYOUT_VERSION = 1
_COMPLETE = "COMPLETE"


@dataclass
class FrameCache:
    """A built cache, opened read-only: the images are memory-mapped, the manifest is in memory."""

    name: str
    path: Path
    images: np.ndarray  # (N, H, W, 3) uint8, memory-mapped
    manifest: pd.DataFrame
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: Path) -> FrameCache:
        meta = json.loads((path / "meta.json").read_text())
        images = np.load(path / "images.npy", mmap_mode="r")
        manifest = pd.read_csv(path / "manifest.csv", dtype={c: str for c in
                                                             ("sample", "path", "video", "identity", "split")},
                               keep_default_na=False)
        if len(manifest) != images.shape[0]:
            raise DataError(f"Frame cache {str(path)!r} is inconsistent ({len(manifest)} manifest rows, "
                            f"{images.shape[0]} images); delete the folder and run again to rebuild it.")
        return cls(name=meta["name"], path=path, images=images, manifest=manifest, meta=meta)

    @property
    def manifest_hash(self) -> str:
        return self.meta["manifest_hash"]

    @property
    def notes(self) -> list[str]:
        """What a user should know about how the data was read (e.g. groups merged by the source's coding)."""
        return list(self.meta.get("notes", []))

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def rows(self, split: str, *, label: int | None = None) -> np.ndarray:
        """Row numbers of one split (optionally one label), in manifest order."""
        mask = (self.manifest["split"] == split).to_numpy()
        if label is not None:
            mask = mask & (self.manifest["label"] == label).to_numpy()
        return np.flatnonzero(mask)

    def group_counts(self, split: str) -> tuple[int, ...]:
        return group_counts(self.manifest.iloc[self.rows(split)])


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
                "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (self.path / "meta.json").write_text(json.dumps(meta, indent=2))
        (self.path / _COMPLETE).write_text("")

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


def cache_settings(desc: DatasetDescription, data: DataConfig) -> DataConfig:
    """The data settings a dataset is cached with: a description's own ``image_size`` wins over the run's."""
    return dataclasses.replace(data, image_size=desc.image_size) if desc.image_size else data


def cache_path(desc: DatasetDescription, data: DataConfig) -> tuple[Path, dict[str, Any]]:
    """Where the cache of ``desc`` at ``data``'s settings lives, and the key it is built from."""
    data = cache_settings(desc, data)
    key = {"layout": CACHE_LAYOUT_VERSION, "image_size": data.image_size,
           **FORMATS.get(desc.format)().cache_key(desc, data)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_root(data) / f"{desc.name}-{digest}", key


def is_built(desc: DatasetDescription, data: DataConfig) -> bool:
    path, _ = cache_path(desc, data)
    return (path / _COMPLETE).exists()


def ensure_cache(desc: DatasetDescription, data: DataConfig, *, options: BuildOptions | None = None) -> FrameCache:
    """Open the cache of ``desc``, building it first when it is missing or its description changed.

    Every check of the input that needs no decoding runs before the cache folder is touched; a build
    that fails on bad input removes its building folder, and one that is interrupted keeps it to resume.
    """
    path, key = cache_path(desc, data)
    if (path / _COMPLETE).exists():
        return FrameCache.open(path)
    data = cache_settings(desc, data)
    options = options or BuildOptions()
    fmt = FORMATS.get(desc.format)()
    reason = fmt.missing(desc)
    if reason is not None:
        raise DataError(f"Dataset {desc.name!r} ({desc.source}) is not available: {reason}")
    fmt.prepare(desc, data, options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent / f".{path.name}.lock"):
        if not (path / _COMPLETE).exists():  # another process may have built it while we waited
            building = path.parent / f".{path.name}.building"
            building.mkdir(exist_ok=True)
            writer = CacheWriter(building, name=desc.name, image_size=data.image_size, options=options)
            try:
                fmt.build(desc, data, writer)
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
    return FrameCache.open(path)


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
