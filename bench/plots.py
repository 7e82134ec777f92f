"""Figures of the report, drawn headless (matplotlib's Agg backend, seaborn styles).

Every figure kind is one function registered with `figure`: its name, the caption report.md prints
under it, and the report inputs it needs by name (any table of the report, e.g. ``pairs``,
``group_rates``, ``friedman``; ``board``, the long leaderboard; ``files``, the aligned prediction
files). It is called with those inputs and the figures folder, writes PNG files atomically and returns
their paths. `make_figures` draws every registered figure in registration order, so adding a plot is
one function here. matplotlib and seaborn are imported only by the process that draws (`Early`: a forked
process next to the report's statistics), so ``bench report --no-plots`` never pays for them, and the
report's own process does not either.

Speed: one file per method on the same grid of panels (heatmaps, ROC grids) is one `_Sheet`, laid out and
drawn once, each method's artists drawn over a copy of its pixels; layouts are fixed geometry measured
from the labels, not the constrained layout; PNGs are encoded without row filters at a low zlib level (`bench.png`).

- `heatmaps`: per method, the train x test matrix of AUC and of intersection F_FPR;
- `pareto`: fairness against AUC per method with CIs, and the Pareto front;
- `group_rate_bars`: per intersection group, FPR and TPR per method with bootstrap CIs;
- `group_roc`: per method, ROC curves per intersection group for every train -> test pair;
- `cd_diagram`: a critical-difference diagram (Demsar 2006) from Friedman mean ranks and Nemenyi's CD.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.groups import INTERSECTIONS as INTERSECTION_NAMES
from bench.png import LEVEL as PNG_LEVEL
from bench.png import png_bytes
from bench.registry import Registry
from bench.store import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FAIRNESS = "intersection/F_FPR"
SCOPE_TITLES = {"cross": "cross-domain", "intra": "intra-domain"}
DPI = 130

Draw = Callable[..., list[Path]]
FIGURES: Registry[Draw] = Registry("figure")


def figure(name: str, *, caption: str, needs: Sequence[str]) -> Callable[[Draw], Draw]:
    """Register the decorated function as the figure kind ``name``: report.md prints ``caption`` under
    its PNGs, and `make_figures` calls it as ``fn(*inputs, folder)`` with the report inputs named in
    ``needs`` (a table name, ``board`` or ``files``; the files' frames hold their numeric columns, not the
    string ids, see `figure_files`). Returns the function unchanged."""
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
    import seaborn as sns

    stack = contextlib.ExitStack()
    stack.enter_context(sns.axes_style("whitegrid"))
    stack.enter_context(sns.plotting_context("notebook", font_scale=0.9))
    return stack


def _save(fig: Figure, path: Path, *, tight: bool = False) -> Path:
    """Write ``fig`` as PNG: one canvas draw, encoded fast (`_png`). ``tight`` (a second layout pass over
    every artist, cropping the canvas to them) is for figures whose text reaches outside their axes."""
    if tight:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pil_kwargs={"compress_level": PNG_LEVEL})
        data = buffer.getvalue()
    else:
        fig.set_dpi(DPI)
        fig.canvas.draw()
        data = _png(fig)
    if fig.canvas.manager is not None:  # a figure from pyplot, kept there until closed
        import matplotlib.pyplot as plt

        plt.close(fig)
    atomic_write_bytes(path, data, durable=False)  # derived: see `atomic_write_bytes`
    return path


def _png(fig: Figure) -> bytes:
    """What the Agg canvas of ``fig`` holds now, as PNG bytes (`bench.png`: the figures are opaque, so RGB)."""
    return png_bytes(np.asarray(fig.canvas.buffer_rgba()))


class _Sheet:
    """A figure drawn once and written many times, for figure kinds that make one file per method on the
    same grid of panels (heatmaps, ROC grids).

    Everything the files share (axes, ticks, grid, titles, labels) is drawn once and kept as pixels, and so
    are ``stickers``: artists drawn once, each pasted back inside its box over every file's own artists (a
    legend over the curves). The artists that change per file are made *animated* (left out of the shared
    drawing); `write` draws ``below`` over a copy of the shared pixels, pastes the stickers, draws ``above``.
    ``parts`` holds the artists the figure kind updates per file; ``key`` says which layout the sheet is for.
    """

    def __init__(self, fig: Figure, key: Any, parts: dict[Any, Any], *, below: Sequence[Any] = (),
                 stickers: Sequence[tuple[Sequence[Any], Any]] = (), above: Sequence[Any] = ()) -> None:
        self.fig, self.key, self.parts = fig, key, parts
        self.below, self.stickers, self.above = list(below), list(stickers), list(above)
        self._background: Any = None
        self._stickers: list[Any] = []

    def write(self, path: Path) -> Path:
        """Draw the file's artists over the shared part and write the canvas to ``path`` as PNG."""
        canvas = self.fig.canvas
        if self._background is None:
            canvas.draw()  # the shared part: every artist not marked animated
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            for artists, box in self.stickers:
                for artist in artists:
                    self.fig.draw_artist(artist)
                self._stickers.append(canvas.copy_from_bbox(box))
        canvas.restore_region(self._background)
        for artist in self.below:
            self.fig.draw_artist(artist)
        for sticker in self._stickers:
            canvas.restore_region(sticker)
        for artist in self.above:
            self.fig.draw_artist(artist)
        atomic_write_bytes(path, _png(self.fig), durable=False)
        return path


