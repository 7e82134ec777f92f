"""Domain-independent training (Wang et al., "Towards fairness in visual recognition", CVPR 2020).

One fake-logit per intersectional group on a shared backbone: a sample's BCE reads only its own group's
logit, so each group gets its own decision boundary and the features need not encode the group to
separate them. At test time no group label is needed: the score is the sum of the logits over the
groups (the paper's sum of per-domain class scores). Groups with no training frame never receive a
gradient and are left out of the sum, so their random heads add no noise; samples of unknown group
(-1) are left out of the loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.backbones import BackboneClassifier
from bench.batch import Batch
from bench.config import MethodConfig
from bench.method import METHODS, Method, MethodInfo, Needs


@METHODS.register()
class DomainInd(Method):
    """Shared backbone, one fake-logit per group; trained per group, scored by the sum over groups."""

    name = "domain-ind"
    needs = Needs(groups=True)
    description = "domain-independent training: one fake-logit per group, score = their sum"

    def __init__(self, config: MethodConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.net = BackboneClassifier(config)
        self.net.head = nn.Linear(self.net.backbone.num_features, info.num_groups)  # one logit per group
        self.register_buffer("trained_groups", torch.tensor(info.group_counts) > 0)
        self.optimizer = self.make_optimizer(self.net.parameters())

    def group_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, groups): each group's fake-logit for every image."""
        return self.net.head(self.net.pooled_features(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (self.group_logits(images) * self.trained_groups).sum(dim=1)

    def loss(self, group_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean BCE of each known-group sample on its own group's logit."""
        known = batch.group >= 0
        own = group_logits.gather(1, batch.group.clamp(min=0)[:, None]).squeeze(1)
        per_sample = F.binary_cross_entropy_with_logits(own, batch.label.float(), reduction="none")
        return (per_sample * known).sum() / known.sum().clamp(min=1)

    def update(self, batch: Batch) -> dict[str, Any]:
        loss = self.loss(self.group_logits(batch.images), batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}
