"""The defining property of each representation-and-optimisation method, against values worked out by hand."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import build_method as build
from helpers import easy_batch, small_batch

from bench.__main__ import main
from bench.method import Method, MethodInfo
from methods.adv_debias import reverse_gradient
from methods.eo_reg import soft_equalised_odds_gap


# ------------------------------------------------------------------------------------------- adv-debias
def test_reversal_layer_is_identity_forward_and_minus_lambda_times_the_gradient_backward() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    incoming = torch.randn(3, 4)
    y = reverse_gradient(x, torch.tensor(0.3))
    assert torch.equal(y, x)
    y.backward(incoming)
    torch.testing.assert_close(x.grad, -0.3 * incoming)


def test_adversary_weight_follows_ganins_schedule_and_survives_a_resume() -> None:
    info = MethodInfo(image_size=32, group_counts=(10,) * 8, num_manipulations=4, epochs=2, steps_per_epoch=5,
                      device=torch.device("cpu"))
    method = build("adv-debias", info)
    method.train()
    weights = [float(method.update(easy_batch())["adv_weight"]) for _ in range(4)]
    # p = step / 10 before each step: 0, 0.1, 0.2, 0.3 -> 2 / (1 + exp(-10 p)) - 1
    assert weights == pytest.approx([0.0, 0.462117, 0.761594, 0.905148], abs=1e-6)
    resumed = build("adv-debias", info)
    resumed.load_training_state(method.training_state())
    logs = resumed.update(easy_batch())
    assert float(logs["adv_weight"]) == pytest.approx(2 / (1 + math.exp(-4)) - 1)  # p = 0.4
    assert torch.is_tensor(logs["adv_acc"]) and logs["adv_acc"].dim() == 0
    assert 0.0 <= float(logs["adv_acc"]) <= 1.0


def test_adversary_learns_the_group_while_the_features_are_pushed_the_other_way() -> None:
    """The adversary's own parameters descend its loss (it learns the group); the backbone receives the
    reversed gradient: with the detection loss left out, the backbone's gradient is -lambda times the one it
    would get from helping the adversary."""
    method = build("adv-debias", lambda_max=1.0)
    method.steps_done.fill_(10)  # p = 1: lambda = 2 / (1 + e^-10) - 1
    batch = easy_batch()
    lam = 2 / (1 + math.exp(-10)) - 1
    features = method.net.pooled_features(batch.images)
    reversed_loss = F.cross_entropy(method.adversary(reverse_gradient(features, method.reversal_weight())),
                                    batch.group)
    plain_loss = F.cross_entropy(method.adversary(features), batch.group)
    backbone = list(method.net.backbone.parameters())
    g_reversed = torch.autograd.grad(reversed_loss, backbone, retain_graph=True)
    g_plain = torch.autograd.grad(plain_loss, backbone)
    for r, p in zip(g_reversed, g_plain, strict=True):
        torch.testing.assert_close(r, -lam * p, rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------------------------------- domain-ind
def test_domain_ind_scores_by_the_sum_of_the_trained_groups_logits() -> None:
    counts = (5, 5, 0, 5, 5, 5, 5, 0)  # groups 2 and 7 have no training frame
    info = MethodInfo(image_size=32, group_counts=counts, num_manipulations=4, epochs=1, steps_per_epoch=5,
                      device=torch.device("cpu"))
    method = build("domain-ind", info).eval()
    images = easy_batch().images
    with torch.no_grad():
        per_group = method.group_logits(images)
        score = method(images)
    assert per_group.shape == (16, 8)
    expected = per_group[:, [0, 1, 3, 4, 5, 6]].sum(dim=1)
    torch.testing.assert_close(score, expected)


def test_domain_ind_loss_touches_only_each_samples_own_group_logit() -> None:
    method = build("domain-ind")
    batch = small_batch([(3, 1), (0, 0), (3, 0), (-1, 1)])  # the last sample has no group: left out
    z = torch.tensor([[0.5] * 8, [-1.0] * 8, [2.0] * 8, [0.0] * 8], requires_grad=True)
    loss = method.loss(z, batch)
    # BCE of the own logits: sample 0: z=0.5, y=1; sample 1: z=-1, y=0; sample 2: z=2, y=0; over 3 samples
    by_hand = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(-1.0)) + math.log1p(math.exp(2.0))) / 3
    assert loss.item() == pytest.approx(by_hand)
    loss.backward()
    expected = torch.zeros(4, 8)
    sig = torch.sigmoid
    expected[0, 3] = (sig(torch.tensor(0.5)) - 1) / 3
    expected[1, 0] = sig(torch.tensor(-1.0)) / 3
    expected[2, 3] = sig(torch.tensor(2.0)) / 3
    torch.testing.assert_close(z.grad, expected)


def test_domain_ind_step_changes_only_the_head_rows_of_the_groups_in_the_batch() -> None:
    method = build("domain-ind").train()
    batch = small_batch([(1, 0), (1, 1), (5, 0), (5, 1)])
    before = method.net.head.weight.detach().clone()
    method.update(batch)
    changed = (method.net.head.weight.detach() != before).any(dim=1)
    assert changed.tolist() == [False, True, False, False, False, True, False, False]


# ------------------------------------------------------------------------------------------- eo-reg
def test_eo_penalty_is_zero_when_every_groups_soft_rates_equal_the_batchs() -> None:
    # groups 0 and 5 each hold reals scored {0.25, 0.75} and fakes scored {0.9}: equal rates, no gap
    logit = torch.tensor([math.log(1 / 3), math.log(3), math.log(9), math.log(3), math.log(9), math.log(1 / 3)])
    label = torch.tensor([0, 0, 1, 0, 1, 0])
    group = torch.tensor([0, 0, 0, 5, 5, 5])
    assert float(soft_equalised_odds_gap(logit, label, group, 8)) == pytest.approx(0.0, abs=1e-7)


def test_eo_penalty_equals_a_hand_computed_value_and_enters_the_loss_times_mu() -> None:
    # scores: sigmoid(ln 9) = 0.9, sigmoid(ln 3) = 0.75, sigmoid(0) = 0.5, sigmoid(-ln 3) = 0.25, sigmoid(-ln 9) = 0.1
    rows = [  # (group, label, score)
        (0, 0, 0.5), (0, 0, 0.1), (0, 1, 0.9),  # group 0: FPR 0.3, TPR 0.9
        (1, 0, 0.25), (1, 1, 0.75), (1, 1, 0.5),  # group 1: FPR 0.25, TPR 0.625
        (2, 0, 0.75),  # group 2: FPR 0.75, no fakes: out of the TPR term
        (-1, 1, 0.1),  # unknown group: out of everything
    ]
    logit = torch.tensor([math.log(s / (1 - s)) for _, _, s in rows])
    label = torch.tensor([y for _, y, _ in rows])
    group = torch.tensor([g for g, _, _ in rows])
    # batch FPR (0.5 + 0.1 + 0.25 + 0.75) / 4 = 0.4: |0.3 - 0.4| + |0.25 - 0.4| + |0.75 - 0.4| = 0.6
    # batch TPR (0.9 + 0.75 + 0.5) / 3 = 0.71667: |0.9 - 0.71667| + |0.625 - 0.71667| = 0.275
    assert float(soft_equalised_odds_gap(logit, label, group, 8)) == pytest.approx(0.875, abs=1e-6)

    method = build("eo-reg", mu=2.0)
    batch = small_batch([(g, y) for g, y, _ in rows])
    bce = F.binary_cross_entropy_with_logits(logit, label.float())
    assert float(method.loss(logit, batch)) == pytest.approx(float(bce) + 2 * 0.875, abs=1e-5)


# ------------------------------------------------------------------------------------------- swad
class ScriptedValidation:
    """Validation losses given in advance, one per evaluation."""

    def __init__(self, losses: list[float]) -> None:
        self.losses = list(losses)
        self.calls = 0

    def loss(self) -> float:
        self.calls += 1
        return self.losses.pop(0)


# With n_converge 3, n_tolerance 2, ratio 0.3: segments 0, 1 are not the minimum of their windows; segment 2
# (loss 3) is the lowest of (3, 3.5, 3.2): threshold 1.3 x 3.2333 = 4.2033. Segments 2..5 have min over
# (own, next) <= 4.2 (3, 3.2, 3.1, 3.1); segment 6's (9, 9) is above: the valley ends. k = 2 steps per segment,
# so segments 2..5 are steps 5..12.
LOSSES = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 9.0, 9.0, 9.0]
SWAD = {"n_converge": 3, "n_tolerance": 2, "tolerance_ratio": 0.3, "eval_every": 2}


def train_swad(method: Method, validation: ScriptedValidation, steps: int, start: int = 0,
               snapshots: list | None = None) -> None:
    method.train()
    for step in range(start, start + steps):
        method.update(easy_batch(seed=step))
        if snapshots is not None:
            snapshots.append([p.detach().clone() for p in method.net.parameters()])
        method.after_step(validation)


def test_swad_averages_the_snapshots_of_the_valley_and_re_estimates_batchnorm() -> None:
    method = build("swad", **SWAD)
    validation, snapshots = ScriptedValidation(LOSSES), []
    train_swad(method, validation, 18, snapshots=snapshots)
    # segment 6's window (losses 6 and 7: 9, 9) ends the valley at the 8th evaluation; none follows it
    assert validation.calls == 8
    last_iterate_bn = method.net.backbone.features[0][1].running_mean.clone()

    bn_batch = easy_batch(seed=99)
    note = method.finish_training([bn_batch])
    assert method.valley.averaged == [(5, 6), (7, 8), (9, 10), (11, 12)]
    assert "steps 5-12" in note
    for i, param in enumerate(method.net.parameters()):
        expected = torch.stack([snap[i] for snap in snapshots[4:12]]).mean(dim=0)
        torch.testing.assert_close(param.detach(), expected, rtol=1e-5, atol=1e-6)

    # BatchNorm statistics: those of the averaged weights on the training batch, not the last iterate's
    conv, norm = method.net.backbone.features[0][0], method.net.backbone.features[0][1]
    with torch.no_grad():
        first = conv(bn_batch.images)
    torch.testing.assert_close(norm.running_mean, first.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_var, first.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(norm.running_mean, last_iterate_bn)
    assert norm.momentum == 0.1  # restored after the re-estimate


def test_swad_tail_is_judged_on_the_losses_it_has_and_no_valley_falls_back_to_the_last_segment() -> None:
    method = build("swad", **SWAD)
    train_swad(method, ScriptedValidation([5.0, 4.0, 3.0, 3.5, 3.2]), 10)
    method.finish_training([easy_batch()])
    assert method.valley.averaged == [(5, 6), (7, 8), (9, 10)]  # the valley runs to the end of training

    falling = build("swad", **SWAD)
    snapshots: list = []
    train_swad(falling, ScriptedValidation([5.0, 4.0, 3.0]), 6, snapshots=snapshots)
    note = falling.finish_training([easy_batch()])
    assert "last segment" in note and falling.valley.averaged == []
    for i, param in enumerate(falling.net.parameters()):
        torch.testing.assert_close(param.detach(), (snapshots[4][i] + snapshots[5][i]) / 2, rtol=1e-5, atol=1e-6)


def test_swad_averaging_state_survives_a_resume() -> None:
    straight = build("swad", **SWAD)
    train_swad(straight, ScriptedValidation(LOSSES), 18)
    straight.finish_training([easy_batch(seed=99)])

    first = build("swad", **SWAD)
    validation = ScriptedValidation(LOSSES)
    train_swad(first, validation, 9)  # stops mid-segment, before the valley is decided
    buffer = io.BytesIO()
    torch.save(first.training_state(), buffer)
    buffer.seek(0)
    resumed = build("swad", **SWAD)
    resumed.load_training_state(torch.load(buffer, weights_only=False))
    train_swad(resumed, validation, 9, start=9)
    resumed.finish_training([easy_batch(seed=99)])
    assert resumed.valley.averaged == straight.valley.averaged
    for a, b in zip(resumed.state_dict().values(), straight.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_swad_job_predicts_with_its_averaged_weights(tmp_path: Path) -> None:
    """Through `bench run`: the job's note says what was averaged, and the last epoch is marked selected."""
    args = ["run", "--preset", "quick", "--no-progress", "--set", "train.epochs=2", "--methods", "swad",
            "--train", "synth-dfd", "--test", "synth-dfd", "--no-controls", "--out", str(tmp_path)]
    assert main(args) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    record = json.loads((folder / "config.json").read_text())
    assert any(note.startswith("swad: weights averaged over") for note in record["notes"]), record["notes"]
    assert record["training"]["best_epoch"] == 2
