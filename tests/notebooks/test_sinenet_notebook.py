"""`notebooks/03_sinenet.ipynb` runs top to bottom on CPU
(its own asserts check its results)."""

from notebook_runs import run_notebook


def test_the_sinenet_notebook_runs():
    run_notebook("03_sinenet.ipynb")
