"""SAM against an update worked out by hand, and its batch-norm freeze."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.sam import SAM


class Quadratic(nn.Module):
    """f(w) = 0.5 w^T A w with A = diag(2, 8): gradient A w."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
        self.a = torch.tensor([2.0, 8.0], dtype=torch.float64)

    def forward(self) -> torch.Tensor:
        return 0.5 * (self.a * self.w**2).sum()


def test_one_sam_step_matches_the_hand_computed_update() -> None:
    model = Quadratic()
    sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1), model=model, rho=0.5)
    loss, perturbed = sam.step(model)
    # g1 = A w = (6, 32), |g1| = sqrt(36 + 1024) = sqrt(1060)
    # e = 0.5 * g1 / |g1|; w' = w + e; g2 = A w' = (2 (3 + 3/sqrt(1060)), 8 (4 + 16/sqrt(1060)))
    # w_new = w - 0.1 * g2
    r = 1060**0.5
    g2 = torch.tensor([2 * (3 + 3 / r), 8 * (4 + 16 / r)], dtype=torch.float64)
    expected = torch.tensor([3.0, 4.0], dtype=torch.float64) - 0.1 * g2
    assert torch.allclose(model.w.detach(), expected, atol=1e-12)
    assert loss.item() == pytest.approx(0.5 * (2 * 9 + 8 * 16))
    w_prime = torch.tensor([3 + 3 / r, 4 + 16 / r])
    assert perturbed.item() == pytest.approx(0.5 * (2 * w_prime[0] ** 2 + 8 * w_prime[1] ** 2).item())


def test_rho_zero_is_the_base_optimiser() -> None:
    a, b = Quadratic(), Quadratic()
    SAM(torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9), model=a, rho=0.0).step(a)
    opt = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    b().backward()
    opt.step()
    assert torch.allclose(a.w, b.w)


def test_second_pass_leaves_batchnorm_statistics_as_the_first_pass_set_them() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(1))
    x, y = torch.randn(8, 3, 6, 6), torch.rand(8, 1)
    model(x)  # materialise the lazy layer
    bn = model[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    reference = nn.BatchNorm2d(4)
    reference.load_state_dict({"running_mean": before[0], "running_var": before[1],
                               "num_batches_tracked": before[2], "weight": bn.weight.detach(),
                               "bias": bn.bias.detach()})
    reference(model[0](x))  # what one forward pass on the batch does to the statistics

    sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1), model=model, rho=0.05)
    sam.step(lambda: nn.functional.mse_loss(model(x), y))
    assert torch.allclose(bn.running_mean, reference.running_mean)
    assert torch.allclose(bn.running_var, reference.running_var)
    assert bn.num_batches_tracked.item() == before[2].item() + 1
    assert bn.track_running_stats  # restored
