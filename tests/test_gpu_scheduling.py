"""Several GPUs on one machine, simulated on the CPU: parallel jobs default to one per GPU, and each job
claims a GPU no other job holds (lock files), waiting when every GPU is taken."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
import torch

from bench import backends, device
from bench.backends import parallel_jobs
from bench.config import build_config
from bench.device import claim_device


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """visible_gpus() says 4; set_device is recorded instead of called; lock files live in tmp_path."""
    chosen: list[int] = []
    monkeypatch.setattr(device, "visible_gpus", lambda: 4)
    monkeypatch.setattr(backends, "visible_gpus", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    return chosen


def test_parallel_jobs_default_to_one_per_gpu(four_gpus: list[int]) -> None:
    run = build_config(preset="quick")  # device auto
    messages: list[str] = []
    assert parallel_jobs(None, run, todo=20, log=messages.append) == 4
    assert parallel_jobs(2, run, todo=20, log=messages.append) == 2
    assert parallel_jobs(8, run, todo=20, log=messages.append) == 4
    assert messages and "one per GPU" in messages[0]
    assert parallel_jobs(None, run, todo=3, log=messages.append) == 3  # never more workers than jobs
    cpu = build_config(preset="quick", sets=["train.device=cpu"])
    assert parallel_jobs(None, cpu, todo=20) == 1 and parallel_jobs(3, cpu, todo=20) == 3


def test_jobs_claim_different_gpus_and_release_them(four_gpus: list[int]) -> None:
    cuda = torch.device("cuda")
    with claim_device(cuda) as a, claim_device(cuda) as b, claim_device(cuda) as c:
        assert sorted(d.index for d in (a, b, c)) == [0, 1, 2]
        with claim_device(cuda) as d:
            assert d.index == 3
    assert four_gpus == [0, 1, 2, 3]
    with claim_device(cuda) as again:  # all released: the first GPU is free again
        assert again.index == 0


def test_a_job_waits_when_every_gpu_is_taken(four_gpus: list[int]) -> None:
    cuda = torch.device("cuda")
    got: list[int] = []
    with claim_device(cuda), claim_device(cuda), claim_device(cuda), claim_device(cuda):
        waiter = threading.Thread(target=lambda: _claim_into(got))
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive() and not got  # blocked while all four are held
    waiter.join(timeout=10)
    assert not waiter.is_alive() and len(got) == 1 and 0 <= got[0] < 4


def test_named_gpu_and_cpu_are_left_alone(four_gpus: list[int]) -> None:
    with claim_device(torch.device("cuda", 2)) as named, claim_device(torch.device("cpu")) as cpu:
        assert named == torch.device("cuda", 2) and cpu.type == "cpu"
    assert four_gpus == []


def _claim_into(got: list[int]) -> None:
    with claim_device(torch.device("cuda")) as d:
        got.append(d.index)
