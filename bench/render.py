"""How the report's tables read: CSV, Markdown, LaTeX, report.md and the terminal summary.

`bench.report` computes every number once (metrics, bootstrap, leaderboards, significance, ...) and hands
the finished tables here as plain DataFrames; this module only decides how they are displayed: the
decimals of each metric, p-values, 'mean ± std [CI] (rank)' cells with the best set in bold, Markdown pipe
tables, booktabs LaTeX, the text of report.md and the compact leaderboard printed at the end of
``bench report``. Each table is rendered at most once (`Table.blocks`), and report.md reuses those renderings.
Nothing here computes a metric, an interval or a test, so a change of presentation cannot change a
result, and every format shows the same numbers. It imports nothing of the report's computation.
"""

from __future__ import annotations

import functools
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.forkmap import fork_map
from bench.metrics import ATTRIBUTES, METRICS, POLICIES
from bench.predictions import ReportSettings
from bench.store import RunRecord, atomic_write_csv, atomic_write_text

SUMMARY = [("all", "AUC"), ("intersection", "F_FPR"), ("intersection", "F_MEO"), ("intersection", "F_DP"),
           ("intersection", "F_OAE")]
SCOPE_TITLES = {"cross": "cross-domain (train != test)", "intra": "intra-domain (train == test)"}
HEADLINE = ("AUC", "intersection/F_FPR", "intersection/F_OAE", "intersection/F_DP", "intersection/F_MEO")
LEVELS = {"pooled": "pooled over training jobs and test videos (the claims)",
          "pair": "one train -> test pair (same test samples)", "seeds": "over training seeds (scope average)",
          "pairs": "over train -> test pairs (seed means)"}
ENOUGH_SEEDS = 3  # with fewer, report.md warns at the top that seed variance is unknown


# ============================================================================================ rendering
@dataclass
class Rendered:
    """A table's display: strings for every cell, and which cells are bold (the best set)."""

    frame: pd.DataFrame
    bold: pd.DataFrame | None = None


def format_number(value: Any, digits: int = 2) -> str:
    """Fixed decimals for table cells; integers as integers; NaN as "n/a"; infinities as +-inf."""
    if type(value) is float and digits:  # the common case first (the same text as below)
        return "n/a" if value != value else f"{value:.{digits}f}"
    if value is None or value is pd.NA:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if float(value).is_integer() and abs(value) < 1e15 and digits == 0:
            return str(int(value))
        return f"{value:.{digits}f}"
    return str(value)


def _digits(column: str) -> int:
    metric = column.split(" ")[0].rsplit("/", 1)[-1]  # "intersection/F_FPR std" -> "F_FPR"
    if metric in METRICS:
        return 2 if METRICS.get(metric).unit == "%" else 4
    return 2


def format_p(value: Any) -> str:
    """p-values: three significant digits, small ones in scientific notation."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = float(value)
    return f"{value:.2e}" if 0 < value < 1e-3 else f"{value:.3f}"


def render_generic(frame: pd.DataFrame) -> Rendered:
    """Any table: numbers with a sensible number of decimals, p-values as p-values."""
    out = {}
    for column in frame.columns:
        series = frame[column]
        if column in ("p", "p_holm", "p_bh"):
            out[column] = [format_p(v) for v in series.tolist()]
        elif pd.api.types.is_bool_dtype(series.dtype):
            out[column] = np.where(series.to_numpy(dtype=bool), "yes", "no").tolist()
        elif pd.api.types.is_float_dtype(series.dtype):
            out[column] = _format_floats(series.to_numpy(dtype=np.float64), 4 if column == "value" else _digits(column))
        elif pd.api.types.is_integer_dtype(series.dtype):
            values = series.to_numpy(dtype=object)
            out[column] = ["n/a" if v is pd.NA or v is None else str(int(v)) for v in values]
        else:
            out[column] = _numbers(series.tolist())
    return Rendered(pd.DataFrame(out, index=frame.index, columns=list(frame.columns)))


def _format_floats(values: np.ndarray, digits: int) -> list[str]:
    spec = f"%.{digits}f"
    return ["n/a" if v != v else spec % v for v in values.tolist()]


def _numbers(values: list[Any], digits: int = 2) -> list[str]:
    """`format_number` of every value (strings as they are)."""
    return [v if type(v) is str else format_number(v, digits) for v in values]


def ranked_columns(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a leaderboard or per-pair table: those that carry a rank, in order."""
    return [c.removesuffix(" rank") for c in frame.columns if c.endswith(" rank")]


