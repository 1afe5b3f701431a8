"""Running a notebook of `notebooks/` top to bottom on CPU, for the tests in
`tests/notebooks/` (one file each, so that the test workers share the notebooks out).

`make docs` runs these tests with `SURROGATES_EXECUTED_NOTEBOOKS` set to a folder: each
executed notebook is then kept there, with its outputs, for the site to show."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).parents[1]
NOTEBOOKS = ROOT / "notebooks"
KEEP = "SURROGATES_EXECUTED_NOTEBOOKS"


def run_notebook(name: str) -> None:
    """Execute `notebooks/<name>` (its own asserts check its results); it must raise no error
    and its last cell must draw a figure."""
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in notebook.cells[-1].outputs)
    if os.environ.get(KEEP):
        _reference_pages().store_executed(path, notebook, Path(os.environ[KEEP]))


def _reference_pages():
    sys.path.insert(0, str(ROOT / "docs"))
    import reference_pages

    return reference_pages