def _new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches at `DPI` on an Agg canvas, outside pyplot's figure manager
    (nothing to close, nothing kept between calls)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _text_extent(fig: Figure, texts: Sequence[str], size: float) -> tuple[float, float]:
    """Width and height in inches of the widest and tallest of ``texts`` at ``size`` points, as this figure
    draws them: fixed layouts are computed from it instead of a layout pass over every artist."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=size)
    extents = [renderer.get_text_width_height_descent(t, font, ismath=False)[:2] for t in texts] or [(0.0, 0.0)]
    return max(w for w, _ in extents) / fig.dpi, max(h for _, h in extents) / fig.dpi


def _line_pitch(fig: Figure, size: float) -> float:
    """The distance in pixels between the baselines of two lines of a text at ``size`` points and line
    spacing 1, measured on ``fig`` (matplotlib's rule for it has changed between its versions)."""
    renderer = fig.canvas.get_renderer()
    one, two = (fig.text(0, 0, text, fontsize=size, linespacing=1.0) for text in ("0", "0\n0"))
    pitch = two.get_window_extent(renderer).height - one.get_window_extent(renderer).height
    one.remove()
    two.remove()
    return pitch


def _inches(fig: Figure, left: float, bottom: float, width: float, height: float) -> list[float]:
    """A rectangle given in inches from the figure's lower-left corner, as figure fractions."""
    w, h = fig.get_size_inches()
    return [left / w, bottom / h, width / w, height / h]


def _axes_grid(fig: Figure, rows: int, cols: int, *, panel: tuple[float, float],
               margins: tuple[float, float, float, float], gaps: tuple[float, float]) -> list[list[Any]]:
    """A rows x cols grid of axes of ``panel`` inches (width, height), with ``margins`` (left, right, bottom,
    top) and ``gaps`` (between columns, between rows) in inches; the figure is sized to hold them. Fixed
    geometry instead of the constrained layout, which measured every artist once per draw."""
    (w, h), (left, right, bottom, top), (gap_w, gap_h) = panel, margins, gaps
    fig.set_size_inches(left + cols * w + (cols - 1) * gap_w + right, bottom + rows * h + (rows - 1) * gap_h + top)
    return [[fig.add_axes(_inches(fig, left + j * (w + gap_w), bottom + (rows - 1 - i) * (h + gap_h), w, h))
             for j in range(cols)] for i in range(rows)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# ============================================================================================ heatmaps
HEATMAP_PANELS = (("AUC", "AUC (%), higher is better", "viridis"),
                  (FAIRNESS, "intersection F_FPR (pp), lower is fairer", "rocket_r"))
CELL = (0.8, 0.62)  # inches per heatmap cell (width, height)
TICK_SIZE, LABEL_SIZE, ANNOT_SIZE = 9.9, 10.8, 8  # points: `_style`'s tick and label sizes; annotations
DARK, LIGHT = ".15", "white"  # annotation colours: on light cells, on dark ones


@figure("heatmaps", needs=("pairs",),
        caption="Per method, the train x test matrix of AUC and of intersection F_FPR (seed means).")
def heatmaps(pairs: pd.DataFrame, folder: Path) -> list[Path]:
    """Per method: train x test heatmaps of AUC and intersection F_FPR (seed means, main runs), every cell
    annotated with its value, intra-domain cells boxed, each panel with its colour bar."""
    main = pairs[pairs["role"] == "main"]
    panels = [p for p in HEATMAP_PANELS if p[0] in main.columns]
    paths: list[Path] = []
    sheet = None
    with _style():
        for method, rows in main.groupby("method", sort=True):
            trains = sorted(rows["train"].unique())
            tests = sorted(rows["test"].unique())
            if sheet is None or sheet.key != (trains, tests):
                sheet = _heatmap_sheet(trains, tests, panels)
            _heatmap_fill(sheet, method, rows)
            paths.append(sheet.write(folder / f"heatmap_{_slug(method)}.png"))
    return paths


def _heatmap_sheet(trains: list[str], tests: list[str], panels: Sequence[tuple[str, str, str]]) -> _Sheet:
    """The heatmap figure for a train x test grid, geometry fixed from the grid and its label sizes: per
    panel a mesh of cells, its annotations, the intra-domain boxes and a colour bar, all animated."""
    import seaborn as sns
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    fig = _new_figure(1.0, 1.0)
    tick_w, tick_h = _text_extent(fig, [*trains, *tests], TICK_SIZE)
    bar_w, _ = _text_extent(fig, ["100.0"], TICK_SIZE)
    label_h = _text_extent(fig, ["train domain"], LABEL_SIZE)[1]
    pitch = _line_pitch(fig, ANNOT_SIZE)
    pt = 1 / 72
    left = label_h + 4 * pt + tick_w + 3.5 * pt + 0.1  # y label, its pad, tick labels, their pad
    below = tick_w * 0.5 + tick_h * 0.87 + 3.5 * pt + 4 * pt + label_h + 0.15  # labels turned 30 degrees
    above = 0.75  # suptitle and panel title
    grid_w, grid_h = CELL[0] * len(tests), max(CELL[1] * len(trains), 1.6)
    bar_gap, bar = 0.15, 0.16
    panel_w = left + grid_w + bar_gap + bar + 3.5 * pt + bar_w + 0.2
    fig.set_size_inches(panel_w * len(panels) + 0.1, below + grid_h + above)
    animated: list[Any] = []
    meshes, texts = [], []
    for p, (_, label, cmap) in enumerate(panels):
        x0 = p * panel_w + left
        ax = fig.add_axes(_inches(fig, x0, below, grid_w, grid_h))
        cax = fig.add_axes(_inches(fig, x0 + grid_w + bar_gap, below, bar, grid_h))
        ax.set_xlim(0, len(tests))
        ax.set_ylim(len(trains), 0)  # first train at the top
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xticks(np.arange(len(tests)) + 0.5, tests, rotation=30, fontsize=TICK_SIZE)
        ax.set_yticks(np.arange(len(trains)) + 0.5, trains, rotation=0, fontsize=TICK_SIZE)
        ax.tick_params(length=0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("test domain", fontsize=LABEL_SIZE)
        ax.set_ylabel("train domain", fontsize=LABEL_SIZE)
        mesh = ax.pcolormesh(np.ma.masked_all((len(trains), len(tests))), norm=Normalize(0, 1),
                             cmap=sns.color_palette(cmap, as_cmap=True),  # seaborn's rocket among them
                             edgecolors="white", linewidth=0.5, animated=True)
        colorbar = fig.colorbar(mesh, cax=cax)
        colorbar.outline.set_linewidth(0)
        cax.tick_params(labelsize=TICK_SIZE, length=0)
        cax.set_animated(True)
        # A column's annotations as two texts, a line per cell: one dark (on light cells), one white (on dark
        # cells), each blank where the other or no value shows; lines a cell apart. Two text artists per
        # column instead of one per cell: most of the cost of drawing a text is per artist.
        spacing = grid_h * fig.dpi / len(trains) / pitch
        cells = [tuple(ax.text(j + 0.5, len(trains) / 2, "", ha="center", va="center", fontsize=ANNOT_SIZE,
                               color=colour, linespacing=spacing, animated=True) for colour in (DARK, LIGHT))
                 for j in range(len(tests))]
        boxes = [ax.add_patch(Rectangle((tests.index(train), i), 1, 1, fill=False, lw=1.5, ec="black", animated=True))
                 for i, train in enumerate(trains) if train in tests]  # the intra-domain cells
        animated += [mesh, *(t for column in cells for t in column), *boxes, cax]
        meshes.append(mesh)
        texts.append(cells)
    title = fig.suptitle("", fontsize=11, y=1 - 0.12 / fig.get_size_inches()[1], va="top", animated=True)
    parts = {"meshes": meshes, "texts": texts, "columns": [c for c, _, _ in panels], "title": title}
    return _Sheet(fig, (trains, tests), parts, below=[*animated, title])


def _heatmap_fill(sheet: _Sheet, method: str, rows: pd.DataFrame) -> None:
    """Put one method's pairs (``rows``, a seed per row) into the sheet: per panel the train x test matrix
    of seed means, cell colours scaled to its range, annotations (dark on light cells, white on dark ones,
    none on a pair without a value); the title."""
    trains, tests = sheet.key
    means = rows.groupby(["train", "test"])[sheet.parts["columns"]].mean()
    for mesh, cells, column in zip(sheet.parts["meshes"], sheet.parts["texts"], sheet.parts["columns"], strict=True):
        matrix = means[column].unstack("test").reindex(index=trains, columns=tests).to_numpy(dtype=float)
        values = np.ma.masked_invalid(matrix)
        finite = matrix[np.isfinite(matrix)]
        mesh.set_array(values)
        mesh.set_clim(*(finite.min(), finite.max()) if finite.size else (0.0, 1.0))
        colours = mesh.to_rgba(values)
        for j, column_texts in enumerate(cells):
            dark = [_luminance(colours[i, j]) > 0.408 for i in range(len(trains))]
            for text, on_light in zip(column_texts, (True, False), strict=True):
                lines = [f"{matrix[i, j]:.1f}" if np.isfinite(matrix[i, j]) and dark[i] == on_light else ""
                         for i in range(len(trains))]
                text.set_text("\n".join(lines))
                text.set_visible(any(lines))
    sheet.parts["title"].set_text(f"{method}: train x test (mean over seeds; boxed = intra-domain)")


def _luminance(rgba: Sequence[float]) -> float:
    """Relative luminance of an sRGB colour (W3C): which annotation colour stays readable on a cell."""
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


# ============================================================================================ pareto
def pareto_front(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Indices of the points not dominated when x is to be maximised and y minimised, ordered by x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
    front = [i for i in ok if not any((x[j] >= x[i]) and (y[j] <= y[i]) and ((x[j] > x[i]) or (y[j] < y[i]))
                                      for j in ok)]
    return np.asarray(sorted(front, key=lambda i: x[i]), dtype=int)


def _method_colours(methods: Sequence[str]) -> dict[str, Any]:
    """A colour per method, all distinct: tab10, or tab20 for more than ten methods (tab10 repeated its
    colours, so two methods looked the same)."""
    import seaborn as sns

    return dict(zip(methods, sns.color_palette("tab10" if len(methods) <= 10 else "tab20", len(methods)),
                    strict=True))


@figure("pareto", needs=("board",),
        caption="Fairness (intersection F_FPR, lower is fairer) against AUC per method, with bootstrap CIs; "
                "the line joins the Pareto-optimal methods.")
def pareto(board: pd.DataFrame, folder: Path, *, fairness: str = FAIRNESS) -> list[Path]:
    """Per scope: each method's AUC against its fairness gap, with bootstrap CIs (std when there are none),
    and the Pareto front joining the methods no other beats on both."""
    fig = _pareto_figure(board, fairness=fairness)
    return [] if fig is None else [_save(fig, folder / "pareto.png")]


def _pareto_figure(board: pd.DataFrame, *, fairness: str = FAIRNESS) -> Figure | None:
    """The pareto figure, drawn: each point labelled with its method where no other label or point is
    (`_place_labels`), the legend of method colours outside the panels, on the right."""
    scopes = [s for s in ("cross", "intra") if s in set(board["scope"])]
    if not scopes or "AUC" not in set(board["column"]) or fairness not in set(board["column"]):
        return None
    from matplotlib.lines import Line2D

    with _style():
        fig = _new_figure(1.0, 1.0)
        palette = _method_colours(sorted(board["method"].unique()))
        handles = [Line2D([], [], ls="none", marker="o", ms=7, color=c, label=m) for m, c in palette.items()]
        handles.append(Line2D([], [], ls="--", color="0.4", lw=1.2, label="Pareto front"))
        legend_w = _legend_width(fig, handles)
        axes = _axes_grid(fig, 1, len(scopes), panel=(4.3, 3.2), margins=(0.75, legend_w + 0.25, 0.6, 0.65),
                          gaps=(0.8, 0))
        for ax, scope in zip(axes[0], scopes, strict=True):
            rows = board[board["scope"] == scope].set_index(["method", "column"])
            methods = sorted({m for m, _ in rows.index})
            x = np.array([rows.loc[(m, "AUC"), "mean"] if (m, "AUC") in rows.index else np.nan for m in methods])
            y = np.array([rows.loc[(m, fairness), "mean"] if (m, fairness) in rows.index else np.nan
                          for m in methods])
            for i, m in enumerate(methods):
                xerr = _error(rows, m, "AUC")
                yerr = _error(rows, m, fairness)
                ax.errorbar(x[i], y[i], xerr=xerr, yerr=yerr, fmt="o", ms=7, capsize=3, color=palette[m])
            front = pareto_front(x, y)
            if len(front):
                ax.plot(x[front], y[front], "--", color="0.4", lw=1.2, zorder=0)
            ax.set_xlabel("AUC (%) → better")
            ax.set_ylabel(f"{fairness.replace('/', ' ')} (pp) ↓ fairer")
            ax.set_title(f"{SCOPE_TITLES[scope]}")
            ax.margins(0.25)
            shown = np.isfinite(x) & np.isfinite(y)
            _place_labels(ax, x[shown], y[shown], [m for m, s in zip(methods, shown, strict=True) if s],
                          fontsize=8, marker=7)
        _outside_legend(fig, handles, top=0.65)
        fig.suptitle("Fairness vs detection (mean over seeds; bars: bootstrap 95% CI)", fontsize=11,
                     y=1 - 0.08 / fig.get_size_inches()[1], va="top")
        return fig


LEGEND_SIZE_POINTS = 8  # the legends beside the pareto and group-rate panels


def _legend_width(fig: Figure, handles: Sequence[Any]) -> float:
    """Inches the legend of ``handles`` takes beside the panels (`_outside_legend`), from its labels' widths
    and matplotlib's default spacing (handle 2, pad 0.8, border 0.4 font sizes)."""
    text_w, _ = _text_extent(fig, [h.get_label() for h in handles], LEGEND_SIZE_POINTS)
    return text_w + (2.0 + 0.8 + 2 * 0.4 + 0.5) * LEGEND_SIZE_POINTS / 72


def _outside_legend(fig: Figure, handles: Sequence[Any], *, top: float) -> Any:
    """The legend of ``handles`` in the figure's right margin, its top ``top`` inches below the figure's:
    outside every panel, so it covers no bar and no point."""
    height = fig.get_size_inches()[1]
    return fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1 - 0.05 / fig.get_size_inches()[0],
                      1 - top / height), fontsize=LEGEND_SIZE_POINTS, frameon=True, borderaxespad=0)


def _place_labels(ax: Any, x: np.ndarray, y: np.ndarray, labels: Sequence[str], *, fontsize: float,
                  marker: float) -> list[Any]:
    """Label each point (``x``, ``y``, data units) with the text beside it where it overlaps no other
    label and no point (markers ``marker`` points wide), inside the axes: candidate places on rings of
    growing distance around the point, the nearest free one taken (a thin leader line when it is not the
    first ring). Greedy, in pixel units from this figure's fixed geometry: a few hundred box tests, no
    layout pass. Freezes the axes' limits (the label positions depend on them). Returns the texts."""
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    renderer = ax.figure.canvas.get_renderer()
    points = ax.transData.transform(np.column_stack([x, y])) if len(labels) else np.zeros((0, 2))
    scale = ax.figure.dpi / 72  # pixels per point
    half = (marker / 2 + 1) * scale
    taken = [(px - half, py - half, px + half, py + half) for px, py in points]
    inside = ax.bbox
    texts, leaders = [], []
    step = fontsize * scale
    for (px, py), label in zip(points, labels, strict=True):
        text = ax.text(0, 0, label, fontsize=fontsize, ha="left", va="bottom")
        extent = text.get_window_extent(renderer)
        w, h = extent.width, extent.height
        best = None
        for ring in range(1, 13):
            r = half + 0.4 * step + (ring - 1) * step
            for angle in np.deg2rad(np.arange(0, 360, 45 if ring == 1 else 30)) + np.deg2rad(30):
                dx, dy = np.cos(angle), np.sin(angle)
                # the box touches the circle of radius r on the side facing the point
                x0 = px + r * dx - (w if dx < -0.3 else w / 2 if abs(dx) <= 0.3 else 0)
                y0 = py + r * dy - (h if dy < -0.3 else h / 2 if abs(dy) <= 0.3 else 0)
                box = (x0, y0, x0 + w, y0 + h)
                if box[0] < inside.x0 or box[2] > inside.x1 or box[1] < inside.y0 or box[3] > inside.y1:
                    continue
                if not any(_overlap(box, other) for other in taken):
                    best = (box, ring)
                    break
            if best is not None:
                break
        if best is None:  # nowhere free inside the axes: beside the point, to the upper right, overlapping
            best = ((px + half, py + half, px + half + w, py + half + h), 1)
        (x0, y0, x1, y1), ring = best
        taken.append((x0 - 1, y0 - 1, x1 + 1, y1 + 1))  # one pixel apart
        text.set_position(ax.transData.inverted().transform((x0, y0)))
        texts.append(text)
        if ring > 1:
            near = (min(max(px, x0), x1), min(max(py, y0), y1))
            leaders.append(ax.transData.inverted().transform([(px, py), near]))
    if leaders:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(leaders, colors="0.5", linewidths=0.6, zorder=1), autolim=False)
    return texts


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (x0, y0, x1, y1) boxes share more than an edge."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


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
    fig = _group_rates_figure(rates)
    return [] if fig is None else [_save(fig, folder / "group_rates.png")]


def _group_rates_figure(rates: pd.DataFrame) -> Figure | None:
    """The group-rates figure, drawn, its legend beside the panels (inside one it covered bars). Each
    panel's bars are one collection and its error bars one `errorbar` call: a bar call per method added
    every bar as its own patch."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    if rates.empty:
        return None
    scopes = [s for s in ("cross", "intra") if s in set(rates["scope"])]
    methods = sorted(rates["method"].unique())
    palette = _method_colours(methods)
    names = [INTERSECTION_NAMES[g] if g < len(INTERSECTION_NAMES) else str(g) for g in sorted(rates["group"].unique())]
    with _style():
        fig = _new_figure(1.0, 1.0)
        name_w, name_h = _text_extent(fig, names, TICK_SIZE)
        below = name_w * 0.5 + name_h * 0.87 + 0.2  # group names turned 30 degrees
        handles = [Patch(color=palette[m], label=m) for m in methods]
        axes = _axes_grid(fig, len(scopes), 2, panel=(5.25, 3.8 - 0.55 - below),
                          margins=(0.7, _legend_width(fig, handles) + 0.25, below, 0.7), gaps=(0.8, below + 0.35))
        width = 0.8 / len(methods)
        for r, scope in enumerate(scopes):
            part = rates[rates["scope"] == scope]
            groups = sorted(part["group"].unique())
            for c, rate in enumerate(("FPR", "TPR")):
                ax = axes[r][c]
                bars, colours, centres, heights, errors = [], [], [], [], []
                for k, method in enumerate(methods):
                    rows = part[part["method"] == method].set_index("group").reindex(groups)
                    pos = np.arange(len(groups)) - 0.4 + width * (k + 0.5)
                    value = rows[rate].to_numpy(dtype=float)
                    low = (rows[rate] - rows[f"{rate} ci_low"]).clip(lower=0).fillna(0).to_numpy()
                    high = (rows[f"{rate} ci_high"] - rows[rate]).clip(lower=0).fillna(0).to_numpy()
                    half = width * 0.95 / 2
                    for x, v in zip(pos, value, strict=True):
                        if np.isfinite(v):
                            bars.append([(x - half, 0), (x - half, v), (x + half, v), (x + half, 0)])
                            colours.append(palette[method])
                    centres.append(pos)
                    heights.append(value)
                    errors.append(np.vstack([low, high]))
                ax.add_collection(PolyCollection(bars, facecolors=colours, edgecolors="none"), autolim=False)
                centre, height, error = np.concatenate(centres), np.concatenate(heights), np.hstack(errors)
                shown = np.isfinite(height)
                ax.errorbar(centre[shown], height[shown], yerr=error[:, shown], fmt="none", ecolor="black",
                            elinewidth=0.8, capsize=2)
                top = np.nanmax(np.concatenate([height + error[1], [1.0]]))
                ax.set_xlim(-0.5, len(groups) - 0.5)
                ax.set_ylim(0, top * 1.05)
                ax.set_xticks(np.arange(len(groups)), [INTERSECTION_NAMES[g] if g < len(INTERSECTION_NAMES)
                                                       else str(g) for g in groups], rotation=30)
                ax.set_ylabel(f"{rate} (%)")
                ax.set_title(f"{rate} per group, {SCOPE_TITLES[scope]}"
                             + (" (equal across groups = fair)" if rate == "FPR" else ""), fontsize=10)
        _outside_legend(fig, handles, top=0.7)
        fig.suptitle("Per-group error rates at the threshold (mean over pairs and seeds; bars: bootstrap 95% CI)",
                     fontsize=11, y=1 - 0.08 / fig.get_size_inches()[1], va="top")
        return fig


# ============================================================================================ ROC
def roc_points(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the ROC curve from (0, 0) to (1, 1): its corners, i.e. the points at the distinct
    scores as thresholds where the curve changes direction. A point on a straight run between its
    neighbours (a run of reals or of fakes between two thresholds) draws nothing and is left out, so
    the curve drawn is exactly the one through every threshold, with a fraction of the points."""
    fp, tp = _roc_corners(y_true, score)
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def _roc_corners(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve's corners as counts: (false positives, true positives) at each corner."""
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
    return fp[keep], tp[keep]


def _group_curves(frame: pd.DataFrame) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """(group, FPR, TPR, AUC) for every intersection group of ``frame`` holding both classes, in group
    order. The AUC is the area under the corners, summed in integer counts: the Mann-Whitney AUC with ties
    counting half (`bench.metrics.group_auc`), without a second pass over the samples."""
    y, score, groups = (frame[c].to_numpy() for c in ("label", "score", "intersection"))
    curves = []
    for g in range(len(INTERSECTION_NAMES)):
        rows = groups == g
        if not rows.any():
            continue
        fp, tp = _roc_corners(y[rows], score[rows])
        if fp[-1] and tp[-1]:
            auc = float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]))) / (2 * fp[-1] * tp[-1])
            curves.append((g, fp / fp[-1], tp / tp[-1], auc))
    return curves


