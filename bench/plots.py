"""Figures of the report, drawn headless (matplotlib's Agg backend, seaborn styles).

Every figure kind is one function registered with `figure`: its name, the caption report.md prints
under it, and the report inputs it needs by name (any table of the report, e.g. ``pairs``,
``group_rates``, ``friedman``; ``board``, the long leaderboard; ``files``, the aligned prediction
files). It is called with those inputs and the figures folder, writes PNG files atomically and returns
their paths. `make_figures` draws every registered figure in registration order, so adding a plot is
one function here. The module is imported only when figures are wanted, so ``bench report --no-plots``
never pays for matplotlib.

- `heatmaps`: per method, the train x test matrix of AUC and of intersection F_FPR;
- `pareto`: fairness against AUC per method with CIs, and the Pareto front;
- `group_rate_bars`: per intersection group, FPR and TPR per method with bootstrap CIs;
- `group_roc`: per method, ROC curves per intersection group for every train -> test pair;
- `cd_diagram`: a critical-difference diagram (Demsar 2006) from Friedman mean ranks and Nemenyi's CD.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bench.errors import BenchError
from bench.groups import INTERSECTIONS as INTERSECTION_NAMES
from bench.metrics import group_auc
from bench.registry import Registry
from bench.store import atomic_write_bytes

FAIRNESS = "intersection/F_FPR"
SCOPE_TITLES = {"cross": "cross-domain", "intra": "intra-domain"}
DPI = 130

Draw = Callable[..., list[Path]]
FIGURES: Registry[Draw] = Registry("figure")


def figure(name: str, *, caption: str, needs: Sequence[str]) -> Callable[[Draw], Draw]:
    """Register the decorated function as the figure kind ``name``: report.md prints ``caption`` under
    its PNGs, and `make_figures` calls it as ``fn(*inputs, folder)`` with the report inputs named in
    ``needs`` (a table name, ``board`` or ``files``). Returns the function unchanged."""
    if not caption.strip():
        raise BenchError(f"Figure {name!r} needs a caption: report.md prints it under the figure.")

    def decorator(fn: Draw) -> Draw:
        FIGURES.add(name, fn, caption=caption.strip(), needs=tuple(needs))
        return fn

    return decorator


def caption(name: str) -> str:
    """The caption of a registered figure kind."""
    return FIGURES.entry(name).meta["caption"]


def _style() -> Any:
    """Seaborn's whitegrid style and paper context, applied only inside the figure functions."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(sns.axes_style("whitegrid"))
    stack.enter_context(sns.plotting_context("notebook", font_scale=0.9))
    return stack


