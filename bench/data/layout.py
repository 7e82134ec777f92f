"""How a dataset's frames become manifest rows: paths, videos, identities, sample ids, and the final checks.

Every reader (readers.py) maps its files onto raw rows (path, origin, split, label, manipulation, gender,
race); what is common to all of them is here. A `Layout` says where the frames are and, where the files
do not say which video or identity a frame belongs to, how its path names them: the video is the folder
that holds the frame (or ``video_pattern``), the identity is found in the video by ``identity_pattern``
(or is the video itself). `complete` then applies the description's policies for repeated rows and for
videos or identities in two splits (overlaps.py), keeps ``frames_per_video`` evenly spaced frames, checks
that every split asked for has frames, and validates the manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from bench.data.manifest import COLUMNS, validate_manifest
from bench.data.overlaps import drop_duplicates, resolve_leaks
from bench.data.tables import Table
from bench.errors import DataError
from bench.groups import intersection


@dataclass(frozen=True)
class Layout:
    """Where frames are and how a frame's path names its video and identity (shared by every reader)."""

    root: Path  # frames are root / path
    path_prefix: str = ""  # removed from the start of every path (e.g. the authors' /data/.../crops/)
    video_pattern: str | None = None  # regex searched in the relative path; group `video` (default: the folder)
    identity_pattern: str | None = None  # regex searched in the video; group `identity` (default: the video)
    frames_per_video: int = 0  # 0: every listed frame; else that many, evenly spaced through the video
    description: str = ""  # the description file, named in messages about its settings
    duplicates: str | None = None  # "error" | "drop" (overlaps.py); None: the format offers no choice
    leaks: str | None = None  # "error" | "drop-from-train" | "drop-from-test"; None: no choice


@dataclass
class ReadResult:
    """A validated manifest (plus an ``origin`` column: the file and row of each frame) and what a user
    should know about how it was read."""

    manifest: pd.DataFrame
    root: Path
    path_field: str  # how messages name the path column of the source ("column 'img_path'", "key 'frames'")
    notes: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)  # annotation files read

    def origin(self, row: int) -> str:
        return f"{self.manifest['origin'].iat[row]}, {self.path_field}"


# --------------------------------------------------------------------------------------------- assembling
def raw_frame(table: Table, split: str, *, path: np.ndarray, label: np.ndarray, manipulation: np.ndarray,
              gender: np.ndarray, race: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "path": pd.Series(path, dtype=object), "origin": pd.Series([table.origin(i) for i in range(len(path))],
                                                                   dtype=object),
        "split": pd.Series([split] * len(path), dtype=object), "label": label.astype(np.int64),
        "manipulation": np.asarray(manipulation, dtype=np.int64), "gender": np.asarray(gender, dtype=np.int64),
        "race": np.asarray(race, dtype=np.int64),
    })


def assemble(raw: pd.DataFrame, layout: Layout, *, path_field: str, splits: list[str], notes: list[str],
             sources: list[Path]) -> ReadResult:
    return complete(locate(raw, layout, path_field=path_field), layout, path_field=path_field, splits=splits,
                    notes=notes, sources=sources)


def locate(raw: pd.DataFrame, layout: Layout, *, path_field: str, given_ids: bool = False) -> pd.DataFrame:
    """Normalise paths (POSIX, relative to the root) and derive video, identity and sample ids."""
    out = raw.copy()
    prefix = _resolve_prefix(out, layout, path_field)
    paths = [_relative(p, prefix, layout, origin, path_field)
             for p, origin in zip(out["path"], out["origin"], strict=True)]
    out["path"] = pd.Series(paths, dtype=object)
    if not given_ids:
        videos = [_video(p, layout, o, path_field) for p, o in zip(paths, out["origin"], strict=True)]
        out["video"] = pd.Series(videos, dtype=object)
        out["identity"] = pd.Series(_identities(videos, layout, out["origin"], path_field), dtype=object)
    if "sample" not in out:
        stems = [PurePosixPath(p).stem for p in paths]
        out["sample"] = pd.Series([f"{v}__f{s}" for v, s in zip(out["video"], stems, strict=True)], dtype=object)
    return out


def _resolve_prefix(frame: pd.DataFrame, layout: Layout, path_field: str) -> str:
    """The prefix to strip: as configured, or with ``"auto"``, the part of the first absolute path before the
    longest tail that exists under the root (the authors' folder, e.g. ``/home/them/crops/``)."""
    if layout.path_prefix != "auto":
        return layout.path_prefix.replace("\\", "/")
    for raw, origin in zip(frame["path"], frame["origin"], strict=True):
        text = raw.replace("\\", "/")
        if not _is_absolute(text):
            continue
        for cut in (i for i, c in enumerate(text) if c == "/"):
            tail = text[cut + 1:]
            if tail and (layout.root / tail).is_file():
                return text[: cut + 1]
        raise DataError(f"{origin}, {path_field}: expected a path relative to the root folder, got the absolute "
                        f"path {raw!r}, and no tail of it is a file under root = {str(layout.root)!r}; set "
                        f"path_prefix = \"{_folder_of(text)}\" (the part to strip) in {layout.description}.")
    return ""


