"""The baseline (ERM): backbone features -> ReLU -> global average pool -> Linear(C, 1), mean BCE.

"xception" names the paper's detector; the backbone itself is a setting (``method.backbone``):
timm's ``legacy_xception`` in the paper preset, a small CNN in the synthetic presets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.backbones import create_backbone
from bench.config import MethodConfig
from bench.data.loader import Batch
from bench.method import METHODS, Method, MethodInfo


class BackboneClassifier(nn.Module):
    """Backbone feature map -> ReLU -> global average pool -> Linear(C, 1): one fake-logit per image."""

    def __init__(self, config: MethodConfig) -> None:
        super().__init__()
        self.backbone = create_backbone(config.backbone, pretrained=config.pretrained)
        self.head = nn.Linear(self.backbone.num_features, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.backbone(images))  # (N, C, h, w)
        return self.head(features.mean(dim=(2, 3))).squeeze(1)  # (N,)


@METHODS.register()
class Xception(Method):
    """Baseline detector trained with mean binary cross-entropy."""

    name = "xception"
    description = "baseline: backbone + one fake-logit, mean BCE (ERM)"

    def __init__(self, config: MethodConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.net = BackboneClassifier(config)
        self.optimizer = self.make_optimizer(self.net.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def update(self, batch: Batch) -> dict[str, Any]:
        logits = self.net(batch.images)
        loss = F.binary_cross_entropy_with_logits(logits, batch.label.float())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}
