"""Tests of bench.plots: every figure of the report is written and shows something; the geometry helpers
(Pareto front, ROC points, CD cliques) against hand-worked values."""

from __future__ import annotations

import shutil
from pathlib import Path

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
