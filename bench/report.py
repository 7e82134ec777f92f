"""`bench report`: metrics for every saved prediction file, tidy and summarised.

Reads only the results folder (no torch, no retraining). Writes:

- ``tables/metrics.csv``: one row per (method, role, train, test, seed, attribute, metric) with the
  value, its unit, how many groups entered a gap and the smallest of them, and the group policy;
- ``tables/leaderboard.csv``: per method and scope (intra-domain, cross-domain), every metric averaged
  over the train/test pairs of that scope, then mean and standard deviation (ddof=1) over seeds;
- ``tables/pairs.csv``: per (method, train, test) the mean over seeds: the train x test matrix;
- ``tables/controls.csv``: the benchmark's own sanity check, the baseline's in-domain fairness gap on a
  domain with its bias knobs on against the same domain with them off.

and prints a compact leaderboard. Significance tests, plots and report.md build on these tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate
from tqdm.auto import tqdm

from bench.errors import BenchError
from bench.metrics import compute_metrics
from bench.store import Store, atomic_write_csv, read_predictions

KEYS = ["method", "role", "train", "test", "seed"]
SUMMARY = [("all", "AUC"), ("intersection", "F_FPR"), ("intersection", "F_MEO"), ("intersection", "F_DP"),
           ("intersection", "F_OAE")]


def collect_metrics(store: Store, *, metrics: str = "all", threshold: float = 0.5, policy: str = "both-classes",
                    min_group_size: int = 1, progress: bool = True) -> pd.DataFrame:
    """The tidy metrics table of every finished job's predictions."""
    runs = store.finished_runs()
    if not runs:
        hint = (f" ({len(store.unfinished_runs())} unfinished job folder(s) there: rerun `bench run` to "
                f"finish them)" if store.unfinished_runs() else "")
        raise BenchError(f"No finished runs in {store.runs}{hint}; run `python -m bench run` first, or "
                         f"point --out at the results folder.")
    frames = []
    files = [(run, domain, path) for run in runs for domain, path in run.prediction_files().items()]
    for run, domain, path in tqdm(files, desc="metrics", unit="file", disable=not progress, leave=False):
        table = compute_metrics(read_predictions(path), metrics=metrics, threshold=threshold, policy=policy,
                                min_group_size=min_group_size)
        table.insert(0, "job", run.job_id)
        for key, value in zip(KEYS, (run.method, run.role, run.train, domain, run.seed), strict=True):
            table[key] = value
        table["scope"] = "intra" if domain == run.train else "cross"
        frames.append(table)
    tidy = pd.concat(frames, ignore_index=True)
    first = [*KEYS, "scope", "attribute", "metric", "value"]
    return tidy[first + [c for c in tidy.columns if c not in first]]


