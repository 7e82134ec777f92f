"""An equalised-odds penalty (DiffEodd in Han et al., "FFB: a fair fairness benchmark", ICLR 2024).

The baseline's BCE plus mu times a differentiable equalised-odds gap: each intersectional group's soft
false-positive rate (mean sigmoid score of its reals) and soft true-positive rate (mean sigmoid score of
its fakes) against the batch's, summed absolute deviations. A group without reals (fakes) in the batch
drops out of the FPR (TPR) term. The batch's rates are those of the samples with a known group, so the
penalty is zero exactly when every present group's soft rates equal them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.method import METHODS, Needs
from methods.xception import Xception


def soft_equalised_odds_gap(logits: torch.Tensor, label: torch.Tensor, group: torch.Tensor,
                            num_groups: int) -> torch.Tensor:
    """Sum over classes (real: FPR, fake: TPR) and present groups of |group's mean score - batch's|."""
    scores = torch.sigmoid(logits.float())
    members = F.one_hot(group.clamp(min=0), num_groups).float() * (group >= 0).float()[:, None]  # (N, G)
    gap = scores.new_zeros(())
    for cls in (0, 1):
        in_class = members * (label == cls).float()[:, None]  # (N, G)
        counts = in_class.sum(dim=0)
        group_rate = (in_class * scores[:, None]).sum(dim=0) / counts.clamp(min=1)
        batch_rate = (in_class.sum(dim=1) * scores).sum() / counts.sum().clamp(min=1)
        gap = gap + ((group_rate - batch_rate).abs() * (counts > 0)).sum()
    return gap


@dataclass
class EoRegConfig(MethodConfig):
    mu: float = setting(1.0, minimum=0.0, help="weight of the equalised-odds penalty")


@METHODS.register()
class EoReg(Xception):
    """The baseline with a soft equalised-odds penalty on each batch."""

    name = "eo-reg"
    Config = EoRegConfig
    needs = Needs(groups=True)
    description = "BCE + mu * soft equalised-odds gap of the groups (FFB's DiffEodd, mu 1)"

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, batch.label.float())
        penalty = soft_equalised_odds_gap(logits, batch.label, batch.group, self.info.num_groups)
        return bce + self.config.mu * penalty
