"""What a report reads and what it returns: the selection and settings, the prediction files grouped into
test sets, the resampled values, and the finished `Report`.

`load_predictions` reads the finished jobs' predictions of the part of the results folder a report covers
(`Selection.keep`; rows sorted by sample id), and `group_test_sets` groups the files of one test
domain over the same samples into a `TestSet` (row i is the same frame for every method), which the
bootstrap resamples once for every file on it. Everything here is data and reading; the numbers are
computed by `bench.tidy`, `bench.resampling`, `bench.tables` and `bench.significance`, put together by
`bench.report`. No torch.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bench.bootstrap import ClusterBootstrap
from bench.errors import BenchError
from bench.stats import DeLongParts
from bench.store import RunRecord, Store, read_prediction_files

FORMATS = ("csv", "md", "tex")
CLUSTERS = ("video", "identity", "none")


@dataclass(frozen=True)
class Selection:
    """Which predictions a report covers: comma-separated names or globs of methods, training domains and
    test domains (``all``: every one in the results folder). A report of a selection is written to its own
    folder (``reports/<name>``), so the report of the whole folder is never overwritten by a part of it."""

    methods: str = "all"
    train: str = "all"
    test: str = "all"

    @property
    def everything(self) -> bool:
        return all(_patterns(v) is None for v in (self.methods, self.train, self.test))

    def describe(self) -> str:
        parts = [f"{flag} {value}" for flag, value in self._flags() if _patterns(value) is not None]
        return ", ".join(parts) or "everything in the results folder"

    def folder_name(self) -> str:
        """``train-synth-ff_methods-pg-fdd+xception``: the selection as a folder name."""
        parts = [f"{flag.removeprefix('--')}-{'+'.join(_patterns(value))}" for flag, value in self._flags()
                 if _patterns(value) is not None]
        return re.sub(r"[^A-Za-z0-9._+-]", "", "_".join(parts).replace("*", "x")) or "all"

    def keep(self, items: list[Any], *, key: Callable[[Any], tuple[str, str, str]]) -> list[Any]:
        """The items whose ``key`` (method, training domain, test domain) is selected; a pattern that
        matches nothing there is a `BenchError` naming what there is."""
        keys = [key(item) for item in items]
        for flag, value, names in (("--methods", self.methods, {m for m, _, _ in keys}),
                                   ("--train", self.train, {t for _, t, _ in keys}),
                                   ("--test", self.test, {d for _, _, d in keys})):
            for pattern in _patterns(value) or ():
                if not fnmatch.filter(names, pattern):
                    raise BenchError(f"{flag} {pattern!r} matches nothing in this results folder; there: "
                                     f"{', '.join(sorted(names))}.")
        kept = [item for item, (method, train, test) in zip(items, keys, strict=True)
                if _selected(method, self.methods) and _selected(train, self.train) and _selected(test, self.test)]
        if not kept:
            raise BenchError(f"No predictions match {self.describe()}; widen the selection.")
        return kept

    def _flags(self) -> list[tuple[str, str]]:
        return [("--methods", self.methods), ("--train", self.train), ("--test", self.test)]


EVERYTHING = Selection()


def _patterns(value: str) -> list[str] | None:
    """The comma-separated patterns of a selection flag; None for ``all`` (or nothing given)."""
    patterns = [p.strip() for p in value.split(",") if p.strip()]
    return None if not patterns or "all" in patterns else patterns


def _selected(name: str, value: str) -> bool:
    patterns = _patterns(value)
    return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True)
class ReportSettings:
    """What a report computes; every field is printed into report.md."""

    metrics: str = "all"
    threshold: float = 0.5
    policy: str = "both-classes"
    min_group_size: int = 1
    baseline: str | None = None  # None: "xception" when present
    n_boot: int = 1000
    alpha: float = 0.05
    cluster: str = "video"
    formats: tuple[str, ...] = FORMATS
    plots: bool = True
    seed: int = 0
    selection: Selection = EVERYTHING
    postprocess: tuple[str, ...] = ()  # bench.postprocess names: methods also reported as <method>+<name>
    postprocess_min_group: int = 10  # reals and fakes a validation group needs for its own threshold

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise BenchError(f"Unknown cluster unit {self.cluster!r}; expected one of: {', '.join(CLUSTERS)}.")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise BenchError(f"Unknown format(s) {', '.join(map(repr, unknown)) or '(none given)'} in --formats; "
                             f"choose from: {', '.join(FORMATS)} (comma-separated).")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise BenchError(f"--bootstrap must be a whole number >= 0 (0: no bootstrap); got {self.n_boot!r}.")
        smallest = self.postprocess_min_group
        if isinstance(smallest, bool) or not isinstance(smallest, int) or smallest < 1:
            raise BenchError(f"--postprocess-min-group must be a whole number >= 1; got {smallest!r}.")
        if not (isinstance(self.alpha, float | int) and 0.0 < self.alpha < 0.5):
            raise BenchError(f"--alpha must be a number between 0 and 0.5, e.g. 0.05; got {self.alpha!r}.")


def parse_formats(text: str) -> tuple[str, ...]:
    """``"csv,md"`` -> ("csv", "md"), validated (a `BenchError` names an unknown format)."""
    formats = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    ReportSettings(formats=formats)
    return formats


# ============================================================================================ loading
@dataclass(eq=False)
class PredictionFile:
    """One job's predictions on one test domain, rows sorted by sample id (aligned with its test set)."""

    run: RunRecord
    domain: str
    frame: pd.DataFrame
    test_set: str = ""
    index: int = 0

    @property
    def keys(self) -> dict[str, Any]:
        return {"method": self.run.method, "role": self.run.role, "train": self.run.train, "test": self.domain,
                "seed": self.run.seed}

    @property
    def scope(self) -> str:
        return "intra" if self.domain == self.run.train else "cross"


