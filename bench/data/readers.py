"""Readers of the published annotation formats (docs/DATA.md): each maps its files onto the internal manifest.

Four formats: the Purdue "legacy" CSVs of the PG-FDD code (8 groups, or the 6-group coding of its
Celeb-DF and DFD files, mapped to 8 with the merge recorded), the Purdue "v2" CSVs (ground-truth columns
and a choice between ``Intersection`` and the noisier ``intersec_label``), DeepfakeBench's JSON with a
demographics sidecar joined at video level, and a generic CSV in the internal schema.

Columns are found by header name, never by position. Every problem is reported in one line naming the
file, the row (data rows, counted from 1 after the header) and the column, and what was expected, so a
user can fix the file without reading this code. Paths may use either separator and may carry the
authors' absolute prefix (``path_prefix`` strips it); the manifest stores POSIX paths relative to the
root. Where the files do not say which video or identity a frame belongs to, a `Layout` derives them
from the path: the video is the folder that holds the frame (or ``video_pattern``), the identity is found
in the video by ``identity_pattern`` (or is the video itself). Splits must be video- and
identity-disjoint; every split the description asks for must have frames.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from bench.data.manifest import COLUMNS, SPLITS, validate_manifest
from bench.errors import DataError
from bench.groups import GROUP_NAMES, from_six_groups, intersection, to_six_groups

# Purdue legacy coding (DATA.md, format 1).
LEGACY_FILES: dict[str, tuple[str, ...]] = {
    "train": ("realtrain.csv", "faketrain.csv"),
    "val": ("realval.csv", "fakeval.csv"),
    "test": ("test.csv",),
}
SIX_GROUP_NOTE = ("6-group coding (no isasian column): Asian is merged into Others for this dataset, so M-Asian "
                  "and F-Asian are empty and M-Others/F-Others include Asian subjects")
V2_FILES: dict[str, tuple[str, ...]] = {"train": ("train.csv",), "val": ("val.csv",), "test": ("test.csv",)}
V2_GROUP_COLUMNS = ("Intersection", "intersec_label")
_GENDER_WORDS = {"male": 0, "m": 0, "man": 0, "female": 1, "f": 1, "woman": 1, "unknown": -1, "": -1}
_RACE_WORDS = {"asian": 0, "white": 1, "caucasian": 1, "black": 2, "african": 2, "others": 3, "other": 3,
               "unknown": -1, "": -1}


@dataclass(frozen=True)
class Layout:
    """Where frames are and how a frame's path names its video and identity (shared by every reader)."""

    root: Path  # frames are root / path
    path_prefix: str = ""  # removed from the start of every path (e.g. the authors' /data/.../crops/)
    video_pattern: str | None = None  # regex searched in the relative path; group `video` (default: the folder)
    identity_pattern: str | None = None  # regex searched in the video; group `identity` (default: the video)
    frames_per_video: int = 0  # 0: every listed frame; else that many, evenly spaced through the video
    description: str = ""  # the description file, named in messages about its settings


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


