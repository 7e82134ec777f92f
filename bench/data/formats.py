"""Dataset formats: the interface (`DatasetFormat`), their registry (`FORMATS`), and the built-in ones, the
synthetic benchmark and the readers of the published real-data formats. A new format is one more
registered subclass in this file.

A format knows how to tell whether its files are present, what determines the content of its frame
cache, what to check before building it, and how to fill it.

``synthetic``: a domain of the embedded benchmark (bench/data/synthetic.py), described by a profile,
a data seed, whether its bias knobs are on, and optional knob overrides::

    format = "synthetic"
    profile = "ff"          # ff | celebdf | dfd | dfdc
    seed = 101              # the data seed (independent of the training seeds)
    bias = "on"             # "off" switches every bias knob off (a control domain)
    [knobs]                 # any SyntheticSpec field, e.g. cross_group_swap_rate = 0.0

Image files under a root folder, listed by annotation files (docs/DATA.md; readers in readers.py):
``purdue-legacy`` (the PG-FDD CSVs), ``purdue-v2``, ``deepfakebench`` (JSON plus a demographics
sidecar) and ``csv`` (the internal schema). Keys every one of them takes::

    root = "${FFPP_ROOT}"     # the folder the frame paths are relative to (environment variables allowed)
    annotations = "..."       # the folder of the annotation files (default: root)
    path_prefix = "auto"      # prefix stripped from paths; "auto" finds the authors' absolute prefix
    video_pattern = "..."     # regex with a group `video` searched in a frame's path (default: its folder)
    identity_pattern = "..."  # regex with a group `identity` searched in the video (default: the video)
    frames_per_video = 0      # 0: all listed frames; N: N evenly spaced frames per video
    crop = "center"           # "center": largest centred square; "stretch": resize the whole image

Their cache key holds the root, every option and a SHA-256 of each annotation file, so an edited CSV is
a new cache (and new jobs), not a stale one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import typing
from pathlib import Path
from typing import Any, ClassVar

from bench.config import DataConfig
from bench.data import synthetic
from bench.data.build import BuildOptions, CacheWriter, check_frames_exist, fill_from_files
from bench.data.description import DatasetDescription
from bench.data.images import CROPS
from bench.data.manifest import SPLITS
from bench.data.overlaps import DUPLICATE_POLICIES, LEAK_POLICIES
from bench.data.readers import (
    LEGACY_FILES,
    V2_FILES,
    V2_GROUP_COLUMNS,
    Layout,
    ReadResult,
    env_unset,
    read_deepfakebench,
    read_generic,
    read_purdue_legacy,
    read_purdue_v2,
)
from bench.errors import ConfigError, DataError, absent
from bench.registry import Registry


class DatasetFormat:
    """How one on-disk format becomes a frame cache. Subclasses register in `FORMATS`."""

    name: ClassVar[str]

    def missing(self, desc: DatasetDescription) -> str | None:
        """None when the dataset's files are present, else a sentence that says what is missing."""
        raise NotImplementedError

    def require(self, desc: DatasetDescription) -> None:
        """Raise `DataError` naming what is missing unless the dataset's files are present."""
        reason = self.missing(desc)
        if reason is not None:
            raise DataError(f"Dataset {desc.name!r} ({desc.source}) is not available: {reason}")

    def cache_key(self, desc: DatasetDescription, data: DataConfig) -> dict[str, Any]:
        """Everything that determines the cache's content (JSON-serialisable); a change rebuilds it."""
        raise NotImplementedError

    def prepare(self, desc: DatasetDescription, data: DataConfig, options: BuildOptions) -> None:
        """Check everything about the input that can be checked without decoding, before the cache folder
        is touched (so bad input leaves nothing behind). Nothing to check by default."""

    def build(self, desc: DatasetDescription, data: DataConfig, writer: CacheWriter) -> None:
        """Fill ``writer`` with the validated manifest and the frames at the cache size."""
        raise NotImplementedError


FORMATS: Registry[type[DatasetFormat]] = Registry("dataset format", base=DatasetFormat)