def _save(fig: plt.Figure, path: Path, *, tight: bool = False) -> Path:
    """Write ``fig`` as PNG. Figures drawn with the constrained layout already fit their canvas; ``tight``
    (a second layout pass over every artist) is for those whose text reaches outside their axes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# ============================================================================================ heatmaps
@figure("heatmaps", needs=("pairs",),
        caption="Per method, the train x test matrix of AUC and of intersection F_FPR (seed means).")
def heatmaps(pairs: pd.DataFrame, folder: Path) -> list[Path]:
    """Per method: train x test heatmaps of AUC and intersection F_FPR (seed means, main runs)."""
    main = pairs[pairs["role"] == "main"]
    panels = [(c, label, cmap) for c, label, cmap in (("AUC", "AUC (%), higher is better", "viridis"),
                                                      (FAIRNESS, "intersection F_FPR (pp), lower is fairer",
                                                       "rocket_r")) if c in main.columns]
    paths = []
    for method, rows in main.groupby("method", sort=True):
        trains = sorted(rows["train"].unique())
        tests = sorted(rows["test"].unique())
        with _style():
            fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 1.0, 0.55 * len(trains) + 2.6),
                                     squeeze=False, layout="constrained")
            for ax, (column, label, cmap) in zip(axes[0], panels, strict=True):
                matrix = rows.pivot_table(index="train", columns="test", values=column, aggfunc="mean")
                matrix = matrix.reindex(index=trains, columns=tests)
                sns.heatmap(matrix, ax=ax, annot=True, fmt=".1f", cmap=cmap, cbar=True, linewidths=0.5,
                            linecolor="white", annot_kws={"size": 8}, mask=matrix.isna())
                for i, train in enumerate(trains):  # outline the intra-domain cells
                    if train in tests:
                        ax.add_patch(plt.Rectangle((tests.index(train), i), 1, 1, fill=False, lw=1.5, ec="black"))
                ax.set_title(label, fontsize=10)
                ax.set_xlabel("test domain")
                ax.set_ylabel("train domain")
                ax.tick_params(axis="x", rotation=30)
                ax.tick_params(axis="y", rotation=0)
            fig.suptitle(f"{method}: train x test (mean over seeds; boxed = intra-domain)", fontsize=11)
            paths.append(_save(fig, folder / f"heatmap_{_slug(method)}.png"))
    return paths


# ============================================================================================ pareto
def pareto_front(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Indices of the points not dominated when x is to be maximised and y minimised, ordered by x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
    front = [i for i in ok if not any((x[j] >= x[i]) and (y[j] <= y[i]) and ((x[j] > x[i]) or (y[j] < y[i]))
                                      for j in ok)]
    return np.asarray(sorted(front, key=lambda i: x[i]), dtype=int)


@figure("pareto", needs=("board",),
        caption="Fairness (intersection F_FPR, lower is fairer) against AUC per method, with bootstrap CIs; "
                "the line joins the Pareto-optimal methods.")
def pareto(board: pd.DataFrame, folder: Path, *, fairness: str = FAIRNESS) -> list[Path]:
    """Per scope: each method's AUC against its fairness gap, with bootstrap CIs (std when there are none),
    and the Pareto front joining the methods no other beats on both."""
    scopes = [s for s in ("cross", "intra") if s in set(board["scope"])]
    if not scopes or "AUC" not in set(board["column"]) or fairness not in set(board["column"]):
        return []
    with _style():
        fig, axes = plt.subplots(1, len(scopes), figsize=(5.2 * len(scopes), 4.3), squeeze=False,
                                 layout="constrained")
        palette = dict(zip(sorted(board["method"].unique()), sns.color_palette("tab10", board["method"].nunique()),
                           strict=True))
        for ax, scope in zip(axes[0], scopes, strict=True):
            rows = board[board["scope"] == scope].set_index(["method", "column"])
            methods = sorted({m for m, _ in rows.index})
            x = np.array([rows.loc[(m, "AUC"), "mean"] if (m, "AUC") in rows.index else np.nan for m in methods])
            y = np.array([rows.loc[(m, fairness), "mean"] if (m, fairness) in rows.index else np.nan
                          for m in methods])
            for i, m in enumerate(methods):
                xerr = _error(rows, m, "AUC")
                yerr = _error(rows, m, fairness)
                ax.errorbar(x[i], y[i], xerr=xerr, yerr=yerr, fmt="o", ms=7, capsize=3, color=palette[m], label=m)
                ax.annotate(m, (x[i], y[i]), textcoords="offset points", xytext=(6, 5), fontsize=8)
            front = pareto_front(x, y)
            if len(front):
                ax.plot(x[front], y[front], "--", color="0.4", lw=1.2, label="Pareto front", zorder=0)
            ax.set_xlabel("AUC (%) → better")
            ax.set_ylabel(f"{fairness.replace('/', ' ')} (pp) ↓ fairer")
            ax.set_title(f"{SCOPE_TITLES[scope]}")
            ax.margins(0.25)
        axes[0][0].legend(fontsize=8, loc="best")
        fig.suptitle("Fairness vs detection (mean over seeds; bars: bootstrap 95% CI)", fontsize=11)
        return [_save(fig, folder / "pareto.png")]


def _error(rows: pd.DataFrame, method: str, column: str) -> Any:
    """Asymmetric CI error bars (2, 1) around the mean, or the std, or none."""
    if (method, column) not in rows.index:
        return None
    row = rows.loc[(method, column)]
    if not (np.isnan(row["ci_low"]) or np.isnan(row["ci_high"])):
        return np.array([[max(row["mean"] - row["ci_low"], 0.0)], [max(row["ci_high"] - row["mean"], 0.0)]])
    return None if np.isnan(row["std"]) else row["std"]


# ============================================================================================ group rates
@figure("group_rates", needs=("group_rates",),
        caption="Per intersection group, FPR and TPR per method (averaged like the leaderboard), with "
                "bootstrap CIs.")
def group_rate_bars(rates: pd.DataFrame, folder: Path) -> list[Path]:
    """Per scope (rows) and rate (columns): bars per intersection group and method, with bootstrap CIs."""
    if rates.empty:
        return []
    scopes = [s for s in ("cross", "intra") if s in set(rates["scope"])]
    methods = sorted(rates["method"].unique())
    palette = sns.color_palette("tab10", len(methods))
    with _style():
        fig, axes = plt.subplots(len(scopes), 2, figsize=(12, 3.8 * len(scopes)), squeeze=False,
                                 layout="constrained")
        for r, scope in enumerate(scopes):
            part = rates[rates["scope"] == scope]
            groups = sorted(part["group"].unique())
            width = 0.8 / len(methods)
            for c, rate in enumerate(("FPR", "TPR")):
                ax = axes[r][c]
                for k, method in enumerate(methods):
                    rows = part[part["method"] == method].set_index("group").reindex(groups)
                    pos = np.arange(len(groups)) - 0.4 + width * (k + 0.5)
                    low = (rows[rate] - rows[f"{rate} ci_low"]).clip(lower=0).fillna(0).to_numpy()
                    high = (rows[f"{rate} ci_high"] - rows[rate]).clip(lower=0).fillna(0).to_numpy()
                    ax.bar(pos, rows[rate].to_numpy(), width=width * 0.95, color=palette[k], label=method,
                           yerr=np.vstack([low, high]), capsize=2, error_kw={"lw": 0.8})
                ax.set_xticks(np.arange(len(groups)))
                ax.set_xticklabels([INTERSECTION_NAMES[g] if g < len(INTERSECTION_NAMES) else str(g)
                                    for g in groups], rotation=30)
                ax.set_ylabel(f"{rate} (%)")
                ax.set_title(f"{rate} per group, {SCOPE_TITLES[scope]}"
                             + (" (equal across groups = fair)" if rate == "FPR" else ""), fontsize=10)
        axes[0][1].legend(fontsize=8, loc="lower right")
        fig.suptitle("Per-group error rates at the threshold (mean over pairs and seeds; bars: bootstrap 95% CI)",
                     fontsize=11)
        return [_save(fig, folder / "group_rates.png")]


# ============================================================================================ ROC
def roc_points(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the ROC curve from (0, 0) to (1, 1): its corners, i.e. the points at the distinct
    scores as thresholds where the curve changes direction. A point on a straight run between its
    neighbours (a run of reals or of fakes between two thresholds) draws nothing and is left out, so
    the curve drawn is exactly the one through every threshold, with a fraction of the points."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last = np.append(np.flatnonzero(s[1:] != s[:-1]), s.shape[0] - 1)
    tp = np.concatenate([[0], np.cumsum(y == 1)[last]])
    fp = np.concatenate([[0], np.cumsum(y == 0)[last]])
    dtp, dfp = np.diff(tp), np.diff(fp)
    straight = dfp[:-1] * dtp[1:] == dtp[:-1] * dfp[1:]  # integer counts: exact collinearity
    keep = np.concatenate([[True], ~straight, [True]])
    tp, fp = tp[keep], fp[keep]
    n_fake, n_real = max(tp[-1], 1), max(fp[-1], 1)
    return fp / n_real, tp / n_fake


ROC_TICKS = (0.0, 0.5, 1.0)


@figure("roc", needs=("files",),
        caption="Per method, ROC curves per intersection group for each train -> test pair (first seed).")
def group_roc(files: Sequence[Any], folder: Path) -> list[Path]:
    """Per method: a grid of train (rows) x test (columns) panels, each with one ROC curve per intersection
    group holding both classes, from the method's first seed on that pair; legend entries carry the group AUC."""
    main = [f for f in files if f.run.role == "main"]
    paths = []
    palette = sns.color_palette("tab10", len(INTERSECTION_NAMES))
    for method in sorted({f.run.method for f in main}):
        mine = [f for f in main if f.run.method == method]
        first_seed = {}
        for f in sorted(mine, key=lambda f: f.run.seed):
            first_seed.setdefault((f.run.train, f.domain), f)
        trains = sorted({t for t, _ in first_seed})
        tests = sorted({d for _, d in first_seed})
        with _style():
            fig, axes = plt.subplots(len(trains), len(tests), figsize=(2.7 * len(tests) + 1.0, 2.6 * len(trains)),
                                     squeeze=False, sharex=True, sharey=True, layout="constrained")
            # Three fixed ticks, shared by every panel: a tick locator per panel was most of the figure's time.
            axes[0][0].set_xticks(ROC_TICKS, [f"{t:g}" for t in ROC_TICKS])
            axes[0][0].set_yticks(ROC_TICKS, [f"{t:g}" for t in ROC_TICKS])
            for i, train in enumerate(trains):
                for j, test in enumerate(tests):
                    ax = axes[i][j]
                    f = first_seed.get((train, test))
                    ax.plot([0, 1], [0, 1], ":", color="0.6", lw=0.8)
                    if f is None:
                        ax.set_axis_off()
                        continue
                    frame = f.frame
                    aucs = group_auc(frame["label"], frame["score"], frame["intersection"])
                    for g, value in aucs.items():
                        if np.isnan(value) or g >= len(INTERSECTION_NAMES):
                            continue
                        rows = frame[frame["intersection"] == g]
                        fpr, tpr = roc_points(rows["label"].to_numpy(), rows["score"].to_numpy())
                        ax.plot(fpr, tpr, lw=1.1, color=palette[g], label=f"{INTERSECTION_NAMES[g]} {100 * value:.0f}")
                    ax.legend(fontsize=5.5, loc="lower right", handlelength=1.0, borderaxespad=0.2)
                    ax.set_title(f"{train} → {test}" + (" (intra)" if train == test else ""), fontsize=8)
                    if i == len(trains) - 1:
                        ax.set_xlabel("FPR")
                    if j == 0:
                        ax.set_ylabel("TPR")
            seed = min(f.run.seed for f in mine)
            fig.suptitle(f"{method}: ROC per intersection group (legend: group AUC in %; seed {seed})", fontsize=11)
            paths.append(_save(fig, folder / f"roc_{_slug(method)}.png"))
    return paths


