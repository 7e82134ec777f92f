"""`bench run --backend dask`: the same results as the local backend, finished jobs kept when the client
dies, and a job whose worker dies left incomplete for the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.__main__ import main
from bench.backends import execute
from bench.config import build_config
from bench.jobs import make_plan
from bench.store import Store, read_predictions

distributed = pytest.importorskip("distributed")

PLAN = ["--preset", "quick", "--no-progress", "--methods", "xception,dag-fdd", "--train", "synth-dfd,synth-celebdf",
        "--test", "synth-dfd,synth-celebdf", "--no-controls", "--set", "train.epochs=1",
        "--set", "data.synthetic_scale=0.3", "--set", "train.threads=1"]  # one thread everywhere: same float sums


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def contents(out: Path) -> dict[str, object]:
    """Every file of every job; predictions as tables, the rest by name only (they hold times and hosts)."""
    found: dict[str, object] = {}
    for path in sorted((out / "runs").rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            key = str(path.relative_to(out))
            found[key] = read_predictions(path) if path.name.endswith(".csv.gz") else None
    return found


def test_dask_backend_gives_the_local_backend_results(cluster, tmp_path: Path) -> None:
    assert main(["run", *PLAN, "--out", str(tmp_path / "local")]) == 0
    assert main(["run", *PLAN, "--out", str(tmp_path / "dask"), "--backend", "dask",
                 "--scheduler", cluster.scheduler_address]) == 0
    local, remote = contents(tmp_path / "local"), contents(tmp_path / "dask")
    assert set(local) == set(remote) and len(local) == 4 * 7  # 4 jobs: config, log, model, 3 predictions, DONE
    for key, frame in local.items():
        if frame is not None:
            other = remote[key]
            pd.testing.assert_frame_equal(frame.drop(columns=["logit", "score"]),
                                          other.drop(columns=["logit", "score"]))
            assert (frame["score"] - other["score"]).abs().max() < 1e-6


def test_killed_client_keeps_finished_jobs(cluster, tmp_path: Path) -> None:
    out = tmp_path / "r"
    command = [sys.executable, "-m", "bench", "run", *PLAN, "--out", str(out), "--backend", "dask",
               "--scheduler", cluster.scheduler_address, "--jobs", "1"]
    client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("runs/*/DONE")):
        time.sleep(0.2)
    client.send_signal(signal.SIGKILL)
    client.wait()
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/DONE")}
    assert 1 <= len(done) < 4
    assert main(["run", *PLAN, "--out", str(out), "--backend", "dask", "--scheduler", cluster.scheduler_address]) == 0
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/DONE")}
    assert len(after) == 4
    assert all(after[name] == stamp for name, stamp in done.items())  # finished jobs were not redone


def test_job_whose_worker_dies_stays_incomplete_and_reruns(tmp_path: Path) -> None:
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as one, \
            distributed.Client(one) as client:
        run = build_config(preset="quick", sets=["plan.methods=\"xception\"", "plan.train=\"synth-dfd\"",
                                                 "plan.test=\"synth-dfd\"", "plan.controls=false",
                                                 "train.epochs=3", "data.synthetic_scale=0.3"])
        store = Store(tmp_path)
        plan = make_plan(run)
        results = []
        runner = threading.Thread(target=lambda: results.extend(
            execute(plan, run=run, store=store, backend="dask", scheduler=one.scheduler_address, progress=False,
                    log=lambda *_: None)))
        runner.start()
        deadline = time.time() + 120
        while time.time() < deadline and not any(client.processing().values()):
            time.sleep(0.1)
        # the fresh worker is still importing torch and the harness: the job has started, far from done
        (pid,) = client.run(os.getpid).values()
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=120)
    assert [r.status for r in results] == ["failed"]
    assert store.state(plan[0].job_id, ["synth-dfd"]) in ("pending", "incomplete")
    rerun = execute(plan, run=run, store=store, progress=False, log=lambda *_: None)
    assert [r.status for r in rerun] == ["done"]
    assert store.state(plan[0].job_id, ["synth-dfd"]) == "done"
