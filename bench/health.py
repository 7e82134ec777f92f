"""Whether a job learned to tell real from fake at all.

A model at chance scores every image near the same value, so which side of the threshold a group's images
fall on is decided by small offsets: its group rates and fairness gaps then measure where those offsets
fall, often as very large gaps (a group at 60% FPR beside one at 10%), or as none at all (a constant score
is perfectly "fair"), not how fair a detector is. The runner notes such a job in its record (from its
validation split, when the epoch is selected) and the report names such jobs (from the test split of their
own training domain, which is larger). Both ask one question of an AUC: is it above what a detector scoring
at random reaches? Videos, not frames, are the units, because frames of a video share their label and much
of their score.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bench.predictions import PredictionFile


def chance_bound(n_real: int, n_fake: int, *, alpha: float = 0.05) -> float:
    """The AUC that a detector scoring at random stays below with probability 1 - ``alpha``, for ``n_real``
    and ``n_fake`` independent units: 0.5 + z_(1-alpha) sqrt((n0 + n1 + 1) / (12 n0 n1)), the Mann-Whitney
    statistic's null distribution in its normal approximation."""
    return 0.5 + NormalDist().inv_cdf(1 - alpha) * math.sqrt((n_real + n_fake + 1) / (12 * n_real * n_fake))


def video_counts(labels: np.ndarray, videos: np.ndarray) -> tuple[int, int]:
    """The numbers of real and of fake videos among frames with ``labels`` and ``videos``."""
    return len(np.unique(videos[labels == 0])), len(np.unique(videos[labels == 1]))


def video_auc(labels: np.ndarray, scores: np.ndarray, videos: np.ndarray) -> tuple[float, int, int]:
    """The video_AUC metric (each video's mean score) and `video_counts`; nan without both classes."""
    from bench.metrics import video_auc as auc_over_videos

    n_real, n_fake = video_counts(labels, videos)
    return (auc_over_videos(labels, scores, videos) if n_real and n_fake else math.nan), n_real, n_fake


def chance_notes(files: list[PredictionFile], *, alpha: float) -> list[str]:
    """One note per method and training domain with jobs whose video AUC on their own domain's test split
    is below `chance_bound` at ``alpha`` (a job that did not predict its own domain is not judged)."""
    at_chance: dict[tuple[str, str, str], list[tuple[int, float, float]]] = defaultdict(list)
    judged: dict[tuple[str, str, str], int] = defaultdict(int)
    for f in files:
        if f.domain != f.run.train:
            continue
        key = (f.run.method, f.run.role, f.run.train)
        judged[key] += 1
        frame = f.frame
        auc, n_real, n_fake = video_auc(frame["label"].to_numpy(), frame["score"].to_numpy(),
                                        frame["video"].to_numpy())
        if math.isnan(auc):
            continue
        bound = chance_bound(n_real, n_fake, alpha=alpha)
        if auc < bound:
            at_chance[key].append((f.run.seed, auc, bound))
    notes = []
    for (method, role, train), jobs in sorted(at_chance.items()):
        seeds = ", ".join(f"seed {s}: video AUC {auc:.3f} < {bound:.3f}" for s, auc, bound in sorted(jobs))
        what = f"{method}{' (control)' if role == 'control' else ''} trained on {train}"
        notes.append(f"{what}: {len(jobs)} of {judged[(method, role, train)]} job(s) did not learn to tell real "
                     f"from fake on their own domain's test split ({seeds}, the AUC a detector scoring at "
                     f"random stays below with probability {1 - alpha:g}). Such a model's group rates and "
                     f"fairness gaps say where its scores fall against the threshold, not how fair a detector "
                     f"is (a constant score is perfectly 'fair'). Its log.csv tells whether it never learned "
                     f"(training loss near ln 2 = 0.693 throughout) or fit its training split without "
                     f"generalising (loss falling, val_auc near 0.5). Nothing is dropped from the tables.")
    return notes