# DeepfakeBench's label names (its label_dict), as manipulation codes: 0 real; FF++ fakes numbered like
# the PG-FDD spe_label (1 Deepfakes, 2 Face2Face, 3 FaceSwap, 4 NeuralTextures, 5 FaceShifter).
DEEPFAKEBENCH_LABELS: dict[str, int] = {
    "FF-real": 0, "FF-DF": 1, "FF-F2F": 2, "FF-FS": 3, "FF-NT": 4, "FF-FH": 5,
    "CelebDFv1_real": 0, "CelebDFv1_fake": 1, "CelebDFv2_real": 0, "CelebDFv2_fake": 1,
    "DFD_real": 0, "DFD_fake": 1, "DFDC_Real": 0, "DFDC_Fake": 1, "DFDCP_Real": 0, "DFDCP_FakeA": 1,
    "DFDCP_FakeB": 2,
}


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
                "scale": data.synthetic_scale, "test_scale": data.synthetic_test_scale}

    def build(self, desc: DatasetDescription, data: DataConfig, writer: CacheWriter) -> None:
        manifest, images = synthetic.generate(self.spec(desc), image_size=data.image_size,
                                              seed=self._seed(desc), scale=data.synthetic_scale,
                                              test_scale=data.synthetic_test_scale)
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
        try:
            return dataclasses.replace(spec, **_typed_knobs(knobs, where)) if knobs else spec
        except ConfigError as exc:  # the spec's own check names the profile; the user wrote this file
            raise DataError(f"{where}: [knobs] {exc}") from None

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
        expected = _knob_type_error(value, hints[key])
        if expected:
            raise DataError(f"{where}: knob {key!r} must be {expected}; got {value!r}.")
        # TOML arrays arrive as lists; the frozen spec holds tuples (it is hashed and compared).
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def _knob_type_error(value: Any, hint: Any) -> str | None:
    """What ``value`` should have been for a `SyntheticSpec` field typed ``hint``, or None when it fits."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        inner = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis and isinstance(value, list) else args
        what = f"a list of {len(args)} {args[0].__name__} values" if args[-1] is not Ellipsis else (
            f"a list of {args[0].__name__} values")
        if not isinstance(value, list | tuple) or len(inner) != len(value):
            return what
        return what if any(_knob_type_error(v, t) for v, t in zip(value, inner, strict=True)) else None
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    return None


# ------------------------------------------------------------------------------------------ image files
class FileFormat(DatasetFormat):
    """Frames that are image files under a root folder, listed by annotation files."""

    _COMMON: ClassVar[tuple[str, ...]] = ("root", "annotations", "path_prefix", "video_pattern", "identity_pattern",
                                          "frames_per_video", "crop")
    _OWN: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._cache: dict[Path, ReadResult] = {}

    # --- what the harness asks of a format
    def missing(self, desc: DatasetDescription) -> str | None:
        self._check_keys(desc)
        for key in ("root", "annotations"):
            value = desc.options.get(key)
            if isinstance(value, str) and env_unset(value):
                var = env_unset(value)[0]
                return f"environment variable {var} is not set (export {var}=/path/to/the/data)"
        root = self.root(desc)
        if not root.is_dir():
            return f"the root folder {root} {absent(root, folder=True)} (root = ... in {desc.source.name})"
        for path in self.sources(desc):
            if not path.is_file():
                return f"the annotation file {path} {absent(path)}"
        return None

    def cache_key(self, desc: DatasetDescription, data: DataConfig) -> dict[str, Any]:
        options = {k: v for k, v in desc.options.items() if k != "root"}
        return {"format": self.name, "root": str(self.root(desc).resolve()), "options": options,
                "annotations": {str(p): file_digest(p) for p in self.sources(desc)}}

    def prepare(self, desc: DatasetDescription, data: DataConfig, options: BuildOptions) -> None:
        read = self.read(desc)
        if not options.skip_bad:
            check_frames_exist(read, command=build_command(desc))

    def build(self, desc: DatasetDescription, data: DataConfig, writer: CacheWriter) -> None:
        fill_from_files(writer, self.read(desc), crop=self.crop(desc), source=str(desc.source),
                        command=build_command(desc))

    # --- reading
    def read(self, desc: DatasetDescription) -> ReadResult:
        """The validated manifest of ``desc`` (read once per format object)."""
        if desc.source not in self._cache:
            self.require(desc)
            self._cache[desc.source] = self._read(desc, self.layout(desc))
        return self._cache[desc.source]

    def _read(self, desc: DatasetDescription, layout: Layout) -> ReadResult:
        raise NotImplementedError

    def sources(self, desc: DatasetDescription) -> list[Path]:
        """The annotation files (their content is part of the cache key)."""
        raise NotImplementedError

    # --- options
    def root(self, desc: DatasetDescription) -> Path:
        root = desc.options.get("root")
        if not isinstance(root, str) or not root:
            raise DataError(f"Dataset description {str(desc.source)!r}: root must name the folder of the frames, "
                            f"e.g. root = \"${{{desc.name.upper().replace('-', '_')}_ROOT}}\".")
        return Path(root).expanduser()

    def annotations(self, desc: DatasetDescription) -> Path:
        folder = self._string(desc, "annotations", "")
        return Path(folder).expanduser() if folder else self.root(desc)

    def layout(self, desc: DatasetDescription) -> Layout:
        frames = desc.options.get("frames_per_video", 0)
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
            raise DataError(f"Dataset description {str(desc.source)!r}: frames_per_video must be a whole number "
                            f">= 0 (0: every frame); got {frames!r}.")
        patterns = {}
        for key, group in (("video_pattern", "video"), ("identity_pattern", "identity")):
            pattern = self._string(desc, key, "") or None
            if pattern is not None:
                try:
                    compiled = re.compile(pattern)
                except re.error as exc:
                    raise DataError(f"Dataset description {str(desc.source)!r}: {key} {pattern!r} is not a valid "
                                    f"regular expression ({exc}).") from None
                if group not in compiled.groupindex:
                    raise DataError(f"Dataset description {str(desc.source)!r}: {key} {pattern!r} needs a named "
                                    f"group (?P<{group}>...).")
            patterns[key] = pattern
        return Layout(root=self.root(desc), path_prefix=self._string(desc, "path_prefix", "auto"),
                      video_pattern=patterns["video_pattern"], identity_pattern=patterns["identity_pattern"],
                      frames_per_video=frames, description=str(desc.source))

    def crop(self, desc: DatasetDescription) -> Any:
        crop = desc.options.get("crop", "center")
        if crop not in CROPS:
            raise DataError(f"Dataset description {str(desc.source)!r}: crop must be one of "
                            f"{', '.join(CROPS)}; got {crop!r}.")
        return crop

    def _check_keys(self, desc: DatasetDescription) -> None:
        known = (*self._COMMON, *self._OWN)
        unknown = [k for k in desc.options if k not in known]
        if unknown:
            raise DataError(f"Dataset description {str(desc.source)!r}: unknown key(s) {', '.join(unknown)}; a "
                            f"{self.name} dataset takes {', '.join(known)} (and title, suite, order, image_size).")

    @staticmethod
    def _string(desc: DatasetDescription, key: str, default: str) -> str:
        value = desc.options.get(key, default)
        if not isinstance(value, str):
            raise DataError(f"Dataset description {str(desc.source)!r}: {key} must be a string; got {value!r}.")
        return value

    def _split_files(self, desc: DatasetDescription, default: dict[str, tuple[str, ...]]) -> dict[str, list[Path]]:
        files = desc.options.get("files", default)
        where = f"Dataset description {str(desc.source)!r}"
        if not isinstance(files, dict) or not files:
            raise DataError(f"{where}: [files] must be a table of split = [\"file.csv\", ...], e.g. "
                            f"test = [\"test.csv\"].")
        out: dict[str, list[Path]] = {}
        for split, names in files.items():
            if split not in SPLITS:
                raise DataError(f"{where}: [files] key {split!r} is not a split; splits: {', '.join(SPLITS)}.")
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
                raise DataError(f"{where}: files.{split} must be a file name or a list of file names.")
            out[split] = [self.annotations(desc) / n for n in names]
        return out

    def _splits(self, desc: DatasetDescription) -> list[str]:
        splits = desc.options.get("splits", list(SPLITS))
        if not isinstance(splits, list) or not splits or any(s not in SPLITS for s in splits) \
                or len(set(splits)) != len(splits):
            raise DataError(f"Dataset description {str(desc.source)!r}: splits must be a list of distinct splits "
                            f"from {', '.join(SPLITS)}; got {splits!r}.")
        return splits


@FORMATS.register()
class PurdueLegacyFormat(FileFormat):
    """The PG-FDD authors' CSVs: faketrain/realtrain/fakeval/realval/test.csv (8 or 6 groups)."""

    name = "purdue-legacy"
    _OWN = ("files", "groups")

    def sources(self, desc: DatasetDescription) -> list[Path]:
        return [p for paths in self._split_files(desc, LEGACY_FILES).values() for p in paths]

    def _read(self, desc: DatasetDescription, layout: Layout) -> ReadResult:
        return read_purdue_legacy(files=self._split_files(desc, LEGACY_FILES), layout=layout,
                                  groups=str(desc.options.get("groups", "auto")))


