"""Helpers of the data tests: small generated domains written in the published formats, and the CLI."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.__main__ import main
from bench.config import to_toml
from bench.data import synthetic
from bench.data.manifest import COLUMNS, INT_COLUMNS, STRING_COLUMNS


@functools.cache
def domain(profile: str = "ff", size: int = 32, scale: float = 0.1, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """A small generated domain of the stylised shortcut world, whose small splits hold every group (the
    FF-like one at scale 0.1: 504 frames, 4 manipulations); ``profile`` names the dataset (ff, celebdf, ...)."""
    return synthetic.generate(synthetic.PROFILES[f"{profile}-shortcut"], image_size=size, seed=seed, scale=scale)


def write_dataset(folder: Path, *, format: str, name: str = "mine", options: dict[str, Any] | None = None,
                  profile: str = "ff", size: int = 32, scale: float = 0.1, **writer: Any) -> Path:
    """Write a generated domain in ``format`` under ``folder/data`` and its description as
    ``folder/datasets/<name>.toml``; return the datasets folder."""
    manifest, images = domain(profile, size, scale)
    keys = synthetic.write_published(manifest, images, folder / "data", format=format, name=name, **writer)
    keys |= {"suite": "mine", "image_size": size} | (options or {})
    datasets = folder / "datasets"
    datasets.mkdir(exist_ok=True)
    (datasets / f"{name}.toml").write_text(to_toml(keys))
    return datasets


def settings(folder: Path) -> list[str]:
    """CLI flags that point the descriptions and the cache at ``folder``."""
    return ["--set", f"data.datasets_dir={folder / 'datasets'}", "--set", f"data.cache_dir={folder / 'cache'}",
            "--no-progress"]


def cli(*args: str) -> int:
    return main(list(args))


def canonical(manifest: pd.DataFrame) -> pd.DataFrame:
    """The schema columns in sample order, with plain dtypes, for comparing manifests read in different row
    orders or back from a cache's CSV."""
    out = manifest.sort_values("sample").reset_index(drop=True)[list(COLUMNS)]
    return out.astype({c: object for c in STRING_COLUMNS} | {c: np.int64 for c in INT_COLUMNS})


def cache_entries(folder: Path) -> list[str]:
    """What the cache folder holds (nothing at all when it was never created)."""
    cache = folder / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []
