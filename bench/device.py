"""Where and how a job computes: device choice, mixed precision, CPU threads and seeding."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA GPU is visible; use --set train.device=cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device {name!r}: only {torch.cuda.device_count()} GPU(s) are visible.")
    return device


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA under ``auto``, none (fp32) on the CPU."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


@dataclass(frozen=True)
class Runtime:
    """Where and how a job computes, handed down as one value from the job to training and prediction:
    the device, the autocast dtype (None: fp32) and whether progress bars are shown."""

    device: torch.device
    amp: torch.dtype | None = None
    progress: bool = False

    @classmethod
    def on(cls, device: torch.device, *, precision: str, progress: bool) -> Runtime:
        """The runtime of a job on ``device`` at ``precision`` (train.precision: auto, bf16 or fp32)."""
        return cls(device=device, amp=amp_dtype(precision, device), progress=progress)

    def quiet(self) -> Runtime:
        """The same, without progress bars (for passes inside a step that has its own bar)."""
        return dataclasses.replace(self, progress=False)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        return autocast(self.device, self.amp)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# Torch's thread count before any job set it (all cores, or OMP_NUM_THREADS): a job run earlier in the same
# process sets torch's count to its own, which must not change the identity of the next job.
_DEFAULT_THREADS = torch.get_num_threads()


def cpu_threads(threads: int, *, jobs_at_once: int = 1) -> int:
    """The CPU threads a job uses: ``train.threads`` when set, else its share of the cores when several jobs
    run at once, else torch's default for this process (all cores, or OMP_NUM_THREADS)."""
    if threads:
        return threads
    if jobs_at_once > 1:
        return max(1, (os.cpu_count() or 1) // jobs_at_once)
    return _DEFAULT_THREADS


def compute_identity(*, device: str, precision: str, channels_last: bool, threads: int,
                     jobs_at_once: int = 1) -> dict[str, Any]:
    """The execution settings that change a job's numbers, resolved to the values the job will use: the
    device type (a CPU and a GPU round differently), the precision (``auto`` is bf16 on CUDA, fp32 on the
    CPU), the memory format (channels-last convolutions sum in another order) and, on the CPU, the thread
    count (threads split the sums of a convolution differently). The GPU's model and the CUDA version are
    not in it: they are recorded with each job, not part of its name."""
    resolved = resolve_device(device)
    identity: dict[str, Any] = {
        "device": resolved.type,
        "precision": "bf16" if amp_dtype(precision, resolved) is torch.bfloat16 else "fp32",
        "channels_last": channels_last,
    }
    if resolved.type == "cpu":
        identity["threads"] = cpu_threads(threads, jobs_at_once=jobs_at_once)
    return identity


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def visible_gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@contextlib.contextmanager
def claim_device(device: torch.device) -> Iterator[torch.device]:
    """Pin a job to one GPU when several are visible and the job did not name one.

    Parallel jobs on a machine with several GPUs each take the first GPU that no other job holds (one
    lock file per GPU, released when the job ends or its process dies), so they spread one per GPU.
    """
    count = visible_gpus()
    if device.type != "cuda" or device.index is not None or count <= 1:
        yield device
        return
    folder = Path(tempfile.gettempdir())
    handles = []
    try:
        for index in [*range(count), os.getpid() % count]:  # every GPU busy: wait for one of them
            handle = (folder / f"fairness-bench-gpu-{index}.lock").open("w")
            handles.append(handle)
            blocking = len(handles) > count
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                continue
            torch.cuda.set_device(index)
            yield torch.device("cuda", index)
            return
    finally:
        for handle in handles:
            handle.close()  # closing releases the lock
