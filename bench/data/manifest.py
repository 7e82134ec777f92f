"""The internal manifest: one row per frame, the single shape every reader maps its format onto.

Columns (docs/DATA.md): sample, path, video, identity, split, label, manipulation, gender, race,
intersection. Extra columns are kept (the synthetic benchmark adds the true, noise-free groups). Every
problem found is reported against the source file, row and column, so a user can fix the file.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.groups import N_GROUPS, NUM_INTERSECTIONS

STRING_COLUMNS = ("sample", "path", "video", "identity", "split")
INT_COLUMNS = ("label", "manipulation", "gender", "race", "intersection")
COLUMNS = STRING_COLUMNS + INT_COLUMNS
SPLITS = ("train", "val", "test")
_ALLOWED = {
    "label": (0, 1),
    "gender": (-1, 0, 1),
    "race": (-1, 0, 1, 2, 3),
    "intersection": (-1, *range(NUM_INTERSECTIONS)),
}


def validate_manifest(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Check a manifest and return it with canonical dtypes; raise `DataError` naming the first problem.

    ``source`` names the file (or generator) the rows came from; row numbers in messages are 1-based
    data rows of that source.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}; a manifest needs "
                        f"{', '.join(COLUMNS)}.")
    out = frame.reset_index(drop=True).copy()
    for col in STRING_COLUMNS:
        bad = out[col].isna() | (out[col].astype(str).str.len() == 0)
        _fail_on(out, bad, source, col, "a non-empty value")
        out[col] = out[col].astype(str).astype(object)
    for col in INT_COLUMNS:
        numeric = pd.to_numeric(out[col], errors="coerce")
        bad = numeric.isna() | (numeric != np.round(numeric))
        _fail_on(out, bad, source, col, "a whole number")
        out[col] = numeric.astype(np.int64)
    for col, allowed in _ALLOWED.items():
        _fail_on(out, ~out[col].isin(allowed), source, col, f"one of {', '.join(map(str, allowed))}")
    _fail_on(out, ~out["split"].isin(SPLITS), source, "split", f"one of {', '.join(SPLITS)}")
    _fail_on(out, out["manipulation"] < 0, source, "manipulation", "0 for reals and 1..K for fakes")
    _fail_on(out, (out["label"] == 0) & (out["manipulation"] != 0), source, "manipulation", "0 for a real frame")
    _fail_on(out, (out["label"] == 1) & (out["manipulation"] == 0), source, "manipulation", "1..K for a fake frame")
    known = (out["gender"] >= 0) & (out["race"] >= 0)
    _fail_on(out, known & (out["intersection"] != out["gender"] * 4 + out["race"]), source, "intersection",
             "gender*4 + race")
    _fail_on(out, out["path"].str.contains("\\", regex=False), source, "path", "POSIX separators ('/')")
    _fail_on(out, out["sample"].duplicated(), source, "sample", "a unique id (this one repeats)")
    return out


def manifest_hash(frame: pd.DataFrame) -> str:
    """A content hash of the manifest's schema columns: part of every job's identity."""
    digest = hashlib.sha256()
    for col in COLUMNS:
        values = frame[col].to_numpy()
        digest.update(col.encode())
        if col in INT_COLUMNS:
            digest.update(np.ascontiguousarray(values, dtype=np.int64).tobytes())
        else:
            digest.update("\x1f".join(map(str, values)).encode())
    return digest.hexdigest()[:16]


def group_counts(frame: pd.DataFrame, attribute: str = "intersection") -> tuple[int, ...]:
    """Frames per group of an attribute (unknown groups left out), in group-code order."""
    codes = frame[attribute].to_numpy()
    return tuple(int(c) for c in np.bincount(codes[codes >= 0], minlength=N_GROUPS[attribute]))


def _fail_on(frame: pd.DataFrame, bad: pd.Series, source: str, column: str, expected: str) -> None:
    if not bad.any():
        return
    rows = np.flatnonzero(bad.to_numpy())
    first = int(rows[0])
    more = f" ({len(rows) - 1} more row(s) like it)" if len(rows) > 1 else ""
    got = frame[column].iloc[first]
    got = got.item() if isinstance(got, np.generic) else got
    raise DataError(f"{source}: row {first + 1}, column {column!r}: expected {expected}, got {got!r}{more}.")
