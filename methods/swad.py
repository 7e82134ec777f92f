"""SWAD (Cha et al., NeurIPS 2021): dense averaging of the weights over the validation-loss valley.

The baseline is trained as usual; every iteration's weights are summed into the current segment, and
every k steps (``eval_every``) the segment's mean is closed with the validation loss of the weights at
its end (the training domain's validation split, read in ``after_step``, outside ``update``). The
valley follows the paper's algorithm (Appendix B.4): it starts at the first segment s whose loss is the
lowest of the n_converge from s on, with threshold (1 + tolerance_ratio) x their mean loss, and a
segment j from s on is averaged while min(loss_j .. loss_{j + n_tolerance - 1}) stays under the
threshold (the tail at the end of training is judged on the losses it has); the first that fails ends
the valley. All segments are k steps long, so the mean of the segment means is the dense average of
every iteration from the valley's first step to its last. (The official code also extends the start
backwards over earlier segments under the threshold; that refinement is not ported.)

At the end (``finish_training``) the averaged weights replace the model's, and BatchNorm's running
statistics are re-estimated for them on one epoch of training batches (cumulative averages), as the
official code does; these weights predict, not the epoch that ``train.selection`` would choose. When no
valley was found (too few evaluations) the last segment's mean is used, as in the official code. The
averaging state is part of ``training_state``, so an interrupted job resumes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.method import METHODS, MethodInfo, Validation
from methods.xception import Xception

# Evaluations per job when eval_every is 0: the paper's DomainBed runs see 15 to 50 (5,000 to 15,000 steps).
_AUTO_EVALUATIONS = 25


@dataclass
class SwadConfig(MethodConfig):
    n_converge: int = setting(3, minimum=1, help="optimum patience N_s (evaluations)")
    n_tolerance: int = setting(6, minimum=1, help="overfit patience N_e (evaluations)")
    tolerance_ratio: float = setting(0.3, minimum=0.0, help="the valley ends above (1 + r) x its start loss")
    eval_every: int = setting(0, minimum=0, help="steps between validation losses (k); 0: the job's steps / 25")


@dataclass
class Segment:
    """The mean weights of k consecutive iterations and the validation loss at the last of them."""

    mean: list[torch.Tensor]
    loss: float
    first_step: int
    last_step: int


class LossValley:
    """The averaging state: the open segment, the segments still undecided, and the running average."""

    def __init__(self, *, n_converge: int, n_tolerance: int, tolerance_ratio: float) -> None:
        self.n_converge, self.n_tolerance, self.tolerance_ratio = n_converge, n_tolerance, tolerance_ratio
        self.steps = 0  # iterations seen
        self.open_sum: list[torch.Tensor] = []
        self.open_steps = 0
        self.pending: list[Segment] = []  # before the valley: the last n_converge; in it: the undecided
        self.threshold: float | None = None
        self.dead = False  # the valley has ended: nothing more is averaged
        self.average_sum: list[torch.Tensor] = []
        self.averaged: list[tuple[int, int]] = []  # (first_step, last_step) of every averaged segment
        self.losses: list[tuple[int, float]] = []  # (step, validation loss) of every evaluation

    def add_iterate(self, params: list[torch.Tensor]) -> None:
        """Sum this iteration's weights into the open segment (device work only, no host read)."""
        self.steps += 1
        if self.dead:
            return
        if not self.open_sum:
            self.open_sum = [p.detach().clone() for p in params]
        else:
            torch._foreach_add_(self.open_sum, [p.detach() for p in params])
        self.open_steps += 1

    def close_segment(self, loss: float) -> None:
        """Close the open segment with the validation loss of the weights at its end."""
        mean = torch._foreach_div(self.open_sum, float(self.open_steps))
        segment = Segment(mean, loss, self.steps - self.open_steps + 1, self.steps)
        self.open_sum, self.open_steps = [], 0
        self.losses.append((self.steps, loss))
        self.pending.append(segment)
        if self.threshold is None:
            self.pending = self.pending[-self.n_converge:]
            window = [s.loss for s in self.pending]
            if len(window) < self.n_converge or min(window) < window[0]:
                return
            self.threshold = (1.0 + self.tolerance_ratio) * sum(window) / len(window)
        self._decide(final=False)

    def finish(self) -> list[torch.Tensor] | None:
        """The averaged weights (decides the tail first), the last segment's mean without a valley, or None."""
        if self.threshold is None:
            return self.pending[-1].mean if self.pending else None
        self._decide(final=True)
        return torch._foreach_div(self.average_sum, float(len(self.averaged)))

    def _decide(self, *, final: bool) -> None:
        while self.pending and not self.dead and (final or len(self.pending) >= self.n_tolerance):
            if min(s.loss for s in self.pending[:self.n_tolerance]) > self.threshold:
                self.dead, self.pending = True, []
                return
            segment = self.pending.pop(0)
            if self.average_sum:
                torch._foreach_add_(self.average_sum, segment.mean)
            else:
                self.average_sum = [t.clone() for t in segment.mean]
            self.averaged.append((segment.first_step, segment.last_step))

    def state(self) -> dict[str, Any]:
        return dict(vars(self))

    def load(self, state: dict[str, Any], device: torch.device) -> None:
        """Restore ``state``; its tensors move to ``device`` (a checkpoint is read onto the CPU)."""
        def moved(value: Any) -> Any:
            if torch.is_tensor(value):
                return value.to(device)
            if isinstance(value, Segment):
                return Segment(moved(value.mean), value.loss, value.first_step, value.last_step)
            return [moved(v) for v in value] if isinstance(value, list) else value

        vars(self).update({key: moved(value) for key, value in state.items()})


