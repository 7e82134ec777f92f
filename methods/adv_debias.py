"""Adversarial debiasing: the baseline plus a group adversary behind a gradient-reversal layer.

Ganin & Lempitsky (ICML 2015) train a domain classifier on the features through a layer that is the
identity forward and multiplies the gradient by -lambda backward, so the features learn to defeat it;
Kim et al. ("Learning Not to Learn", CVPR 2019) use the same device to remove a bias. Here the adversary
predicts the intersectional group from the pooled features, and lambda follows Ganin's schedule
lambda_max * (2 / (1 + exp(-gamma p)) - 1), p the fraction of training done. The step count lives in a
buffer, so a resumed job continues the schedule. ``loss`` is the detection BCE (comparable with the
baseline's); the adversary's cross-entropy and accuracy are logged beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.backbones import BackboneClassifier
from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.method import METHODS, Method, MethodInfo, Needs


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (weight,) = ctx.saved_tensors
        return -weight.to(grad.dtype) * grad, None


def reverse_gradient(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Identity forward; backward multiplies the incoming gradient by ``-weight`` (a 0-d tensor)."""
    return _ReverseGradient.apply(x, weight)


def ganin_weight(progress: torch.Tensor, *, lambda_max: float, gamma: float) -> torch.Tensor:
    """Ganin's schedule lambda_max * (2 / (1 + exp(-gamma p)) - 1): 0 at the start, -> lambda_max."""
    return lambda_max * (2.0 / (1.0 + torch.exp(-gamma * progress)) - 1.0)


@dataclass
class AdvDebiasConfig(MethodConfig):
    lambda_max: float = setting(1.0, minimum=0.0, help="final weight of the reversed adversary gradient")
    gamma: float = setting(10.0, minimum=0.0, help="steepness of Ganin's schedule in the progress p")
    adversary_hidden: int = setting(256, minimum=0, help="hidden units of the adversary (0: a linear one)")


@METHODS.register()
class AdvDebias(Method):
    """Backbone + fake-logit head, and a group adversary on the pooled features through gradient reversal."""

    name = "adv-debias"
    Config = AdvDebiasConfig
    needs = Needs(groups=True)
    description = "adversarial debiasing: group adversary through gradient reversal (Ganin's schedule)"

    def __init__(self, config: AdvDebiasConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.net = BackboneClassifier(config)
        features, hidden = self.net.backbone.num_features, config.adversary_hidden
        self.adversary = (nn.Sequential(nn.Linear(features, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, info.num_groups))
                          if hidden else nn.Linear(features, info.num_groups))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.total_steps = max(info.epochs * info.steps_per_epoch, 1)
        self.optimizer = self.make_optimizer([*self.net.parameters(), *self.adversary.parameters()])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def reversal_weight(self) -> torch.Tensor:
        """This step's lambda, on the device (p = steps done / all steps of the job, at most 1)."""
        progress = (self.steps_done.float() / self.total_steps).clamp(max=1.0)
        return ganin_weight(progress, lambda_max=self.config.lambda_max, gamma=self.config.gamma)

    def update(self, batch: Batch) -> dict[str, Any]:
        features = self.net.pooled_features(batch.images)
        detection = F.binary_cross_entropy_with_logits(self.net.head(features).squeeze(1), batch.label.float())
        weight = self.reversal_weight()
        group_logits = self.adversary(reverse_gradient(features, weight))
        known = batch.group >= 0  # unknown groups (-1) are left out of the adversary's loss
        per_sample = F.cross_entropy(group_logits.float(), batch.group.clamp(min=0), reduction="none")
        count = known.sum().clamp(min=1)
        adversary = (per_sample * known).sum() / count
        self.optimizer.zero_grad(set_to_none=True)
        (detection + adversary).backward()
        self.optimizer.step()
        self.steps_done += 1
        correct = (group_logits.argmax(dim=1) == batch.group) & known
        return {"loss": detection.detach(), "adv_loss": adversary.detach(),
                "adv_acc": correct.sum() / count, "adv_weight": weight.detach()}
