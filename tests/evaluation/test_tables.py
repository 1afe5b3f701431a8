"""Markdown, CSV and rich tables of result rows."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from rich.console import Console

from surrogates.evaluation.tables import markdown_table, rich_table, write_csv

ROWS = [
    {"model": "fno", "rmse": 0.00123, "steps": 10},
    {"model": "u|net", "rmse": 12.5},
]


def test_markdown_table_exact_text():
    assert markdown_table(ROWS) == (
        "| model  |      rmse | steps |\n"
        "| ------ | --------: | ----: |\n"
        "| fno    | 1.230e-03 |    10 |\n"
        "| u\\|net | 1.250e+01 |       |"
    )


def test_markdown_table_columns_and_format():
    rows = [{"model": "fno", "rmse": np.float32(0.5), "note": "two\nlines"}]
    assert markdown_table(rows, ["rmse", "note"], floatfmt=".2f") == (
        "| rmse | note      |\n| ---: | --------- |\n| 0.50 | two lines |"
    )


def test_markdown_table_of_no_rows():
    assert markdown_table([], ["model", "rmse"]) == "| model | rmse |\n| ----- | ---- |"
    with pytest.raises(ValueError, match="at least one column"):
        markdown_table([])


def test_csv_round_trips_through_the_stdlib_reader(tmp_path):
    rows = [
        {"model": 'fno, "big"', "rmse": 0.1 + 0.2, "steps": 10},
        {"model": "multi\nline", "rmse": 1e-300},
    ]
    path = write_csv(rows, tmp_path / "tables" / "summary.csv")
    assert path == tmp_path / "tables" / "summary.csv"
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        back = list(reader)
    assert reader.fieldnames == ["model", "rmse", "steps"]
    assert [row["model"] for row in back] == ['fno, "big"', "multi\nline"]
    assert [float(row["rmse"]) for row in back] == [0.1 + 0.2, 1e-300]
    assert [row["steps"] for row in back] == ["10", ""]
    assert [p.name for p in path.parent.iterdir()] == ["summary.csv"]


def test_csv_keeps_only_the_asked_columns(tmp_path):
    path = write_csv(ROWS, tmp_path / "s.csv", columns=["rmse", "model"])
    assert path.read_text().splitlines() == ["rmse,model", "0.00123,fno", "12.5,u|net"]


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot format")


def test_interrupted_csv_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_csv(ROWS, tmp_path / "s.csv")
    before = path.read_bytes()
    rows = [*ROWS, {"model": _Unprintable()}]
    with pytest.raises(RuntimeError, match="cannot format"):
        write_csv(rows, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]
    with pytest.raises(RuntimeError):
        write_csv(rows, tmp_path / "new.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_rich_table_cells_and_alignment():
    rows = [*ROWS, {"model": "[bold]fno[/bold]", "rmse": 2.0, "steps": 3}]
    table = rich_table(rows, "summary")
    assert table.title == "summary"
    assert [str(column.header) for column in table.columns] == ["model", "rmse", "steps"]
    assert [column.justify for column in table.columns] == ["left", "right", "right"]
    cells = [[str(cell) for cell in column.cells] for column in table.columns]
    assert cells == [
        ["fno", "u|net", "[bold]fno[/bold]"],
        ["1.230e-03", "1.250e+01", "2.000e+00"],
        ["10", "", "3"],
    ]
    console = Console(record=True, width=100)
    console.print(table)
    text = console.export_text()
    assert "[bold]fno[/bold]" in text
    assert "1.230e-03" in text
