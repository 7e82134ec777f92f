"""A generated domain written in the published annotation formats (docs/DATA.md, formats 1-3), with real PNG
files, so the readers of real data are tested end to end without real data. Reading the files back gives
the generator's manifest.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from bench.data.synthetic_spec import N_GROUPS, SPLITS
from bench.errors import ConfigError
from bench.groups import intersection, to_six_groups

PUBLISHED_FORMATS = ("purdue-legacy", "purdue-v2", "deepfakebench")
# The identity in a video name (id0042_v3, id0042_v3__blend__id0007), for a description's identity_pattern.
IDENTITY_PATTERN = r"^(?P<identity>id\d+)_v"


def write_frames(manifest: pd.DataFrame, images: np.ndarray, folder: str | Path) -> None:
    """Each frame as a PNG file at ``folder / path`` (the manifest's paths are video/frame.png)."""
    folder = Path(folder)
    for path, frame in zip(manifest["path"], images, strict=True):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame, mode="RGB").save(target, format="PNG", compress_level=1)


def write_published(
    manifest: pd.DataFrame,
    images: np.ndarray,
    folder: str | Path,
    *,
    format: str,
    name: str = "synth",
    manipulations: Sequence[str] = (),
    six_groups: bool = False,
    windows_separators: bool = False,
    path_prefix: str = "",
    noisy_seed: int = 0,
) -> dict[str, Any]:
    """Write a generated domain as PNG frames plus the annotation files of one published format.

    ``format``: ``purdue-legacy`` (faketrain/realtrain/fakeval/realval/test.csv; ``six_groups`` writes the
    Celeb-DF/DFD coding without ``isasian``, which merges Asian into Others), ``purdue-v2`` (train/val/test.csv
    with both ``Intersection`` and a noisier ``intersec_label``: each video's group is redrawn with
    probability 0.1, from ``noisy_seed``) or ``deepfakebench`` (``<name>.json`` under a ``c23`` compression
    level, label names ``<name>_real`` and ``<name>_<manipulation>``, and ``demographics.csv`` keyed by video,
    in words). ``path_prefix`` (an absolute folder, like the authors' machine) is written before every path,
    and ``windows_separators`` writes backslashes, as some released files do. Returns the keys of a dataset
    description that reads the files back (format, root, files, identity_pattern, ...).
    """
    if format not in PUBLISHED_FORMATS:
        raise ConfigError(f"format = {format!r}: expected one of {', '.join(PUBLISHED_FORMATS)}.")
    if (manifest[["gender", "race"]].to_numpy() < 0).any():
        raise ConfigError("write_published: every frame needs a known gender and race (the formats have no unknown).")
    folder = Path(folder)
    write_frames(manifest, images, folder)
    paths = [path_prefix + p for p in manifest["path"]]
    if windows_separators:
        paths = [p.replace("/", "\\") for p in paths]
    frame = manifest.assign(written=pd.Series(paths, dtype=object, index=manifest.index))
    options: dict[str, Any] = {"format": format, "root": str(folder), "identity_pattern": IDENTITY_PATTERN}
    if format == "purdue-legacy":
        options["files"] = _write_legacy(frame, folder, six_groups=six_groups)
    elif format == "purdue-v2":
        options["files"] = _write_v2(frame, folder, noisy_seed=noisy_seed)
    else:
        options |= _write_deepfakebench(frame, folder, name=name, manipulations=manipulations)
    return options


def _write_csv(table: dict[str, Any], path: Path) -> None:
    pd.DataFrame(table).to_csv(path, index=False, lineterminator="\n")


