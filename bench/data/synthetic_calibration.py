"""What the synthetic domains are calibrated to, and how large their test splits must be to measure a gap.

The facts: per intersectional group, the real and fake frames of the four released test files (the
demographic annotations of FF++, Celeb-DF, DFD and DFDC published by the PG-FDD authors' lab, columns
`Intersection` and `Target`; docs/DATA.md prints the table). Each calibrated synthetic domain takes its
counterpart's group mix and per-group fake share from them.

The sizing rule: a group FPR measured on a handful of real videos is noise, so every group that holds at
least `MEASURED_SHARE` of its counterpart's test frames gets at least `MIN_TEST_VIDEOS` real videos in the
synthetic test split, and as many fake videos wherever the real file has fakes in that group, with the
group mix kept. `needed_test_identities` finds the smallest test split that does so under the same allocation
the generator uses (`apportion` and `fake_videos`), so the rule holds by construction, not by luck.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# (real, fake) frames per intersectional group (M-Asian, M-White, M-Black, M-Others, F-Asian, F-White,
# F-Black, F-Others) of each released test file: ff++/test_noise.csv, celebdf/test_noise.csv,
# dfd/test_noise.csv and dfdc/test_noise.csv (every row counted, the 1,476 repeated DFDC rows included).
REAL_TEST_FRAMES: dict[str, tuple[tuple[int, int], ...]] = {
    "ff": ((276, 951), (1576, 7811), (91, 426), (98, 562), (444, 1777), (1833, 8569), (117, 431), (103, 336)),
    "celebdf": ((60, 0), (894, 0), (710, 1212), (3, 0), (101, 38), (3923, 21495), (1, 0), (21, 0)),
    "dfd": ((18, 39), (701, 1659), (383, 438), (71, 460), (41, 88), (1594, 3152), (247, 111), (37, 346)),
    "dfdc": ((463, 127), (3860, 2326), (1564, 230), (722, 222), (1106, 155), (3708, 3352), (2799, 1559),
             (477, 187)),
}  # fmt: skip

# A group with at least this share of its counterpart's test frames is one whose gap the benchmark measures.
MEASURED_SHARE = 0.015
# Real (and, where the real file has fakes in the group, fake) videos each measured group gets in a test split.
MIN_TEST_VIDEOS = 30


def group_mix(counts: Sequence[tuple[int, int]]) -> tuple[float, ...]:
    """Each group's share of the frames."""
    frames = np.asarray(counts, dtype=np.float64).sum(axis=1)
    return tuple(float(x) for x in frames / frames.sum())


def fake_share(counts: Sequence[tuple[int, int]]) -> tuple[float, ...]:
    """Each group's share of fake frames (0 for a group without frames)."""
    c = np.asarray(counts, dtype=np.float64)
    frames = c.sum(axis=1)
    return tuple(float(f / n) if n else 0.0 for f, n in zip(c[:, 1], frames, strict=True))


def measured_groups(counts: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """The groups holding at least `MEASURED_SHARE` of the frames."""
    return tuple(g for g, share in enumerate(group_mix(counts)) if share >= MEASURED_SHARE)


def apportion(total: int, probs: Sequence[float], minimum: int) -> np.ndarray:
    """Split ``total`` seats over groups by largest remainders, ``minimum`` first to every positive group."""
    probs = np.asarray(probs, dtype=np.float64)
    positive = probs > 0
    floor = minimum if total >= minimum * int(positive.sum()) else 0
    seats = np.where(positive, floor, 0)
    rest = total - int(seats.sum())
    quota = probs / probs.sum() * rest
    seats = seats + np.floor(quota).astype(np.int64)
    remainder = quota - np.floor(quota)
    for g in np.argsort(-remainder, kind="stable")[: total - int(seats.sum())]:
        seats[g] += 1
    return seats


def fake_videos(rate: float, identities: int, videos_per_identity: int) -> int:
    """How many of a group's videos in one split are fake."""
    return round(rate * identities * videos_per_identity)


def planned_test_videos(identities: int, *, mix: Sequence[float], rate: Sequence[float],
                      videos_per_identity: int) -> tuple[np.ndarray, np.ndarray]:
    """(real videos, fake videos) per group of a test split of ``identities`` identities, as the generator
    plans it (the test split follows the mix alone, without a minimum per group)."""
    seats = apportion(identities, mix, 0)
    fakes = np.array([fake_videos(r, int(n), videos_per_identity) for r, n in zip(rate, seats, strict=True)])
    return seats * videos_per_identity - fakes, fakes


def missing_test_videos(counts: Sequence[tuple[int, int]], reals: Sequence[int], fakes: Sequence[int], *,
                        minimum: int = MIN_TEST_VIDEOS) -> list[str]:
    """What a test split with ``reals`` and ``fakes`` videos per group lacks under the sizing rule (empty: none)."""
    missing = []
    for g in measured_groups(counts):
        if reals[g] < minimum:
            missing.append(f"group {g}: {reals[g]} real videos")
        if counts[g][1] > 0 and fakes[g] < minimum:
            missing.append(f"group {g}: {fakes[g]} fake videos")
    return missing


def needed_test_identities(counts: Sequence[tuple[int, int]], *, videos_per_identity: int,
                           label_noise: float) -> int:
    """The fewest test identities whose split, planned with the counts' mix and fake shares, meets the rule.

    With annotation noise a group loses about ``label_noise`` of its videos to other groups' labels (and
    gains others), so each measured group gets enough videos that those keeping their label still number
    `MIN_TEST_VIDEOS` on average.
    """
    mix, rate = group_mix(counts), fake_share(counts)
    minimum = math.ceil(MIN_TEST_VIDEOS / (1.0 - label_noise))
    n = _too_few_identities(counts, mix, rate, videos_per_identity=videos_per_identity, minimum=minimum) + 1
    while True:
        reals, fakes = planned_test_videos(n, mix=mix, rate=rate, videos_per_identity=videos_per_identity)
        if not missing_test_videos(counts, reals, fakes, minimum=minimum):
            return n
        n += 1


def _too_few_identities(counts: Sequence[tuple[int, int]], mix: Sequence[float], rate: Sequence[float], *,
                        videos_per_identity: int, minimum: int) -> int:
    """A number of test identities known to miss the rule, so the search for the fewest can start above it
    (from 1 it planned hundreds of splits, a fifth of a second at every import of the profiles).

    Largest remainders never give a group more than its quota plus one identity, and rounding a group's fake
    count moves its real and fake videos by at most half a video; a split whose every measured group falls
    short even so cannot meet the rule. Two identities of margin cover the floats' rounding."""
    known_short = 0
    for g in measured_groups(counts):
        shares = [1.0 - rate[g]] + ([rate[g]] if counts[g][1] > 0 else [])
        for share in (s for s in shares if s > 0):
            seats = (minimum - 0.5) / (videos_per_identity * share)  # fewer seats leave the group short
            known_short = max(known_short, math.floor((math.ceil(seats) - 1) / mix[g]) - 2)
    return known_short
