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
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from bench import bootstrap, distributions, stats
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
    if len(methods) < 2:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    pairs = comparisons(methods, baseline)
    pair_map = _nested(tidy.pair_means.reset_index(), ["train", "test"], "value")
    seed_map = _nested(tidy.per_seed, ["seed"], "pair_mean")
    columns = list(dict.fromkeys(tidy.main["column"]))
    blocks = [_aggregate_levels(pairs, columns, seed_map, pair_map, alpha)]
    cells = _Cells(tidy, resampled, test_sets, pair_map)
    if cells.test_set_of:
        blocks.append(_pair_level(pairs, cells, columns, alpha))
    jobs = _jobs(tidy, resampled)
    pooled: list[dict[str, Any]] = []
    order: list[tuple[int, int, int]] = []
    done: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # a pair with the baseline is in both sets
    for c, (comparison, method, other) in enumerate(pairs):
        for s, scope in enumerate(SCOPES):
            if (method, other, scope) not in done:
                done[method, other, scope] = _pooled_level(method, other, scope, jobs, resampled.columns, alpha)
            rows = [{**row, "comparison": comparison} for row in done[method, other, scope]]
            pooled += rows
            order += [(c, 2 + 2 * s, r) for r in range(len(rows))]
    blocks.append(_Block(pd.DataFrame(pooled, columns=SIGNIFICANCE_COLUMNS[:-5]), order))
    return _correct(_in_order(blocks), alpha)


def _nested(frame: pd.DataFrame, inner: list[str], value: str) -> dict[tuple, dict]:
    """{(method, scope, column): {inner key: value}}, the inner key a tuple unless ``inner`` is one name."""
    outer = zip(*(frame[c].tolist() for c in ("method", "scope", "column")), strict=True)
    keys = zip(*(frame[c].tolist() for c in inner), strict=True) if len(inner) > 1 else frame[inner[0]].tolist()
    out: dict[tuple, dict] = {}
    for group, key, v in zip(outer, keys, frame[value].tolist(), strict=True):
        out.setdefault(group, {})[key] = v
    return out


@dataclass(frozen=True)
class _Block:
    """Rows of the table and where each goes: (comparison's position, part, position in the part); parts are
    the pair level (0), then per scope its seeds and pairs levels (1, 3, ...) and its pooled level (2, 4, ...),
    the order of the comparisons and scopes in which the table was always written."""

    rows: pd.DataFrame
    order: list[tuple[int, int, int]]


def _in_order(blocks: list[_Block]) -> pd.DataFrame:
    """The blocks' rows as one table, in the table's order."""
    kept = [b for b in blocks if len(b.rows)]
    if not kept:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS[:-5])
    table = pd.concat([b.rows[SIGNIFICANCE_COLUMNS[:-5]] for b in kept], ignore_index=True)
    keys = np.array([key for b in kept for key in b.order], dtype=np.int64).reshape(-1, 3)
    return table.iloc[np.lexsort(keys.T[::-1])].reset_index(drop=True)


def _method_order(methods: list[str], baseline: str | None) -> list[str]:
    """The methods, the baseline last (every difference with it is then method - baseline)."""
    methods = list(methods)
    if baseline in methods:
        methods.remove(baseline)
        methods.append(baseline)
    return methods


class _Cells:
    """Each method's prediction files per train -> test pair (a cell), with what the pair level needs of a
    cell, computed once however many comparisons use it: its test set (None unless all its files predict one),
    the replicates of every bootstrapped column averaged over its files (seeds), and its point values."""

    def __init__(self, tidy: Tidy, resampled: Resampled, test_sets: dict[str, TestSet], pair_map: dict) -> None:
        files = tidy.main_files
        ids = files["file"].to_numpy()
        self.files = {key: ids[positions] for key, positions in
                      files.groupby(["method", "train", "test"], sort=True).indices.items()}
        self.test_set_of = {f.index: f.test_set for t in test_sets.values() for f in t.files}
        self.cluster_counts = {k: int(t.clusters.max()) + 1 for k, t in test_sets.items()}
        self.resampled = resampled
        self.names = [c for c in resampled.columns if c != "AUC"]
        self.positions = [list(resampled.columns).index(c) for c in self.names]
        self.pair_map = pair_map
        self._replicates: dict[tuple[str, str, str], np.ndarray] = {}
        self._estimates: dict[tuple[str, str, str, str], np.ndarray] = {}

    def of(self, method: str) -> list[tuple[str, str]]:
        """The method's train -> test pairs, sorted."""
        return sorted((train, test) for m, train, test in self.files if m == method)

    def test_set(self, method: str, other: str, train: str, test: str) -> str | None:
        """The one test set every file of both methods' cells predicts, or None."""
        sets = {self.test_set_of.get(i) for m in (method, other) for i in self.files[m, train, test]}
        return next(iter(sets)) if len(sets) == 1 and None not in sets else None

    def replicates(self, method: str, train: str, test: str) -> np.ndarray:
        """(K, B): every bootstrapped column but AUC on every replicate, averaged over the cell's files."""
        key = (method, train, test)
        if key not in self._replicates:
            self._replicates[key] = nanmean(self.resampled.values[self.files[key]][:, self.positions])
        return self._replicates[key]

    def estimate(self, method: str, scope: str, train: str, test: str) -> np.ndarray:
        """(K,): the cell's seed-averaged value of every bootstrapped column but AUC (NaN where missing)."""
        key = (method, scope, train, test)
        if key not in self._estimates:
            self._estimates[key] = np.array([self.pair_map.get((method, scope, c), {}).get((train, test), np.nan)
                                             for c in self.names])
        return self._estimates[key]


