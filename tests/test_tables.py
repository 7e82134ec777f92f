"""The report's tables computed for all cells at once give what pandas gives one cell at a time: the std over
seeds (pandas' ``Series.std``, to the last digit), the wide leaderboard (pandas' alignment of one Series per
column, rows without a column included), and the ranks when means are missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import tables as T
from bench.tidy import Tidy

METHODS = ("A", "B", "C")
DOMAINS = ("d1", "d2")


def many_seeds(rng: np.random.Generator) -> Tidy:
    """Main runs with 1 to 10 seeds per method and pair (sums of 8 or more values take numpy's pairwise
    path), values of very different sizes, and NaN values."""
    rows = []
    for m, method in enumerate(METHODS):
        for train in DOMAINS:
            for test in DOMAINS:
                n_seeds = 1 + (m * 4 + len(rows)) % 10
                for seed in range(n_seeds):
                    for column in ("AUC", "intersection/F_FPR"):
                        value = rng.normal(50.0, 20.0) * 10.0 ** rng.integers(-3, 12)
                        rows.append({"method": method, "role": "main", "train": train, "test": test, "seed": seed,
                                     "scope": "intra" if train == test else "cross",
                                     "attribute": "all" if column == "AUC" else "intersection",
                                     "metric": column.rsplit("/")[-1], "column": column,
                                     "value": np.nan if rng.random() < 0.1 else value, "file": len(rows)})
    return Tidy(pd.DataFrame(rows))


def pandas_std(frame: pd.DataFrame, keys: list[str], value: str) -> pd.Series:
    return frame.groupby(keys, sort=False)[value].agg(lambda v: v.std(ddof=1))


def same_bits(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64)
    return bool(np.array_equal(np.isnan(x), np.isnan(y)) and (x[~np.isnan(x)].view(np.int64)
                                                             == y[~np.isnan(y)].view(np.int64)).all())


def test_std_over_seeds_is_pandas_std_to_the_last_digit() -> None:
    tidy = many_seeds(np.random.default_rng(3))
    board = T.leaderboard(tidy).set_index(["method", "scope", "column"])
    keys = ["method", "scope", "attribute", "metric", "column"]
    expected = pandas_std(tidy.per_seed, keys, "pair_mean").droplevel(["attribute", "metric"])
    assert board["std"].notna().any() and same_bits(board["std"], expected.reindex(board.index))
    paper = T.paper_table(tidy).set_index(["train", "test", "method"])
    by_pair = pandas_std(tidy.main, ["train", "test", "method", "column"], "value")
    for column in ("AUC", "intersection/F_FPR"):
        reference = by_pair.xs(column, level="column").reindex(paper.index)
        assert same_bits(paper[f"{column} std"], reference)


def board_with_holes() -> pd.DataFrame:
    """A long leaderboard where B has no EER in the cross scope and C has no AUC in the intra scope."""
    rows = []
    for scope in ("intra", "cross"):
        for k, method in enumerate(METHODS):
            for column, metric in (("AUC", "AUC"), ("EER", "EER")):
                if (method, scope, column) in {("B", "cross", "EER"), ("C", "intra", "AUC")}:
                    continue
                rows.append({"method": method, "scope": scope, "attribute": "all", "metric": metric,
                             "column": column, "mean": 80.0 - 3 * k if metric == "AUC" else 10.0 + k, "std": 1.0 + k,
                             "n_seeds": 3, "n_pairs": 2 + k, "ci_low": 70.0 if column == "AUC" else np.nan,
                             "ci_high": 90.0 if column == "AUC" else np.nan, "rank": 1 + k, "best": k == 0})
    return pd.DataFrame(rows)


def aligned(board: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The wide leaderboard as pandas aligns one Series per column on (scope, method)."""
    index = ["scope", "method"]
    counts = board.groupby(index, sort=False)[["n_seeds", "n_pairs"]].max()
    data = {"n_seeds": counts["n_seeds"], "n_pairs": counts["n_pairs"]}
    for column in columns:
        rows = board[board["column"] == column].set_index(index)
        data[column], data[f"{column} std"] = rows["mean"], rows["std"]
        if rows["ci_low"].notna().any():
            data[f"{column} ci_low"], data[f"{column} ci_high"] = rows["ci_low"], rows["ci_high"]
        data[f"{column} rank"], data[f"{column} best"] = rows["rank"], rows["best"].astype(bool)
    return pd.DataFrame(data).reset_index()


def test_wide_leaderboard_is_pandas_alignment_rows_without_a_column_included() -> None:
    board = board_with_holes()
    for columns in (["AUC", "EER"], ["EER", "AUC"]):
        wide = T.wide_leaderboard(board, columns)
        expected = aligned(board, columns).set_index(["scope", "method"]).loc[
            list(zip(wide["scope"], wide["method"], strict=True))].reset_index()
        pd.testing.assert_frame_equal(wide, expected, check_index_type=False)
        assert wide["EER rank"].dtype == np.float64 and wide["EER best"].dtype == object  # the holes
    cross = T.wide_leaderboard(board, ["AUC", "EER"])
    assert cross["scope"].tolist()[:3] == ["cross"] * 3 and cross["method"].tolist()[:3] == ["A", "B", "C"]
    assert len(T.wide_leaderboard(board, ["EER"])) == 5  # B has no cross-domain EER: no row


def test_a_missing_mean_is_never_best_and_a_cell_of_missing_means_has_no_leader() -> None:
    cells = ["x", "x", "x", "y", "y"]
    rank, best = T.ranks_by_tests(cells, ["B", "A", "C", "A", "B"], [np.nan, 1.0, 3.0, np.nan, np.nan],
                                  {"x": {"A": {"C"}}}, higher_is_better=[True] * 5)
    assert rank == [1, 2, 1, 1, 1]
    assert best == [False, False, True, False, False]
    lower = T.ranks_by_tests(["x", "x"], ["A", "B"], [1.0, 3.0], {"x": {"B": {"A"}}}, higher_is_better=[False] * 2)
    assert lower == ([1, 2], [True, False])
