"""Whether each finished job learned to tell real from fake at all.

A model at chance on its own training domain scores every image near the same value, so which side of the
threshold a group's images fall on is decided by small offsets: its group rates and fairness gaps then
measure noise, often very large gaps (a group at 60% FPR beside one at 10%), not fairness. The report names
such jobs instead of leaving readers to take their gaps at face value. The evidence is the job's predictions
on the test split of its own training domain (the validation split is too small to tell a weak model from a
failed one): videos, not frames, are the units, because frames of a video share their label and much of
their score.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from bench.predictions import PredictionFile


def video_auc_vs_chance(frame: pd.DataFrame) -> tuple[float, float]:
    """Video-level AUC of a predictions frame (each video's mean P(fake), as the video_AUC metric) and the
    one-sided Mann-Whitney p-value of "fakes score no higher than reals"; (nan, nan) without both classes."""
    from scipy.stats import mannwhitneyu

    videos = frame.groupby("video", sort=False).agg(label=("label", "first"), score=("score", "mean"))
    fake = videos.loc[videos["label"] == 1, "score"].to_numpy()
    real = videos.loc[videos["label"] == 0, "score"].to_numpy()
    if not len(fake) or not len(real):
        return float("nan"), float("nan")
    result = mannwhitneyu(fake, real, alternative="greater")
    return float(result.statistic) / (len(fake) * len(real)), float(result.pvalue)


def chance_notes(files: list[PredictionFile], *, alpha: float) -> list[str]:
    """One note per method and training domain with jobs whose predictions on their own domain's test split
    are not above chance at ``alpha`` (a job that did not predict its own domain is not judged)."""
    at_chance: dict[tuple[str, str, str], list[tuple[int, float, float]]] = defaultdict(list)
    judged: dict[tuple[str, str, str], int] = defaultdict(int)
    for f in files:
        if f.domain != f.run.train:
            continue
        key = (f.run.method, f.run.role, f.run.train)
        judged[key] += 1
        auc, p = video_auc_vs_chance(f.frame)
        if not np.isnan(p) and p > alpha:
            at_chance[key].append((f.run.seed, auc, p))
    notes = []
    for (method, role, train), jobs in sorted(at_chance.items()):
        seeds = ", ".join(f"seed {s}: video AUC {auc:.2f}, p {p:.2f}" for s, auc, p in sorted(jobs))
        what = f"{method}{' (control)' if role == 'control' else ''} trained on {train}"
        notes.append(f"{what}: {len(jobs)} of {judged[(method, role, train)]} job(s) did not learn to tell real "
                     f"from fake on their own domain's test split ({seeds}; one-sided test against chance at "
                     f"alpha {alpha:g}). Such a model's group rates and fairness gaps say where its scores fall "
                     f"against the threshold, not how fair a detector is (a constant score is perfectly 'fair'). "
                     f"Its log.csv tells whether it never learned (training loss near ln 2 = 0.693 throughout) or "
                     f"fit its training split without generalising (loss falling, val_auc near 0.5). Nothing is "
                     f"dropped from the tables.")
    return notes
