"""The report's bootstrap: each test set's resamples drawn once, and every prediction file evaluated on them.

One `bench.bootstrap.cluster_bootstrap` per test set (videos by default, stratified by label x
intersection group; seeded by ``--seed`` and the test set alone, so a method's intervals do not depend on
which other methods are in the folder) is shared by every file predicting it, which is what makes
differences between methods paired. `bench.replicates.replicate_metrics` evaluates the metrics that
declare ``bootstrapped`` on all replicates; DeLong's placement values are computed per file as well.
`replicate_mean` averages replicates the way a leaderboard cell averages point values. No torch.
"""

from __future__ import annotations

import mmap
import warnings
import zlib
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bench import stats
from bench.bootstrap import cluster_bootstrap
from bench.forkmap import fork_map
from bench.groups import NUM_INTERSECTIONS
from bench.metrics import METRICS
from bench.predictions import PredictionFile, ReportSettings, Resampled, TestSet
from bench.replicates import replicate_metrics
from bench.tidy import Tidy, column_name, metric_of


def bootstrap_columns(tidy: Tidy) -> list[str]:
    """The leaderboard columns the bootstrap covers: those of the metrics registered ``bootstrapped``."""
    rows = tidy.frame.drop_duplicates("column")
    keep = [METRICS.get(m).bootstrapped for m in rows["metric"]]
    return list(rows.loc[keep, "column"])


def resample(files: list[PredictionFile], test_sets: dict[str, TestSet], columns: list[str],
             settings: ReportSettings, *, progress: bool = True) -> Resampled:
    """Draw each test set's resamples once and evaluate every file on them; DeLong pieces per file."""
    n_boot = settings.n_boot
    # written in place by whichever process evaluates a file: only DeLong's pieces come back through a pipe
    out = _Outputs(values=shared_nan((len(files), len(columns), max(n_boot, 1))),
                   fpr=shared_nan((len(files), max(n_boot, 1), NUM_INTERSECTIONS)),
                   tpr=shared_nan((len(files), max(n_boot, 1), NUM_INTERSECTIONS)))
    chosen = sorted({metric_of(c) for c in columns}, key=METRICS.select("all").index)
    for key in sorted(test_sets):
        test_set = test_sets[key]
        if n_boot > 0:
            strata = test_set.reference["label"].to_numpy() * 100 + test_set.reference["intersection"].to_numpy()
            seed = np.random.SeedSequence([settings.seed, zlib.crc32(key.encode())])
            test_set.boot = cluster_bootstrap(test_set.clusters, strata=strata, n_boot=n_boot, seed=seed)
    tasks = [_FileTask(f, test_sets[key], columns, chosen, settings, out) for key in sorted(test_sets)
             for f in test_sets[key].files]
    with tqdm(total=len(tasks), desc=f"bootstrap ({n_boot} replicates)", unit="file", disable=not progress,
              leave=False) as bar:
        results = fork_map(_evaluate, tasks, done=bar.update)
    delong = {task.file.index: parts for task, parts in zip(tasks, results, strict=True) if parts is not None}
    if n_boot == 0:
        return Resampled(columns, out.values[:, :, :0], None, None, delong)
    return Resampled(columns, out.values, out.fpr, out.tpr, delong)


def shared_nan(shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of NaN in memory shared with the processes forked after it (`bench.forkmap`): what
    a worker writes into it, this process reads, with nothing pickled and sent back. (Sent back, the
    bootstrap's replicates were about 40 MB on the default grid.)"""
    count = int(np.prod(shape))
    array = np.frombuffer(mmap.mmap(-1, max(count, 1) * 8), dtype=np.float64, count=count).reshape(shape)
    array.fill(np.nan)
    return array


class _Outputs(NamedTuple):
    """Where `_evaluate` writes each file's replicates (row ``file.index``): the columns' values
    (files, columns, B) and the intersectional rates (files, B, groups)."""

    values: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray


class _FileTask(NamedTuple):
    """One prediction file's share of the bootstrap: its test set (with the drawn resamples) and what to
    evaluate on it."""

    file: PredictionFile
    test_set: TestSet
    columns: list[str]
    metrics: list[str]
    settings: ReportSettings
    out: _Outputs


def _evaluate(task: _FileTask) -> stats.DeLongParts | None:
    """Every bootstrapped column on every resample (when there are resamples and columns) of one file,
    written to ``task.out``; returns DeLong's placements (None unless the test set has both classes)."""
    f, test_set, s = task.file, task.test_set, task.settings
    labels = test_set.reference["label"].to_numpy()
    parts = None
    if labels.min() != labels.max():
        parts = stats.delong_parts(labels, f.frame["score"].to_numpy(), clusters=test_set.clusters)
    if test_set.boot is None or not task.metrics:
        return parts
    rep = replicate_metrics(f.frame, test_set.boot, metrics=task.metrics, threshold=s.threshold, policy=s.policy,
                            min_group_size=s.min_group_size)
    i, position = f.index, {c: k for k, c in enumerate(task.columns)}
    values = task.out.values[i]
    values.fill(np.nan)  # a share redone after a worker failed starts afresh
    for (attribute, metric), v in rep.values.items():
        column = column_name(attribute, metric)
        if column in position:
            values[position[column]] = v
    empty = np.empty((test_set.boot.n_boot, 0))
    fpr, tpr = rep.fpr.get("intersection", empty), rep.tpr.get("intersection", empty)
    g = min(NUM_INTERSECTIONS, fpr.shape[1])
    task.out.fpr[i, :, :g], task.out.tpr[i, :, :g] = fpr[:, :g], tpr[:, :g]
    return parts


def nanmean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """``np.nanmean`` without its "Mean of empty slice" warning: an all-NaN mean is NaN by design here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def replicate_mean(files: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Replicates of a leaderboard cell: per seed the mean over its files (pairs), then the mean over seeds.

    ``files`` holds the cell's prediction files (``file`` index and ``seed``); ``values`` is indexed by
    file along its first axis."""
    per_seed = [nanmean(values[group["file"].to_numpy()]) for _, group in files.groupby("seed", sort=True)]
    return nanmean(np.stack(per_seed))