@METHODS.register()
class Swad(Xception):
    """The baseline trained as usual; the weights averaged over SWAD's validation-loss valley predict."""

    name = "swad"
    Config = SwadConfig
    description = "SWAD: dense weight average over the validation-loss valley, BatchNorm re-estimated"

    def __init__(self, config: SwadConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        total = max(info.epochs * info.steps_per_epoch, 1)
        self.eval_every = config.eval_every or max(1, total // _AUTO_EVALUATIONS)
        self.valley = LossValley(n_converge=config.n_converge, n_tolerance=config.n_tolerance,
                                 tolerance_ratio=config.tolerance_ratio)

    def update(self, batch: Batch) -> dict[str, Any]:
        logs = super().update(batch)
        self.valley.add_iterate(list(self.net.parameters()))
        return logs

    def after_step(self, validation: Validation) -> None:
        if self.valley.open_steps >= self.eval_every:
            self.valley.close_segment(validation.loss())

    def finish_training(self, training_batches: Iterable[Batch]) -> str | None:
        averaged = self.valley.finish()
        if averaged is None:
            return "swad: no validation segment was closed; the last iterate predicts"
        with torch.no_grad():
            torch._foreach_copy_(list(self.net.parameters()), averaged)
        batches = recompute_batchnorm(self.net, training_batches)
        spans = self.valley.averaged
        where = (f"steps {spans[0][0]}-{spans[-1][1]} ({len(spans)} segments of {self.eval_every})" if spans
                 else f"the last segment only (no loss valley in {len(self.valley.losses)} evaluations)")
        return f"swad: weights averaged over {where}; BatchNorm re-estimated on {batches} training batches"

    def training_state(self) -> dict[str, Any]:
        return {**super().training_state(), "swad": self.valley.state()}

    def load_training_state(self, state: dict[str, Any]) -> None:
        super().load_training_state(state)
        self.valley.load(state["swad"], next(self.net.parameters()).device)


def recompute_batchnorm(model: nn.Module, batches: Iterable[Batch]) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them as plain averages over ``batches``
    (train-mode forward passes, no gradient); returns the number of batches used."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training, count = model.training, 0
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch.images)
            count += 1
    model.train(was_training)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return count
