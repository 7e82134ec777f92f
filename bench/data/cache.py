"""The frame cache: every frame of a dataset decoded, cropped and resized once, then memory-mapped.

Layout of one cache folder (``<cache root>/<dataset>-<key hash>/``): ``images.npy`` (uint8,
N x H x W x 3, RGB), ``manifest.csv`` (the validated manifest, row-aligned with the images),
``meta.json`` (the key the cache was built from and the manifest hash) and ``COMPLETE``, written last.
A cache is built in a temporary folder and renamed into place, under a file lock, so an interrupted or
concurrent build never leaves a cache that looks finished. A changed description or image size gives a
new key, hence a new folder; an unchanged one is reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


class CacheWriter:
    """What a format fills while a cache is being built (in a temporary folder)."""

    def __init__(self, path: Path, *, name: str, image_size: int) -> None:
        self.path = path
        self.name = name
        self.image_size = image_size
        self._images: np.ndarray | None = None
        self._manifest: pd.DataFrame | None = None

    def allocate(self, manifest: pd.DataFrame, *, source: str) -> np.ndarray:
        """Validate the manifest and return the writable (N, H, W, 3) uint8 array to fill, row-aligned."""
        self._manifest = validate_manifest(manifest, source=source)
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

    def finish(self, key: dict[str, Any]) -> None:
        if self._images is None or self._manifest is None:
            raise DataError(f"Building the cache of {self.name!r} produced no frames.")
        self._images.flush()
        del self._images
        self._manifest.to_csv(self.path / "manifest.csv", index=False)
        missing = [s for s in SPLITS if not (self._manifest["split"] == s).any()]
        meta = {"name": self.name, "key": key, "layout": CACHE_LAYOUT_VERSION, "frames": len(self._manifest),
                "image_size": self.image_size, "manifest_hash": manifest_hash(self._manifest),
                "empty_splits": missing, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (self.path / "meta.json").write_text(json.dumps(meta, indent=2))
        (self.path / _COMPLETE).write_text("")


def cache_path(desc: DatasetDescription, data: DataConfig) -> tuple[Path, dict[str, Any]]:
    """Where the cache of ``desc`` at ``data``'s settings lives, and the key it is built from."""
    key = {"layout": CACHE_LAYOUT_VERSION, "image_size": data.image_size,
           **FORMATS.get(desc.format)().cache_key(desc, data)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_root(data) / f"{desc.name}-{digest}", key


def is_built(desc: DatasetDescription, data: DataConfig) -> bool:
    path, _ = cache_path(desc, data)
    return (path / _COMPLETE).exists()


def ensure_cache(desc: DatasetDescription, data: DataConfig) -> FrameCache:
    """Open the cache of ``desc``, building it first when it is missing or its description changed."""
    path, key = cache_path(desc, data)
    if (path / _COMPLETE).exists():
        return FrameCache.open(path)
    fmt = FORMATS.get(desc.format)()
    reason = fmt.missing(desc)
    if reason is not None:
        raise DataError(f"Dataset {desc.name!r} ({desc.source}) is not available: {reason}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent / f".{path.name}.lock"):
        if not (path / _COMPLETE).exists():  # another process may have built it while we waited
            tmp = path.parent / f".{path.name}.building-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                writer = CacheWriter(tmp, name=desc.name, image_size=data.image_size)
                fmt.build(desc, data, writer)
                writer.finish(key)
                shutil.rmtree(path, ignore_errors=True)  # a half-built folder from an older layout
                tmp.rename(path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return FrameCache.open(path)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
