"""Every bootstrapped metric of one predictions file for all replicates at once, without resampling rows.

`replicate_metrics` evaluates the metrics that declare ``bootstrapped`` at registration (see
`bench.metrics.register_metric`) on B cluster resamples (`bench.bootstrap.ClusterBootstrap`): per-group
confusion counts of all replicates are one product counts (B, C) @ cells (C, 4G), and every fairness
metric is its own function on those (B, G) counts; a detection metric is its ``replicate`` formula on
`WeightedSamples`, whose AUC comes from the engine below. `weighted_group_counts` and `weighted_auc` are
the same pieces for arbitrary sample weights (for `bench.bootstrap.bootstrap_ci`).

Most of this module is the AUC engine: the overall and per-group AUCs of every replicate by a
cluster-pair matrix or a prefix scan over the score order, whichever is cheaper (the comment above
`_AucEngine`). Pure functions of arrays, no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from bench.bootstrap import LENGTHS, ClusterBootstrap
from bench.errors import BenchError
from bench.metric_core import ratio
from bench.metrics import ATTRIBUTES, DEFAULT_POLICY, METRICS, Samples, WeightedSamples, fairness_gaps

__all__ = ["Replicates", "replicate_metrics", "weighted_auc", "weighted_group_counts"]


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
    """Every selected metric that declares ``bootstrapped`` of one predictions table, for all replicates.

    ``predictions`` is aligned with ``boot`` (row i is sample i of the test set) and has the columns of
    `bench.metrics.compute_metrics`. ``metrics`` selects as there; metrics registered with
    ``bootstrapped=False`` are skipped. Each replicate's value equals `compute_metrics` on the resampled
    table (tested), but nothing is resampled row by row:

    - per-group confusion counts of all replicates are one product counts (B, C) @ cells (C, 4G), and the
      fairness metrics are their own functions (`fairness_gaps`) on those (B, G) arrays;
    - a detection metric is its ``replicate`` formula on `WeightedSamples` (weighted sums and means are
      matrix products of the counts);
    - AUCs (overall and per group, computed only when a metric asks) come either from a cluster-pair
      matrix Psi (C_fake x C_real, the weighted Mann-Whitney numerator is c_fake Psi c_real) or from a
      prefix scan over the score order; ``strategy="auto"`` picks the cheaper by a cost estimate (both
      give the same numbers).
    """
    if len(predictions) != boot.n_samples:
        raise BenchError(LENGTHS.format(what="predictions", expected=boot.n_samples, got=len(predictions)))
    chosen = [METRICS.get(n) for n in METRICS.select("all" if metrics is None else metrics)]
    detection = [m for m in chosen if m.bootstrapped and m.kind == "detection"]
    fairness = [m.name for m in chosen if m.bootstrapped and m.kind == "fairness"]
    y = predictions["label"].to_numpy().astype(np.int8)
    s = predictions["score"].to_numpy().astype(np.float64)
    samples = Samples(y, s, threshold)
    pred = (s >= threshold).astype(np.int8)
    codes, n_clusters = boot.codes, boot.n_clusters
    chunk = chunk or max(1, min(boot.n_boot, 4_000_000 // max(n_clusters, 1)))

    groups: dict[str, tuple[np.ndarray, int]] = {}
    blocks = []  # (C, 4G) per attribute, multiplied by the counts in one product
    for attribute in attributes if fairness else ():
        g = predictions[attribute].to_numpy().astype(np.intp)
        n_groups = max(int(g.max()) + 1, 1) if g.size else 1
        groups[attribute] = (g, n_groups)
        blocks.append(_cell_block(codes, n_clusters, g, n_groups, y, pred))
    cell_matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((n_clusters, 0))
    single = boot.exact_single_counts  # the cell counts in float32 where that is exact
    cell_single = cell_matrix.astype(np.float32) if single is not None else None
    offsets = dict(zip(groups, np.cumsum([0, *(4 * n for _, n in groups.values())]).tolist(), strict=False))

    groupings = {"all": (np.zeros(y.shape[0], dtype=np.intp), 1)} if detection else {}
    if any(METRICS.get(name).group_auc for name in fairness):
        groupings.update(groups)
    engine = _LazyAucs(y, s, groupings, boot, strategy)

    parts: dict[tuple[str, str], list[np.ndarray]] = {}
    rate_parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for start in range(0, boot.n_boot, chunk):
        c = boot.float_counts[start:start + chunk]  # (b, C)
        aucs = engine.on(c, slice(start, start + c.shape[0]))
        weighted = WeightedSamples(samples, counts=c, codes=codes, auc_fn=lambda aucs=aucs: aucs()["all"][:, 0])
        for metric in detection:
            parts.setdefault(("all", metric.name), []).append(metric.replicate(weighted) * metric.scale)
        cells = (c @ cell_matrix if single is None
                 else (single[start:start + c.shape[0]] @ cell_single).astype(np.float64))
        for batch in _batches(groups):
            # The batch's (b, G) counts stacked as (attributes, b, G_max), missing groups empty (an empty
            # group enters no gap and adds nothing to a pooled rate): one fairness_gaps call for the batch.
            widest = max(groups[attribute][1] for attribute in batch)
            stacked = np.zeros((4, len(batch), c.shape[0], widest))  # TN, FP, FN, TP
            group_aucs = np.full(stacked.shape[1:], np.nan) if set(batch) <= set(groupings) else None
            for k, attribute in enumerate(batch):
                n_groups, offset = groups[attribute][1], offsets[attribute]
                tn, fp, fn, tp = _split_cells(cells[:, offset:offset + 4 * n_groups], n_groups)
                stacked[:, k, :, :n_groups] = tn, fp, fn, tp
                if group_aucs is not None:
                    group_aucs[k, :, :n_groups] = aucs()[attribute]
                rate_parts.setdefault(attribute, []).append((ratio(fp, fp + tn), ratio(tp, tp + fn)))
            tn, fp, fn, tp = stacked
            gaps = fairness_gaps(tp, fp, tn, fn, group_aucs, metrics=fairness, policy=policy,
                                 min_group_size=min_group_size)
            for k, attribute in enumerate(batch):
                for name, result in gaps.items():
                    parts.setdefault((attribute, name), []).append(result.value[k] * METRICS.get(name).scale)
    values = {key: np.concatenate(chunks) for key, chunks in parts.items()}
    fpr = {attribute: np.concatenate([f for f, _ in chunks]) for attribute, chunks in rate_parts.items()}
    tpr = {attribute: np.concatenate([t for _, t in chunks]) for attribute, chunks in rate_parts.items()}
    return Replicates(values=values, fpr=fpr, tpr=tpr)


class _LazyAucs:
    """The AUC engine, built on first use, and per chunk of replicates its AUCs computed at most once."""

    def __init__(self, y: np.ndarray, s: np.ndarray, groupings: dict[str, tuple[np.ndarray, int]],
                 boot: ClusterBootstrap, strategy: str) -> None:
        self._args = (y, s, groupings, boot, strategy)
        self._engine: _AucEngine | None = None

    def on(self, counts: np.ndarray, rows: slice) -> Callable[[], dict[str, np.ndarray]]:
        """A function giving {grouping: per-group AUC (b, G)} for these cluster counts (the replicates
        ``rows`` of the bootstrap), computed once."""
        cache: dict[str, np.ndarray] = {}

        def aucs() -> dict[str, np.ndarray]:
            if not cache:
                if self._engine is None:
                    self._engine = _AucEngine(*self._args)
                cache.update(self._engine.apply(counts, rows))
            return cache

        return aucs


# numpy sums fewer than 8 numbers along an axis one after the other, and 8 or more in a pairwise order:
# attributes of fewer groups are padded only up to a width below 8, so every sum over groups (a fairness
# metric's deviation sum) adds the same numbers in the same order as for the attribute alone.
_SEQUENTIAL_SUM = 8


def _batches(groups: dict[str, tuple[np.ndarray, int]]) -> list[list[str]]:
    """The attributes in consecutive batches evaluated together (`replicate_metrics`): those with fewer
    than `_SEQUENTIAL_SUM` groups, then each group count above that on its own."""
    batches: dict[int, list[str]] = {}
    for attribute, (_, n_groups) in groups.items():
        batches.setdefault(n_groups if n_groups >= _SEQUENTIAL_SUM else 0, []).append(attribute)
    return list(batches.values())


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
                 boot: ClusterBootstrap, strategy: str) -> None:
        if strategy not in ("auto", "pairs", "scan"):
            raise BenchError(f"Unknown AUC strategy {strategy!r}; expected 'auto', 'pairs' or 'scan'.")
        self.groupings = groupings
        self.layout = _PairLayout.shared(y, groupings, boot, strategy)
        self.strategy = "scan" if self.layout is None else "pairs"
        if self.layout is not None:
            self.psi = self.layout.pair_matrix(s)
        else:
            self.scans = {key: _ScanPlan.build(y, s, g, n, codes=boot.codes) for key, (g, n) in groupings.items()}

    def apply(self, counts: np.ndarray, rows: slice) -> dict[str, np.ndarray]:
        """{grouping: per-group AUC (b, G)} for cluster counts (b, C), the replicates ``rows``."""
        if self.layout is not None:
            return self.layout.apply(self.psi, rows)
        return {key: plan.apply(counts) for key, plan in self.scans.items()}


def _fine_groups(groupings: dict[str, tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's fine group (its tuple of codes over all groupings, unknowns included) and, per fine
    group, its code in every grouping: (N,) and (F, number of groupings). Fine groups are numbered in the
    lexicographic order of their tuples (each tuple is one mixed-radix number, codes -1..n-1 its digits)."""
    sizes = [n + 1 for _, n in groupings.values()]
    key = np.zeros(next(iter(groupings.values()))[0].shape[0], dtype=np.int64)
    for (g, _), size in zip(groupings.values(), sizes, strict=True):
        key = key * size + (g + 1)
    unique, fine = np.unique(key, return_inverse=True)
    digits = []
    for size in reversed(sizes):
        unique, digit = np.divmod(unique, size)
        digits.append(digit - 1)
    return fine.reshape(-1), np.stack(digits[::-1], axis=1).astype(np.intp)