def _write_legacy(frame: pd.DataFrame, folder: Path, *, six_groups: bool) -> dict[str, list[str]]:
    if (frame["manipulation"] > 5).any():
        raise ConfigError("purdue-legacy has spe_label 1..5 only; this domain has more manipulations.")
    gender, race = frame["gender"].to_numpy(), frame["race"].to_numpy()
    flags = lambda on: np.where(on, 1, -1)  # noqa: E731
    columns: dict[str, Any] = {"img_path": frame["written"].to_numpy(), "label": frame["label"].to_numpy(),
                               "ismale": flags(gender == 0)}
    if not six_groups:
        columns["isasian"] = flags(race == 0)
    columns |= {"iswhite": flags(race == 1), "isblack": flags(race == 2)}
    columns["intersec_label"] = to_six_groups(gender, race) if six_groups else intersection(gender, race)
    columns["spe_label"] = frame["manipulation"].to_numpy()
    table = pd.DataFrame(columns)
    files: dict[str, list[str]] = {}
    for split, parts in (("train", ("real", "fake")), ("val", ("real", "fake")), ("test", (None,))):
        in_split = (frame["split"] == split).to_numpy()
        files[split] = []
        for kind in parts:
            rows = in_split if kind is None else in_split & (frame["label"].to_numpy() == (kind == "fake"))
            part = table[rows]
            if kind == "real":  # the PG-FDD real files have no spe_label column
                part = part.drop(columns="spe_label")
            file_name = f"{kind}{split}.csv" if kind else f"{split}.csv"
            _write_csv(part.to_dict("list"), folder / file_name)
            files[split].append(file_name)
    return files


def _write_v2(frame: pd.DataFrame, folder: Path, *, noisy_seed: int) -> dict[str, list[str]]:
    gender, race = frame["gender"].to_numpy(), frame["race"].to_numpy()
    group = intersection(gender, race)
    noisy = group.copy()
    for video in pd.unique(frame["video"]):
        rng = np.random.default_rng([noisy_seed, zlib.crc32(str(video).encode())])
        if rng.random() < 0.1:
            rows = (frame["video"] == video).to_numpy()
            noisy[rows] = (group[rows][0] + 1 + rng.integers(N_GROUPS - 1)) % N_GROUPS
    identity_number = frame["identity"].str.extract(r"(\d+)")[0].astype(int).to_numpy()
    table = pd.DataFrame({
        "Image Path": frame["written"].to_numpy(), "Ground Truth Gender": 1 - gender,
        "Ground Truth Age": identity_number % 5, "Ground Truth Race": race, "Intersection": group,
        "Target": frame["label"].to_numpy(), "Specific": frame["manipulation"].to_numpy(), "intersec_label": noisy,
    })
    files = {}
    for split in SPLITS:
        _write_csv(table[(frame["split"] == split).to_numpy()].to_dict("list"), folder / f"{split}.csv")
        files[split] = [f"{split}.csv"]
    return files


def _write_deepfakebench(frame: pd.DataFrame, folder: Path, *, name: str,
                         manipulations: Sequence[str]) -> dict[str, Any]:
    codes = sorted(int(c) for c in pd.unique(frame["manipulation"]) if c > 0)
    names = {0: f"{name}_real"}
    for code in codes:
        label = manipulations[code - 1] if code <= len(manipulations) else f"fake{code}"
        names[code] = f"{name}_{label}"
    tree: dict[str, Any] = {}
    for (code, split, video), rows in frame.groupby(["manipulation", "split", "video"], sort=False):
        entry = tree.setdefault(names[int(code)], {}).setdefault(split, {}).setdefault("c23", {})
        entry[video] = {"label": names[int(code)], "frames": list(rows["written"])}
    (folder / f"{name}.json").write_text(json.dumps({name: tree}))
    videos = frame.drop_duplicates("video")
    words_gender, words_race = ("male", "female"), ("Asian", "White", "Black", "Others")
    _write_csv({"video": videos["video"].to_numpy(),
                "gender": [words_gender[g] for g in videos["gender"]],
                "race": [words_race[r] for r in videos["race"]]}, folder / "demographics.csv")
    return {"json": f"{name}.json", "sidecar": "demographics.csv", "labels": {v: k for k, v in names.items()}}