class _PairTests(NamedTuple):
    """The pair-level tests of one method against another: the train -> test pairs both have on the same test
    samples ((scope, train, test, n) each), whether each has a DeLong test, the DeLong contrasts' (estimate,
    variance) and the bootstrap's (4, pairs x K) estimate, low, high and p (None without replicates)."""

    cells: list[tuple[str, str, str, int]]
    delong: list[bool]
    moments: list[tuple[float, float]]
    boot: np.ndarray | None


def _pair_tests(method: str, other: str, cells: _Cells, columns: list[str], alpha: float) -> _PairTests:
    resampled = cells.resampled
    out = _PairTests([], [], [], None)
    theirs = set(cells.of(other))
    for train, test in cells.of(method):
        test_set = cells.test_set(method, other, train, test) if (train, test) in theirs else None
        if test_set is None:
            continue  # not the same test samples: no paired comparison
        mine, their_files = cells.files[method, train, test], cells.files[other, train, test]
        out.cells.append(("intra" if train == test else "cross", train, test, cells.cluster_counts[test_set]))
        out.delong.append("AUC" in columns and all(i in resampled.delong for i in (*mine, *their_files)))
        if out.delong[-1]:
            out.moments.append(_delong_between(list(mine), list(their_files), resampled.delong))
    k = len(cells.names)
    if resampled.n_boot == 0 or not out.cells:
        return out
    diff, estimate = np.empty((len(out.cells) * k, resampled.n_boot)), np.empty(len(out.cells) * k)
    for j, (scope, train, test, _) in enumerate(out.cells):  # all the differences, (pairs x K, B), in one array
        np.subtract(cells.replicates(method, train, test), cells.replicates(other, train, test),
                    out=diff[j * k:(j + 1) * k])
        np.subtract(cells.estimate(method, scope, train, test), cells.estimate(other, scope, train, test),
                    out=estimate[j * k:(j + 1) * k])
    low, high, p = bootstrap.interval_and_p_value(diff, estimate=estimate, alpha=alpha)
    return out._replace(boot=np.stack([estimate, low, high, p]))


