"""From the frame cache to batches on the device.

Samplers produce row numbers; `DeviceLoader` gathers those rows from the memory-mapped cache, pins
the uint8 block (on CUDA), moves it without blocking and converts and normalises it on the device, so
the host does the least possible work per image. Training never decodes a file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import torch

from bench.batch import Batch
from bench.data.cache import FrameCache

MEAN, STD = 0.5, 0.5  # images are scaled to [-1, 1] (docs/METHODS.md)


HostBlock = tuple[np.ndarray, torch.Tensor, dict[str, torch.Tensor]]  # rows, uint8 images, labels


class StandardSampler:
    """Shuffled batches of ``batch_size`` frames; one epoch is one pass over all frames (or ``steps``
    batches, continuing into a fresh permutation when needed)."""

    def __init__(self, rows: np.ndarray, *, batch_size: int, steps: int = 0):
        if len(rows) == 0:
            raise ValueError("A sampler needs at least one training frame.")
        self.rows = np.asarray(rows)
        self.batch_size = min(batch_size, len(self.rows))
        self.steps = steps or max(1, len(self.rows) // self.batch_size)

    def __len__(self) -> int:
        return self.steps

    def epoch(self, seed: int | list[int]) -> Iterator[np.ndarray]:
        return self.batches(np.random.default_rng(seed))

    def batches(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = _endless_permutation(self.rows, rng)
        for _ in range(self.steps):
            yield np.fromiter((next(order) for _ in range(self.batch_size)), dtype=np.int64,
                              count=self.batch_size)


class PairedSampler:
    """Batches of ``batch_size`` fakes, each paired with a uniformly drawn real frame.

    The first half of a batch holds the reals, the second half the fakes; row i of each half is a pair.
    One epoch is one pass over the fakes in a random order (docs/METHODS.md), or ``steps`` batches when
    given. The same sampler serves every method, so comparisons stay fair.
    """

    def __init__(self, real_rows: np.ndarray, fake_rows: np.ndarray, *, batch_size: int, steps: int = 0):
        if len(real_rows) == 0 or len(fake_rows) == 0:
            raise ValueError("A paired sampler needs both real and fake training frames.")
        self.real_rows = np.asarray(real_rows)
        self.fakes = StandardSampler(fake_rows, batch_size=batch_size, steps=steps)
        self.batch_size = self.fakes.batch_size

    def __len__(self) -> int:
        return len(self.fakes)

    def epoch(self, seed: int | list[int]) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        for fakes in self.fakes.batches(rng):
            reals = self.real_rows[rng.integers(0, len(self.real_rows), size=len(fakes))]
            yield np.concatenate([reals, fakes])


class BalancedSampler:
    """Batches in which every cell present is equally likely (MEDFAIR's resampling).

    Each frame of a batch is drawn with replacement: a cell uniformly among the cells holding frames, then
    a frame uniformly within that cell, so a cell of 10 frames is drawn as often as one of 10,000. Rows
    whose cell is negative (unknown group) are never drawn. ``steps`` batches make an epoch (the runner
    passes the configured sampler's, so every method sees as many images per epoch).
    """

    def __init__(self, rows: np.ndarray, cells: np.ndarray, *, batch_size: int, steps: int):
        rows, cells = np.asarray(rows), np.asarray(cells)
        known = cells >= 0
        if not known.any():
            raise ValueError("A balanced sampler needs at least one frame with a known cell.")
        order = np.argsort(cells[known], kind="stable")
        self.rows = rows[known][order]  # grouped by cell
        _, self.cell_sizes = np.unique(cells[known][order], return_counts=True)
        self.cell_starts = np.cumsum(self.cell_sizes) - self.cell_sizes
        self.batch_size = batch_size
        self.steps = max(1, steps)

    def __len__(self) -> int:
        return self.steps

    def epoch(self, seed: int | list[int]) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        for _ in range(self.steps):
            cell = rng.integers(0, len(self.cell_sizes), size=self.batch_size)
            within = (rng.random(self.batch_size) * self.cell_sizes[cell]).astype(np.int64)
            yield self.rows[self.cell_starts[cell] + within]


def sequential(rows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Rows in order, in chunks: for validation and prediction."""
    for start in range(0, len(rows), batch_size):
        yield rows[start:start + batch_size]


class DeviceLoader:
    """Turns row numbers of one cache into `Batch` objects on ``device``."""

    def __init__(self, cache: FrameCache, *, device: torch.device, channels_last: bool = True) -> None:
        self.cache = cache
        self.device = device
        self.channels_last = channels_last
        self._pin = device.type == "cuda"
        m = cache.manifest
        self._labels = {col: m[col].to_numpy(dtype=np.int64) for col in
                        ("label", "intersection", "gender", "race", "manipulation")}
        self._labels["video"] = pd.factorize(m["video"])[0].astype(np.int64)

    def host_block(self, rows: np.ndarray) -> HostBlock:
        """Gather on the host: uint8 images (N, H, W, 3) and label tensors, pinned on CUDA."""
        images = torch.from_numpy(np.ascontiguousarray(self.cache.images[rows]))
        labels = {k: torch.from_numpy(v[rows]) for k, v in self._labels.items()}
        if self._pin:
            images = images.pin_memory()
            labels = {k: v.pin_memory() for k, v in labels.items()}
        return rows, images, labels

    def to_device(self, block: HostBlock) -> Batch:
        rows, images, labels = block
        dev = {k: v.to(self.device, non_blocking=True) for k, v in labels.items()}
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2)  # (N, 3, H, W), NHWC strides
        x = x.float() if self.channels_last else x.contiguous().float()
        x = x.sub_(255.0 * MEAN).div_(255.0 * STD)
        return Batch(images=x, label=dev["label"], group=dev["intersection"], gender=dev["gender"],
                     race=dev["race"], manipulation=dev["manipulation"], video=dev["video"], rows=rows)

    def batches(self, row_batches: Iterable[np.ndarray]) -> Iterator[Batch]:
        """Batches for ``row_batches``; on CUDA a background thread gathers the next ones meanwhile."""
        blocks = (self.host_block(rows) for rows in row_batches)
        if self._pin:
            blocks = _prefetch(blocks, depth=3)
        for block in blocks:
            yield self.to_device(block)


def _endless_permutation(rows: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rng.permutation(rows).tolist()


def _prefetch(items: Iterator, *, depth: int) -> Iterator:
    """Run ``items`` in a daemon thread, ``depth`` ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)
        q.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
