"""`bench.forkmap.fork_map`: the results of a serial map, in order, whatever the workers do."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench.forkmap import fork_map


def _square_with_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_results_come_back_in_order_from_several_processes() -> None:
    results = fork_map(_square_with_pid, list(range(23)), workers=3)
    assert [r for r, _ in results] == [x * x for x in range(23)]
    pids = [pid for _, pid in results]
    assert pids[0] == os.getpid() and len(set(pids)) == 3  # item i ran in worker i mod 3
    assert pids[1::3] == [pids[1]] * len(pids[1::3]) and pids[1] != os.getpid()


def test_progress_counts_every_item_once() -> None:
    seen = []
    fork_map(_square_with_pid, list(range(10)), workers=2, done=seen.append)
    assert sum(seen) == 10


def test_arrays_come_back_unchanged() -> None:
    arrays = [np.random.default_rng(i).normal(size=(50, 7)) for i in range(6)]
    for got, want in zip(fork_map(np.cumsum, arrays, workers=2), [np.cumsum(a) for a in arrays], strict=True):
        assert np.array_equal(got, want)


_PARENT = os.getpid()


def _fails_in_a_child(x: int) -> int:
    if os.getpid() != _PARENT:
        raise RuntimeError("only in the child")
    return x + 1


def test_a_failing_child_leaves_its_share_to_the_parent() -> None:
    assert fork_map(_fails_in_a_child, list(range(9)), workers=3) == list(range(1, 10))


def _fails_everywhere(x: int) -> int:
    if x == 4:
        raise ValueError("item 4 is bad")
    return x


def test_an_error_in_fn_surfaces_in_the_caller() -> None:
    with pytest.raises(ValueError, match="item 4 is bad"):
        fork_map(_fails_everywhere, list(range(8)), workers=2)


def test_one_worker_or_one_item_runs_here() -> None:
    assert fork_map(_square_with_pid, [3], workers=4) == [(9, os.getpid())]
    assert {pid for _, pid in fork_map(_square_with_pid, list(range(5)), workers=1)} == {os.getpid()}
