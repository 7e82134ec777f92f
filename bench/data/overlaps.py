"""Frames listed twice and videos or identities in two splits: refused by default, or dropped on request.

Both come up in released annotation files (the DFDC test file of the Purdue lab lists 1,476 frames twice;
most FF++ real test videos have a stray frame in its training file). A duplicate inflates its video's
weight; a leak lets the test split measure memorisation. So each is an error that names the count and
the option, unless the description chooses a policy (``duplicates = "drop"``, ``leaks =
"drop-from-train" | "drop-from-test"``); whatever a policy drops is counted in a note that travels with
the data (``bench data check``, the cache's meta.json, config.json and report.md).

``policy = None`` means the format offers no such option: the error then does not suggest one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.manifest import SPLITS
from bench.errors import DataError

DUPLICATE_POLICIES = ("error", "drop")
LEAK_POLICIES = ("error", "drop-from-train", "drop-from-test")
_VALUES = ("split", "label", "manipulation", "gender", "race")  # what a repeated row must repeat to be dropped


def drop_duplicates(frame: pd.DataFrame, *, policy: str | None, path_field: str,
                    description: str) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` without repeated paths (the first row of each is kept), and a note of what was dropped.

    A repeat with other values (another split, label or group) is always an error: which row is right
    is not for the reader to guess.
    """
    repeated = frame["path"].duplicated(keep="first").to_numpy()
    if not repeated.any():
        return frame, []
    n = int(repeated.sum())
    frames = frame.loc[repeated, "path"].nunique()
    if policy != "drop":
        row = int(np.flatnonzero(repeated)[0])
        earlier = int(np.flatnonzero((frame["path"] == frame["path"].iat[row]).to_numpy())[0])
        hint = (f"; set duplicates = \"drop\" in {description} to keep the first row of each"
                if policy is not None else "")
        raise DataError(f"{frame['origin'].iat[row]}, {path_field}: expected each frame once, got "
                        f"{frame['path'].iat[row]!r} again (first at {frame['origin'].iat[earlier]}); "
                        f"{n} duplicate row(s) of {frames} frame(s){hint}.")
    values = [c for c in _VALUES if c in frame]
    first = frame.groupby("path", sort=False)[values].transform("first")
    differs = repeated & (frame[values] != first).any(axis=1).to_numpy()
    if differs.any():
        row = int(np.flatnonzero(differs)[0])
        column = next(c for c in values if frame[c].iat[row] != first[c].iat[row])
        earlier = int(np.flatnonzero((frame["path"] == frame["path"].iat[row]).to_numpy())[0])
        raise DataError(f"{frame['origin'].iat[row]}, {path_field}: expected a repeated frame to repeat its values, "
                        f"got {frame['path'].iat[row]!r} again with {column} {_plain(frame[column].iat[row])!r} "
                        f"(first at {frame['origin'].iat[earlier]}, with {_plain(first[column].iat[row])!r}); "
                        f"duplicates = \"drop\" only drops identical repeats: fix the file.")
    note = (f"duplicates = \"drop\": {n} duplicate row(s) dropped ({frames} frame(s) listed more than once, "
            f"with the same values each time)")
    return frame[~repeated].reset_index(drop=True), [note]


def resolve_leaks(frame: pd.DataFrame, *, policy: str | None, path_field: str,
                  description: str) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with video- and identity-disjoint splits, or a `DataError` naming the leak and the options.

    ``drop-from-train`` keeps each shared video or identity only in its last split (train < val < test:
    the test split stays whole), ``drop-from-test`` only in its first.
    """
    if policy in (None, "error"):
        for column in ("video", "identity"):
            _check_disjoint(frame, column, path_field=path_field, policy=policy, description=description)
        return frame, []
    drop = _leaked_rows(frame, keep="last" if policy == "drop-from-train" else "first")
    if not drop.any():
        return frame, []
    videos, identities = _shared(frame, "video"), _shared(frame, "identity")
    note = (f"leaks = \"{policy}\": {len(videos)} video(s) and {len(identities)} identity(s) were in more than "
            f"one split; dropped {_per_split(frame[drop], 'frame')} of them")
    kept = frame[~drop].reset_index(drop=True)
    for column in ("video", "identity"):  # cannot fail: each shared one is now in one split
        _check_disjoint(kept, column, path_field=path_field, policy=policy, description=description)
    return kept, [note]


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _shared(frame: pd.DataFrame, column: str) -> pd.Index:
    splits_of = frame.groupby(column, sort=False)["split"].nunique()
    return splits_of.index[splits_of > 1]


def _leaked_rows(frame: pd.DataFrame, *, keep: str) -> np.ndarray:
    """Rows of shared identities (then videos) outside the one split each keeps (``last`` or ``first``)."""
    rank = frame["split"].map({s: i for i, s in enumerate(SPLITS)}).to_numpy()
    drop = np.zeros(len(frame), dtype=bool)
    for column in ("identity", "video"):
        ranks = pd.Series(np.where(drop, -1 if keep == "last" else len(SPLITS), rank))
        kept = ranks.groupby(frame[column].to_numpy()).transform("max" if keep == "last" else "min").to_numpy()
        drop |= rank != kept
    return drop


def _per_split(rows: pd.DataFrame, what: str) -> str:
    counts = rows["split"].value_counts()
    return ", ".join(f"{int(counts[s])} {s} {what}(s)" for s in SPLITS if s in counts)


def _check_disjoint(frame: pd.DataFrame, column: str, *, path_field: str, policy: str | None,
                    description: str) -> None:
    """Videos and identities may not be in two splits: the test split would measure memorisation."""
    leaked = _shared(frame, column)
    if leaked.empty:
        return
    name = str(leaked[0])
    rows = frame.index[(frame[column] == name).to_numpy()]
    by_split = frame.loc[rows].drop_duplicates("split")
    first, second = by_split.iloc[0], by_split.iloc[1]
    examples = ", ".join(map(str, leaked[:5])) + (", ..." if len(leaked) > 5 else "")
    hint = ""
    if policy is not None:
        videos, identities = _shared(frame, "video"), _shared(frame, "identity")
        involved = frame["video"].isin(videos) | frame["identity"].isin(identities)
        from_train = frame[_leaked_rows(frame, keep="last")]
        from_test = frame[_leaked_rows(frame, keep="first")]
        hint = (f"; in all {len(videos)} video(s) and {len(identities)} identity(s) are shared "
                f"({_per_split(frame[involved], 'frame')}): set leaks = \"drop-from-train\" (drops "
                f"{_per_split(from_train, 'frame')}) or leaks = \"drop-from-test\" (drops "
                f"{_per_split(from_test, 'frame')}) in {description}")
    raise DataError(f"{second['origin']}, {path_field}: expected {column}-disjoint splits, but {column} {name!r} is "
                    f"in {first['split']} (e.g. {first['origin']}) and in {second['split']}; {len(leaked)} "
                    f"{column}(s) are in more than one split ({examples}){hint}.")