ROC_TICKS = (0.0, 0.5, 1.0)
ROC_PANEL = (2.1, 1.95)  # inches per train -> test panel (width, height)
LEGEND_SIZE = 5.5  # points


@figure("roc", needs=("files",),
        caption="Per method, ROC curves per intersection group for each train -> test pair (first seed).")
def group_roc(files: Sequence[Any], folder: Path) -> list[Path]:
    """Per method: a grid of train (rows) x test (columns) panels, each with one ROC curve per intersection
    group holding both classes, from the method's first seed on that pair; legend entries carry the group AUC."""
    main = [f for f in files if f.run.role == "main"]
    paths: list[Path] = []
    sheet = None
    with _style():
        for method in sorted({f.run.method for f in main}):
            mine = [f for f in main if f.run.method == method]
            first_seed: dict[tuple[str, str], Any] = {}
            for f in sorted(mine, key=lambda f: f.run.seed):
                first_seed.setdefault((f.run.train, f.domain), f)
            curves = {cell: _group_curves(f.frame) for cell, f in sorted(first_seed.items())}
            trains = sorted({t for t, _ in curves})
            tests = sorted({d for _, d in curves})
            key = (trains, tests, {cell: [g for g, *_ in drawn] for cell, drawn in curves.items()})
            if sheet is None or sheet.key != key:
                sheet = _roc_sheet(trains, tests, key)
            for cell, drawn in curves.items():
                sheet.parts[cell].show(drawn)
            seed = min(f.run.seed for f in mine)
            sheet.parts["title"].set_text(f"{method}: ROC per intersection group (legend: group AUC in %; seed {seed})")
            paths.append(sheet.write(folder / f"roc_{_slug(method)}.png"))
    return paths


