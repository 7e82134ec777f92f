"""Command line: ``python -m bench list | data | run | status | report``.

Every mistake a user can make (unknown name, bad flag, malformed --set, missing file) ends in one line
on stderr that names the bad value and the fix, and exit code 2. A run in which some job failed exits
with 1 after the other jobs finished; an interrupted run exits with 130 and resumes when rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from bench.errors import BenchError, DataError, folder_problem

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    args.own_process = argv is None  # run from the command line, not called: the process ends with the command
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nInterrupted. Finished jobs and epochs are kept; run the same command again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED


# ------------------------------------------------------------------------------------------ commands
def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    what = args.what
    if what in ("methods", "all"):
        from bench.method import METHODS

        rows = [(e.name, ", ".join(sorted(e.tags)) or "main", e.obj.needs.describe(), e.obj.description)
                for e in METHODS.entries()]
        print(tabulate(rows, headers=["method", "tags", "needs", "description"]) + "\n")
    if what in ("datasets", "all"):
        from bench.config import build_config
        from bench.data.cache import is_built
        from bench.data.datasets import discover
        from bench.data.formats import FORMATS

        run = build_config(preset=args.preset)
        rows = []
        descriptions = discover(run.data)
        for desc in descriptions.values():
            try:  # one broken description is shown as such, not an end to the listing
                reason = FORMATS.get(desc.format)().missing(desc)
                cached = "yes" if reason is None and is_built(desc, run.data) else "no"
            except BenchError as exc:
                reason, cached = f"description error: {exc}", "no"
            present = "yes" if reason is None else f"no: {reason}"
            role = f"control of {desc.control_for}" if desc.is_control else ""
            size = desc.image_size or run.data.image_size
            rows.append((desc.name, desc.suite, desc.format, present, f"{cached} ({size} px)", role, desc.title))
        rows += [(name, "?", "?", f"no: BROKEN description: {message}", "no", "", "")
                 for name, message in descriptions.broken.items()]
        print(tabulate(rows, headers=["dataset", "suite", "format", "present", f"cached ({args.preset})",
                                      "role", "description"]) + "\n")
    if what in ("metrics", "all"):
        from bench.metrics import METRICS

        rows = [(e.name, e.obj.kind, e.obj.unit or "-", "higher" if e.obj.higher_is_better else "lower",
                 "yes" if e.obj.bootstrapped else "no", ", ".join(e.aliases), e.obj.description)
                for e in METRICS.entries()]
        print(tabulate(rows, headers=["metric", "kind", "unit", "better", "CI", "aliases", "description"]) + "\n")
    if what in ("presets", "all"):
        from bench.config import PRESET_HELP

        print(tabulate(list(PRESET_HELP.items()), headers=["preset", "what it is for"]) + "\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.backends import check_backend, execute
    from bench.config import to_toml
    from bench.device import resolve_device
    from bench.jobs import make_plan
    from bench.store import Store

    run = _run_config(args)
    if args.print_config:
        print(to_toml(_resolved_sections(run)), end="")
        return 0
    store = Store(args.out)
    require_folder(args.out, "--out", write=not args.dry_run, inside="runs")  # every mistake before any work
    check_backend(args.backend, args.scheduler)
    resolve_device(run.train.device)
    plan = make_plan(run, descriptions=_descriptions(run), jobs_at_once=args.jobs or 1)
    if args.dry_run:
        _print_plan(plan, store)
        return 0
    results = execute(plan, run=run, store=store, n_jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                      progress=not args.no_progress)
    failed = [r for r in results if r.status == "failed"]
    busy = [r for r in results if r.status == "busy"]
    done = len(results) - len(failed) - len(busy)
    print(f"{done} job(s) finished, {len(failed)} failed, {len(busy)} busy elsewhere; results in {store.runs}")
    for r in failed:
        print(f"  FAILED {r.job.label} [{r.job.job_id}]: {r.message}", file=sys.stderr)
    if failed:
        print(f"Details: {store.runs}/<job>/error.txt. Fix the cause and rerun the same command; finished "
              f"jobs are kept.", file=sys.stderr)
        return EXIT_USAGE if all(r.user_error for r in failed) else EXIT_FAILED
    if results or plan:
        print(f"Next: python -m bench report --out {args.out}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.jobs import make_plan
    from bench.store import Store

    run = _run_config(args)
    store = Store(args.out)
    require_folder(args.out, "--out", write=False, inside="runs")
    plan = make_plan(run, descriptions=_descriptions(run), jobs_at_once=args.jobs or 1)
    states = [store.state(j.job_id, list(j.tests)) for j in plan]
    rows = [(j.method, j.train, j.seed, j.role, s, j.job_id) for j, s in zip(plan, states, strict=True)]
    print(tabulate(rows, headers=["method", "train", "seed", "role", "state", "job"]))
    counts = {s: states.count(s) for s in ("done", "predict", "running", "incomplete", "pending")}
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" (of {len(plan)} jobs in {store.runs})")
    if counts["predict"]:
        print("'predict': finished, but some requested test domains (or the validation split) have no "
              "predictions yet; `bench run` adds them without retraining.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    with _collected_after_imports(args.own_process):
        from bench.metrics import METRICS
        from bench.postprocess import parse_postprocessors
        from bench.predictions import Selection, parse_formats
        from bench.report import make_report, report_folder

    METRICS.select(args.metrics)  # an unknown metric or format is reported before any file is read
    formats = parse_formats(args.formats)
    selection = Selection(methods=args.methods, train=args.train, test=args.test)
    require_folder(args.out, "--out", write=False)
    destination = report_folder(args.out, selection, args.report_dir)
    for inside in ("tables", "figures"):
        require_folder(destination, "--report-dir" if args.report_dir is not None else "--out", write=True,
                       inside=inside)
    make_report(args.out, metrics=args.metrics, threshold=args.threshold, policy=args.policy,
                min_group_size=args.min_group_size, baseline=args.baseline, n_boot=args.bootstrap,
                alpha=args.alpha, cluster=args.cluster, formats=formats, plots=not args.no_plots, seed=args.seed,
                selection=selection, report_dir=args.report_dir, progress=not args.no_progress,
                postprocess=parse_postprocessors(args.postprocess), postprocess_min_group=args.postprocess_min_group)
    return 0


@contextlib.contextmanager
def _collected_after_imports(own_process: bool) -> Iterator[None]:
    """In a process of its own (``own_process``), the imports inside run without garbage collection and all
    they leave alive is frozen: it lives until the process ends, and frozen it is left out of every later full
    collection, those of the report (and of the processes it forks, which then also keep those pages shared)
    and those at exit, which scanned it all again. On the default grid's report: the collections during the
    imports 0.1 s, the report's own 0.1 s, those at exit 0.2 s. Called in another program's process
    (``own_process`` false), its collector is left as it was."""
    if not own_process:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def cmd_data(args: argparse.Namespace) -> int:
    """`bench data check | build NAME...`: check a dataset's files and annotations, or build its frame cache;
    `bench data extract VIDEOS OUT`: face crops from videos."""
    from bench.config import build_config
    from bench.data.datasets import discover, select_datasets

    if args.action == "extract":
        return _data_extract(args)
    run = build_config(preset=args.preset, files=args.config or [], sets=list(args.set or []))
    _check_sections(run)
    descriptions = discover(run.data)
    names = select_datasets(args.names, descriptions, all_means=[run.data.suite])
    if args.action == "check":
        return _data_check(names, descriptions, run.data, args)
    return _data_build(names, descriptions, run.data, args)


def _data_check(names: list[str], descriptions: dict, data: object, args: argparse.Namespace) -> int:
    from bench.data.check import check_dataset

    failed = []
    for name in names:
        report = check_dataset(descriptions[name], data, full=args.full, sample=args.sample, workers=args.workers,
                               min_videos=args.min_videos, progress=not args.no_progress)
        print(report.render() + "\n")
        if report.errors:
            failed.append(f"{name}: {report.errors[0]}" + (f" (and {len(report.errors) - 1} more)"
                                                          if len(report.errors) > 1 else ""))
    if failed:
        raise DataError(f"data check found errors in {len(failed)} dataset(s); {'; '.join(failed)}")
    return 0


def _data_build(names: list[str], descriptions: dict, data: object, args: argparse.Namespace) -> int:
    from bench.data.cache import BuildOptions, ensure_cache_verbosely

    options = BuildOptions(workers=args.workers, skip_bad=args.skip_bad, progress=not args.no_progress)
    for name in names:
        ensure_cache_verbosely(descriptions[name], data, options=options)
    return 0


def _data_extract(args: argparse.Namespace) -> int:
    from bench.data.extract import ExtractOptions, extract_videos, find_videos

    videos = find_videos(args.videos)
    root = args.videos if args.videos.is_dir() else args.videos.parent
    options = ExtractOptions(frames=args.frames, margin=args.margin, size=args.size)
    frames = extract_videos(videos, args.out, options=options, workers=args.workers, progress=not args.no_progress,
                            root=root)
    done = frames["video"].nunique()
    print(f"{len(frames)} face crops of {done} of {len(videos)} video(s) in {args.out}; frames.csv lists them "
          f"({int((frames['detected'] == 0).sum())} with a box borrowed from a neighbouring frame)")
    if done < len(videos):
        print(f"{len(videos) - done} video(s) gave no crop (no face found or unreadable); see "
              f"{args.out / 'no_face.csv'}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------- helpers
def require_folder(path: Path, flag: str, *, write: bool, inside: str = "") -> None:
    """Refuse, before any work, a folder (``path``, or its subfolder ``inside``) that is a file or lies under
    one, or, when ``write``, one that cannot be created or written."""
    if problem := folder_problem(path / inside if inside else path, write=write):
        raise BenchError(f"{flag} {str(path)!r}: {problem}; give a folder you can write to.")


def _descriptions(run) -> dict:
    """The dataset descriptions, warning about each broken one (a run that does not use it goes on)."""
    from bench.data.datasets import discover

    descriptions = discover(run.data)
    for name, message in descriptions.broken.items():
        print(f"warning: dataset {name!r} is left out: {message}", file=sys.stderr)
    return descriptions


def _check_sections(run) -> None:
    from bench.config import check_sections
    from bench.method import METHODS

    check_sections(run, METHODS)


def _run_config(args: argparse.Namespace):
    from bench.config import build_config

    sets = list(args.set or [])
    for flag, key in (("methods", "plan.methods"), ("train", "plan.train"), ("test", "plan.test"),
                      ("device", "train.device")):
        value = getattr(args, flag, None)
        if value is not None:
            sets.append(f"{key}={_quoted(value)}")
    if args.seeds is not None:
        sets.append(f"plan.seeds={_parse_seeds(args.seeds)}")
    if args.no_controls:
        sets.append("plan.controls=false")
    return build_config(preset=args.preset, files=args.config or [], sets=sets)


def _resolved_sections(run) -> dict:
    """The configuration as it will be used: the sections plus each selected method's full config."""
    import dataclasses

    from bench.config import resolve_method_config, to_dict
    from bench.method import METHODS

    sections = {k: v for k, v in to_dict(run).items() if k in ("data", "train", "plan")}
    sections = {"preset": run.preset, **sections}
    for name in METHODS.select(run.plan.methods):
        sections[name] = dataclasses.asdict(resolve_method_config(METHODS.get(name).Config, run, name))
    return sections


