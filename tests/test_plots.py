"""Tests of bench.plots: every figure of the report is written and shows something; the geometry helpers
(Pareto front, ROC points, CD cliques) against hand-worked values."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from bench import plots as P
from bench import report as R
from bench.predictions import ReportSettings

GOLDEN_RESULTS = Path(__file__).parent / "fixtures" / "golden_results"


def results(tmp_path: Path, keep: tuple[str, ...] | None = None) -> Path:
    target = tmp_path / "results"
    shutil.copytree(GOLDEN_RESULTS, target)
    for job in (target / "runs").iterdir():
        if keep is not None and not job.name.startswith(keep):
            shutil.rmtree(job)
    return target


def assert_shows_something(path: Path) -> None:
    """A PNG of real size whose pixels are not all one colour: at least 2% differ from the background."""
    assert path.stat().st_size > 8_000, path
    image = mpimg.imread(path)[..., :3]
    background = np.median(image.reshape(-1, 3), axis=0)
    drawn = np.abs(image - background).sum(axis=-1) > 0.1
    assert drawn.mean() > 0.02, (path, drawn.mean())
    assert image.shape[0] > 200 and image.shape[1] > 300, (path, image.shape)


def test_every_figure_is_written_and_non_empty(tmp_path: Path) -> None:
    out = results(tmp_path, keep=("fair-x", "xception"))
    report = R.build_report(out, settings=ReportSettings(n_boot=30, formats=("csv",)), progress=False, echo=False)
    methods = ("fair-x", "xception")
    expected = {"heatmaps": [f"heatmap_{m}.png" for m in methods], "pareto": ["pareto.png"],
                "group_rates": ["group_rates.png"], "roc": [f"roc_{m}.png" for m in methods],
                "cd": ["cd_cross_AUC.png", "cd_cross_intersection_F_FPR.png"]}
    assert {k: sorted(p.name for p in v) for k, v in report.figures.items()} == expected
    for paths in report.figures.values():
        for path in paths:
            assert_shows_something(path)
            assert f"]({path.relative_to(out).as_posix()})" in report.path.read_text()
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(n for v in expected.values() for n in v)


def test_a_single_method_still_gets_every_figure(tmp_path: Path) -> None:
    out = results(tmp_path, keep=("xception__dA__",))
    report = R.build_report(out, settings=ReportSettings(n_boot=20, formats=("csv",)), progress=False, echo=False)
    assert set(report.figures) == {"heatmaps", "pareto", "group_rates", "roc", "cd"}
    for paths in report.figures.values():
        for path in paths:
            assert_shows_something(path)


def test_pareto_front_by_hand() -> None:
    # (AUC, gap): a (90, 10) and c (80, 5) are on the front; b (85, 12) is beaten by a on both; d (70, 5)
    # ties c on the gap with a lower AUC; e has no gap
    x = [90, 85, 80, 70, 95]
    y = [10, 12, 5, 5, np.nan]
    assert P.pareto_front(x, y).tolist() == [2, 0]


def test_roc_points_by_hand() -> None:
    # scores high to low: 0.8 fake, 0.4 real, 0.35 fake, 0.1 real
    fpr, tpr = P.roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    fpr, tpr = P.roc_points([0, 1, 1], [0.5, 0.5, 0.9])  # a tie: one point for both samples
    assert list(zip(fpr, tpr, strict=True)) == [(0.0, 0.0), (0.0, 0.5), (1.0, 1.0)]


def test_roc_corners_draw_the_curve_through_every_threshold() -> None:
    """Only corners are kept, and every point of scikit-learn's full curve (one per distinct score) lies
    on the polyline through them, in order: the drawn curve is the same."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    score = np.round(rng.normal(y, 1.0), 1)  # ties, and long runs of one class
    fpr, tpr = P.roc_points(y, score)
    full_fpr, full_tpr, _ = roc_curve(y, score, drop_intermediate=False)
    assert len(fpr) < 0.8 * len(full_fpr)
    corners = list(zip(fpr, tpr, strict=True))
    segment = 0
    for point in zip(full_fpr, full_tpr, strict=True):
        while not _on_segment(point, corners[segment], corners[segment + 1]):
            segment += 1  # fails with an IndexError when a point is off the polyline
    assert set(corners) <= set(zip(full_fpr, full_tpr, strict=True))


