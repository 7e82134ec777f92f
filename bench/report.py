"""`bench report`: from the saved predictions to tables, significance tests, figures and report.md.

Reads only the results folder (no torch, no retraining; `bench.plots` is imported only for figures).
Every table is written as CSV first, then rendered to Markdown and LaTeX with the same numbers
(``formats``); report.md names each table's file. This module computes; `bench.render` decides how the
tables read (CSV, Markdown, LaTeX, report.md's text, the terminal summary). In order:

1. every finished job's predictions are read and grouped into *test sets*: the predictions of one test
   domain over the same samples (sorted by sample id, so that row i is the same frame for every method);
2. `compute_metrics` gives the point value of every metric (the tidy table, ``metrics.csv``);
3. per test set, one `cluster_bootstrap` (videos by default, stratified by label x intersection group)
   is drawn *once* and shared by every job predicting it, and `replicate_metrics` evaluates AUC, ACC,
   log-loss, Brier and every fairness metric for all replicates of every file; DeLong's placement values
   are computed per file as well;
4. the leaderboards (per scope: each metric averaged over the scope's train -> test pairs, then mean, std
   (ddof=1) and a bootstrap 95% CI over seeds; rank; best), the per-pair tables, the significance tests
   (DeLong and paired bootstrap per pair, sign-flip over seeds, Wilcoxon over pairs, Holm and BH), the
   Friedman test with Nemenyi's critical difference, the group sizes behind each gap, the benchmark's
   control check and every run's provenance;
5. figures (`bench.plots`) and report.md, which stitches it all together.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from bench import stats
from bench.errors import BenchError
from bench.groups import GROUP_NAMES
from bench.metrics import ATTRIBUTES, METRICS, compute_metrics, group_table
from bench.render import (
    LEVELS,
    SCOPE_TITLES,
    Table,
    blocks_by,
    render_generic,
    render_leaderboard,
    render_paper,
    render_significance,
    report_markdown,
    terminal_summary,
    write_table,
)
from bench.store import RunRecord, Store, atomic_write_text, read_predictions

KEYS = ["method", "role", "train", "test", "seed"]
FORMATS = ("csv", "md", "tex")
CLUSTERS = ("video", "identity", "none")
SCOPES = ("cross", "intra")
PAPER_ATTRIBUTES = ("intersection", "gender", "race")
PAPER_METRICS = ("F_FPR", "F_OAE", "F_DP", "F_MEO")
DEFAULT_BASELINE = "xception"


# ============================================================================================ settings
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

    def apply(self, files: list[PredictionFile]) -> list[PredictionFile]:
        """The files of the selected methods, training domains and test domains; a pattern that matches
        nothing there is a `BenchError` naming what there is."""
        for flag, value, names in (("--methods", self.methods, {f.run.method for f in files}),
                                   ("--train", self.train, {f.run.train for f in files}),
                                   ("--test", self.test, {f.domain for f in files})):
            for pattern in _patterns(value) or ():
                if not fnmatch.filter(names, pattern):
                    raise BenchError(f"{flag} {pattern!r} matches nothing in this results folder; there: "
                                     f"{', '.join(sorted(names))}.")
        kept = [f for f in files if _selected(f.run.method, self.methods) and _selected(f.run.train, self.train)
                and _selected(f.domain, self.test)]
        if not kept:
            raise BenchError(f"No predictions match {self.describe()}; widen the selection.")
        for i, f in enumerate(kept):
            f.index = i
        return kept

    def _flags(self) -> list[tuple[str, str]]:
        return [("--methods", self.methods), ("--train", self.train), ("--test", self.test)]


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
    selection: Selection = Selection()

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise BenchError(f"Unknown cluster unit {self.cluster!r}; expected one of: {', '.join(CLUSTERS)}.")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise BenchError(f"Unknown format(s) {', '.join(map(repr, unknown)) or '(none given)'} in --formats; "
                             f"choose from: {', '.join(FORMATS)} (comma-separated).")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise BenchError(f"--bootstrap must be a whole number >= 0 (0: no bootstrap); got {self.n_boot!r}.")
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
    boot: stats.ClusterBootstrap | None = None


def load_predictions(store: Store, *, progress: bool = True) -> list[PredictionFile]:
    """Every finished job's prediction files, read and sorted by sample id."""
    runs = store.finished_runs()
    if not runs:
        unfinished = store.unfinished_runs()
        hint = (f" ({len(unfinished)} unfinished job folder(s) there: rerun `bench run` to finish them)"
                if unfinished else "")
        raise BenchError(f"No finished runs in {store.runs}{hint}; run `python -m bench run` first, or point "
                         f"--out at the results folder.")
    pending = [(run, domain, path) for run in runs for domain, path in run.prediction_files().items()]
    files = []
    for run, domain, path in tqdm(pending, desc="read", unit="file", disable=not progress, leave=False):
        frame = read_predictions(path)
        frame = frame.sort_values("sample", kind="stable", ignore_index=True)
        files.append(PredictionFile(run=run, domain=domain, frame=frame))
    for i, f in enumerate(files):
        f.index = i
    return files


