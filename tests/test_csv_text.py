"""`bench.csv_text` writes the characters pandas' ``to_csv(index=False)`` writes: every table the report
and the runner save goes through it, and the golden files and byte-for-byte comparisons of reports rely on
it. Each frame here is compared with pandas' own output; the plain frames must not be handed to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.csv_text import csv_text
from bench.store import atomic_write_csv

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-20, -1e-20, 1e20, 1e16, 9999999999999998.0, 1e15, 1e-4, 1e-5,
           0.1, 1 / 3, 100.0, -7.0, 123456789012345678.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
           0.30000000000000004, 2.0**53, 2.0**53 + 2, 12.5]


def plain_frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Every column kind the fast path writes: float64 (special values, random bit patterns, repeats),
    int64, bool, strings with missing values, nullable integers."""
    bits = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=rows, dtype=np.int64)
    special = np.resize(np.array(SPECIAL), rows)
    return pd.DataFrame({
        "name": pd.array([f"m{i % 7}" if i % 5 else None for i in range(rows)], dtype="str"),
        "special": special,
        "bits": bits.view(np.float64),  # any double, NaN payloads and subnormals included
        "repeated": np.resize(np.array([0.25, -0.0, 0.0, np.nan, 3.0]), rows),
        "count": np.arange(rows, dtype=np.int64) - 3,
        "flag": np.arange(rows) % 3 == 0,
        "maybe": pd.array([i if i % 4 else None for i in range(rows)], dtype="Int64"),
        "text": np.array([["", "a b", "ü ±", "NA", "nan", " x "][i % 6] for i in range(rows)], dtype=object),
        "holes": np.array([[None, "y", np.nan, pd.NA, "z"][i % 5] for i in range(rows)], dtype=object),
    })


def test_plain_columns_are_written_as_pandas_writes_them_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    frames = [plain_frame(rng, rows) for rows in (1, 2, 50, 3000)]
    frames.append(pd.DataFrame({"a": [1.5, np.nan], "b": ["x", "y"]}))  # two columns, nothing quoted
    expected = [f.to_csv(index=False) for f in frames]

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("a plain frame was handed to pandas")

    monkeypatch.setattr(pd.DataFrame, "to_csv", refuse)
    for frame, text in zip(frames, expected, strict=True):
        assert csv_text(frame) == text


def test_fields_the_csv_dialect_quotes_are_quoted_as_pandas_quotes_them() -> None:
    frame = pd.DataFrame({
        "a, b": ["plain", "with, comma", 'with "quotes"', "two\nlines", "carriage\rreturn", ""],
        'c"d': [1.0, 2.0, np.nan, -0.0, 1e-20, 1e20],
    })
    assert csv_text(frame) == frame.to_csv(index=False)
    one = pd.DataFrame({"only": ["", "x", None]})  # a row of one empty field is written as ""
    assert csv_text(one) == one.to_csv(index=False)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"f32": np.array([0.1, 1e-20], dtype=np.float32), "s": ["a", "b"]}),
    pd.DataFrame({"u": np.array([2**63], dtype=np.uint64), "i": np.array([-1], dtype=np.int64)}),
    pd.DataFrame({"mixed": np.array([1.5, "x", np.float64(0.1), None], dtype=object)}),
    pd.DataFrame({"cat": pd.Categorical(["a", "b", "a"]), "v": [1.0, 2.0, 3.0]}),
    pd.DataFrame({"when": pd.to_datetime(["2026-01-01", "2026-12-01"])}),
    pd.DataFrame({"b": pd.array([True, None], dtype="boolean")}),
    pd.DataFrame({"empty": pd.Series([], dtype=np.float64), "s": pd.Series([], dtype=str)}),
    pd.DataFrame(index=range(3)),
    pd.DataFrame([[1.0, 2.0]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
    pd.DataFrame([[1.0, 2.0]], columns=[0, 1]),
], ids=["float32", "uint64+int64", "mixed-objects", "categorical", "datetime", "nullable-bool", "no-rows",
        "no-columns", "multiindex-columns", "integer-names"])
def test_any_other_frame_is_left_to_pandas(frame: pd.DataFrame) -> None:
    assert csv_text(frame) == frame.to_csv(index=False)


def test_atomic_write_csv_writes_the_same_bytes_as_pandas(tmp_path) -> None:
    frame = plain_frame(np.random.default_rng(1), 40)
    atomic_write_csv(tmp_path / "t.csv", frame)
    assert (tmp_path / "t.csv").read_bytes() == frame.to_csv(index=False).encode()
