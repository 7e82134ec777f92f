"""The baseline (ERM): backbone features -> ReLU -> global average pool -> Linear(C, 1), mean BCE;
and the same baseline trained with SAM, so the effect of SAM alone is visible in the leaderboard.

"xception" names the paper's detector; the backbone itself is a setting (``method.backbone``):
timm's ``legacy_xception`` in the paper preset, a small CNN in the synthetic presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bench.backbones import BackboneClassifier
from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.method import METHODS, Method, MethodInfo
from bench.sam import SAM


@METHODS.register()
class Xception(Method):
    """Baseline detector trained with mean binary cross-entropy.

    Subclasses that only change the training objective override `loss`.
    """

    name = "xception"
    description = "baseline: backbone + one fake-logit, mean BCE (ERM)"

    def __init__(self, config: MethodConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.net = BackboneClassifier(config)
        self.optimizer = self.make_optimizer(self.net.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, batch.label.float())

    def update(self, batch: Batch) -> dict[str, Any]:
        loss = self.loss(self.net(batch.images), batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}


@dataclass
class SAMConfig(MethodConfig):
    rho: float = setting(0.05, minimum=0.0, help="SAM neighbourhood radius")


@METHODS.register()
class XceptionSAM(Xception):
    """The baseline with sharpness-aware minimisation: two forward/backward passes per step."""

    name = "xception-sam"
    Config = SAMConfig
    description = "baseline trained with SAM (rho 0.05): the effect of SAM alone"

    def __init__(self, config: SAMConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.sam = SAM(self.optimizer, model=self.net, rho=config.rho)

    def update(self, batch: Batch) -> dict[str, Any]:
        loss, perturbed = self.sam.step(lambda: self.loss(self.net(batch.images), batch))
        return {"loss": loss, "sam_loss": perturbed}