def _on_segment(p: tuple, a: tuple, b: tuple) -> bool:
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    inside = min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12 and \
        min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12
    return abs(cross) < 1e-12 and inside


def test_cd_cliques_by_hand() -> None:
    # mean ranks 1.0, 1.5, 2.6, 3.0 with CD 1.2: {1.0, 1.5} and {1.5, 2.6} and {2.6, 3.0} are within CD
    assert P._cliques(np.array([1.0, 1.5, 2.6, 3.0]), 1.2) == [(0, 1), (1, 2), (2, 3)]
    assert P._cliques(np.array([1.0, 1.5, 2.0]), 1.2) == [(0, 2)]
    assert P._cliques(np.array([1.0, 3.0]), 1.2) == []


def test_cd_diagram_draws_ranks(tmp_path: Path) -> None:
    path = P.cd_diagram(pd.Series({"a": 1.2, "b": 2.1, "c": 2.7}), 1.0, title="demo", path=tmp_path / "cd.png")
    assert_shows_something(path)


@pytest.mark.parametrize("kind", ["heatmaps", "group_rate_bars"])
def test_empty_inputs_draw_nothing(kind: str, tmp_path: Path) -> None:
    empty_pairs = pd.DataFrame(columns=["method", "role", "train", "test", "AUC"])
    empty_rates = pd.DataFrame(columns=["method", "scope", "group", "FPR", "TPR"])
    call = {"heatmaps": lambda: P.heatmaps(empty_pairs, tmp_path),
            "group_rate_bars": lambda: P.group_rate_bars(empty_rates, tmp_path)}[kind]
    assert call() == []