def leaderboard(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per method and scope: each metric averaged over pairs, then mean and std (ddof=1) over seeds."""
    main = tidy[tidy["role"] == "main"]
    per_seed = (main.groupby(["method", "scope", "attribute", "metric", "seed"], sort=False)["value"]
                .agg(pair_mean="mean", n_pairs="count").reset_index())
    summary = (per_seed.groupby(["method", "scope", "attribute", "metric"], sort=False)
               .agg(mean=("pair_mean", "mean"), std=("pair_mean", lambda v: v.std(ddof=1)),
                    n_seeds=("seed", "nunique"), n_pairs=("n_pairs", "max")).reset_index())
    summary["column"] = np.where(summary["attribute"] == "all", summary["metric"],
                                 summary["attribute"] + "/" + summary["metric"])
    return summary


def pair_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per (method, role, train, test): the seed-mean of every metric, one column per metric."""
    tidy = tidy.assign(column=np.where(tidy["attribute"] == "all", tidy["metric"],
                                       tidy["attribute"] + "/" + tidy["metric"]))
    wide = tidy.pivot_table(index=["method", "role", "train", "test", "scope"], columns="column",
                            values="value", aggfunc="mean", sort=False)
    seeds = tidy.groupby(["method", "role", "train", "test", "scope"], sort=False)["seed"].nunique()
    wide.insert(0, "n_seeds", seeds)
    return wide.reset_index()


def control_table(tidy: pd.DataFrame, store: Store) -> pd.DataFrame:
    """The baseline's in-domain intersection F_FPR with the bias knobs on against off, per control."""
    rows = []
    controls = {(r.train, r.method): r.config["job"]["control_for"] for r in store.finished_runs()
                if r.role == "control"}
    gaps = tidy[(tidy["attribute"] == "intersection") & (tidy["metric"] == "F_FPR") & (tidy["scope"] == "intra")]
    for (control, method), control_for in controls.items():
        biased = gaps[(gaps["role"] == "main") & (gaps["method"] == method) & (gaps["train"] == control_for)]
        fair = gaps[(gaps["role"] == "control") & (gaps["method"] == method) & (gaps["train"] == control)]
        rows.append({"method": method, "domain": control_for, "control": control,
                     "F_FPR_bias_on": biased["value"].mean(), "F_FPR_bias_off": fair["value"].mean(),
                     "seeds_on": biased["seed"].nunique(), "seeds_off": fair["seed"].nunique()})
    return pd.DataFrame(rows, columns=["method", "domain", "control", "F_FPR_bias_on", "F_FPR_bias_off",
                                       "seeds_on", "seeds_off"])


def make_report(out: str | Path, *, metrics: str = "all", threshold: float = 0.5, policy: str = "both-classes",
                min_group_size: int = 1, progress: bool = True, echo: bool = True) -> dict[str, pd.DataFrame]:
    store = Store(out)
    tidy = collect_metrics(store, metrics=metrics, threshold=threshold, policy=policy,
                           min_group_size=min_group_size, progress=progress)
    board = leaderboard(tidy)
    wide_board = _wide_leaderboard(board)
    pairs = pair_table(tidy)
    controls = control_table(tidy, store)
    for name, frame in (("metrics", tidy), ("leaderboard", wide_board), ("pairs", pairs), ("controls", controls)):
        atomic_write_csv(store.tables / f"{name}.csv", frame)
    if echo:
        print(_terminal_summary(pairs, controls))
        print(f"\nTables written to {store.tables}: metrics.csv (tidy), leaderboard.csv, pairs.csv, controls.csv")
    return {"metrics": tidy, "leaderboard": wide_board, "pairs": pairs, "controls": controls}


def _wide_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """Rows (method, scope); for each metric column its mean and std over seeds, ranked by AUC."""
    mean = board.pivot_table(index=["method", "scope"], columns="column", values="mean", sort=False, dropna=False)
    std = board.pivot_table(index=["method", "scope"], columns="column", values="std", sort=False, dropna=False)
    std.columns = [f"{c} std" for c in std.columns]
    counts = board.groupby(["method", "scope"], sort=False)[["n_seeds", "n_pairs"]].max()
    wide = pd.concat([counts, mean, std], axis=1)
    ordered = ["n_seeds", "n_pairs"] + [c for col in mean.columns for c in (col, f"{col} std")]
    wide = wide[ordered].reset_index()
    if "AUC" in wide.columns:
        wide["rank_AUC"] = wide.groupby("scope")["AUC"].rank(ascending=False, method="min")
    return wide


def _terminal_summary(pairs: pd.DataFrame, controls: pd.DataFrame) -> str:
    """Per (method, train domain): in-domain and mean cross-domain AUC and intersection gaps."""
    columns = [m if a == "all" else f"{a}/{m}" for a, m in SUMMARY]
    present = [c for c in columns if c in pairs.columns]
    rows = []
    for (method, role, train), group in pairs.groupby(["method", "role", "train"], sort=False):
        intra = group[group["scope"] == "intra"][present].mean()
        cross = group[group["scope"] == "cross"][present].mean()
        name = method if role == "main" else f"{method} (control)"
        rows.append([name, train, *intra.to_numpy(), *cross.to_numpy()])
    headers = ["method", "train"] + [f"intra {_short(c)}" for c in present] + [f"cross {_short(c)}" for c in present]
    text = "Leaderboard (mean over seeds; cross = mean over the other test domains; gaps in percentage points)\n"
    text += tabulate(rows, headers=headers, floatfmt=".1f", missingval="-")
    if len(controls):
        text += "\n\nBenchmark check: the baseline's in-domain intersection F_FPR with the bias knobs on vs off\n"
        text += tabulate(controls.to_numpy().tolist(), headers=list(controls.columns), floatfmt=".1f")
    return text


def _short(column: str) -> str:
    return column.replace("intersection/", "int/")