class _RocPanel:
    """One train -> test panel of a ROC sheet: a curve per intersection group shown, and a legend of those
    groups with their AUC. The legend is drawn by hand (box, line and name per entry, stacked up from the
    lower right corner) and once per sheet, as a sticker pasted over the curves; only the AUC values are
    drawn per file. Matplotlib's own legend laid itself out on every draw: a quarter of the grids' time."""

    def __init__(self, ax: Any, groups: Sequence[int], palette: Sequence[Any], *, text: tuple[float, float],
                 value_w: float, pitch: float) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.patches import FancyBboxPatch
        from matplotlib.transforms import Affine2D, Bbox

        fig, size = ax.figure, LEGEND_SIZE
        name_w, row = text  # points
        pad, gap, handle, text_gap = 0.4 * size, 0.5 * size, 1.0 * size, 0.8 * size
        width = 2 * pad + handle + text_gap + name_w + value_w
        height = 2 * pad + len(groups) * row + max(len(groups) - 1, 0) * gap
        # points from the axes' lower-right corner, 0.2 font sizes inside it
        inset = 0.2 * size * fig.dpi / 72
        corner = Affine2D().scale(fig.dpi / 72).translate(ax.bbox.x1 - inset, ax.bbox.y0 + inset)
        self.curves = {g: ax.add_line(Line2D([], [], lw=1.1, color=palette[g], animated=True)) for g in groups}
        box = FancyBboxPatch((-width, 0), width, height, boxstyle=f"round,pad=0,rounding_size={0.2 * size}",
                             transform=corner, facecolor="white", edgecolor="0.8", lw=0.8, animated=True)
        legend = [box]
        for k, g in enumerate(groups):  # first group at the top
            middle = height - pad - k * (row + gap) - row / 2
            baseline = middle - 0.36 * size
            legend.append(Line2D([-width + pad, -width + pad + handle], [middle, middle], lw=1.1, color=palette[g],
                                 transform=corner, animated=True))
            legend.append(fig.text(-width + pad + handle + text_gap, baseline, INTERSECTION_NAMES[g], fontsize=size,
                                   transform=corner, animated=True))
        # The AUC values: one text of a line per group, its lines as far apart as the legend's rows (one
        # text artist per panel instead of one per value: most of the cost of drawing a text is per artist).
        last = height - pad - (len(groups) - 1) * (row + gap) - row / 2 - 0.36 * size  # baseline of the last
        self.values = fig.text(-pad, last, "", fontsize=size, ha="right", va="baseline", transform=corner,
                               linespacing=(row + gap) * fig.dpi / 72 / pitch, animated=True)
        for artist in legend:
            if artist.figure is None:
                fig.add_artist(artist)
        self.legend = legend
        self.legend_box = Bbox(corner.transform([(-width, 0), (0, height)])).padded(2)  # pixels, for the edge

    def show(self, drawn: Sequence[tuple[int, np.ndarray, np.ndarray, float]]) -> None:
        """Show one file's curves and their AUC values (the groups are those the panel was made for)."""
        for g, fpr, tpr, _ in drawn:
            self.curves[g].set_data(fpr, tpr)
        if [g for g, *_ in drawn] != list(self.curves):
            raise ValueError(f"curves of groups {[g for g, *_ in drawn]} for a panel of groups {list(self.curves)}")
        self.values.set_text("\n".join(f"{100 * auc:.0f}" for *_, auc in drawn))


