"""Run independent pieces of the report's work on every core: a map over forked processes.

The report evaluates each prediction file on its own (bootstrap replicates, DeLong's placements), which
is most of its time on a full grid and spreads over cores without changing a number: every piece is a
deterministic function of its inputs, and the results come back in input order. Forked children share
the parent's memory (the prediction tables, the resamples), so nothing is sent to them; only their results
come back through a pipe. Where fork is not available (Windows, or a platform whose start method cannot
be forked), or one core is all there is, the map runs in this process. A child that fails or dies leaves
its share to the parent, which runs it itself, so a failure shows as a normal exception here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["available_cores", "fork_map"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fork_map(fn: Callable[[T], R], items: Sequence[T], *, workers: int | None = None,
             done: Callable[[int], Any] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, computed by ``workers`` processes (default: `available_cores`), this one
    included; ``done(k)`` is called as k more items are finished (for a progress bar).

    Items are dealt round-robin (item i to worker i mod workers), so a run of expensive items in a row
    is shared out. ``fn`` must not depend on state a child cannot see (it is forked, so it sees
    everything the parent had when it started).
    """
    workers = max(1, min(available_cores() if workers is None else workers, len(items)))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return list(_each(fn, items, range(len(items)), done))
    context = multiprocessing.get_context("fork")
    children = []
    for k in range(1, workers):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(fn, items, range(k, len(items), workers), send), daemon=True)
        process.start()
        send.close()
        children.append((k, process, receive))
    results: list[Any] = [None] * len(items)
    for i, value in zip(range(0, len(items), workers), _each(fn, items, range(0, len(items), workers), done),
                        strict=True):
        results[i] = value
    for k, process, receive in children:
        share = range(k, len(items), workers)
        try:
            values = receive.recv()
        except (EOFError, OSError):  # the child died before sending (killed, out of memory)
            values = None
        finally:
            receive.close()
            process.join()
        if values is None:  # its share is computed here; an error in fn then surfaces as usual
            values = list(_each(fn, items, share, None))
        elif done is not None:
            done(len(share))
        for i, value in zip(share, values, strict=True):
            results[i] = value
    return results


def _each(fn: Callable[[T], R], items: Sequence[T], share: range,
          done: Callable[[int], Any] | None) -> Iterator[R]:
    for i in share:
        yield fn(items[i])
        if done is not None:
            done(1)


def _child(fn: Callable[[T], R], items: Sequence[T], share: range, send: Any) -> None:
    """A forked worker: its share's results through ``send``, or None when anything fails (the parent then
    computes the share itself, raising the error where the user sees it)."""
    try:
        values: list[R] | None = list(_each(fn, items, share, None))
    except BaseException:  # reported by the parent, which runs the share again
        values = None
    try:
        send.send(values)
    finally:
        send.close()
