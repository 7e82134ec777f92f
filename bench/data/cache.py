"""Finding and opening frame caches: where the cache of a dataset lives, whether it is built, and the
opened cache (memory-mapped images, manifest in memory); `ensure_cache` has build.py build what is missing.

Layout of one cache folder (``<cache root>/<dataset>-<key hash>/``): ``images.npy`` (uint8,
N x H x W x 3, RGB), ``manifest.csv`` (the validated manifest, row-aligned with the images),
``meta.json`` (the key the cache was built from, the manifest hash, notes on how the data was read,
frames left out, and the size and CRC-32 of images.npy and manifest.csv) and ``COMPLETE``, written last
(build.py writes them). A changed description, annotation file or image size gives a new key, hence a new
folder; an unchanged one is reused. Opening a cache checks its files against the recorded sizes and
checksums, so a cut-short or altered cache is rebuilt once, with a message, instead of failing every job
or being used silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.config import DataConfig, cache_root
from bench.data.build import CACHE_LAYOUT_VERSION, BuildOptions, build_cache, file_checksum, is_complete
from bench.data.description import DatasetDescription
from bench.data.formats import FORMATS
from bench.data.manifest import group_counts
from bench.errors import DataError, folder_problem


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
        """Open a complete cache; one whose files are missing, cut short, or differ from the sizes and
        checksums its meta.json recorded at build is a `CacheDamaged` error."""
        try:
            meta = json.loads((path / "meta.json").read_text())
            name = meta["name"]
            for file, expected in meta.get("checksums", {}).items():  # caches built before checksums: none
                _verify(path / file, expected["bytes"], expected["crc32"])
            images = np.load(path / "images.npy", mmap_mode="r")
            manifest = pd.read_csv(path / "manifest.csv", dtype={c: str for c in
                                                                 ("sample", "path", "video", "identity", "split")},
                                   keep_default_na=False)
        except CacheDamaged as exc:
            raise CacheDamaged(f"Frame cache {str(path)!r} is damaged: {exc}") from None
        except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
            raise CacheDamaged(f"Frame cache {str(path)!r} is damaged: {type(exc).__name__}: {exc}") from None
        if len(manifest) != images.shape[0] or images.ndim != 4:
            raise CacheDamaged(f"Frame cache {str(path)!r} is damaged: {len(manifest)} manifest rows, "
                               f"{images.shape[0]} images")
        return cls(name=name, path=path, images=images, manifest=manifest, meta=meta)

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


class CacheDamaged(DataError):
    """A built cache whose files do not match what its build recorded; `ensure_cache` rebuilds it once."""


def _verify(file: Path, size: int, crc32: str) -> None:
    """The size first (a stat: a cut-short file fails here), then the CRC-32 of every byte."""
    actual = file.stat().st_size
    if actual != size:
        raise CacheDamaged(f"{file.name} has {actual} bytes, {size} were written")
    if file_checksum(file)["crc32"] != crc32:
        raise CacheDamaged(f"{file.name} does not match its checksum (bytes changed since the build)")


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
    """Whether the cache of ``desc`` at ``data``'s settings is built and up to date."""
    return is_complete(cache_path(desc, data)[0])


def ensure_cache(desc: DatasetDescription, data: DataConfig, *, options: BuildOptions | None = None) -> FrameCache:
    """Open the cache of ``desc``, building it first when it is missing or its description changed.

    Every check of the input that needs no decoding runs before the cache folder is touched; a build
    that fails on bad input removes its building folder, and one that is interrupted keeps it to resume.
    """
    path, key = cache_path(desc, data)
    if is_complete(path):
        try:
            return FrameCache.open(path)
        except CacheDamaged as exc:  # rebuilt once; a second failure is reported as it is
            print(f"{exc}; rebuilding it.", file=sys.stderr)
            _remove(path)
    if not is_complete(path):
        if problem := folder_problem(path.parent):
            raise DataError(f"The frame cache folder {str(path.parent)!r} cannot be made: {problem}; set "
                            f"data.cache_dir (or $BENCH_CACHE) to a folder you can write.")
        data = cache_settings(desc, data)
        options = options or BuildOptions()
        fmt = FORMATS.get(desc.format)()
        fmt.require(desc)
        fmt.prepare(desc, data, options)
        build_cache(path, key, name=desc.name, image_size=data.image_size, options=options,
                    fill=lambda writer: fmt.build(desc, data, writer))
    return FrameCache.open(path)


def ensure_cache_verbosely(desc: DatasetDescription, data: DataConfig, *, options: BuildOptions | None = None,
                           log: Callable[[str], Any] = print, quiet_when_built: bool = False) -> FrameCache:
    """`ensure_cache`, saying what it does: that the cache is up to date (unless ``quiet_when_built``), or
    where and at what size it is built, how long that took, what was left out and how the data was read."""
    path, _ = cache_path(desc, data)
    if is_complete(path):
        try:
            cache = FrameCache.open(path)
        except CacheDamaged as exc:
            log(f"{exc}; rebuilding it.")
            _remove(path)
        else:
            if not quiet_when_built:
                log(f"{desc.name}: the frame cache is up to date ({path})")
            return cache
    log(f"Building the frame cache of {desc.name} ({cache_settings(desc, data).image_size} px) in {path.parent} ...")
    start = time.perf_counter()
    cache = ensure_cache(desc, data, options=options)
    seconds = time.perf_counter() - start
    log(f"{desc.name}: {len(cache.manifest)} frames at {cache.image_size} px in {seconds:.1f} s "
        f"({len(cache.manifest) / max(seconds, 1e-9):.0f} frames/s) -> {cache.path}")
    if cache.meta.get("skipped"):
        log(f"{desc.name}: {cache.meta['skipped']} unreadable image(s) left out (--skip-bad); listed in "
            f"{cache.path / 'skipped.csv'}")
    for note in cache.notes:
        log(f"{desc.name}: note: {note}")
    return cache


def _remove(path: Path) -> None:
    """Take a damaged cache out of the way (renamed first, so no process opens it half-deleted)."""
    trash = path.parent / f".{path.name}.damaged-{time.time_ns()}"
    try:
        path.rename(trash)
    except OSError:  # another process moved it already
        return
    shutil.rmtree(trash, ignore_errors=True)
