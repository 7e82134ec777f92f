"""Sharpness-aware minimisation (Foret et al., ICLR 2021) as a wrapper around any optimiser.

Each step: loss and gradient g at the weights w; move to w + rho g / ||g|| (one global norm over every
parameter); loss and gradient there, with batch-norm running statistics frozen so the perturbed pass
does not count as a second look at the batch; restore w; let the base optimiser step with the second
gradient. The norm and the perturbation stay on the device: no host synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


class SAM:
    """Two-pass SAM step around ``optimizer`` (which owns the parameters and their groups).

    ``model`` is the module whose batch-norm layers are frozen during the second pass.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, model: nn.Module, rho: float = 0.05) -> None:
        if rho < 0:
            raise ValueError(f"SAM needs rho >= 0, got {rho}")
        self.optimizer = optimizer
        self.model = model
        self.rho = rho

    def step(self, compute_loss: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One SAM update; ``compute_loss`` runs a forward pass and returns the scalar loss.

        Returns the (detached) losses at w and at the perturbed weights.
        """
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.requires_grad]
        self.optimizer.zero_grad(set_to_none=True)
        loss = compute_loss()
        loss.backward()
        with_grad = [p for p in params if p.grad is not None]
        grads = [p.grad for p in with_grad]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # one op for all, not one each
        scale = self.rho / (norm + 1e-12)
        shifts = torch._foreach_mul(grads, scale)
        with torch.no_grad():
            torch._foreach_add_(with_grad, shifts)
        self.optimizer.zero_grad(set_to_none=True)
        with frozen_batchnorm(self.model):
            perturbed_loss = compute_loss()
            perturbed_loss.backward()
        with torch.no_grad():
            torch._foreach_sub_(with_grad, shifts)
        self.optimizer.step()
        return loss.detach(), perturbed_loss.detach()


@contextmanager
def frozen_batchnorm(model: nn.Module) -> Iterator[None]:
    """Batch-norm layers normalise with the batch's statistics but leave their running statistics (and
    their batch counters) exactly as they were."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True
