"""Tables of result rows: GitHub markdown, CSV files and rich tables for the terminal.

A row maps column names to values, as `summary_rows` and `comparison_rows` make them. The
columns are the ones asked for or else every key in first-seen order; a row without a
column leaves its cell empty. Columns whose values are all numbers are right-aligned.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text

from surrogates.atomic import atomic_path

Row = Mapping[str, object]


def table_columns(rows: Sequence[Row], columns: Sequence[str] | None = None) -> list[str]:
    """`columns` if given, else every key of `rows` in first-seen order."""
    names = (
        list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    )
    if not names:
        raise ValueError("a table needs at least one column; got no rows and no columns")
    return names


def format_cell(value: object, floatfmt: str = ".3e") -> str:
    """A cell's text: floats with `floatfmt`, a missing value (None) empty, others `str`."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return format(value, floatfmt)
    return str(value)


def _is_numeric(values: Sequence[object]) -> bool:
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        for value in present
    )


def _aligned_right(rows: Sequence[Row], names: Sequence[str]) -> list[bool]:
    return [_is_numeric([row.get(name) for row in rows]) for name in names]


def markdown_table(
    rows: Sequence[Row], columns: Sequence[str] | None = None, *, floatfmt: str = ".3e"
) -> str:
    """A GitHub pipe table of `rows`, padded so that the plain text lines up.

    Text columns are left-aligned, numeric ones right-aligned (`---:`). `|` in a cell is
    escaped and line breaks become spaces. No trailing newline.
    """
    names = table_columns(rows, columns)
    header = [_escape(name) for name in names]
    body = [[_escape(format_cell(row.get(name), floatfmt)) for name in names] for row in rows]
    right = _aligned_right(rows, names)
    widths = [max(3, len(header[i]), *(len(cells[i]) for cells in body)) for i in range(len(names))]
    rule = [
        "-" * (width - 1) + ":" if r else "-" * width
        for width, r in zip(widths, right, strict=True)
    ]
    lines = [_pipe_line(header, widths, right), _pipe_line(rule, widths, right)]
    lines += [_pipe_line(cells, widths, right) for cells in body]
    return "\n".join(lines)


def _escape(text: str) -> str:
    # A bare `|` would end the cell and a line break would end the row.
    return " ".join(text.splitlines()).replace("|", r"\|")


def _pipe_line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    padded = (
        cell.rjust(width) if r else cell.ljust(width)
        for cell, width, r in zip(cells, widths, right, strict=True)
    )
    return "| " + " | ".join(padded) + " |"


def write_csv(
    rows: Sequence[Row], path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> Path:
    """Write `rows` as CSV with a header line, atomically. Returns the path.

    Values are written with `str`, so floats keep full precision; missing cells are empty,
    and keys outside `columns` are left out.
    """
    names = table_columns(rows, columns)
    target = Path(path)
    with atomic_path(target) as temporary, temporary.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return target


def rich_table(
    rows: Sequence[Row],
    title: str,
    *,
    columns: Sequence[str] | None = None,
    floatfmt: str = ".3e",
) -> Table:
    """A `rich.table.Table` of `rows` to print with a rich Console."""
    names = table_columns(rows, columns)
    table = Table(title=title)
    for name, right in zip(names, _aligned_right(rows, names), strict=True):
        table.add_column(Text(name), justify="right" if right else "left")
    for row in rows:
        # Text, not str, so that labels such as "fno[64]" are not read as rich markup.
        table.add_row(*(Text(format_cell(row.get(name), floatfmt)) for name in names))
    return table
