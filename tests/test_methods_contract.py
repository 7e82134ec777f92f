"""Every registered method, ablations included, honours the Method contract on a tiny easy batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.config import build_config, resolve_method_config
from bench.data.loader import Batch
from bench.method import METHODS, Method, MethodInfo


def tiny_info() -> MethodInfo:
    return MethodInfo(image_size=32, group_counts=(40, 300, 20, 10, 30, 250, 15, 8), num_manipulations=4,
                      epochs=1, steps_per_epoch=10, device=torch.device("cpu"))


def easy_batch(pairs: int = 8, seed: int = 0) -> Batch:
    """Paired layout (reals first, then fakes): reals dark, fakes bright, so any detector can learn it."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * pairs
    label = torch.cat([torch.zeros(pairs), torch.ones(pairs)]).long()
    images = torch.randn(n, 3, 32, 32, generator=g) * 0.2 + (label.float() * 1.2 - 0.6)[:, None, None, None]
    group = torch.arange(n) % 8
    manipulation = torch.where(label == 1, torch.arange(n) % 4 + 1, torch.zeros(n, dtype=torch.long))
    return Batch(images=images.contiguous(memory_format=torch.channels_last), label=label, group=group,
                 gender=group // 4, race=group % 4, manipulation=manipulation, video=torch.arange(n),
                 rows=np.arange(n))


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
