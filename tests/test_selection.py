"""Model selection on the training domain's validation split: MEDFAIR's distance to the utopia point on a
hand-worked log, worst-group AUC, and the validation columns of log.csv against `bench.metrics`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from bench.config import TrainConfig, build_config
from bench.errors import BenchError
from bench.train import SELECTIONS, _Progress, distance_to_utopia, validation_scores

# (val_auc, val_F_FPR) per epoch. Utopia = (0.90, 5); spans 0.20 and 25. Normalised shortfalls:
# e1 (0.50, 0.60) -> 0.781, e2 (0, 1) -> 1, e3 (0.25, 0.20) -> 0.320, e4 (1, 0) -> 1, e5 (NaN AUC) -> inf.
LOG = [(0.80, 20.0), (0.90, 30.0), (0.85, 10.0), (0.70, 5.0), (float("nan"), 1.0)]
DTO = [math.hypot(0.5, 0.6), 1.0, math.hypot(0.25, 0.2), 1.0, math.inf]


def test_distance_to_utopia_by_hand() -> None:
    objectives = np.array([(a, -f) for a, f in LOG])
    objectives[np.isnan(objectives)] = -np.inf
    np.testing.assert_allclose(distance_to_utopia(objectives), DTO)
    flat = distance_to_utopia(np.array([[0.8, -3.0], [0.8, -5.0]]))  # an objective equal everywhere adds 0
    np.testing.assert_allclose(flat, [0.0, 1.0])


def run_log(selection: str, log: list[tuple[float, float]]) -> _Progress:
    """Feed the epochs of ``log`` to the selection state as train_method does; each epoch's weights differ."""
    model = torch.nn.Linear(1, 1)
    state = _Progress(selection)
    for epoch, (auc, fpr) in enumerate(log):
        with torch.no_grad():
            model.weight.fill_(epoch)
        state.history.append({"epoch": epoch + 1, "val_auc": auc, "val_F_FPR": fpr, "val_worst_auc": 1 - fpr / 100,
                              "val_loss": 1 - auc})
        state.observe(epoch, model)
    return state


@pytest.mark.parametrize(("selection", "epoch"), [("val_dto", 3), ("val_auc", 2), ("val_loss", 2),
                                                  ("val_worst_auc", 5), ("last", 5)])
def test_selection_picks_the_hand_worked_epoch_and_keeps_its_weights(selection: str, epoch: int) -> None:
    state = run_log(selection, LOG)
    assert state.best_epoch + 1 == epoch
    assert state.best_weights["weight"].item() == epoch - 1  # the weights of that epoch, not the last
    assert state.log_frame()["selected"].tolist() == [e == epoch for e in range(1, 6)]


def test_val_dto_keeps_only_the_pareto_front_and_its_choice_moves_with_the_utopia_point() -> None:
    state = run_log("val_dto", LOG[:3])
    assert state.best_epoch == 2 and set(state.candidates) == {1, 2}  # e1 is dominated by e3
    assert state.best_score == pytest.approx(-distance_to_utopia(np.array([(a, -f) for a, f in LOG[:3]]))[2])
    state = run_log("val_dto", [(0.80, 20.0), (0.90, 30.0)])
    assert state.best_epoch == 0 and set(state.candidates) == {0, 1}  # a tie at distance 1: the earlier


def test_validation_columns_match_independent_computations() -> None:
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"label": rng.integers(0, 2, n), "intersection": rng.integers(0, 3, n),
                          "logit": rng.normal(size=n)})
    frame["score"] = 1 / (1 + np.exp(-frame["logit"]))
    frame["video"] = [f"v{i}" for i in range(n)]
    scores = validation_scores(frame)
    assert scores["val_auc"] == pytest.approx(roc_auc_score(frame["label"], frame["score"]))
    fake = frame["score"] >= 0.5
    fpr = [fake[(frame["intersection"] == g) & (frame["label"] == 0)].mean() for g in range(3)]
    assert scores["val_F_FPR"] == pytest.approx(100 * (max(fpr) - min(fpr)))
    acc = [(fake == frame["label"].astype(bool))[frame["intersection"] == g].mean() for g in range(3)]
    assert scores["val_F_OAE"] == pytest.approx(100 * (max(acc) - min(acc)))
    worst = min(roc_auc_score(part["label"], part["score"]) for _, part in frame.groupby("intersection"))
    assert scores["val_worst_auc"] == pytest.approx(worst)


def test_every_selection_rule_is_a_configurable_choice() -> None:
    for rule in SELECTIONS:
        assert build_config(preset="quick", sets=[f'train.selection="{rule}"']).train.selection == rule
    with pytest.raises(BenchError, match="val_dto"):
        build_config(preset="quick", sets=['train.selection="val_dt"'])
    assert TrainConfig().selection == "val_auc"  # the default stays
