"""DAW-FDD and DAG-FDD (Ju et al., WACV 2024): CVaR losses that put the weight on the worst samples.

Both train the baseline's network (backbone + one fake-logit) on per-sample BCE; only the loss differs.
DAG-FDD (demographic-agnostic) takes CVaR_a over all samples of a batch: the mean of its worst a-fraction.
DAW-FDD (demographic-aware) first takes CVaR_a_in of each intersectional group present in the batch,
then CVaR_a_out over those group values, each group weighing the same whatever its size, so the
worst-served groups drive the update. The CVaRs are exact (bench.losses), with no per-step search.

DAW-FDD-LB is the label-balanced control: its groups are (intersectional group x label) cells. A DAW-FDD
group mixes reals and fakes in proportions that differ by group, so a group's CVaR can fall while its
reals' false-positive rate rises; splitting each group by label removes that mixing and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.groups import label_cell
from bench.losses import cvar, grouped_cvar
from bench.method import METHODS, Needs
from methods.xception import Xception


@dataclass
class DagFddConfig(MethodConfig):
    alpha: float = setting(0.5, minimum=0.001, maximum=1.0, help="CVaR level over the samples of a batch")


@dataclass
class DawFddConfig(MethodConfig):
    alpha_in: float = setting(0.9, minimum=0.001, maximum=1.0, help="CVaR level within each group")
    alpha_out: float = setting(0.5, minimum=0.001, maximum=1.0, help="CVaR level over the groups present")


@METHODS.register()
class DagFdd(Xception):
    """Demographic-agnostic: CVaR_alpha of the per-sample BCE over the batch."""

    name = "dag-fdd"
    Config = DagFddConfig
    description = "DAG-FDD: CVaR_0.5 of per-sample BCE over the batch (no group labels needed)"

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        per_sample = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none")
        return cvar(per_sample, self.config.alpha)


@METHODS.register()
class DawFdd(Xception):
    """Demographic-aware: CVaR_alpha_out over the groups of each group's CVaR_alpha_in."""

    name = "daw-fdd"
    Config = DawFddConfig
    needs = Needs(groups=True)
    description = "DAW-FDD: CVaR_0.9 within each group, CVaR_0.5 over the groups present"

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        per_sample = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none")
        groups, count = self.risk_groups(batch)
        group_risk, present = grouped_cvar(per_sample, groups, self.config.alpha_in, count)
        return cvar(group_risk, self.config.alpha_out, mask=present)

    def risk_groups(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """The group code of every sample (-1 unknown) and the number of codes."""
        return batch.group, self.info.num_groups


@METHODS.register()
class DawFddLb(DawFdd):
    """DAW-FDD over (intersectional group x label) cells: the label-balanced control."""

    name = "daw-fdd-lb"
    description = "DAW-FDD with groups = intersectional group x label (label-balanced control)"

    def risk_groups(self, batch: Batch) -> tuple[torch.Tensor, int]:
        return label_cell(batch.group, batch.label), self.info.num_cells
