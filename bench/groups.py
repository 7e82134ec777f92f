"""The one demographic group coding of the harness: attributes, codes, names, and the 6-group coding.

Every module that names or counts groups imports them from here, so a table, a figure, a reader and a
method can never disagree on which code is which group. Torch-free: the analysis side imports it.

Codes (the internal manifest's): gender 0 male, 1 female; race 0 Asian, 1 White, 2 Black, 3 Others;
intersection = gender * 4 + race (8 groups); -1 wherever an attribute is unknown.

Some released annotation files (the Celeb-DF and DFD files of the PG-FDD authors) use a *6-group*
coding with Asian folded into Others: 0 M-White, 1 M-Black, 2 M-Others, 3 F-White, 4 F-Black, 5 F-Others.
`from_six_groups` maps it onto the 8 groups; M-Asian and F-Asian then stay empty by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ATTRIBUTES = ("gender", "race", "intersection")
GENDERS = ("male", "female")
RACES = ("Asian", "White", "Black", "Others")
INTERSECTIONS = tuple(f"{g[0].upper()}-{r}" for g in GENDERS for r in RACES)  # M-Asian ... F-Others
GROUP_NAMES: dict[str, tuple[str, ...]] = {"gender": GENDERS, "race": RACES, "intersection": INTERSECTIONS}
N_GROUPS: dict[str, int] = {attribute: len(names) for attribute, names in GROUP_NAMES.items()}
NUM_INTERSECTIONS = N_GROUPS["intersection"]
UNKNOWN = -1

# The 6-group coding: its races (White, Black, Others) as internal race codes, and the way back.
SIX_GROUP_RACES = (1, 2, 3)
SIX_GROUP_OF_RACE = (2, 0, 1, 2)  # internal race (Asian, White, Black, Others) -> 6-group race (Asian merged)
SIX_GROUP_NAMES = tuple(f"{g[0].upper()}-{RACES[r]}" for g in GENDERS for r in SIX_GROUP_RACES)
MERGED_UNDER_SIX = (0, 4)  # M-Asian and F-Asian: empty by construction under the 6-group coding


def intersection(gender: Any, race: Any) -> np.ndarray:
    """The intersectional code gender * 4 + race; -1 where either attribute is unknown (negative)."""
    gender, race = np.asarray(gender), np.asarray(race)
    return np.where((gender >= 0) & (race >= 0), gender * len(RACES) + race, UNKNOWN)


def split_intersection(code: Any) -> tuple[np.ndarray, np.ndarray]:
    """(gender, race) of intersectional codes; -1 for both where the code is unknown (negative)."""
    code = np.asarray(code)
    known = code >= 0
    return np.where(known, code // len(RACES), UNKNOWN), np.where(known, code % len(RACES), UNKNOWN)


def from_six_groups(code: Any) -> np.ndarray:
    """Intersectional codes (8 groups) of codes in the 6-group coding (0..5; anything else -> -1)."""
    code = np.asarray(code)
    known = (code >= 0) & (code < len(SIX_GROUP_NAMES))
    safe = np.where(known, code, 0)
    gender, race = safe // len(SIX_GROUP_RACES), np.asarray(SIX_GROUP_RACES)[safe % len(SIX_GROUP_RACES)]
    return np.where(known, gender * len(RACES) + race, UNKNOWN)


def to_six_groups(gender: Any, race: Any) -> np.ndarray:
    """The 6-group code (Asian folded into Others) of known (gender, race) pairs."""
    gender, race = np.asarray(gender), np.asarray(race)
    return gender * len(SIX_GROUP_RACES) + np.asarray(SIX_GROUP_OF_RACE)[race]


NUM_LABELS = 2  # 0 real, 1 fake
NUM_CELLS = NUM_INTERSECTIONS * NUM_LABELS  # (intersectional group x label) cells


def label_cell(group: Any, label: Any) -> Any:
    """The (intersectional group x label) cell ``group * 2 + label``; -1 where the group is unknown.

    Plain arithmetic, so it serves numpy arrays on the host and torch tensors on the device alike (no
    ``where`` that would pull a tensor to the host): a sampler and a loss can never disagree on a cell.
    """
    known = group >= 0
    return (group * NUM_LABELS + label + 1) * known - 1


def group_name(attribute: str, code: int) -> str:
    """The name of one group code (``str(code)`` for a code outside the coding)."""
    names = GROUP_NAMES[attribute]
    return names[code] if 0 <= code < len(names) else str(code)
