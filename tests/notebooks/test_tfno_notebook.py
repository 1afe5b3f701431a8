"""`notebooks/02_tfno.ipynb` runs top to bottom on CPU
(its own asserts check its results)."""

from notebook_runs import run_notebook


def test_the_tfno_notebook_runs():
    run_notebook("02_tfno.ipynb")
