"""A job's identity holds the execution settings that change its numbers, resolved to what the job uses:
a rerun with another memory format, precision or CPU thread count is a new job, not "already finished"."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from bench.__main__ import main
from bench.config import build_config
from bench.jobs import make_plan

QUICK = ["--preset", "quick", "--no-progress", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2",
         "--set", "data.synthetic_scale=0.3", "--methods", "xception",
         "--train", "synth-dfd", "--test", "synth-dfd", "--no-controls"]


def job_id(*sets: str, jobs_at_once: int = 1) -> str:
    run = build_config(preset="quick", sets=["plan.methods=xception", "plan.train=synth-dfd", "plan.controls=false",
                                             "train.device=cpu", *sets])
    (job,) = make_plan(run, jobs_at_once=jobs_at_once)
    return job.job_id


def test_identity_holds_the_resolved_execution_settings() -> None:
    base = job_id("train.threads=1")
    assert job_id("train.threads=1", "train.channels_last=false") != base
    assert job_id("train.threads=2") != base
    assert job_id("train.threads=1", "train.precision=bf16") != base
    assert job_id("train.threads=1", "train.precision=fp32") == job_id("train.threads=1", "train.precision=auto")
    # threads = 0 is resolved: torch's default alone, a share of the cores when jobs run side by side
    assert job_id("train.threads=0") == job_id(f"train.threads={torch.get_num_threads()}")
    share = max(1, (os.cpu_count() or 1) // 2)
    assert job_id("train.threads=0", jobs_at_once=2) == job_id(f"train.threads={share}")
    # settings that change how a job runs but not its numbers stay out
    assert job_id("train.threads=1", "train.eval_batch_size=7", "train.log_every=3") == base


def test_a_job_run_before_in_the_same_process_does_not_change_the_next_identity() -> None:
    """Running a job sets torch's thread count to the job's; threads = 0 must still resolve to the default."""
    before = job_id("train.threads=0")
    default = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if default > 1 else 2)
        assert job_id("train.threads=0") == before
    finally:
        torch.set_num_threads(default)


def test_rerun_with_another_memory_format_or_thread_count_is_a_new_job(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    def run(*sets: str) -> str:
        assert main(["run", *QUICK, "--out", str(tmp_path), *(a for s in sets for a in ("--set", s))]) == 0
        return capsys.readouterr().out

    run("train.threads=1")
    assert "1 of 1 job(s) already finished" in run("train.threads=1")
    assert "already finished" not in run("train.threads=1", "train.channels_last=false")
    assert "already finished" not in run("train.threads=2")
    records = [json.loads((p / "config.json").read_text()) for p in sorted((tmp_path / "runs").iterdir())]
    assert len(records) == 3
    computes = sorted((r["identity"]["compute"]["channels_last"], r["identity"]["compute"]["threads"])
                      for r in records)
    assert computes == [(False, 1), (True, 1), (True, 2)]
    # each job ran with the thread count its identity names
    for record in records:
        assert record["provenance"]["device"] == f"cpu ({record['identity']['compute']['threads']} threads)"
    # the report cannot count three variants of one method, domain and seed as one: it says which setting
    # differs and how to keep them apart, instead of pooling them
    assert main(["report", "--out", str(tmp_path), "--no-progress", "--no-plots", "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert "both xception (main) trained on synth-dfd with seed 0" in err
    assert re.search(r"differ in compute\.(channels_last: \w+ vs \w+|threads: [12] vs [12])", err), err
    assert "its own results folder" in err and "Traceback" not in err
    # one variant per results folder reports as usual
    for folder in sorted((tmp_path / "runs").iterdir())[1:]:
        shutil.move(folder, tmp_path / folder.name)
    assert main(["report", "--out", str(tmp_path), "--no-progress", "--no-plots", "--bootstrap", "0"]) == 0
