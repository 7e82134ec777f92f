"""`bench report`: from the saved predictions to tables, significance tests, figures and report.md.

Reads only the results folder (no torch, no retraining; `bench.plots` is imported only for figures).
This module puts the pieces together, in order:

1. `bench.predictions`: the selected predictions of the finished jobs are read (no other), and the files
   grouped into *test sets* (the predictions of one test domain over the same samples);
2. `bench.tidy`: the point value of every metric (the tidy table, ``metrics.csv``);
3. `bench.resampling`: per test set, one cluster bootstrap drawn *once* and shared by every job
   predicting it, every bootstrapped metric evaluated on all replicates, DeLong's pieces per file;
4. `bench.significance` (DeLong, paired bootstrap, sign-flip, Wilcoxon, the pooled test, Holm and BH;
   the power table; Friedman), then `bench.tables` (leaderboards ranked by those tests, per-pair tables,
   group rates, groups, controls, provenance, seeds);
5. `bench.render` writes every table (CSV first, then Markdown and LaTeX with the same numbers) and
   report.md, and `bench.plots` draws the figures, each with its caption.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from bench import render, significance, tables
from bench.errors import BenchError
from bench.health import chance_notes
from bench.metrics import ATTRIBUTES
from bench.predictions import (
    EVERYTHING,
    FORMATS,
    PredictionFile,
    Report,
    ReportSettings,
    Selection,
    group_test_sets,
    load_predictions,
)
from bench.resampling import bootstrap_columns, resample
from bench.store import RunRecord, Store, atomic_write_text, move_into
from bench.tidy import Tidy, tidy_metrics

__all__ = ["build_report", "make_report", "report_folder"]

DEFAULT_BASELINE = "xception"


def make_report(out: str | Path, *, metrics: str = "all", threshold: float = 0.5, policy: str = "both-classes",
                min_group_size: int = 1, baseline: str | None = None, n_boot: int = 1000, alpha: float = 0.05,
                cluster: str = "video", formats: Sequence[str] = FORMATS, plots: bool = True, seed: int = 0,
                selection: Selection = EVERYTHING, report_dir: str | Path | None = None, progress: bool = True,
                echo: bool = True, postprocess: Sequence[str] = (),
                postprocess_min_group: int = 10) -> dict[str, pd.DataFrame]:
    """Write every table (``formats``), every figure (``plots``) and report.md for the results folder ``out``
    (or the part of it that ``selection`` keeps); print a compact leaderboard (``echo``). Returns the tables
    by name (as written to CSV)."""
    return build_report(out, settings=ReportSettings(
        metrics=metrics, threshold=threshold, policy=policy, min_group_size=min_group_size, baseline=baseline,
        n_boot=n_boot, alpha=alpha, cluster=cluster, formats=tuple(formats), plots=plots, seed=seed,
        selection=selection, postprocess=tuple(postprocess), postprocess_min_group=postprocess_min_group),
        report_dir=report_dir, progress=progress, echo=echo).tables


def report_folder(out: str | Path, selection: Selection, report_dir: str | Path | None = None) -> Path:
    """Where a report goes: ``report_dir`` when given, else the results folder itself for a report of
    everything and ``<out>/reports/<selection>`` for a part."""
    if report_dir is not None:
        return Path(report_dir)
    return Path(out) if selection.everything else Path(out) / "reports" / selection.folder_name()


def build_report(out: str | Path, *, settings: ReportSettings, report_dir: str | Path | None = None,
                 progress: bool = True, echo: bool = True) -> Report:
    """`make_report`, returning the full `Report`.

    The figures are drawn while the report computes, and the tables written while the last figures are
    drawn, into a folder of this report's own (`_incoming`); they are moved into ``tables/`` and ``figures/``
    only once the report is complete, just before report.md. So a report that fails or is interrupted
    leaves the previous report's tables, figures and report.md as they were."""
    t0 = time.perf_counter()
    store = Store(out)
    destination = Store(report_folder(out, settings.selection, report_dir))  # its tables/, figures/
    incoming = _incoming(destination.root)
    early = _early_figures(incoming.figures) if settings.plots else None
    try:
        return _build(store, destination, incoming, settings, early, t0=t0, progress=progress, echo=echo)
    except BaseException:
        if early is not None:
            early.cancel()
        raise
    finally:
        shutil.rmtree(incoming.root, ignore_errors=True)