# ------------------------------------------------------------------------------------------------ CSV files
@dataclass
class Table:
    """One CSV file read as text: columns by canonical header name, values stripped strings."""

    path: Path
    header: list[str]
    columns: dict[str, np.ndarray]  # canonical name -> object array of str, one per data row
    names: dict[str, str]  # canonical name -> the name as written in the header

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def origin(self, row: int) -> str:
        return f"{self.path}: row {row + 1}"

    def has(self, column: str) -> bool:
        return _canonical(column) in self.names

    def name(self, column: str) -> str:
        return self.names.get(_canonical(column), column)

    def fail(self, bad: np.ndarray, column: str, expected: str | Callable[[int], str]) -> None:
        """Raise for the first row where ``bad`` is true (a boolean mask over data rows); ``expected`` may
        be a function of that row."""
        rows = np.flatnonzero(bad)
        if len(rows) == 0:
            return
        first = int(rows[0])
        got = self.columns[_canonical(column)][first]
        wanted = expected(first) if callable(expected) else expected
        more = f" ({len(rows) - 1} more row(s) like it)" if len(rows) > 1 else ""
        raise DataError(f"{self.origin(first)}, column {self.name(column)!r}: expected {wanted}, "
                        f"got {_shown(got)}{more}.")

    def integers(self, column: str, allowed: Iterable[int] | None = None, *, expected: str = "",
                 blank: int | None = None) -> np.ndarray:
        """The column as int64; whole numbers only (``1.0`` is accepted), from ``allowed`` when given;
        an empty cell becomes ``blank`` when given and is an error otherwise."""
        raw = self.columns[_canonical(column)]
        allowed = None if allowed is None else tuple(allowed)
        wanted = expected or ("a whole number" if allowed is None else f"one of {', '.join(map(str, allowed))}")
        empty = raw == ""
        numbers = pd.to_numeric(pd.Series(np.where(empty, "0", raw), dtype=object), errors="coerce").to_numpy()
        bad = np.isnan(numbers) | (numbers != np.round(numbers))
        if blank is None:
            bad |= empty
        self.fail(bad, column, wanted)
        values = np.where(empty, blank if blank is not None else 0, numbers).astype(np.int64)
        if allowed is not None:
            self.fail(~np.isin(values, allowed) & ~(empty & (blank is not None)), column, wanted)
        return values

    def strings(self, column: str) -> np.ndarray:
        return self.columns[_canonical(column)]


def read_table(path: Path, *, required: Sequence[str], optional: Sequence[str] = (), needs_rows: bool = True,
               what: str = "") -> Table:
    """Read a CSV file by header names; raise a one-line `DataError` for anything unreadable.

    ``required`` columns must be in the header, ``optional`` ones may be. Names match ignoring case and
    surrounding spaces. ``needs_rows``: a file with a header but no data row is an error (``what`` says
    what its rows are for).
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        lines = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({exc}).") from None
    if not lines:
        raise DataError(f"{path}: header row: expected a header naming the columns "
                        f"{', '.join(required)}, got an empty file.")
    header = lines[0][1]
    canonical = [_canonical(h) for h in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(canonical):
        if name in seen:
            raise DataError(f"{path}: header row, column {header[i]!r}: expected each column once, but columns "
                            f"{seen[name] + 1} and {i + 1} have the same name.")
        seen[name] = i
    missing = [c for c in required if _canonical(c) not in seen]
    if missing:
        raise DataError(f"{path}: header row, column {missing[0]!r}: missing; expected a header with "
                        f"{', '.join(required)}{' [, ' + ', '.join(optional) + ']' if optional else ''}, "
                        f"got {','.join(header)}.")
    wanted = [_canonical(c) for c in (*required, *optional) if _canonical(c) in seen]
    rows = lines[1:]
    for number, (line, values) in enumerate(rows, start=1):
        if len(values) != len(header):
            raise DataError(f"{path}: row {number} (line {line}), column {len(values)}: expected {len(header)} "
                            f"comma-separated values (the header's {len(header)} columns), got {len(values)}.")
    if needs_rows and not rows:
        raise DataError(f"{path}: row 1, column {header[0]!r}: expected at least one data row"
                        f"{' (' + what + ')' if what else ''}, got a header only; an empty split cannot be "
                        f"trained or tested on.")
    columns = {name: np.array([values[seen[name]] for _, values in rows], dtype=object) for name in wanted}
    names = {name: header[seen[name]] for name in wanted}
    return Table(path=path, header=header, columns=columns, names=names)


def read_text(path: Path) -> str:
    """The file as text; anything but UTF-8 (a BOM allowed) is an error naming the row and column."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: the file does not exist.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DataError(f"{path}: row 0 (the header), column 1: expected UTF-8 text, got a UTF-16/32 byte-order "
                        f"mark; save the file as UTF-8 (e.g. Excel's 'CSV UTF-8').")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = before[line_start:].count(b",") + 1
        header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").split(",")
        column_name = f" ({header[column - 1].strip()!r})" if line > 1 and column <= len(header) else ""
        where = "header row (line 1)" if line == 1 else f"row {line - 1} (line {line})"
        raise DataError(f"{path}: {where}, column {column}{column_name}: expected UTF-8 text, got "
                        f"byte 0x{data[exc.start]:02x} at byte offset {exc.start}; save the file as UTF-8.") from None