# ------------------------------------------------------------------ figures drawn fast must lose nothing
def pair_rows(method: str, values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """Pair-table rows of one method: a row per seed, AUC and the fairness gap (the gap = 100 - AUC / 2)."""
    return pd.DataFrame([{"method": method, "role": "main", "train": train, "test": test, "AUC": v,
                          P.FAIRNESS: 100 - v / 2} for (train, test), vs in values.items() for v in vs])


# method a has every pair, two seeds on one; b lacks dB -> dC, and its other values differ from a's. a's
# dB -> dC is its highest AUC and lowest gap, light cells annotated in a dark colour: left over in b's
# figure, that annotation would show on the blank cell
PAIRS_A = {("dA", "dA"): [90.0, 81.0], ("dA", "dB"): [70.25], ("dA", "dC"): [55.0], ("dB", "dA"): [60.0],
           ("dB", "dB"): [99.5], ("dB", "dC"): [99.9]}
PAIRS_B = {("dA", "dA"): [52.0], ("dA", "dB"): [61.0], ("dA", "dC"): [73.0], ("dB", "dA"): [88.0],
           ("dB", "dB"): [77.7]}


def test_heatmap_cells_show_the_seed_means_of_the_table() -> None:
    """Every annotated cell reads the mean over the seeds of its pair, worked out here; a pair without a
    value shows nothing, not the value the previous method left in the shared figure."""
    rows = pd.concat([pair_rows("a", PAIRS_A), pair_rows("b", PAIRS_B)])
    sheet = P._heatmap_sheet(["dA", "dB"], ["dA", "dB", "dC"], P.HEATMAP_PANELS)
    for method, values in (("a", PAIRS_A), ("b", PAIRS_B)):
        P._heatmap_fill(sheet, method, rows[rows["method"] == method])
        for panel, (columns, to_value) in enumerate(zip(sheet.parts["texts"], (lambda v: v, lambda v: 100 - v / 2),
                                                        strict=True)):
            shown = {}  # a column's texts hold a line per train domain, blank where the other text shows it
            for test, texts in zip(["dA", "dB", "dC"], columns, strict=True):
                lines = [t.get_text().split("\n") if t.get_visible() else ["", ""] for t in texts]
                for train, dark, light in zip(["dA", "dB"], *lines, strict=True):
                    assert not (dark and light), (method, panel, train, test)
                    if dark or light:
                        shown[(train, test)] = dark or light
            expected = {pair: f"{sum(map(to_value, vs)) / len(vs):.1f}" for pair, vs in values.items()}
            assert shown == expected, (method, panel)
    assert expected[("dA", "dA")] == "74.0"  # the fairness gap of b's one seed: 100 - 52 / 2


def test_a_method_drawn_after_another_looks_as_if_drawn_alone(tmp_path: Path) -> None:
    """The heatmaps and ROC grids of several methods share one figure each; the file of a method drawn
    after another is pixel for pixel the one drawn with that method alone."""
    both = pd.concat([pair_rows("a", PAIRS_A), pair_rows("b", PAIRS_B)])
    rng = np.random.default_rng(3)

    def prediction(method: str, train: str, test: str, shift: float) -> SimpleNamespace:
        n = 120
        label = rng.integers(0, 2, n)
        frame = pd.DataFrame({"label": label, "score": np.round(rng.normal(label * shift, 1.0), 1),
                              "intersection": rng.integers(0, 3, n)})
        return SimpleNamespace(run=SimpleNamespace(role="main", method=method, seed=0, train=train), domain=test,
                               frame=frame)

    files = [prediction(m, train, test, shift) for m, shift in (("a", 2.0), ("b", 0.5))
             for train in ("dA", "dB") for test in ("dA", "dB")]
    for kind, draw, alone in (("heatmap", P.heatmaps, (both, both[both["method"] == "b"])),
                              ("roc", P.group_roc, (files, files[4:]))):
        together, single = tmp_path / f"{kind}-both", tmp_path / f"{kind}-b"
        together.mkdir()
        single.mkdir()
        assert [p.name for p in draw(alone[0], together)] == [f"{kind}_a.png", f"{kind}_b.png"]
        draw(alone[1], single)
        a, b, b_alone = (mpimg.imread(path) for path in (together / f"{kind}_a.png", together / f"{kind}_b.png",
                                                          single / f"{kind}_b.png"))
        assert b.shape == b_alone.shape and np.array_equal(b, b_alone), kind
        assert not np.array_equal(a, b), kind


def test_group_curves_auc_is_the_group_auc() -> None:
    """The AUC in the ROC legends, from the area under the curve's corners, against the rank-based group
    AUC of bench.metrics and scikit-learn's; groups lacking a class are left out."""
    from sklearn.metrics import roc_auc_score

    from bench.metrics import group_auc

    rng = np.random.default_rng(7)
    n = 900
    groups = rng.integers(0, 8, n)
    y = rng.integers(0, 2, n)
    y[groups == 5] = 1  # no reals: no curve
    score = np.round(1 / (1 + np.exp(-rng.normal(y * (groups / 4), 1.0))), 2)  # P(fake), many ties
    frame = pd.DataFrame({"label": y, "score": score, "intersection": groups})
    curves = P._group_curves(frame)
    reference = group_auc(y, score, groups)
    assert [g for g, *_ in curves] == [0, 1, 2, 3, 4, 6, 7]
    for g, fpr, tpr, auc in curves:
        rows = groups == g
        assert auc == pytest.approx(reference[g], abs=1e-12)
        assert auc == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)
        expected_fpr, expected_tpr = P.roc_points(y[rows], score[rows])
        assert np.array_equal(fpr, expected_fpr) and np.array_equal(tpr, expected_tpr)


