"""The report's tables computed for all cells at once give what pandas gives one cell at a time: the std over
seeds (pandas' ``Series.std``, to the last digit), the wide leaderboard (pandas' alignment of one Series per
column, rows without a column included), and the ranks when means are missing; and they read as written by
hand (Markdown, LaTeX, leaderboard cells), holes and edge cases included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import tables as T
from bench.render import Rendered, render_leaderboard, render_paper, to_latex, to_markdown
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


def test_markdown_and_latex_escape_bold_and_pad_cells_as_written_by_hand() -> None:
    table = Rendered(pd.DataFrame({"a|b": ["x", "p|q"], "c": ["1", "22_2%"]}), pd.DataFrame({"c": [True, False]}))
    assert to_markdown(table).splitlines() == ["| a\\|b | c     |", "|------|-------|", "| x    | **1** |",
                                               "| p\\|q | 22_2% |"]
    assert to_latex(table).splitlines() == [r"\begin{tabular}{ll}", r"\toprule", r"a|b & c \\", r"\midrule",
                                            r"x & \textbf{1} \\", r"p|q & 22\_2\% \\", r"\bottomrule",
                                            r"\end{tabular}"]
    empty = Rendered(pd.DataFrame({"long name": pd.Series([], dtype=object), "b": pd.Series([], dtype=object)}))
    assert to_markdown(empty).splitlines() == ["| long name | b   |", "|-----------|-----|"]
    no_columns = Rendered(pd.DataFrame(index=range(2)))
    assert to_markdown(no_columns).splitlines() == ["|  |", "||", "|  |", "|  |"]
    assert to_latex(no_columns).splitlines()[4:6] == [r" \\", r" \\"]


def test_leaderboard_and_paper_cells_read_mean_std_interval_and_rank() -> None:
    wide = pd.DataFrame({"scope": ["cross", "cross"], "method": ["A", "B"], "n_seeds": [3, 1], "n_pairs": [2, 2],
                         "AUC": [91.234, np.nan], "AUC std": [1.0, np.nan], "AUC ci_low": [88.0, np.nan],
                         "AUC ci_high": [np.nan, np.nan], "AUC rank": [1.0, np.nan], "AUC best": [True, np.nan],
                         "F_FPR": [0.5, 1.25], "F_FPR std": [np.nan, 0.125], "F_FPR rank": [2, 1],
                         "F_FPR best": [False, True]})
    board = render_leaderboard(wide)
    assert board.frame["AUC"].tolist() == ["91.23 ± 1.00 [88.00, n/a] (1)", "n/a (n/a)"]
    assert board.frame["F_FPR"].tolist() == ["0.50 (2)", "1.25 ± 0.12 (1)"]
    assert board.frame["n_seeds"].tolist() == ["3", "1"] and board.bold["F_FPR"].tolist() == [False, True]
    paper = render_paper(wide.drop(columns=["scope"]).assign(train="d", test="e")).frame
    assert paper["AUC"].tolist() == ["91.23 ± 1.00", "n/a"]


def test_friedman_table_takes_each_cells_methods_and_the_pairs_they_all_have() -> None:
    """C has no F_FPR at all and B lacks one pair's AUC: each (scope, column) is tested over its own methods
    and the pairs every one of them has, as a per-cell table of pairs by method would give."""
    from bench import stats
    from bench.significance import friedman_table

    tidy = many_seeds(np.random.default_rng(5))
    frame = tidy.frame
    drop = ((frame["method"] == "C") & (frame["column"] != "AUC")) | (
        (frame["method"] == "B") & (frame["column"] == "AUC") & (frame["train"] == "d1") & (frame["test"] == "d2"))
    tidy = Tidy(frame[~drop].reset_index(drop=True))
    table = friedman_table(tidy, alpha=0.05)
    for (scope, column), cell in tidy.pair_means.groupby(level=["scope", "column"]):
        matrix = cell.droplevel(["scope", "column"]).unstack("method").dropna()
        expected = stats.friedman_test(matrix.to_numpy(), higher_is_better=column == "AUC", alpha=0.05)
        rows = table[(table["scope"] == scope) & (table["column"] == column)].set_index("method")
        assert sorted(rows.index) == list(matrix.columns) and (rows["n_blocks"] == len(matrix)).all()
        assert rows["mean_rank"].to_dict() == dict(zip(matrix.columns, expected.mean_ranks, strict=True))
        assert (rows["cd"] == expected.cd).all()
    assert set(table.loc[table["column"] != "AUC", "method"]) == {"A", "B"}


def test_group_rate_points_are_group_tables_rates() -> None:
    """The per-file group FPR and TPR behind the group-rate table, counted for all files at once, are
    `group_table`'s to the last digit: unknown group codes and codes beyond the table left out, a group
    without reals (FPR NaN) or fakes (TPR NaN), absent groups NaN, scores equal to the threshold fake."""
    from bench.groups import NUM_INTERSECTIONS
    from bench.metrics import group_table
    from bench.predictions import PredictionFile

    rng = np.random.default_rng(5)
    files, expected = [], []
    for index in range(4):
        n = int(rng.integers(50, 400))
        group = rng.integers(-1, NUM_INTERSECTIONS + 2, size=n)
        label = rng.integers(0, 2, size=n)
        label[group == 1] = 1  # no reals in group 1, no fakes in group 2, group 3 absent
        label[group == 2] = 0
        group[group == 3] = 0
        score = rng.choice([0.5, 0.25, 0.75, 0.9], size=n) if index % 2 else rng.random(n)
        frame = pd.DataFrame({"label": label, "score": score, "intersection": group})
        files.append(PredictionFile(run=None, domain="d", frame=frame, index=index))  # type: ignore[arg-type]
        table = group_table(label, score, group, threshold=0.5)
        rates = np.full((2, NUM_INTERSECTIONS), np.nan)
        codes = table.index.to_numpy()
        keep = codes < NUM_INTERSECTIONS
        rates[0, codes[keep]], rates[1, codes[keep]] = table["FPR"].to_numpy()[keep], table["TPR"].to_numpy()[keep]
        expected.append(rates)
    got = T._group_rate_points(files, threshold=0.5)
    assert np.isnan(got[:, 0, 1]).all() and np.isnan(got[:, 1, 2]).all() and np.isnan(got[:, :, 3]).all()
    assert np.array_equal(got, np.stack(expected), equal_nan=True)