def _ranked(frame: pd.DataFrame, head: Sequence[str], cell: Any) -> Rendered:
    """``head`` columns as they are, then each ranked column's cells as ``cell(values, column, digits)``
    (``values``: every column of the table as a list of plain Python values); bold where the table's
    ``<column> best`` says so (the methods not significantly worse than the best), else rank 1."""
    columns = ranked_columns(frame)
    # plain Python values, a list per column (one conversion; a Series per cell cost most of the time)
    values = dict(zip(frame.columns, frame.to_numpy(dtype=object).T.tolist(), strict=True))
    out = {c: _numbers(values[c]) for c in head}
    bold = {c: np.zeros(len(frame), dtype=bool) for c in head}
    for column in columns:
        out[column] = cell(values, column, _digits(column))
        best = frame[f"{column} best"] if f"{column} best" in frame.columns else frame[f"{column} rank"] == 1
        bold[column] = best.to_numpy(dtype=bool)
    return Rendered(pd.DataFrame(out), pd.DataFrame(bold))


def _mean_std(values: dict[str, list[Any]], column: str, digits: int) -> list[str]:
    means = _numbers(values[column], digits)
    if f"{column} std" not in values:
        return means
    return [mean if _isnan(std) else f"{mean} ± {format_number(std, digits)}"
            for mean, std in zip(means, values[f"{column} std"], strict=True)]


def _leaderboard_cell(values: dict[str, list[Any]], column: str, digits: int) -> list[str]:
    text = _mean_std(values, column, digits)
    if f"{column} ci_low" in values:
        text = [t if _isnan(low) else f"{t} [{format_number(low, digits)}, {format_number(high, digits)}]"
                for t, low, high in zip(text, values[f"{column} ci_low"], values[f"{column} ci_high"], strict=True)]
    return [f"{t} ({format_number(rank, 0)})" for t, rank in zip(text, values[f"{column} rank"], strict=True)]


def render_leaderboard(wide: pd.DataFrame) -> Rendered:
    """Leaderboard cells as 'mean ± std [low, high] (rank)'; the best set of each column bold."""
    return _ranked(wide, ["scope", "method", "n_seeds", "n_pairs"], _leaderboard_cell)


def render_paper(table: pd.DataFrame) -> Rendered:
    """The paper's per-pair cells as 'mean ± std'; the best set of each column within the pair bold."""
    return _ranked(table, ["train", "test", "method", "n_seeds"], _mean_std)


def render_significance(table: pd.DataFrame) -> Rendered:
    out = render_generic(table.drop(columns=["ci_low", "ci_high"]))
    frame = out.frame
    digits = {c: _digits(c) for c in set(table["column"])}
    row_digits = [digits[c] for c in table["column"].tolist()]
    ci = [f"[{format_number(lo, d)}, {format_number(hi, d)}]"
          for lo, hi, d in zip(table["ci_low"].tolist(), table["ci_high"].tolist(), row_digits, strict=True)]
    frame.insert(frame.columns.get_loc("estimate") + 1, "CI", ci)
    frame["estimate"] = [format_number(v, d) for v, d in zip(table["estimate"].tolist(), row_digits, strict=True)]
    return Rendered(frame)


