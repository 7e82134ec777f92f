"""Significance: every method against the baseline and every pair of methods, the power of the design,
and the Friedman test.

`significance` tests each comparison at four levels: on one train -> test pair (DeLong's test for AUC,
the paired bootstrap on the shared resamples for every other bootstrapped metric), over training seeds
(the exact sign-flip test), over train -> test pairs (Wilcoxon's signed-rank test) and pooled over training
jobs and test videos (`bench.stats.pooled_test`, which makes the claims and decides the leaderboards'
ranks: unlike the exact tests it has no floor, so one training domain with three seeds can make a claim).
Every row carries the smallest p its test could reach with that design (``p_min``). Holm's and
Benjamini-Hochberg's corrections run within each family (one comparison set, level, scope and metric) and
its size is printed. `power_table` turns the pooled test's standard errors into the smallest difference
from the baseline the design would detect with 80% power. `friedman_table` gives Friedman's test and
Nemenyi's critical difference per scope and metric, shown as a description only. The tests themselves are
`bench.stats`. No torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench import bootstrap, stats
from bench.predictions import Resampled, TestSet
from bench.resampling import nanmean
from bench.tidy import SCOPES, Tidy, higher_is_better, scope_order

SIGNIFICANCE_COLUMNS = ["comparison", "method", "other", "level", "scope", "train", "test", "column", "test_name",
                        "n", "estimate", "ci_low", "ci_high", "se", "df", "p", "p_min", "p_holm", "p_bh",
                        "family_size", "favours", "significant"]
POOLED = "pooled"  # the level that makes the claims and decides the leaderboards' ranks
POOLED_TEST = "pooled t"
POWER = 0.8


def comparisons(methods: Sequence[str], baseline: str | None) -> list[tuple[str, str, str]]:
    """(comparison set, method, other): every method against the baseline, and every pair of methods. A pair
    with the baseline is (method, baseline) in both sets, so no pair is listed in both orders when
    ``methods`` has the baseline last."""
    out = [("vs baseline", m, baseline) for m in methods if baseline is not None and m != baseline]
    out += [("pairwise", a, b) for a, b in _pairs(methods)]
    return out


def _pairs(methods: Sequence[str]) -> Iterable[tuple[str, str]]:
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            yield a, b


def significance(tidy: Tidy, resampled: Resampled, test_sets: dict[str, TestSet], *, baseline: str | None,
                 alpha: float) -> pd.DataFrame:
    """Every comparison (vs baseline, pairwise) at four levels, corrected within families.

    - pair level, on the same test samples: DeLong's test for AUC (seed-averaged AUCs of both methods as one
      contrast; clustered variance) and the paired cluster bootstrap for every other resampled column;
    - seeds level: the exact sign-flip test over the seeds both methods have (scope averages per seed);
    - pairs level: Wilcoxon's signed-rank test over the train -> test pairs of a scope (seed means);
    - pooled level: `bench.stats.pooled_test` over the training jobs (train domain, seed) both methods
      have, with the variance of the test sets (shared bootstrap replicates) and of training (the spread
      of the paired differences, or of each method's own seeds when the jobs share one training domain);
      resampled columns only.

    Estimates are method - other in the column's unit; ``p_min`` is the smallest p the row's test could
    give with its n (and B). A family is one comparison set, one level, one scope and one column; Holm's and
    Benjamini-Hochberg's corrections run within it, and its size is printed. Files without a test set in
    ``test_sets`` have no pair-level rows.
    """
    methods = _method_order(tidy.methods, baseline)
    rows: list[dict[str, Any]] = []
    if len(methods) < 2:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    files = tidy.main_files.set_index("file")
    position = {c: i for i, c in enumerate(resampled.columns)}
    means = tidy.pair_means.reset_index()
    pair_map = {key: dict(zip(zip(g["train"], g["test"], strict=True), g["value"], strict=True))
                for key, g in means.groupby(["method", "scope", "column"], sort=False)}
    seed_map = {key: dict(zip(g["seed"], g["pair_mean"], strict=True))
                for key, g in tidy.per_seed.groupby(["method", "scope", "column"], sort=False)}
    cluster_counts = {k: int(t.clusters.max()) + 1 for k, t in test_sets.items()}
    test_set_of = {f.index: f.test_set for t in test_sets.values() for f in t.files}
    columns = list(dict.fromkeys(tidy.main["column"]))
    jobs = _jobs(tidy, resampled)
    for comparison, method, other in comparisons(methods, baseline):
        if test_set_of:
            rows += _pair_level(comparison, method, other, files, pair_map, resampled, position, cluster_counts,
                                test_set_of, columns, alpha)
        for scope in SCOPES:
            for column in columns:
                rows += _aggregate_levels(comparison, method, other, scope, column, seed_map, pair_map, alpha)
            rows += _pooled_level(comparison, method, other, scope, jobs, resampled.columns, alpha)
    table = pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS[:-5])
    return _correct(table, alpha)


def _method_order(methods: list[str], baseline: str | None) -> list[str]:
    """The methods, the baseline last (every difference with it is then method - baseline)."""
    methods = list(methods)
    if baseline in methods:
        methods.remove(baseline)
        methods.append(baseline)
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
        sets = {test_set_of.get(i) for i in (*a.index, *b.index)}
        if len(sets) != 1 or None in sets:
            continue  # not the same test samples: no paired comparison
        (test_set,) = sets
        scope = "intra" if train == test else "cross"
        common = {"comparison": comparison, "method": method, "other": other, "level": "pair", "scope": scope,
                  "train": train, "test": test, "n": cluster_counts[test_set]}
        if "AUC" in columns and all(i in resampled.delong for i in (*a.index, *b.index)):
            result = _delong_between(list(a.index), list(b.index), resampled.delong, alpha)
            rows.append({**common, "column": "AUC", "test_name": "DeLong", "estimate": 100 * result.estimate,
                         "ci_low": 100 * result.low, "ci_high": 100 * result.high, "se": 100 * result.se,
                         "df": np.inf, "p": result.p, "p_min": 0.0})
        if resampled.n_boot == 0:
            continue
        names = [c for c in resampled.columns if c != "AUC"]
        k = [position[c] for c in names]
        diff = (nanmean(resampled.values[a.index.to_numpy()][:, k])
                - nanmean(resampled.values[b.index.to_numpy()][:, k]))  # (K, B)
        estimate = np.array([pair_map.get((method, scope, c), {}).get((train, test), np.nan)
                             - pair_map.get((other, scope, c), {}).get((train, test), np.nan) for c in names])
        low, high = bootstrap.bootstrap_interval(diff, estimate=estimate, alpha=alpha)
        p = bootstrap.bootstrap_p_value(diff, estimate=estimate)
        floor = 2.0 / (resampled.n_boot + 1)  # bootstrap_p_value's smallest value
        for j, column in enumerate(names):
            rows.append({**common, "column": column, "test_name": "paired bootstrap", "estimate": estimate[j],
                         "ci_low": low[j], "ci_high": high[j], "p": p[j], "p_min": floor})
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
                     "p": result.p, "p_min": stats.sign_flip_floor(result.n)})
    a, b = pair_map.get((method, scope, column), {}), pair_map.get((other, scope, column), {})
    pairs = sorted(set(a) & set(b))
    if pairs:
        result = stats.wilcoxon_test([a[p] - b[p] for p in pairs], alpha=alpha)
        rows.append({**common, "level": "pairs", "test_name": "Wilcoxon", "n": result.n, "estimate": result.estimate,
                     "ci_low": result.low, "ci_high": result.high, "p": result.p,
                     "p_min": stats.wilcoxon_floor(result.n)})
    return rows


@dataclass(frozen=True)
class _Jobs:
    """One method's training jobs in one scope: their keys (train, seed), the value of every resampled column
    averaged over the job's test domains (J, K), and the same on every replicate (J, K, B)."""

    keys: list[tuple[str, int]]
    point: np.ndarray
    replicates: np.ndarray


def _jobs(tidy: Tidy, resampled: Resampled) -> dict[tuple[str, str], _Jobs]:
    """Per (method, scope), the jobs the pooled test pairs up; empty without bootstrap replicates."""
    columns = list(resampled.columns)
    if resampled.n_boot == 0 or not columns:
        return {}
    rows = tidy.main[tidy.main["column"].isin(columns)]
    point = rows.groupby(["method", "scope", "train", "seed", "column"], sort=True)["value"].mean().unstack("column")
    point = point.reindex(columns=columns)
    out = {}
    for (method, scope), files in tidy.main_files.groupby(["method", "scope"], sort=False):
        keys, reps = [], []
        for key, job in files.groupby(["train", "seed"], sort=True):
            keys.append(key)
            reps.append(nanmean(resampled.values[job["file"].to_numpy()]))
        values = point.loc[[(method, scope, *k) for k in keys]].to_numpy(dtype=np.float64)
        out[(method, scope)] = _Jobs(keys, values, np.stack(reps))
    return out


def _pooled_level(comparison: str, method: str, other: str, scope: str, jobs: dict[tuple[str, str], _Jobs],
                  columns: list[str], alpha: float) -> list[dict[str, Any]]:
    """The pooled test per resampled column over the training jobs both methods have in the scope."""
    mine, theirs = jobs.get((method, scope)), jobs.get((other, scope))
    if mine is None or theirs is None:
        return []
    common = sorted(set(mine.keys) & set(theirs.keys))
    if not common:
        return []
    a = [mine.keys.index(k) for k in common]
    b = [theirs.keys.index(k) for k in common]
    e = (mine.point[a] - theirs.point[b]).T  # (K, J)
    r = (mine.replicates[a] - theirs.replicates[b]).transpose(1, 0, 2)  # (K, J, B)
    seeds_only = len({train for train, _ in common}) == 1  # one training domain: the spread per method
    per_method = (mine.point[a].T, mine.replicates[a].transpose(1, 0, 2)) if seeds_only else None
    result = stats.pooled_test(e, r, alpha=alpha, per_method=per_method)
    common_row = {"comparison": comparison, "method": method, "other": other, "level": POOLED, "scope": scope,
                  "train": "", "test": "", "test_name": POOLED_TEST, "p_min": 0.0}
    return [{**common_row, "column": column, "n": int(result.n[k]), "estimate": result.estimate[k],
             "ci_low": result.low[k], "ci_high": result.high[k], "se": result.se[k], "df": result.df[k],
             "p": result.p[k]} for k, column in enumerate(columns)]


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
    higher = np.array([higher_is_better(c) for c in table["column"]], dtype=bool)
    sign = np.sign(table["estimate"].to_numpy(dtype=np.float64)) * np.where(higher, 1.0, -1.0)
    table["favours"] = np.where(sign > 0, table["method"], np.where(sign < 0, table["other"], ""))
    table["significant"] = table["p_holm"].to_numpy(dtype=np.float64) < alpha
    return table[SIGNIFICANCE_COLUMNS]


POWER_COLUMNS = ["scope", "column", "comparisons", "n_jobs", "se", "df", "mdd", "family_size", "mdd_holm"]


def power_table(sig: pd.DataFrame, *, alpha: float, power: float = POWER) -> pd.DataFrame:
    """Per (scope, column): the smallest difference from the baseline the design would detect with ``power``.

    From the pooled test's vs-baseline rows: with se the standard error of a difference and df its degrees of
    freedom, a two-sided level-a t-test detects a true difference delta with probability about ``power`` when
    |delta| >= (t_{df, 1 - a/2} + t_{df, power}) se. ``mdd`` takes a = alpha (one comparison), ``mdd_holm``
    a = alpha / m, the bar Holm's correction sets for the first claim of a family of m comparisons. se and df
    are the medians over the methods compared with the baseline, so the table describes the design (seeds,
    jobs, pairs, test-set sizes), not one method."""
    rows = sig[(sig["comparison"] == "vs baseline") & (sig["level"] == POOLED) & sig["se"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=POWER_COLUMNS)
    table = (rows.groupby(["scope", "column"], sort=False)
             .agg(comparisons=("method", "size"), n_jobs=("n", "median"), se=("se", "median"), df=("df", "median"),
                  family_size=("family_size", "max")).reset_index())
    table["mdd"] = detectable_difference(table["se"], table["df"], alpha=alpha, power=power)
    holm_alpha = alpha / table["family_size"].clip(lower=1)
    table["mdd_holm"] = detectable_difference(table["se"], table["df"], alpha=holm_alpha, power=power)
    table["_scope"] = scope_order(table["scope"])
    table = table.sort_values(["_scope"], kind="stable").drop(columns="_scope").reset_index(drop=True)
    return table.astype({"comparisons": "int64", "family_size": "int64"})[POWER_COLUMNS]


def detectable_difference(se: Any, df: Any, *, alpha: Any, power: float = POWER) -> np.ndarray:
    """(t_{df, 1 - alpha/2} + t_{df, power}) se: the smallest true difference a two-sided t-test at level
    alpha detects with probability ``power`` (the far tail's share of the power ignored)."""
    df = np.asarray(df, dtype=np.float64)
    return (sps.t.ppf(1.0 - np.asarray(alpha, dtype=np.float64) / 2.0, df) + sps.t.ppf(power, df)) * np.asarray(
        se, dtype=np.float64)


# ============================================================================================ rank tests
FRIEDMAN_COLUMNS = ["scope", "column", "method", "mean_rank", "k", "n_blocks", "statistic", "p", "cd", "alpha"]


def friedman_table(tidy: Tidy, *, alpha: float) -> pd.DataFrame:
    """Per (scope, column): Friedman's test over the train -> test pairs (blocks) that every method has, the
    mean rank of each method (1 = best) and Nemenyi's critical difference. Needs two or more methods."""
    rows = []
    if len(tidy.methods) < 2:
        return pd.DataFrame(columns=FRIEDMAN_COLUMNS)
    for (scope, column), values in tidy.pair_means.groupby(level=["scope", "column"], sort=False):
        matrix = values.droplevel(["scope", "column"]).unstack("method").dropna()
        if matrix.shape[1] < 2 or matrix.shape[0] < 1:
            continue
        result = stats.friedman_test(matrix.to_numpy(), higher_is_better=higher_is_better(column), alpha=alpha)
        for method, rank in zip(matrix.columns, result.mean_ranks, strict=True):
            rows.append({"scope": scope, "column": column, "method": method, "mean_rank": rank, "k": result.k,
                         "n_blocks": result.n_blocks, "statistic": result.statistic, "p": result.p, "cd": result.cd,
                         "alpha": alpha})
    table = pd.DataFrame(rows, columns=FRIEDMAN_COLUMNS)
    table["_scope"] = scope_order(table["scope"])
    return table.sort_values(["_scope", "column", "mean_rank"], kind="stable").drop(columns="_scope").reset_index(
        drop=True)
