"""Speed of compute_metrics on 1,000,000 predictions x 3 attributes with every metric (docs/METRICS.md:
"well under a second"). pytest runs with --benchmark-disable by default, so this runs once as a plain
test; ``pytest tests/test_metrics_benchmark.py --benchmark-enable`` measures it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics import ATTRIBUTES, METRICS, compute_metrics

N = 1_000_000
N_VIDEOS = 20_000


def _predictions(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    video = rng.integers(0, N_VIDEOS, N)
    label = (video % 2).astype(np.int8)  # every frame of a video shares its label
    gender = (video // 2) % 2 - (video % 97 == 0)  # some unknown (-1)
    race = (video // 4) % 4
    score = np.clip(rng.normal(0.35 + 0.3 * label, 0.2), 0.0, 1.0).round(4)  # rounded: ties
    ids = np.array([f"FF++/Deepfakes/{i:05d}" for i in range(N_VIDEOS)], dtype=object)
    return pd.DataFrame({
        "label": label, "score": score, "video": ids[video], "gender": gender, "race": race,
        "intersection": np.where(gender >= 0, gender * 4 + race, -1),
    })


def test_compute_metrics_1m_predictions(benchmark) -> None:
    predictions = _predictions()
    out = benchmark(compute_metrics, predictions)
    n_detection = len(METRICS.select("detection"))
    n_fairness = len(METRICS.select("fairness"))
    assert out.shape == (n_detection + len(ATTRIBUTES) * n_fairness, 9)
    assert out.value.notna().all()
    assert list(out[out.metric == "F_FPR"].n_groups) == [2, 4, 8]