def group_test_sets(files: list[PredictionFile], *, cluster: str) -> tuple[dict[str, TestSet], list[str]]:
    """Files of one domain over the same samples (same ids, labels and groups) form one test set.

    Returns the test sets by key and warnings: a domain whose files cover different samples (a changed
    data set between runs) is split into several test sets, and methods are compared within each only.
    """
    by_domain: dict[str, dict[str, list[PredictionFile]]] = {}
    for f in files:
        fingerprint = _fingerprint(f.frame)
        by_domain.setdefault(f.domain, {}).setdefault(fingerprint, []).append(f)
    sets, warnings = {}, []
    for domain in sorted(by_domain):
        variants = by_domain[domain]
        if len(variants) > 1:
            warnings.append(f"Test domain {domain!r} was predicted on {len(variants)} different sample sets (the data "
                            f"changed between runs); methods are compared only within each set.")
        for i, (_, group) in enumerate(sorted(variants.items(), key=lambda kv: kv[1][0].index)):
            key = domain if len(variants) == 1 else f"{domain}#{i + 1}"
            reference = group[0].frame
            clusters = (np.arange(len(reference)) if cluster == "none"
                        else pd.factorize(reference[cluster].to_numpy())[0])
            test_set = TestSet(key=key, domain=domain, reference=reference, clusters=clusters, files=group)
            for f in group:
                f.test_set = key
            sets[key] = test_set
    return sets, warnings


def _fingerprint(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame[["sample", "label", "intersection"]], index=False).to_numpy()
    return hashlib.sha1(hashed.tobytes()).hexdigest()


# ============================================================================================ point metrics
def tidy_metrics(files: list[PredictionFile], settings: ReportSettings) -> pd.DataFrame:
    """The tidy table: one row per (job, test domain, attribute, metric) with value and evidence."""
    frames = []
    for f in files:
        table = compute_metrics(f.frame, metrics=settings.metrics, threshold=settings.threshold,
                                policy=settings.policy, min_group_size=settings.min_group_size)
        table.insert(0, "job", f.run.job_id)
        for key, value in f.keys.items():
            table[key] = value
        table["scope"] = f.scope
        table["file"] = f.index
        frames.append(table)
    tidy = pd.concat(frames, ignore_index=True)
    tidy["column"] = column_names(tidy["attribute"], tidy["metric"])
    first = [*KEYS, "scope", "attribute", "metric", "value"]
    return tidy[first + [c for c in tidy.columns if c not in first]]


def collect_metrics(store: Store, *, metrics: str = "all", threshold: float = 0.5, policy: str = "both-classes",
                    min_group_size: int = 1, progress: bool = True) -> pd.DataFrame:
    """The tidy metrics table of every finished job's predictions (no bootstrap, no files written)."""
    settings = ReportSettings(metrics=metrics, threshold=threshold, policy=policy, min_group_size=min_group_size)
    return _public_tidy(tidy_metrics(load_predictions(store, progress=progress), settings))


def _public_tidy(tidy: pd.DataFrame) -> pd.DataFrame:
    return tidy.drop(columns=["file", "column"])


def column_names(attribute: Any, metric: Any) -> Any:
    """Leaderboard column names: the metric for detection ("AUC"), else "attribute/metric"."""
    attribute, metric = pd.Series(attribute), pd.Series(metric)
    return np.where(attribute.to_numpy() == "all", metric.to_numpy(), attribute.to_numpy() + "/" + metric.to_numpy())


def _column(attribute: str, metric: str) -> str:
    return metric if attribute == "all" else f"{attribute}/{metric}"


def _metric_of(column: str) -> str:
    return column.rsplit("/", 1)[-1]


def _higher(column: str) -> bool:
    return METRICS.get(_metric_of(column)).higher_is_better


# ============================================================================================ bootstrap
@dataclass(eq=False)
class Resampled:
    """Bootstrap replicates of every file: ``values`` (n_files, K, B) for ``columns``; per-group FPR/TPR of the
    intersection (n_files, B, G); DeLong pieces per file."""

    columns: list[str]
    values: np.ndarray
    fpr: np.ndarray | None
    tpr: np.ndarray | None
    delong: dict[int, stats.DeLongParts]

    @property
    def n_boot(self) -> int:
        return int(self.values.shape[2])


def bootstrap_columns(tidy: pd.DataFrame) -> list[str]:
    """The columns the bootstrap covers: AUC, ACC, log_loss, brier and every fairness metric, if selected."""
    rows = tidy.drop_duplicates("column")
    keep = (rows["attribute"] != "all") | rows["metric"].isin(stats.BOOTSTRAP_DETECTION)
    return list(rows.loc[keep, "column"])


def resample(files: list[PredictionFile], test_sets: dict[str, TestSet], columns: list[str],
             settings: ReportSettings, *, progress: bool = True) -> Resampled:
    """Draw each test set's resamples once and evaluate every file on them; DeLong pieces per file."""
    n_boot = settings.n_boot
    values = np.full((len(files), len(columns), max(n_boot, 1)), np.nan)
    groups = len(GROUP_NAMES["intersection"])
    fpr = np.full((len(files), max(n_boot, 1), groups), np.nan)
    tpr = np.full_like(fpr, np.nan)
    delong: dict[int, stats.DeLongParts] = {}
    position = {c: i for i, c in enumerate(columns)}
    chosen = sorted({_metric_of(c) for c in columns}, key=METRICS.select("all").index)
    for key in sorted(test_sets):
        test_set = test_sets[key]
        if n_boot > 0:
            strata = test_set.reference["label"].to_numpy() * 100 + test_set.reference["intersection"].to_numpy()
            seed = np.random.SeedSequence([settings.seed, zlib.crc32(key.encode())])
            test_set.boot = stats.cluster_bootstrap(test_set.clusters, strata=strata, n_boot=n_boot, seed=seed)
    bar = tqdm(total=len(files), desc=f"bootstrap ({n_boot} replicates)", unit="file", disable=not progress,
               leave=False)
    for key in sorted(test_sets):
        test_set = test_sets[key]
        labels = test_set.reference["label"].to_numpy()
        for f in test_set.files:
            if labels.min() != labels.max():
                delong[f.index] = stats.delong_parts(labels, f.frame["score"].to_numpy(), clusters=test_set.clusters)
            if test_set.boot is not None and columns:
                rep = stats.replicate_metrics(f.frame, test_set.boot, metrics=chosen, threshold=settings.threshold,
                                              policy=settings.policy, min_group_size=settings.min_group_size)
                for (attribute, metric), v in rep.values.items():
                    column = _column(attribute, metric)
                    if column in position:
                        values[f.index, position[column]] = v
                if "intersection" in rep.fpr:
                    g = min(groups, rep.fpr["intersection"].shape[1])
                    fpr[f.index, :, :g] = rep.fpr["intersection"][:, :g]
                    tpr[f.index, :, :g] = rep.tpr["intersection"][:, :g]
            bar.update(1)
    bar.close()
    if n_boot == 0:
        return Resampled(columns, values[:, :, :0], None, None, delong)
    return Resampled(columns, values, fpr, tpr, delong)


