"""Time training steps of the paper recipe (Xception, 256 px, 16 pairs = 32 images, bf16 autocast on CUDA,
channels_last) for the registered methods given on the command line (default: xception)."""

import sys
import time

import numpy as np
import torch

from bench.batch import Batch
from bench.config import build_config, resolve_method_config
from bench.device import autocast
from bench.method import METHODS, MethodInfo


def timing(name: str, device: torch.device, steps: int = 30, warmup: int = 5) -> tuple[float, float]:
    """(training images/s, prediction images/s at batch 256)."""
    run = build_config(preset="paper")
    cls = METHODS.get(name)
    info = MethodInfo(image_size=256, group_counts=(100,) * 8, num_manipulations=4, epochs=1, steps_per_epoch=steps,
                      device=device)
    method = cls(resolve_method_config(cls.Config, run, name), info).to(device).to(memory_format=torch.channels_last)
    n = 32
    label = torch.cat([torch.zeros(16), torch.ones(16)]).long().to(device)
    batch = Batch(images=torch.randn(n, 3, 256, 256, device=device).contiguous(memory_format=torch.channels_last),
                  label=label, group=(torch.arange(n, device=device) % 8), gender=torch.zeros(n, dtype=torch.long,
                  device=device), race=torch.zeros(n, dtype=torch.long, device=device),
                  manipulation=label * 1, video=torch.arange(n, device=device), rows=np.arange(n))
    amp = torch.bfloat16 if device.type == "cuda" else None
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast(device, amp):
            logs = method.update(batch)
    float(logs["loss"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_rate = n * steps / (time.perf_counter() - t0)
    method.eval()
    images = torch.randn(256, 3, 256, 256, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for i in range(warmup + 10):
            if i == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            with autocast(device, amp):
                method(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return train_rate, 256 * 10 / (time.perf_counter() - t0)


if __name__ == "__main__":
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for name in sys.argv[1:] or ["xception"]:
        train, predict = timing(name, device)
        print(f"paper recipe (256 px, bf16 on CUDA), {name}: train {train:.0f} img/s, predict {predict:.0f} img/s "
              f"on {device}")
