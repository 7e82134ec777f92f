"""Robust losses: exact CVaR of a loss vector, alone or per group, on the device and differentiable.

CVaR_a(l_1..l_n) = min over lambda of  lambda + 1/(a n) sum_i max(l_i - lambda, 0)  (0 < a <= 1)
                 = the mean of the worst a-fraction of the losses.

Sorting the losses in decreasing order, the minimiser gives the r-th largest loss (rank r = 0, 1, ...)
the weight  w_r = clip(m - r, 0, 1) / m  with m = a n: 1/m for the floor(m) largest, the fractional
boundary weight (m - floor(m))/m for the next one, and 0 for the rest. CVaR is then sum_r w_r l_(r), and
its gradient with respect to each loss is that loss's weight. Everything below is tensor arithmetic on the
losses' device, with no `.item()` and no data-dependent shapes, so a training step never waits for the
host (the public DAW-FDD code searches lambda with scipy on the CPU at every step instead).
"""

from __future__ import annotations

import math

import torch

FLOAT32_LOG_MAX = math.log(torch.finfo(torch.float32).max)  # exp(x) overflows float32 above this (88.72)
_GRID, _ROUNDS = 255, 8  # the smoothed CVaR's search: 256^8 = 2^64 narrowing


def cvar(losses: torch.Tensor, alpha: float, *, mask: torch.Tensor | None = None) -> torch.Tensor:
    """CVaR_alpha of the 1-D tensor ``losses``; entries where ``mask`` is False are left out.

    With no entry left the result is 0 (nothing to minimise), not NaN.
    """
    _check_alpha(alpha)
    losses = _at_least_float32(losses)
    valid = torch.ones_like(losses, dtype=torch.bool) if mask is None else mask
    # Sort by the (detached) losses, entries left out go last; ranks are then 0, 1, ... among the kept ones.
    key = torch.where(valid, losses.detach(), torch.full_like(losses, -torch.inf))
    order = torch.argsort(key, descending=True)
    rank = torch.arange(losses.shape[0], device=losses.device, dtype=losses.dtype)
    m = alpha * valid.sum().to(losses.dtype)
    weight = (m - rank).clamp(0, 1) / m.clamp_min(torch.finfo(losses.dtype).tiny)
    values = torch.where(valid, losses, torch.zeros_like(losses))[order]
    return (weight * values).sum()


