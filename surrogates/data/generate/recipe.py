"""Dataset recipes: YAML files in `datasets/` that say which benchmark files to generate.

A recipe names a PDE (`pde`), the values of its parameters (one file per combination) and how
to solve it. Each kind of recipe is a schema beside its solvers; this module says what every
kind offers (`DatasetRecipe`), which kinds exist (`recipe_types`) and reads a recipe file
(`load_recipe`). Unknown keys and bad values fail with a `RecipeError` naming the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, Self, cast

from surrogates.data.generate.apebench import APEBenchRecipe
from surrogates.data.generate.darcy import DarcyRecipe
from surrogates.data.generate.diffusion_reaction import DiffusionReactionRecipe
from surrogates.data.generate.navier_stokes import NavierStokesRecipe
from surrogates.data.generate.pdebench1d import PDES, PDEBench1DRecipe
from surrogates.data.generate.shallow_water import ShallowWaterRecipe
from surrogates.errors import RecipeError
from surrogates.schema import StrictModel, load_yaml, validate


class DatasetRecipe(Protocol):
    """What every recipe kind offers: a sweep of files, each solved and written on its own."""

    @property
    def samples(self) -> int:
        """The samples (trajectories or solutions) in each file."""
        ...

    @property
    def file_name(self) -> str:
        """The files' name pattern, with the swept parameters as `{placeholders}`."""
        ...

    def sweep(self) -> list[dict[str, float]]:
        """The parameter values of every file, one dict per file, in the recipe's order."""
        ...

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines the contents of the file for `values`, as canonical JSON.

        Stored in the file's `generator` attribute, so a later run can tell whether an existing
        file is up to date.
        """
        ...

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve every sample for `values` into the file `target`, atomically.

        `advance(n)` is told of every n samples written. A sample that fails (a diverged
        solver, a missed tolerance) raises a `RecipeError` naming it, and nothing is written.
        """
        ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with the fields in `update` replaced (recipes are pydantic models)."""
        ...


def recipe_types() -> dict[str, type[StrictModel]]:
    """The recipe schema of every PDE the generators solve, by the recipe's `pde` value.

    Each is a `DatasetRecipe`; the time-dependent ones also offer `solve(values, indices)`,
    the trajectories of samples `indices` (B,) for one file: (B, T, ...) float32.
    """
    return {
        **dict.fromkeys(PDES, PDEBench1DRecipe),
        "darcy": DarcyRecipe,
        "ns2d_vorticity": NavierStokesRecipe,
        "diffreact2d": DiffusionReactionRecipe,
        "swe2d": ShallowWaterRecipe,
        "apebench": APEBenchRecipe,
    }


def load_recipe(path: str | Path) -> DatasetRecipe:
    """Read and validate a recipe; a `RecipeError` names the file and the offending key."""
    data = load_yaml(path, RecipeError)
    types = recipe_types()
    pde = data.get("pde") if isinstance(data, dict) else None
    if pde not in types:
        close = difflib.get_close_matches(str(pde), list(types), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of {', '.join(types)}"
        raise RecipeError(f"{path}: pde: unknown PDE {pde!r} ({hint})")
    # Every schema of `recipe_types` is a `DatasetRecipe`.
    return cast("DatasetRecipe", validate(types[pde], data, str(path), RecipeError))
