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
