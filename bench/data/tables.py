"""Annotation CSV files read as text, columns found by header name: each problem one line naming file, row, column.

Shared by every reader of a CSV-based format (bench/data/readers.py). Values stay stripped strings until a
reader asks for a column as integers, so a bad cell is reported as written, with the row counted from 1
after the header.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import DataError


@dataclass
class Table:
    """One CSV file read as text: columns by canonical header name, values stripped strings."""

    path: Path
    header: list[str]
    columns: dict[str, np.ndarray]  # canonical name -> object array of str, one per data row
    names: dict[str, str]  # canonical name -> the name as written in the header

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def origin(self, row: int) -> str:
        return f"{self.path}: row {row + 1}"

    def has(self, column: str) -> bool:
        return canonical_name(column) in self.names

    def name(self, column: str) -> str:
        return self.names.get(canonical_name(column), column)

    def fail(self, bad: np.ndarray, column: str, expected: str | Callable[[int], str]) -> None:
        """Raise for the first row where ``bad`` is true (a boolean mask over data rows); ``expected`` may
        be a function of that row."""
        rows = np.flatnonzero(bad)
        if len(rows) == 0:
            return
        first = int(rows[0])
        got = self.columns[canonical_name(column)][first]
        wanted = expected(first) if callable(expected) else expected
        more = f" ({len(rows) - 1} more row(s) like it)" if len(rows) > 1 else ""
        raise DataError(f"{self.origin(first)}, column {self.name(column)!r}: expected {wanted}, "
                        f"got {shown(got)}{more}.")

    def integers(self, column: str, allowed: Iterable[int] | None = None, *, expected: str = "",
                 blank: int | None = None) -> np.ndarray:
        """The column as int64; whole numbers only (``1.0`` is accepted), from ``allowed`` when given;
        an empty cell becomes ``blank`` when given and is an error otherwise."""
        raw = self.columns[canonical_name(column)]
        allowed = None if allowed is None else tuple(allowed)
        wanted = expected or ("a whole number" if allowed is None else f"one of {', '.join(map(str, allowed))}")
        empty = raw == ""
        numbers = pd.to_numeric(pd.Series(np.where(empty, "0", raw), dtype=object), errors="coerce").to_numpy()
        bad = np.isnan(numbers) | (numbers != np.round(numbers))
        if blank is None:
            bad |= empty
        self.fail(bad, column, wanted)
        values = np.where(empty, blank if blank is not None else 0, numbers).astype(np.int64)
        if allowed is not None:
            self.fail(~np.isin(values, allowed) & ~(empty & (blank is not None)), column, wanted)
        return values

    def strings(self, column: str) -> np.ndarray:
        return self.columns[canonical_name(column)]


def read_table(path: Path, *, required: Sequence[str], optional: Sequence[str] = (), needs_rows: bool = True,
               what: str = "") -> Table:
    """Read a CSV file by header names; raise a one-line `DataError` for anything unreadable.

    ``required`` columns must be in the header, ``optional`` ones may be. Names match ignoring case and
    surrounding spaces. ``needs_rows``: a file with a header but no data row is an error (``what`` says
    what its rows are for).
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        lines = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({exc}).") from None
    if not lines:
        raise DataError(f"{path}: header row: expected a header naming the columns "
                        f"{', '.join(required)}, got an empty file.")
    header = lines[0][1]
    canonical = [canonical_name(h) for h in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(canonical):
        if name in seen:
            raise DataError(f"{path}: header row, column {header[i]!r}: expected each column once, but columns "
                            f"{seen[name] + 1} and {i + 1} have the same name.")
        seen[name] = i
    missing = [c for c in required if canonical_name(c) not in seen]
    if missing:
        raise DataError(f"{path}: header row, column {missing[0]!r}: missing; expected a header with "
                        f"{', '.join(required)}{' [, ' + ', '.join(optional) + ']' if optional else ''}, "
                        f"got {','.join(header)}.")
    wanted = [canonical_name(c) for c in (*required, *optional) if canonical_name(c) in seen]
    rows = lines[1:]
    for number, (line, values) in enumerate(rows, start=1):
        if len(values) != len(header):
            raise DataError(f"{path}: row {number} (line {line}), column {len(values)}: expected {len(header)} "
                            f"comma-separated values (the header's {len(header)} columns), got {len(values)}.")
    if needs_rows and not rows:
        raise DataError(f"{path}: row 1, column {header[0]!r}: expected at least one data row"
                        f"{' (' + what + ')' if what else ''}, got a header only; an empty split cannot be "
                        f"trained or tested on.")
    columns = {name: np.array([values[seen[name]] for _, values in rows], dtype=object) for name in wanted}
    names = {name: header[seen[name]] for name in wanted}
    return Table(path=path, header=header, columns=columns, names=names)


def read_text(path: Path) -> str:
    """The file as text; anything but UTF-8 (a BOM allowed) is an error naming the row and column."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: the file does not exist.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DataError(f"{path}: row 0 (the header), column 1: expected UTF-8 text, got a UTF-16/32 byte-order "
                        f"mark; save the file as UTF-8 (e.g. Excel's 'CSV UTF-8').")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = before[line_start:].count(b",") + 1
        header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").split(",")
        column_name = f" ({header[column - 1].strip()!r})" if line > 1 and column <= len(header) else ""
        where = "header row (line 1)" if line == 1 else f"row {line - 1} (line {line})"
        raise DataError(f"{path}: {where}, column {column}{column_name}: expected UTF-8 text, got "
                        f"byte 0x{data[exc.start]:02x} at byte offset {exc.start}; save the file as UTF-8.") from None


def canonical_name(name: str) -> str:
    return name.strip().casefold()


def shown(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)
    text = json.dumps(value)[:60] if isinstance(value, dict | list) else repr(value)[:60]
    return text + ("..." if len(text) >= 60 else "")