def _incoming(root: Path) -> Store:
    """Where this report writes its tables and figures until it is complete: a hidden folder in the report's
    folder (so the final moves are renames within one file system), named after this process. Those that a
    killed report left (their process is gone) are removed first."""
    for left in root.glob(".incoming-*"):
        pid = left.name.removeprefix(".incoming-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    return Store(root / f".incoming-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _publish(incoming: Store, destination: Store, tables: Sequence[render.Table]) -> None:
    """Move the complete report's tables and figures into place (each file a rename), and remove the stale
    renderings an earlier report left beside them (`render.stale_renderings`)."""
    for folder, target in ((incoming.tables, destination.tables), (incoming.figures, destination.figures)):
        if folder.is_dir():
            move_into(sorted(folder.iterdir()), target)
    for path in render.stale_renderings(tables, destination.tables):
        path.unlink(missing_ok=True)


def _build(store: Store, destination: Store, incoming: Store, settings: ReportSettings, early: Any, *, t0: float,
           progress: bool, echo: bool) -> Report:
    """`build_report` once the figure processes (``early``, None without figures) are started."""
    loaded = load_predictions(store, progress=progress, selection=settings.selection)
    files, fits, warnings = _postprocessed(loaded, settings)
    runs = list({f.run.job_id: f.run for f in files}.values())  # the selected finished jobs, in store order
    tidy = tidy_metrics(files, settings)
    baseline, baseline_warnings = _baseline(tidy, settings.baseline)
    if early is not None:  # the settings are checked: the ROC grids start, beside the bootstrap
        early.send({"files": files})
    warnings += baseline_warnings
    test_sets, set_warnings = group_test_sets(files, cluster=settings.cluster)
    warnings += set_warnings + _balance_warnings(tidy) + data_notes(runs) + chance_notes(loaded, alpha=settings.alpha)
    with threadpool_limits(1):  # small matrix products: BLAS threads only contend on a busy machine
        resampled = resample(files, test_sets, bootstrap_columns(tidy), settings, progress=progress)
    # The tables the heatmaps and group-rate bars need go to the figure processes as soon as the bootstrap
    # (which keeps both cores busy) is done: they draw while this process runs the tests on one core.
    ready = {"pairs": tables.pair_table(tidy), "friedman": significance.friedman_table(tidy, alpha=settings.alpha),
             "group_rates": tables.group_rates(tidy, files, resampled, threshold=settings.threshold,
                                               alpha=settings.alpha)}
    if early is not None:
        early.send(ready)
    sig = significance.significance(tidy, resampled, test_sets, baseline=baseline, alpha=settings.alpha)
    board = tables.leaderboard(tidy, resampled, alpha=settings.alpha, significance=sig)
    if early is not None:  # the Pareto plot and the CD diagrams need only the leaderboard now
        early.send({"board": board})
    frames = _tables(tidy, board, sig, runs, settings, ready)
    if fits is not None:
        from bench.postprocess import effect_table

        effect = effect_table(frames["significance"], fits, tidy, resampled, alpha=settings.alpha)
        frames |= {"postprocess": fits, "postprocess_effect": effect}
    if early is not None:  # the figures these tables complete are drawn while the tables are written
        early.send({**frames, "board": board})
    rendered = render.render_tables(frames)
    render.write_tables(list(rendered.values()), incoming.tables, settings.formats)
    drawn = _figures(frames, board, files, incoming.figures, early) if settings.plots else []
    figures = [f._replace(paths=[destination.figures / p.name for p in f.paths]) for f in drawn]  # once moved
    report = Report(settings=settings, tables=frames, leaderboard_long=board,
                    figures={f.name: f.paths for f in figures}, warnings=warnings,
                    path=destination.root / "report.md", seconds=0.0, test_sets=test_sets, resampled=resampled,
                    results=store.root)
    detection = [c for c in dict.fromkeys(board["column"]) if "/" not in c]
    text = render.report_markdown(
        settings=settings, tables=rendered, tidy=tidy.frame, runs=runs, baseline=baseline, warnings=warnings,
        figures=figures, results=report.results, path=report.path,
        detection=tables.wide_leaderboard(board, detection) if detection else None)
    _publish(incoming, destination, list(rendered.values()))  # the report is complete
    atomic_write_text(report.path, text, durable=False)
    report.seconds = time.perf_counter() - t0
    if echo:
        _echo(report, destination)
    return report


def _postprocessed(files: list[PredictionFile],
                   settings: ReportSettings) -> tuple[list[PredictionFile], pd.DataFrame | None, list[str]]:
    """``files`` and, for each of ``settings.postprocess``, every main job's test-domain files post-processed
    (`bench.postprocess`); what each fit did (None without post-processing) and the jobs left out."""
    if not settings.postprocess:
        return files, None, []
    from bench.postprocess import expand

    runs = list({f.run.job_id: f.run for f in files}.values())
    domains: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    for f in files:
        domains.setdefault(f.run.job_id, []).append((f.domain, f.frame))
    expanded = expand(runs, domains, settings.postprocess, min_group_size=settings.postprocess_min_group,
                      seed=settings.seed, threshold=settings.threshold)
    files = files + [PredictionFile(run=run, domain=domain, frame=frame) for run, domain, frame in expanded.files]
    for i, f in enumerate(files):
        f.index = i
    return files, expanded.fits, expanded.warnings


def _baseline(tidy: Tidy, requested: str | None) -> tuple[str | None, list[str]]:
    methods = tidy.methods
    if requested is not None:
        if requested not in methods:
            raise BenchError(f"--baseline {requested!r} has no finished runs in this results folder; methods "
                             f"there: {', '.join(methods) or '(none)'}.")
        return requested, []
    if DEFAULT_BASELINE in methods:
        return DEFAULT_BASELINE, []
    if len(methods) > 1:
        return None, [f"No baseline: {DEFAULT_BASELINE!r} is not among the methods; give --baseline NAME for the "
                      f"'vs baseline' comparisons (pairwise comparisons are made regardless)."]
    return None, []


def data_notes(runs: list[RunRecord]) -> list[str]:
    """How the jobs' data were read (rows dropped as duplicates or leaks, merged groups), as the caches noted
    it and config.json recorded it: once per dataset and note."""
    notes: dict[str, None] = {}
    for run in runs:
        data, predictions = run.config.get("data", {}), run.config.get("predictions", {})
        pairs = [(data.get("train", {}).get("name"), data.get("train", {})), *predictions.items()]
        for name, entry in pairs:
            for note in entry.get("data_notes", []) if isinstance(entry, dict) else []:
                notes[f"{name}: {note}"] = None
    return list(notes)


def _balance_warnings(tidy: Tidy) -> list[str]:
    out = []
    for method, rows in tidy.main.groupby("method", sort=True):
        seeds_per_pair = rows.groupby(["train", "test"])["seed"].nunique()
        if seeds_per_pair.nunique() > 1:
            out.append(f"{method}: train -> test pairs have different numbers of seeds "
                       f"({seeds_per_pair.min()}-{seeds_per_pair.max()}); per-seed averages cover different pairs.")
    return out


def _tables(tidy: Tidy, board: pd.DataFrame, sig: pd.DataFrame, runs: list[RunRecord], settings: ReportSettings,
            ready: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every table of the report by name, in the order they are written (``ready``: those made before)."""
    frames = {"metrics": tidy.public(), "leaderboard": tables.wide_leaderboard(board)}
    for attribute in ATTRIBUTES:
        chosen = tables.attribute_columns(board, attribute)
        if len(chosen) > 1:
            frames[f"leaderboard_{attribute}"] = tables.wide_leaderboard(board, chosen, prefix=False)
    frames |= {
        "pairs": ready["pairs"],
        "paper_pairs": tables.paper_table(tidy, sig),
        "group_rates": ready["group_rates"],
        "significance": sig,
        "power": significance.power_table(sig, alpha=settings.alpha),
        "friedman": ready["friedman"],
        "groups": tables.groups_table(tidy),
        "controls": tables.control_table(tidy, runs),
        "provenance": tables.provenance_table(runs),
        "seeds": tables.seeds_table(tidy),
    }
    return frames


def _early_figures(folder: Path) -> Any:
    """Start the figure processes, which import the drawing libraries while the report reads the
    predictions and then draw each figure as soon as its inputs are sent (matplotlib is imported only for
    figures, and only there)."""
    from bench import plots

    return plots.start_early_figures({}, folder=folder)


def _figures(frames: dict[str, pd.DataFrame], board: pd.DataFrame, files: list[PredictionFile],
             folder: Path, early: Any = None) -> list[render.FigureSection]:
    """Every registered figure, each with its caption; those ``early`` started are collected from it."""
    from bench import plots

    drawn = plots.make_figures({**frames, "board": board, "files": files}, folder=folder, early=early)
    return [render.FigureSection(name, plots.caption(name), paths) for name, paths in drawn.items()]


def _echo(report: Report, destination: Store) -> None:
    """The compact leaderboard and where everything went, printed at the end of ``bench report``."""
    print(render.terminal_summary(report.tables["pairs"], report.tables["controls"]))
    formats = report.settings.formats
    written = ", ".join(f"{name}.csv" for name in report.tables) if "csv" in formats else "(no CSV)"
    readings = [f".{f}" for f in formats if f != "csv"]
    also = f" (+ {', '.join(readings)})" if readings else ""
    print(f"\nTables written to {destination.tables}: {written}{also}")
    long = [f"{name} ({len(frame):,} rows)" for name, frame in report.tables.items() if not render.readable(frame)]
    if readings and long:
        print(f"CSV only, too long to read as {'/'.join(readings)}: {', '.join(long)}")
    if report.figures:
        print(f"Figures written to {destination.figures}: {sum(len(v) for v in report.figures.values())} PNG file(s)")
    print(f"Report: {report.path} ({report.seconds:.1f} s)")
    note = render.seed_note(report.tables["metrics"])
    if note:
        print(f"note: {note}")
    for warning in report.warnings:
        print(f"note: {warning}")