@FORMATS.register()
class PurdueV2Format(FileFormat):
    """The later Purdue CSVs: Image Path, Ground Truth Gender/Age/Race, Intersection, Target[, Specific]
    [, intersec_label], as released (``names``: the file-name scheme of the crops; ``duplicates`` and
    ``leaks``: what to do with repeated rows and with videos in two splits; ``groups``: the coding of
    intersec_label)."""

    name = "purdue-v2"
    _OWN = ("files", "group_column", "groups", "names", "duplicates", "leaks")

    def sources(self, desc: DatasetDescription) -> list[Path]:
        return [p for paths in self._split_files(desc, V2_FILES).values() for p in paths]

    def layout(self, desc: DatasetDescription) -> Layout:
        where = f"Dataset description {str(desc.source)!r}"
        names = desc.options.get("names")
        if names is not None and (desc.options.get("video_pattern") or desc.options.get("identity_pattern")):
            raise DataError(f"{where}: names = {names!r} gives each frame's video and identity; remove "
                            f"video_pattern and identity_pattern (or names, to use your patterns).")
        policies = {key: _choice(desc, key, allowed) for key, allowed in
                    (("duplicates", DUPLICATE_POLICIES), ("leaks", LEAK_POLICIES))}
        return dataclasses.replace(super().layout(desc), **policies)

    def _read(self, desc: DatasetDescription, layout: Layout) -> ReadResult:
        column = desc.options.get("group_column", "Intersection")
        if column not in V2_GROUP_COLUMNS:
            raise DataError(f"Dataset description {str(desc.source)!r}: group_column must be one of "
                            f"{', '.join(V2_GROUP_COLUMNS)}; got {column!r}.")
        names = desc.options.get("names")
        return read_purdue_v2(files=self._split_files(desc, V2_FILES), layout=layout, group_column=column,
                              groups=str(desc.options.get("groups", "auto")), names=names)