# --------------------------------------------------------------------------------------- Purdue legacy CSVs
def read_purdue_legacy(*, files: Mapping[str, Sequence[Path]], layout: Layout, groups: str = "auto") -> ReadResult:
    """Read the PG-FDD CSVs: ``img_path,label,ismale,isasian,iswhite,isblack,intersec_label[,spe_label]``.

    ``files`` maps each split to its CSV files. ``groups``: ``"auto"`` (8 groups when the header has
    ``isasian``, else the 6-group Celeb-DF/DFD coding), ``"8"`` or ``"6"``. A file whose name starts with
    ``fake``/``real`` must hold only fakes/reals. Attribute flags must agree with ``intersec_label``.
    """
    if groups not in ("auto", "8", "6"):
        raise DataError(f"{layout.description}: groups must be \"auto\", \"8\" or \"6\"; got {groups!r}.")
    parts, coding = [], None
    for split, paths in files.items():
        for path in paths:
            table = read_table(path, required=("img_path", "label", "ismale", "iswhite", "isblack", "intersec_label"),
                               optional=("isasian", "spe_label"), what=f"the {split} split")
            file_coding = ("8" if table.has("isasian") else "6") if groups == "auto" else groups
            if file_coding == "8" and not table.has("isasian"):
                raise DataError(f"{path}: header row, column 'isasian': missing; expected it with groups = \"8\" "
                                f"(set groups = \"6\" or \"auto\" for the 6-group Celeb-DF/DFD coding).")
            if coding is not None and file_coding != coding:
                raise DataError(f"{path}: header row, column 'isasian': expected the same group coding as the "
                                f"other files ({coding} groups), got the {file_coding}-group header.")
            coding = file_coding
            parts.append(_legacy_rows(table, split, six_groups=file_coding == "6"))
    raw = pd.concat(parts, ignore_index=True)
    notes = [SIX_GROUP_NOTE] if coding == "6" else []
    return _assemble(raw, layout, path_field="column 'img_path'", splits=list(files), notes=notes,
                     sources=[p for paths in files.values() for p in paths])


def _legacy_rows(table: Table, split: str, *, six_groups: bool) -> pd.DataFrame:
    n = len(table)
    expected_label = _label_from_file_name(table.path)
    label = table.integers("label", (0, 1))
    if expected_label is not None:
        kind = "fake" if expected_label else "real"
        table.fail(label != expected_label, "label", f"{expected_label} (every row of a {kind}*.csv file is {kind})")
    flag = "1 or -1"
    male = table.integers("ismale", (1, -1), expected=flag)
    white = table.integers("iswhite", (1, -1), expected=flag) == 1
    black = table.integers("isblack", (1, -1), expected=flag) == 1
    asian = np.zeros(n, dtype=bool) if six_groups else table.integers("isasian", (1, -1), expected=flag) == 1
    several = (asian.astype(int) + white + black) > 1
    if several.any():  # name the second flag that is set in the first such row
        row = int(np.flatnonzero(several)[0])
        second = "isblack" if black[row] else "iswhite"
        table.fail(several & (np.arange(n) == row), second, "at most one of isasian, iswhite, isblack to be 1")
    gender = np.where(male == 1, 0, 1)
    race = np.select([asian, white, black], [0, 1, 2], default=3)
    flags = intersection(gender, race)
    if six_groups:
        code = table.integers("intersec_label", range(6), expected="0..5 (the 6-group coding: M-White, M-Black, "
                              "M-Others, F-White, F-Black, F-Others)")
        six = to_six_groups(gender, race)  # the flags' group in the 6-group coding
        table.fail(from_six_groups(code) != flags, "intersec_label",
                   lambda r: f"{six[r]} ({GROUP_NAMES['intersection'][flags[r]]}, the group of the ismale/iswhite/"
                             f"isblack flags)")
    else:
        code = table.integers("intersec_label", range(8), expected="0..7 (M-Asian, M-White, M-Black, M-Others, "
                              "F-Asian, F-White, F-Black, F-Others)")
        table.fail(code != flags, "intersec_label",
                   lambda r: f"{flags[r]} ({GROUP_NAMES['intersection'][flags[r]]}, the group of the ismale/isasian/"
                             f"iswhite/isblack flags)")
    if table.has("spe_label"):
        spe = table.integers("spe_label", blank=0)
        table.fail((label == 1) & ~np.isin(spe, range(1, 6)), "spe_label",
                   "1..5 for a fake (1 Deepfakes, 2 Face2Face, 3 FaceSwap, 4 NeuralTextures, 5 FaceShifter)")
        table.fail((label == 0) & (spe != 0), "spe_label", "0 or an empty cell for a real frame")
        manipulation = spe
    else:
        manipulation = label.copy()
    return _raw_frame(table, split, path=table.strings("img_path"), label=label, manipulation=manipulation,
                      gender=gender, race=race)


