"""The report's tables, computed from the tidy metrics (and the bootstrap for their intervals).

- `leaderboard` (long) and `wide_leaderboard`: per method and scope, each metric averaged over the
  scope's train -> test pairs, then mean, std (ddof=1) and a bootstrap CI over seeds; rank and best, decided
  by the significance tests (`ranks_by_tests`), not by the order of the means;
- `pair_table` (every metric per train -> test pair) and `paper_table` (the paper's layout, ranked by the
  pair-level tests);
- `group_rates`: per intersection group FPR and TPR with CIs, the data behind the group-rate figure;
- `control_table` (the benchmark check), `groups_table` (how many groups stand behind each gap),
  `provenance_table` and `seeds_table`.

Each function returns a plain DataFrame; `bench.render` decides how it reads. No torch. Every table is
computed for all its cells at once (ranks, std over seeds, the wide layout) rather than one pandas object
per cell: the full grid has thousands of cells, and per-cell Series cost most of the report's table time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench import bootstrap
from bench.groups import INTERSECTIONS, NUM_INTERSECTIONS
from bench.metric_core import as_threshold, ratio
from bench.metrics import METRICS
from bench.predictions import PredictionFile, Resampled
from bench.resampling import replicate_mean
from bench.store import RunRecord
from bench.tidy import Tidy, higher_is_better, metric_of, scope_order

PAPER_ATTRIBUTES = ("intersection", "gender", "race")
PAPER_METRICS = ("F_FPR", "F_OAE", "F_DP", "F_MEO")


RANK_LEVELS = ("pooled", "pairs")  # the pairwise tests that decide a leaderboard's ranks, in order of preference


# ============================================================================================ ranks
def ranks_by_tests(cells: Sequence[Hashable], methods: Sequence[str], means: Sequence[float],
                   better: dict[Hashable, dict[str, set[str]]], *,
                   higher_is_better: Sequence[bool]) -> tuple[list[int], list[bool]]:
    """Ranks that rank only what the tests resolve, for every row of a table at once.

    Row i is method ``methods[i]`` in cell ``cells[i]`` (the methods a rank compares: one leaderboard
    column and scope, one train -> test pair and column) with mean ``means[i]``, better when higher where
    ``higher_is_better[i]``; ``better[cell][m]``: the methods significantly better than m there. A method's
    rank is 1 + the number of methods significantly better than it, so methods that no test separates share
    a rank; it is ``best`` (bold) when it is not significantly worse than the best mean of its cell (the set
    of methods the data cannot tell from the leader, not a single winner). NaN means are never best, and a
    cell of NaN means has no leader. Returns the ranks and the best flags, row by row."""
    top: dict[Hashable, float] = {}
    for cell, mean, higher in zip(cells, means, higher_is_better, strict=True):
        if mean == mean and (cell not in top or (mean > top[cell] if higher else mean < top[cell])):
            top[cell] = mean
    leaders: dict[Hashable, set[str]] = {}
    for cell, method, mean in zip(cells, methods, means, strict=True):
        if mean == top.get(cell):
            leaders.setdefault(cell, set()).add(method)
    rank, best = [], []
    for cell, method, mean in zip(cells, methods, means, strict=True):
        winners = better.get(cell, {}).get(method, set())
        rank.append(1 + len(winners))
        best.append(mean == mean and not winners & leaders.get(cell, set()))
    return rank, best


def significantly_better(sig: pd.DataFrame, keys: Sequence[str]) -> dict[tuple, dict[str, set[str]]]:
    """Per value of ``keys``, {method: the methods significantly better than it}, from significant rows."""
    out: dict[tuple, dict[str, set[str]]] = {}
    rows = sig[sig["significant"].astype(bool)]
    for *key, method, other, favours in zip(*(rows[c].tolist() for c in (*keys, "method", "other", "favours")),
                                            strict=True):
        loser = other if favours == method else method
        out.setdefault(tuple(key), {}).setdefault(loser, set()).add(favours)
    return out


def group_std(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group (``groups``: each value's group, 0 .. n_groups - 1), the standard deviation (ddof=1) of its
    values in their order, NaN skipped, NaN below two values: pandas' ``Series.std`` to the last digit (its
    two-pass formula, the sums taken by numpy over each group's values in order), for all groups at once
    instead of one Series per group. Groups of one size are computed together as the rows of a matrix
    (numpy sums a row of a C-ordered matrix as it sums the same values alone)."""
    out = np.full(n_groups, np.nan)
    order = np.argsort(groups, kind="stable")
    sizes = np.bincount(groups, minlength=n_groups)
    starts = np.cumsum(sizes) - sizes
    for size in np.unique(sizes[sizes > 1]).tolist():
        chosen = np.flatnonzero(sizes == size)
        rows = np.ascontiguousarray(values[order[starts[chosen][:, None] + np.arange(size)]], dtype=np.float64)
        missing = np.isnan(rows)
        count = (size - missing.sum(axis=1)).astype(np.float64)
        filled = np.where(missing, 0.0, rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=1, dtype=np.float64) / count
            squares = (mean[:, None] - filled) ** 2
            squares[missing] = 0.0
            std = np.sqrt(squares.sum(axis=1, dtype=np.float64) / (count - 1.0))
        out[chosen] = np.where(count > 1, std, np.nan)
    return out