def _pair_level(pairs: list[tuple[str, str, str]], cells: _Cells, columns: list[str], alpha: float) -> _Block:
    """Per comparison, per train -> test pair both methods have on the same test samples: DeLong's test of
    AUC and the paired bootstrap of every other resampled column; the DeLong tests as one batch, the
    bootstraps as one per pair of methods (a pair with the baseline is in both comparison sets: tested once).
    Each train -> test pair's rows: its DeLong row, then its bootstrap rows."""
    resampled = cells.resampled
    rows: list[tuple] = []  # per pair: (comparison's position, comparison, method, other, scope, train, test, n)
    delong: list[bool] = []
    moments: list[tuple[float, float]] = []
    boot: list[np.ndarray] = []  # per comparison: estimate, low, high, p (4, pairs x K)
    k = len(cells.names) if resampled.n_boot else 0
    done: dict[tuple[str, str], _PairTests] = {}
    for c, (comparison, method, other) in enumerate(pairs):
        if (method, other) not in done:
            done[method, other] = _pair_tests(method, other, cells, columns, alpha)
        tests = done[method, other]
        rows += [(c, comparison, method, other, *cell) for cell in tests.cells]
        delong += tests.delong
        moments += tests.moments
        if tests.boot is not None:
            boot.append(tests.boot)
    has = np.array(delong, dtype=bool)
    counts = has.astype(np.int64) + k
    first = np.cumsum(counts) - counts  # each pair's first row
    total = int(counts.sum())
    table = {name: np.repeat(np.array([r[i] for r in rows], dtype=object), counts).tolist()
             for i, name in enumerate(("comparison", "method", "other", "scope", "train", "test"), start=1)}
    table["level"] = ["pair"] * total
    table["n"] = np.repeat(np.array([r[7] for r in rows], dtype=np.int64), counts)
    at_delong = first[has]
    at_boot = (first + has)[:, None] + np.arange(k)
    column, test_name = np.empty(total, dtype=object), np.empty(total, dtype=object)
    column[at_delong], test_name[at_delong] = "AUC", "DeLong"
    column[at_boot], test_name[at_boot] = np.array(cells.names[:k], dtype=object), "paired bootstrap"
    table["column"], table["test_name"] = column.tolist(), test_name.tolist()
    numbers = {name: np.full(total, np.nan) for name in SIGNIFICANCE_COLUMNS[10:17]}
    if moments:
        result = stats.delong_contrasts(*np.array(moments).T, alpha=alpha)
        for name, values in (("estimate", result.estimate), ("ci_low", result.low), ("ci_high", result.high),
                             ("se", result.se)):
            numbers[name][at_delong] = 100 * values
        numbers["df"][at_delong], numbers["p"][at_delong], numbers["p_min"][at_delong] = np.inf, result.p, 0.0
    if boot:
        values = np.concatenate(boot, axis=1)
        for name, row in zip(("estimate", "ci_low", "ci_high", "p"), values, strict=True):
            numbers[name][at_boot.ravel()] = row
        numbers["p_min"][at_boot.ravel()] = 2.0 / (resampled.n_boot + 1)  # bootstrap_p_value's smallest value
    frame = pd.DataFrame({**table, **numbers})[SIGNIFICANCE_COLUMNS[:-5]]
    return _Block(frame, [(int(c), 0, i) for i, c in enumerate(np.repeat([r[0] for r in rows], counts))])


def _delong_between(mine: list[int], theirs: list[int], parts: dict[int, stats.DeLongParts]) -> tuple[float, float]:
    """DeLong contrast mean(AUC of ``mine``) - mean(AUC of ``theirs``) and its variance, all files on one test
    set."""
    chosen = [parts[i] for i in (*mine, *theirs)]
    first = chosen[0]
    combined = stats.DeLongParts(auc=np.concatenate([p.auc for p in chosen]),
                                 fake=np.vstack([p.fake for p in chosen]), real=np.vstack([p.real for p in chosen]),
                                 n_fake=first.n_fake, n_real=first.n_real, c_fake=first.c_fake, c_real=first.c_real,
                                 c_all=first.c_all)
    contrast = np.concatenate([np.full(len(mine), 1.0 / len(mine)), np.full(len(theirs), -1.0 / len(theirs))])
    return stats.contrast_moments(combined.auc, stats.delong_covariance(combined), contrast)


def _aggregate_levels(pairs: list[tuple[str, str, str]], columns: list[str], seed_map: dict, pair_map: dict,
                      alpha: float) -> _Block:
    """Per comparison, scope and column: the sign-flip test over the seeds both methods have and Wilcoxon's
    test over the train -> test pairs both have, each run as one batch over all of them."""
    seeds: list[tuple[tuple, np.ndarray]] = []
    wilcoxon: list[tuple[tuple, np.ndarray]] = []
    seed_values, pair_values = _Sorted(seed_map), _Sorted(pair_map)
    for c, (comparison, method, other) in enumerate(pairs):
        for s, scope in enumerate(SCOPES):
            for j, column in enumerate(columns):
                key = (c, 1 + 2 * s, 2 * j, comparison, method, other, scope, column)
                d = seed_values.differences((method, scope, column), (other, scope, column))
                if d is not None:
                    seeds.append((key, d))
                d = pair_values.differences((method, scope, column), (other, scope, column))
                if d is not None:
                    wilcoxon.append(((*key[:2], key[2] + 1, *key[3:]), d))
    flips = stats.sign_flip_tests([d for _, d in seeds], alpha=alpha)
    ranks = stats.wilcoxon_tests([d for _, d in wilcoxon], alpha=alpha)
    keys = [key for key, _ in seeds] + [key for key, _ in wilcoxon]
    names = np.where(flips.exact, "sign-flip", "sign-flip (MC)").tolist() + ["Wilcoxon"] * len(wilcoxon)
    table = pd.DataFrame({
        "comparison": [k[3] for k in keys], "method": [k[4] for k in keys], "other": [k[5] for k in keys],
        "level": ["seeds"] * len(seeds) + ["pairs"] * len(wilcoxon), "scope": [k[6] for k in keys],
        "train": [""] * len(keys), "test": [""] * len(keys), "column": [k[7] for k in keys], "test_name": names,
        "n": np.concatenate([flips.n, ranks.n]), "estimate": np.concatenate([flips.estimate, ranks.estimate]),
        "ci_low": np.concatenate([flips.low, ranks.low]), "ci_high": np.concatenate([flips.high, ranks.high]),
        "se": np.nan, "df": np.nan, "p": np.concatenate([flips.p, ranks.p]),
        "p_min": _per_value(stats.sign_flip_floor, flips.n) + _per_value(stats.wilcoxon_floor, ranks.n)})
    return _Block(table, [k[:3] for k in keys])