def _print_plan(plan, store) -> None:
    from tabulate import tabulate

    rows = [(j.method, j.train, j.seed, j.role, ", ".join(j.tests), store.state(j.job_id, list(j.tests)),
             j.job_id) for j in plan]
    print(tabulate(rows, headers=["method", "train", "seed", "role", "test domains", "state", "job"]))
    print(f"\n{len(plan)} job(s); nothing was run (--dry-run).")


def _parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise BenchError(f"Bad --seeds {text!r}: write seed numbers and ranges, e.g. --seeds 0,1,2 or "
                             f"--seeds 0-4.")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi < lo:
            raise BenchError(f"Bad --seeds range {part!r}: the end is before the start.")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description="Fairness generalization benchmark for deepfake "
                     "detection: train every method on every domain, then report.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    default_out = os.environ.get("BENCH_OUT", "results")

    p = sub.add_parser("list", help="methods, datasets (and whether present), metrics, presets")
    p.add_argument("what", nargs="?", default="all", choices=["all", "methods", "datasets", "metrics", "presets"])
    p.add_argument("--preset", default="default", help="preset whose cache state `datasets` shows")
    p.set_defaults(handler=cmd_list)

    for name, handler, helptext in (("run", cmd_run, "train and predict every job of the plan"),
                                    ("status", cmd_status, "which jobs of a plan are done, incomplete, pending")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--methods", help="method names, globs, tags or 'all' (default: all main methods)")
        p.add_argument("--train", help="training domains: names, globs, a suite or 'all' (the preset's suite)")
        p.add_argument("--test", help="test domains (default 'all': every domain of the training suites)")
        p.add_argument("--seeds", help="training seeds, e.g. 0,1,2 or 0-4 (default 0)")
        p.add_argument("--preset", default="default", help="quick | default | paper (see `bench list presets`)")
        p.add_argument("--config", action="append", metavar="FILE.toml", help="config file (repeatable)")
        p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override one setting, e.g. train.epochs=3 or xception.lr=0.01 (repeatable)")
        p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
        p.add_argument("--no-controls", action="store_true",
                       help="skip the baseline on the bias-free control domains")
        p.add_argument("--out", type=Path, default=Path(default_out), help="results folder (default: results)")
        p.add_argument("--jobs", type=_positive_int, default=None,
                       help="jobs at a time (default: one per GPU when several are visible, else 1); on a CPU "
                            "it sets each job's share of the cores, which is part of the job's identity")
        if name == "run":
            p.add_argument("--backend", choices=["loky", "dask"], default="loky",
                           help="loky: processes on this machine; dask: a dask cluster (pip install -e '.[dask]')")
            p.add_argument("--scheduler", metavar="ADDRESS",
                           help="dask scheduler address (tcp://host:8786); without it a local dask cluster")
            p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
            p.add_argument("--print-config", action="store_true", help="print the resolved configuration")
            p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(handler=handler)

    p = sub.add_parser("data", help="check a dataset's files and annotations, or build its frame cache")
    data_sub = p.add_subparsers(dest="action", parser_class=_Parser, required=True)
    for action, helptext in (("check", "files present and decodable, labels, splits, group x label counts"),
                             ("build", "decode, resize and write the frame cache (parallel, resumable)")):
        q = data_sub.add_parser(action, help=helptext)
        q.add_argument("names", metavar="NAME", help="dataset names, globs or a suite (see `bench list datasets`)")
        q.add_argument("--workers", type=_non_negative_int, default=0,
                       help="processes decoding images (default 0: one per CPU core)")
        q.add_argument("--preset", default="default", help="preset whose data settings apply (cache size, folder)")
        q.add_argument("--config", action="append", metavar="FILE.toml", help="config file (repeatable)")
        q.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override one setting, e.g. data.cache_dir=/scratch/cache (repeatable)")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
        if action == "check":
            q.add_argument("--full", action="store_true", help="decode every frame, not a sample")
            q.add_argument("--sample", type=_positive_int, default=200, help="frames decoded without --full")
            q.add_argument("--min-videos", type=_positive_int, default=5,
                           help="flag group x label cells with fewer videos than this")
        else:
            q.add_argument("--skip-bad", action="store_true",
                           help="leave unreadable images out (listed in the cache) instead of failing")
        q.set_defaults(handler=cmd_data)
    q = data_sub.add_parser("extract", help="evenly spaced face crops from videos (optional extra 'extract')")
    q.add_argument("videos", type=Path, help="a video file or a folder searched for videos")
    q.add_argument("out", type=Path, help="folder for the crops and frames.csv")
    q.add_argument("--frames", type=_positive_int, default=32, help="evenly spaced frames per video (default 32)")
    q.add_argument("--margin", type=float, default=0.3, help="crop margin around the face box, per side (0.3)")
    q.add_argument("--size", type=_positive_int, default=256, help="side of the saved crops in pixels (256)")
    q.add_argument("--workers", type=_non_negative_int, default=0, help="processes (default 0: one per core)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(handler=cmd_data)

    p = sub.add_parser("report", help="tables, significance tests, figures and report.md from the predictions")
    p.add_argument("--out", type=Path, default=Path(default_out), help="results folder (default: results)")
    p.add_argument("--baseline", help="method the others are tested against (default: xception when present)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap replicates for CIs and paired tests (default 1000; 0: none)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level and test level (default 0.05)")
    p.add_argument("--cluster", default="video", choices=["video", "identity", "none"],
                   help="what the bootstrap resamples (default video: frames of a video are not independent)")
    p.add_argument("--formats", default="csv,md,tex", help="table formats, comma-separated (default csv,md,tex)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the bootstrap resamples (default 0)")
    p.add_argument("--threshold", type=float, default=0.5, help="P(fake) threshold for ACC and rates")
    p.add_argument("--policy", default="both-classes", choices=["both-classes", "defined"],
                   help="which groups enter a fairness gap (see docs/METRICS.md)")
    p.add_argument("--min-group-size", type=_positive_int, default=1, help="leave smaller groups out of gaps")
    p.add_argument("--metrics", default="all", help="metric names, aliases or globs (default: all)")
    p.add_argument("--postprocess", default="", metavar="NAME[,NAME]",
                   help="also report each method post-processed: per-group thresholds fitted on its validation "
                        "predictions (thr-fpr, thr-eo), as <method>+<NAME>")
    p.add_argument("--postprocess-min-group", type=_positive_int, default=10, metavar="N",
                   help="a group needs N reals and N fakes on the validation split for its own threshold; "
                        "smaller groups get the pooled one (default 10)")
    p.add_argument("--methods", default="all", help="report only these methods (names or globs, comma-separated)")
    p.add_argument("--train", default="all", help="only these training domains, e.g. synth-ff (the paper's protocol)")
    p.add_argument("--test", default="all", help="only these test domains")
    p.add_argument("--report-dir", type=Path, default=None,
                   help="where tables, figures and report.md go (default: the results folder; for a selection "
                        "made with --methods/--train/--test, OUT/reports/<selection>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_report)
    return parser


if __name__ == "__main__":
    sys.exit(main())
