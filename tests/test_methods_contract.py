"""Every registered method, ablations included, honours the Method contract on a tiny easy batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import easy_batch, tiny_info

from bench.config import build_config, resolve_method_config
from bench.method import METHODS, Method


@pytest.fixture(params=METHODS.names())
def method(request: pytest.FixtureRequest) -> Method:
    torch.manual_seed(0)
    cls = METHODS.get(request.param)
    config = resolve_method_config(cls.Config, build_config(preset="quick"), cls.name)
    return cls(config, tiny_info()).to(memory_format=torch.channels_last)


def test_class_declares_the_interface(method: Method) -> None:
    cls = type(method)
    assert isinstance(cls.name, str) and cls.name
    assert cls.description, "a method describes itself in one line for `bench list`"
    assert isinstance(method.config, cls.Config)
    assert method.info == tiny_info()  # what the runner told it (hooks and subclasses read self.info)


def test_forward_gives_one_logit_per_image(method: Method) -> None:
    method.eval()
    with torch.inference_mode():
        out = method(easy_batch().images)
    assert out.shape == (16,)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_update_returns_scalar_logs_with_a_loss(method: Method) -> None:
    method.train()
    logs = method.update(easy_batch())
    assert "loss" in logs
    for key, value in logs.items():
        value = float(value)  # floats or 0-d tensors
        assert math.isfinite(value), key


def test_loss_goes_down_on_an_easy_batch(method: Method) -> None:
    method.train()
    batch = easy_batch()
    losses = [float(method.update(batch)["loss"]) for _ in range(25)]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    method.eval()
    with torch.inference_mode():
        logits = method(batch.images)
    assert (logits[8:].mean() > logits[:8].mean()).item(), "fakes should score higher than reals"


class HostSync(AssertionError):
    pass


def test_update_never_waits_for_the_device(method: Method, monkeypatch: pytest.MonkeyPatch) -> None:
    """A training step must not read tensor values on the host (`.item()`, `.cpu()`, `float(t)`, `if t:`, numpy):
    on a GPU each such read stalls the step until the device has caught up. Checked on the CPU by making every
    such read raise during `update`, except the optimiser's own step counters (host tensors by design)."""
    method.train()
    batch = easy_batch()
    method.update(batch)  # creates the optimiser state
    counters = {id(state["step"]) for opt in _optimizers(method) for state in opt.state.values() if "step" in state}

    def refuse(name: str):
        original = getattr(torch.Tensor, name)

        def guarded(self: torch.Tensor, *args, **kwargs):
            if id(self) in counters:
                return original(self, *args, **kwargs)
            raise HostSync(f"Tensor.{name} inside update()")
        return guarded

    for name in ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    logs = method.update(batch)
    monkeypatch.undo()
    assert "loss" in logs


def _optimizers(method: Method) -> list[torch.optim.Optimizer]:
    return [v for v in vars(method).values() if isinstance(v, torch.optim.Optimizer)]
