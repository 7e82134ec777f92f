"""The loss-and-sampling family (reweight, resample, group-dro, daw-fdd-lb): the property that defines each,
checked against values worked out by hand."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import easy_batch, tiny_info

import bench.train
from bench.__main__ import main
from bench.batch import Batch
from bench.config import build_config, resolve_method_config
from bench.data.cache import ensure_cache
from bench.data.datasets import discover
from bench.data.loader import BalancedSampler, PairedSampler
from bench.groups import label_cell
from bench.method import METHODS, Method, MethodInfo
from bench.train import make_sampler
from methods.reweight import cell_weights

# Two groups (0 and 1) of the 8; cells (group x label) in label_cell order: g0 real, g0 fake, g1 real, g1 fake.
COUNTS = (10, 30, 30, 30) + (0,) * 12  # N = 100, 4 cells present, n(real) = 40, n(fake) = 60


def build(name: str, info: MethodInfo | None = None, **settings) -> Method:
    torch.manual_seed(0)
    cls = METHODS.get(name)
    run = build_config(preset="quick", sets=[f"{name}.{k}={v}" for k, v in settings.items()])
    return cls(resolve_method_config(cls.Config, run, name), info or tiny_info())


def batch_of(group: list[int], label: list[int]) -> Batch:
    group_t, label_t = torch.tensor(group), torch.tensor(label)
    n = len(group)
    return Batch(images=torch.zeros(n, 3, 32, 32), label=label_t, group=group_t, gender=group_t // 4,
                 race=group_t % 4, manipulation=label_t, video=torch.arange(n), rows=np.arange(n))


def bce(logit: float, label: int) -> float:
    return math.log1p(math.exp(-logit)) if label else math.log1p(math.exp(logit))


# ------------------------------------------------------------------------------------------------ reweight
def test_reweight_uniform_weights_are_n_over_cells_times_count() -> None:
    # N / (C n): 100 / (4 * 10) = 2.5 and 100 / (4 * 30) = 5/6; the split mean (10*2.5 + 90*5/6) / 100 is 1.
    weights = cell_weights(COUNTS, sampler="standard")
    assert weights[:4].tolist() == pytest.approx([2.5, 5 / 6, 5 / 6, 5 / 6])
    assert weights[4:].abs().sum() == 0
    assert float((weights * torch.tensor(COUNTS)).sum() / 100) == pytest.approx(1.0)


def test_reweight_under_paired_batches_divides_by_the_batch_share() -> None:
    # A paired batch is half reals, half fakes: g0-real is drawn with share 10 / (2 * 40) = 1/8, g0-fake 30/120,
    # g1-real 30/80, g1-fake 30/120; target 1/4 each, so the weights are 2, 1, 2/3, 1.
    assert cell_weights(COUNTS, sampler="paired")[:4].tolist() == pytest.approx([2.0, 1.0, 2 / 3, 1.0])
    assert cell_weights(COUNTS, sampler="balanced")[:4].tolist() == pytest.approx([1.0] * 4)


def test_reweight_independent_target_is_kamiran_calders() -> None:
    # P(g) P(y) / P(g, y): n(g0) = 40, n(g1) = 60, n(real) = 40, n(fake) = 60.
    expected = [40 * 40 / (100 * 10), 40 * 60 / (100 * 30), 60 * 40 / (100 * 30), 60 * 60 / (100 * 30)]
    assert cell_weights(COUNTS, target="independent")[:4].tolist() == pytest.approx(expected)


def test_reweight_loss_is_the_weighted_mean_bce() -> None:
    info = replace(tiny_info(), cell_counts=COUNTS, sampler="standard")
    method = build("reweight", info)
    batch = batch_of(group=[0, 0, 1, 1, -1], label=[0, 1, 0, 1, 1])
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    weights = [2.5, 5 / 6, 5 / 6, 5 / 6, 1.0]  # unknown group weighs 1
    expected = sum(w * bce(z, y) for w, z, y in zip(weights, logits.tolist(), [0, 1, 0, 1, 1], strict=True)) / 5
    assert float(method.loss(logits, batch)) == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------------------------ resample
def test_balanced_sampler_draws_every_cell_equally_often() -> None:
    sizes = [1000, 10, 100, 3, 500]  # very unequal cells, and rows of unknown cell that must never be drawn
    cells = np.concatenate([np.full(n, c * 3) for c, n in enumerate(sizes)] + [np.full(50, -1)])
    rows = np.arange(len(cells)) + 7
    sampler = BalancedSampler(rows, cells, batch_size=100, steps=100)
    drawn = np.concatenate(list(sampler.epoch(0)))
    assert len(drawn) == 10_000 and len(sampler) == 100
    cell_of_row = dict(zip(rows.tolist(), cells.tolist(), strict=True))
    drawn_cells = np.array([cell_of_row[r] for r in drawn.tolist()])
    assert (drawn_cells >= 0).all()
    frequencies = np.array([np.mean(drawn_cells == c * 3) for c in range(len(sizes))])
    assert np.abs(frequencies - 1 / len(sizes)).max() < 0.02, frequencies
    assert len(set(drawn[drawn_cells == 9].tolist())) == 3  # every frame of the smallest cell is reached


def test_resample_gets_balanced_batches_of_the_configured_size() -> None:
    data = build_config(preset="quick")
    cache = ensure_cache(discover(data.data)["synth-ff"], data.data)
    paired = make_sampler(cache, data.train)
    balanced = make_sampler(cache, data.train, METHODS.get("resample").needs)
    assert isinstance(paired, PairedSampler) and isinstance(balanced, BalancedSampler)
    assert len(balanced) == len(paired) and balanced.batch_size == 2 * paired.batch_size
    manifest = cache.manifest
    cells = label_cell(manifest["intersection"].to_numpy(), manifest["label"].to_numpy())
    train_cells = cells[cache.rows("train")]
    present = np.unique(train_cells[train_cells >= 0])
    drawn = cells[np.concatenate(list(balanced.epoch(0)))]
    frequencies = np.array([np.mean(drawn == c) for c in present])
    assert abs(frequencies.sum() - 1) < 1e-9
    assert np.abs(frequencies - 1 / len(present)).max() < 0.35 / len(present), frequencies  # several hundred draws
    natural = np.array([np.mean(train_cells == c) for c in present])
    assert natural.max() > 2 / len(present)  # the split itself is far from balanced: the sampler did the work


@pytest.mark.parametrize(("name", "sampler", "told"), [("reweight", "standard", "standard"),
                                                      ("reweight", "paired", "paired"),
                                                      ("resample", "paired", "balanced")])
def test_runner_tells_the_method_its_cell_counts_and_sampler(name: str, sampler: str, told: str) -> None:
    run = build_config(preset="quick", sets=[f"train.sampler={sampler}"])
    cache = ensure_cache(discover(run.data)["synth-ff"], run.data)
    cls = METHODS.get(name)
    method, _ = bench.train.build_method(cls, resolve_method_config(cls.Config, run, name), cache, run.train,
                                         torch.device("cpu"), steps_per_epoch=1)
    train = cache.manifest.iloc[cache.rows("train")]
    expected = [int(((train["intersection"] == g) & (train["label"] == y)).sum()) for g in range(8) for y in (0, 1)]
    assert list(method.info.cell_counts) == expected and sum(expected) > 0
    assert method.info.sampler == told


# ----------------------------------------------------------------------------------------------- group-dro
def two_cell_info() -> MethodInfo:
    counts = [0] * 16
    counts[0], counts[2] = 50, 200  # g0 real and g1 real: q starts at 1/2 each
    return replace(tiny_info(), cell_counts=tuple(counts))


def test_group_dro_moves_q_to_the_worst_cell_by_the_hand_computed_update() -> None:
    method = build("group-dro", two_cell_info())
    assert method.q[[0, 2]].tolist() == [0.5, 0.5] and method.q.sum() == 1
    batch = batch_of(group=[0, 0, 1, 1], label=[0, 0, 0, 0])
    logits = torch.tensor([0.0, 0.0, 2.0, 1.0])  # reals: cell 2 (group 1) is served worse
    loss_a = bce(0.0, 0)
    loss_b = (bce(2.0, 0) + bce(1.0, 0)) / 2
    a, b = 0.5 * math.exp(0.01 * loss_a), 0.5 * math.exp(0.01 * loss_b)
    q_a, q_b = a / (a + b), b / (a + b)
    loss = method.loss(logits, batch)
    assert method.q[0].item() == pytest.approx(q_a, rel=1e-6) and method.q[2].item() == pytest.approx(q_b, rel=1e-6)
    assert q_b > 0.5
    assert float(loss) == pytest.approx(q_a * loss_a + q_b * loss_b, rel=1e-6)
    for _ in range(20):
        method.loss(logits, batch)
    assert method.q[2] > q_b  # keeps moving towards the worse cell
    assert float(method.q.sum()) == pytest.approx(1.0)


def test_group_dro_adjustment_adds_c_over_root_n() -> None:
    method = build("group-dro", two_cell_info(), adjustment=1.0)
    method.loss(torch.zeros(2), batch_of(group=[0, 1], label=[0, 0]))  # equal losses: only C / sqrt(n) differs
    a = 0.5 * math.exp(0.01 * (math.log(2) + 1 / math.sqrt(50)))  # g0 real: 50 training frames
    b = 0.5 * math.exp(0.01 * (math.log(2) + 1 / math.sqrt(200)))  # g1 real: 200
    assert method.q[0].item() == pytest.approx(a / (a + b), rel=1e-6)


def test_group_dro_q_is_saved_and_restored_by_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original_save = bench.train._Progress.save

    def save_then_interrupt(self, path, method) -> None:
        original_save(self, path, method)
        raise KeyboardInterrupt

    quick = ["run", "--preset", "quick", "--no-progress", "--set", "train.epochs=2", "--set",
             "data.synthetic_scale=0.3", "--out", str(tmp_path), "--methods", "group-dro", "--train", "synth-dfd",
             "--test", "synth-dfd", "--no-controls"]
    monkeypatch.setattr(bench.train._Progress, "save", save_then_interrupt)
    assert main(quick) == 130
    (folder,) = (tmp_path / "runs").iterdir()
    saved = torch.load(folder / "checkpoint.pt", weights_only=False)["training_state"]["model"]["q"]
    assert not torch.allclose(saved, saved.max() * (saved > 0))  # trained: no longer uniform

    group_dro = METHODS.get("group-dro")
    original_load = group_dro.load_training_state
    resumed_with: list[torch.Tensor] = []

    def load_and_record(self, state) -> None:
        original_load(self, state)
        resumed_with.append(self.q.clone())

    monkeypatch.setattr(bench.train._Progress, "save", original_save)
    monkeypatch.setattr(group_dro, "load_training_state", load_and_record)
    assert main(quick) == 0
    assert len(resumed_with) == 1 and torch.equal(resumed_with[0], saved)


# ---------------------------------------------------------------------------------------------- daw-fdd-lb
def test_daw_fdd_lb_equals_daw_fdd_when_every_group_holds_one_label() -> None:
    logits = torch.randn(16, generator=torch.Generator().manual_seed(3)) * 2
    daw, lb = build("daw-fdd"), build("daw-fdd-lb")
    single = batch_of(group=[0, 1, 2, 3] * 2 + [4, 5, 6, 7] * 2, label=[0] * 8 + [1] * 8)
    assert float(lb.loss(logits, single)) == pytest.approx(float(daw.loss(logits, single)), rel=1e-6)
    mixed = easy_batch()  # every group holds one real and one fake: the two losses differ
    assert float(lb.loss(logits, mixed)) != pytest.approx(float(daw.loss(logits, mixed)), rel=1e-3)
