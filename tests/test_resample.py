"""`bench.resampling.resample`: every file's replicates, whichever process computes them, land in the report's
process unchanged (written to memory shared with the forked workers, not sent back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.forkmap
from bench.predictions import PredictionFile, ReportSettings, group_test_sets
from bench.replicates import replicate_metrics
from bench.resampling import bootstrap_columns, resample
from bench.store import RunRecord
from bench.tidy import tidy_metrics


def _frame(seed: int, n_videos: int = 30, frames: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    video = np.repeat(np.arange(n_videos), frames)
    label = (np.arange(n_videos) % 2)[video]
    gender, race = (np.arange(n_videos) // 2 % 2)[video], (np.arange(n_videos) // 4 % 4)[video]
    score = (1 / (1 + np.exp(-(1.5 * label - 0.75 + rng.normal(0, 1, video.size))))).round(2)
    return pd.DataFrame({"sample": [f"s{i:04d}" for i in range(video.size)], "video": [f"v{v}" for v in video],
                         "label": label, "score": score, "gender": gender, "race": race,
                         "intersection": gender * 4 + race})


def _files() -> list[PredictionFile]:
    files = []
    for k, method in enumerate(("a", "b", "c")):
        run = RunRecord(job_id=f"{method}__d1__s0", path=Path("/nonexistent"),
                        config={"job": {"method": method, "train": "d1", "seed": 0, "role": "main"}})
        for domain, size in (("d1", 30), ("d2", 12)):  # a large and a small test set
            files.append(PredictionFile(run=run, domain=domain, frame=_frame(10 * k + size, n_videos=size),
                                        index=len(files)))
    return files


def _resampled(workers: int, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bench.forkmap, "available_cores", lambda: workers)
    files, settings = _files(), ReportSettings(n_boot=40, plots=False)
    sets, _ = group_test_sets(files, cluster="video")
    return resample(files, sets, bootstrap_columns(tidy_metrics(files, settings)), settings, progress=False), sets


def test_forked_workers_give_the_replicates_of_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    (alone, _), (forked, sets) = _resampled(1, monkeypatch), _resampled(3, monkeypatch)
    assert alone.columns == forked.columns and alone.values.shape == (6, len(alone.columns), 40)
    assert not np.isnan(forked.values[:, alone.columns.index("AUC")]).any()  # every file, in every process
    for name in ("values", "fpr", "tpr"):
        assert np.array_equal(getattr(alone, name), getattr(forked, name), equal_nan=True), name
    assert alone.delong.keys() == forked.delong.keys() == set(range(6))
    for i, parts in alone.delong.items():
        for a, b in zip(parts, forked.delong[i], strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)), i
    for test_set in sets.values():  # each file's rates as replicate_metrics gives them on its own
        for f in test_set.files:
            own = replicate_metrics(f.frame, test_set.boot)
            g = own.fpr["intersection"].shape[1]  # groups beyond the file's own are NaN
            assert np.array_equal(forked.fpr[f.index, :, :g], own.fpr["intersection"], equal_nan=True)
            assert np.array_equal(forked.tpr[f.index, :, :g], own.tpr["intersection"], equal_nan=True)
            assert np.isnan(forked.fpr[f.index, :, g:]).all() and np.isnan(forked.tpr[f.index, :, g:]).all()
            column = forked.columns.index("race/F_FPR")
            assert np.array_equal(forked.values[f.index, column], own.values[("race", "F_FPR")], equal_nan=True)
