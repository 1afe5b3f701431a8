"""Dataset recipes: YAML files in `datasets/` that say which benchmark files to generate.

A recipe names a PDE, the values of its parameters (one file per combination), the grid, the
save times, the initial-condition distribution and solver options. Unknown keys and bad values
fail with a `RecipeError` naming the key. Defaults are PDEBench's: 1024 cells on [0, 1],
201 frames on [0, 2], its sum-of-sines initial conditions with seed 2022.
"""

from __future__ import annotations

import difflib
import itertools
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from surrogates.errors import RecipeError
from surrogates.validation import StrictModel, load_yaml, validate

# The parameters each PDE needs, named as PDEBench's file attributes.
PDE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "advection": ("beta",),
    "burgers": ("Nu",),
    "reaction_diffusion": ("Nu", "rho"),
}


class GridSpec(StrictModel):
    """A periodic grid of `cells` cells on `[x_min, x_max)`."""

    cells: Annotated[int, Field(ge=8)] = 1024
    x_min: float = 0.0
    x_max: float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> GridSpec:
        if self.x_max <= self.x_min:
            raise ValueError(f"x_max ({self.x_max}) must exceed x_min ({self.x_min})")
        return self


class TimeSpec(StrictModel):
    """`frames` equally spaced save times from 0 to `t_end`, both included."""

    t_end: Annotated[float, Field(gt=0)] = 2.0
    frames: Annotated[int, Field(ge=2)] = 201


class InitialConditionSpec(StrictModel):
    """PDEBench's sum-of-sines distribution (see `initial_conditions.py`)."""

    seed: int = 2022
    modes: Annotated[int, Field(ge=1)] = 4
    choices: Annotated[int, Field(ge=1)] = 2
    p_abs: Annotated[float, Field(ge=0, le=1)] = 0.1
    p_window: Annotated[float, Field(ge=0, le=1)] = 0.1
    window_width: Annotated[float, Field(gt=0)] = 0.01


class SolverSpec(StrictModel):
    """Solver options; each applies to some PDEs only (checked against the recipe's PDE).

    method: advection only, `exact` (shift the initial condition) or `muscl`.
    cfl: advection with `muscl` and Burgers, the Courant number (TVD up to 0.5).
    steps_per_frame: reaction-diffusion only, Strang steps per save interval.
    viscous_scheme: Burgers only, `auto` (the cheaper per save interval), `explicit` or
        `split` (exact heat operator); see `pdes.burgers`.
    """

    method: Literal["exact", "muscl"] | None = None
    cfl: Annotated[float, Field(gt=0, le=0.5)] | None = None
    steps_per_frame: Annotated[int, Field(ge=1)] | None = None
    viscous_scheme: Literal["auto", "explicit", "split"] | None = None


_SOLVER_OPTIONS = {
    "advection": {"method": "exact", "cfl": 0.4},
    "burgers": {"cfl": 0.4, "viscous_scheme": "auto"},
    "reaction_diffusion": {"steps_per_frame": 20},
}


class Recipe(StrictModel):
    """One recipe: a parameter sweep of one PDE, one file per parameter combination."""

    pde: Literal["advection", "burgers", "reaction_diffusion"]
    parameters: dict[str, Annotated[list[float], Field(min_length=1)]]
    file_name: str
    samples: Annotated[int, Field(ge=1)] = 1000
    # Trajectories solved together. Burgers and MUSCL advection step a chunk with the time
    # step of its fastest sample, so results change with `chunk` within discretisation error;
    # initial conditions never do.
    chunk: Annotated[int, Field(ge=1)] = 128
    grid: GridSpec = GridSpec()
    time: TimeSpec = TimeSpec()
    initial_condition: InitialConditionSpec = InitialConditionSpec()
    solver: SolverSpec = SolverSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        needed = PDE_PARAMETERS[self.pde]
        if set(self.parameters) != set(needed):
            raise ValueError(
                f"parameters: {self.pde} needs values for {', '.join(needed)}, "
                f"found {', '.join(self.parameters) or 'none'}"
            )
        applicable = _SOLVER_OPTIONS[self.pde]
        stray = sorted(key for key in self.solver.model_fields_set if key not in applicable)
        if stray:
            raise ValueError(f"solver.{stray[0]}: does not apply to {self.pde}")
        fields = {name for _, name, _, _ in string.Formatter().parse(self.file_name) if name}
        unknown = fields - set(needed)
        if unknown:
            raise ValueError(f"file_name: unknown placeholder {{{sorted(unknown)[0]}}}")
        swept = {name for name, values in self.parameters.items() if len(values) > 1}
        if swept - fields:
            raise ValueError(
                f"file_name: needs {{{sorted(swept - fields)[0]}}}, which takes several values"
            )
        return self

    def options(self) -> dict[str, object]:
        """Solver options with this PDE's defaults filled in."""
        chosen = self.solver.model_dump(exclude_none=True)
        return {**_SOLVER_OPTIONS[self.pde], **chosen}

    def sweep(self) -> list[dict[str, float]]:
        """Every parameter combination, in the order the recipe lists the values."""
        names = list(self.parameters)
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.parameters.values())
        ]

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve the combination `values` into the file `target`, atomically."""
        from surrogates.data.generate.generator import write_file

        write_file(target, self, values, advance)

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines one file's contents, as canonical JSON.

        Stored in the file, so a later run can tell whether an existing file is up to date.
        `chunk` counts: the CFL-limited solvers step a whole chunk with one time step.
        """
        settings = self.model_dump(exclude={"parameters", "file_name", "solver"})
        settings.update(parameters=values, solver=self.options())
        return json.dumps(settings, sort_keys=True)


def recipe_types() -> dict[str, type[StrictModel]]:
    """The recipe schema of every PDE the generators solve, by the recipe's `pde` value.

    Every schema offers `samples`, `file_name`, `sweep()`, `file_settings(values)` and
    `write(target, values, advance)`; the 2D ones live beside their solvers.
    """
    types: dict[str, type[StrictModel]] = dict.fromkeys(PDE_PARAMETERS, Recipe)
    from surrogates.data.generate.darcy import DarcyRecipe
    from surrogates.data.generate.navier_stokes import NavierStokesRecipe

    types["darcy"] = DarcyRecipe
    types["ns2d_vorticity"] = NavierStokesRecipe
    return types


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; a `RecipeError` names the file and the offending key."""
    data = load_yaml(path, RecipeError)
    types = recipe_types()
    pde = data.get("pde") if isinstance(data, dict) else None
    if pde not in types:
        close = difflib.get_close_matches(str(pde), list(types), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of {', '.join(types)}"
        raise RecipeError(f"{path}: pde: unknown PDE {pde!r} ({hint})")
    return validate(types[pde], data, str(path), RecipeError)
