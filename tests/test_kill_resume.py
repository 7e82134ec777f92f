"""Resume after real kills: a `bench run` subprocess is killed at chosen points of one job (mid-epoch, after
model.pt, between two predictions files, while DONE is written) and run again each time; the finished job
must equal an uninterrupted run bit for bit (log, weights, predictions; CPU, one thread), no DONE may exist
without every predictions file, and no temporary file may be left. Ctrl-C exits 130.

The kill points are reached deterministically through tests/fault_hook.py (the process signals itself
there), never by sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import ONE_JOB_ARGS as ARGS
from helpers import ONE_JOB_STEPS as STEPS
from helpers import ONE_JOB_TESTS as TESTS

HOOK = Path(__file__).with_name("fault_hook.py")
TIMING = ["seconds", "images_per_s"]  # wall-clock columns of log.csv: the only ones allowed to differ


def bench_until(out: Path, point: str, sig: str = "KILL") -> subprocess.CompletedProcess:
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(HOOK), point, sig, *ARGS, "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=300)


def job_folder(out: Path) -> Path:
    (folder,) = (out / "runs").iterdir()
    return folder


def finished_files(folder: Path) -> dict[str, object]:
    """What must be identical: the log without its timings, the weights, the predictions' bytes."""
    log = pd.read_csv(folder / "log.csv").drop(columns=TIMING)
    weights = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    predictions = {d: (folder / "predictions" / f"{d}.csv.gz").read_bytes() for d in TESTS}
    return {"log": log, "weights": weights, "predictions": predictions,
            "validation": (folder / "validation.csv.gz").read_bytes()}


def assert_whole(folder: Path) -> None:
    """The invariants every kill must keep: DONE only with every predictions file."""
    if (folder / "DONE").exists():
        assert all((folder / "predictions" / f"{d}.csv.gz").exists() for d in TESTS)


@pytest.fixture(scope="module")
def clean(one_job: Path) -> dict[str, object]:
    """The uninterrupted run (conftest's ``one_job``)."""
    return finished_files(job_folder(one_job))


def test_killed_at_every_point_and_rerun_equals_a_clean_run(tmp_path: Path, clean: dict[str, object]) -> None:
    # Ctrl-C in the first epoch: exit 130, nothing that looks finished.
    result = bench_until(tmp_path, "step:2", "INT")
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    folder = job_folder(tmp_path)
    assert not (folder / "DONE").exists() and not (folder / "predictions").exists()

    # SIGKILL mid-epoch 2 (epoch 1's checkpoint on disk), after model.pt, after the first predictions file,
    # and between DONE's temporary file and its rename; each time the next run picks up from there.
    for point in (f"step:{STEPS + 2}", "model", "prediction:1", "done"):
        result = bench_until(tmp_path, point)
        assert result.returncode == -signal.SIGKILL, (point, result.returncode, result.stderr[-2000:])
        assert_whole(folder)
        if point == "done":
            assert not (folder / "DONE").exists()
        if point == "prediction:1":
            assert len(list((folder / "predictions").glob("*.csv.gz"))) == 1 and not (folder / "DONE").exists()

    result = bench_until(tmp_path, "step:0")  # step 0 never comes: an uninterrupted rerun
    assert result.returncode == 0, result.stderr[-2000:]
    assert (folder / "DONE").exists()
    assert not [p.relative_to(folder) for p in folder.rglob("*") if ".tmp-" in p.name]
    assert not (folder / "checkpoint.pt").exists()

    resumed = finished_files(folder)
    pd.testing.assert_frame_equal(resumed["log"], clean["log"], check_exact=True)
    assert resumed["weights"].keys() == clean["weights"].keys()
    assert all(torch.equal(resumed["weights"][k], v) for k, v in clean["weights"].items())
    assert resumed["predictions"] == clean["predictions"]
    assert resumed["validation"] == clean["validation"]
