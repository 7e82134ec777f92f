"""The one interface a method implements, and the registry that holds the methods.

Modelled on DomainBed's ``Algorithm``: a method owns its optimisation step (``update``), so SAM,
paired batches and per-step robust losses need no change in the runner. The runner only calls
``update`` on training batches, ``forward`` for scores, and ``end_epoch`` once per epoch, plus two
optional hooks outside ``update`` (``after_step``, ``finish_training``; default no-ops) for methods
such as SWAD that must read a validation loss or see training batches once training ends.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from bench.batch import Batch
from bench.config import MethodConfig
from bench.registry import Registry


@dataclass(frozen=True)
class Needs:
    """What the training data must carry for a method; drives the sampler and data validation."""

    paired: bool = False  # batches of fakes each paired with a real (first half real, second half fake)
    groups: bool = False  # intersectional group labels on the training split
    manipulations: bool = False  # manipulation labels (a domain without them gives every fake class 1)

    def describe(self) -> str:
        parts = [name for name, wanted in (("paired batches", self.paired), ("group labels", self.groups),
                                           ("manipulation labels", self.manipulations)) if wanted]
        return ", ".join(parts) or "-"


@dataclass(frozen=True)
class MethodInfo:
    """What the runner tells a method about the job it is built for."""

    image_size: int
    group_counts: tuple[int, ...]  # training-split frames per intersectional group (bench.groups coding)
    num_manipulations: int  # fakes are labelled 1..num_manipulations
    epochs: int
    steps_per_epoch: int
    device: torch.device
    channels_last: bool = True

    @property
    def num_groups(self) -> int:
        """Intersectional groups of the coding (bench.groups): the length of ``group_counts``."""
        return len(self.group_counts)


class Validation(Protocol):
    """What ``Method.after_step`` may ask about the training domain's validation split."""

    def loss(self) -> float:
        """Mean BCE of the method's current weights on the validation split (reads the device: slow)."""
        ...


class Method(nn.Module):
    """Base class of every method. Subclasses set ``name`` and ``Config`` and implement
    ``forward`` and ``update``; ``make_optimizer`` gives them the shared recipe's optimiser."""

    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs: ClassVar[Needs] = Needs()
    description: ClassVar[str] = ""

    def __init__(self, config: MethodConfig, info: MethodInfo) -> None:
        super().__init__()
        self.config = config
        self.info = info
        self._optimizers: list[torch.optim.Optimizer] = []
        self._schedulers: list[torch.optim.lr_scheduler.LRScheduler] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One fake-logit per image, shape (N,); P(fake) = sigmoid(logit)."""
        raise NotImplementedError

    def update(self, batch: Batch) -> dict[str, Any]:
        """One optimisation step on ``batch``; returns scalar logs (floats or 0-d tensors), with ``loss``.

        Return tensors rather than calling ``.item()``: the runner reads them rarely, so the step never
        waits for the device.
        """
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Called once after every training epoch: steps the learning-rate schedulers."""
        for scheduler in self._schedulers:
            scheduler.step()

    # -------------------------------------------------------------------------------- optimisation
    def make_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The shared recipe's optimiser and step schedule (``Config``: optimizer, lr, momentum,
        weight_decay, lr_step_epochs, lr_gamma); registered so checkpoints save and restore it."""
        c = self.config
        if c.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                                         weight_decay=c.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        self._optimizers.append(opt)
        self._schedulers.append(torch.optim.lr_scheduler.StepLR(opt, step_size=c.lr_step_epochs,
                                                                gamma=c.lr_gamma))
        return opt

    def learning_rate(self) -> float:
        return float(self._optimizers[0].param_groups[0]["lr"]) if self._optimizers else float("nan")

    def training_state(self) -> dict[str, Any]:
        """Everything needed to resume training: weights, optimiser and scheduler states."""
        return {"model": self.state_dict(), "optimizers": [o.state_dict() for o in self._optimizers],
                "schedulers": [s.state_dict() for s in self._schedulers]}

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["model"])
        for opt, saved in zip(self._optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(saved)
        for sched, saved in zip(self._schedulers, state["schedulers"], strict=True):
            sched.load_state_dict(saved)

    # ------------------------------------------------------------------ hooks the runner calls outside update()
    def after_step(self, validation: Validation) -> None:
        """Called after every ``update``, outside it and outside autocast, so it may read values on the host
        (SWAD reads the validation loss every k steps here). State it keeps must go into
        ``training_state`` to survive a resume. Default: nothing."""

    def finish_training(self, training_batches: Iterable[Batch]) -> str | None:
        """Called once after the last epoch, under the training precision, with one lazy epoch of training
        batches (e.g. to re-estimate BatchNorm statistics).

        A method that sets the weights that predict itself (SWAD's average) does so here and returns a
        note saying how; the runner then keeps these weights and does not apply the per-epoch selection
        (``train.selection``). Default: None, and the runner restores the selected epoch's weights.
        """
        return None


def _load_builtin_methods() -> None:
    """Import every module of the ``methods`` package; their decorators register the methods."""
    package = importlib.import_module("methods")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"methods.{module.name}")


METHODS: Registry[type[Method]] = Registry("method", base=Method, entry_point_group="bench.methods",
                                           loader=_load_builtin_methods, excluded_from_all=("ablation",))