# The cell-pair product c_fake @ Psi runs in float32 where that is exact: every term and partial sum is a
# multiple of 1/2 no larger than the final sum, so none is rounded while sum_a c_a * max Psi <= 2**23
# (Psi[a, b] is at most n_a * n_b, the sample counts of the two cells). The products with the real cells'
# counts and their sums per fine group stay in float32 as well where no replicate's numerator can pass it:
# each of those terms and partial sums is part of a numerator, at most W_fake * W_real of the replicate.
_EXACT_SINGLE = float(2**23)


@dataclass(frozen=True, eq=False)
class _PairLayout:
    """What the cell-pair engine needs that depends only on the test set, not on the scores: the labels,
    groups and resamples, which every prediction file of the test set shares. Cells (a cluster's samples of
    one fine group and label) are ordered by fine group on both sides; per replicate, the fake and real
    cells' draw counts and each fine group's fake and real sample counts."""

    fake: np.ndarray            # (n1,) the fake samples, and each one's fake cell
    fake_local: np.ndarray
    real: np.ndarray            # (n0,) the same for the reals
    real_local: np.ndarray
    fake_slices: list[tuple[int, slice]]  # (fine group, its fake cells: rows of Psi)
    fake_blocks: list[np.ndarray]  # per fake slice, its columns of c_fake (B, cells) in C order
    real_fine: np.ndarray       # fine groups with reals, in the column order of Psi
    real_starts: np.ndarray     # where each of them starts among the columns
    masks: dict[str, np.ndarray]  # per grouping: (F, G) 1 where a fine group belongs to a group
    c_fake: np.ndarray          # (B, C1) draw counts of the fake cells (float32 when `single`)
    c_real: np.ndarray          # (B, C0) draw counts of the real cells (float32 when `single_sums`)
    fake_w: np.ndarray          # (B, F) fake samples per fine group
    real_w: np.ndarray          # (B, F) real samples per fine group
    single: bool                # c_fake @ Psi is exact in float32
    single_sums: bool           # so are its products with c_real and their sums per fine group

    @classmethod
    def shared(cls, y: np.ndarray, groupings: dict[str, tuple[np.ndarray, int]], boot: ClusterBootstrap,
               strategy: str) -> _PairLayout | None:
        """The layout for these labels and groupings on ``boot``, made once and kept with the resamples
        (``boot.memo``) for the next file of the test set; None when the prefix scan is to be used."""
        key = ("pair-layout", strategy, tuple(groupings))
        kept = boot.memo.get(key)
        if kept is not None and _same_samples(kept[1], kept[2], y, groupings):
            return kept[0]
        layout = cls.build(y, groupings, boot, strategy)
        boot.memo[key] = (layout, y, groupings)
        return layout

    @classmethod
    def build(cls, y: np.ndarray, groupings: dict[str, tuple[np.ndarray, int]], boot: ClusterBootstrap,
              strategy: str) -> _PairLayout | None:
        codes = boot.codes
        fine, fine_codes = _fine_groups(groupings)
        n_fine = fine_codes.shape[0]
        cells = pd.factorize(codes.astype(np.int64) * (n_fine + 1) + fine)[0]
        fake, real = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        fake_cells, real_cells = np.unique(cells[fake]), np.unique(cells[real])
        if strategy == "scan" or (strategy == "auto" and fake_cells.size * real_cells.size > _PAIR_COST * len(
                groupings) * y.shape[0]):
            return None
        n_cells = int(cells.max()) + 1 if cells.size else 0
        cell_cluster = np.zeros(n_cells, dtype=np.intp)
        cell_cluster[cells] = codes
        cell_fine = np.zeros(n_cells, dtype=np.intp)
        cell_fine[cells] = fine
        fake_cells = fake_cells[np.argsort(cell_fine[fake_cells], kind="stable")]  # rows grouped by fine group
        real_cells = real_cells[np.argsort(cell_fine[real_cells], kind="stable")]  # columns likewise
        fake_local = _local_index(cells[fake], fake_cells, n_cells)
        real_local = _local_index(cells[real], real_cells, n_cells)
        fake_fine, real_fine = cell_fine[fake_cells], cell_fine[real_cells]
        fake_n = np.bincount(fake_local, minlength=fake_cells.size).astype(np.float64)
        real_n = np.bincount(real_local, minlength=real_cells.size).astype(np.float64)
        fake_onehot = np.zeros((fake_cells.size, n_fine))
        fake_onehot[np.arange(fake_cells.size), fake_fine] = fake_n
        real_onehot = np.zeros((real_cells.size, n_fine))
        real_onehot[np.arange(real_cells.size), real_fine] = real_n
        bounds = np.searchsorted(fake_fine, np.arange(n_fine + 1))
        slices = [(f, slice(bounds[f], bounds[f + 1])) for f in range(n_fine) if bounds[f + 1] > bounds[f]]
        real_starts = np.flatnonzero(np.diff(real_fine, prepend=-1))
        masks = {}
        for k, (key, (_, n_groups)) in enumerate(groupings.items()):
            group_of = fine_codes[:, k]
            mask = np.zeros((n_fine, n_groups))
            known = np.flatnonzero(group_of >= 0)
            mask[known, group_of[known]] = 1.0
            masks[key] = mask
        counts = boot.float_counts
        # rows of replicates, C order (indexing columns gives a column-major copy, which made every
        # elementwise pass over a replicate's cells strided)
        c_fake = np.ascontiguousarray(counts[:, cell_cluster[fake_cells]])
        c_real = np.ascontiguousarray(counts[:, cell_cluster[real_cells]])
        largest = max(fake_n.max(initial=0.0) * real_n.max(initial=0.0), 1.0)
        single = bool(c_fake.sum(axis=1).max(initial=0.0) * largest <= _EXACT_SINGLE)
        fake_w, real_w = c_fake @ fake_onehot, c_real @ real_onehot
        single_sums = single and bool((fake_w.sum(axis=1) * real_w.sum(axis=1)).max(initial=0.0) <= _EXACT_SINGLE)
        return cls(fake=fake, fake_local=fake_local, real=real, real_local=real_local,
                   fake_slices=slices, fake_blocks=[np.ascontiguousarray(c_fake[:, cells], dtype=np.float32 if single
                                                                         else np.float64) for _, cells in slices],
                   real_fine=real_fine[real_starts], real_starts=real_starts, masks=masks,
                   c_fake=c_fake.astype(np.float32) if single else c_fake,
                   c_real=c_real.astype(np.float32) if single_sums else c_real,
                   fake_w=fake_w, real_w=real_w, single=single, single_sums=single_sums)

    def pair_matrix(self, s: np.ndarray) -> np.ndarray:
        """Psi of one file's scores (see `_pair_matrix`), in the dtype of the products."""
        psi = _pair_matrix(s[self.fake], self.fake_local, self.c_fake.shape[1], s[self.real], self.real_local,
                           self.c_real.shape[1])
        return np.ascontiguousarray(psi, dtype=np.float32 if self.single else np.float64)

    def apply(self, psi: np.ndarray, rows: slice) -> dict[str, np.ndarray]:
        """{grouping: per-group AUC (b, G)} of the replicates ``rows`` for the pair matrix ``psi``."""
        c_real = self.c_real[rows]
        b, n_fine = c_real.shape[0], next(iter(self.masks.values())).shape[0]
        # numerators, replicates last: fakes of fine group f1 against reals of f2, pairs[f1, f2, replicate]
        pairs = np.zeros((n_fine, n_fine, b))
        if self.real_starts.size:
            # one GEMM's worth of work in all; each block's draw counts are contiguous (as a strided slice of
            # c_fake, the products took about 1.5 times as long)
            for (f1, cells), c_fake in zip(self.fake_slices, self.fake_blocks, strict=True):
                against = c_fake[rows] @ psi[cells]
                if not self.single_sums:
                    against = against.astype(np.float64)
                against *= c_real  # exact: a whole number of halves times a whole number
                pairs[f1, self.real_fine] = np.add.reduceat(against, self.real_starts, axis=1).T
        fake_w, real_w = self.fake_w[rows], self.real_w[rows]
        out = {}
        for key, mask in self.masks.items():
            # numerator[g] = the sum over f1, f2 in g of pairs[f1, f2]: every term and partial sum is exact, so
            # the order of summing changes no bit
            inner = np.tensordot(mask, pairs, axes=(0, 0))  # (G, f2, b): the sums over f1 within each group
            numerator = np.einsum("ghb,hg->bg", inner, mask)
            out[key] = ratio(numerator, (fake_w @ mask) * (real_w @ mask))
        return out


