"""Runs `bench` in a subprocess that signals itself at one named point of a job (test_kill_resume.py).

`python tests/fault_hook.py POINT SIGNAL run ...`: the same as `python -m bench run ...`, except that the
process sends itself SIGNAL (KILL or INT) at POINT, chosen deterministically instead of by sleeping:

- ``step:N``        after the N-th optimisation step of the job (counted over epochs; mid-epoch when N is not
                    a multiple of the steps per epoch)
- ``model``         right after model.pt is in place
- ``prediction:N``  right after the N-th test domain's predictions file is in place
- ``done``          while DONE is being written: its temporary file is written and synced, not yet renamed

The hook wraps public seams only (the Method hook, the atomic writer, os.fsync); it changes no behaviour
before the signal.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _fire(sig: signal.Signals) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), sig)


def install(point: str, sig: signal.Signals) -> None:
    import bench.jobs
    import bench.method
    import bench.train

    kind, _, count = point.partition(":")
    if kind == "step":
        original_after_step = bench.method.Method.after_step
        steps = {"n": 0}

        def after_step(self, validation):  # type: ignore[no-untyped-def]
            original_after_step(self, validation)
            steps["n"] += 1
            if steps["n"] == int(count):
                _fire(sig)

        bench.method.Method.after_step = after_step  # type: ignore[method-assign]
    elif kind == "model":
        original_write = bench.train.atomic_write_bytes

        def write(path: Path, data: bytes) -> None:
            original_write(path, data)
            if path.name == "model.pt":
                _fire(sig)

        bench.train.atomic_write_bytes = write  # type: ignore[assignment]
    elif kind == "prediction":
        original_predictions = bench.jobs.write_predictions
        written = {"n": 0}

        def write_predictions(path, frame):  # type: ignore[no-untyped-def]
            original_predictions(path, frame)
            if Path(path).parent.name != "predictions":  # the validation split's file is not a test domain's
                return
            written["n"] += 1
            if written["n"] == int(count):
                _fire(sig)

        bench.jobs.write_predictions = write_predictions  # type: ignore[assignment]
    elif kind == "done":
        original_fsync = os.fsync

        def fsync(fd: int) -> None:
            original_fsync(fd)
            if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(".DONE.tmp-"):
                _fire(sig)

        os.fsync = fsync  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown fault point {point!r}")


if __name__ == "__main__":
    point, signame, *argv = sys.argv[1:]
    # Ctrl-C as in a terminal, also when the tests run in a background job (whose SIGINT starts ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install(point, signal.Signals[f"SIG{signame}"])
    from bench.__main__ import main

    sys.exit(main(argv))
