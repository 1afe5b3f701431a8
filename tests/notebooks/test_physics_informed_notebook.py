"""`notebooks/05_physics_informed.ipynb` runs top to bottom on CPU
(its own asserts check its results)."""

from notebook_runs import run_notebook


def test_the_physics_informed_notebook_runs():
    run_notebook("05_physics_informed.ipynb")