# ============================================================================================ leaderboards
def _main(tidy: pd.DataFrame) -> pd.DataFrame:
    return _with_columns(tidy)[tidy["role"] == "main"]


def _with_columns(tidy: pd.DataFrame) -> pd.DataFrame:
    """The tidy table with its leaderboard column names (`collect_metrics` returns it without them)."""
    if "column" in tidy.columns:
        return tidy
    return tidy.assign(column=column_names(tidy["attribute"], tidy["metric"]))


def per_seed_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per (method, scope, column, seed): the value averaged over the scope's train -> test pairs."""
    return (_main(tidy).groupby(["method", "scope", "attribute", "metric", "column", "seed"], sort=False)["value"]
            .agg(pair_mean="mean", n_pairs="count").reset_index())


def leaderboard(tidy: pd.DataFrame, resampled: Resampled | None = None, *, alpha: float = 0.05) -> pd.DataFrame:
    """Long leaderboard: per (method, scope, column) the mean and std (ddof=1) over seeds of the pair-averaged
    value, the bootstrap CI of that mean, the counts behind it, the rank within (scope, column) and the best.

    The CI resamples the test videos of every test set (the same resamples for every method), averages each
    replicate exactly as the point value is averaged (over pairs, then seeds), and takes percentiles: it
    is the uncertainty due to the finite test sets for these trained models; the std is the spread over
    training seeds.
    """
    per_seed = per_seed_table(tidy)
    board = (per_seed.groupby(["method", "scope", "attribute", "metric", "column"], sort=False)
             .agg(mean=("pair_mean", "mean"), std=("pair_mean", lambda v: v.std(ddof=1)),
                  n_seeds=("seed", "nunique"), n_pairs=("n_pairs", "max")).reset_index())
    board["ci_low"] = np.nan
    board["ci_high"] = np.nan
    if resampled is not None and resampled.n_boot > 0:
        main = _main(tidy).drop_duplicates("file")
        position = {c: i for i, c in enumerate(resampled.columns)}
        rows = [i for i, c in enumerate(board["column"]) if c in position]
        for (method, scope), cell in board.iloc[rows].groupby(["method", "scope"], sort=False):
            files = main[(main["method"] == method) & (main["scope"] == scope)]
            replicate = _cell_replicates(files, resampled.values)  # (K, B)
            k = [position[c] for c in cell["column"]]
            estimate = np.full(len(resampled.columns), np.nan)
            estimate[k] = cell["mean"].to_numpy()
            low, high = stats.bootstrap_interval(replicate, estimate=estimate, alpha=alpha)
            board.loc[cell.index, "ci_low"] = np.maximum(low[k], 0.0)  # every resampled metric is >= 0
            ceiling = [100.0 if _is_rate(c) else np.inf for c in cell["column"]]
            board.loc[cell.index, "ci_high"] = np.minimum(high[k], ceiling)
    board["higher_is_better"] = [METRICS.get(m).higher_is_better for m in board["metric"]]
    signed = np.where(board["higher_is_better"], -board["mean"], board["mean"])
    board["rank"] = pd.Series(signed, index=board.index).groupby([board["scope"], board["column"]]).rank(method="min")
    board["best"] = board["rank"] == 1
    return board


def _is_rate(column: str) -> bool:
    """AUC, accuracies and worst-group values are probabilities x 100: an interval stops at 100. (Intersecting
    an interval with the metric's range keeps its coverage.)"""
    metric = METRICS.get(_metric_of(column))
    return metric.unit == "%" and metric.higher_is_better


