"""Method behaviour that mutation testing (docs/CONTRIBUTING.md) found unguarded, against values worked out by
hand: each test names the planted mistake it catches."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from helpers import build_method as build
from helpers import small_batch, tiny_info

from bench.backbones import create_backbone
from bench.losses import cvar, grouped_cvar, smoothed_cvar
from methods.eo_reg import soft_equalised_odds_gap
from methods.pg_fdd import ldam_loss


@pytest.mark.parametrize("sampler", ["standard", "paired"])
def test_reweight_weighs_by_the_share_the_sampler_it_was_told_draws(sampler: str) -> None:
    """Catches Reweight ignoring ``info.sampler`` (standard-sampler weights under paired batches)."""
    info = replace(tiny_info(), sampler=sampler)
    counts = info.cell_counts  # (group, label) cells, all 16 present
    n = sum(counts)
    n_label = [sum(counts[y::2]) for y in (0, 1)]
    # target 1/16 per cell; drawn share n_c / N (standard) or n_c / (2 n_label) (paired: half the batch each label)
    drawn = [c / n if sampler == "standard" else c / (2 * n_label[i % 2]) for i, c in enumerate(counts)]
    rows = [(0, 0), (1, 1), (5, 0), (7, 1), (-1, 1)]  # the unknown group weighs 1
    logits = torch.tensor([0.3, -1.2, 2.0, 0.5, -0.4])
    batch = small_batch(rows, noise=False)
    bce = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none")
    weights = [1 / 16 / drawn[2 * g + y] if g >= 0 else 1.0 for g, y in rows]
    expected = sum(w * float(b) for w, b in zip(weights, bce, strict=True)) / len(rows)
    assert float(build("reweight", info).loss(logits, batch)) == pytest.approx(expected, rel=1e-5)


def test_eo_penalty_of_a_class_with_one_known_sample_is_zero() -> None:
    """Catches the batch rate dividing by more than the class's known samples (e.g. clamp(min=2))."""
    rows = [(0, 0, 0.25), (-1, 0, 0.9), (0, 1, 0.9), (1, 1, 0.5)]  # one known real; the unknown one is left out
    logit = torch.tensor([math.log(s / (1 - s)) for _, _, s in rows])
    label = torch.tensor([y for _, y, _ in rows])
    group = torch.tensor([g for g, _, _ in rows])
    # reals: group 0's rate 0.25 is the batch's; fakes: batch TPR 0.7, |0.9 - 0.7| + |0.5 - 0.7| = 0.4
    assert float(soft_equalised_odds_gap(logit, label, group, 8)) == pytest.approx(0.4, abs=1e-6)


def test_adv_debias_logs_the_adversarys_cross_entropy_and_accuracy_under_their_documented_names() -> None:
    """Catches a renamed or wrong log column (docs/METHODS.md names adv_loss, adv_acc, adv_weight)."""
    method = build("adv-debias", tiny_info())
    method.train()
    rows = [(0, 0), (3, 1), (5, 0), (-1, 1), (7, 1), (2, 0)]
    batch = small_batch(rows, noise=False)
    batch = replace(batch, images=torch.randn(len(rows), 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():  # the adversary before the step, on the known groups only
        group_logits = method.adversary(method.net.pooled_features(batch.images))
    known = batch.group >= 0
    ce = F.cross_entropy(group_logits[known], batch.group[known])
    accuracy = (group_logits[known].argmax(dim=1) == batch.group[known]).float().sum() / known.sum()
    logs = method.update(batch)
    assert float(logs["adv_loss"]) == pytest.approx(float(ce), rel=1e-4)
    assert float(logs["adv_acc"]) == pytest.approx(float(accuracy))
    assert float(logs["adv_weight"]) == 0.0  # Ganin's schedule starts at 0


def test_ldam_loss_leaves_out_every_code_outside_the_groups() -> None:
    """Catches the upper bound of the known codes taken as inclusive (a code equal to K is no group)."""
    logits = torch.tensor([[0.2, -0.1, 0.4], [1.0, 0.0, -1.0], [0.3, 0.3, 0.3], [0.5, -0.5, 0.0]])
    margins = torch.tensor([0.1, 0.2, 0.3])
    target = torch.tensor([2, 3, -1, 0])  # 3 == K and -1: left out
    # by hand: scale 2 x (logits with the true class's margin subtracted), CE of rows 0 (class 2) and 3 (class 0)
    row0 = 2 * torch.tensor([0.2, -0.1, 0.4 - 0.3])
    row3 = 2 * torch.tensor([0.5 - 0.1, -0.5, 0.0])
    expected = (-(row0.log_softmax(0)[2]) - row3.log_softmax(0)[0]) / 2
    assert float(ldam_loss(logits, target, margins, 2.0)) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.0001, 1.5])
def test_every_cvar_refuses_an_alpha_outside_zero_to_one(alpha: float) -> None:
    """Catches a widened range check: CVaR_alpha is the mean of the worst alpha-fraction, 0 < alpha <= 1."""
    losses, groups = torch.tensor([0.3, 1.2, 0.7]), torch.tensor([0, 1, 1])
    for call in (lambda: cvar(losses, alpha), lambda: grouped_cvar(losses, groups, alpha, 2),
                 lambda: smoothed_cvar(losses, alpha)):
        with pytest.raises(ValueError, match=f"0 < alpha <= 1, got {alpha}"):
            call()
    assert float(cvar(losses, 1.0)) == pytest.approx(float(losses.mean()))  # the edge itself is allowed


@pytest.mark.parametrize("name", ["pg-fdd", "xception"])
def test_every_encoder_starts_from_the_pretrained_weights_file(name: str, tmp_path) -> None:
    """Catches an encoder built without the configured weights (PG-FDD has three backbones, each must load them)."""
    torch.manual_seed(123)
    weights = create_backbone("bench-small").state_dict()
    path = tmp_path / "weights.pth"
    torch.save(weights, path)
    method = build(name, tiny_info(), pretrained=path)
    backbones = ([method.net.forgery_encoder.backbone, method.net.content_encoder.backbone,
                  method.net.demographic_encoder.backbone] if name == "pg-fdd" else [method.net.backbone])
    for backbone in backbones:
        for key, value in weights.items():
            torch.testing.assert_close(backbone.state_dict()[key], value, msg=key)
