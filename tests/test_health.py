"""The report names jobs that did not learn: their fairness gaps are not evidence of fairness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.results_factory import MethodModel, write_results
from sklearn.metrics import roc_auc_score

from bench.health import chance_bound, chance_notes, video_auc
from bench.predictions import PredictionFile
from bench.report import make_report
from bench.store import RunRecord


def frame(labels: list[int], scores: list[float], frames_per_video: int = 3) -> pd.DataFrame:
    """Videos with the given labels and mean scores, each of ``frames_per_video`` frames spread around it."""
    spread = np.linspace(-0.01, 0.01, frames_per_video)
    rows = [{"video": f"v{i}", "label": y, "score": s + d}
            for i, (y, s) in enumerate(zip(labels, scores, strict=True)) for d in spread]
    return pd.DataFrame(rows)


def test_video_auc_counts_videos_not_frames() -> None:
    rng = np.random.default_rng(0)
    labels = [0] * 30 + [1] * 20
    scores = list(rng.uniform(0.2, 0.6, 30)) + list(rng.uniform(0.4, 0.9, 20))
    f = frame(labels, scores)
    auc, n_real, n_fake = video_auc(f["label"].to_numpy(), f["score"].to_numpy(), f["video"].to_numpy())
    assert auc == pytest.approx(roc_auc_score(labels, scores)) and (n_real, n_fake) == (30, 20)
    assert np.isnan(video_auc(np.zeros(4, int), np.ones(4), np.arange(4))[0])


def test_the_bound_is_the_mann_whitney_null_quantile() -> None:
    """Against the null distribution of the AUC of random scores, simulated; and at a hand-worked value."""
    n0, n1 = 60, 40
    rng = np.random.default_rng(3)
    ranks = rng.random((4000, n0 + n1)).argsort(axis=1).argsort(axis=1) + 1
    null_auc = (ranks[:, n0:].sum(axis=1) - n1 * (n1 + 1) / 2) / (n0 * n1)
    for alpha in (0.05, 0.01):
        assert abs(chance_bound(n0, n1, alpha=alpha) - np.quantile(null_auc, 1 - alpha)) < 0.008
    assert chance_bound(2, 3) == pytest.approx(0.5 + 1.644854 * np.sqrt(6 / 72), abs=1e-6)


def _file(method: str, train: str, domain: str, seed: int, data: pd.DataFrame) -> PredictionFile:
    run = RunRecord(job_id=f"{method}__{train}__s{seed}", path=Path("/nonexistent"),
                    config={"job": {"method": method, "train": train, "seed": seed, "role": "main"}})
    return PredictionFile(run=run, domain=domain, frame=data)


def test_notes_name_jobs_at_chance_on_their_own_domain_only() -> None:
    rng = np.random.default_rng(1)
    labels = [0] * 40 + [1] * 40
    learned = frame(labels, [0.3] * 40 + [0.7] * 40)
    chance = frame(labels, list(rng.uniform(0.49, 0.51, 80)))
    files = [_file("good", "dA", "dA", 0, learned), _file("good", "dA", "dB", 0, chance),  # cross-domain: not judged
             _file("flat", "dA", "dA", 0, chance), _file("flat", "dA", "dA", 1, learned)]
    (note,) = chance_notes(files, alpha=0.05)
    assert note.startswith("flat trained on dA: 1 of 2 job(s) did not learn")
    assert "seed 0: video AUC 0." in note and "seed 1" not in note


def test_the_report_warns_about_a_method_that_did_not_learn(tmp_path: Path) -> None:
    methods = {"xception": MethodModel(strength=2.0), "flat": MethodModel(strength=0.0, bias=0.0)}
    write_results(tmp_path, methods=methods, trains=["dA"], tests=["dA", "dB"], seeds=[0])
    make_report(tmp_path, n_boot=0, plots=False, echo=False, progress=False)
    text = (tmp_path / "report.md").read_text()
    assert "flat trained on dA: 1 of 1 job(s) did not learn" in text
    assert "xception trained on dA" not in text
