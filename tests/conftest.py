"""Shared test helpers live beside this file (`layout_files.py`, `tiny_runs.py`,
`interrupting.py`); pytest puts this folder on `sys.path` because of this conftest, so every
test folder can import them. The generated file of the tiny runs is a fixture shared by every
folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_runs import RECIPE, experiment_yaml


@pytest.fixture(scope="session")
def burgers_file(tmp_path_factory) -> Path:
    """One small generated Burgers file (`tiny_runs.RECIPE`) per test session."""
    from surrogates.data.generate.generator import run_recipe

    folder = tmp_path_factory.mktemp("data")
    (folder / "recipe.yaml").write_text(RECIPE)
    return run_recipe(folder / "recipe.yaml", out=folder, progress=False)[0]


@pytest.fixture
def make_experiment(burgers_file: Path, tmp_path: Path):
    """Write a tiny experiment YAML (runs under `tmp_path/runs`) and return its path."""

    def make(name: str = "tiny", **sections: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(experiment_yaml(burgers_file, tmp_path / "runs", **sections))
        return path

    return make


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """How `make test` shares the tests out between its workers (xdist's `loadgroup`, in
    this order): a file's tests go to one worker together, so its module fixtures (a
    compiled model, a generated file) are built once, except in files marked `spread`
    (long tests sharing nothing, the notebooks), whose tests go out one by one. Files
    marked `long(seconds)` go first, longest first: started last, one of them would keep
    one worker busy long after the other has finished."""
    for item in items:
        if item.get_closest_marker("spread") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))

    def expected(item) -> float:
        mark = item.get_closest_marker("long")
        return mark.args[0] if mark is not None else 0.0

    items.sort(key=expected, reverse=True)  # stable: the rest keep their order