def _roc_sheet(trains: list[str], tests: list[str], key: Any) -> _Sheet:
    """The ROC grid for these train x test panels (those in ``key``'s cells drawn with their groups, the
    others left blank): shared axes with three fixed ticks, fixed geometry, a `_RocPanel` per drawn panel."""
    cells = key[2]
    fig = _new_figure(1.0, 1.0)
    tick_w, tick_h = _text_extent(fig, [f"{t:g}" for t in ROC_TICKS], TICK_SIZE)
    label_h = _text_extent(fig, ["TPR"], LABEL_SIZE)[1]
    title_h = _text_extent(fig, [f"{t} → {t} (intra)" for t in trains], 8)[1]
    name_w, row = _text_extent(fig, [f"{n} " for n in INTERSECTION_NAMES], LEGEND_SIZE)
    value_w = _text_extent(fig, ["100"], LEGEND_SIZE)[0]
    pitch = _line_pitch(fig, LEGEND_SIZE)
    pt = 1 / 72
    left = label_h + 4 * pt + tick_w + 3.5 * pt + 6 * pt + 0.1  # y label, pad, tick labels, pad, tick
    below = tick_h + 3.5 * pt + 6 * pt + 4 * pt + label_h + 0.1
    above, gap_w, gap_h = 0.45, 0.12, title_h + 6 * pt + 0.12
    (w, h), rows, cols = ROC_PANEL, len(trains), len(tests)
    fig.set_size_inches(left + cols * w + (cols - 1) * gap_w + 0.15,
                        below + rows * h + (rows - 1) * gap_h + above + title_h + 6 * pt)
    import seaborn as sns

    palette = sns.color_palette("tab10", len(INTERSECTION_NAMES))
    parts: dict[Any, Any] = {}
    for i, train in enumerate(trains):
        for j, test in enumerate(tests):
            bottom = below + (rows - 1 - i) * (h + gap_h)
            ax = fig.add_axes(_inches(fig, left + j * (w + gap_w), bottom, w, h))
            if (train, test) not in cells:
                ax.set_axis_off()
                continue
            ax.set_xlim(-0.05, 1.05)
            ax.set_ylim(-0.05, 1.05)
            ax.set_xticks(ROC_TICKS, [f"{t:g}" for t in ROC_TICKS] if i == rows - 1 else [])
            ax.set_yticks(ROC_TICKS, [f"{t:g}" for t in ROC_TICKS] if j == 0 else [])
            ax.plot([0, 1], [0, 1], ":", color="0.6", lw=0.8)
            ax.set_title(f"{train} → {test}" + (" (intra)" if train == test else ""), fontsize=8)
            if i == rows - 1:
                ax.set_xlabel("FPR")
            if j == 0:
                ax.set_ylabel("TPR")
            parts[(train, test)] = _RocPanel(ax, cells[(train, test)], palette, text=(name_w * 72, row * 72),
                                             value_w=value_w * 72, pitch=pitch)
    parts["title"] = fig.suptitle("", fontsize=11, y=1 - 0.1 / fig.get_size_inches()[1], va="top", animated=True)
    panels = [p for p in parts.values() if isinstance(p, _RocPanel)]
    return _Sheet(fig, key, parts, below=[c for p in panels for c in p.curves.values()],
                  stickers=[(p.legend, p.legend_box) for p in panels],
                  above=[*(p.values for p in panels), parts["title"]])