def _isnan(value: Any) -> bool:
    if type(value) is float:
        return value != value
    if value is None or value is pd.NA:
        return True
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def to_markdown(rendered: Rendered) -> str:
    """A GitHub-flavoured pipe table, columns padded to a common width; the marked cells in bold."""
    columns = [[c.replace("|", "\\|") for c in cells] if "|" in "".join(cells) else cells
               for cells in _cells(rendered, lambda c: f"**{c}**")]
    headers = [str(c).replace("|", "\\|") for c in rendered.frame.columns]
    widths = [max([len(h), 3, *map(len, cells)]) for h, cells in zip(headers, columns, strict=True)]
    lines = ["| " + " | ".join(map(str.ljust, headers, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(map(str.ljust, row, widths)) + " |" for row in _rows(columns, rendered)]
    return "\n".join(lines)


def _cells(rendered: Rendered, embolden: Any, text: Any = str) -> list[list[str]]:
    """The rendered table column by column: ``text`` of every cell, ``embolden`` of that where marked bold."""
    frame, bold = rendered.frame, rendered.bold
    out = []
    for column, values in zip(frame.columns, frame.to_numpy(dtype=object).T.tolist(), strict=True):
        cells = [text(v) for v in values]
        if bold is not None and column in bold.columns:
            marks = bold[column].to_numpy(dtype=bool).tolist()
            cells = [embolden(c) if b else c for c, b in zip(cells, marks, strict=True)]
        out.append(cells)
    return out


def _rows(columns: list[list[str]], rendered: Rendered) -> Any:
    """The cells row by row (a table without columns still has its rows, empty)."""
    return zip(*columns, strict=True) if columns else [()] * len(rendered.frame)


_TEX_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                              "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                              "^": r"\textasciicircum{}", "±": r"$\pm$", "→": r"$\to$", "<": r"$<$", ">": r"$>$"})


def tex_escape(text: str) -> str:
    return str(text).translate(_TEX_ESCAPES)


def to_latex(rendered: Rendered) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); the marked cells in bold."""
    frame = rendered.frame
    columns = _cells(rendered, lambda c: r"\textbf{" + c + "}", tex_escape)
    lines = [r"\begin{tabular}{" + "l" * len(frame.columns) + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in _rows(columns, rendered)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ============================================================================================ writing
READING_ROWS = 5_000  # longer tables are data, not reading: CSV only (see `write_table`)


@dataclass
class Table:
    """A table to write: its CSV frame and its display rendering (one or several blocks with titles),
    rendered when first asked for: the long tables are never rendered unless something shows them."""

    name: str
    frame: pd.DataFrame

    @functools.cached_property
    def blocks(self) -> list[tuple[str, Rendered]]:
        return table_blocks(self.name, self.frame)


def readable(frame: pd.DataFrame) -> bool:
    """Whether a table gets its Markdown and LaTeX renderings: at most `READING_ROWS` rows. The
    significance table of a full grid has tens of thousands of rows (tens of MB as Markdown, and most of a
    report's time to write); nobody reads those as a page, so they are CSV only."""
    return len(frame) <= READING_ROWS


def write_table(table: Table, folder: Path, formats: Sequence[str]) -> list[Path]:
    """The table's files in ``formats``; Markdown and LaTeX only for a `readable` one. A rendering
    left from an earlier report of a shorter table is removed, so no stale copy sits beside the CSV."""
    written = []
    if "csv" in formats:
        atomic_write_csv(folder / f"{table.name}.csv", table.frame, durable=False)
        written.append(folder / f"{table.name}.csv")
    if not readable(table.frame):
        for path in stale_renderings([table], folder):
            path.unlink(missing_ok=True)
        return written
    if "md" in formats:
        parts = [(f"### {title}\n\n" if title else "") + to_markdown(r) + "\n" for title, r in table.blocks]
        atomic_write_text(folder / f"{table.name}.md", "\n".join(parts) if parts else "(empty)\n", durable=False)
        written.append(folder / f"{table.name}.md")
    if "tex" in formats:
        parts = [(f"% {title}\n" if title else "") + to_latex(r) for title, r in table.blocks]
        atomic_write_text(folder / f"{table.name}.tex", "\n".join(parts) if parts else "% (empty)\n",
                          durable=False)
        written.append(folder / f"{table.name}.tex")
    return written


def stale_renderings(tables: Sequence[Table], folder: Path) -> list[Path]:
    """The Markdown and LaTeX files in ``folder`` an earlier report may have left for those of ``tables`` that
    are now too long to read (`readable`): they would sit beside a CSV they no longer match."""
    return [folder / f"{t.name}.{suffix}" for t in tables if not readable(t.frame) for suffix in ("md", "tex")]


def write_tables(tables: Sequence[Table], folder: Path, formats: Sequence[str]) -> None:
    """Every table's files (`write_table`) in ``folder``. The CSV files of the long tables (most of the
    writing: float formatting of tens of thousands of rows) are written by a forked process while this one
    renders and writes the rest (`bench.forkmap.fork_map`: one process where fork is not available)."""
    folder.mkdir(parents=True, exist_ok=True)
    long = [t for t in tables if not readable(t.frame)] if "csv" in formats else []
    long_names = {t.name for t in long}
    rest = tuple(f for f in formats if f != "csv")

    def write(share: str) -> None:
        for table in long if share == "long" else tables:
            write_table(table, folder, ("csv",) if share == "long" else rest if table.name in long_names else formats)

    fork_map(write, ["rest", "long"] if long else ["rest"])


def blocks_by(frame: pd.DataFrame, keys: Sequence[str], render: Any, title: Any) -> list[tuple[str, Rendered]]:
    """One titled block per group of ``keys``: ``title(*values)`` and ``render(part)``."""
    if frame.empty:
        return []
    blocks = []
    for values, part in frame.groupby(list(keys), sort=False):
        values = values if isinstance(values, tuple) else (values,)
        blocks.append((title(*values), render(part.reset_index(drop=True))))
    return blocks


def table_blocks(name: str, frame: pd.DataFrame) -> list[tuple[str, Rendered]]:
    """How the table ``name`` reads, as titled blocks: leaderboards per scope, the paper's tables per
    train -> test pair, significance per comparison set and level, any other table as one block."""
    if name == "leaderboard" or name.startswith("leaderboard_"):
        prefix = "" if name == "leaderboard" else f"{name.removeprefix('leaderboard_')}: "
        return blocks_by(frame, ["scope"], render_leaderboard, lambda s: prefix + SCOPE_TITLES[s])
    if name == "paper_pairs":
        return blocks_by(frame, ["train", "test"], render_paper, lambda a, b: f"{a} → {b}")
    if name == "significance":
        return blocks_by(frame, ["comparison", "level"], render_significance, lambda c, lv: f"{c}, {LEVELS[lv]}")
    return [("", render_generic(frame))]


def render_tables(frames: dict[str, pd.DataFrame]) -> dict[str, Table]:
    """Every table, to be rendered (once, when first needed) for its files and for report.md."""
    return {name: Table(name, frame) for name, frame in frames.items()}


class FigureSection(NamedTuple):
    """A figure kind as report.md shows it: its name, its caption and its PNG files."""

    name: str
    caption: str
    paths: list[Path]


# ============================================================================================ report.md
def report_markdown(*, settings: ReportSettings, tables: dict[str, Table], tidy: pd.DataFrame,
                    runs: list[RunRecord], baseline: str | None, warnings: Sequence[str],
                    figures: Sequence[FigureSection], results: Path | None, path: Path,
                    detection: pd.DataFrame | None) -> str:
    """report.md: settings, leaderboards, per-pair tables, significance, figures, definitions, selection,
    seeds, groups, the benchmark check, provenance, and the notes a reader needs to interpret them.

    ``tables``: every table as `render_tables` rendered it (report.md shows the same renderings);
    ``detection``: the wide leaderboard of the detection metrics (None when there are none)."""
    s, t = settings, {name: table.frame for name, table in tables.items()}
    out = io.StringIO()
    w = out.write
    main = tidy[tidy["role"] == "main"]
    methods = sorted(main["method"].unique())
    domains_train = sorted(main["train"].unique())
    domains_test = sorted(tidy["test"].unique())
    w("# Fairness generalization report\n\n")
    note = seed_note(tidy)
    if note:
        w(f"> **{note}**\n\n")
    w(f"Results folder `{results or path.parent}`; {len(runs)} finished job(s); "
      f"methods: {', '.join(methods) or '-'}; "
      f"training domains: {', '.join(domains_train) or '-'}; test domains: {', '.join(domains_test)}; "
      f"baseline: {baseline or 'none'}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.\n\n")
    w("## Settings\n\n")
    settings_rows = [
        ("threshold", f"{s.threshold} (a frame is predicted fake when P(fake) >= threshold)"),
        ("group policy", f"{s.policy}: {POLICIES[s.policy]}"),
        ("minimum group size", str(s.min_group_size)),
        ("bootstrap", f"{s.n_boot} replicates, clusters = {s.cluster}, stratified by label x intersection group, "
                      f"seed {s.seed}" if s.n_boot else "off (--bootstrap 0)"),
        ("alpha", f"{s.alpha} ({100 * (1 - s.alpha):.0f}% intervals)"),
        ("metrics", s.metrics),
        ("selection", s.selection.describe()),
        ("post-processing", (f"{', '.join(s.postprocess)} (per-group thresholds from each job's validation "
                             f"predictions; own threshold for groups with >= {s.postprocess_min_group} reals and "
                             f"fakes there)") if s.postprocess else "none"),
        ("computed with", _environment()),
    ]
    w(tabulate(settings_rows, headers=["setting", "value"], tablefmt="github") + "\n\n")
    if warnings:
        w("**Notes on this data.**\n\n" + "".join(f"- {x}\n" for x in warnings) + "\n")

    w("## Leaderboards\n\n")
    w(f"Per attribute: methods as rows; AUC and every fairness metric as columns; each cell is "
      f"**mean ± std [{100 * (1 - s.alpha):.0f}% CI] (rank)**: the metric averaged over the scope's "
      f"train -> test pairs, then mean and standard deviation (ddof=1) over training seeds. The CI comes from "
      f"{s.n_boot} stratified cluster-bootstrap resamples of the test sets, each averaged exactly like the "
      f"point value: it is the uncertainty due to the finite test sets for these trained models, while the std "
      f"is the spread over seeds. It is the *basic* bootstrap interval (2 x mean - the replicate quantiles): a "
      f"max - min gap over noisy group rates is biased upwards, resampling inflates it further, and the basic "
      f"interval corrects for that shift (intervals are cut to the metric's range: gaps >= 0, rates <= 100). "
      f"**A CI that lies below its mean says the observed gap is inflated by small-group noise**; see the "
      f"group sizes below. Fairness gaps are in percentage points, lower is fairer. All metrics at once: "
      f"`tables/leaderboard.csv`.\n\n"
      f"**Ranks and bold follow the tests, not the order of the means.** A method's rank is 1 + the number of "
      f"methods significantly better than it, so methods that no test separates share a rank; bold marks every "
      f"method not significantly worse than the best mean, the set the data cannot tell apart from the "
      f"leader. The test that decides is the **pooled t-test** over training jobs and test videos (see "
      f"Significance), pairwise, with Holm's correction within the metric's pairwise family at alpha = "
      f"{s.alpha}; for a metric without bootstrap replicates it is the **Wilcoxon** test over train -> test "
      f"pairs (`rank_test` in the long leaderboard names it per metric).\n\n")
    for attribute in ATTRIBUTES:
        name = f"leaderboard_{attribute}"
        if name in tables:
            w(f"### {attribute}\n\n")
            blocks = [(title.removeprefix(f"{attribute}: "), r) for title, r in tables[name].blocks]
            w(_markdown_blocks(blocks))
            w(f"(`tables/{name}.csv`, `.md`, `.tex`)\n\n")
    if detection is not None:
        w("### Detection metrics\n\n")
        w(_markdown_blocks(blocks_by(detection, ["scope"], render_leaderboard, lambda sc: SCOPE_TITLES[sc])))
    w(_no_interval_text(tidy["metric"]))
    if "postprocess" in t:
        w("Methods named `<method>+<post-processor>` are **post-processed** and **need group labels at test "
          "time**: see *Post-processing* below.\n\n")

    w("## Per train -> test pair\n\n")
    w("Mean ± std over seeds, laid out like the paper's tables (F_FPR, F_OAE, F_DP, F_MEO for the "
      "intersection, gender and race, then AUC); ranks and bold as in the leaderboards, decided by the "
      "pair-level tests (DeLong for AUC, the paired bootstrap otherwise; pairwise, Holm). "
      "Every metric per pair: `tables/pairs.csv`.\n\n")
    w(_markdown_blocks(tables["paper_pairs"].blocks, level=3))

    w("## Significance\n\n")
    w(_significance_text(t["significance"], t["friedman"], s, methods, baseline))
    w("## Power of this design\n\n")
    w(_power_text(tables["power"], s))

    if "postprocess" in t:
        w("## Post-processing: does fairness fitted in-domain carry across domains?\n\n")
        w(_postprocess_text(t["postprocess"], t["postprocess_effect"], s))

    if figures:
        w("## Figures\n\n")
        w(_figures_text(figures, path.parent))

    w("## Metric definitions\n\n")
    used = list(tidy["metric"].unique())
    rows = [(m, METRICS.get(m).kind, "higher" if METRICS.get(m).higher_is_better else "lower",
             "x100" if METRICS.get(m).unit == "%" else "raw", "yes" if METRICS.get(m).bootstrapped else "no",
             " ".join(METRICS.get(m).doc.split())) for m in used]
    w(tabulate(rows, headers=["metric", "kind", "better", "unit", "bootstrap CI", "definition"],
               tablefmt="github") + "\n\n")
    w(f"Fairness metrics are computed per attribute (gender: 2 groups, race: 4, intersection: 8) under the "
      f"'{s.policy}' group policy; a group enters a gap only if it holds at least {s.min_group_size} "
      f"sample(s).\n\n")

    w("## Model selection\n\n")
    w(_selection_text(runs))
    w("## Seeds\n\n")
    w(to_markdown(tables["seeds"].blocks[0][1]) + "\n\n")  # the one rendering of the seeds table
    w("## Groups behind each gap\n\n")
    w("How many groups entered each fairness gap (min-max over the jobs predicting the domain) and the smallest "
      "group among them; a gap between few or tiny groups is weak evidence. Per metric: `tables/groups.csv`.\n\n")
    w(to_markdown(render_generic(_groups_summary(t["groups"]))) + "\n\n")
    if len(t["controls"]):
        w("## Benchmark check\n\n")
        w("The baseline's in-domain intersection F_FPR on a domain with its bias knobs on, against the same "
          "domain with them off: a benchmark whose baseline is not clearly less fair with the knobs on measures "
          "nothing.\n\n")
        w(to_markdown(tables["controls"].blocks[0][1]) + "\n\n")
    w("## Provenance\n\n")
    w("Every finished job: its identity hash (folder suffix), selection, git revision, device and package "
      "versions (`tables/provenance.csv` has them all).\n\n")
    prov = t["provenance"]
    keep = [c for c in ("job", "role", "config_hash", "selection", "best_epoch", "git_revision", "git_dirty",
                        "device", "pkg torch", "pkg numpy", "finished") if c in prov.columns]
    w(to_markdown(render_generic(prov[keep])) + "\n")
    return out.getvalue()


def _environment() -> str:
    """The analysis software's versions (the runs' own are in the provenance table)."""
    import platform
    from importlib import metadata

    versions = []
    for name in ("fairness-generalization-bench", "numpy", "pandas", "scipy"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed as a package)")
    return f"Python {platform.python_version()}, " + ", ".join(versions)


def _markdown_blocks(blocks: list[tuple[str, Rendered]], level: int = 4) -> str:
    if not blocks:
        return "(no data)\n\n"
    return "".join(f"{'#' * level} {title}\n\n{to_markdown(r)}\n\n" for title, r in blocks)


def _significance_text(sig: pd.DataFrame, friedman: pd.DataFrame, s: ReportSettings, methods: list[str],
                       baseline: str | None) -> str:
    out = io.StringIO()
    w = out.write
    if len(methods) < 2:
        w(f"Only one method ({', '.join(methods) or 'none'}) has finished runs: there is nothing to compare. "
          f"With two or more, this section tests every method against the baseline and every pair of methods.\n\n")
        return out.getvalue()
    w(f"Estimates are *method - other* in the column's unit; `favours` names the better one by the metric's "
      f"direction. Tests: **pooled t** (the claims: per training job, i.e. training domain and seed, the "
      f"difference averaged over the scope's test domains; their mean, with a variance of two parts, the test "
      f"sets' from the shared bootstrap replicates and the training runs' from the spread between jobs beyond "
      f"that, against Student's t with Satterthwaite's degrees of freedom `df`; `n` counts the jobs; with one "
      f"job the training variance is unknown and the test covers the test videos only), **DeLong** (AUC, one "
      f"train -> test pair: the seed-averaged AUCs of the two methods "
      f"on the same test samples, Obuchowski's clustered variance over {s.cluster if s.cluster != 'none' else 'frames'}"
      f"), **paired bootstrap** (every other metric on one pair: the same {s.n_boot} resampled test sets for "
      f"both methods), **sign-flip** (exact permutation over the training seeds both methods have, on the scope "
      f"averages; S seeds cannot give p below 2/2^S), **Wilcoxon** (signed-rank over the scope's train -> test "
      f"pairs, seed means; Hodges-Lehmann estimate and its exact interval). A *family* is one comparison set "
      f"(vs baseline or pairwise), one level, one scope and one metric; `p_holm` (Holm, family-wise) and "
      f"`p_bh` (Benjamini-Hochberg, false discovery rate) are corrected within it and `family` gives its "
      f"size. `significant` means p_holm < {s.alpha}. The claims are the pooled rows with Holm's "
      f"correction. `p_min` is the smallest p the row's test can reach with its n: a test whose p_min is not "
      f"below alpha / family can never make a claim, however large the difference. Full table: "
      f"`tables/significance.csv`.\n\n")
    w(_floors_text(sig, s.alpha))
    view = sig[sig["column"].isin(HEADLINE)]
    for comparison in ("vs baseline", "pairwise"):
        if comparison == "vs baseline" and baseline is None:
            continue
        for level in ("pooled", "pairs", "seeds", "pair"):
            part = view[(view["comparison"] == comparison) & (view["level"] == level)]
            if part.empty:
                continue
            if level == "pair":
                part = part[part["column"] == "AUC"] if comparison == "pairwise" else part
            w(f"### {comparison}: {LEVELS[level]}\n\n")
            keep = ["method", "other", "scope", "train", "test", "column", "test_name", "n", "estimate", "ci_low",
                    "ci_high", "p", "p_min", "p_holm", "p_bh", "family_size", "favours", "significant"]
            if level != "pair":
                keep = [c for c in keep if c not in ("train", "test")]
            w(to_markdown(render_significance(part[keep])) + "\n\n")
    w("### Friedman test and critical differences\n\n")
    w("Friedman's test over the train -> test pairs that every method has, with Nemenyi's critical difference "
      "(CD) of mean ranks (rank 1 = best). This is a **description**, not a claim: the mean-rank post-hoc "
      "comparison of two methods depends on which other methods are in the comparison (Benavoli, Corani & "
      "Mangili, JMLR 17, 2016), so adding or removing a method can change whether two others differ. The "
      "claims above use the pairwise pooled tests with Holm's correction instead. CD diagrams are among the "
      "figures.\n\n")
    view = friedman[friedman["column"].isin(HEADLINE)]
    if view.empty:
        w("(not enough methods or pairs)\n\n")
    else:
        w(to_markdown(render_generic(view)) + "\n\n")
    return out.getvalue()


def seed_note(tidy: pd.DataFrame) -> str:
    """The warning report.md opens with when a main (method, training domain) has fewer than three seeds."""
    main = tidy[tidy["role"] == "main"]
    if main.empty:
        return ""
    fewest = int(main.groupby(["method", "train"])["seed"].nunique().min())
    if fewest >= ENOUGH_SEEDS:
        return ""
    which = "one training seed" if fewest == 1 else f"only {fewest} training seeds"
    return (f"Seed variance is unknown: some methods have {which} per training domain, so no number here says "
            f"how much retraining would change it (the claims rest on the test videos and on the spread between "
            f"training domains). Add seeds with `python -m bench run --methods all --seeds 0,1,2` (or "
            f"`--preset study`: seeds 0-2 with full-size test splits), then `python -m bench report`.")


def _floors_text(sig: pd.DataFrame, alpha: float) -> str:
    """Per test and level used here: the n it ran with and the smallest p it could reach."""
    if sig.empty:
        return ""
    floors = (sig.groupby(["level", "test_name", "n"], sort=False)["p_min"].first().reset_index()
              .groupby(["level", "test_name", "p_min"], sort=False)["n"]
              .agg(lambda n: ", ".join(map(str, sorted(set(n))))).reset_index())
    floors["level"] = floors["level"].map(LEVELS)
    floors["can reach alpha"] = floors["p_min"] < alpha
    floors = floors.rename(columns={"test_name": "test", "n": "n (clusters, seeds, pairs or jobs)",
                                    "p_min": "smallest p"})
    table = render_generic(floors[["level", "test", "n (clusters, seeds, pairs or jobs)", "smallest p",
                                   "can reach alpha"]])
    table.frame["smallest p"] = ["none (0)" if v == 0 else format_p(v) for v in floors["smallest p"]]
    return ("**The smallest p-value each test here can reach** (exact tests on few values have a floor; the "
            "pooled t-test and DeLong's have none):\n\n" + to_markdown(table) + "\n\n")


def _power_text(power: Table, s: ReportSettings) -> str:
    frame = power.frame
    if frame.empty:
        return ("No pooled vs-baseline comparisons (no baseline, a single method, or no bootstrap replicates): "
                "nothing to size.\n\n")
    view = frame[frame["column"].isin(HEADLINE)]
    return (f"The smallest true difference from the baseline that the pooled test would detect with "
            f"80% power at alpha = {s.alpha} (`mdd`), and at alpha / m, the bar Holm's correction sets for the "
            f"first claim among m comparisons (`mdd_holm`), in the column's unit: (t(df, 1 - a/2) + "
            f"t(df, 0.8)) x se, with se and df the medians over the methods compared with the baseline. A "
            f"difference smaller than `mdd_holm` is likely to go unclaimed; more seeds, training domains or "
            f"test videos make it smaller. See docs/STATISTICS.md. Every metric: `tables/power.csv`.\n\n"
            + to_markdown(render_generic(view if len(view) else frame)) + "\n\n")


def _figures_text(figures: Sequence[FigureSection], root: Path) -> str:
    out = io.StringIO()
    for figure in figures:
        out.write(f"### {figure.name.replace('_', ' ')}\n\n{figure.caption}\n\n")
        for path in figure.paths:
            rel = path.relative_to(root) if path.is_relative_to(root) else path
            out.write(f"![{path.stem}]({rel.as_posix()})\n\n")
    return out.getvalue()


def _no_interval_text(metrics: pd.Series) -> str:
    """Which of the reported metrics have no CI because they are not bootstrapped (registered so)."""
    names = [m for m in metrics.unique() if not METRICS.get(m).bootstrapped]
    if not names:
        return ""
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    verb = "are" if len(names) > 1 else "is"
    return (f"{listed} {verb} not bootstrapped (registered without a per-replicate formula): no CI in any "
            f"leaderboard and no paired bootstrap test.\n\n")


def _postprocess_text(fits: pd.DataFrame, effect: pd.DataFrame, s: ReportSettings) -> str:
    """The post-processing section: what was fitted (and how many groups fell back) and the change it caused."""
    out = io.StringIO()
    w = out.write
    w(f"`<method>+<name>` is `<method>` with per-intersectional-group decision thresholds (`thr-fpr`: equal "
      f"false-positive rates, `thr-eo`: equalised odds; fairlearn's ThresholdOptimizer, accuracy objective) "
      f"fitted on each job's own training-domain validation predictions and applied unchanged to every test "
      f"domain. It needs each test frame's group label. A group with fewer than {s.postprocess_min_group} reals "
      f"or fakes on the validation split, or absent there, gets the threshold fitted on all validation frames "
      f"pooled. Randomised thresholds are drawn per frame from the report seed ({s.seed}), and AUC ranks the "
      f"group-shifted scores (docs/METRICS.md, *Post-processed methods*).\n\n")
    if fits.empty:
        return out.getvalue() + "(no job could be post-processed: see the notes above)\n\n"
    summary = (fits.groupby(["method", "postprocessor"], sort=False)
               .agg(jobs=("train", "size"), groups_fitted=("groups_fitted", "sum"),
                    groups_fallback=("groups_fallback", "sum")).reset_index())
    w(f"Groups fitted and groups that fell back to the pooled threshold, summed over jobs (per job: "
      f"`tables/postprocess.csv`); {int(fits['groups_fallback'].sum())} group fit(s) fell back in all.\n\n")
    w(to_markdown(render_generic(summary)) + "\n\n")
    w("**The premise as a measurement.** Change caused by post-processing (post-processed minus original; "
      "intersection F_FPR in percentage points, lower is fairer; AUC x100) in-domain (intra) and cross-domain. "
      "Level `scope`: the difference of the two methods' leaderboard values (averaged over pairs, then seeds) "
      "with the paired bootstrap interval (the same test-set resamples for both); then the report's tests: over "
      "seeds (sign-flip), over train -> test pairs (Wilcoxon) and, in-domain, on each pair (paired bootstrap; "
      "DeLong for AUC). Fairness that carries shows as an F_FPR drop across domains as well as within. Every "
      "pair: `tables/postprocess_effect.csv`.\n\n")
    view = effect[(effect["level"] != "pair") | (effect["scope"] == "intra")]
    if view.empty:
        return out.getvalue() + "(no comparison: the report found no pairs to compare)\n\n"
    keep = ["method", "postprocessor", "column", "scope", "level", "train", "test", "test_name", "n", "estimate",
            "ci_low", "ci_high", "p"]
    w(to_markdown(render_significance(view[keep])) + "\n\n")
    return out.getvalue()


def _selection_text(runs: list[RunRecord]) -> str:
    rules: dict[str, int] = {}
    for run in runs:
        training = run.config.get("training", {}) or {}
        rule = training.get("selection") or run.config.get("config", {}).get("train", {}).get("selection") or "unknown"
        rules[rule] = rules.get(rule, 0) + 1
    meaning = {"val_auc": "the epoch with the best AUC on the training domain's validation split",
               "val_loss": "the epoch with the lowest loss on the training domain's validation split",
               "val_dto": "the epoch nearest the utopia point of (AUC, intersection F_FPR) on the training "
                          "domain's validation split, each min-max normalised over the epochs (MEDFAIR's DTO)",
               "val_worst_auc": "the epoch with the best worst-group AUC on the training domain's validation split",
               "last": "the last epoch"}
    lines = [f"- `{rule}` ({n} job(s)): {meaning.get(rule, 'as recorded in config.json')}\n" for rule, n in
             rules.items()]
    return ("Checkpoints were chosen on the training domain only; no test domain was looked at before the "
            "predictions were written.\n\n" + "".join(lines) + "\n")


def _groups_summary(groups: pd.DataFrame) -> pd.DataFrame:
    if groups.empty:
        return groups
    return (groups.groupby(["test", "attribute"], sort=False)
            .agg(n_groups_min=("n_groups_min", "min"), n_groups_max=("n_groups_max", "max"),
                 smallest_group=("min_group_n", "min")).reset_index())


# ============================================================================================ terminal
def terminal_summary(pairs: pd.DataFrame, controls: pd.DataFrame) -> str:
    """Per (method, train domain): in-domain and mean cross-domain AUC and intersection gaps."""
    columns = [m if a == "all" else f"{a}/{m}" for a, m in SUMMARY]
    present = [c for c in columns if c in pairs.columns]
    rows = []
    for (method, role, train), group in pairs.groupby(["method", "role", "train"], sort=False):
        intra = group[group["scope"] == "intra"][present].mean()
        cross = group[group["scope"] == "cross"][present].mean()
        name = method if role == "main" else f"{method} (control)"
        rows.append([name, train, *intra.to_numpy(), *cross.to_numpy()])
    headers = ["method", "train"] + [f"intra {_short(c)}" for c in present] + [f"cross {_short(c)}" for c in present]
    text = "Leaderboard (mean over seeds; cross = mean over the other test domains; gaps in percentage points)\n"
    text += tabulate(rows, headers=headers, floatfmt=".1f", missingval="-")
    if len(controls):
        text += "\n\nBenchmark check: the baseline's in-domain intersection F_FPR with the bias knobs on vs off\n"
        text += tabulate(controls.to_numpy().tolist(), headers=list(controls.columns), floatfmt=".1f")
    return text


def _short(column: str) -> str:
    return column.replace("intersection/", "int/")

