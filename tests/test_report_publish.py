"""A report replaces the previous one only once it is complete: its figures (drawn while it computes) and
tables go to a folder of its own first, and a report that fails or is interrupted leaves the previous
report's tables, figures and report.md as they were, and no folder of its own behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import render
from bench.report import make_report

GOLDEN_RESULTS = Path(__file__).parent / "fixtures" / "golden_results"
QUICK = {"n_boot": 20, "progress": False, "echo": False}


def report_files(out: Path) -> dict[str, bytes]:
    """Every file of the report in the results folder ``out`` (tables, figures, report.md) by relative path."""
    files = [out / "report.md", *(out / "tables").rglob("*"), *(out / "figures").rglob("*")]
    return {str(p.relative_to(out)): p.read_bytes() for p in files if p.is_file()}


@pytest.fixture
def reported(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A results folder with a complete report (figures included), and that report's files."""
    out = tmp_path / "results"
    shutil.copytree(GOLDEN_RESULTS, out)
    make_report(out, **QUICK)
    files = report_files(out)
    assert any(name.startswith("figures/") for name in files) and "tables/leaderboard.csv" in files
    return out, files


def test_an_interrupted_report_leaves_the_previous_one_as_it_was(reported: tuple[Path, dict[str, bytes]],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out, before = reported
    real = render.report_markdown
    seen: list[str] = []

    def interrupted(**kwargs: object) -> str:  # every table and figure of the new report is written by now
        (incoming,) = out.glob(".incoming-*")
        seen.extend(str(p.relative_to(incoming)) for p in incoming.rglob("*.*"))
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "report_markdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_report(out, threshold=0.3, **QUICK)  # another threshold: other group rates, tables and bars
    assert any(s.startswith("figures/") for s in seen) and any(s.startswith("tables/") for s in seen)
    assert report_files(out) == before
    assert not list(out.glob(".incoming-*"))

    monkeypatch.setattr(render, "report_markdown", real)  # the same report, not interrupted: it does replace
    make_report(out, threshold=0.3, **QUICK)
    after = report_files(out)
    assert after.keys() == before.keys()
    assert after["tables/group_rates.csv"] != before["tables/group_rates.csv"]
    assert after["figures/group_rates.png"] != before["figures/group_rates.png"]
    assert not list(out.glob(".incoming-*"))


def test_what_a_killed_report_left_is_removed_and_a_running_ones_is_not(
        reported: tuple[Path, dict[str, bytes]]) -> None:
    out, _ = reported
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    killed = out / f".incoming-{int(gone.stdout)}" / "figures"  # its process has ended
    running = out / f".incoming-{os.getppid()}" / "figures"  # this test's parent: alive
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "roc_x.png").write_bytes(b"half a figure")
    make_report(out, plots=False, **QUICK)
    assert not killed.parent.exists() and (running / "roc_x.png").exists()


def test_a_stale_rendering_of_a_table_now_too_long_to_read_is_removed(
        reported: tuple[Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The new tables are moved into place beside the old files: a Markdown or LaTeX copy that an earlier
    report wrote of a table that is now CSV only (`render.readable`) goes."""
    out, before = reported
    assert "tables/significance.md" in before
    monkeypatch.setattr(render, "READING_ROWS", 3)
    make_report(out, plots=False, **QUICK)
    assert not (out / "tables" / "significance.md").exists() and not (out / "tables" / "significance.tex").exists()
    assert (out / "tables" / "significance.csv").read_bytes() == before["tables/significance.csv"]