def _cell_replicates(files: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Replicates of a leaderboard cell: per seed the mean over its files (pairs), then the mean over seeds."""
    per_seed = []
    for _, group in files.groupby("seed", sort=True):
        with _quiet():
            per_seed.append(np.nanmean(values[group["file"].to_numpy()], axis=0))
    with _quiet():
        return np.nanmean(np.stack(per_seed), axis=0)


def wide_leaderboard(board: pd.DataFrame, columns: Sequence[str] | None = None, *,
                     prefix: bool = True) -> pd.DataFrame:
    """Rows (scope, method); per column its mean, std, CI (when bootstrapped) and rank. Rows are ordered by
    scope, then by rank on the first column (AUC when present), then by name."""
    columns = list(dict.fromkeys(board["column"])) if columns is None else [c for c in columns
                                                                              if c in set(board["column"])]
    if not columns:
        return pd.DataFrame(columns=["scope", "method", "n_seeds", "n_pairs"])
    sub = board[board["column"].isin(columns)]
    index = ["scope", "method"]
    counts = sub.groupby(index, sort=False)[["n_seeds", "n_pairs"]].max()
    data: dict[str, pd.Series] = {"n_seeds": counts["n_seeds"], "n_pairs": counts["n_pairs"]}
    bootstrapped = set(sub.loc[sub["ci_low"].notna() | sub["ci_high"].notna(), "column"])
    for column in columns:
        rows = sub[sub["column"] == column].set_index(index)
        name = column if prefix else _metric_of(column)
        data[name], data[f"{name} std"] = rows["mean"], rows["std"]
        if column in bootstrapped:
            data[f"{name} ci_low"], data[f"{name} ci_high"] = rows["ci_low"], rows["ci_high"]
        data[f"{name} rank"] = rows["rank"]
    wide = pd.DataFrame(data).reset_index()
    first = columns[0] if prefix else _metric_of(columns[0])
    wide["_scope"] = wide["scope"].map({s: i for i, s in enumerate(SCOPES)})
    wide = wide.sort_values(["_scope", f"{first} rank", "method"], kind="stable").drop(columns="_scope")
    return wide.reset_index(drop=True)


def attribute_columns(board: pd.DataFrame, attribute: str) -> list[str]:
    """A per-attribute leaderboard's columns: AUC, then every fairness metric of the attribute."""
    present = set(board["column"])
    fairness = [f"{attribute}/{m}" for m in METRICS.select("fairness") if f"{attribute}/{m}" in present]
    return (["AUC"] if "AUC" in present else []) + fairness


# ============================================================================================ pair tables
def pair_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per (method, role, train, test): the seed-mean of every metric, one column per metric."""
    tidy = _with_columns(tidy)
    index = ["method", "role", "train", "test", "scope"]
    wide = tidy.groupby([*index, "column"], sort=False)["value"].mean().unstack("column")  # keeps all-NaN columns
    wide = wide[list(dict.fromkeys(tidy["column"]))]
    wide.insert(0, "n_seeds", tidy.groupby(index, sort=False)["seed"].nunique())
    wide.columns.name = None
    return wide.reset_index()


def paper_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per train -> test pair, the paper's layout: F_FPR, F_OAE, F_DP, F_MEO for intersection, gender and race,
    then AUC; mean and std (ddof=1) over seeds; main runs only; rank 1 marked per pair and column."""
    columns = [f"{a}/{m}" for a in PAPER_ATTRIBUTES for m in PAPER_METRICS] + ["AUC"]
    main = _main(tidy)
    main = main[main["column"].isin(columns)]
    if main.empty:
        return pd.DataFrame(columns=["train", "test", "scope", "method", "n_seeds"])
    columns = [c for c in columns if c in set(main["column"])]
    index = ["train", "test", "scope", "method"]
    stats_ = main.groupby([*index, "column"], sort=False)["value"].agg(mean="mean", std=lambda v: v.std(ddof=1))
    mean, std = stats_["mean"].unstack("column"), stats_["std"].unstack("column")  # all-NaN std columns kept
    data: dict[str, pd.Series] = {"n_seeds": main.groupby(index, sort=False)["seed"].nunique()}
    for column in columns:
        data[column], data[f"{column} std"] = mean[column], std[column]
    table = pd.DataFrame(data).reset_index()
    for column in columns:
        signed = -table[column] if _higher(column) else table[column]
        table[f"{column} rank"] = signed.groupby([table["train"], table["test"]]).rank(method="min")
    return table.sort_values(["train", "test", "method"], kind="stable").reset_index(drop=True)


def group_rates(tidy: pd.DataFrame, files: list[PredictionFile], resampled: Resampled | None, *,
                threshold: float, alpha: float) -> pd.DataFrame:
    """Per (method, scope, intersection group): FPR and TPR averaged like a leaderboard cell (over pairs, then
    seeds), with bootstrap CIs; the data behind the group-rate bars."""
    main = _main(tidy).drop_duplicates("file")
    n_groups = len(GROUP_NAMES["intersection"])
    point = np.full((len(files), 2, n_groups), np.nan)
    for f in files:
        table = group_table(f.frame["label"], f.frame["score"], f.frame["intersection"], threshold=threshold)
        codes = table.index.to_numpy()
        keep = codes < n_groups
        point[f.index, 0, codes[keep]] = table["FPR"].to_numpy()[keep]
        point[f.index, 1, codes[keep]] = table["TPR"].to_numpy()[keep]
    rows = []
    reps = None
    if resampled is not None and resampled.fpr is not None:
        reps = np.stack([resampled.fpr, resampled.tpr], axis=1).transpose(0, 1, 3, 2)  # (files, 2, G, B)
    for (method, scope), cell in main.groupby(["method", "scope"], sort=False):
        value = _cell_replicates(cell, point[:, :, :, None])[..., 0]  # (2, G)
        if reps is not None:
            low, high = stats.bootstrap_interval(_cell_replicates(cell, reps), estimate=value, alpha=alpha)
            low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)  # rates
        else:
            low = high = np.full((2, n_groups), np.nan)
        for g in range(n_groups):
            if np.isnan(value[:, g]).all():
                continue
            rows.append({"method": method, "scope": scope, "group": g, "group_name": GROUP_NAMES["intersection"][g],
                         "FPR": 100 * value[0, g], "FPR ci_low": 100 * low[0, g], "FPR ci_high": 100 * high[0, g],
                         "TPR": 100 * value[1, g], "TPR ci_low": 100 * low[1, g], "TPR ci_high": 100 * high[1, g]})
    return pd.DataFrame(rows, columns=["method", "scope", "group", "group_name", "FPR", "FPR ci_low", "FPR ci_high",
                                       "TPR", "TPR ci_low", "TPR ci_high"])