def _label_from_file_name(path: Path) -> int | None:
    name = path.name.lower()
    return 1 if name.startswith("fake") else 0 if name.startswith("real") else None


# ------------------------------------------------------------------------------------------- Purdue v2 CSVs
def read_purdue_v2(*, files: Mapping[str, Sequence[Path]], layout: Layout,
                   group_column: str = "Intersection") -> ReadResult:
    """Read ``Image Path,Ground Truth Gender,Ground Truth Age,Ground Truth Race,Intersection,Target
    [,Specific][,intersec_label]``: gender 1 male / 0 female, race 0 Asian .. 3 Others, Target 1 fake.

    ``group_column`` picks the group labels: ``Intersection`` (= (1-gender)*4 + race, checked against the
    ground-truth columns) or ``intersec_label`` (noisier; gender and race then follow from it).
    """
    if group_column not in V2_GROUP_COLUMNS:
        raise DataError(f"{layout.description}: group_column must be one of {', '.join(V2_GROUP_COLUMNS)}; "
                        f"got {group_column!r}.")
    parts = []
    for split, paths in files.items():
        for path in paths:
            table = read_table(path, required=("Image Path", "Ground Truth Gender", "Ground Truth Race", "Target",
                                               group_column), optional=("Specific",), what=f"the {split} split")
            label = table.integers("Target", (0, 1))
            gt_gender = table.integers("Ground Truth Gender", (1, 0, -1), expected="1 (male), 0 (female) or -1")
            gt_race = table.integers("Ground Truth Race", (0, 1, 2, 3, -1),
                                     expected="0 Asian, 1 White, 2 Black, 3 Others or -1")
            code = table.integers(group_column, range(-1, 8), expected="0..7 (gender*4 + race) or -1")
            if group_column == "Intersection":
                gender = np.where(gt_gender < 0, -1, 1 - gt_gender)
                race = gt_race
                known = (gender >= 0) & (race >= 0)
                table.fail(known & (code != intersection(gender, race)), group_column,
                           "(1 - Ground Truth Gender)*4 + Ground Truth Race")
                table.fail(~known & (code != -1), group_column, "-1 when gender or race is unknown")
            else:
                gender, race = np.where(code < 0, -1, code // 4), np.where(code < 0, -1, code % 4)
            if table.has("Specific"):
                specific = table.integers("Specific", blank=0)
                table.fail((label == 1) & (specific < 1), "Specific", "1..K (the manipulation) for a fake")
                table.fail((label == 0) & (specific != 0), "Specific", "0 or an empty cell for a real image")
                manipulation = specific
            else:
                manipulation = label.copy()
            parts.append(_raw_frame(table, split, path=table.strings("Image Path"), label=label,
                                    manipulation=manipulation, gender=gender, race=race))
    notes = [f"groups from the {group_column!r} column" + (" (the noisier labels)" if group_column != "Intersection"
                                                           else "")]
    return _assemble(pd.concat(parts, ignore_index=True), layout, path_field="column 'Image Path'",
                     splits=list(files), notes=notes, sources=[p for paths in files.values() for p in paths])


# ------------------------------------------------------------------------------------------ DeepfakeBench
def read_deepfakebench(*, json_path: Path, layout: Layout, labels: Mapping[str, int], sidecar: Path | None,
                       dataset: str | None = None, compression: str | None = None,
                       splits: Sequence[str] = SPLITS, unmatched: str = "error") -> ReadResult:
    """Read DeepfakeBench's ``{dataset: {label_name: {split: {[compression:] {video: {label, frames}}}}}}``.

    ``labels`` maps each label name to a manipulation code (0 real, 1..K fake). Demographics come from
    ``sidecar`` (``video,gender,race`` or ``identity,gender,race``; codes or words), joined on the JSON's
    video keys (or on identities); videos without a sidecar row are an error unless ``unmatched =
    "unknown"``. Without a sidecar every group is unknown.
    """
    if unmatched not in ("error", "unknown"):
        raise DataError(f"{layout.description}: unmatched must be \"error\" or \"unknown\"; got {unmatched!r}.")
    try:
        tree = json.loads(read_text(json_path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{json_path}: line {exc.lineno}, column {exc.colno}: expected valid JSON ({exc.msg}).") \
            from None
    if not isinstance(tree, dict) or not tree:
        raise DataError(f"{json_path}: top level: expected an object {{dataset name: {{label name: ...}}}}.")
    if dataset is None:
        if len(tree) != 1:
            raise DataError(f"{json_path}: top level: expected one dataset, got {', '.join(map(str, tree))}; "
                            f"choose one with dataset = \"...\" in {layout.description}.")
        dataset = next(iter(tree))
    if dataset not in tree:
        raise DataError(f"{json_path}: top level, key {dataset!r}: missing; the file holds "
                        f"{', '.join(map(str, tree))} (dataset = ... in {layout.description}).")
    records: dict[str, list] = {k: [] for k in ("path", "origin", "split", "manipulation", "key")}
    counted = dict.fromkeys(splits, 0)
    for label_name, by_split in _object(tree[dataset], json_path, [dataset]).items():
        by_split = _object(by_split, json_path, [dataset, label_name])
        for split in splits:
            if split not in by_split:
                continue
            where = [dataset, label_name, split]
            videos, where = _videos(by_split[split], json_path, where, compression, layout)
            for key, entry in videos.items():
                at = [*where, key]
                entry = _object(entry, json_path, at)
                name = entry.get("label", label_name)
                if name not in labels:
                    raise DataError(f"{json_path}: video {_where(at)}, key 'label': expected one of "
                                    f"{', '.join(map(repr, labels))} (the [labels] table of {layout.description}), "
                                    f"got {_shown(name)}.")
                frames = entry.get("frames")
                if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
                    raise DataError(f"{json_path}: video {_where(at)}, key 'frames': expected a list of frame "
                                    f"paths, got {_shown(frames)}.")
                for i, frame in enumerate(frames):
                    records["path"].append(frame)
                    records["origin"].append(f"{json_path}: video {_where(at)} (frame {i + 1})")
                records["split"] += [split] * len(frames)
                records["manipulation"] += [labels[name]] * len(frames)
                records["key"] += [str(key)] * len(frames)
                counted[split] += len(frames)
    for split, n in counted.items():
        if n == 0:
            raise DataError(f"{json_path}: {dataset} > * > {split}, key 'frames': expected at least one frame for "
                            f"the {split} split, got none; an empty split cannot be trained or tested on (list "
                            f"only the splits the file has in `splits` of {layout.description}).")
    manipulation = np.asarray(records["manipulation"], dtype=np.int64)
    raw = pd.DataFrame({
        "path": pd.Series(records["path"], dtype=object), "origin": pd.Series(records["origin"], dtype=object),
        "split": pd.Series(records["split"], dtype=object), "label": (manipulation > 0).astype(np.int64),
        "manipulation": manipulation, "gender": -1, "race": -1, "key": pd.Series(records["key"], dtype=object),
    })
    located = _locate(raw, layout, path_field="key 'frames'")
    notes = []
    sources = [json_path]
    if sidecar is not None:
        notes += _join_sidecar(located, sidecar, json_path, unmatched)
        sources.append(sidecar)
    else:
        notes.append("no demographics sidecar: every group is unknown (-1)")
    return _complete(located.drop(columns="key"), layout, path_field="key 'frames'", splits=list(splits),
                     notes=notes, sources=sources)


def _object(node: Any, path: Path, where: list[str]) -> dict:
    if not isinstance(node, dict):
        raise DataError(f"{path}: {_where(where) or 'top level'}: expected a JSON object, got {_shown(node)}.")
    return node


def _where(keys: Sequence[str]) -> str:
    return " > ".join(map(str, keys))


def _is_video(node: Any) -> bool:
    return isinstance(node, dict) and "frames" in node


def _videos(node: Any, path: Path, where: list[str], compression: str | None,
            layout: Layout) -> tuple[dict, list[str]]:
    """The videos of one split: directly under it, or under a compression level (c23, c40, raw)."""
    node = _object(node, path, where)
    if not node or any(_is_video(v) for v in node.values()):
        return node, where
    levels = [k for k, v in node.items() if isinstance(v, dict)]
    if compression is None:
        if len(levels) == 1:
            return node[levels[0]], [*where, levels[0]]
        raise DataError(f"{path}: {_where(where)}: expected one compression level, got {', '.join(levels)}; "
                        f"choose one with compression = \"...\" in {layout.description}.")
    if compression not in node:
        raise DataError(f"{path}: {_where(where)}, key {compression!r}: missing; the compression levels are "
                        f"{', '.join(levels)} (compression = ... in {layout.description}).")
    return _object(node[compression], path, [*where, compression]), [*where, compression]


def _join_sidecar(frame: pd.DataFrame, sidecar: Path, json_path: Path, unmatched: str) -> list[str]:
    """Set gender and race of ``frame`` (in place) from the sidecar, joined on JSON video keys or identities."""
    probe = read_table(sidecar, required=("gender", "race"), optional=("video", "identity"))
    if probe.has("video"):
        key_column, keys = "video", frame["key"]
    elif probe.has("identity"):
        key_column, keys = "identity", frame["identity"]
    else:
        raise DataError(f"{sidecar}: header row, column 'video': missing; expected a header video,gender,race "
                        f"(or identity,gender,race), got {','.join(probe.header)}.")
    key = probe.strings(key_column)
    probe.fail(key == "", key_column, "a non-empty key")
    duplicated = pd.Series(key).duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        first = int(np.flatnonzero(key == key[row])[0])
        raise DataError(f"{probe.origin(row)}, column {key_column!r}: expected each {key_column} once, got "
                        f"{key[row]!r} again (first in row {first + 1}); {int(duplicated.sum())} duplicate row(s).")
    gender = _coded(probe, "gender", _GENDER_WORDS, "0/male, 1/female or -1/unknown", (-1, 0, 1))
    race = _coded(probe, "race", _RACE_WORDS, "0/Asian, 1/White, 2/Black, 3/Others or -1/unknown", (-1, 0, 1, 2, 3))
    table = pd.DataFrame({"gender": gender, "race": race}, index=pd.Index(key, dtype=object))
    matched = keys.isin(table.index).to_numpy()
    notes = []
    if not matched.all():
        missing = pd.unique(keys[~matched])
        total = keys.nunique()
        if unmatched == "error":
            row = int(np.flatnonzero(~matched)[0])
            examples = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise DataError(f"{frame['origin'].iat[row]}, key {key_column!r}: expected a row in {sidecar}, but "
                            f"{len(missing)} of {total} {key_column}s of {json_path.name} are unmatched ({examples}); "
                            f"add them, or set unmatched = \"unknown\" to keep them with unknown groups.")
        notes.append(f"{len(missing)} of {total} {key_column}s have no row in {sidecar.name}: their groups are "
                     f"unknown (-1)")
    looked_up = table.reindex(keys.to_numpy())
    frame["gender"] = np.where(matched, looked_up["gender"].fillna(-1).to_numpy(), -1).astype(np.int64)
    frame["race"] = np.where(matched, looked_up["race"].fillna(-1).to_numpy(), -1).astype(np.int64)
    unused = len(table) - int(table.index.isin(keys).sum())
    if unused:
        notes.append(f"{unused} row(s) of {sidecar.name} match no video of the splits read")
    return notes


def _coded(table: Table, column: str, words: Mapping[str, int], expected: str, allowed: tuple[int, ...]) -> np.ndarray:
    raw = table.strings(column)
    lowered = np.array([v.lower() for v in raw], dtype=object)
    out = np.empty(len(raw), dtype=np.int64)
    bad = np.zeros(len(raw), dtype=bool)
    for i, value in enumerate(lowered):
        if value in words:
            out[i] = words[value]
        else:
            try:
                number = float(value)
            except ValueError:
                bad[i] = True
                continue
            bad[i] = number != round(number) or int(number) not in allowed
            out[i] = int(number) if not bad[i] else 0
    table.fail(bad, column, expected)
    return out


# ------------------------------------------------------------------------------------------- generic CSV
def read_generic(*, path: Path, layout: Layout, splits: Sequence[str] = SPLITS) -> ReadResult:
    """Read a CSV in the internal schema (docs/DATA.md); ``sample`` may be left out (derived from the path).

    Rows of splits not in ``splits`` are left out; each split in ``splits`` must have rows.
    """
    required = [c for c in COLUMNS if c != "sample"]
    table = read_table(path, required=required, optional=("sample",), what="the frames")
    given = table.has("sample")
    frame = pd.DataFrame({c: pd.Series(table.columns[c], dtype=object) for c in table.columns})
    frame["path"] = pd.Series([p.replace("\\", "/") for p in table.strings("path")], dtype=object)
    if not given:  # a placeholder that passes validation; the real id comes from the video and frame name
        frame["sample"] = pd.Series([f"row {i + 1}" for i in range(len(frame))], dtype=object)
    frame["origin"] = pd.Series([table.origin(i) for i in range(len(table))], dtype=object)
    checked = validate_manifest(frame, source=str(path))
    if not given:
        checked = checked.drop(columns="sample")
    keep = checked["split"].isin(splits).to_numpy()
    notes = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} row(s) of splits other than {', '.join(splits)} left out")
    located = _locate(checked[keep].reset_index(drop=True), layout, path_field="column 'path'", given_ids=True)
    return _complete(located, layout, path_field="column 'path'", splits=list(splits), notes=notes,
                     sources=[path], check_empty_in=path)


# --------------------------------------------------------------------------------------------- assembling
def _raw_frame(table: Table, split: str, *, path: np.ndarray, label: np.ndarray, manipulation: np.ndarray,
               gender: np.ndarray, race: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "path": pd.Series(path, dtype=object), "origin": pd.Series([table.origin(i) for i in range(len(path))],
                                                                   dtype=object),
        "split": pd.Series([split] * len(path), dtype=object), "label": label.astype(np.int64),
        "manipulation": np.asarray(manipulation, dtype=np.int64), "gender": np.asarray(gender, dtype=np.int64),
        "race": np.asarray(race, dtype=np.int64),
    })


def _assemble(raw: pd.DataFrame, layout: Layout, *, path_field: str, splits: list[str], notes: list[str],
              sources: list[Path]) -> ReadResult:
    return _complete(_locate(raw, layout, path_field=path_field), layout, path_field=path_field, splits=splits,
                     notes=notes, sources=sources)


def _locate(raw: pd.DataFrame, layout: Layout, *, path_field: str, given_ids: bool = False) -> pd.DataFrame:
    """Normalise paths (POSIX, relative to the root) and derive video, identity and sample ids."""
    out = raw.copy()
    prefix = _resolve_prefix(out, layout, path_field)
    paths = [_relative(p, prefix, layout, origin, path_field)
             for p, origin in zip(out["path"], out["origin"], strict=True)]
    out["path"] = pd.Series(paths, dtype=object)
    first = out["path"].duplicated(keep="first").to_numpy()
    if first.any():
        row = int(np.flatnonzero(first)[0])
        earlier = int(np.flatnonzero((out["path"] == out["path"].iat[row]).to_numpy())[0])
        raise DataError(f"{out['origin'].iat[row]}, {path_field}: expected each frame once, got "
                        f"{out['path'].iat[row]!r} again (first at {out['origin'].iat[earlier]}); "
                        f"{int(first.sum())} duplicate row(s).")
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


def _complete(frame: pd.DataFrame, layout: Layout, *, path_field: str, splits: list[str], notes: list[str],
              sources: list[Path], check_empty_in: Path | None = None) -> ReadResult:
    """Subsample frames per video, check the splits and validate the manifest."""
    gender, race = frame["gender"].to_numpy(np.int64), frame["race"].to_numpy(np.int64)
    frame = frame.assign(intersection=intersection(gender, race)) \
        if "intersection" not in frame else frame
    if layout.frames_per_video:
        frame = evenly_spaced_frames(frame, layout.frames_per_video)
    for split in splits:
        if not (frame["split"] == split).any():
            where = check_empty_in or (sources[0] if sources else layout.description)
            raise DataError(f"{where}: column 'split': expected frames for the {split} split, got none; an empty "
                            f"split cannot be trained or tested on (list only the splits the data has).")
    _check_disjoint(frame, "video", path_field)
    _check_disjoint(frame, "identity", path_field)
    columns = [*COLUMNS, "origin"]
    manifest = validate_manifest(frame[columns], source=str(layout.description or "manifest"))
    return ReadResult(manifest=manifest, root=layout.root, path_field=path_field, notes=notes, sources=sources)


def _check_disjoint(frame: pd.DataFrame, column: str, path_field: str) -> None:
    """Videos and identities may not be in two splits: the test split would measure memorisation."""
    splits_of = frame.groupby(column, sort=False)["split"].nunique()
    leaked = splits_of[splits_of > 1]
    if leaked.empty:
        return
    name = str(leaked.index[0])
    rows = frame.index[(frame[column] == name).to_numpy()]
    by_split = frame.loc[rows].drop_duplicates("split")
    first, second = by_split.iloc[0], by_split.iloc[1]
    examples = ", ".join(map(str, leaked.index[:5])) + (", ..." if len(leaked) > 5 else "")
    raise DataError(f"{second['origin']}, {path_field}: expected {column}-disjoint splits, but {column} {name!r} is "
                    f"in {first['split']} (e.g. {first['origin']}) and in {second['split']}; {len(leaked)} "
                    f"{column}(s) are in more than one split ({examples}).")


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


def _canonical(name: str) -> str:
    return name.strip().casefold()


def _shown(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)
    text = json.dumps(value)[:60] if isinstance(value, dict | list) else repr(value)[:60]
    return text + ("..." if len(text) >= 60 else "")


def env_unset(value: str) -> list[str]:
    """Environment variables still unexpanded in ``value`` (os.path.expandvars leaves unset ones as is)."""
    return [m[1] or m[2] for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", value) if (m[1] or m[2]) not in os.environ]