# ============================================================================================ CD diagram
def cd_diagram(mean_ranks: pd.Series, cd: float, *, title: str, path: Path, note: str = "") -> Path:
    """Demsar's critical-difference diagram: methods at their mean rank (1 = best, on the left), a bar of
    length CD, and thick lines joining methods whose mean ranks differ by less than CD."""
    ranks = mean_ranks.sort_values()
    k = len(ranks)
    lo, hi = 1, max(k, 2)
    import seaborn as sns

    with _style(), sns.axes_style("white"):
        # fixed geometry: the rank axis 5.8 inches long, the method labels measured beside it, the title above
        fig = _new_figure(1.0, 1.0)
        labels = [f"{m} ({r:.2f})" for m, r in ranks.items()]
        half = (k + 1) // 2  # the better half is labelled on the left
        title_w, title_h = _text_extent(fig, [title], 10)
        span, height = 5.8, 0.77 * (1.6 + 0.32 * k)
        left, right = (max(_text_extent(fig, side, 9)[0] - 0.05 * span / (hi - lo + 0.6), 0) + 0.1
                       for side in (labels[:half], labels[half:]))  # labels start 0.05 ranks inside the axes
        extra = max(title_w + 0.2 - (left + span + right), 0) / 2
        fig.set_size_inches(left + span + right + 2 * extra, 0.1 + height + title_h + 6 / 72 + 0.1)
        ax = fig.add_axes(_inches(fig, left + extra, 0.1, span, height))
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
        return _save(fig, path)


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
    With ``early`` (`start_early_figures`), its figure process draws them and this waits for it."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in FIGURES.entries():
        missing = [n for n in entry.meta["needs"] if n not in inputs]
        if missing:
            raise BenchError(f"Figure {entry.name!r} needs {', '.join(missing)}, which the report does not "
                             f"compute; it has: {', '.join(sorted(inputs))}.")
    drawn = early.finish(inputs) if early is not None else _draw_ready(inputs, folder, {})
    return {name: drawn[name] for name in FIGURES.names() if drawn.get(name)}  # registration order


