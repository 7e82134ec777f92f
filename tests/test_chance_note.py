"""The runner's note on a job whose selected model is not above chance on the validation split.

A PG-FDD job can stall at chance for all its epochs (docs/METHODS.md, "Stalls at chance"); its record
then says so. The bound is checked against the null distribution of the AUC simulated with random scores,
and the note against a finished job whose two 4-step epochs leave it at chance.
"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.train import chance_note


def _bound_from_note(note: str) -> float:
    return float(note.split("(below ")[1].split(",")[0])


def test_the_bound_is_what_random_scores_stay_under_95_percent_of_the_time() -> None:
    n0, n1 = 45, 195  # synth-ff's validation videos at the default preset
    labels = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    rng = np.random.default_rng(0)
    ranks = rng.random((4000, n0 + n1)).argsort(axis=1).argsort(axis=1) + 1  # random scores' ranks
    null_auc = (ranks[:, n0:].sum(axis=1) - n1 * (n1 + 1) / 2) / (n0 * n1)  # Mann-Whitney U / (n0 n1)
    assert math.isclose(null_auc[0], roc_auc_score(labels, ranks[0]))
    videos = np.arange(n0 + n1)
    bound = _bound_from_note(chance_note(0.5, labels=labels, videos=videos))
    assert abs(bound - np.quantile(null_auc, 0.95)) < 0.006
    assert chance_note(bound - 0.002, labels=labels, videos=videos) is not None
    assert chance_note(bound + 0.002, labels=labels, videos=videos) is None
    assert chance_note(0.93, labels=labels, videos=videos) is None  # a detector that learned


def test_frames_of_one_video_count_once() -> None:
    labels = np.repeat([0, 0, 1, 1, 1], 4)  # 2 real and 3 fake videos of 4 frames each
    videos = np.repeat(np.arange(5), 4)
    note = chance_note(0.6, labels=labels, videos=videos)
    assert "2 real and 3 fake validation videos" in note
    assert math.isclose(_bound_from_note(note), round(0.5 + 1.6449 * math.sqrt(6 / 72), 3))
    assert chance_note(float("nan"), labels=labels, videos=videos) is None
    assert chance_note(0.5, labels=np.ones(20, int), videos=videos) is None  # one class: no AUC to judge


def test_a_job_at_chance_says_so_in_its_record(one_job) -> None:
    """`helpers.ONE_JOB_ARGS` trains the baseline for 8 steps: its selected epoch is at chance."""
    (folder,) = (one_job / "runs").iterdir()
    record = json.loads((folder / "config.json").read_text())
    log = pd.read_csv(folder / "log.csv")
    with gzip.open(folder / "validation.csv.gz") as handle:
        val = pd.read_csv(handle)
    auc = roc_auc_score(val["label"], val["logit"])
    assert math.isclose(auc, log.loc[log["selected"], "val_auc"].item(), abs_tol=1e-6)
    notes = [n for n in record["notes"] if "not above chance" in n]
    assert len(notes) == 1 and f"({auc:.3f})" in notes[0]
    n0, n1 = (val.groupby("label")["video"].nunique()[k] for k in (0, 1))
    assert f"{n0} real and {n1} fake validation videos" in notes[0]
    assert auc < _bound_from_note(notes[0])
