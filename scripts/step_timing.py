"""Model-only training and prediction rates of registered methods: the same batch, already on the device,
stepped again and again (no loader, no data), so the rate is the model's ceiling for the runner.

Defaults are the paper recipe (Xception, 256 px, 16 pairs = 32 images, bf16 autocast on CUDA,
channels-last). `scripts/gpu_check.py` uses `model_rates`; run alone it prints them for the methods named:
    python scripts/step_timing.py [METHOD ...]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from bench.batch import Batch
from bench.config import build_config, resolve_method_config
from bench.device import autocast
from bench.method import METHODS, MethodInfo


@dataclass(frozen=True)
class Recipe:
    """The model and batch of a timing: the paper's unless told otherwise."""

    preset: str = "paper"
    image_size: int = 256
    pairs: int = 16
    backbone: str = ""  # empty: the preset's
    bf16: bool = True  # autocast on CUDA (the CPU runs fp32, as `train.precision = auto` does)
    channels_last: bool = True


@dataclass(frozen=True)
class Rates:
    train: float  # training images/s
    predict: float  # prediction images/s at batch 256 (64 on the CPU)
    compile_seconds: float = 0.0  # first steps under torch.compile, beyond an eager step's time


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, recipe: Recipe, device: torch.device, steps_per_epoch: int) -> torch.nn.Module:
    sets = [f"method.backbone={recipe.backbone}"] if recipe.backbone else []
    run = build_config(preset=recipe.preset, sets=sets)
    cls = METHODS.get(name)
    info = MethodInfo(image_size=recipe.image_size, group_counts=(100,) * 8, num_manipulations=4, epochs=1,
                      steps_per_epoch=steps_per_epoch, device=device, channels_last=recipe.channels_last,
                      cell_counts=(20, 80) * 8, sampler="balanced" if cls.needs.balanced else "paired")
    method = cls(resolve_method_config(cls.Config, run, name), info).to(device)
    return method.to(memory_format=torch.channels_last) if recipe.channels_last else method


def paired_batch(recipe: Recipe, device: torch.device) -> Batch:
    """Reals then fakes, every group and manipulation present, on ``device``."""
    n, size = 2 * recipe.pairs, recipe.image_size
    g = torch.Generator().manual_seed(0)
    label = torch.cat([torch.zeros(recipe.pairs), torch.ones(recipe.pairs)]).long()
    group = torch.arange(n) % 8
    images = torch.randn(n, 3, size, size, generator=g)
    if recipe.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return Batch(images=images.to(device), label=label.to(device), group=group.to(device),
                 gender=(group // 4).to(device), race=(group % 4).to(device),
                 manipulation=(label * (1 + torch.arange(n) % 4)).to(device), video=torch.arange(n).to(device),
                 rows=np.arange(n))


def model_rates(name: str, recipe: Recipe, device: torch.device, *, steps: int = 30, warmup: int = 5,
                compile_mode: str | None = None, predict_batch: int | None = None) -> Rates:
    """Training images/s of ``steps`` updates on one batch already on ``device``, and prediction images/s.
    With ``compile_mode`` the update runs under torch.compile; the compile time is the warm-up's excess."""
    method = build(name, recipe, device, steps_per_epoch=warmup + steps)
    method.train()
    batch = paired_batch(recipe, device)
    amp = torch.bfloat16 if recipe.bf16 and device.type == "cuda" else None
    update = torch.compile(method.update, mode=compile_mode) if compile_mode else method.update
    t0 = time.perf_counter()
    for _ in range(warmup):
        with autocast(device, amp):
            update(batch)
    _sync(device)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        with autocast(device, amp):
            logs = update(batch)
    float(logs["loss"])
    _sync(device)
    step = (time.perf_counter() - t0) / steps
    train = batch.images.shape[0] / step
    method.eval()
    size = predict_batch or (256 if device.type == "cuda" else 64)
    images = torch.randn(size, 3, recipe.image_size, recipe.image_size, device=device)
    if recipe.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for i in range(warmup + 5):
            if i == warmup:
                _sync(device)
                t0 = time.perf_counter()
            with autocast(device, amp):
                method(images)
        _sync(device)
    predict = size * 5 / (time.perf_counter() - t0)
    return Rates(train=train, predict=predict, compile_seconds=max(warm - warmup * step, 0.0))


if __name__ == "__main__":
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for method_name in sys.argv[1:] or ["xception"]:
        rates = model_rates(method_name, Recipe(), dev)
        print(f"paper recipe (256 px, bf16 on CUDA), {method_name}: train {rates.train:.0f} img/s, "
              f"predict {rates.predict:.0f} img/s on {dev}")