class _Sorted:
    """Per (method, scope, column), its values ({key: value}) in the order of their sorted keys, made once:
    the paired differences of two methods over the keys both have, in that order."""

    def __init__(self, nested: dict[tuple, dict]) -> None:
        self.nested = nested
        self.sorted: dict[tuple, tuple[list, np.ndarray]] = {}

    def _of(self, cell: tuple) -> tuple[list, np.ndarray]:
        if cell not in self.sorted:
            values = self.nested.get(cell, {})
            keys = sorted(values)
            self.sorted[cell] = keys, np.array([values[k] for k in keys], dtype=np.float64)
        return self.sorted[cell]

    def differences(self, mine: tuple, theirs: tuple) -> np.ndarray | None:
        """mine - theirs over the keys both have, sorted; None when they have none in common."""
        (a_keys, a), (b_keys, b) = self._of(mine), self._of(theirs)
        if a_keys == b_keys:  # the usual case: the same keys
            return a - b if a_keys else None
        common = sorted(set(a_keys) & set(b_keys))
        if not common:
            return None
        a_at, b_at = {k: i for i, k in enumerate(a_keys)}, {k: i for i, k in enumerate(b_keys)}
        return a[[a_at[k] for k in common]] - b[[b_at[k] for k in common]]


def _per_value(fn: Any, values: np.ndarray) -> list[Any]:
    """``[fn(v) for v in values]`` for integers ``values``, with ``fn`` called once per distinct value."""
    distinct = {v: fn(v) for v in set(values.tolist())}
    return [distinct[v] for v in values.tolist()]


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
    files = tidy.main_files
    ids = files["file"].to_numpy()
    by_cell: dict[tuple[str, str], list[tuple[str, int]]] = {}
    positions = files.groupby(["method", "scope", "train", "seed"], sort=True).indices  # keys sorted
    for method, scope, train, seed in sorted(positions):
        by_cell.setdefault((method, scope), []).append((train, seed))
    at = iter(point.index.get_indexer([(*cell, *k) for cell, keys in by_cell.items() for k in keys]).tolist())
    values = point.to_numpy(dtype=np.float64)
    out = {}
    for (method, scope), keys in by_cell.items():
        rows = [next(at) for _ in keys]
        reps = [nanmean(resampled.values[ids[positions[method, scope, *k]]]) for k in keys]
        out[(method, scope)] = _Jobs(keys, values[rows], np.stack(reps))
    return out


def _pooled_level(method: str, other: str, scope: str, jobs: dict[tuple[str, str], _Jobs],
                  columns: list[str], alpha: float) -> list[dict[str, Any]]:
    """The pooled test per resampled column over the training jobs both methods have in the scope (the rows
    without their comparison set)."""
    mine, theirs = jobs.get((method, scope)), jobs.get((other, scope))
    if mine is None or theirs is None:
        return []
    common = sorted(set(mine.keys) & set(theirs.keys))
    if not common:
        return []
    a = _rows(mine.keys, common)
    b = _rows(theirs.keys, common)
    e = (mine.point[a] - theirs.point[b]).T  # (K, J)
    r = (mine.replicates[a] - theirs.replicates[b]).transpose(1, 0, 2)  # (K, J, B)
    seeds_only = len({train for train, _ in common}) == 1  # one training domain: the spread per method
    per_method = (mine.point[a].T, mine.replicates[a].transpose(1, 0, 2)) if seeds_only else None
    result = stats.pooled_test(e, r, alpha=alpha, per_method=per_method)
    common_row = {"method": method, "other": other, "level": POOLED, "scope": scope,
                  "train": "", "test": "", "test_name": POOLED_TEST, "p_min": 0.0}
    return [{**common_row, "column": column, "n": int(result.n[k]), "estimate": result.estimate[k],
             "ci_low": result.low[k], "ci_high": result.high[k], "se": result.se[k], "df": result.df[k],
             "p": result.p[k]} for k, column in enumerate(columns)]


