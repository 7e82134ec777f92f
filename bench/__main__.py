"""Command line: ``python -m bench list | run | status | report``.

Every mistake a user can make (unknown name, bad flag, malformed --set, missing file) ends in one line
on stderr that names the bad value and the fix, and exit code 2. A run in which some job failed exits
with 1 after the other jobs finished; an interrupted run exits with 130 and resumes when rerun.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bench.errors import BenchError

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
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
        from bench.data.datasets import FORMATS, discover

        run = build_config(preset=args.preset)
        rows = []
        for desc in discover(run.data).values():
            reason = FORMATS.get(desc.format)().missing(desc)
            present = "yes" if reason is None else f"no: {reason}"
            cached = "yes" if reason is None and is_built(desc, run.data) else "no"
            role = f"control of {desc.control_for}" if desc.is_control else ""
            rows.append((desc.name, desc.suite, desc.format, present, cached, role, desc.title))
        print(tabulate(rows, headers=["dataset", "suite", "format", "present", f"cached ({args.preset})",
                                      "role", "description"]) + "\n")
    if what in ("metrics", "all"):
        from bench.metrics import METRICS

        rows = [(e.name, e.obj.kind, e.obj.unit or "-", "higher" if e.obj.higher_is_better else "lower",
                 ", ".join(e.aliases), e.obj.description) for e in METRICS.entries()]
        print(tabulate(rows, headers=["metric", "kind", "unit", "better", "aliases", "description"]) + "\n")
    if what in ("presets", "all"):
        from bench.config import PRESET_HELP

        print(tabulate(list(PRESET_HELP.items()), headers=["preset", "what it is for"]) + "\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.config import to_toml
    from bench.jobs import execute, make_plan
    from bench.store import Store

    run = _run_config(args)
    if args.print_config:
        print(to_toml(_resolved_sections(run)), end="")
        return 0
    plan = make_plan(run)
    store = Store(args.out)
    if args.dry_run:
        _print_plan(plan, store)
        return 0
    results = execute(plan, run=run, store=store, n_jobs=args.jobs, progress=not args.no_progress)
    failed = [r for r in results if r.status == "failed"]
    busy = [r for r in results if r.status == "busy"]
    done = len(results) - len(failed) - len(busy)
    print(f"{done} job(s) finished, {len(failed)} failed, {len(busy)} busy elsewhere; results in {store.runs}")
    for r in failed:
        print(f"  FAILED {r.job.label} [{r.job.job_id}]: {r.message}", file=sys.stderr)
    if failed:
        print(f"Details: {store.runs}/<job>/error.txt. Fix the cause and rerun the same command; finished "
              f"jobs are kept.", file=sys.stderr)
        return EXIT_FAILED
    if results or plan:
        print(f"Next: python -m bench report --out {args.out}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.jobs import make_plan
    from bench.store import Store

    run = _run_config(args)
    plan = make_plan(run)
    store = Store(args.out)
    states = [store.state(j.job_id, list(j.tests)) for j in plan]
    rows = [(j.method, j.train, j.seed, j.role, s, j.job_id) for j, s in zip(plan, states, strict=True)]
    print(tabulate(rows, headers=["method", "train", "seed", "role", "state", "job"]))
    counts = {s: states.count(s) for s in ("done", "predict", "running", "incomplete", "pending")}
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" (of {len(plan)} jobs in {store.runs})")
    if counts["predict"]:
        print("'predict': finished, but some requested test domains have no predictions yet; `bench run` adds "
              "them without retraining.")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.metrics import METRICS
    from bench.report import make_report

    METRICS.select(args.metrics)  # an unknown metric is reported before any file is read
    make_report(args.out, metrics=args.metrics, threshold=args.threshold, policy=args.policy,
                min_group_size=args.min_group_size, progress=not args.no_progress)
    return 0


# ------------------------------------------------------------------------------------------- helpers
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
        if name == "run":
            p.add_argument("--jobs", type=_positive_int, default=1, help="jobs in parallel processes")
            p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
            p.add_argument("--print-config", action="store_true", help="print the resolved configuration")
            p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(handler=handler)

    p = sub.add_parser("report", help="metrics and leaderboards from the saved predictions")
    p.add_argument("--out", type=Path, default=Path(default_out), help="results folder (default: results)")
    p.add_argument("--threshold", type=float, default=0.5, help="P(fake) threshold for ACC and rates")
    p.add_argument("--policy", default="both-classes", choices=["both-classes", "defined"],
                   help="which groups enter a fairness gap (docs: METRICS.md)")
    p.add_argument("--min-group-size", type=_positive_int, default=1, help="leave smaller groups out of gaps")
    p.add_argument("--metrics", default="all", help="metric names, aliases or globs (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_report)
    return parser


if __name__ == "__main__":
    sys.exit(main())
