"""`notebooks/06_apebench.ipynb` runs top to bottom on CPU
(its own asserts check its results)."""

from notebook_runs import run_notebook


def test_the_apebench_notebook_runs():
    run_notebook("06_apebench.ipynb")