def _same_samples(y0: np.ndarray, groupings0: dict[str, tuple[np.ndarray, int]], y: np.ndarray,
                  groupings: dict[str, tuple[np.ndarray, int]]) -> bool:
    """Whether two files hold the same labels and groups (the files of one test set do)."""
    return np.array_equal(y0, y) and groupings0.keys() == groupings.keys() and all(
        n == groupings0[k][1] and np.array_equal(g, groupings0[k][0]) for k, (g, n) in groupings.items())


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
    grid): a row holds, at each grid score, twice the number of the row cluster's samples beyond it (above
    it for fakes, below it for reals), a tie counting once: a cumulative sum along the grid. Reading the
    block at each column sample's score and summing per column cluster gives 2 Psi. The orientation with
    the smaller block is used, a block of rows at a time (stored grid down, so the sums per column cluster are
    one sparse product).
    """
    if n_a == 0 or n_b == 0:
        return np.zeros((n_a, n_b))
    cost_fake_rows = n_a * (np.unique(s_real).size + s_real.size)
    cost_real_rows = n_b * (np.unique(s_fake).size + s_fake.size)
    if cost_fake_rows <= cost_real_rows:
        return _pair_rows(a, s_fake, n_a, b, s_real, n_b, above=True)
    return _pair_rows(b, s_real, n_b, a, s_fake, n_a, above=False).T


# Row clusters of the dense block per step in `_pair_rows`: about this many cells, so that a step's block
# stays in the core's cache through the cumulative sum and the sparse product (measured: a block of the
# whole matrix, megabytes, took twice as long; half or twice this many cells, longer too).
_BLOCK_CELLS = 65_536


def _pair_rows(row_cluster: np.ndarray, row_score: np.ndarray, n_rows: int, col_cluster: np.ndarray,
               col_score: np.ndarray, n_cols: int, *, above: bool) -> np.ndarray:
    """(n_rows, n_cols): for each row cluster and column cluster, the sum over the column cluster's samples
    of the row cluster's samples strictly above (``above``) or below them, ties counting half."""
    grid = np.unique(col_score)
    n_grid = grid.shape[0]
    col_order = np.argsort(col_cluster, kind="stable")
    col_sizes = np.bincount(col_cluster, minlength=n_cols)
    # (n_cols, n_grid): how many samples of each column cluster sit at each grid score (exact positions)
    at = sparse.csr_matrix((np.ones(col_order.shape[0], dtype=np.int64), np.searchsorted(grid, col_score[col_order]),
                            np.concatenate(([0], np.cumsum(col_sizes)))), shape=(n_cols, n_grid))
    # A row sample x marks the grid at left(x) and at right(x) (the first grid score >= x and > x; the same
    # point unless x is on the grid). Cumulated along the grid, C[u] = sum of marks at <= u is twice the
    # row samples below grid[u], a tie counting once; twice those above it is 2 n_row - C[u]. All in
    # whole numbers, so any order of summing is exact.
    left = np.searchsorted(grid, row_score, side="left")
    right = np.searchsorted(grid, row_score, side="right")
    row_order = np.argsort(row_cluster, kind="stable")
    rows_sorted, left, right = row_cluster[row_order], left[row_order], right[row_order]
    row_sizes = np.bincount(row_cluster, minlength=n_rows)
    width = n_grid + 1
    # The block holds the grid down and a step of row clusters across, so that the cumulative sum adds whole
    # rows and the sums per column cluster are one sparse product (along the grid, the sums over a cluster's
    # few samples were short segments, slow to add).
    twice = np.empty((n_cols, n_rows), dtype=np.int64)
    step = max(1, _BLOCK_CELLS // max(width, col_order.shape[0]))
    for first in range(0, n_rows, step):
        last = min(n_rows, first + step)
        lo, hi = np.searchsorted(rows_sorted, [first, last])
        across = rows_sorted[lo:hi] - first
        k = last - first
        marks = np.bincount(np.concatenate((left[lo:hi] * k + across, right[lo:hi] * k + across)),
                            minlength=width * k).reshape(width, k)
        twice[:, first:last] = at @ np.cumsum(marks[:n_grid], axis=0)
    if above:  # sum over a column cluster of 2 n_row - C[u]
        twice = 2 * col_sizes[:, None] * row_sizes[None, :] - twice
    return twice.T * 0.5


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
        return ratio(numerator, n_fake * n_real)


def _segment_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (b, n) over the segments [starts[g], starts[g + 1]) along axis 1; 0 for an empty one."""
    out = np.zeros((values.shape[0], starts.shape[0] - 1))
    filled = np.flatnonzero(np.diff(starts) > 0)
    if filled.size:  # an empty segment ends where the next one starts, so reduceat over the others is exact
        out[:, filled] = np.add.reduceat(values, starts[filled], axis=1)
    return out
