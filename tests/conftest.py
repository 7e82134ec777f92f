"""Shared fixtures. Tests run on the CPU, offline: a stray model-hub call fails at once."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One frame cache for the whole session, away from the user's ~/.cache."""
    os.environ["BENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("BENCH_DATASETS", None)
    os.environ.pop("BENCH_OUT", None)


@pytest.fixture(scope="session")
def one_job(tmp_path_factory: pytest.TempPathFactory):
    """The results folder of `helpers.ONE_JOB_ARGS`, run once per session in this process."""
    import torch
    from helpers import ONE_JOB_ARGS

    from bench.__main__ import main

    out = tmp_path_factory.mktemp("one_job")
    threads = torch.get_num_threads()
    try:
        assert main([*ONE_JOB_ARGS, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # train.threads=1 set it for this process
    return out
