"""Running a notebook of `notebooks/` top to bottom on CPU, for the tests in
`tests/notebooks/` (one file each, so that the test workers share the notebooks out)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


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
