"""Shared test helpers live beside this file (`layout_files.py`, `tiny_runs.py`,
`interrupting.py`); pytest puts this folder on `sys.path` because of this conftest, so every
test folder can import them. The generated file of the tiny runs is a fixture shared by every
folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# The tests compile the same small functions many times over (a run and its resumed copy,
# the same model in several tests, a subprocess and its parent): JAX's persistent
# compilation cache compiles each once. One fresh folder per test process, inherited by the
# subprocesses its tests start (which run while it waits, so no two writers share it), and
# removed at the end: nothing carries over between sessions. Set before JAX is imported,
# which reads these at import.
CACHE = tempfile.mkdtemp(prefix="surrogates-tests-xla-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import pytest  # noqa: E402
from tiny_runs import RECIPE, experiment_yaml  # noqa: E402


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(CACHE, ignore_errors=True)


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
