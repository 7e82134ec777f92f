"""Small builders shared by tests (imported as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import numpy as np
import torch

from bench.batch import Batch
from bench.config import build_config, resolve_method_config
from bench.method import METHODS, Method, MethodInfo


def tiny_info() -> MethodInfo:
    group_counts = (40, 300, 20, 10, 30, 250, 15, 8)
    cell_counts = tuple(c for n in group_counts for c in (n // 5, n - n // 5))  # a fifth real in each group
    return MethodInfo(image_size=32, group_counts=group_counts, num_manipulations=4, epochs=1, steps_per_epoch=10,
                      device=torch.device("cpu"), cell_counts=cell_counts)


def build_method(name: str, info: MethodInfo | None = None, **settings: object) -> Method:
    """The registered method ``name`` at the quick preset with ``settings`` (its own config fields), its
    weights drawn from torch seed 0, for `tiny_info` unless ``info`` is given."""
    torch.manual_seed(0)
    cls = METHODS.get(name)
    sets = [f"{name}.{key}={value}" for key, value in settings.items()]
    config = resolve_method_config(cls.Config, build_config(preset="quick", sets=sets), name)
    return cls(config, info or tiny_info())


def small_batch(groups_labels: list[tuple[int, int]], *, noise: bool = True) -> Batch:
    """A batch of 32 px images (noise, or zeros) with the given (group, label) per sample; the label is also
    the manipulation code."""
    group = torch.tensor([g for g, _ in groups_labels])
    label = torch.tensor([y for _, y in groups_labels])
    n = len(group)
    images = torch.randn(n, 3, 32, 32) if noise else torch.zeros(n, 3, 32, 32)
    return Batch(images=images, label=label, group=group, gender=group // 4, race=group % 4, manipulation=label,
                 video=torch.arange(n), rows=torch.arange(n).numpy())


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


# One small finished job (the baseline on synth-ff, predicting two test domains, two 4-step epochs, one
# thread so its numbers are reproducible bit for bit): the prediction contract and the kill tests share it.
ONE_JOB_TESTS = ("synth-ff", "synth-dfd")
ONE_JOB_STEPS = 4
ONE_JOB_ARGS = ["run", "--preset", "quick", "--no-progress", "--methods", "xception", "--train", "synth-ff",
                "--test", ",".join(ONE_JOB_TESTS), "--no-controls", "--set", "train.epochs=2",
                "--set", f"train.steps_per_epoch={ONE_JOB_STEPS}", "--set", "data.synthetic_scale=0.3",
                "--set", "train.threads=1"]