def _draw(kind: str, inputs: Mapping[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display, no GUI toolkit
    folder.mkdir(parents=True, exist_ok=True)  # made when the first figure is drawn, not before
    entry = FIGURES.entry(kind)
    return entry.obj(*(inputs[n] for n in entry.meta["needs"]), folder)


def _draw_ready(inputs: Mapping[str, Any], folder: Path, drawn: dict[str, list[Path]],
                kinds: Sequence[str] | None = None) -> dict[str, list[Path]]:
    """Draw every kind (of ``kinds``, default all) not in ``drawn`` whose inputs are all in ``inputs``, in
    registration order; adds them to ``drawn`` and returns it."""
    for entry in FIGURES.entries():
        if kinds is not None and entry.name not in kinds:
            continue
        if entry.name not in drawn and all(n in inputs for n in entry.meta["needs"]):
            drawn[entry.name] = _draw(entry.name, inputs, folder)
    return drawn


class Early:
    """Two forked processes that draw the figures while the report computes and writes its tables.

    They start with the report, before it reads the predictions: the first imports matplotlib and seaborn
    while the report reads (a core is free then), and forks the second, so the import is paid once and
    never by the report's process. `send` hands over report inputs as the report computes them (the
    prediction files first, from which the ROC grids are drawn: most of the figures' time), and `finish`
    the rest; each process gets only the inputs its kinds need. The kinds they complete are shared out as
    they come, each to the process given fewer kinds so far (the first on a tie): on the default grid the
    ROC grids, group-rate bars and CD diagrams to the first, the heatmaps and the Pareto plot to the second,
    so both cores draw until the end. `finish` waits for both and returns the paths of every
    kind. (They draw at the report's priority: at a lower one they waited through the bootstrap and
    finished after the tables, 2-3 s later on the default grid.) When a process fails, or none can start
    (one core, no fork), the report's process draws its kinds, so no figure is lost.
    """

    def __init__(self, inputs: Mapping[str, Any], *, folder: Path) -> None:
        import multiprocessing

        self.inputs, self.folder = dict(inputs), folder
        self._workers: list[tuple[Any, Any]] = []  # (process, pipe), None for one that is gone
        self._kinds: list[list[str]] = [[], []]  # the kinds each process was given
        self._has: list[set[str]] = [set(inputs), set(inputs)]  # the inputs each process has
        if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return
        context = multiprocessing.get_context("fork")
        (first, first_end), (second, second_end) = context.Pipe(), context.Pipe()
        process = context.Process(target=_figure_processes, daemon=True,
                                  args=(first_end, second_end, (first, second), self.inputs, folder))
        process.start()
        first_end.close()
        second_end.close()
        self._workers = [(process, first), (None, second)]  # the second is the first's child
        self.send({})

    def cancel(self) -> None:
        """Stop drawing (the report failed): the processes end, nothing more is drawn."""
        for process, pipe in self._workers:
            if pipe is not None:
                pipe.close()
            if process is not None:
                process.terminate()
                process.join()
        self._workers = []

    def send(self, inputs: Mapping[str, Any]) -> None:
        """More report inputs: the kinds they complete are drawn at once."""
        self._hand_out(inputs, final=False)

    def finish(self, inputs: Mapping[str, Any]) -> dict[str, list[Path]]:
        """Hand over the remaining ``inputs`` and wait: the paths of every kind by name."""
        self._hand_out(inputs, final=True)
        if not self._workers:
            return _draw_ready(self.inputs, self.folder, {})
        drawn: dict[str, list[Path]] = {}
        for (process, pipe), kinds in zip(self._workers, self._kinds, strict=True):
            result = None
            if pipe is not None:
                with contextlib.suppress(EOFError, OSError):  # the process died: its kinds are drawn here
                    result = pipe.recv()
                pipe.close()
                if process is not None:
                    process.join()
            drawn |= result if result is not None else _draw_ready(self.inputs, self.folder, {}, kinds)
        self._workers = []
        return drawn

    def _hand_out(self, inputs: Mapping[str, Any], *, final: bool) -> None:
        self.inputs |= {name: value for name, value in inputs.items() if name not in self.inputs}
        given = {name for kinds in self._kinds for name in kinds}
        for entry in FIGURES.entries():
            if entry.name not in given and all(n in self.inputs for n in entry.meta["needs"]):
                self._kinds[1 if len(self._kinds[1]) < len(self._kinds[0]) else 0].append(entry.name)
        for i, (_, pipe) in enumerate(self._workers):
            if pipe is None:
                continue
            needed = {name for kind in self._kinds[i] for name in FIGURES.entry(kind).meta["needs"]}
            new = {name: figure_files(value) if name == "files" else value for name, value in self.inputs.items()
                   if name in needed and name not in self._has[i]}  # only these travel
            try:
                pipe.send((new, self._kinds[i], final))
            except OSError:  # gone: `finish` draws its kinds here
                self._workers[i] = (self._workers[i][0], None)
            self._has[i] |= set(new)


def figure_files(files: Sequence[Any]) -> list[Any]:
    """The prediction files as a figure process gets them: each frame without its string columns (sample,
    video and identity ids, domain), which no figure draws and which are most of the bytes to send."""
    import dataclasses

    return [dataclasses.replace(f, frame=f.frame[[c for c, t in f.frame.dtypes.items() if t.kind in "biuf"]])
            for f in files]


def _figure_processes(first: Any, second: Any, report_ends: Sequence[Any], inputs: dict[str, Any],
                      folder: Path) -> None:
    """The first `Early` process: import the drawing libraries, fork the second (which inherits them),
    then both draw (`_figure_process`); the first waits for the second at the end.
    The report's ends of the pipes (``report_ends``, copied by the fork) are closed here first, so that
    either process sees the end of its pipe when the report's process is gone, and stops."""
    for end in report_ends:
        end.close()
    try:
        import matplotlib
        import seaborn  # noqa: F401 -- imported now, while the report computes, not when drawing starts

        matplotlib.use("Agg")
        child = os.fork()
    except BaseException:  # no second process: its pipe closes, and the report's process draws its kinds
        second.close()
        _figure_process(first, inputs, folder)
        return
    if child == 0:
        first.close()
        try:
            _figure_process(second, inputs, folder)
        finally:
            os._exit(0)  # the forked copy ends here: no exit handlers of the report's process
    second.close()
    try:
        _figure_process(first, inputs, folder)
    finally:
        os.waitpid(child, 0)


def _figure_process(pipe: Any, inputs: dict[str, Any], folder: Path) -> None:
    """An `Early` process: draw the kinds it is given as their inputs arrive; at the final message, send
    back the paths by kind (None when anything failed: the report's process then draws them)."""
    drawn: dict[str, list[Path]] = {}
    try:  # matplotlib is imported (`_figure_processes`) and set to Agg (`_draw`) already
        final = False
        while not final:
            new, kinds, final = pipe.recv()
            inputs |= new
            _draw_ready(inputs, folder, drawn, kinds)
        pipe.send(drawn)
    except BaseException:  # anything, including the report's process ending: it draws the kinds itself
        with contextlib.suppress(OSError):
            pipe.send(None)
    finally:
        pipe.close()


def start_early_figures(inputs: Mapping[str, Any], *, folder: Path) -> Early:
    """Start drawing, in a forked process, every figure kind whose inputs are all in ``inputs`` already;
    `make_figures` (or `Early.send`) hands it the rest."""
    return Early(inputs, folder=folder)
