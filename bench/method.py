"""The one interface a method implements, and the registry that holds the methods.

Modelled on DomainBed's ``Algorithm``: a method owns its optimisation step (``update``), so SAM,
paired batches and per-step robust losses need no change in the runner. The runner calls ``update`` on
training batches, ``forward`` for scores, ``end_epoch`` once per epoch, and two optional hooks outside
``update`` (``after_step``, ``finish_training``; default no-ops) for methods such as SWAD that must read a
validation loss or see training batches once training ends.

Checkpoints save the optimisers a method registered (`Method.make_optimizer`, `Method.register_optimizer`);
a method that keeps any other optimiser is refused when it is built, since a resumed job would silently
restart that optimiser's state.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from bench.batch import Batch
from bench.config import MethodConfig
from bench.errors import BenchError
from bench.groups import NUM_LABELS
from bench.registry import Registry


class UnregisteredOptimizer(BenchError):
    """A method keeps an optimiser that checkpoints would leave out."""


@dataclass(frozen=True)
class Needs:
    """What the training data must carry for a method; drives the sampler and data validation."""

    paired: bool = False  # batches of fakes each paired with a real (first half real, second half fake)
    groups: bool = False  # intersectional group labels on the training split
    manipulations: bool = False  # manipulation labels (a domain without them gives every fake class 1)
    balanced: bool = False  # batches drawing every (group x label) cell of the split equally often

    def describe(self) -> str:
        parts = [name for name, wanted in (("paired batches", self.paired), ("group labels", self.groups),
                                           ("manipulation labels", self.manipulations),
                                           ("cell-balanced batches", self.balanced)) if wanted]
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
    # Training-split frames per (group x label) cell, code bench.groups.label_cell (group * 2 + label);
    # empty when the runner did not count them (methods that need them say so).
    cell_counts: tuple[int, ...] = ()
    sampler: str = "standard"  # how training batches are drawn: "standard", "paired" or "balanced"

    @property
    def num_groups(self) -> int:
        """Intersectional groups of the coding (bench.groups): the length of ``group_counts``."""
        return len(self.group_counts)

    @property
    def num_cells(self) -> int:
        """(group x label) cells: two per intersectional group."""
        return NUM_LABELS * self.num_groups


class Validation(Protocol):
    """What ``Method.after_step`` may ask about the training domain's validation split."""

    def loss(self) -> float:
        """Mean BCE of the method's current weights on the validation split (reads the device: slow)."""
        ...


class _ChecksOptimizers(type):
    """Checks a method's optimisers once its ``__init__`` (the subclass's, all of it) has finished."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        method = super().__call__(*args, **kwargs)
        method.check_optimizers()
        return method


class Method(nn.Module, metaclass=_ChecksOptimizers):
    """Base class of every method. Subclasses set ``name`` and ``Config`` and implement
    ``forward`` and ``update``; ``make_optimizer`` gives them the shared recipe's optimiser."""

    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs: ClassVar[Needs] = Needs()
    description: ClassVar[str] = ""
    # Raise by one with every change that alters what the method computes under the same settings (a fix, a
    # new default inside the code, another order of operations): the revision is part of a job's identity, so
    # a finished job of the old code is not taken for the new one. tests/test_method_revisions.py holds each
    # built-in method's numbers at its revision and fails when they move without it.
    revision: ClassVar[int] = 1

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
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=c.lr_step_epochs, gamma=c.lr_gamma)
        return self.register_optimizer(opt, scheduler=schedule)

    def register_optimizer(self, optimizer: torch.optim.Optimizer, *,
                           scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> torch.optim.Optimizer:
        """Have checkpoints save and restore ``optimizer`` (and ``scheduler``, stepped by `end_epoch`): for
        an optimiser that the shared recipe of `make_optimizer` does not make."""
        self._optimizers.append(optimizer)
        if scheduler is not None:
            self._schedulers.append(scheduler)
        return optimizer

    def check_optimizers(self) -> None:
        """Refuse an optimiser held anywhere in the method (attributes, submodules, containers, helper
        objects such as SAM) that was not registered: checkpoints would leave its state out."""
        registered = {id(o) for o in self._optimizers}
        stray = [where for where, opt in _optimizers_in(self, "self", set()) if id(opt) not in registered]
        if stray:
            raise UnregisteredOptimizer(
                f"Method {getattr(self, 'name', type(self).__name__)!r} ({type(self).__qualname__}) keeps an "
                f"optimiser in `{stray[0]}` that was not made with `self.make_optimizer(...)`, so checkpoints "
                f"would leave its state out and a resumed job would not continue where it stopped. Make it "
                f"with `self.make_optimizer(params)`, or pass an optimiser of another kind to "
                f"`self.register_optimizer(optimizer)`.")

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


_OPAQUE = (torch.Tensor, type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType,
           str, bytes, int, float, bool, complex, torch.device, torch.dtype)
_MODULE_INTERNALS = ("_parameters", "_buffers", "_non_persistent_buffers_set")
_MAX_DEPTH = 64


def _optimizers_in(obj: Any, where: str, seen: set[int], depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every optimiser reachable from ``obj`` through attributes and containers, with where it sits."""
    if id(obj) in seen or depth > _MAX_DEPTH or obj is None or isinstance(obj, _OPAQUE):
        return
    seen.add(id(obj))
    if isinstance(obj, torch.optim.Optimizer):
        yield where, obj
        return
    if isinstance(obj, dict):
        children: Iterable[tuple[str, Any]] = ((f"{where}[{k!r}]", v) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        children = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    elif isinstance(obj, nn.Module):
        attributes = {k: v for k, v in vars(obj).items() if k not in _MODULE_INTERNALS and k != "_modules"}
        children = [(f"{where}.{k}", v) for k, v in {**attributes, **obj._modules}.items()]
    elif hasattr(obj, "__dict__"):
        children = ((f"{where}.{k}", v) for k, v in vars(obj).items())
    else:
        return
    for child_where, child in children:
        yield from _optimizers_in(child, child_where, seen, depth + 1)


def _load_builtin_methods() -> None:
    """Import every module of the ``methods`` package; their decorators register the methods."""
    package = importlib.import_module("methods")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"methods.{module.name}")


METHODS: Registry[type[Method]] = Registry("method", base=Method, entry_point_group="bench.methods",
                                           loader=_load_builtin_methods, excluded_from_all=("ablation",))