def _choice(desc: DatasetDescription, key: str, allowed: tuple[str, ...]) -> str:
    value = desc.options.get(key, allowed[0])
    if value not in allowed:
        raise DataError(f"Dataset description {str(desc.source)!r}: {key} must be one of "
                        f"{', '.join(f'{a!r}' for a in allowed)}; got {value!r}.")
    return value


@FORMATS.register()
class DeepfakeBenchFormat(FileFormat):
    """DeepfakeBench's dataset JSON with its preprocessed frames, plus a demographics sidecar CSV."""

    name = "deepfakebench"
    _OWN = ("json", "sidecar", "labels", "dataset", "compression", "splits", "unmatched")

    def sources(self, desc: DatasetDescription) -> list[Path]:
        json_name = self._string(desc, "json", "")
        if not json_name:
            raise DataError(f"Dataset description {str(desc.source)!r}: json must name DeepfakeBench's dataset "
                            f"file, e.g. json = \"FaceForensics++.json\".")
        sidecar = self._string(desc, "sidecar", "")
        return [self.annotations(desc) / json_name] + ([self.annotations(desc) / sidecar] if sidecar else [])

    def _read(self, desc: DatasetDescription, layout: Layout) -> ReadResult:
        labels = {**DEEPFAKEBENCH_LABELS, **desc.options.get("labels", {})}
        bad = [k for k, v in labels.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
        if bad:
            raise DataError(f"Dataset description {str(desc.source)!r}: [labels] maps a label name to 0 (real) or "
                            f"1..K (a manipulation); {bad[0]!r} = {labels[bad[0]]!r} is neither.")
        files = self.sources(desc)
        return read_deepfakebench(json_path=files[0], layout=layout, labels=labels,
                                  sidecar=files[1] if len(files) > 1 else None,
                                  dataset=self._string(desc, "dataset", "") or None,
                                  compression=self._string(desc, "compression", "") or None,
                                  splits=self._splits(desc), unmatched=self._string(desc, "unmatched", "error"))


@FORMATS.register()
class GenericCsvFormat(FileFormat):
    """One CSV in the internal schema (docs/DATA.md), for any dataset without a reader of its own."""

    name = "csv"
    _OWN = ("file", "splits")

    def sources(self, desc: DatasetDescription) -> list[Path]:
        return [self.annotations(desc) / self._string(desc, "file", "manifest.csv")]

    def _read(self, desc: DatasetDescription, layout: Layout) -> ReadResult:
        return read_generic(path=self.sources(desc)[0], layout=layout, splits=self._splits(desc))


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so a plan of many jobs hashes each file once."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def build_command(desc: DatasetDescription) -> str:
    return f"python -m bench data build {desc.name}"