# ============================================================================================ significance
SIGNIFICANCE_COLUMNS = ["comparison", "method", "other", "level", "scope", "train", "test", "column", "test_name",
                        "n", "estimate", "ci_low", "ci_high", "p", "p_holm", "p_bh", "family_size", "favours",
                        "significant"]


def comparisons(methods: Sequence[str], baseline: str | None) -> list[tuple[str, str, str]]:
    """(comparison set, method, other): every method against the baseline, and every pair of methods."""
    out = [("vs baseline", m, baseline) for m in methods if baseline is not None and m != baseline]
    out += [("pairwise", a, b) for a, b in _pairs(methods)]
    return out


def _pairs(methods: Sequence[str]) -> Iterable[tuple[str, str]]:
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            yield a, b


def significance(tidy: pd.DataFrame, resampled: Resampled, test_sets: dict[str, TestSet], *, baseline: str | None,
                 alpha: float) -> pd.DataFrame:
    """Every comparison (vs baseline, pairwise) at three levels, corrected within families.

    - pair level, on the same test samples: DeLong's test for AUC (seed-averaged AUCs of both methods as one
      contrast; clustered variance) and the paired cluster bootstrap for every other resampled column;
    - seeds level: the exact sign-flip test over the seeds both methods have (scope averages per seed);
    - pairs level: Wilcoxon's signed-rank test over the train -> test pairs of a scope (seed means).

    Estimates are method - other in the column's unit. A family is one comparison set, one level, one scope
    and one column; Holm's and Benjamini-Hochberg's corrections run within it, and its size is printed.
    """
    main = _main(tidy)
    methods = _method_order(main, baseline)
    rows: list[dict[str, Any]] = []
    if len(methods) < 2:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    files = main.drop_duplicates("file").set_index("file")
    position = {c: i for i, c in enumerate(resampled.columns)}
    means = main.groupby(["method", "scope", "column", "train", "test"], sort=False)["value"].mean().reset_index()
    pair_map = {key: dict(zip(zip(g["train"], g["test"], strict=True), g["value"], strict=True))
                for key, g in means.groupby(["method", "scope", "column"], sort=False)}
    seed_map = {key: dict(zip(g["seed"], g["pair_mean"], strict=True))
                for key, g in per_seed_table(tidy).groupby(["method", "scope", "column"], sort=False)}
    cluster_counts = {k: int(t.clusters.max()) + 1 for k, t in test_sets.items()}
    test_set_of = {f.index: f.test_set for t in test_sets.values() for f in t.files}
    columns = list(dict.fromkeys(main["column"]))
    for comparison, method, other in comparisons(methods, baseline):
        rows += _pair_level(comparison, method, other, files, pair_map, resampled, position, cluster_counts,
                            test_set_of, columns, alpha)
        for scope in SCOPES:
            for column in columns:
                rows += _aggregate_levels(comparison, method, other, scope, column, seed_map, pair_map, alpha)
    table = pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS[:-5])
    return _correct(table, alpha)


def _method_order(main: pd.DataFrame, baseline: str | None) -> list[str]:
    methods = sorted(main["method"].unique())
    if baseline in methods:
        methods.remove(baseline)
        methods.insert(0, baseline)
    return methods


def _pair_level(comparison: str, method: str, other: str, files: pd.DataFrame, pair_map: dict,
                resampled: Resampled, position: dict[str, int], cluster_counts: dict[str, int],
                test_set_of: dict[int, str], columns: list[str], alpha: float) -> list[dict[str, Any]]:
    rows = []
    mine, theirs = files[files["method"] == method], files[files["method"] == other]
    for (train, test), a in mine.groupby(["train", "test"], sort=True):
        b = theirs[(theirs["train"] == train) & (theirs["test"] == test)]
        if b.empty:
            continue
        sets = {test_set_of[i] for i in (*a.index, *b.index)}
        if len(sets) != 1:
            continue  # not the same test samples: no paired comparison
        (test_set,) = sets
        scope = "intra" if train == test else "cross"
        common = {"comparison": comparison, "method": method, "other": other, "level": "pair", "scope": scope,
                  "train": train, "test": test, "n": cluster_counts[test_set]}
        if "AUC" in columns and all(i in resampled.delong for i in (*a.index, *b.index)):
            result = _delong_between(list(a.index), list(b.index), resampled.delong, alpha)
            rows.append({**common, "column": "AUC", "test_name": "DeLong", "estimate": 100 * result.estimate,
                         "ci_low": 100 * result.low, "ci_high": 100 * result.high, "p": result.p})
        if resampled.n_boot == 0:
            continue
        names = [c for c in resampled.columns if c != "AUC"]
        k = [position[c] for c in names]
        with _quiet():
            diff = (np.nanmean(resampled.values[a.index.to_numpy()][:, k], axis=0)
                    - np.nanmean(resampled.values[b.index.to_numpy()][:, k], axis=0))  # (K, B)
        estimate = np.array([pair_map.get((method, scope, c), {}).get((train, test), np.nan)
                             - pair_map.get((other, scope, c), {}).get((train, test), np.nan) for c in names])
        low, high = stats.bootstrap_interval(diff, estimate=estimate, alpha=alpha)
        p = stats.bootstrap_p_value(diff, estimate=estimate)
        for j, column in enumerate(names):
            rows.append({**common, "column": column, "test_name": "paired bootstrap", "estimate": estimate[j],
                         "ci_low": low[j], "ci_high": high[j], "p": p[j]})
    return rows


