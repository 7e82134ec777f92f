"""The report names jobs that did not learn: their fairness gaps are not evidence of fairness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.results_factory import MethodModel, write_results
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from bench.health import chance_notes, video_auc_vs_chance
from bench.predictions import PredictionFile
from bench.report import make_report
from bench.store import RunRecord


def frame(labels: list[int], scores: list[float], frames_per_video: int = 3) -> pd.DataFrame:
    """Videos with the given labels and mean scores, each of ``frames_per_video`` frames spread around it."""
    spread = np.linspace(-0.01, 0.01, frames_per_video)
    rows = [{"video": f"v{i}", "label": y, "score": s + d}
            for i, (y, s) in enumerate(zip(labels, scores, strict=True)) for d in spread]
    return pd.DataFrame(rows)


def test_video_auc_and_its_test_against_chance() -> None:
    rng = np.random.default_rng(0)
    labels = [0] * 30 + [1] * 20
    scores = list(rng.uniform(0.2, 0.6, 30)) + list(rng.uniform(0.4, 0.9, 20))
    auc, p = video_auc_vs_chance(frame(labels, scores))
    assert auc == pytest.approx(roc_auc_score(labels, scores))  # one unit per video, not per frame
    fake, real = np.array(scores[30:]), np.array(scores[:30])
    assert p == pytest.approx(mannwhitneyu(fake, real, alternative="greater").pvalue)
    assert p < 0.01
    # every video alike: AUC one half, no evidence at all
    auc, p = video_auc_vs_chance(frame(labels, [0.5] * 50))
    assert auc == 0.5 and p > 0.4
    assert np.isnan(video_auc_vs_chance(frame([0, 0], [0.1, 0.2]))[0])


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
    assert "seed 0: video AUC" in note and "seed 1" not in note


def test_the_report_warns_about_a_method_that_did_not_learn(tmp_path: Path) -> None:
    methods = {"xception": MethodModel(strength=2.0), "flat": MethodModel(strength=0.0, bias=0.0)}
    write_results(tmp_path, methods=methods, trains=["dA"], tests=["dA", "dB"], seeds=[0])
    make_report(tmp_path, n_boot=0, plots=False, echo=False, progress=False)
    text = (tmp_path / "report.md").read_text()
    assert "flat trained on dA: 1 of 1 job(s) did not learn" in text
    assert "xception trained on dA" not in text