def test_the_figure_process_draws_and_a_failure_loses_no_figure(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`start_early_figures` draws what its inputs allow at once, `Early.send` what more inputs complete,
    `make_figures` the rest, all in forked processes (the second kind in a second one, forked by the first);
    when a process fails, or the second cannot be forked, the report's process draws that process's kinds
    instead."""
    from bench.registry import Registry

    monkeypatch.setattr(P, "FIGURES", Registry("figure"))
    report_process = os.getpid()

    def kind(name: str, needs: tuple[str, ...], *, fails_in_child: bool = False) -> None:
        @P.figure(name, needs=needs, caption=name)
        def draw(*args: object) -> list[Path]:
            if fails_in_child and os.getpid() != report_process:
                raise RuntimeError("a figure failing in the figure process")
            path = args[-1] / f"{name}.txt"
            path.write_text(f"{os.getpid()} {os.getppid()} {args[:-1]}")
            return [path]

    real_fork = os.fork

    def fork_only_here() -> int:  # the figure process cannot fork the second one
        if os.getpid() != report_process:
            raise OSError("no fork in the figure process")
        return real_fork()

    kind("first", ("files",))
    kind("second", ("pairs",))
    kind("last", ("board", "files"))
    for case in ("works", "no second process", "a figure fails"):
        if case == "a figure fails":
            kind("fragile", ("board",), fails_in_child=True)
        if case == "no second process":
            monkeypatch.setattr(os, "fork", fork_only_here)
        folder = tmp_path / case
        early = P.start_early_figures({"files": 1}, folder=folder)
        assert not folder.exists()  # made when the first figure is drawn
        early.send({"pairs": 2})
        drawn = P.make_figures({"files": 1, "pairs": 2, "board": 3}, folder=folder, early=early)
        monkeypatch.setattr(os, "fork", real_fork)
        names = ["first", "second", "last"] + (["fragile"] if case == "a figure fails" else [])
        assert drawn == {name: [folder / f"{name}.txt"] for name in names}
        pid, parent = ({name: int(drawn[name][0].read_text().split()[k]) for name in names} for k in range(2))
        # each kind goes to the process given fewer kinds so far, the first on a tie
        first_process, second_process = ["first", "last"], [n for n in names if n in ("second", "fragile")]
        assert {pid[n] for n in first_process} == {pid["first"]} != {report_process}
        assert {pid[n] for n in second_process} == {pid["second"]}
        if case == "works":
            assert len({report_process, pid["first"], pid["second"]}) == 3, pid
            assert parent["first"] == report_process and parent["second"] == pid["first"]
        else:  # the second process is gone or failed: the report's process drew its kinds
            assert pid["second"] == report_process
        assert drawn["last"][0].read_text().endswith("(3, 1)")


def test_the_prediction_files_reach_the_figure_process_without_their_string_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files sent after the start (the report reads them after starting the figure processes) arrive in the
    process whose kind needs them, their frames with every numeric column and none of the string ids."""
    from bench.predictions import PredictionFile
    from bench.registry import Registry
    from bench.store import RunRecord

    monkeypatch.setattr(P, "FIGURES", Registry("figure"))

    @P.figure("columns", needs=("files",), caption="columns")
    def draw(files: list, folder: Path) -> list[Path]:
        path = folder / "columns.txt"
        path.write_text(f"{os.getpid()} " + " ".join(f"{f.domain}:{','.join(f.frame.columns)}:{f.frame['score'].sum()}"
                                                      for f in files))
        return [path]

    frame = pd.DataFrame({"sample": ["a", "b"], "video": ["v", "v"], "label": [0, 1], "score": [0.25, 0.5],
                          "intersection": [3, 4], "correct": [True, False]})
    run = RunRecord(job_id="job", path=tmp_path / "job", config={"job": {"method": "m"}})
    files = [PredictionFile(run=run, domain=d, frame=frame) for d in ("dA", "dB")]
    early = P.start_early_figures({}, folder=tmp_path / "figures")
    early.send({"files": files})
    drawn = P.make_figures({"files": files}, folder=tmp_path / "figures", early=early)
    pid, *received = drawn["columns"][0].read_text().split()
    assert int(pid) != os.getpid()
    assert received == ["dA:label,score,intersection,correct:0.75", "dB:label,score,intersection,correct:0.75"]
    assert list(files[0].frame.columns) == ["sample", "video", "label", "score", "intersection", "correct"]


# ------------------------------------------------------------------ every label readable
def crowded_board(n: int = 13) -> pd.DataFrame:
    """A leaderboard whose methods crowd one corner of the pareto panels (the look of a real report: a
    dozen methods within a few AUC points and gap points of each other), and one far away."""
    rng = np.random.default_rng(11)
    rows = []
    for scope, spread in (("cross", 3.0), ("intra", 1.5)):
        for k in range(n):
            far = k == 0
            auc, gap = (50.0, 30.0) if far else (80 + rng.uniform(-spread, spread), 35 + rng.uniform(-spread, spread))
            for column, mean in (("AUC", auc), (P.FAIRNESS, gap)):
                rows.append({"method": f"method-{k:02d}", "scope": scope, "column": column, "mean": mean,
                             "ci_low": mean - 2, "ci_high": mean + 2, "std": 1.0})
    return pd.DataFrame(rows)


def boxes_overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0


def test_pareto_labels_overlap_no_label_no_point_and_the_legend_no_panel() -> None:
    """Drawn, every method's label is inside its panel, clear of every other label and of every point's
    centre, and the legend of method colours covers no panel."""
    board = crowded_board()
    fig = P._pareto_figure(board)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = fig.axes
    assert len(panels) == 2
    methods = sorted(board["method"].unique())
    for ax in panels:
        labels = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
        assert sorted(labels) == methods
        points = [p for line in ax.lines if line.get_marker() == "o" for p in line.get_xydata()]
        centres = ax.transData.transform(np.array(points))
        assert len(centres) == len(methods)
        boxes = list(labels.items())
        for i, (name, box) in enumerate(boxes):
            assert ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
            for other, other_box in boxes[i + 1:]:
                assert not boxes_overlap(box, other_box), (name, other)
            for x, y in centres:
                assert not (box.x0 < x < box.x1 and box.y0 < y < box.y1), name
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()][:len(methods)] == methods
    for ax in panels:
        assert not boxes_overlap(legend.get_window_extent(renderer), ax.bbox)