def _delong_between(mine: list[int], theirs: list[int], parts: dict[int, stats.DeLongParts],
                    alpha: float) -> stats.DeLongResult:
    """DeLong contrast mean(AUC of ``mine``) - mean(AUC of ``theirs``), all files on one test set."""
    chosen = [parts[i] for i in (*mine, *theirs)]
    first = chosen[0]
    combined = stats.DeLongParts(auc=np.concatenate([p.auc for p in chosen]),
                                 fake=np.vstack([p.fake for p in chosen]), real=np.vstack([p.real for p in chosen]),
                                 n_fake=first.n_fake, n_real=first.n_real, c_fake=first.c_fake, c_real=first.c_real,
                                 c_all=first.c_all)
    contrast = np.concatenate([np.full(len(mine), 1.0 / len(mine)), np.full(len(theirs), -1.0 / len(theirs))])
    return stats.delong_contrast(combined.auc, stats.delong_covariance(combined), contrast, alpha=alpha)


def _aggregate_levels(comparison: str, method: str, other: str, scope: str, column: str, seed_map: dict,
                      pair_map: dict, alpha: float) -> list[dict[str, Any]]:
    rows = []
    common = {"comparison": comparison, "method": method, "other": other, "scope": scope, "train": "", "test": "",
              "column": column}
    a, b = seed_map.get((method, scope, column), {}), seed_map.get((other, scope, column), {})
    seeds = sorted(set(a) & set(b))
    if seeds:
        result = stats.sign_flip_test([a[s] - b[s] for s in seeds], alpha=alpha)
        rows.append({**common, "level": "seeds", "test_name": "sign-flip" if result.exact else "sign-flip (MC)",
                     "n": result.n, "estimate": result.estimate, "ci_low": result.low, "ci_high": result.high,
                     "p": result.p})
    a, b = pair_map.get((method, scope, column), {}), pair_map.get((other, scope, column), {})
    pairs = sorted(set(a) & set(b))
    if pairs:
        result = stats.wilcoxon_test([a[p] - b[p] for p in pairs], alpha=alpha)
        rows.append({**common, "level": "pairs", "test_name": "Wilcoxon", "n": result.n, "estimate": result.estimate,
                     "ci_low": result.low, "ci_high": result.high, "p": result.p})
    return rows


