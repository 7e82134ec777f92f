"""Scoring: the selected model's fake-logits for every frame of a split, as a predictions table.

The predictions are the contract between `bench run` and `bench report`: one row per test frame with
the frame's ids, label, logit, P(fake) and every demographic attribute, so any metric, test or figure
can be computed later without a GPU and without retraining.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from bench.data.cache import FrameCache
from bench.data.loader import DeviceLoader, sequential
from bench.device import Runtime
from bench.progress import progress_bar


@torch.inference_mode()
def predict_logits(method: torch.nn.Module, loader: DeviceLoader, rows: np.ndarray, *, batch_size: int,
                   runtime: Runtime, desc: str = "predict") -> np.ndarray:
    """Fake-logits (float64, shape (len(rows),)) of ``method`` in eval mode for the cache ``rows``."""
    was_training = method.training
    method.eval()
    chunks = []
    bar = progress_bar(total=len(rows), desc=desc, unit="img", leave=False, show=runtime.progress, position=1)
    for batch in loader.batches(sequential(rows, batch_size)):
        with runtime.autocast():
            chunks.append(method(batch.images).float())
        bar.update(len(batch))
    bar.close()
    method.train(was_training)
    if not chunks:
        return np.zeros(0)
    return torch.cat(chunks).cpu().numpy().astype(np.float64)


def predictions_frame(cache: FrameCache, rows: np.ndarray, logits: np.ndarray) -> pd.DataFrame:
    """The predictions table for ``rows`` of ``cache`` (store.PREDICTION_COLUMNS)."""
    m = cache.manifest.iloc[rows]
    frame = pd.DataFrame({
        "sample": m["sample"].to_numpy(), "video": m["video"].to_numpy(),
        "identity": m["identity"].to_numpy(), "domain": cache.name,
        "label": m["label"].to_numpy(), "logit": logits, "score": sigmoid(logits),
        "gender": m["gender"].to_numpy(), "race": m["race"].to_numpy(),
        "intersection": m["intersection"].to_numpy(), "manipulation": m["manipulation"].to_numpy(),
    })
    return frame


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def bce_from_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy, stable for large |logit|."""
    return float(np.mean(np.logaddexp(0.0, -logits) * labels + np.logaddexp(0.0, logits) * (1 - labels)))