@dataclass(eq=False)
class TestSet:
    """The samples of one test domain that a group of files all predict, with its resampling."""

    __test__ = False  # not a pytest test class, whatever its name

    key: str
    domain: str
    reference: pd.DataFrame
    clusters: np.ndarray
    files: list[PredictionFile] = field(default_factory=list)
    boot: ClusterBootstrap | None = None


def load_predictions(store: Store, *, progress: bool = True,
                     selection: Selection = EVERYTHING) -> list[PredictionFile]:
    """Every finished job's prediction files that ``selection`` keeps, read and sorted by sample id. Files it
    leaves out are neither read nor checked: a stale one there does not stop the report of the rest."""
    runs = store.finished_runs()
    if not runs:
        unfinished = store.unfinished_runs()
        hint = (f" ({len(unfinished)} unfinished job folder(s) there: rerun `bench run` to finish them)"
                if unfinished else "")
        raise BenchError(f"No finished runs in {store.runs}{hint}; run `python -m bench run` first, or point "
                         f"--out at the results folder.")
    pending = [(run, domain, path) for run in runs for domain, path in run.prediction_files().items()]
    pending = selection.keep(pending, key=lambda p: (p[0].method, p[0].train, p[1]))
    refuse_stale(pending, store)
    refuse_ambiguous(list({run.job_id: run for run, _, _ in pending}.values()), store)  # before any reading
    with tqdm(total=len(pending), desc="read", unit="file", disable=not progress, leave=False) as bar:
        frames = read_prediction_files([path for _, _, path in pending], done=bar.update)
    files = []
    for (run, domain, _), frame in zip(pending, frames, strict=True):
        if not frame["sample"].is_monotonic_increasing:  # most files are written in sample order already
            frame = frame.sort_values("sample", kind="stable", ignore_index=True)
        files.append(PredictionFile(run=run, domain=domain, frame=frame))
    for i, f in enumerate(files):
        f.index = i
    return files


def refuse_stale(pending: list[tuple[RunRecord, str, Path]], store: Store) -> None:
    """A `BenchError` naming every prediction whose data changed since it was made (or that its job's record
    does not list), and the command that predicts it again; a report never mixes old and new data silently."""
    from bench.data.datasets import discover
    from bench.freshness import CurrentData, data_config, stale_reason

    seen: dict[str, tuple[dict, CurrentData | None]] = {}
    stale = []
    for run, domain, _ in pending:
        data = data_config(run.config)
        key = json.dumps(run.config.get("config", {}).get("data"), sort_keys=True, default=str)
        if key not in seen:
            seen[key] = (discover(data), CurrentData(data)) if data is not None else ({}, None)
        descriptions, current = seen[key]
        entry = (run.config.get("predictions") or {}).get(domain)
        desc = descriptions.get(domain)
        why = stale_reason(entry, desc, current) if desc is not None and current is not None else (
            "its predictions file is not in the job's record" if entry is None else None)
        if why:
            stale.append((run, domain, why))
    if not stale:
        return
    run, domain, why = stale[0]
    more = f" (and {len(stale) - 1} more: {', '.join(f'{r.job_id}/{d}' for r, d, _ in stale[1:4])}" + (
        ", ..." if len(stale) > 4 else "") + ")" if len(stale) > 1 else ""
    preset = run.config.get("config", {}).get("preset", "default")
    raise BenchError(f"Job {run.job_id}: the predictions of {domain!r} are stale: {why}{more}. Rerun the `bench run` "
                     f"command that made them (e.g. python -m bench run --out {store.root} --preset {preset} "
                     f"--methods {run.method} --train {run.train} --seeds {run.seed} with its other settings): it "
                     f"predicts them again from the saved model.pt, without retraining.")


