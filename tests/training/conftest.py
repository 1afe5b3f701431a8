"""Fixtures for the engine tests: one generated Burgers file per session, tiny experiments."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_runs import RECIPE, experiment_yaml


@pytest.fixture(scope="session")
def burgers_file(tmp_path_factory) -> Path:
    from surrogates.data.generate.generator import run_recipe

    folder = tmp_path_factory.mktemp("data")
    (folder / "recipe.yaml").write_text(RECIPE)
    return run_recipe(folder / "recipe.yaml", out=folder, progress=False)[0]


@pytest.fixture
def make_experiment(burgers_file: Path, tmp_path: Path):
    """Write a tiny experiment YAML and return its path."""

    def make(name: str = "tiny", **sections: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(experiment_yaml(burgers_file, tmp_path / "runs", **sections))
        return path

    return make
