"""Dataset descriptions (``datasets/<name>.toml``): where they are found, how they are read, how a plan
selects them.

A description is data, not code: it names a format, where the files are (environment variables allowed)
and the format's own options, and may fix the image size its frames are cached at (``image_size``; the
real datasets use the paper's 256 whatever the preset). Users switch datasets by writing or pointing at a
description, never by editing the harness. The formats that interpret descriptions are in formats.py;
the record itself (`DatasetDescription`) in description.py.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.config import DataConfig
from bench.data.description import DatasetDescription
from bench.data.formats import FORMATS
from bench.errors import BenchError, DataError, UnknownNameError
from bench.registry import Registry

__all__ = ["DatasetDescription", "dataset_dirs", "discover", "read_description", "select_datasets"]

REPO_DATASETS = Path(__file__).resolve().parents[2] / "datasets"
_RESERVED = ("title", "format", "suite", "control_for", "order", "image_size")
MAX_IMAGE_SIZE = 1024


def dataset_dirs(data: DataConfig) -> list[Path]:
    """Folders searched for descriptions, first match wins: data.datasets_dir, $BENCH_DATASETS
    (os.pathsep-separated), ./datasets, and the descriptions shipped with the harness."""
    dirs = [Path(data.datasets_dir)] if data.datasets_dir else []
    dirs += [Path(p) for p in os.environ.get("BENCH_DATASETS", "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "datasets", REPO_DATASETS]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


class Descriptions(dict[str, DatasetDescription]):
    """The readable descriptions by name, and in ``broken`` the message of each that cannot be read: one
    broken file does not stop runs that do not use it, and naming it gives its message (`select_datasets`)."""

    def __init__(self, items: Iterable[tuple[str, DatasetDescription]] = (), broken: dict[str, str] | None = None):
        super().__init__(items)
        self.broken: dict[str, str] = dict(broken or {})


def discover(data: DataConfig) -> Descriptions:
    """Every description found, by name (a name found in an earlier folder hides later ones), sorted by
    their ``order`` key, then name; broken ones are listed apart."""
    found: dict[str, DatasetDescription] = {}
    broken: dict[str, str] = {}
    for folder in dataset_dirs(data):
        for path in sorted(folder.glob("*.toml")):
            if path.stem not in found and path.stem not in broken:
                try:
                    found[path.stem] = read_description(path)
                except (BenchError, OSError) as exc:
                    broken[path.stem] = str(exc)
    return Descriptions(sorted(found.items(), key=lambda item: (item[1].order, item[0])), broken=broken)


def read_description(path: Path) -> DatasetDescription:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"Dataset description {str(path)!r} is not valid TOML: {exc}.") from None
    if "format" not in raw:
        raise DataError(f"Dataset description {str(path)!r} has no `format` key; add e.g. "
                        f"format = \"synthetic\" (formats: {', '.join(FORMATS)}).")
    if raw["format"] not in FORMATS:
        FORMATS.get(raw["format"])  # raises the friendly unknown-format message
    order = raw.get("order", 100)
    if not isinstance(order, int) or isinstance(order, bool):
        raise DataError(f"Dataset description {str(path)!r}: order must be a whole number.")
    image_size = raw.get("image_size")
    if image_size is not None and (not isinstance(image_size, int) or isinstance(image_size, bool)
                                   or not 16 <= image_size <= MAX_IMAGE_SIZE):
        raise DataError(f"Dataset description {str(path)!r}: image_size must be a whole number from 16 to "
                        f"{MAX_IMAGE_SIZE}; got {image_size!r}.")
    options = {k: _expand_env(v) for k, v in raw.items() if k not in _RESERVED}
    return DatasetDescription(name=path.stem, format=raw["format"], source=path,
                              suite=str(raw.get("suite", "default")), title=str(raw.get("title", "")),
                              control_for=raw.get("control_for"), order=order, image_size=image_size,
                              options=options)


def select_datasets(spec: str | Iterable[str], descriptions: dict[str, DatasetDescription], *,
                    all_means: Iterable[str]) -> list[str]:
    """Names chosen by ``spec``: ``all`` (the datasets of the suites in ``all_means``, controls left out),
    a suite name, a dataset name, or a glob; comma lists allowed."""
    registry: Registry[DatasetDescription] = Registry("dataset")
    for desc in descriptions.values():
        registry.add(desc.name, desc, tags={desc.suite} | ({"control"} if desc.is_control else set()))
    suites = set(all_means)
    tokens = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec) if t.strip()]
    chosen: dict[str, None] = {}
    for token in tokens:
        if token == "all":
            names = [d.name for d in descriptions.values() if d.suite in suites and not d.is_control]
            if not names:
                raise UnknownNameError(f"No dataset belongs to suite(s) {', '.join(sorted(suites))}; "
                                       f"available datasets: {', '.join(descriptions) or '(none)'}.")
        else:
            broken = getattr(descriptions, "broken", {})
            if token in broken:
                raise DataError(f"Dataset {token!r} cannot be used: {broken[token]}")
            names = registry.select(token)
        chosen.update(dict.fromkeys(names))
    return list(chosen)


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value
