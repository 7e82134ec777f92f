"""Readers of the published annotation formats (docs/DATA.md): each maps its files onto the internal manifest.

Four formats: the Purdue "legacy" CSVs of the PG-FDD code (8 groups, or the 6-group coding of its
Celeb-DF and DFD files, mapped to 8 with the merge recorded), the Purdue "v2" CSVs (ground-truth columns
and a choice between ``Intersection`` and the noisier ``intersec_label``), DeepfakeBench's JSON with a
demographics sidecar joined at video level, and a generic CSV in the internal schema.

Columns are found by header name, never by position (tables.py). Every problem is reported in one line
naming the file, the row (data rows, counted from 1 after the header) and the column, and what was
expected, so a user can fix the file without reading this code. What every reader shares after that
(paths relative to the root, video and identity from the path, repeated rows, splits that share videos
or identities, frames per video) is in layout.py and overlaps.py; the released files' file-name rules
are in filenames.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.filenames import SCHEMES, describe_scheme, parse_names
from bench.data.layout import Layout, ReadResult, assemble, complete, locate, raw_frame
from bench.data.manifest import COLUMNS, SPLITS, validate_manifest
from bench.data.tables import Table, read_table, read_text, shown
from bench.errors import DataError
from bench.groups import GROUP_NAMES, from_six_groups, intersection, split_intersection, to_six_groups

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
V2_GROUP_CODINGS = ("auto", "8", "6")
V2_CODINGS = {"8": "0..7 (M-Asian, M-White, M-Black, M-Others, F-Asian, F-White, F-Black, F-Others) or -1",
              "6": "0..5 (the 6-group coding: M-White, M-Black, M-Others, F-White, F-Black, F-Others) or -1"}
V2_SIX_GROUP_NOTE = ("6-group coding of intersec_label: Asian is merged into Others for this dataset, so M-Asian "
                     "and F-Asian are empty and M-Others/F-Others include Asian subjects")
_GENDER_WORDS = {"male": 0, "m": 0, "man": 0, "female": 1, "f": 1, "woman": 1, "unknown": -1, "": -1}
_RACE_WORDS = {"asian": 0, "white": 1, "caucasian": 1, "black": 2, "african": 2, "others": 3, "other": 3,
               "unknown": -1, "": -1}


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
    return assemble(raw, layout, path_field="column 'img_path'", splits=list(files), notes=notes,
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
    return raw_frame(table, split, path=table.strings("img_path"), label=label, manipulation=manipulation,
                     gender=gender, race=race)


def _label_from_file_name(path: Path) -> int | None:
    name = path.name.lower()
    return 1 if name.startswith("fake") else 0 if name.startswith("real") else None


# ------------------------------------------------------------------------------------------- Purdue v2 CSVs
def read_purdue_v2(*, files: Mapping[str, Sequence[Path]], layout: Layout, group_column: str = "Intersection",
                   groups: str = "auto", names: str | None = None) -> ReadResult:
    """Read ``Image Path,Ground Truth Gender,Ground Truth Age,Ground Truth Race,Intersection,Target
    [,Specific][,intersec_label]``: gender 1 male / 0 female, race 0 Asian .. 3 Others, Target 1 fake.

    ``group_column`` picks the group labels: ``Intersection`` (= (1-gender)*4 + race, checked against the
    ground-truth columns) or ``intersec_label`` (noisier; gender and race then follow from it), whose coding
    is ``groups``: ``"8"``, ``"6"`` (Asian folded into Others, as in the released Celeb-DF and DFD files) or
    ``"auto"`` (decided from the codes; see `_v2_coding`); ``Intersection`` always has 8 groups. ``names``: a
    file-name scheme of filenames.py that gives each frame's video and identity (and FF++'s manipulation)
    instead of the layout's rules.
    """
    where = layout.description
    if group_column not in V2_GROUP_COLUMNS:
        raise DataError(f"{where}: group_column must be one of {', '.join(V2_GROUP_COLUMNS)}; got {group_column!r}.")
    if groups not in V2_GROUP_CODINGS:
        raise DataError(f"{where}: groups must be 8, 6 or \"auto\"; got {groups!r}.")
    if names is not None and names not in SCHEMES:
        raise DataError(f"{where}: names must be one of {', '.join(map(repr, SCHEMES))} (the file-name schemes of "
                        f"the released files); got {names!r}.")
    optional = ("Specific", "Intersection") if group_column == "intersec_label" else ("Specific",)
    tables = [(split, read_table(path, required=("Image Path", "Ground Truth Gender", "Ground Truth Race", "Target",
                                                 group_column), optional=optional, what=f"the {split} split"))
              for split, paths in files.items() for path in paths]
    notes = [f"groups from the {group_column!r} column" + (" (the noisier labels)" if group_column != "Intersection"
                                                           else "")]
    coding = "8"
    if group_column == "intersec_label":
        coding, decided = _v2_coding([t for _, t in tables], groups, where)
        notes += [*decided, *([V2_SIX_GROUP_NOTE] if coding == "6" else [])]
    parts = [_v2_rows(table, split, group_column=group_column, six_groups=coding == "6", names=names)
             for split, table in tables]
    if names is not None:
        notes.append(f"videos and identities from the file names ({names} scheme)")
    located = locate(pd.concat(parts, ignore_index=True), layout, path_field="column 'Image Path'",
                      given_ids=names is not None)
    return complete(located, layout, path_field="column 'Image Path'", splits=list(files), notes=notes,
                     sources=[p for paths in files.values() for p in paths])


def _v2_rows(table: Table, split: str, *, group_column: str, six_groups: bool, names: str | None) -> pd.DataFrame:
    label = table.integers("Target", (0, 1))
    gt_gender = table.integers("Ground Truth Gender", (1, 0, -1), expected="1 (male), 0 (female) or -1")
    gt_race = table.integers("Ground Truth Race", (0, 1, 2, 3, -1),
                             expected="0 Asian, 1 White, 2 Black, 3 Others or -1")
    if group_column == "Intersection":
        code = table.integers(group_column, range(-1, 8), expected="0..7 (gender*4 + race) or -1")
        gender = np.where(gt_gender < 0, -1, 1 - gt_gender)
        race = gt_race
        known = (gender >= 0) & (race >= 0)
        table.fail(known & (code != intersection(gender, race)), group_column,
                   "(1 - Ground Truth Gender)*4 + Ground Truth Race")
        table.fail(~known & (code != -1), group_column, "-1 when gender or race is unknown")
    else:
        code = table.integers(group_column, range(-1, 6) if six_groups else range(-1, 8),
                              expected=V2_CODINGS["6" if six_groups else "8"])
        gender, race = split_intersection(from_six_groups(code) if six_groups else code)
    paths = table.strings("Image Path")
    named = parse_names(paths, label, names) if names is not None else None
    if named is not None:
        table.fail(named.unmatched, "Image Path", f"a file name of the {names} scheme ({describe_scheme(names)})")
        table.fail((named.label >= 0) & (named.label != label), "Target",
                   lambda r: f"{named.label[r]} (the file name is that of a {('real', 'fake')[named.label[r]]} video)")
    if table.has("Specific"):
        manipulation = table.integers("Specific", blank=0)
        table.fail((label == 1) & (manipulation < 1), "Specific", "1..K (the manipulation) for a fake")
        table.fail((label == 0) & (manipulation != 0), "Specific", "0 or an empty cell for a real image")
    elif named is not None and (named.manipulation > 0).any():
        manipulation = np.where(label == 1, np.maximum(named.manipulation, 1), 0)
    else:
        manipulation = label.copy()
    frame = raw_frame(table, split, path=paths, label=label, manipulation=manipulation, gender=gender, race=race)
    if named is not None:
        frame["video"] = pd.Series(named.video, dtype=object)
        frame["identity"] = pd.Series(named.identity, dtype=object)
    return frame


def _v2_coding(tables: list[Table], groups: str, where: str) -> tuple[str, list[str]]:
    """The coding of ``intersec_label`` and, with ``"auto"``, a note of what was decided and why: 8 groups
    when a code 6 or 7 occurs; else the coding under which the codes agree with ``Intersection`` on more
    frames (the noisy labels mostly agree with it); no Intersection column or a tie: ask for ``groups``."""
    if groups != "auto":
        return groups, []
    codes = [t.integers("intersec_label", range(-1, 8), expected=f"{V2_CODINGS['8']} (or {V2_CODINGS['6']})")
             for t in tables]
    high = sum(int(np.isin(c, (6, 7)).sum()) for c in codes)
    if high:
        return "8", [f"groups = \"auto\": intersec_label read in the 8-group coding ({high} frame(s) have code 6 "
                     f"or 7, which the 6-group coding does not have)"]
    lacking = [t for t in tables if not t.has("Intersection")]
    if lacking:
        raise DataError(f"{lacking[0].path}: column 'intersec_label': cannot tell its coding (codes 0..5 only, and "
                        f"no Intersection column to compare with); set groups = 6 or groups = 8 in {where}.")
    agree = {"8": 0, "6": 0}
    known = 0
    for table, code in zip(tables, codes, strict=True):
        truth = table.integers("Intersection", range(-1, 8), expected=V2_CODINGS["8"])
        both = (truth >= 0) & (code >= 0)
        gender, race = split_intersection(truth)
        folded = intersection(gender, np.where(race == 0, 3, race))  # Asian -> Others, as the 6-group coding
        agree["8"] += int((both & (code == truth)).sum())
        agree["6"] += int((both & (from_six_groups(code) == folded)).sum())
        known += int(both.sum())
    if agree["8"] == agree["6"]:
        raise DataError(f"{tables[0].path}: column 'intersec_label': cannot tell its coding (codes 0..5 only, and "
                        f"they agree with Intersection as often read in 6 as in 8 groups); set groups = 6 or "
                        f"groups = 8 in {where}.")
    coding = max(agree, key=agree.__getitem__)
    share = {k: f"{100 * v / max(known, 1):.0f}%" for k, v in agree.items()}
    other = "8" if coding == "6" else "6"
    return coding, [f"groups = \"auto\": intersec_label read in the {coding}-group coding (codes 0..5 only; read "
                    f"so, they agree with Intersection on {share[coding]} of {known} frames; read in {other} groups, "
                    f"on {share[other]})"]


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
                                    f"got {shown(name)}.")
                frames = entry.get("frames")
                if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
                    raise DataError(f"{json_path}: video {_where(at)}, key 'frames': expected a list of frame "
                                    f"paths, got {shown(frames)}.")
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
    located = locate(raw, layout, path_field="key 'frames'")
    notes = []
    sources = [json_path]
    if sidecar is not None:
        notes += _join_sidecar(located, sidecar, json_path, unmatched)
        sources.append(sidecar)
    else:
        notes.append("no demographics sidecar: every group is unknown (-1)")
    return complete(located.drop(columns="key"), layout, path_field="key 'frames'", splits=list(splits),
                    notes=notes, sources=sources)


def _object(node: Any, path: Path, where: list[str]) -> dict:
    if not isinstance(node, dict):
        raise DataError(f"{path}: {_where(where) or 'top level'}: expected a JSON object, got {shown(node)}.")
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
    located = locate(checked[keep].reset_index(drop=True), layout, path_field="column 'path'", given_ids=True)
    return complete(located, layout, path_field="column 'path'", splits=list(splits), notes=notes,
                    sources=[path], check_empty_in=path)


def env_unset(value: str) -> list[str]:
    """Environment variables still unexpanded in ``value`` (os.path.expandvars leaves unset ones as is)."""
    return [m[1] or m[2] for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", value) if (m[1] or m[2]) not in os.environ]
