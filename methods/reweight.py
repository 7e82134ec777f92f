"""Reweighting (Kamiran & Calders, "Data preprocessing techniques for classification without
discrimination", KAIS 2012): the baseline with a fixed loss weight per (intersectional group x label) cell.

A frame's weight is its cell's target share divided by the share of training frames the sampler draws
from that cell, so the weighted loss is, in expectation, the loss under the target distribution. The
default target gives every cell present in the training split the same share, which with the standard
sampler is the weight  N / (C n(group, label))  (C cells present, N frames): proportional to
1 / n(group, label) and of mean 1 over the split. ``target = "independent"`` is Kamiran & Calders'
own reweighing, P(group) P(label) / P(group, label): group and label made independent, marginals kept.
With the paired sampler (half reals, half fakes per batch) a cell is drawn with share
n(group, label) / (2 n(label)), and the weights divide by that instead, so both samplers train towards the
same target. Frames of unknown group weigh 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.groups import NUM_LABELS, label_cell
from bench.method import METHODS, MethodInfo, Needs
from methods.xception import Xception


@dataclass
class ReweightConfig(MethodConfig):
    target: str = setting("uniform", choices=("uniform", "independent"),
                          help="uniform: every (group x label) cell weighs the same; independent: "
                               "Kamiran & Calders' P(group) P(label)")


def cell_weights(cell_counts: tuple[int, ...], *, target: str = "uniform", sampler: str = "standard") -> torch.Tensor:
    """The loss weight of each (group x label) cell (code bench.groups.label_cell); 0 for empty cells."""
    n = torch.tensor(cell_counts, dtype=torch.float64)
    if n.numel() == 0 or n.sum() == 0:
        raise ValueError("Reweighting needs the training split's (group x label) counts (MethodInfo.cell_counts).")
    present = n > 0
    by_label = n.view(-1, NUM_LABELS)  # (groups, labels)
    label_total = by_label.sum(0).repeat(len(by_label))  # n(label) of each cell
    if target == "uniform":
        wanted = present.double() / present.sum()
    else:
        wanted = by_label.sum(1).repeat_interleave(NUM_LABELS) * label_total / n.sum() ** 2
    if sampler == "paired":
        drawn = n / (NUM_LABELS * label_total.clamp_min(1))
    elif sampler == "balanced":
        drawn = present.double() / present.sum()
    else:
        drawn = n / n.sum()
    return torch.where(present, wanted / drawn.clamp_min(1e-300), torch.zeros_like(n)).float()


@METHODS.register()
class Reweight(Xception):
    """The baseline with per-sample BCE weighted by its (group x label) cell's fixed weight."""

    name = "reweight"
    Config = ReweightConfig
    needs = Needs(groups=True)
    description = ("reweighting (Kamiran & Calders, KAIS 2012): BCE weighted per (group x label) cell, "
                   "every cell weighing the same")

    def __init__(self, config: ReweightConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.register_buffer("cell_weight", cell_weights(info.cell_counts, target=config.target,
                                                         sampler=info.sampler), persistent=False)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        per_sample = F.binary_cross_entropy_with_logits(logits.float(), batch.label.float(), reduction="none")
        return (self.sample_weights(batch) * per_sample).mean()

    def sample_weights(self, batch: Batch) -> torch.Tensor:
        cell = label_cell(batch.group, batch.label)
        weight = self.cell_weight[cell.clamp_min(0)]
        return torch.where(cell >= 0, weight, torch.ones_like(weight))
