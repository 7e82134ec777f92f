"""`bench report` run from the command line freezes what its imports left alive (the garbage collector then
never scans it again, in the report, its forked processes or at exit); called from another program's process
(here: pytest) it leaves that process's collector as it was."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.__main__ import main

GOLDEN_RESULTS = Path(__file__).parent / "fixtures" / "golden_results"
ARGS = ["--no-plots", "--bootstrap", "0", "--formats", "csv", "--no-progress"]


def test_a_report_called_in_this_process_leaves_its_collector_alone(tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(GOLDEN_RESULTS, out)
    before = gc.get_freeze_count()
    assert main(["report", "--out", str(out), *ARGS]) == 0
    assert gc.get_freeze_count() == before and gc.isenabled()


def test_the_report_command_freezes_what_its_imports_left(tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(GOLDEN_RESULTS, out)
    script = ("import atexit, gc, sys\n"
              "atexit.register(lambda: print('frozen', gc.get_freeze_count(), gc.isenabled()))\n"
              f"sys.argv = ['bench', 'report', '--out', {str(out)!r}, *{ARGS!r}]\n"
              "from bench.__main__ import main\n"
              "sys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    _, frozen, enabled = done.stdout.strip().splitlines()[-1].split()
    assert int(frozen) > 10_000 and enabled == "True"  # pandas, numpy and scipy's objects at least; collecting again


def test_the_report_writes_its_files_without_syncing_them(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The report's files are derived from the predictions (`bench.store.atomic_write_bytes`): written
    atomically, never flushed to the disk one by one."""
    out = tmp_path / "results"
    shutil.copytree(GOLDEN_RESULTS, out)
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    args = [a for a in ARGS if a not in ("--formats", "csv")]  # every format
    assert main(["report", "--out", str(out), "--report-dir", str(tmp_path / "report"), *args]) == 0
    assert {p.suffix for p in (tmp_path / "report" / "tables").iterdir()} == {".csv", ".md", ".tex"}
    assert (tmp_path / "report" / "report.md").exists() and synced == []