def _is_absolute(text: str) -> bool:
    return text.startswith("/") or re.match(r"^[A-Za-z]:/", text) is not None


def _relative(path: str, prefix: str, layout: Layout, origin: str, path_field: str) -> str:
    text = path.replace("\\", "/")
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    while text.startswith("./"):
        text = text[2:]
    if not text:
        raise DataError(f"{origin}, {path_field}: expected a frame path, got an empty value.")
    if _is_absolute(text):
        hint = f"it does not start with path_prefix {prefix!r}" if prefix else \
            f"set path_prefix = \"{_folder_of(text)}\" (the part to strip) in {layout.description}"
        raise DataError(f"{origin}, {path_field}: expected a path relative to root = {str(layout.root)!r}, got the "
                        f"absolute path {path!r}; {hint}.")
    pure = PurePosixPath(text)
    if ".." in pure.parts:
        raise DataError(f"{origin}, {path_field}: expected a path inside the root folder, got {path!r}.")
    return str(pure)


def _folder_of(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return parent.rstrip("/") + "/"


def _video(path: str, layout: Layout, origin: str, path_field: str) -> str:
    if layout.video_pattern is None:
        parent = str(PurePosixPath(path).parent)
        if parent == ".":
            raise DataError(f"{origin}, {path_field}: expected a frame inside its video's folder (video/frame.png), "
                            f"got {path!r}; set video_pattern in {layout.description} to find the video in the "
                            f"file name.")
        return parent
    match = re.search(layout.video_pattern, path)
    if not match or not match.groupdict().get("video"):
        raise DataError(f"{origin}, {path_field}: expected a path matching video_pattern {layout.video_pattern!r} "
                        f"(of {layout.description}) with a non-empty group 'video', got {path!r}.")
    return match["video"]


def _identities(videos: list[str], layout: Layout, origins: pd.Series, path_field: str) -> list[str]:
    if layout.identity_pattern is None:
        return list(videos)
    pattern = re.compile(layout.identity_pattern)
    cache: dict[str, str] = {}
    out = []
    for i, video in enumerate(videos):
        if video not in cache:
            match = pattern.search(video)
            if not match or not match.groupdict().get("identity"):
                raise DataError(f"{origins.iat[i]}, {path_field}: expected a video matching identity_pattern "
                                f"{layout.identity_pattern!r} (of {layout.description}) with a non-empty group "
                                f"'identity', got the video {video!r}.")
            cache[video] = match["identity"]
        out.append(cache[video])
    return out


def complete(frame: pd.DataFrame, layout: Layout, *, path_field: str, splits: list[str], notes: list[str],
             sources: list[Path], check_empty_in: Path | None = None) -> ReadResult:
    """Subsample frames per video, check the splits and validate the manifest."""
    frame, dropped = drop_duplicates(frame, policy=layout.duplicates, path_field=path_field,
                                     description=layout.description)
    gender, race = frame["gender"].to_numpy(np.int64), frame["race"].to_numpy(np.int64)
    frame = frame.assign(intersection=intersection(gender, race)) \
        if "intersection" not in frame else frame
    frame, leaked = resolve_leaks(frame, policy=layout.leaks, path_field=path_field, description=layout.description)
    notes = [*notes, *dropped, *leaked]
    if layout.frames_per_video:
        frame = evenly_spaced_frames(frame, layout.frames_per_video)
    for split in splits:
        if not (frame["split"] == split).any():
            where = check_empty_in or (sources[0] if sources else layout.description)
            raise DataError(f"{where}: column 'split': expected frames for the {split} split, got none; an empty "
                            f"split cannot be trained or tested on (list only the splits the data has).")
    columns = [*COLUMNS, "origin"]
    manifest = validate_manifest(frame[columns], source=str(layout.description or "manifest"))
    return ReadResult(manifest=manifest, root=layout.root, path_field=path_field, notes=notes, sources=sources)


def evenly_spaced_frames(frame: pd.DataFrame, per_video: int) -> pd.DataFrame:
    """At most ``per_video`` frames of each video, evenly spaced in frame order (never the first N):
    of a video's n frames, the k kept are those at floor((i + 0.5) * n / k), i = 0..k-1 (the centres of
    k equal stretches). Rows keep their order."""
    keys = frame["path"].map(_natural_key)
    order = sorted(range(len(frame)), key=lambda i: (frame["video"].iat[i], keys.iat[i]))
    ordered = frame.iloc[order]
    position = ordered.groupby("video", sort=False).cumcount().to_numpy()
    count = ordered.groupby("video", sort=False)["video"].transform("size").to_numpy()
    chosen = np.zeros(len(ordered), dtype=bool)
    for n in np.unique(count):
        k = min(int(n), per_video)
        picks = np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)
        rows = count == n
        chosen[rows] = np.isin(position[rows], picks)
    kept = ordered.index[chosen]
    return frame.loc[sorted(kept)].reset_index(drop=True)


def _natural_key(path: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path))