def grouped_cvar(losses: torch.Tensor, groups: torch.Tensor, alpha: float,
                 num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CVaR_alpha of the losses of every group at once.

    ``groups`` holds a group code in [0, num_groups) per loss (anything else, e.g. -1 for unknown, is
    left out). Returns ``(values, present)``: the CVaR of each group, shape (num_groups,), 0 for a group
    with no sample, and the mask of the groups present in the batch.
    """
    _check_alpha(alpha)
    losses = _at_least_float32(losses)
    n, g_count = losses.shape[0], num_groups
    known = (groups >= 0) & (groups < g_count)
    bucket = torch.where(known, groups, torch.full_like(groups, g_count))  # unknown -> extra bucket
    counts = torch.zeros(g_count + 1, device=losses.device, dtype=losses.dtype).index_add_(
        0, bucket, torch.ones_like(losses))  # (G+1,), no host sync unlike bincount on CUDA
    # Decreasing loss within each group: sort by loss, then stably by group.
    by_loss = torch.argsort(losses.detach(), descending=True, stable=True)
    order = by_loss[torch.argsort(bucket[by_loss], stable=True)]
    sorted_bucket = bucket[order]
    starts = torch.cumsum(counts, 0) - counts  # first position of each group in the sorted order
    rank = torch.arange(n, device=losses.device, dtype=losses.dtype) - starts[sorted_bucket]
    m = alpha * counts[sorted_bucket]
    weight = (m - rank).clamp(0, 1) / m.clamp_min(torch.finfo(losses.dtype).tiny)
    weight = torch.where(sorted_bucket < g_count, weight, torch.zeros_like(weight))
    values = torch.zeros(g_count + 1, device=losses.device, dtype=losses.dtype).index_add(
        0, sorted_bucket, weight * losses[order])
    return values[:g_count], counts[:g_count] > 0


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha <= 1:
        raise ValueError(f"CVaR needs 0 < alpha <= 1, got {alpha}")


def _at_least_float32(losses: torch.Tensor) -> torch.Tensor:
    """Ranks and weights need float32 precision or better, also under bf16 autocast."""
    return losses if losses.dtype == torch.float64 else losses.float()


def smoothed_cvar(values: torch.Tensor, alpha: float, *, mask: torch.Tensor | None = None, tau1: float = 1e-3,
                  tau2: float = 1e-4, float32_guard: bool = False) -> torch.Tensor:
    """The smoothed CVaR of PG-FDD's outer level over the (masked) entries of ``values``:

        min over lambda of  lambda + tau2/(2a) lambda^2 + 1/(a k) sum_j tau1 softplus((v_j - lambda) / tau1)

    with k the number of entries kept. The objective is smooth and strictly convex in lambda, so its
    derivative is increasing: a search on its sign finds the minimiser. Each round evaluates the derivative
    at 255 evenly spaced points of the bracket at once and keeps the gap where it changes sign, so eight
    rounds narrow a bracket of width about max(v) - min(v) by 2^64, far below float precision, in a few
    dozen vector operations (bisection needs 60 rounds of scalar ones). Lambda is found without
    gradients and then held fixed, so gradients reach each v_j through its softplus term, weighted by
    sigmoid((v_j - lambda)/tau1) / (a k). As tau1 and tau2 go to 0 this tends to CVaR_a.

    ``float32_guard`` evaluates the objective at lambda = max(lambda*, max_j v_j - tau1 ln(FLT_MAX)) instead,
    where the public code's search stops: it rejects every lambda at which exp((v_j - lambda)/tau1)
    overflows float32. When the entries are spread out that bound binds, the value stays close to the
    largest v_j, and the gradient gives the worst entry about 1/(a k) instead of CVaR's share.
    """
    _check_alpha(alpha)
    values = values.double()  # tau1 = 1e-3 makes the softplus arguments large: keep the search exact
    valid = torch.ones_like(values, dtype=torch.bool) if mask is None else mask
    k = valid.sum().clamp_min(1).to(values.dtype)
    zero = torch.zeros_like(values)

    def objective(lam: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        terms = torch.where(valid, tau1 * torch.nn.functional.softplus((v - lam) / tau1), zero)
        return lam + tau2 / (2 * alpha) * lam**2 + terms.sum() / (alpha * k)

    with torch.no_grad():
        v = values.detach()
        big = torch.full_like(v, torch.finfo(v.dtype).max)
        low = torch.where(valid, v, big).min() - 50 * tau1 - 1.0
        high = torch.where(valid, v, -big).max() + 50 * tau1 + 1.0
        fractions = torch.arange(1, _GRID + 1, device=v.device, dtype=v.dtype) / (_GRID + 1)
        for _ in range(_ROUNDS):
            lam = low + (high - low) * fractions  # (GRID,)
            weights = torch.sigmoid((v[:, None] - lam) / tau1) * valid[:, None]
            slope = 1 + tau2 / alpha * lam - weights.sum(dim=0) / (alpha * k)
            left = (slope < 0).sum()  # the slope increases: the first `left` points lie left of the minimiser
            edges = torch.cat([low[None], lam, high[None]])
            low, high = edges[left], edges[left + 1]
        lam = (low + high) / 2
        if float32_guard:
            lam = torch.maximum(lam, torch.where(valid, v, -big).max() - tau1 * FLOAT32_LOG_MAX)
    result = objective(lam, values)
    return torch.where(valid.any(), result, torch.zeros_like(result)).float()


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """max_j v_j over the kept entries (0 when none is kept): the worst-group loss."""
    lowest = torch.full_like(values, -torch.inf)
    worst = torch.where(mask, values, lowest).max()
    return torch.where(mask.any(), worst, torch.zeros_like(worst))
