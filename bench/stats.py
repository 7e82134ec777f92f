"""Statistics for the report: cluster bootstrap, DeLong, paired tests, multiple comparisons, rank tests.

Everything here is a pure function of arrays, tested against references (scipy, statsmodels, pROC's
published values, brute force). The module does not import torch, so ``bench report`` starts fast.

The pieces, and why each is the one used:

- `cluster_bootstrap`: resamples *clusters* (videos by default, identities on request), stratified by
  label x group. Frames of one video are not independent, so resampling frames would make every interval
  too narrow; stratifying keeps each (label, group) cell's number of clusters fixed, so no group loses a
  class in a resample and every gap stays defined. A resample is stored as draw counts per cluster
  (B, C): statistics that are sums over samples become matrix products, and every method predicting the
  same test set sees the same resamples, which is what makes a difference between two methods *paired*.
- `replicate_metrics`: AUC, ACC, log-loss, Brier and every fairness metric for all B resamples at once
  (per-group confusion counts by one matrix product, AUCs by a cluster-pair matrix or a prefix scan,
  the gaps by `bench.metrics.fairness_gaps` on (B, G) arrays).
- `bootstrap_interval`, `bootstrap_p_value`, `bootstrap_ci` and `paired_bootstrap`: basic (reverse
  percentile; the default, because resampling inflates max - min gaps) or percentile intervals and the
  matching two-sided p-value, for any statistic written as a function of sample weights.
- `delong_test` (and `delong_parts`, `delong_contrast`): DeLong's test for correlated AUCs with the fast
  mid-rank algorithm of Sun & Xu (2014); with clusters, Obuchowski's (1997) clustered variance, which
  reduces to DeLong's exactly when every cluster is one sample.
- `sign_flip_test`: the exact paired permutation test over seeds (all 2^S sign patterns), with Hartigan's
  (1969) exact interval from subset means.
- `wilcoxon_test`: signed-rank test over train/test pairs, with the Hodges-Lehmann estimate and its
  exact distribution-free interval.
- `holm`, `benjamini_hochberg`: multiple-comparison corrections (family = the p-values passed in).
- `friedman_test`, `nemenyi_cd`: the Friedman test and Nemenyi critical difference for a CD diagram.
  Mean-rank post-hoc tests depend on which other methods are in the comparison (Benavoli, Corani &
  Mangili, JMLR 2016), so the report shows them as a description and makes its claims with the pairwise
  Wilcoxon tests and Holm's correction instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from scipy import stats as sps

from bench.errors import BenchError
from bench.metrics import ATTRIBUTES, DEFAULT_POLICY, METRICS, fairness_gaps

__all__ = [
    "BOOTSTRAP_DETECTION",
    "BootstrapResult",
    "ClusterBootstrap",
    "DeLongParts",
    "DeLongResult",
    "FriedmanResult",
    "Replicates",
    "TestResult",
    "benjamini_hochberg",
    "bootstrap_ci",
    "bootstrap_interval",
    "bootstrap_p_value",
    "cluster_bootstrap",
    "delong_contrast",
    "delong_covariance",
    "delong_parts",
    "delong_test",
    "friedman_test",
    "holm",
    "nemenyi_cd",
    "paired_bootstrap",
    "rank_rows",
    "replicate_metrics",
    "sign_flip_test",
    "weighted_auc",
    "weighted_group_counts",
    "wilcoxon_test",
]

# Detection metrics `replicate_metrics` resamples besides the fairness metrics. AP, EER and video_AUC need
# a full ROC per replicate (a prefix scan over every sample for each of B replicates); they are left to
# `bootstrap_ci` with a statistic of the user's choosing.
BOOTSTRAP_DETECTION = ("AUC", "ACC", "log_loss", "brier")

_BAD_ALPHA = "alpha must be a number strictly between 0 and 1; got {value!r}."
_BAD_N_BOOT = "the number of bootstrap replicates must be an integer >= 1; got {value!r}."
_LENGTHS = "{what}: expected {expected} values (one per sample), got {got}."


def _alpha(value: Any) -> float:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool) and 0.0 < value < 1.0
    if not ok:
        raise BenchError(_BAD_ALPHA.format(value=value))
    return float(value)


# ============================================================================================ bootstrap
@dataclass(frozen=True, eq=False)
class ClusterBootstrap:
    """B stratified cluster resamples of one test set of N samples, stored as draw counts.

    ``codes`` (N,) gives each sample's cluster in 0..C-1, ``counts`` (B, C) how often each cluster is drawn
    in each replicate, ``strata`` (C,) each cluster's stratum. A sample appears in replicate b as often as
    its cluster was drawn, so ``weights()`` are the resampled data as integer sample weights. Build it with
    `cluster_bootstrap`.
    """

    codes: np.ndarray
    counts: np.ndarray
    strata: np.ndarray

    @property
    def n_boot(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_clusters(self) -> int:
        return int(self.counts.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.codes.shape[0])

    def weights(self, rows: slice = slice(None)) -> np.ndarray:
        """Sample weights (b, N), float64, of the replicates ``rows``: how often each sample is drawn."""
        return self.counts[rows][:, self.codes].astype(np.float64)

    def indices(self, replicate: int) -> np.ndarray:
        """The resampled sample indices of one replicate (each sample repeated as often as it is drawn)."""
        return np.repeat(np.arange(self.n_samples), self.counts[replicate][self.codes])


def cluster_bootstrap(clusters: Any, *, strata: Any = None, n_boot: int = 1000,
                      seed: int | np.random.SeedSequence | np.random.Generator = 0) -> ClusterBootstrap:
    """Draw ``n_boot`` stratified cluster resamples of a test set.

    ``clusters`` (N,) holds each sample's cluster id (videos, identities; ``np.arange(N)`` for no
    clustering). ``strata`` (N,) optional holds each sample's stratum (the report uses label x
    intersection group). A cluster whose samples all share one stratum belongs to it; clusters that mix
    strata (an identity with real and fake videos, say) form one extra stratum of their own. Within each
    stratum of C_h clusters a replicate draws C_h clusters uniformly with replacement, so every stratum
    keeps its number of clusters in every replicate.

    The draws are reproducible from ``seed`` (an int, a `SeedSequence` or a `Generator`).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise BenchError(_BAD_N_BOOT.format(value=n_boot))
    codes, uniques = pd.factorize(np.asarray(clusters), use_na_sentinel=True)
    if codes.size and codes.min() < 0:
        raise BenchError(f"clusters: {int((codes < 0).sum())} sample(s) have no cluster id.")
    n_clusters = len(uniques)
    if strata is None:
        cluster_strata = np.zeros(n_clusters, dtype=np.int64)
    else:
        s_codes, _ = pd.factorize(np.asarray(strata))
        if s_codes.shape != codes.shape:
            raise BenchError(_LENGTHS.format(what="strata", expected=codes.shape[0], got=s_codes.shape[0]))
        lo = np.full(n_clusters, np.iinfo(np.int64).max)
        hi = np.full(n_clusters, -1)
        np.minimum.at(lo, codes, s_codes)
        np.maximum.at(hi, codes, s_codes)
        cluster_strata = np.where(lo == hi, lo, s_codes.max() + 1)  # mixed clusters: one extra stratum
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    counts = np.zeros((int(n_boot), n_clusters), dtype=np.uint16)
    for stratum in np.unique(cluster_strata):
        members = np.flatnonzero(cluster_strata == stratum)
        size = members.shape[0]
        rows = max(1, 2_000_000 // max(size, 1))  # bound the (rows, size) draw matrix
        for start in range(0, int(n_boot), rows):
            stop = min(int(n_boot), start + rows)
            draws = rng.integers(0, size, size=(stop - start, size), dtype=np.int64)
            draws += (np.arange(stop - start) * size)[:, None]
            counts[start:stop, members] = np.bincount(draws.ravel(), minlength=(stop - start) * size).reshape(
                stop - start, size)
    return ClusterBootstrap(codes=codes.astype(np.intp), counts=counts, strata=cluster_strata)


Interval = Literal["basic", "percentile"]


def bootstrap_interval(replicates: Any, *, estimate: Any = None, alpha: float = 0.05, method: Interval = "basic",
                       axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """A (1 - alpha) bootstrap interval from replicates along ``axis``.

    ``percentile``: (q_{alpha/2}, q_{1-alpha/2}), the quantiles of the replicates. ``basic`` (the default; also
    called reverse percentile): (2 theta - q_{1-alpha/2}, 2 theta - q_{alpha/2}) around the ``estimate``
    theta. The two agree when the replicates are symmetric about the estimate (AUC, rates); they differ for
    max - min gaps, which resampling inflates (the largest of several noisy rates is biased upwards): the
    percentile interval then sits above the estimate and misses a small true gap, the basic interval
    corrects for that shift. Neither is exact when several groups share the extreme rate (the gap is not
    a smooth function there), which is why the report shows how many groups entered each gap.

    Replicates where the statistic is undefined (NaN) are left out; an all-NaN set gives NaN. Quantiles
    interpolate linearly between order statistics (numpy's default).
    """
    alpha = _alpha(alpha)
    if method not in ("basic", "percentile"):
        raise BenchError(f"Unknown interval method {method!r}; expected 'basic' or 'percentile'.")
    r = np.asarray(replicates, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": NaN is the documented answer
        low, high = np.nanquantile(r, [alpha / 2.0, 1.0 - alpha / 2.0], axis=axis)
    if method == "percentile":
        return low, high
    if estimate is None:
        raise BenchError("The basic bootstrap interval needs the estimate (the statistic on the data).")
    theta = np.asarray(estimate, dtype=np.float64)
    return 2.0 * theta - high, 2.0 * theta - low


def bootstrap_p_value(replicates: Any, *, estimate: Any = None, null: float = 0.0, method: Interval = "basic",
                      axis: int = -1) -> np.ndarray:
    """Two-sided bootstrap p-value of H0: statistic = ``null``, the smallest alpha whose interval excludes it.

    With B defined replicates r and the reference point c = ``null`` (``percentile``) or c = 2 theta - null
    (``basic``, theta the ``estimate``: the replicates shifted to satisfy H0),
    p = min(1, 2 min(1 + #{r <= c}, 1 + #{r >= c}) / (B + 1)); the +1 keeps a Monte-Carlo p-value from
    being 0. So p < alpha exactly when the (1 - alpha) interval of the same method excludes ``null`` (up to
    the +1). NaN when no replicate is defined.
    """
    r = np.asarray(replicates, dtype=np.float64)
    if method == "basic":
        if estimate is None:
            raise BenchError("The basic bootstrap p-value needs the estimate (the statistic on the data).")
        reference = 2.0 * np.expand_dims(np.asarray(estimate, dtype=np.float64), axis) - null
    else:
        reference = np.asarray(null, dtype=np.float64)
    valid = ~np.isnan(r)
    n = valid.sum(axis=axis)
    below = (valid & (r <= reference)).sum(axis=axis)
    above = (valid & (r >= reference)).sum(axis=axis)
    with np.errstate(all="ignore"):
        p = np.minimum(1.0, 2.0 * (np.minimum(below, above) + 1.0) / (n + 1.0))
    undefined = (n == 0) | np.isnan(reference).any(axis=axis if reference.ndim else None)
    return np.where(undefined, np.nan, p)


class BootstrapResult(NamedTuple):
    """A bootstrap estimate: the statistic on the data, its percentile interval, and (for a difference) a
    two-sided p-value of "no difference"; ``replicates`` (B,) are kept for further use."""

    estimate: float
    low: float
    high: float
    p: float
    replicates: np.ndarray


Statistic = Callable[[np.ndarray], np.ndarray]


def _apply(statistic: Statistic, boot: ClusterBootstrap, chunk: int) -> np.ndarray:
    """``statistic`` on every replicate, in chunks of rows: weights (b, N) -> values (b,)."""
    out = np.empty(boot.n_boot)
    for start in range(0, boot.n_boot, chunk):
        rows = slice(start, min(boot.n_boot, start + chunk))
        out[rows] = np.asarray(statistic(boot.weights(rows)), dtype=np.float64).reshape(-1)
    return out


def bootstrap_ci(statistic: Statistic, boot: ClusterBootstrap, *, alpha: float = 0.05, method: Interval = "basic",
                 chunk: int = 128) -> BootstrapResult:
    """Bootstrap interval (`bootstrap_interval`) of any statistic of a weighted sample.

    ``statistic`` maps sample weights of shape (b, N) to values (b,) (vectorised over replicates); the
    estimate is its value at unit weights. Any metric fits: e.g.
    ``lambda w: weighted_auc(y, score, w)``, or fairness gaps through `weighted_group_counts` and
    `bench.metrics.fairness_gaps`. ``p`` is `bootstrap_p_value` against 0.
    """
    estimate = float(np.asarray(statistic(np.ones((1, boot.n_samples)))).reshape(-1)[0])
    replicates = _apply(statistic, boot, chunk)
    low, high = bootstrap_interval(replicates, estimate=estimate, alpha=alpha, method=method)
    p = bootstrap_p_value(replicates, estimate=estimate, method=method)
    return BootstrapResult(estimate, float(low), float(high), float(p), replicates)


def paired_bootstrap(statistic_a: Statistic, statistic_b: Statistic, boot: ClusterBootstrap, *,
                     alpha: float = 0.05, method: Interval = "basic", chunk: int = 128) -> BootstrapResult:
    """Bootstrap of the difference A - B of a statistic of two methods on the same test samples.

    Both statistics see the same resampled test sets (the same weights), so the interval reflects the
    variability of the difference, which is much smaller than that of either statistic when the two
    methods err on the same samples. ``p`` is the two-sided `bootstrap_p_value` of "no difference".
    """

    def difference(w: np.ndarray) -> np.ndarray:
        return np.asarray(statistic_a(w), dtype=np.float64) - np.asarray(statistic_b(w), dtype=np.float64)

    return bootstrap_ci(difference, boot, alpha=alpha, method=method, chunk=chunk)


# ------------------------------------------------------------------------------------ weighted metrics
def weighted_group_counts(y_true: Any, predicted: Any, groups: Any, weights: Any, *,
                          n_groups: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-group (TP, FP, TN, FN) of weighted samples, each of shape (b, G).

    ``predicted`` (N,) is 1 where a sample is predicted fake; ``groups`` (N,) integer codes (negative =
    unknown, left out); ``weights`` (b, N). The result feeds `bench.metrics.fairness_gaps` directly.
    """
    y = np.asarray(y_true).astype(np.intp)
    pred = np.asarray(predicted).astype(np.intp)
    g = np.asarray(groups).astype(np.intp)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_groups = int(g.max()) + 1 if n_groups is None else int(n_groups)
    known = g >= 0
    cell = np.where(known, g * 4 + y * 2 + pred, 0)
    onehot = sparse.csr_matrix((known.astype(np.float64), (np.arange(y.shape[0]), cell)),
                               shape=(y.shape[0], 4 * n_groups))
    cells = np.asarray((onehot.T @ w.T).T).reshape(w.shape[0], n_groups, 4)  # (b, G, [TN, FP, FN, TP])
    return cells[..., 3], cells[..., 1], cells[..., 0], cells[..., 2]


def weighted_auc(y_true: Any, score: Any, weights: Any, *, groups: Any = None,
                 n_groups: int | None = None) -> np.ndarray:
    """AUC of weighted samples (ties count half), per replicate row of ``weights`` (b, N).

    AUC_w = sum_{i fake, j real} w_i w_j psi(s_i, s_j) / (W_fake W_real), psi = 1 if s_i > s_j, 1/2 if equal:
    the Mann-Whitney AUC of the sample in which each point is repeated w times. With ``groups`` (N,)
    the AUC within each group, shape (b, G); NaN where a group lacks a class. One sort of (group, score),
    then prefix sums of the real weights along it.
    """
    y = np.asarray(y_true).astype(np.int8)
    s = np.asarray(score, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    g = np.zeros(y.shape[0], dtype=np.intp) if groups is None else np.asarray(groups).astype(np.intp)
    n_groups = (int(g.max()) + 1 if g.size else 1) if n_groups is None else int(n_groups)
    plan = _ScanPlan.build(y, s, g, n_groups, codes=np.arange(y.shape[0]))
    aucs = plan.apply(w)  # weights are per sample here: the "clusters" are the samples themselves
    return aucs[:, 0] if groups is None else aucs


# ------------------------------------------------------------------------------------ replicate engine
class Replicates(NamedTuple):
    """Every bootstrapped metric of one predictions file for all B replicates.

    ``values`` maps (attribute, metric) to (B,) values in the metric's reported unit (x100 for "%"), with
    attribute "all" for detection metrics. ``fpr`` and ``tpr`` map each attribute to the per-group rates
    (B, G) (NaN where a group has no reals, resp. no fakes), for plots with intervals.
    """

    values: dict[tuple[str, str], np.ndarray]
    fpr: dict[str, np.ndarray]
    tpr: dict[str, np.ndarray]


def replicate_metrics(predictions: pd.DataFrame, boot: ClusterBootstrap, *, metrics: str | Sequence[str] | None = None,
                      attributes: Sequence[str] = ATTRIBUTES, threshold: float = 0.5, policy: str = DEFAULT_POLICY,
                      min_group_size: int = 1, chunk: int | None = None,
                      strategy: Literal["auto", "pairs", "scan"] = "auto") -> Replicates:
    """AUC, ACC, log_loss, brier and every fairness metric of one predictions table, for all replicates.

    ``predictions`` is aligned with ``boot`` (row i is sample i of the test set) and has the columns of
    `bench.metrics.compute_metrics`. ``metrics`` selects as there; detection metrics outside
    `BOOTSTRAP_DETECTION` are skipped. Each replicate's value equals `compute_metrics` on the resampled
    table (tested), but nothing is resampled row by row:

    - per-group confusion counts of all replicates are one product counts (B, C) @ cells (C, 4G);
    - log-loss and Brier are ratios of two such products;
    - AUCs (overall and per group) come either from a cluster-pair matrix Psi (C_fake x C_real, the
      weighted Mann-Whitney numerator is c_fake Psi c_real) or from a prefix scan over the score order;
      ``strategy="auto"`` picks the cheaper by a cost estimate (both give the same numbers);
    - fairness gaps are `fairness_gaps` on the (B, G) arrays.
    """
    if len(predictions) != boot.n_samples:
        raise BenchError(_LENGTHS.format(what="predictions", expected=boot.n_samples, got=len(predictions)))
    names = METRICS.select("all" if metrics is None else metrics)
    detection = [n for n in names if n in BOOTSTRAP_DETECTION]
    fairness = [n for n in names if METRICS.get(n).kind == "fairness"]
    y = predictions["label"].to_numpy().astype(np.int8)
    s = predictions["score"].to_numpy().astype(np.float64)
    pred = (s >= threshold).astype(np.int8)
    codes, n_clusters = boot.codes, boot.n_clusters
    chunk = chunk or max(1, min(boot.n_boot, 4_000_000 // max(n_clusters, 1)))

    # Everything below is a linear map of the cluster counts, except the AUC numerators.
    columns: list[np.ndarray] = []  # (C, k) blocks, multiplied by the counts in one product
    layout: dict[str, slice] = {}

    def add(name: str, block: np.ndarray) -> None:
        start = sum(c.shape[1] for c in columns)
        columns.append(block)
        layout[name] = slice(start, start + block.shape[1])

    overall = np.zeros(y.shape[0], dtype=np.intp)
    add("overall", _cell_block(codes, n_clusters, overall, 1, y, pred))
    if "log_loss" in detection or "brier" in detection:
        eps = np.finfo(np.float64).eps
        p = np.clip(s, eps, 1.0 - eps)
        loss = -np.where(y == 1, np.log(p), np.log1p(-p))
        add("losses", np.stack([np.bincount(codes, weights=loss, minlength=n_clusters),
                                np.bincount(codes, weights=(s - y) ** 2, minlength=n_clusters)], axis=1))
    groups: dict[str, tuple[np.ndarray, int]] = {}
    need_group_auc = any(n in ("G_AUC", "worst_AUC") for n in fairness)
    for attribute in attributes if fairness else ():
        g = predictions[attribute].to_numpy().astype(np.intp)
        n_groups = max(int(g.max()) + 1, 1) if g.size else 1
        groups[attribute] = (g, n_groups)
        add(attribute, _cell_block(codes, n_clusters, g, n_groups, y, pred))
    cell_matrix = np.concatenate(columns, axis=1)

    groupings = {"all": (overall, 1)} if "AUC" in detection else {}
    if need_group_auc:
        groupings.update(groups)
    engine = _AucEngine(y, s, groupings, codes, strategy) if groupings else None

    values: dict[tuple[str, str], np.ndarray] = {}
    fpr: dict[str, np.ndarray] = {}
    tpr: dict[str, np.ndarray] = {}
    parts: dict[tuple[str, str], list[np.ndarray]] = {}
    rate_parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for start in range(0, boot.n_boot, chunk):
        c = boot.counts[start:start + chunk].astype(np.float64)  # (b, C)
        cells = c @ cell_matrix
        aucs = engine.apply(c) if engine is not None else {}
        tn, fp, fn, tp = _split_cells(cells[:, layout["overall"]], 1)
        n = (tn + fp + fn + tp)[:, 0]
        for name in detection:
            if name == "AUC":
                value = aucs["all"][:, 0]
            elif name == "ACC":
                value = _ratio(tn[:, 0] + tp[:, 0], n)
            else:
                sums = cells[:, layout["losses"]]
                value = _ratio(sums[:, 0 if name == "log_loss" else 1], n)
            parts.setdefault(("all", name), []).append(value * METRICS.get(name).scale)
        for attribute, (_, n_groups) in groups.items():
            tn, fp, fn, tp = _split_cells(cells[:, layout[attribute]], n_groups)
            gaps = fairness_gaps(tp, fp, tn, fn, aucs.get(attribute), metrics=fairness, policy=policy,
                                 min_group_size=min_group_size)
            for name, result in gaps.items():
                parts.setdefault((attribute, name), []).append(result.value * METRICS.get(name).scale)
            rate_parts.setdefault(attribute, []).append((_ratio(fp, fp + tn), _ratio(tp, tp + fn)))
    for key, chunks in parts.items():
        values[key] = np.concatenate(chunks)
    for attribute, chunks in rate_parts.items():
        fpr[attribute] = np.concatenate([f for f, _ in chunks])
        tpr[attribute] = np.concatenate([t for _, t in chunks])
    return Replicates(values=values, fpr=fpr, tpr=tpr)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _cell_block(codes: np.ndarray, n_clusters: int, g: np.ndarray, n_groups: int, y: np.ndarray,
                pred: np.ndarray) -> np.ndarray:
    """(C, 4G) counts of each cluster's samples per (group, label, prediction) cell; unknown groups out."""
    known = g >= 0
    cell = g[known] * 4 + y[known].astype(np.intp) * 2 + pred[known]
    flat = np.bincount(codes[known] * (4 * n_groups) + cell, minlength=n_clusters * 4 * n_groups)
    return flat.reshape(n_clusters, 4 * n_groups).astype(np.float64)


def _split_cells(cells: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """(b, 4G) cell counts -> TN, FP, FN, TP, each (b, G)."""
    c = cells.reshape(cells.shape[0], n_groups, 4)
    return c[..., 0], c[..., 1], c[..., 2], c[..., 3]


# AUC per replicate. The weighted Mann-Whitney numerator of group g is
#   sum_{i fake, j real, both in g} w_i w_j psi(s_i, s_j),  w = the counts of the samples' clusters.
# Two exact ways to evaluate it for B replicates:
#   pairs: split every cluster into cells by its samples' (gender, race) codes, and precompute once
#          Psi[a, b] = sum over the fakes of cell a and the reals of cell b of psi. A pair of cells
#          contributes to a group's AUC exactly when both cells are in the group, so one matrix serves the
#          overall AUC and every group of every attribute: per replicate, the numerators of all pairs of
#          fine groups (f1, f2) come from one (B, C1) @ (C1, C0) product, and each group sums its pairs.
#          Cost ~ B * C1 * C0 multiply-adds, C1 and C0 the numbers of fake and real cells.
#   scan:  per attribute, gather the weights in (group, score) order and take prefix sums of the real
#          weights: cost ~ B * N per attribute with several memory passes, whatever the clusters.
# Videos of tens of frames make C1 * C0 small (pairs wins by far); one frame per cluster makes it N^2/4
# (scan wins). _PAIR_COST is how many pair multiply-adds cost about as much as one sample of one scan.
_PAIR_COST = 150.0  # measured crossover on a 2-core CPU (1,000 replicates of 25,000 frames)


class _AucEngine:
    """Per-replicate AUCs of one predictions table for several groupings ({key: (codes, n_groups)})."""

    def __init__(self, y: np.ndarray, s: np.ndarray, groupings: dict[str, tuple[np.ndarray, int]],
                 codes: np.ndarray, strategy: str) -> None:
        if strategy not in ("auto", "pairs", "scan"):
            raise BenchError(f"Unknown AUC strategy {strategy!r}; expected 'auto', 'pairs' or 'scan'.")
        self.groupings = groupings
        fine, fine_codes = _fine_groups(groupings)
        cells = pd.factorize(codes.astype(np.int64) * (fine_codes.shape[0] + 1) + fine)[0]
        if strategy == "auto":
            n_fake = np.unique(cells[y == 1]).size
            n_real = np.unique(cells[y == 0]).size
            strategy = "pairs" if n_fake * n_real <= _PAIR_COST * len(groupings) * y.shape[0] else "scan"
        self.strategy = strategy
        if strategy == "pairs":
            self.pairs = _PairPlan.build(y, s, cells, codes, fine, fine_codes, groupings)
        else:
            self.scans = {key: _ScanPlan.build(y, s, g, n, codes=codes) for key, (g, n) in groupings.items()}

    def apply(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """{grouping: per-group AUC (b, G)} for cluster counts (b, C)."""
        if self.strategy == "pairs":
            return self.pairs.apply(counts)
        return {key: plan.apply(counts) for key, plan in self.scans.items()}


def _fine_groups(groupings: dict[str, tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's fine group (its tuple of codes over all groupings, unknowns included) and, per fine
    group, its code in every grouping: (N,) and (F, number of groupings)."""
    stacked = np.stack([g for g, _ in groupings.values()], axis=1)  # (N, k)
    unique, fine = np.unique(stacked, axis=0, return_inverse=True)
    return fine.reshape(-1), unique


@dataclass(frozen=True, eq=False)
class _PairPlan:
    """The cell-pair matrix Psi (fake cells x real cells), fake cells ordered by fine group, with each
    cell's cluster and sample count and one-hot maps of the cells and fine groups to groups."""

    psi: np.ndarray             # (C1, C0)
    fake_cluster: np.ndarray    # (C1,)
    real_cluster: np.ndarray    # (C0,)
    fake_slices: list[tuple[int, slice]]  # (fine group, its rows of psi)
    fake_onehot: np.ndarray     # (C1, F) sample counts of each fake cell in its fine group
    real_onehot: np.ndarray     # (C0, F) 1 in each real cell's fine group
    real_n: np.ndarray          # (C0,) samples per real cell
    masks: dict[str, np.ndarray]  # per grouping: (F, G) 1 where a fine group belongs to a group

    @classmethod
    def build(cls, y: np.ndarray, s: np.ndarray, cells: np.ndarray, codes: np.ndarray, fine: np.ndarray,
              fine_codes: np.ndarray, groupings: dict[str, tuple[np.ndarray, int]]) -> _PairPlan:
        n_fine = fine_codes.shape[0]
        n_cells = int(cells.max()) + 1 if cells.size else 0
        cell_cluster = np.zeros(n_cells, dtype=np.intp)
        cell_cluster[cells] = codes
        cell_fine = np.zeros(n_cells, dtype=np.intp)
        cell_fine[cells] = fine
        fake, real = y == 1, y == 0
        fake_cells = np.unique(cells[fake])
        fake_cells = fake_cells[np.argsort(cell_fine[fake_cells], kind="stable")]  # rows grouped by fine group
        real_cells = np.unique(cells[real])
        fake_local = _local_index(cells[fake], fake_cells, n_cells)
        real_local = _local_index(cells[real], real_cells, n_cells)
        psi = _pair_matrix(s[fake], fake_local, fake_cells.size, s[real], real_local, real_cells.size)
        fake_fine, real_fine = cell_fine[fake_cells], cell_fine[real_cells]
        fake_n = np.bincount(fake_local, minlength=fake_cells.size).astype(np.float64)
        real_n = np.bincount(real_local, minlength=real_cells.size).astype(np.float64)
        fake_onehot = np.zeros((fake_cells.size, n_fine))
        fake_onehot[np.arange(fake_cells.size), fake_fine] = fake_n
        real_onehot = np.zeros((real_cells.size, n_fine))
        real_onehot[np.arange(real_cells.size), real_fine] = 1.0
        bounds = np.searchsorted(fake_fine, np.arange(n_fine + 1))
        slices = [(f, slice(bounds[f], bounds[f + 1])) for f in range(n_fine) if bounds[f + 1] > bounds[f]]
        masks = {}
        for k, (key, (_, n_groups)) in enumerate(groupings.items()):
            group_of = fine_codes[:, k]
            mask = np.zeros((n_fine, n_groups))
            known = np.flatnonzero(group_of >= 0)
            mask[known, group_of[known]] = 1.0
            masks[key] = mask
        return cls(psi=np.ascontiguousarray(psi), fake_cluster=cell_cluster[fake_cells],
                   real_cluster=cell_cluster[real_cells], fake_slices=slices, fake_onehot=fake_onehot,
                   real_onehot=real_onehot, real_n=real_n, masks=masks)

    def apply(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        b, n_fine = counts.shape[0], self.real_onehot.shape[1]
        c_real = counts[:, self.real_cluster]  # (b, C0)
        fake_w = counts[:, self.fake_cluster] @ self.fake_onehot  # (b, F) fake samples per fine group
        real_w = (c_real * self.real_n) @ self.real_onehot
        pairs = np.zeros((b, n_fine, n_fine))  # numerators: fakes of fine group f1 against reals of f2
        for f1, rows in self.fake_slices:  # contiguous blocks: one GEMM's worth of work in all
            c_fake = counts[:, self.fake_cluster[rows]]
            pairs[:, f1, :] = ((c_fake @ self.psi[rows]) * c_real) @ self.real_onehot
        out = {}
        for key, mask in self.masks.items():
            numerator = np.einsum("bij,ig,jg->bg", pairs, mask, mask, optimize=True)
            out[key] = _ratio(numerator, (fake_w @ mask) * (real_w @ mask))
        return out


def _local_index(values: np.ndarray, chosen: np.ndarray, size: int) -> np.ndarray:
    """Position of each of ``values`` within ``chosen`` (all values are in it)."""
    lookup = np.full(size, -1, dtype=np.intp)
    lookup[chosen] = np.arange(chosen.size)
    return lookup[values]


def _pair_matrix(s_fake: np.ndarray, a: np.ndarray, n_a: int, s_real: np.ndarray, b: np.ndarray,
                 n_b: int) -> np.ndarray:
    """Psi (n_a, n_b): over fake samples of cluster a and real samples of cluster b, the number of pairs
    with s_fake > s_real plus half those with s_fake == s_real.

    One side's clusters are the rows of a dense block, the other side's distinct scores its columns (the
    grid): a row holds, at each grid score, how many of the row cluster's samples lie beyond it (above it
    for fakes, below it for reals), ties counting half: a cumulative sum along the grid. Reading the block
    at each column sample's score and summing per column cluster gives Psi. The orientation with the
    smaller block is used, a block of rows at a time.
    """
    if n_a == 0 or n_b == 0:
        return np.zeros((n_a, n_b))
    cost_fake_rows = n_a * (np.unique(s_real).size + s_real.size)
    cost_real_rows = n_b * (np.unique(s_fake).size + s_fake.size)
    if cost_fake_rows <= cost_real_rows:
        return _pair_rows(a, s_fake, n_a, b, s_real, n_b, above=True)
    return _pair_rows(b, s_real, n_b, a, s_fake, n_a, above=False).T


def _pair_rows(row_cluster: np.ndarray, row_score: np.ndarray, n_rows: int, col_cluster: np.ndarray,
               col_score: np.ndarray, n_cols: int, *, above: bool) -> np.ndarray:
    """(n_rows, n_cols): for each row cluster and column cluster, the sum over the column cluster's samples
    of the row cluster's samples strictly above (``above``) or below them, ties counting half."""
    grid = np.unique(col_score)
    n_grid = grid.shape[0]
    col_order = np.argsort(col_cluster, kind="stable")
    col_at = np.searchsorted(grid, col_score[col_order])  # exact positions on the grid
    col_starts = np.flatnonzero(np.diff(col_cluster[col_order], prepend=-1))  # every cluster has samples
    left = np.searchsorted(grid, row_score, side="left")
    tied = (left < n_grid) & (grid[np.minimum(left, n_grid - 1)] == row_score)
    # A row sample adds 1 at every grid point it is beyond: above x <=> grid < x <=> index < left;
    # below x <=> grid > x <=> index >= right. Mark that boundary, cumulate, then add half at a tie.
    start = left if above else np.searchsorted(grid, row_score, side="right")
    row_order = np.argsort(row_cluster, kind="stable")
    rows_sorted, start, left, tied = row_cluster[row_order], start[row_order], left[row_order], tied[row_order]
    width = n_grid + 1
    step = max(1, 4_000_000 // max(width, col_at.shape[0]))
    out = np.empty((n_rows, n_cols))
    for first in range(0, n_rows, step):
        last = min(n_rows, first + step)
        lo, hi = np.searchsorted(rows_sorted, [first, last])
        local = rows_sorted[lo:hi] - first
        marks = np.bincount(local * width + start[lo:hi], minlength=(last - first) * width)
        marks = marks.reshape(last - first, width).astype(np.float64)
        # beyond grid point u: marks at indices > u (above), or at indices <= u (below)
        value = np.cumsum(marks[:, ::-1], axis=1)[:, ::-1][:, 1:] if above else np.cumsum(marks, axis=1)[:, :n_grid]
        ties = tied[lo:hi]
        if ties.any():
            value += 0.5 * np.bincount(local[ties] * n_grid + left[lo:hi][ties],
                                       minlength=(last - first) * n_grid).reshape(last - first, n_grid)
        out[first:last] = np.add.reduceat(value[:, col_at], col_starts, axis=1)
    return out


@dataclass(frozen=True, eq=False)
class _ScanPlan:
    """Reals and fakes of each group in score order, and where each fake falls among its group's reals.

    For a fake f of group g with score s, ``lo``/``hi`` index the first real of the global (group, score)
    order at or above / above s, so the weight of g's reals strictly below s is C[lo] - C[start_g] and of
    those tied with it C[hi] - C[lo], C being the exclusive prefix sum of the reals' weights. The
    numerator of g is then sum_f w_f ((C[lo_f] + C[hi_f]) / 2 - C[start_g]): one gather, one prefix sum
    over the reals and one gather at the fakes per replicate, no pass over pairs.
    """

    real_cluster: np.ndarray   # (n0,) clusters of the reals, in (group, score) order
    fake_cluster: np.ndarray   # (n1,) clusters of the fakes, in (group, score) order
    lo: np.ndarray             # (n1,) see above
    hi: np.ndarray | None      # (n1,) None when no fake ties a real of its group
    real_starts: np.ndarray    # (G + 1,) where each group's reals start (and the end)
    fake_starts: np.ndarray    # (G + 1,) where each group's fakes start (and the end)
    n_groups: int

    @classmethod
    def build(cls, y: np.ndarray, s: np.ndarray, g: np.ndarray, n_groups: int, *, codes: np.ndarray) -> _ScanPlan:
        known = g >= 0
        real = np.flatnonzero(known & (y == 0))
        fake = np.flatnonzero(known & (y == 1))
        real = real[np.lexsort((s[real], g[real]))]
        fake = fake[np.lexsort((s[fake], g[fake]))]
        real_starts = np.searchsorted(g[real], np.arange(n_groups + 1))
        fake_starts = np.searchsorted(g[fake], np.arange(n_groups + 1))
        lo = np.empty(fake.shape[0], dtype=np.intp)
        hi = np.empty(fake.shape[0], dtype=np.intp)
        for group in range(n_groups):
            reals = s[real[real_starts[group]:real_starts[group + 1]]]
            fakes = slice(fake_starts[group], fake_starts[group + 1])
            lo[fakes] = real_starts[group] + np.searchsorted(reals, s[fake[fakes]], side="left")
            hi[fakes] = real_starts[group] + np.searchsorted(reals, s[fake[fakes]], side="right")
        return cls(real_cluster=codes[real], fake_cluster=codes[fake], lo=lo, hi=None if np.array_equal(lo, hi) else hi,
                   real_starts=real_starts, fake_starts=fake_starts, n_groups=n_groups)

    def apply(self, counts: np.ndarray) -> np.ndarray:
        """Per-group AUC (b, G) for cluster counts (b, C)."""
        b = counts.shape[0]
        w_real = counts[:, self.real_cluster]  # (b, n0)
        w_fake = counts[:, self.fake_cluster]  # (b, n1)
        prefix = np.zeros((b, w_real.shape[1] + 1))
        np.cumsum(w_real, axis=1, out=prefix[:, 1:])
        below = prefix[:, self.lo] if self.hi is None else 0.5 * (prefix[:, self.lo] + prefix[:, self.hi])
        n_fake = _segment_sums(w_fake, self.fake_starts)
        numerator = _segment_sums(w_fake * below, self.fake_starts) - prefix[:, self.real_starts[:-1]] * n_fake
        n_real = np.diff(prefix[:, self.real_starts], axis=1)
        return _ratio(numerator, n_fake * n_real)


def _segment_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (b, n) over the segments [starts[g], starts[g + 1]) along axis 1; 0 for an empty one."""
    out = np.zeros((values.shape[0], starts.shape[0] - 1))
    filled = np.flatnonzero(np.diff(starts) > 0)
    if filled.size:  # an empty segment ends where the next one starts, so reduceat over the others is exact
        out[:, filled] = np.add.reduceat(values, starts[filled], axis=1)
    return out


# ============================================================================================ DeLong
class DeLongParts(NamedTuple):
    """Per-classifier pieces of DeLong's variance, for any set of classifiers scored on one test set.

    ``auc`` (k,); ``fake`` (k, C) and ``real`` (k, C): per cluster, the sum over its fakes (reals) of the
    centred placement values V10 - AUC (V01 - AUC); ``n_fake``, ``n_real`` sample counts; ``c_fake``,
    ``c_real``, ``c_all`` the numbers of clusters holding fakes, reals, anything.
    """

    auc: np.ndarray
    fake: np.ndarray
    real: np.ndarray
    n_fake: int
    n_real: int
    c_fake: int
    c_real: int
    c_all: int


class DeLongResult(NamedTuple):
    """A DeLong comparison: the contrast's estimate, standard error, z, two-sided p and (1 - alpha) CI."""

    estimate: float
    se: float
    z: float
    p: float
    low: float
    high: float


def delong_parts(y_true: Any, scores: Any, *, clusters: Any = None) -> DeLongParts:
    """DeLong's structural components of k classifiers (``scores`` (k, N) or (N,)) on one test set.

    Fast mid-rank algorithm (Sun & Xu 2014): with T_x the mid-ranks of the fakes' scores among fakes,
    T_y of the reals' among reals and T_z among all, the placement values are
    V10_i = (T_z,i - T_x,i) / n_real for each fake and V01_j = 1 - (T_z,j - T_y,j) / n_fake for each real
    (ties count half), and AUC = mean V10 = mean V01: three sorts per classifier instead of n_fake x n_real
    comparisons. The centred placements are then summed per cluster (``clusters`` (N,); None: each sample
    is its own cluster).
    """
    y = np.asarray(y_true)
    z = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if z.shape[1] != y.shape[0]:
        raise BenchError(_LENGTHS.format(what="scores", expected=y.shape[0], got=z.shape[1]))
    fake, real = y == 1, y == 0
    n_fake, n_real = int(fake.sum()), int(real.sum())
    if n_fake == 0 or n_real == 0:
        raise BenchError("DeLong's test needs both fakes and reals in the test set.")
    tz = sps.rankdata(z, axis=1)
    tx = sps.rankdata(z[:, fake], axis=1)
    ty = sps.rankdata(z[:, real], axis=1)
    v10 = (tz[:, fake] - tx) / n_real
    v01 = 1.0 - (tz[:, real] - ty) / n_fake
    auc = v10.mean(axis=1)
    codes = np.arange(y.shape[0]) if clusters is None else pd.factorize(np.asarray(clusters))[0]
    n_clusters = int(codes.max()) + 1
    fake_sums = _cluster_sums(v10 - auc[:, None], codes[fake], n_clusters)
    real_sums = _cluster_sums(v01 - auc[:, None], codes[real], n_clusters)
    return DeLongParts(auc=auc, fake=fake_sums, real=real_sums, n_fake=n_fake, n_real=n_real,
                       c_fake=int(np.unique(codes[fake]).size), c_real=int(np.unique(codes[real]).size),
                       c_all=n_clusters)


def _cluster_sums(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """(k, n) values summed per cluster -> (k, C)."""
    out = np.zeros((values.shape[0], n_clusters))
    for row in range(values.shape[0]):
        out[row] = np.bincount(codes, weights=values[row], minlength=n_clusters)
    return out


def delong_covariance(parts: DeLongParts) -> np.ndarray:
    """The (k, k) covariance of the k AUCs.

    Cov = F F^T c_f / ((c_f - 1) m^2) + R R^T c_r / ((c_r - 1) n^2) + (F R^T + R F^T) c / ((c - 1) m n),
    F, R the per-cluster sums of centred placements of the m fakes and n reals, c_f, c_r, c the numbers of
    clusters with fakes, with reals, in all (Obuchowski 1997, from the first-order expansion
    AUC - theta = sum_clusters (F_c / m + R_c / n)). With one sample per cluster the cross term vanishes
    and this is DeLong's S10 / m + S01 / n exactly.
    """
    m, n = parts.n_fake, parts.n_real
    f, r = parts.fake, parts.real

    def factor(count: int) -> float:
        return count / (count - 1.0) if count > 1 else np.nan

    return (factor(parts.c_fake) * (f @ f.T) / m**2 + factor(parts.c_real) * (r @ r.T) / n**2
            + factor(parts.c_all) * (f @ r.T + r @ f.T) / (m * n))


def delong_contrast(auc: Any, covariance: Any, contrast: Any, *, alpha: float = 0.05) -> DeLongResult:
    """Normal test of a linear contrast L . AUC with variance L^T Cov L (DeLong et al. 1988).

    E.g. L = (1/S_a, ..., -1/S_b, ...) compares the seed-averaged AUCs of two methods. When the variance
    is 0 (identical curves; below 1e-12 counts as rounding) the difference is 0 too and p = 1, as pROC does.
    """
    alpha = _alpha(alpha)
    theta = np.asarray(auc, dtype=np.float64)
    lvec = np.asarray(contrast, dtype=np.float64)
    estimate = float(lvec @ theta)
    variance = float(lvec @ np.asarray(covariance, dtype=np.float64) @ lvec)
    se = math.sqrt(max(variance, 0.0)) if np.isfinite(variance) else float("nan")
    if se < 1e-12 and abs(estimate) < 1e-12:  # the same curves, up to rounding in the sums
        estimate, se = 0.0, 0.0
    zero_se = 0.0 if estimate == 0.0 else math.copysign(math.inf, estimate)
    z = zero_se if se == 0.0 else estimate / se
    p = float("nan") if math.isnan(z) else float(2.0 * sps.norm.sf(abs(z)))
    half = sps.norm.ppf(1.0 - alpha / 2.0) * se
    return DeLongResult(estimate, se, z, p, float(estimate - half), float(estimate + half))


def delong_test(y_true: Any, score_a: Any, score_b: Any, *, clusters: Any = None,
                alpha: float = 0.05) -> DeLongResult:
    """DeLong's test of AUC_a = AUC_b for two classifiers scored on the same samples (a - b).

    With ``clusters`` (N,), the variance is Obuchowski's clustered one (frames of a video are not
    independent); without, it is DeLong's and matches pROC's ``roc.test(..., method="delong")``.
    """
    parts = delong_parts(y_true, np.vstack([np.asarray(score_a, dtype=np.float64),
                                            np.asarray(score_b, dtype=np.float64)]), clusters=clusters)
    return delong_contrast(parts.auc, delong_covariance(parts), [1.0, -1.0], alpha=alpha)


# ============================================================================================ paired tests
class TestResult(NamedTuple):
    """A paired test: estimate of the difference, its (1 - alpha) interval, two-sided p, number of pairs,
    and whether the p-value is exact (complete enumeration) or approximate."""

    estimate: float
    low: float
    high: float
    p: float
    n: int
    exact: bool


def sign_flip_test(differences: Any, *, alpha: float = 0.05, max_exact: int = 16, n_resamples: int = 100_000,
                   seed: int = 0) -> TestResult:
    """Exact paired permutation (sign-flip) test of mean difference 0, e.g. over training seeds.

    Under H0 each paired difference d_s is as likely to have either sign, so the 2^S sign patterns are
    equally likely. p = #{patterns e: |sum_s e_s d_s| >= |sum_s d_s|} / 2^S, enumerated exactly for
    S <= ``max_exact`` (else ``n_resamples`` random patterns, plus the observed one). The interval is
    Hartigan's (1969): the k-th smallest and largest of the 2^S - 1 subset means, k = floor(2^S alpha / 2),
    exact under symmetry; infinite when k = 0 (too few seeds: S = 5 can never reach p < 0.05). NaN
    differences (a seed missing on one side) are dropped.
    """
    alpha = _alpha(alpha)
    d = _paired(differences)
    n = d.shape[0]
    if n == 0:
        return TestResult(float("nan"), float("nan"), float("nan"), float("nan"), 0, True)
    observed = abs(d.sum())
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    exact = n <= max_exact
    if exact:
        signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)  # (2^S, S), all patterns
        p = float(np.mean(np.abs(signs @ d) >= observed - tol))
        subsets = (1.0 - signs[1:]) / 2.0  # every nonempty subset, as 0/1 rows
        means = np.sort((subsets @ d) / subsets.sum(axis=1))
        k = math.floor(2**n * alpha / 2.0)
        low, high = (means[k - 1], means[-k]) if k >= 1 else (-math.inf, math.inf)
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice([-1.0, 1.0], size=(n_resamples, n))
        p = float((np.sum(np.abs(signs @ d) >= observed - tol) + 1) / (n_resamples + 1))
        low, high = _t_interval(d, alpha)
    return TestResult(float(d.mean()), float(low), float(high), min(1.0, p), n, exact)


def _paired(differences: Any) -> np.ndarray:
    """The paired differences as floats, NaNs (a value missing on one side) dropped."""
    d = np.asarray(differences, dtype=np.float64)
    return d[~np.isnan(d)]


def _t_interval(d: np.ndarray, alpha: float) -> tuple[float, float]:
    half = sps.t.ppf(1.0 - alpha / 2.0, d.shape[0] - 1) * d.std(ddof=1) / math.sqrt(d.shape[0])
    return float(d.mean() - half), float(d.mean() + half)


def wilcoxon_test(differences: Any, *, alpha: float = 0.05) -> TestResult:
    """Wilcoxon signed-rank test of "no difference" over paired values (e.g. train -> test pairs).

    p is scipy's two-sided ``wilcoxon`` (zeros dropped, exact distribution for small samples without
    ties, normal approximation otherwise). The estimate is the Hodges-Lehmann estimator (median of the
    Walsh averages (d_i + d_j) / 2, i <= j) and the interval its exact distribution-free companion:
    the k-th smallest and largest Walsh averages, k - 1 the largest count with P(W+ <= k - 1) <= alpha / 2
    under H0; infinite when no such k exists (fewer than 6 pairs at alpha = 0.05). NaNs are dropped;
    all-zero differences give p = 1.
    """
    alpha = _alpha(alpha)
    d = _paired(differences)
    n = d.shape[0]
    if n == 0:
        return TestResult(float("nan"), float("nan"), float("nan"), float("nan"), 0, True)
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2.0)
    estimate = float(np.median(walsh))
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return TestResult(estimate, estimate, estimate, 1.0, n, True)
    result = sps.wilcoxon(nonzero)
    exact = nonzero.size <= 50 and np.unique(np.abs(nonzero)).size == nonzero.size
    cdf = np.cumsum(_signed_rank_null(n)) / 2.0**n
    k = int(np.searchsorted(cdf, alpha / 2.0, side="right"))  # P(W+ <= k - 1) <= alpha / 2 < P(W+ <= k)
    low, high = (walsh[k - 1], walsh[-k]) if k >= 1 else (-math.inf, math.inf)
    return TestResult(estimate, float(low), float(high), float(result.pvalue), n, exact)


def _signed_rank_null(n: int) -> np.ndarray:
    """Counts of the 2^n sign patterns by W+ = sum of the ranks with a plus sign (0 .. n(n+1)/2)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts


# ============================================================================================ corrections
def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    Sorted ascending, p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), m the number of non-NaN p-values
    (the family); NaN stays NaN and does not count.
    """
    p, out, order = _family(p_values)
    m = order.shape[0]
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def benjamini_hochberg(p_values: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false-discovery-rate control), in the input order.

    Sorted ascending, p~_(i) = min_{j >= i} min(1, m p_(j) / j), m the number of non-NaN p-values.
    """
    p, out, order = _family(p_values)
    m = order.shape[0]
    scaled = m * p[order] / np.arange(1, m + 1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def _family(p_values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The p-values as floats, an all-NaN output of their shape, and the positions of the non-NaN ones in
    ascending order of p (the family a correction works on; NaN stays NaN and does not count)."""
    p = np.asarray(p_values, dtype=np.float64)
    valid = np.flatnonzero(~np.isnan(p))
    return p, np.full(p.shape, np.nan), valid[np.argsort(p[valid], kind="stable")]


# ============================================================================================ rank tests
class FriedmanResult(NamedTuple):
    """Friedman's test over N blocks (train -> test pairs) and k treatments (methods).

    ``mean_ranks`` (k,) with rank 1 the best; ``cd`` the Nemenyi critical difference at ``alpha``.
    """

    statistic: float
    p: float
    mean_ranks: np.ndarray
    cd: float
    n_blocks: int
    k: int


def rank_rows(values: Any, *, higher_is_better: bool) -> np.ndarray:
    """Ranks within each row (block) of ``values`` (N, k): 1 = best, ties get their average rank."""
    v = np.asarray(values, dtype=np.float64)
    return sps.rankdata(-v if higher_is_better else v, axis=1)


def friedman_test(values: Any, *, higher_is_better: bool, alpha: float = 0.05) -> FriedmanResult:
    """Friedman's chi-square test that k methods rank alike over N blocks, with the tie correction.

    chi2 = [12 / (N k (k + 1)) sum_j R_j^2 - 3 N (k + 1)] / [1 - sum (t^3 - t) / (N k (k^2 - 1))], R_j the
    rank sums, t the sizes of tied groups within blocks; p from chi-square with k - 1 degrees of freedom
    (scipy's ``friedmanchisquare``, which needs k >= 3; this works from k = 2). Blocks with a NaN are
    dropped.
    """
    alpha = _alpha(alpha)
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v).any(axis=1)]
    n_blocks, k = v.shape
    if n_blocks == 0 or k < 2:
        return FriedmanResult(float("nan"), float("nan"), np.full(k, np.nan), float("nan"), n_blocks, k)
    ranks = rank_rows(v, higher_is_better=higher_is_better)
    rank_sums = ranks.sum(axis=0)
    chi2 = 12.0 / (n_blocks * k * (k + 1)) * np.sum(rank_sums**2) - 3.0 * n_blocks * (k + 1)
    ties = sum(float(np.sum(c**3 - c)) for c in (np.unique(row, return_counts=True)[1] for row in v))
    correction = 1.0 - ties / (n_blocks * k * (k * k - 1.0))
    statistic = chi2 / correction if correction > 0 else float("nan")
    p = float(sps.chi2.sf(statistic, k - 1)) if np.isfinite(statistic) else float("nan")
    return FriedmanResult(float(statistic), p, ranks.mean(axis=0), nemenyi_cd(k, n_blocks, alpha=alpha),
                          n_blocks, k)


def nemenyi_cd(k: int, n_blocks: int, *, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks: CD = q_alpha sqrt(k (k + 1) / (6 N)), q_alpha the
    studentized range quantile (k groups, infinite df) over sqrt(2) (Demsar 2006, Table 5)."""
    alpha = _alpha(alpha)
    if k < 2 or n_blocks < 1:
        return float("nan")
    q = sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n_blocks)))