# ============================================================================================ CD diagram
def cd_diagram(mean_ranks: pd.Series, cd: float, *, title: str, path: Path, note: str = "") -> Path:
    """Demsar's critical-difference diagram: methods at their mean rank (1 = best, on the left), a bar of
    length CD, and thick lines joining methods whose mean ranks differ by less than CD."""
    ranks = mean_ranks.sort_values()
    k = len(ranks)
    lo, hi = 1, max(k, 2)
    with _style(), sns.axes_style("white"):
        height = 1.6 + 0.32 * k
        fig, ax = plt.subplots(figsize=(7.5, height))
        ax.set_xlim(lo - 0.3, hi + 0.3)
        ax.set_ylim(-0.3 * k - 0.8, 1.4)
        ax.axis("off")
        ax.hlines(0, lo, hi, color="black", lw=1)
        for r in range(lo, hi + 1):
            ax.vlines(r, 0, 0.12, color="black", lw=1)
            ax.text(r, 0.22, str(r), ha="center", va="bottom", fontsize=9)
        if np.isfinite(cd):
            ax.hlines(1.05, lo, lo + cd, color="firebrick", lw=2)
            ax.vlines([lo, lo + cd], 0.97, 1.13, color="firebrick", lw=1)
            ax.text(lo + cd / 2, 1.17, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9, color="firebrick")
        half = (k + 1) // 2
        for i, (method, rank) in enumerate(ranks.items()):
            left = i < half
            row = i if left else k - 1 - i
            y = -0.35 * (row + 1) - (0 if left else 0.17)  # staggered: equal ranks never share a line
            x_text = lo - 0.25 if left else hi + 0.25
            ax.plot([rank, rank, x_text], [0, y, y], color="0.2", lw=0.9)
            ax.text(x_text, y, f"{method} ({rank:.2f})", ha="right" if left else "left", va="center", fontsize=9)
        cliques = _cliques(ranks.to_numpy(), cd) if np.isfinite(cd) else []
        for n, (a, b) in enumerate(cliques):
            y = -0.12 - 0.1 * n
            ax.hlines(y, ranks.iloc[a] - 0.03, ranks.iloc[b] + 0.03, color="black", lw=3)
        ax.set_title(title, fontsize=10)
        if note:
            ax.text((lo + hi) / 2, -0.3 * k - 0.7, note, ha="center", va="bottom", fontsize=8, color="0.3")
        return _save(fig, path, tight=True)


