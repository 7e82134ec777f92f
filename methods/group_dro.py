"""Group DRO (Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts", ICLR 2020).

Groups are (intersectional group x label) cells. The method keeps a distribution q over the cells and,
at every step (the paper's Algorithm 1), first moves q towards the cells the batch serves worst,

    q_g <- q_g exp(eta (L_g + C / sqrt(n_g)))   for every cell g present in the batch, then q <- q / sum(q),

and then descends on sum_g q_g L_g, where L_g is the batch's mean BCE of cell g (0 for a cell absent
from the batch) and n_g the cell's training frames. C / sqrt(n_g) is the paper's generalisation
adjustment, off by default (C = 0). q starts uniform over the cells present in the training split and is
a registered buffer, so it is saved in every checkpoint and a resumed job continues with the same q.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.groups import label_cell
from bench.method import METHODS, MethodInfo, Needs
from methods.xception import Xception


@dataclass
class GroupDroConfig(MethodConfig):
    eta: float = setting(0.01, minimum=0.0, help="step size of the group weights q")
    adjustment: float = setting(0.0, minimum=0.0, help="C of the generalisation adjustment C / sqrt(n_g)")


def cell_mean_losses(losses: torch.Tensor, cells: torch.Tensor, num_cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss of every cell (0 where absent) and the mask of cells present; codes outside
    [0, num_cells) are left out. Sums by index_add, so nothing waits for the host."""
    known = (cells >= 0) & (cells < num_cells)
    bucket = torch.where(known, cells, torch.full_like(cells, num_cells))  # unknown -> extra bucket
    sums = torch.zeros(num_cells + 1, device=losses.device, dtype=losses.dtype).index_add(0, bucket, losses)
    counts = torch.zeros(num_cells + 1, device=losses.device, dtype=losses.dtype).index_add(
        0, bucket, torch.ones_like(losses))
    return sums[:num_cells] / counts[:num_cells].clamp_min(1), counts[:num_cells] > 0


@METHODS.register()
class GroupDro(Xception):
    """The baseline's BCE, weighted per (group x label) cell by the online worst-case weights q."""

    name = "group-dro"
    Config = GroupDroConfig
    needs = Needs(groups=True)
    description = "Group DRO (Sagawa et al., ICLR 2020) over (group x label) cells, eta 0.01"

    def __init__(self, config: GroupDroConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        counts = torch.tensor(info.cell_counts or (1,) * info.num_cells, dtype=torch.float32)
        present = (counts > 0).float()
        self.register_buffer("q", present / present.sum())
        self.register_buffer("adjust", config.adjustment / counts.clamp_min(1).sqrt(), persistent=False)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        per_sample = F.binary_cross_entropy_with_logits(logits.float(), batch.label.float(), reduction="none")
        cell_loss, present = cell_mean_losses(per_sample, label_cell(batch.group, batch.label), len(self.q))
        with torch.no_grad():
            step = torch.where(present, self.config.eta * (cell_loss.detach() + self.adjust), 0.0)
            q = self.q * torch.exp(step)
            self.q.copy_(q / q.sum())
        return (self.q * cell_loss).sum()
