"""Whether a job's saved predictions still describe the data they claim to: the one check that `bench run`
(to re-predict) and `bench report` (to refuse) share.

A job's ``config.json`` records, for each test domain, the frame cache the predictions were made on (its
folder name, which hashes the description, the annotation files and the image size) and the manifest hash
of that cache. Predictions are stale when the domain's current cache would be another folder, or when the
current cache is built and holds another manifest. Computing the current folder name reads no image and
builds nothing, so the check is cheap enough for every run and report. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import DataConfig
from bench.data.build import is_complete
from bench.data.cache import cache_path
from bench.data.description import DatasetDescription
from bench.errors import BenchError


@dataclass
class CurrentData:
    """The current cache folder and (when built) manifest hash of each domain, computed once per domain."""

    data: DataConfig
    _known: dict[str, tuple[str, str | None] | None] = field(default_factory=dict)

    def of(self, desc: DatasetDescription) -> tuple[str, str | None] | None:
        """(cache folder name, manifest hash or None when not built), or None when it cannot be told (a
        description whose annotation files are missing: its job fails on its own when it needs them)."""
        if desc.name not in self._known:
            try:
                path, _ = cache_path(desc, self.data)
            except (BenchError, OSError):
                self._known[desc.name] = None
            else:
                self._known[desc.name] = (path.name, _built_manifest_hash(path))
        return self._known[desc.name]


def stale_reason(entry: dict[str, Any] | None, desc: DatasetDescription, current: CurrentData) -> str | None:
    """Why the predictions recorded as ``entry`` (``config.json``'s ``predictions[domain]``) no longer fit
    ``desc``'s data, or None when they do (or when it cannot be told)."""
    if entry is None:
        return "its predictions file is not in the job's record"
    now = current.of(desc)
    if now is None:
        return None
    folder, manifest = now
    if entry.get("cache") not in (None, folder):
        return f"the data of {desc.name!r} changed since it was predicted (cache {entry['cache']} -> {folder})"
    if manifest is not None and entry.get("manifest_hash") not in (None, manifest):
        return f"the data of {desc.name!r} changed since it was predicted (another manifest)"
    return None


def data_config(record: dict[str, Any]) -> DataConfig | None:
    """The data settings a job ran with, from its record (None for a record without them)."""
    values = record.get("config", {}).get("data")
    if not isinstance(values, dict):
        return None
    known = DataConfig.__dataclass_fields__
    try:
        return DataConfig(**{k: v for k, v in values.items() if k in known})
    except TypeError:
        return None


def _built_manifest_hash(path: Path) -> str | None:
    if not is_complete(path):
        return None
    try:
        return json.loads((path / "meta.json").read_text()).get("manifest_hash")
    except (OSError, ValueError, AttributeError):
        return None