def _rows(keys: list[tuple[str, int]], chosen: list[tuple[str, int]]) -> list[int] | slice:
    """Where each of ``chosen`` is in ``keys``: all of them in order (the usual case) as a slice, so the jobs'
    arrays are read in place rather than copied."""
    if chosen == keys:
        return slice(None)
    return [keys.index(k) for k in chosen]


def _correct(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    table = table.copy()
    p = table["p"].to_numpy(dtype=np.float64)
    family = _group_numbers(table, ["comparison", "level", "scope", "column"])
    holm = stats.holm(p, families=family)
    size = np.bincount(family[~np.isnan(p)], minlength=family.max() + 1 if family.size else 0)[family]
    table["p_holm"], table["p_bh"] = holm, stats.benjamini_hochberg(p, families=family)
    table["family_size"] = size.astype(np.int64)
    codes, names = pd.factorize(table["column"])
    higher = np.array([higher_is_better(c) for c in names], dtype=bool)[codes]
    sign = np.sign(table["estimate"].to_numpy(dtype=np.float64)) * np.where(higher, 1.0, -1.0)
    table["favours"] = np.where(sign > 0, table["method"], np.where(sign < 0, table["other"], ""))
    table["significant"] = holm < alpha
    return table[SIGNIFICANCE_COLUMNS]


def _group_numbers(table: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """``table.groupby(keys, sort=False).ngroup()`` of key columns without missing values: each row's group,
    numbered in order of first appearance (from each column's codes, without building the groups)."""
    combined = np.zeros(len(table), dtype=np.int64)
    for key in keys:
        codes, uniques = pd.factorize(table[key])
        combined = combined * len(uniques) + codes
    return pd.factorize(combined)[0]


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
    return (distributions.t_ppf(1.0 - np.asarray(alpha, dtype=np.float64) / 2.0, df)
            + distributions.t_ppf(power, df)) * np.asarray(se, dtype=np.float64)


# ============================================================================================ rank tests
FRIEDMAN_COLUMNS = ["scope", "column", "method", "mean_rank", "k", "n_blocks", "statistic", "p", "cd", "alpha"]


def friedman_table(tidy: Tidy, *, alpha: float) -> pd.DataFrame:
    """Per (scope, column): Friedman's test over the train -> test pairs (blocks) that every method has, the
    mean rank of each method (1 = best) and Nemenyi's critical difference. Needs two or more methods."""
    rows = []
    if len(tidy.methods) < 2:
        return pd.DataFrame(columns=FRIEDMAN_COLUMNS)
    means = tidy.pair_means
    # one matrix of every (scope, column, train, test) by method; a cell's methods are those with a value there
    wide = means.reorder_levels(["scope", "column", "train", "test", "method"]).unstack("method")
    values, methods = wide.to_numpy(dtype=np.float64), wide.columns.to_numpy()
    cells = wide.groupby(level=["scope", "column"], sort=False).indices
    for scope, column in dict.fromkeys(zip(means.index.get_level_values("scope"),
                                           means.index.get_level_values("column"), strict=True)):
        block = values[cells[scope, column]]
        present = ~np.isnan(block).all(axis=0)
        block = block[:, present]
        block = block[~np.isnan(block).any(axis=1)]  # the blocks (pairs) every one of them has
        if block.shape[1] < 2 or block.shape[0] < 1:
            continue
        result = stats.friedman_test(block, higher_is_better=higher_is_better(column), alpha=alpha)
        for method, rank in zip(methods[present], result.mean_ranks, strict=True):
            rows.append({"scope": scope, "column": column, "method": method, "mean_rank": rank, "k": result.k,
                         "n_blocks": result.n_blocks, "statistic": result.statistic, "p": result.p, "cd": result.cd,
                         "alpha": alpha})
    table = pd.DataFrame(rows, columns=FRIEDMAN_COLUMNS)
    table["_scope"] = scope_order(table["scope"])
    return table.sort_values(["_scope", "column", "mean_rank"], kind="stable").drop(columns="_scope").reset_index(
        drop=True)
