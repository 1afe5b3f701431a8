"""`notebooks/04_cape.ipynb` runs top to bottom on CPU
(its own asserts check its results)."""

from notebook_runs import run_notebook


def test_the_cape_notebook_runs():
    run_notebook("04_cape.ipynb")
