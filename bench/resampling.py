"""The report's bootstrap: each test set's resamples drawn once, and every prediction file evaluated on them.

One `bench.bootstrap.cluster_bootstrap` per test set (videos by default, stratified by label x
intersection group; seeded by ``--seed`` and the test set alone, so a method's intervals do not depend on
which other methods are in the folder) is shared by every file predicting it, which is what makes
differences between methods paired. `bench.replicates.replicate_metrics` evaluates the metrics that
declare ``bootstrapped`` on all replicates; DeLong's placement values are computed per file as well.
`replicate_mean` averages replicates the way a leaderboard cell averages point values. No torch.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bench import stats
from bench.bootstrap import cluster_bootstrap
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
    values = np.full((len(files), len(columns), max(n_boot, 1)), np.nan)
    fpr = np.full((len(files), max(n_boot, 1), NUM_INTERSECTIONS), np.nan)
    tpr = np.full_like(fpr, np.nan)
    delong: dict[int, stats.DeLongParts] = {}
    position = {c: i for i, c in enumerate(columns)}
    chosen = sorted({metric_of(c) for c in columns}, key=METRICS.select("all").index)
    for key in sorted(test_sets):
        test_set = test_sets[key]
        if n_boot > 0:
            strata = test_set.reference["label"].to_numpy() * 100 + test_set.reference["intersection"].to_numpy()
            seed = np.random.SeedSequence([settings.seed, zlib.crc32(key.encode())])
            test_set.boot = cluster_bootstrap(test_set.clusters, strata=strata, n_boot=n_boot, seed=seed)
    bar = tqdm(total=len(files), desc=f"bootstrap ({n_boot} replicates)", unit="file", disable=not progress,
               leave=False)
    for key in sorted(test_sets):
        test_set = test_sets[key]
        labels = test_set.reference["label"].to_numpy()
        for f in test_set.files:
            if labels.min() != labels.max():
                delong[f.index] = stats.delong_parts(labels, f.frame["score"].to_numpy(), clusters=test_set.clusters)
            if test_set.boot is not None and columns:
                rep = replicate_metrics(f.frame, test_set.boot, metrics=chosen, threshold=settings.threshold,
                                        policy=settings.policy, min_group_size=settings.min_group_size)
                for (attribute, metric), v in rep.values.items():
                    column = column_name(attribute, metric)
                    if column in position:
                        values[f.index, position[column]] = v
                if "intersection" in rep.fpr:
                    g = min(NUM_INTERSECTIONS, rep.fpr["intersection"].shape[1])
                    fpr[f.index, :, :g] = rep.fpr["intersection"][:, :g]
                    tpr[f.index, :, :g] = rep.tpr["intersection"][:, :g]
            bar.update(1)
    bar.close()
    if n_boot == 0:
        return Resampled(columns, values[:, :, :0], None, None, delong)
    return Resampled(columns, values, fpr, tpr, delong)


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