def test_group_rates_legend_covers_no_bar() -> None:
    """The legend of the group-rate bars lies beside the four panels, not over one of them."""
    methods = [f"method-{k:02d}" for k in range(13)]
    rows = [{"method": m, "scope": scope, "group": g, **{f"{rate}{part}": 50.0 + delta
                                                         for rate in ("FPR", "TPR")
                                                         for part, delta in (("", 0), (" ci_low", -5),
                                                                             (" ci_high", 5))}}
            for m in methods for scope in ("cross", "intra") for g in range(8)]
    fig = P._group_rates_figure(pd.DataFrame(rows))
    fig.canvas.draw()
    (legend,) = fig.legends
    box = legend.get_window_extent(fig.canvas.get_renderer())
    assert [t.get_text() for t in legend.get_texts()] == methods
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert not boxes_overlap(box, ax.bbox)
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


def test_each_roc_legend_value_stands_on_the_baseline_of_its_group_name(tmp_path: Path) -> None:
    """The AUC values of a legend are one text of a line per group: each line's ink ends on the same pixel
    row as its group name's (names and digits have no descenders), for a legend of three rows and one of
    eight."""
    rng = np.random.default_rng(5)
    for groups in ([0, 3, 6], list(range(8))):
        sheet = P._roc_sheet(["dA"], ["dB"], (["dA"], ["dB"], {("dA", "dB"): groups}))
        panel = sheet.parts[("dA", "dB")]
        panel.show([(g, np.sort(rng.random(5)), np.sort(rng.random(5)), rng.uniform(0.5, 0.99)) for g in groups])
        image = mpimg.imread(sheet.write(tmp_path / f"roc_{len(groups)}.png"))[..., :3]
        box = panel.legend_box
        rows = slice(image.shape[0] - int(box.y1), image.shape[0] - int(box.y0))
        names = image[rows, int(box.x0 + 0.35 * box.width):int(box.x0 + 0.6 * box.width)]
        values = image[rows, int(box.x1 - 0.15 * box.width):int(box.x1)]

        def ink_bottoms(column: np.ndarray) -> list[int]:
            ink = (column.mean(axis=-1) < 0.5).any(axis=1)  # dark text; the box edge is light grey
            return [i for i in range(len(ink) - 1) if ink[i] and not ink[i + 1]]

        assert len(ink_bottoms(names)) == len(groups)
        assert ink_bottoms(values) == ink_bottoms(names), groups
