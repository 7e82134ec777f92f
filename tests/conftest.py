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