def _cliques(sorted_ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs [a, b] of sorted mean ranks spanning less than CD (groups not shown to differ)."""
    runs = []
    for a in range(len(sorted_ranks)):
        b = a
        while b + 1 < len(sorted_ranks) and sorted_ranks[b + 1] - sorted_ranks[a] < cd:
            b += 1
        if b > a and not any(x <= a and b <= y for x, y in runs):
            runs.append((a, b))
    return runs


@figure("cd", needs=("friedman", "board"),
        caption="Critical-difference diagrams (Friedman / Nemenyi; descriptive, see Significance).")
def cd_diagrams(friedman: pd.DataFrame, board: pd.DataFrame, folder: Path,
                columns: Sequence[str] = ("AUC", FAIRNESS)) -> list[Path]:
    """CD diagrams of the headline columns in the cross-domain scope (intra-domain when there is no cross)."""
    paths = []
    scopes = set(board["scope"])
    scope = "cross" if "cross" in scopes else "intra"
    for column in columns:
        rows = friedman[(friedman["scope"] == scope) & (friedman["column"] == column)]
        path = folder / f"cd_{scope}_{_slug(column)}.png"
        if len(rows):
            first = rows.iloc[0]
            title = (f"{column}, {SCOPE_TITLES[scope]}: Friedman p = {first['p']:.3g} over {int(first['n_blocks'])} "
                     f"train → test pairs, k = {int(first['k'])}")
            note = "descriptive: mean-rank comparisons depend on the set of methods (Benavoli et al. 2016)"
            paths.append(cd_diagram(rows.set_index("method")["mean_rank"], float(first["cd"]), title=title,
                                    path=path, note=note))
        else:
            methods = sorted(board.loc[(board["scope"] == scope) & (board["column"] == column), "method"].unique())
            if not methods:
                continue
            note = ("a single method: nothing to rank against" if len(methods) == 1
                    else "no train -> test pair that every method has")
            paths.append(cd_diagram(pd.Series(1.0, index=methods), float("nan"),
                                    title=f"{column}, {SCOPE_TITLES[scope]}", path=path, note=note))
    return paths


# ============================================================================================ all
def make_figures(inputs: Mapping[str, Any], *, folder: Path, early: Early | None = None) -> dict[str, list[Path]]:
    """Every registered figure into ``folder``, each drawn from the report ``inputs`` it names (tables by
    name, ``board``, ``files``); returns the paths by figure kind, kinds that drew nothing left out.
    Kinds that ``early`` is drawing already (`start_early_figures`) are collected from it, not drawn again."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for entry in FIGURES.entries():
        if early is not None and entry.name in early.kinds:
            continue
        missing = [n for n in entry.meta["needs"] if n not in inputs]
        if missing:
            raise BenchError(f"Figure {entry.name!r} needs {', '.join(missing)}, which the report does not "
                             f"compute; it has: {', '.join(sorted(inputs))}.")
        drawn[entry.name] = _draw(entry.name, inputs, folder)
    if early is not None:
        drawn |= early.collect()
    return {name: drawn[name] for name in FIGURES.names() if drawn.get(name)}  # registration order


def _draw(kind: str, inputs: Mapping[str, Any], folder: Path) -> list[Path]:
    entry = FIGURES.entry(kind)
    return entry.obj(*(inputs[n] for n in entry.meta["needs"]), folder)


class Early:
    """Figure kinds being drawn in a forked process while the report computes its tables.

    The ROC grids need only the prediction files and are most of the figures' time, so on a machine with
    two cores or more they are drawn next to the statistics instead of after them. The child writes its
    PNGs and sends back their paths; when it fails or cannot start, `collect` draws the kinds here.
    """

    def __init__(self, inputs: Mapping[str, Any], *, folder: Path, kinds: Sequence[str]) -> None:
        import multiprocessing

        self.inputs, self.folder, self.kinds = inputs, folder, tuple(kinds)
        self._process = self._pipe = None
        if not self.kinds or (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return
        folder.mkdir(parents=True, exist_ok=True)
        receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
        self._process = multiprocessing.get_context("fork").Process(target=self._child, args=(send,), daemon=True)
        self._process.start()
        send.close()
        self._pipe = receive

    def _child(self, send: Any) -> None:
        try:
            send.send({kind: _draw(kind, self.inputs, self.folder) for kind in self.kinds})
        except BaseException:  # anything: the parent draws the kinds itself
            send.send(None)
        finally:
            send.close()

    def collect(self) -> dict[str, list[Path]]:
        """The paths drawn by kind; waits for the child, or draws here what it did not deliver."""
        result = None
        if self._process is not None:
            try:
                result = self._pipe.recv()
            except EOFError:  # the child died
                result = None
            self._pipe.close()
            self._process.join()
        if result is None:
            result = {kind: _draw(kind, self.inputs, self.folder) for kind in self.kinds}
        return result


def start_early_figures(inputs: Mapping[str, Any], *, folder: Path) -> Early:
    """Start drawing, in the background, every figure kind whose inputs are all in ``inputs`` already."""
    kinds = [e.name for e in FIGURES.entries() if all(n in inputs for n in e.meta["needs"])]
    return Early(inputs, folder=folder, kinds=kinds)
