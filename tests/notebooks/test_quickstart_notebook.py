"""`notebooks/01_quickstart.ipynb` runs top to bottom on CPU
(its own asserts check its results)."""

from notebook_runs import run_notebook


def test_the_quickstart_notebook_runs():
    run_notebook("01_quickstart.ipynb")


def test_every_notebook_has_its_test():
    from pathlib import Path

    from notebook_runs import NOTEBOOKS

    tested = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    missing = [p.name for p in sorted(NOTEBOOKS.glob("*.ipynb")) if f'"{p.name}"' not in tested]
    assert not missing, f"notebooks without a test in tests/notebooks/: {missing}"
