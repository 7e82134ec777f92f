"""The built-in dataset formats. Readers of the published real-data formats join this registry later.

``synthetic``: a domain of the embedded benchmark (bench/data/synthetic.py), described by a profile,
a data seed, whether its bias knobs are on, and optional knob overrides::

    format = "synthetic"
    profile = "ff"          # ff | celebdf | dfd | dfdc
    seed = 101              # the data seed (independent of the training seeds)
    bias = "on"             # "off" switches every bias knob off (a control domain)
    [knobs]                 # any SyntheticSpec field, e.g. cross_group_swap_rate = 0.0
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from bench.config import DataConfig
from bench.data import synthetic
from bench.data.cache import CacheWriter
from bench.data.datasets import FORMATS, DatasetDescription, DatasetFormat
from bench.errors import DataError


@FORMATS.register()
class SyntheticFormat(DatasetFormat):
    """Procedurally generated domains: always present, generated straight into the cache."""

    name = "synthetic"
    _KEYS = ("profile", "seed", "bias", "knobs")

    def missing(self, desc: DatasetDescription) -> str | None:
        self.spec(desc)  # a broken description is reported here, before anything is built
        return None

    def cache_key(self, desc: DatasetDescription, data: DataConfig) -> dict[str, Any]:
        return {"format": self.name, "spec": dataclasses.asdict(self.spec(desc)), "seed": self._seed(desc),
                "scale": data.synthetic_scale}

    def build(self, desc: DatasetDescription, data: DataConfig, writer: CacheWriter) -> None:
        manifest, images = synthetic.generate(self.spec(desc), image_size=data.image_size,
                                              seed=self._seed(desc), scale=data.synthetic_scale)
        writer.write_all(manifest, images, source=f"synthetic generator for {desc.name!r}")

    def spec(self, desc: DatasetDescription) -> synthetic.SyntheticSpec:
        where = f"Dataset description {str(desc.source)!r}"
        unknown = [k for k in desc.options if k not in self._KEYS]
        if unknown:
            raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}; a synthetic domain takes "
                            f"{', '.join(self._KEYS)}.")
        profile = desc.options.get("profile")
        if profile not in synthetic.PROFILES:
            raise DataError(f"{where}: profile must be one of {', '.join(synthetic.PROFILES)}; got {profile!r}.")
        spec = synthetic.PROFILES[profile]
        bias = desc.options.get("bias", "on")
        if bias not in ("on", "off"):
            raise DataError(f"{where}: bias must be \"on\" or \"off\"; got {bias!r}.")
        if bias == "off":
            spec = synthetic.without_bias(spec)
        knobs = desc.options.get("knobs", {})
        if not isinstance(knobs, dict):
            raise DataError(f"{where}: [knobs] must be a table of SyntheticSpec fields.")
        return dataclasses.replace(spec, **_typed_knobs(knobs, where)) if knobs else spec

    @staticmethod
    def _seed(desc: DatasetDescription) -> int:
        seed = desc.options.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise DataError(f"Dataset description {str(desc.source)!r}: seed must be a whole number.")
        return seed


def _typed_knobs(knobs: dict[str, Any], where: str) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(synthetic.SyntheticSpec)}
    hints = typing.get_type_hints(synthetic.SyntheticSpec)
    out = {}
    for key, value in knobs.items():
        if key not in fields:
            raise DataError(f"{where}: unknown knob {key!r}; knobs: {', '.join(fields)}.")
        # TOML arrays arrive as lists; the frozen spec holds tuples (it is hashed and compared).
        is_tuple = typing.get_origin(hints[key]) is tuple
        out[key] = tuple(value) if is_tuple and isinstance(value, list) else value
    return out