def refuse_ambiguous(runs: list[RunRecord], store: Store) -> None:
    """A `BenchError` when two finished jobs are the same method, role, training domain and seed but not the
    same job (another thread count, memory format, precision or method setting names a new job): the report
    counts each of those once, and pooling both would count one method's variants as one method."""
    first: dict[tuple[str, str, str, int], RunRecord] = {}
    for run in runs:
        key = (run.method, run.role, run.train, run.seed)
        other = first.setdefault(key, run)
        if other is run:
            continue
        a, b = _flat(other.config.get("identity", {})), _flat(run.config.get("identity", {}))
        diff = [f"{k}: {a.get(k, '(none)')!r} vs {b.get(k, '(none)')!r}" for k in sorted(a.keys() | b.keys())
                if a.get(k) != b.get(k)]
        why = f"they differ in {'; '.join(diff[:4])}" + (" ..." if len(diff) > 4 else "") if diff else (
            "their records name the same settings (a copied folder?)")
        raise BenchError(f"Jobs {other.job_id} and {run.job_id} in {store.runs} are both {run.method} ({run.role}) "
                         f"trained on {run.train} with seed {run.seed}, and {why}. A report counts each method, "
                         f"training domain and seed once, so it cannot use both. Move the one you do not want out "
                         f"of {store.runs} (each setting to compare belongs in its own results folder, reported "
                         f"with its own --out).")


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def group_test_sets(files: list[PredictionFile], *, cluster: str) -> tuple[dict[str, TestSet], list[str]]:
    """Files of one domain over the same samples (same ids, labels and groups) form one test set.

    Returns the test sets by key and warnings: a domain whose files cover different samples (a changed
    data set between runs) is split into several test sets, and methods are compared within each only.
    """
    by_domain: dict[str, list[list[PredictionFile]]] = {}
    for f in files:
        variants = by_domain.setdefault(f.domain, [])
        same = next((group for group in variants if _same_samples(group[0].frame, f.frame)), None)
        if same is None:
            variants.append([f])
        else:
            same.append(f)
    sets, warnings = {}, []
    for domain in sorted(by_domain):
        variants = by_domain[domain]
        if len(variants) > 1:
            warnings.append(f"Test domain {domain!r} was predicted on {len(variants)} different sample sets (the data "
                            f"changed between runs); methods are compared only within each set.")
        for i, group in enumerate(sorted(variants, key=lambda group: group[0].index)):
            key = domain if len(variants) == 1 else f"{domain}#{i + 1}"
            reference = group[0].frame
            clusters = (np.arange(len(reference)) if cluster == "none"
                        else pd.factorize(reference[cluster].to_numpy())[0])
            test_set = TestSet(key=key, domain=domain, reference=reference, clusters=clusters, files=group)
            for f in group:
                f.test_set = key
            sets[key] = test_set
    return sets, warnings


def _same_samples(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two prediction tables cover the same samples: the same ids, labels and groups, row by row."""
    return len(a) == len(b) and all(np.array_equal(a[c].to_numpy(), b[c].to_numpy())
                                    for c in ("label", "intersection", "sample"))


@dataclass(eq=False)
class Resampled:
    """Bootstrap replicates of every file: ``values`` (n_files, K, B) for ``columns``; per-group FPR/TPR of the
    intersection (n_files, B, G); DeLong pieces per file."""

    columns: list[str]
    values: np.ndarray
    fpr: np.ndarray | None
    tpr: np.ndarray | None
    delong: dict[int, DeLongParts]

    @property
    def n_boot(self) -> int:
        return int(self.values.shape[2])


@dataclass
class Report:
    """Everything a report computed, for callers (tests, notebooks) and for the figures."""

    settings: ReportSettings
    tables: dict[str, pd.DataFrame]
    leaderboard_long: pd.DataFrame
    figures: dict[str, list[Path]]
    warnings: list[str]
    path: Path
    seconds: float
    test_sets: dict[str, TestSet] = field(default_factory=dict)
    resampled: Resampled | None = None
    results: Path | None = None  # the results folder the predictions came from
