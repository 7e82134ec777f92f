"""The tidy metrics table: one row per (job, test domain, attribute, metric), and the views of it that every
other table starts from, computed once.

`tidy_metrics` computes `bench.metrics.compute_metrics`'s rows of every prediction file (`metric_rows_of`, a
share of the files per core); a `Tidy` holds the result with its leaderboard column names ("AUC",
"intersection/F_FPR") and, on first use, the main runs (controls left out), the per-seed scope averages and
the per-pair seed means, so that the leaderboards, the paper tables, the significance tests and the Friedman
test all read the same frames instead of each filtering and grouping the table again. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

import numpy as np
import pandas as pd

from bench.forkmap import available_cores, fork_map
from bench.metrics import METRICS, RESULT_COLUMNS, metric_rows_of, result_frame
from bench.predictions import PredictionFile, ReportSettings, load_predictions
from bench.store import Store

KEYS = ["method", "role", "train", "test", "seed"]
SCOPES = ("cross", "intra")


@dataclass(frozen=True, eq=False)
class Tidy:
    """The tidy table (``frame``, with its ``column`` name and the ``file`` index of each row's prediction
    file) and the views of it the report's tables share."""

    frame: pd.DataFrame

    @cached_property
    def main(self) -> pd.DataFrame:
        """The rows of main runs (the benchmark's control runs left out)."""
        return self.frame[self.frame["role"] == "main"]

    @cached_property
    def main_files(self) -> pd.DataFrame:
        """One row per prediction file of a main run (its keys, scope and ``file`` index)."""
        return self.main.drop_duplicates("file")

    @cached_property
    def per_seed(self) -> pd.DataFrame:
        """Per (method, scope, column, seed): the value averaged over the scope's train -> test pairs."""
        return (self.main.groupby(["method", "scope", "attribute", "metric", "column", "seed"], sort=False)["value"]
                .agg(pair_mean="mean", n_pairs="count").reset_index())

    @cached_property
    def pair_means(self) -> pd.Series:
        """Per (method, scope, column, train, test): the value averaged over seeds."""
        return self.main.groupby(["method", "scope", "column", "train", "test"], sort=False)["value"].mean()

    @cached_property
    def methods(self) -> list[str]:
        """The main runs' methods, sorted."""
        return sorted(self.main["method"].unique())

    def public(self) -> pd.DataFrame:
        """The table as written to ``metrics.csv`` (without the report's internal columns)."""
        return self.frame.drop(columns=["file", "column"])


def tidy_metrics(files: list[PredictionFile], settings: ReportSettings) -> Tidy:
    """The tidy table: one row per (job, test domain, attribute, metric) with value and evidence."""
    point = partial(metric_rows_of, metrics=settings.metrics, threshold=settings.threshold, policy=settings.policy,
                    min_group_size=settings.min_group_size)
    # one share of the files per core, each share's fairness metrics evaluated on its stacked counts
    shares = max(1, min(available_cores(), len(files)))
    per_file: list[list[dict[str, Any]]] = [[] for _ in files]
    for k, share_rows in enumerate(fork_map(point, [[f.frame for f in files[k::shares]] for k in range(shares)])):
        per_file[k::shares] = share_rows
    rows = []
    for f, file_rows in zip(files, per_file, strict=True):
        keys = {"job": f.run.job_id, **f.keys, "scope": f.scope, "file": f.index}
        rows += [{**row, **keys} for row in file_rows]
    first = [*KEYS, "scope", "attribute", "metric", "value"]
    columns = ["job", *RESULT_COLUMNS, *KEYS, "scope", "file"]
    tidy = result_frame(rows, [*first, *(c for c in columns if c not in first)])
    tidy["column"] = column_names(tidy["attribute"], tidy["metric"])
    return Tidy(tidy)


def collect_metrics(store: Store, *, metrics: str = "all", threshold: float = 0.5, policy: str = "both-classes",
                    min_group_size: int = 1, progress: bool = True) -> pd.DataFrame:
    """The tidy metrics table of every finished job's predictions (no bootstrap, no files written)."""
    settings = ReportSettings(metrics=metrics, threshold=threshold, policy=policy, min_group_size=min_group_size)
    return tidy_metrics(load_predictions(store, progress=progress), settings).public()


def column_names(attribute: Any, metric: Any) -> Any:
    """Leaderboard column names: the metric for detection ("AUC"), else "attribute/metric"."""
    attribute, metric = pd.Series(attribute), pd.Series(metric)
    return np.where(attribute.to_numpy() == "all", metric.to_numpy(), attribute.to_numpy() + "/" + metric.to_numpy())


def column_name(attribute: str, metric: str) -> str:
    """One leaderboard column name (see `column_names`)."""
    return metric if attribute == "all" else f"{attribute}/{metric}"


def metric_of(column: str) -> str:
    """The metric of a leaderboard column: "intersection/F_FPR" -> "F_FPR"."""
    return column.rsplit("/", 1)[-1]


def higher_is_better(column: str) -> bool:
    """The direction of a leaderboard column's metric."""
    return METRICS.get(metric_of(column)).higher_is_better


def scope_order(scopes: pd.Series) -> pd.Series:
    """A sort key putting cross-domain rows before intra-domain ones."""
    return scopes.map({s: i for i, s in enumerate(SCOPES)})