def _deciding_rows(sig: pd.DataFrame | None) -> pd.DataFrame:
    """The pairwise rows whose tests decide each (scope, column)'s ranks: the first level of `RANK_LEVELS`
    with a p-value for that scope and column."""
    if sig is None or sig.empty:
        return pd.DataFrame(columns=["scope", "column", "level", "test_name", "method", "other", "favours",
                                     "significant"])
    rows = sig[(sig["comparison"] == "pairwise") & sig["level"].isin(RANK_LEVELS) & sig["p"].notna()]
    order = rows["level"].map({level: i for i, level in enumerate(RANK_LEVELS)})
    first = order.groupby([rows["scope"], rows["column"]]).transform("min")
    return rows[order == first]


# ============================================================================================ leaderboards
def leaderboard(tidy: Tidy, resampled: Resampled | None = None, *, alpha: float = 0.05,
                significance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long leaderboard: per (method, scope, column) the mean and std (ddof=1) over seeds of the pair-averaged
    value, the bootstrap CI of that mean, the counts behind it, the rank within (scope, column), the best and
    the test that decided them (``rank_test``).

    Ranks and best follow the pairwise tests of ``significance`` (`ranks_by_tests`), corrected as there:
    the pooled test where the column has one, else Wilcoxon's over pairs. Without tests (one method, or no
    ``significance``) nothing separates the methods and every one has rank 1.

    The CI resamples the test videos of every test set (the same resamples for every method), averages each
    replicate exactly as the point value is averaged (over pairs, then seeds), and takes the basic interval,
    cut to the metric's range: it
    is the uncertainty due to the finite test sets for these trained models; the std is the spread over
    training seeds.
    """
    per_seed = tidy.per_seed.groupby(["method", "scope", "attribute", "metric", "column"], sort=False)
    board = per_seed.agg(mean=("pair_mean", "mean"), n_seeds=("seed", "nunique"),
                         n_pairs=("n_pairs", "max")).reset_index()
    board.insert(board.columns.get_loc("mean") + 1, "std",
                 group_std(tidy.per_seed["pair_mean"].to_numpy(), per_seed.ngroup().to_numpy(), len(board)))
    ci_low, ci_high = np.full(len(board), np.nan), np.full(len(board), np.nan)
    if resampled is not None and resampled.n_boot > 0:
        position = {c: i for i, c in enumerate(resampled.columns)}
        rows = [i for i, c in enumerate(board["column"]) if c in position]
        files = tidy.main_files
        file_rows = files.groupby(["method", "scope"], sort=False).indices
        means, columns = board["mean"].to_numpy(), board["column"].to_numpy()
        for (method, scope), at in board.iloc[rows].groupby(["method", "scope"], sort=False).indices.items():
            cell = np.asarray(rows)[at]  # the cell's rows of the board
            replicate = replicate_mean(files.iloc[file_rows.get((method, scope), [])], resampled.values)  # (K, B)
            k = [position[c] for c in columns[cell]]
            estimate = np.full(len(resampled.columns), np.nan)
            estimate[k] = means[cell]
            low, high = bootstrap.bootstrap_interval(replicate, estimate=estimate, alpha=alpha)
            ci_low[cell] = np.maximum(low[k], 0.0)  # every resampled metric is >= 0
            ci_high[cell] = np.minimum(high[k], [100.0 if _is_rate(c) else np.inf for c in columns[cell]])
    board["ci_low"], board["ci_high"] = ci_low, ci_high
    board["higher_is_better"] = [METRICS.get(m).higher_is_better for m in board["metric"]]
    deciding = _deciding_rows(significance)
    better = significantly_better(deciding, ["scope", "column"])
    test_of = deciding.drop_duplicates(["scope", "column"]).set_index(["scope", "column"])["test_name"].to_dict()
    cells = list(zip(board["scope"].tolist(), board["column"].tolist(), strict=True))
    rank, best = ranks_by_tests(cells, board["method"].tolist(), board["mean"].tolist(), better,
                                higher_is_better=board["higher_is_better"].tolist())
    board["rank"] = np.array(rank, dtype=np.int64)
    board["best"] = np.array(best, dtype=bool)
    board["rank_test"] = [test_of.get(cell, "") for cell in cells]
    return board


def _is_rate(column: str) -> bool:
    """AUC, accuracies and worst-group values are probabilities x 100: an interval stops at 100. (Intersecting
    an interval with the metric's range keeps its coverage.)"""
    metric = METRICS.get(metric_of(column))
    return metric.unit == "%" and metric.higher_is_better


def wide_leaderboard(board: pd.DataFrame, columns: Sequence[str] | None = None, *,
                     prefix: bool = True) -> pd.DataFrame:
    """Rows (scope, method); per column its mean, std, CI (when bootstrapped), rank and best (bold). Rows are
    ordered by scope, then by rank on the first column (AUC when present), then by its mean, then by name."""
    columns = list(dict.fromkeys(board["column"])) if columns is None else [c for c in columns
                                                                              if c in set(board["column"])]
    if not columns:
        return pd.DataFrame(columns=["scope", "method", "n_seeds", "n_pairs"])
    sub = board[board["column"].isin(columns)]
    counts = sub.groupby(["scope", "method"], sort=False)[["n_seeds", "n_pairs"]].max()
    # every field as a grid: a row per (scope, method), a column per leaderboard column
    row = counts.index.get_indexer(pd.MultiIndex.from_arrays([sub["scope"], sub["method"]]))
    col = pd.Index(columns).get_indexer(sub["column"])
    present = np.zeros((len(counts), len(columns)), dtype=bool)
    present[row, col] = True
    grids = {}
    for field in ("mean", "std", "ci_low", "ci_high", "rank", "best"):
        values = sub[field].to_numpy(dtype=bool) if field == "best" else sub[field].to_numpy()
        grids[field] = np.empty(present.shape, dtype=values.dtype)
        grids[field][row, col] = values

    def cells(field: str, j: int) -> np.ndarray | pd.Series:
        """Column j's values; rows without it NaN as pandas aligns them (integers as floats, flags as objects)."""
        if present[:, j].all():
            return grids[field][:, j]
        values = pd.Series(grids[field][:, j])
        return values[present[:, j]].reindex(values.index)

    data: dict[str, Any] = {"scope": counts.index.get_level_values("scope"),
                            "method": counts.index.get_level_values("method"),
                            "n_seeds": counts["n_seeds"].to_numpy(), "n_pairs": counts["n_pairs"].to_numpy()}
    bootstrapped = set(sub.loc[sub["ci_low"].notna() | sub["ci_high"].notna(), "column"])
    for j, column in enumerate(columns):
        name = column if prefix else metric_of(column)
        data[name], data[f"{name} std"] = cells("mean", j), cells("std", j)
        if column in bootstrapped:
            data[f"{name} ci_low"], data[f"{name} ci_high"] = cells("ci_low", j), cells("ci_high", j)
        data[f"{name} rank"], data[f"{name} best"] = cells("rank", j), cells("best", j)
    wide = pd.DataFrame(data)
    first = columns[0] if prefix else metric_of(columns[0])
    wide["_scope"] = scope_order(wide["scope"])
    wide["_mean"] = -wide[first] if higher_is_better(columns[0]) else wide[first]
    wide = wide.sort_values(["_scope", f"{first} rank", "_mean", "method"], kind="stable")
    return wide.drop(columns=["_scope", "_mean"]).reset_index(drop=True)


def attribute_columns(board: pd.DataFrame, attribute: str) -> list[str]:
    """A per-attribute leaderboard's columns: AUC, then every fairness metric of the attribute."""
    present = set(board["column"])
    fairness = [f"{attribute}/{m}" for m in METRICS.select("fairness") if f"{attribute}/{m}" in present]
    return (["AUC"] if "AUC" in present else []) + fairness


# ============================================================================================ pair tables
def pair_table(tidy: Tidy) -> pd.DataFrame:
    """Per (method, role, train, test): the seed-mean of every metric, one column per metric."""
    tidy = tidy.frame
    index = ["method", "role", "train", "test", "scope"]
    wide = tidy.groupby([*index, "column"], sort=False)["value"].mean().unstack("column")  # keeps all-NaN columns
    wide = wide[list(dict.fromkeys(tidy["column"]))]
    wide.insert(0, "n_seeds", tidy.groupby(index, sort=False)["seed"].nunique())
    wide.columns.name = None
    return wide.reset_index()


def paper_table(tidy: Tidy, significance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per train -> test pair, the paper's layout: F_FPR, F_OAE, F_DP, F_MEO for intersection, gender and race,
    then AUC; mean and std (ddof=1) over seeds; main runs only; rank and best per pair and column decided by
    the pairwise pair-level tests of ``significance`` (DeLong for AUC, the paired bootstrap otherwise) as
    `ranks_by_tests` says; without them every method has rank 1."""
    columns = [f"{a}/{m}" for a in PAPER_ATTRIBUTES for m in PAPER_METRICS] + ["AUC"]
    main = tidy.main[tidy.main["column"].isin(columns)]
    if main.empty:
        return pd.DataFrame(columns=["train", "test", "scope", "method", "n_seeds"])
    columns = [c for c in columns if c in set(main["column"])]
    index = ["train", "test", "scope", "method"]
    grouped = main.groupby([*index, "column"], sort=False)["value"]
    mean = grouped.mean()
    std = pd.Series(group_std(main["value"].to_numpy(), grouped.ngroup().to_numpy(), len(mean)), index=mean.index)
    mean, std = mean.unstack("column"), std.unstack("column")  # all-NaN std columns kept
    data: dict[str, pd.Series] = {"n_seeds": main.groupby(index, sort=False)["seed"].nunique()}
    for column in columns:
        data[column], data[f"{column} std"] = mean[column], std[column]
    table = pd.DataFrame(data).reset_index()
    rows = pd.DataFrame(columns=["train", "test", "column", "method", "other", "favours", "significant"])
    if significance is not None:
        rows = significance[(significance["comparison"] == "pairwise") & (significance["level"] == "pair")]
    better = significantly_better(rows, ["train", "test", "column"])
    pairs = list(zip(table["train"].tolist(), table["test"].tolist(), strict=True))
    methods = table["method"].tolist()
    for column in columns:
        rank, best = ranks_by_tests([(*pair, column) for pair in pairs], methods, table[column].tolist(), better,
                                    higher_is_better=[higher_is_better(column)] * len(pairs))
        table[f"{column} rank"], table[f"{column} best"] = np.array(rank, dtype=np.int64), np.array(best, dtype=bool)
    return table.sort_values(["train", "test", "method"], kind="stable").reset_index(drop=True)


def group_rates(tidy: Tidy, files: list[PredictionFile], resampled: Resampled | None, *,
                threshold: float, alpha: float) -> pd.DataFrame:
    """Per (method, scope, intersection group): FPR and TPR averaged like a leaderboard cell (over pairs, then
    seeds), with bootstrap CIs; the data behind the group-rate bars."""
    n_groups = NUM_INTERSECTIONS
    point = _group_rate_points(files, threshold=threshold)
    rows = []
    reps = None
    if resampled is not None and resampled.fpr is not None:
        reps = np.stack([resampled.fpr, resampled.tpr], axis=1).transpose(0, 1, 3, 2)  # (files, 2, G, B)
    for (method, scope), cell in tidy.main_files.groupby(["method", "scope"], sort=False):
        value = replicate_mean(cell, point[:, :, :, None])[..., 0]  # (2, G)
        if reps is not None:
            low, high = bootstrap.bootstrap_interval(replicate_mean(cell, reps), estimate=value, alpha=alpha)
            low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)  # rates
        else:
            low = high = np.full((2, n_groups), np.nan)
        for g in range(n_groups):
            if np.isnan(value[:, g]).all():
                continue
            rows.append({"method": method, "scope": scope, "group": g, "group_name": INTERSECTIONS[g],
                         "FPR": 100 * value[0, g], "FPR ci_low": 100 * low[0, g], "FPR ci_high": 100 * high[0, g],
                         "TPR": 100 * value[1, g], "TPR ci_low": 100 * low[1, g], "TPR ci_high": 100 * high[1, g]})
    return pd.DataFrame(rows, columns=["method", "scope", "group", "group_name", "FPR", "FPR ci_low", "FPR ci_high",
                                       "TPR", "TPR ci_low", "TPR ci_high"])



def _group_rate_points(files: list[PredictionFile], *, threshold: float) -> np.ndarray:
    """(files, 2, G): each file's FPR and TPR per intersection group (`bench.metrics.group_table`'s rates: NaN
    for a group without reals, or without fakes, or absent), from one count of (file, group, label, decision)
    over all the files at once (the per-file tables, with their per-group AUCs, cost most of this table)."""
    n_groups = NUM_INTERSECTIONS
    out = np.full((len(files), 2, n_groups), np.nan)
    if not files:
        return out
    threshold = as_threshold(threshold)
    parts = [(f.index, f.frame["intersection"].to_numpy(), f.frame["label"].to_numpy(),
              f.frame["score"].to_numpy(dtype=np.float64)) for f in files]
    group = np.concatenate([g for _, g, _, _ in parts])
    key = (np.repeat([i for i, *_ in parts], [g.shape[0] for _, g, _, _ in parts]) * n_groups + group) * 4
    key += 2 * np.concatenate([y for *_, y, _ in parts]) + (np.concatenate([s for *_, s in parts]) >= threshold)
    kept = (group >= 0) & (group < n_groups)  # unknown (negative) codes and codes beyond the table left out
    tn, fp, fn, tp = np.bincount(key[kept], minlength=out.shape[0] * n_groups * 4).reshape(-1, n_groups, 4).T
    out[:, 0] = ratio(fp, fp + tn).T
    out[:, 1] = ratio(tp, tp + fn).T
    return out


# ============================================================================================ other tables
def control_table(tidy: Tidy, runs: list[RunRecord]) -> pd.DataFrame:
    """The baseline's in-domain intersection F_FPR with the bias knobs on against off, per control."""
    tidy = tidy.frame
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


def groups_table(tidy: Tidy) -> pd.DataFrame:
    """Per (test domain, attribute, fairness metric): how many groups entered the gap (min and max over the
    jobs) and the smallest group among them, so a gap over two tiny groups is visibly weak."""
    fair = tidy.frame[tidy.frame["attribute"] != "all"]
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


def seeds_table(tidy: Tidy) -> pd.DataFrame:
    """Which seeds each (method, role, train domain) has: the report says how many each cell averages."""
    grouped = tidy.frame.groupby(["method", "role", "train"], sort=True)["seed"]
    return grouped.agg(n_seeds="nunique", seeds=lambda s: ", ".join(map(str, sorted(set(s))))).reset_index()
