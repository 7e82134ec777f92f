"""A DataFrame as CSV text, the same characters as ``frame.to_csv(index=False)``, in less time.

The report writes tables of tens of thousands of rows, and most of pandas' time there goes to formatting
floats (numpy's Dragon4 per value) and to building its chunks. For the plain column types the tables hold
(float64, int64, bools, strings), each column is turned into its strings once, as pandas would write
them: a float64 by Python's shortest round-trip ``repr`` (the text numpy's ``astype(str)`` gives, which is
what pandas writes), NaN, None and NA as the empty string. The rows are then written by the csv module
with pandas' dialect (minimal quoting, ``"`` doubled, ``\\n`` line ends). Any other column type, or any
other shape of frame (MultiIndex columns, non-string names, no rows or no columns), is left to pandas
itself, so the text is always pandas' own.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

__all__ = ["csv_text"]


def csv_text(frame: pd.DataFrame) -> str:
    """``frame.to_csv(index=False)``, character for character."""
    converted = _column_strings(frame)
    if converted is None:
        return frame.to_csv(index=False)
    columns, quoted = converted
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # pandas' dialect: excel, minimal quoting, "\n"
    writer.writerow(frame.columns)
    if len(columns) > 1 and not quoted:
        out.write("\n".join(map(",".join, zip(*columns, strict=True))) + "\n")  # what the writer would write
    else:
        writer.writerows(zip(*columns, strict=True))
    return out.getvalue()


def _quoted(strings: list[str]) -> bool:
    """Whether the csv module would quote any of ``strings`` (in a row of two or more fields): those holding
    the delimiter, the quote character or a line break."""
    joined = "".join(strings)
    return any(c in joined for c in ',"\r\n')


def _column_strings(frame: pd.DataFrame) -> tuple[list[list[str]], bool] | None:
    """Every column as the strings pandas writes for it, and whether the csv module would quote any of them;
    None where the frame is not one this module writes (pandas then writes it). Columns of one kind are
    converted together (one array each). Only text can need quoting (numbers and booleans never hold a
    comma, a quote or a line break), and it is checked on each column's distinct values."""
    if (frame.empty or isinstance(frame.columns, pd.MultiIndex)
            or not all(isinstance(c, str) for c in frame.columns)):
        return None
    kinds = [_kind(dtype) for dtype in frame.dtypes]
    if None in kinds:
        return None
    out: list[list[str]] = [[] for _ in kinds]
    quoted = False
    for kind in dict.fromkeys(kinds):
        positions = [j for j, k in enumerate(kinds) if k == kind]
        if kind == "text":
            texts = _texts(frame.iloc[:, positions])
            if texts is None:
                return None
            strings, quoted = texts
        else:
            strings = _FORMATS[kind](frame.iloc[:, positions])
        for j, column in zip(positions, strings, strict=True):
            out[j] = column
    return out, quoted


def _kind(dtype: object) -> str | None:
    if dtype == np.float64:
        return "float"
    if dtype == np.bool_:
        return "bool"
    if dtype == np.int64:  # one kind per dtype: integers of mixed widths and signs would convert to float
        return "int"
    if isinstance(dtype, pd.Int64Dtype | pd.Int32Dtype):
        return "nullable int"
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        return "text"
    return None


def _floats(block: pd.DataFrame) -> list[list[str]]:
    """Python's repr of each float (numpy's astype(str) writes the same digits), NaN as "": each distinct
    value (bit pattern, so -0.0 is not 0.0) formatted once."""
    values = np.ascontiguousarray(block.to_numpy(dtype=np.float64).T)  # a column per row
    bits, at = np.unique(values.view(np.int64).ravel(), return_inverse=True)
    distinct = bits.view(np.float64)
    # a list's repr is each float's repr, joined by ", " (which no float's repr holds): one call, not one each
    text = np.array(repr(distinct.tolist())[1:-1].split(", "), dtype=object)
    text[np.isnan(distinct)] = ""
    return text[at.reshape(values.shape)].tolist()


def _ints(block: pd.DataFrame) -> list[list[str]]:
    return [list(map(str, column)) for column in block.to_numpy().T.tolist()]


def _bools(block: pd.DataFrame) -> list[list[str]]:
    return [["True" if v else "False" for v in column] for column in block.to_numpy().T.tolist()]


def _nullable_ints(block: pd.DataFrame) -> list[list[str]]:
    return [["" if v is pd.NA else str(v) for v in block[c].array.tolist()] for c in block.columns]


def _texts(block: pd.DataFrame) -> tuple[list[list[str]], bool] | None:
    """Strings as they are, missing values (None, NaN, NA, ...) as "" (pandas' na_rep), and whether any needs
    quoting; None for a column holding anything but strings, whose text is pandas' business. Each column's
    distinct values are found once (`pd.factorize`, missing values apart) and checked and written from there."""
    out, quoted = [], False
    for column in block.to_numpy(dtype=object).T:
        codes, distinct = pd.factorize(column)  # missing values: code -1
        if pd.api.types.infer_dtype(distinct, skipna=True) not in ("string", "empty"):
            return None
        quoted = quoted or _quoted(distinct.tolist())
        out.append(np.append(distinct, "")[codes].tolist())  # code -1: the "" appended last
    return out, quoted


_FORMATS = {"float": _floats, "int": _ints, "bool": _bools, "nullable int": _nullable_ints}
