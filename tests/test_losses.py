"""CVaR against a brute-force minimisation of its definition, its gradient against the analytic weights,
and the DAW-FDD / DAG-FDD losses against their limiting cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import easy_batch, tiny_info

from bench.config import build_config, resolve_method_config
from bench.losses import cvar, grouped_cvar
from bench.method import METHODS


def brute_force_cvar(losses: np.ndarray, alpha: float) -> float:
    """min over lambda of lambda + 1/(a n) sum max(l - lambda, 0). The objective is convex and piecewise
    linear in lambda with kinks at the losses, so its minimum is at one of them: try them all."""
    n = len(losses)
    return min(lam + np.maximum(losses - lam, 0).sum() / (alpha * n) for lam in losses)


CASES = [
    ("random", np.random.default_rng(0).gamma(2.0, size=37), [0.1, 0.25, 0.5, 0.9, 1.0]),
    ("ties", np.array([1.0, 3.0, 3.0, 3.0, 0.5, 0.5, 2.0, 3.0]), [0.2, 0.3, 0.5, 0.75, 1.0]),
    ("a*n not whole", np.random.default_rng(1).normal(size=7) ** 2, [0.1, 0.33, 0.6, 0.95]),
    ("single", np.array([0.7]), [0.05, 0.5, 1.0]),
    ("large", np.random.default_rng(2).exponential(size=1000), [0.013, 0.5, 0.901]),
]


@pytest.mark.parametrize(("name", "losses", "alphas"), CASES, ids=[c[0] for c in CASES])
def test_cvar_equals_brute_force_minimisation(name: str, losses: np.ndarray, alphas: list[float]) -> None:
    for alpha in alphas:
        got = cvar(torch.tensor(losses, dtype=torch.float64), alpha).item()
        assert got == pytest.approx(brute_force_cvar(losses, alpha), abs=1e-6), (name, alpha)


def test_cvar_by_hand() -> None:
    # losses 4, 3, 2, 1 with a = 0.6: m = 2.4, so (4 + 3 + 0.4 * 2) / 2.4 = 3.25
    assert cvar(torch.tensor([1.0, 4.0, 2.0, 3.0]), 0.6).item() == pytest.approx(3.25)
    # a = 1 is the mean; a = 1/n the maximum
    assert cvar(torch.tensor([1.0, 4.0, 2.0, 3.0]), 1.0).item() == pytest.approx(2.5)
    assert cvar(torch.tensor([1.0, 4.0, 2.0, 3.0]), 0.25).item() == pytest.approx(4.0)


def test_cvar_gradient_is_the_analytic_weights() -> None:
    losses = torch.tensor([0.3, 2.0, 1.1, 0.7, 5.0, 1.6], requires_grad=True)
    cvar(losses, 0.45).backward()  # m = 2.7: weight 1/2.7 on 5.0 and 2.0, 0.7/2.7 on 1.6
    expected = torch.tensor([0.0, 1 / 2.7, 0.0, 0.0, 1 / 2.7, 0.7 / 2.7])
    assert torch.allclose(losses.grad, expected)


def test_cvar_mask_leaves_entries_out() -> None:
    values = torch.tensor([10.0, 1.0, 2.0, 3.0])
    mask = torch.tensor([False, True, True, True])
    assert cvar(values, 0.5, mask=mask).item() == pytest.approx(brute_force_cvar(np.array([1.0, 2.0, 3.0]), 0.5))
    assert cvar(values, 0.5, mask=torch.zeros(4, dtype=torch.bool)).item() == 0.0


def test_grouped_cvar_matches_cvar_per_group() -> None:
    rng = np.random.default_rng(3)
    losses = torch.tensor(rng.gamma(2.0, size=64))
    groups = torch.tensor(rng.choice([-1, 0, 2, 3, 5, 7], size=64))
    values, present = grouped_cvar(losses, groups, 0.9, 8)
    assert present.tolist() == [g in (0, 2, 3, 5, 7) for g in range(8)]
    for g in range(8):
        if present[g]:
            assert values[g].item() == pytest.approx(cvar(losses[groups == g], 0.9).item(), abs=1e-9)
        else:
            assert values[g].item() == 0.0


def test_grouped_cvar_gradient_flows_to_each_group() -> None:
    losses = torch.tensor([1.0, 3.0, 2.0, 5.0], requires_grad=True)
    groups = torch.tensor([0, 0, 1, 1])
    values, _ = grouped_cvar(losses, groups, 0.5, 2)  # each group: its worst loss
    values.sum().backward()
    assert losses.grad.tolist() == [0.0, 1.0, 0.0, 1.0]


def build(name: str, **sets: float):
    run = build_config(preset="quick", sets=[f"{name}.{k}={v}" for k, v in sets.items()])
    cls = METHODS.get(name)
    return cls(resolve_method_config(cls.Config, run, name), tiny_info())


def test_daw_fdd_with_one_group_is_the_inner_cvar_of_that_group() -> None:
    method = build("daw-fdd")
    batch = easy_batch()
    batch.group = torch.full_like(batch.group, 5)
    logits = torch.randn(16)
    per_sample = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none")
    assert method.loss(logits, batch).item() == pytest.approx(cvar(per_sample, 0.9).item())


def test_daw_fdd_is_the_outer_cvar_of_the_group_cvars() -> None:
    method = build("daw-fdd")
    batch = easy_batch()  # groups 0..7, two samples each
    logits = torch.randn(16)
    per_sample = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none").numpy()
    groups = batch.group.numpy()
    inner = np.array([brute_force_cvar(per_sample[groups == g], 0.9) for g in range(8)])
    assert method.loss(logits, batch).item() == pytest.approx(brute_force_cvar(inner, 0.5), abs=1e-6)


def test_dag_fdd_with_alpha_one_is_mean_bce_and_needs_no_groups() -> None:
    method = build("dag-fdd", alpha=1.0)
    batch = easy_batch()
    batch.group = torch.full_like(batch.group, -1)
    logits = torch.randn(16)
    expected = F.binary_cross_entropy_with_logits(logits, batch.label.float())
    assert method.loss(logits, batch).item() == pytest.approx(expected.item())
    assert not type(method).needs.groups and METHODS.get("daw-fdd").needs.groups


def test_alpha_out_of_range_is_a_config_error() -> None:
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"daw-fdd\.alpha_in must be at most 1\.0; got 1\.5"):
        build("daw-fdd", alpha_in=1.5)