def _correct(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    table = table.copy()
    table["p_holm"] = np.nan
    table["p_bh"] = np.nan
    table["family_size"] = 0
    for _, family in table.groupby(["comparison", "level", "scope", "column"], sort=False):
        p = family["p"].to_numpy(dtype=np.float64)
        table.loc[family.index, "p_holm"] = stats.holm(p)
        table.loc[family.index, "p_bh"] = stats.benjamini_hochberg(p)
        table.loc[family.index, "family_size"] = int(np.count_nonzero(~np.isnan(p)))
    higher = np.array([_higher(c) for c in table["column"]], dtype=bool)
    sign = np.sign(table["estimate"].to_numpy(dtype=np.float64)) * np.where(higher, 1.0, -1.0)
    table["favours"] = np.where(sign > 0, table["method"], np.where(sign < 0, table["other"], ""))
    table["significant"] = table["p_holm"].to_numpy(dtype=np.float64) < alpha
    return table[SIGNIFICANCE_COLUMNS]


# ============================================================================================ rank tests
FRIEDMAN_COLUMNS = ["scope", "column", "method", "mean_rank", "k", "n_blocks", "statistic", "p", "cd", "alpha"]


def friedman_table(tidy: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """Per (scope, column): Friedman's test over the train -> test pairs (blocks) that every method has, the
    mean rank of each method (1 = best) and Nemenyi's critical difference. Needs two or more methods."""
    main = _main(tidy)
    rows = []
    if main["method"].nunique() < 2:
        return pd.DataFrame(columns=FRIEDMAN_COLUMNS)
    pair_means = main.groupby(["scope", "column", "train", "test", "method"], sort=False)["value"].mean()
    for (scope, column), values in pair_means.groupby(level=["scope", "column"], sort=False):
        matrix = values.droplevel(["scope", "column"]).unstack("method").dropna()
        if matrix.shape[1] < 2 or matrix.shape[0] < 1:
            continue
        result = stats.friedman_test(matrix.to_numpy(), higher_is_better=_higher(column), alpha=alpha)
        for method, rank in zip(matrix.columns, result.mean_ranks, strict=True):
            rows.append({"scope": scope, "column": column, "method": method, "mean_rank": rank, "k": result.k,
                         "n_blocks": result.n_blocks, "statistic": result.statistic, "p": result.p, "cd": result.cd,
                         "alpha": alpha})
    table = pd.DataFrame(rows, columns=FRIEDMAN_COLUMNS)
    table["_scope"] = table["scope"].map({s: i for i, s in enumerate(SCOPES)})
    return table.sort_values(["_scope", "column", "mean_rank"], kind="stable").drop(columns="_scope").reset_index(
        drop=True)


# ============================================================================================ other tables
def control_table(tidy: pd.DataFrame, store_or_runs: Store | list[RunRecord]) -> pd.DataFrame:
    """The baseline's in-domain intersection F_FPR with the bias knobs on against off, per control."""
    runs = store_or_runs.finished_runs() if isinstance(store_or_runs, Store) else store_or_runs
    rows = []
    controls = {(r.train, r.method): r.config["job"].get("control_for") for r in runs if r.role == "control"}
    gaps = tidy[(tidy["attribute"] == "intersection") & (tidy["metric"] == "F_FPR") & (tidy["scope"] == "intra")]
    for (control, method), control_for in controls.items():
        biased = gaps[(gaps["role"] == "main") & (gaps["method"] == method) & (gaps["train"] == control_for)]
        fair = gaps[(gaps["role"] == "control") & (gaps["method"] == method) & (gaps["train"] == control)]
        rows.append({"method": method, "domain": control_for, "control": control,
                     "F_FPR_bias_on": biased["value"].mean(), "F_FPR_bias_off": fair["value"].mean(),
                     "seeds_on": biased["seed"].nunique(), "seeds_off": fair["seed"].nunique()})
    return pd.DataFrame(rows, columns=["method", "domain", "control", "F_FPR_bias_on", "F_FPR_bias_off",
                                       "seeds_on", "seeds_off"])


def groups_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per (test domain, attribute, fairness metric): how many groups entered the gap (min and max over the
    jobs) and the smallest group among them, so a gap over two tiny groups is visibly weak."""
    fair = tidy[tidy["attribute"] != "all"]
    table = (fair.groupby(["test", "attribute", "metric"], sort=False)
             .agg(n_groups_min=("n_groups", "min"), n_groups_max=("n_groups", "max"),
                  min_group_n=("min_group_n", "min"), jobs=("job", "nunique")).reset_index())
    return table.astype({"n_groups_min": "Int64", "n_groups_max": "Int64", "min_group_n": "Int64"})


def provenance_table(runs: list[RunRecord]) -> pd.DataFrame:
    """One row per finished job: identity, selection, and where and with what it ran."""
    rows = []
    for run in runs:
        config, prov = run.config, run.config.get("provenance", {})
        packages = prov.get("packages", {}) or {}
        training = config.get("training", {}) or {}
        selection = training.get("selection") or config.get("config", {}).get("train", {}).get("selection")
        rows.append({
            "job": run.job_id, "method": run.method, "role": run.role, "train": run.train, "seed": run.seed,
            "config_hash": _config_hash(run), "selection": selection, "best_epoch": training.get("best_epoch"),
            "epochs": training.get("epochs"), "git_revision": (prov.get("git_revision") or "")[:12],
            "git_dirty": prov.get("git_dirty"), "device": prov.get("device"), "python": prov.get("python"),
            **{f"pkg {name}": version for name, version in packages.items()},
            "finished": prov.get("finished"),
        })
    return pd.DataFrame(rows)


def _config_hash(run: RunRecord) -> str:
    """The job's identity hash: the suffix of its folder name, else a hash of its recorded identity."""
    suffix = run.job_id.rsplit("__", 1)[-1]
    if len(suffix) == 10 and all(c in "0123456789abcdef" for c in suffix):
        return suffix
    identity = repr(sorted(run.config.get("identity", {}).items()))
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


def seeds_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Which seeds each (method, role, train domain) has: the report says how many each cell averages."""
    grouped = tidy.groupby(["method", "role", "train"], sort=True)["seed"]
    return grouped.agg(n_seeds="nunique", seeds=lambda s: ", ".join(map(str, sorted(set(s))))).reset_index()


# ============================================================================================ the report
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


def make_report(out: str | Path, *, metrics: str = "all", threshold: float = 0.5, policy: str = "both-classes",
                min_group_size: int = 1, baseline: str | None = None, n_boot: int = 1000, alpha: float = 0.05,
                cluster: str = "video", formats: Sequence[str] = FORMATS, plots: bool = True, seed: int = 0,
                selection: Selection = Selection(), report_dir: str | Path | None = None, progress: bool = True,
                echo: bool = True) -> dict[str, pd.DataFrame]:
    """Write every table (``formats``), every figure (``plots``) and report.md for the results folder ``out``
    (or the part of it that ``selection`` keeps); print a compact leaderboard (``echo``). Returns the tables
    by name (as written to CSV)."""
    return build_report(out, settings=ReportSettings(
        metrics=metrics, threshold=threshold, policy=policy, min_group_size=min_group_size, baseline=baseline,
        n_boot=n_boot, alpha=alpha, cluster=cluster, formats=tuple(formats), plots=plots, seed=seed,
        selection=selection), report_dir=report_dir, progress=progress, echo=echo).tables


def report_folder(out: str | Path, selection: Selection, report_dir: str | Path | None = None) -> Path:
    """Where a report goes: ``report_dir`` when given, else the results folder itself for a report of
    everything and ``<out>/reports/<selection>`` for a part."""
    if report_dir is not None:
        return Path(report_dir)
    return Path(out) if selection.everything else Path(out) / "reports" / selection.folder_name()


def build_report(out: str | Path, *, settings: ReportSettings, report_dir: str | Path | None = None,
                 progress: bool = True, echo: bool = True) -> Report:
    """`make_report`, returning the full `Report`."""
    t0 = time.perf_counter()
    store = Store(out)
    files = settings.selection.apply(load_predictions(store, progress=progress))
    runs = list({f.run.job_id: f.run for f in files}.values())  # the selected finished jobs, in store order
    destination = Store(report_folder(out, settings.selection, report_dir))  # its tables/, figures/
    tidy = tidy_metrics(files, settings)
    baseline, warnings = _baseline(tidy, settings.baseline)
    test_sets, set_warnings = group_test_sets(files, cluster=settings.cluster)
    warnings += set_warnings + _balance_warnings(tidy) + data_notes(runs)
    with threadpool_limits(1):  # small matrix products: BLAS threads only contend on a busy machine
        resampled = resample(files, test_sets, bootstrap_columns(tidy), settings, progress=progress)
    board = leaderboard(tidy, resampled, alpha=settings.alpha)
    tables = _tables(tidy, board, files, resampled, test_sets, runs, settings, baseline)
    destination.tables.mkdir(parents=True, exist_ok=True)
    for table in tables.values():
        write_table(table, destination.tables, settings.formats)
    frames = {name: t.frame for name, t in tables.items()}
    figures: dict[str, list[Path]] = {}
    if settings.plots:
        from bench import plots

        figures = plots.make_figures(frames, board=board, files=files, folder=destination.figures,
                                     alpha=settings.alpha,
                                     progress=progress)
    report = Report(settings=settings, tables=frames, leaderboard_long=board, figures=figures, warnings=warnings,
                    path=destination.root / "report.md", seconds=0.0, test_sets=test_sets, resampled=resampled,
                    results=store.root)
    atomic_write_text(report.path, report_markdown(report, tidy=tidy, runs=runs, baseline=baseline,
                                                   leaderboards=_leaderboard_views(board, frames)))
    report.seconds = time.perf_counter() - t0
    if echo:
        print(terminal_summary(frames["pairs"], frames["controls"]))
        written = ", ".join(f"{name}.csv" for name in tables) if "csv" in settings.formats else "(no CSV)"
        print(f"\nTables written to {destination.tables}: {written}"
              f"{' (+ .md, .tex)' if len(settings.formats) > 1 else ''}")
        if figures:
            print(f"Figures written to {destination.figures}: {sum(len(v) for v in figures.values())} PNG file(s)")
        print(f"Report: {report.path} ({report.seconds:.1f} s)")
        for warning in warnings:
            print(f"note: {warning}")
    return report


def _baseline(tidy: pd.DataFrame, requested: str | None) -> tuple[str | None, list[str]]:
    methods = sorted(_main(tidy)["method"].unique())
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


def _balance_warnings(tidy: pd.DataFrame) -> list[str]:
    out = []
    main = _main(tidy)
    for method, rows in main.groupby("method", sort=True):
        seeds_per_pair = rows.groupby(["train", "test"])["seed"].nunique()
        if seeds_per_pair.nunique() > 1:
            out.append(f"{method}: train -> test pairs have different numbers of seeds "
                       f"({seeds_per_pair.min()}-{seeds_per_pair.max()}); per-seed averages cover different pairs.")
    return out


def _tables(tidy: pd.DataFrame, board: pd.DataFrame, files: list[PredictionFile], resampled: Resampled,
            test_sets: dict[str, TestSet], runs: list[RunRecord], settings: ReportSettings,
            baseline: str | None) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    public = _public_tidy(tidy)
    tables["metrics"] = Table("metrics", public, [("", render_generic(public))])

    wide = wide_leaderboard(board)
    columns = list(dict.fromkeys(board["column"]))
    tables["leaderboard"] = Table("leaderboard", wide, blocks_by(
        wide, ["scope"], lambda part: render_leaderboard(part, columns), lambda s: SCOPE_TITLES[s]))
    for attribute in ATTRIBUTES:
        chosen = attribute_columns(board, attribute)
        if len(chosen) <= 1:
            continue
        per_attribute = wide_leaderboard(board, chosen, prefix=False)
        names = [_metric_of(c) for c in chosen]
        tables[f"leaderboard_{attribute}"] = Table(f"leaderboard_{attribute}", per_attribute, blocks_by(
            per_attribute, ["scope"], lambda part, n=names: render_leaderboard(part, n),
            lambda s, a=attribute: f"{a}: {SCOPE_TITLES[s]}"))

    pairs = pair_table(tidy)
    tables["pairs"] = Table("pairs", pairs, [("", render_generic(pairs))])
    paper = paper_table(tidy)
    paper_columns = [c for c in paper.columns if c not in ("train", "test", "scope", "method", "n_seeds")
                     and not c.endswith((" std", " rank"))]
    tables["paper_pairs"] = Table("paper_pairs", paper, blocks_by(
        paper, ["train", "test"], lambda part: render_paper(part, paper_columns), lambda a, b: f"{a} → {b}"))

    rates = group_rates(tidy, files, resampled, threshold=settings.threshold, alpha=settings.alpha)
    tables["group_rates"] = Table("group_rates", rates, [("", render_generic(rates))])

    sig = significance(tidy, resampled, test_sets, baseline=baseline, alpha=settings.alpha)
    tables["significance"] = Table("significance", sig, blocks_by(
        sig, ["comparison", "level"], render_significance, lambda c, lv: f"{c}, {LEVELS[lv]}"))
    friedman = friedman_table(tidy, alpha=settings.alpha)
    tables["friedman"] = Table("friedman", friedman, [("", render_generic(friedman))])

    groups = groups_table(tidy)
    tables["groups"] = Table("groups", groups, [("", render_generic(groups))])
    controls = control_table(tidy, runs)
    tables["controls"] = Table("controls", controls, [("", render_generic(controls))])
    provenance = provenance_table(runs)
    tables["provenance"] = Table("provenance", provenance, [("", render_generic(provenance))])
    seeds = seeds_table(tidy)
    tables["seeds"] = Table("seeds", seeds, [("", render_generic(seeds))])
    return tables


def _leaderboard_views(board: pd.DataFrame,
                       frames: dict[str, pd.DataFrame]) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """report.md's leaderboards, each with its metric columns: per attribute its table, then the detection
    metrics' (keyed "detection")."""
    views = {}
    for attribute in ATTRIBUTES:
        name = f"leaderboard_{attribute}"
        if name in frames:
            views[attribute] = (frames[name], [_metric_of(c) for c in attribute_columns(board, attribute)])
    detection = [c for c in dict.fromkeys(board["column"]) if "/" not in c]
    if detection:
        views["detection"] = (wide_leaderboard(board, detection), detection)
    return views


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's "Mean of empty slice" warnings: an all-NaN mean is NaN by design here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
