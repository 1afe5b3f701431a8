"""Recipes of PDEBench's 1D periodic PDEs (advection, Burgers, reaction-diffusion).

The three share a grid, save times, PDEBench's sum-of-sines initial conditions and the
single-file `tensor` layout, so one schema, `PDEBench1DRecipe`, serves them; what differs per
PDE (its parameters, its solver options and how it is solved) is one row of `PDES`. Defaults
are PDEBench's: 1024 cells on [0, 1], 201 frames on [0, 2], seed 2022.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, TypedDict

import h5py
import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field, model_validator

from surrogates.atomic import atomic_path
from surrogates.data.generate import pdes
from surrogates.data.generate.initial_conditions import (
    SumOfSines,
    normalise_unit_range,
    sample_sum_of_sines,
)
from surrogates.data.generate.specs import (
    GridSpec,
    InitialConditionSpec,
    TimeSpec,
    check_file_name,
    parameter_sweep,
    solved_chunks,
)
from surrogates.schema import StrictModel


class Timing(TypedDict):
    """The keyword arguments every solver of `pdes` takes besides the state and parameters."""

    grid: pdes.Grid
    frames: int
    interval: float


# One PDE's solver: (initial conditions, parameters as float32, solver options, timing)
# -> trajectories (B, T, N).
Solver = Callable[[SumOfSines, dict[str, jax.Array], dict[str, object], Timing], jax.Array]


def cell_values(ic: SumOfSines, grid: pdes.Grid) -> jax.Array:
    """The initial conditions at the grid's cell centres: (B, N) float32."""
    return ic(jnp.asarray(grid.centres, jnp.float32))


def solve_advection(
    ic: SumOfSines, param: dict[str, jax.Array], options: dict[str, object], timing: Timing
) -> jax.Array:
    """Advection, exact (the analytic initial condition shifted) or by MUSCL: (B, T, N)."""
    if options["method"] == "exact":
        return pdes.advection_exact(ic, param["beta"], **timing)
    u0 = cell_values(ic, timing["grid"])
    return pdes.advection_muscl(u0, param["beta"], cfl=options["cfl"], **timing)


def solve_burgers(
    ic: SumOfSines, param: dict[str, jax.Array], options: dict[str, object], timing: Timing
) -> jax.Array:
    """Viscous Burgers with viscosity `Nu / pi` (see `pdes.burgers`): (B, T, N)."""
    u0 = cell_values(ic, timing["grid"])
    scheme = options["viscous_scheme"]
    return pdes.burgers(u0, param["Nu"], cfl=options["cfl"], viscous_scheme=scheme, **timing)


def solve_reaction_diffusion(
    ic: SumOfSines, param: dict[str, jax.Array], options: dict[str, object], timing: Timing
) -> jax.Array:
    """Reaction-diffusion from initial states scaled to [0, 1], as PDEBench does: (B, T, N)."""
    u0 = normalise_unit_range(cell_values(ic, timing["grid"]))
    steps = options["steps_per_frame"]
    return pdes.reaction_diffusion(u0, param["Nu"], param["rho"], steps_per_frame=steps, **timing)


def no_attributes(values: dict[str, float]) -> dict[str, float]:
    """No file attributes beyond the shared ones."""
    return {}


def burgers_attributes(values: dict[str, float]) -> dict[str, float]:
    """PDEBench's Burgers files also store the viscosity itself, `Nu / pi`."""
    return {"viscosity": values["Nu"] / np.pi}


@dataclass(frozen=True)
class PDE:
    """What one 1D PDE adds to the shared recipe.

    parameters: the values each file needs, named as PDEBench's file attributes.
    options: the solver options that apply, with their defaults.
    solve: its solver (see `Solver`).
    attributes: extra file attributes from a file's parameter values.
    """

    parameters: tuple[str, ...]
    options: dict[str, object]
    solve: Solver
    attributes: Callable[[dict[str, float]], dict[str, float]] = no_attributes


PDES: dict[str, PDE] = {
    "advection": PDE(("beta",), {"method": "exact", "cfl": 0.4}, solve_advection),
    "burgers": PDE(
        ("Nu",), {"cfl": 0.4, "viscous_scheme": "auto"}, solve_burgers, burgers_attributes
    ),
    "reaction_diffusion": PDE(("Nu", "rho"), {"steps_per_frame": 20}, solve_reaction_diffusion),
}


class SolverSpec(StrictModel):
    """Solver options; each applies to some PDEs only (checked against the recipe's PDE).
    An option left out takes the PDE's default (`PDES`)."""

    method: Literal["exact", "muscl"] | None = None
    """Advection only: `exact` (shift the initial condition; the default) or `muscl`."""
    cfl: Annotated[float, Field(gt=0, le=0.5)] | None = None
    """Advection with `muscl` and Burgers: the Courant number (TVD up to 0.5; default
    0.4)."""
    steps_per_frame: Annotated[int, Field(ge=1)] | None = None
    """Reaction-diffusion only: Strang steps per save interval (default 20)."""
    viscous_scheme: Literal["auto", "explicit", "split"] | None = None
    """Burgers only: `auto` (the cheaper per save interval; the default), `explicit` or
    `split` (exact heat operator); see `pdes.burgers`."""


class PDEBench1DRecipe(StrictModel):
    """A parameter sweep of one 1D PDE, one file per parameter combination.

    Files follow PDEBench's single-file layout: `tensor (N, T, X)` float32, `x-coordinate
    (X,)` the cell centres, `t-coordinate (T+1,)` as PDEBench writes it, the parameters as
    attributes, plus `boundary` ("periodic"), `pde`, the PDE's own attributes and `generator`
    (the settings, JSON).
    """

    pde: Literal["advection", "burgers", "reaction_diffusion"]
    """The PDE: advection `u_t + beta u_x = 0`, Burgers `u_t + (u^2 / 2)_x = (Nu / pi) u_xx`
    or reaction-diffusion `u_t = Nu u_xx + rho u (1 - u)` (see `pdes`)."""
    parameters: dict[str, Annotated[list[float], Field(min_length=1)]]
    """The values of each of the PDE's parameters, exactly those it needs (`beta`; `Nu`;
    `Nu` and `rho`): one file per combination, in the listed order."""
    file_name: str
    """The files' name pattern, with `{placeholders}` for the parameters; every parameter
    with several values needs one."""
    samples: Annotated[int, Field(ge=1)] = 1000
    """Trajectories per file."""
    chunk: Annotated[int, Field(ge=1)] = 128
    """Trajectories solved together. Burgers and MUSCL advection step a chunk with the time
    step of its fastest sample, so results change with `chunk` within discretisation error;
    initial conditions never do."""
    grid: GridSpec = GridSpec()
    """The periodic grid."""
    time: TimeSpec = TimeSpec()
    """The saved frames."""
    initial_condition: InitialConditionSpec = InitialConditionSpec()
    """PDEBench's random initial conditions."""
    solver: SolverSpec = SolverSpec()
    """Solver options of the PDE."""

    @model_validator(mode="after")
    def _consistent(self) -> PDEBench1DRecipe:
        needed = PDES[self.pde].parameters
        if set(self.parameters) != set(needed):
            raise ValueError(
                f"parameters: {self.pde} needs values for {', '.join(needed)}, "
                f"found {', '.join(self.parameters) or 'none'}"
            )
        applicable = PDES[self.pde].options
        stray = sorted(key for key in self.solver.model_fields_set if key not in applicable)
        if stray:
            raise ValueError(f"solver.{stray[0]}: does not apply to {self.pde}")
        check_file_name(self.file_name, self.parameters)
        return self

    @property
    def solver_grid(self) -> pdes.Grid:
        """The grid as the solvers take it."""
        spec = self.grid
        return pdes.Grid(cells=spec.cells, x_min=spec.x_min, length=spec.x_max - spec.x_min)

    @property
    def interval(self) -> float:
        """Time between two saved frames."""
        return self.time.t_end / (self.time.frames - 1)

    def options(self) -> dict[str, object]:
        """Solver options with this PDE's defaults filled in."""
        chosen = self.solver.model_dump(exclude_none=True)
        return {**PDES[self.pde].options, **chosen}

    def sweep(self) -> list[dict[str, float]]:
        """Every parameter combination, in the order the recipe lists the values."""
        return parameter_sweep(self.parameters)

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines one file's contents, as canonical JSON.

        Stored in the file, so a later run can tell whether an existing file is up to date.
        `chunk` counts: the CFL-limited solvers step a whole chunk with one time step.
        """
        settings = self.model_dump(exclude={"parameters", "file_name", "solver"})
        settings.update(parameters=values, solver=self.options())
        return json.dumps(settings, sort_keys=True)

    def solve(self, values: dict[str, float], indices: np.ndarray) -> np.ndarray:
        """Trajectories of samples `indices` (B,) for one parameter combination: (B, T, N)
        float32.
        """
        grid, spec = self.solver_grid, self.initial_condition
        ic = sample_sum_of_sines(
            spec.seed,
            indices,
            x_min=grid.x_min,
            length=grid.length,
            modes=spec.modes,
            choices=spec.choices,
            p_abs=spec.p_abs,
            p_window=spec.p_window,
            window_width=spec.window_width,
        )
        timing = Timing(grid=grid, frames=self.time.frames, interval=self.interval)
        param = {name: jnp.float32(value) for name, value in values.items()}
        out = PDES[self.pde].solve(ic, param, self.options(), timing)
        return np.asarray(out, dtype=np.float32)

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve the combination `values` into the file `target`, atomically, in chunks.

        `advance(n)` is told of every n samples written.

        Raises:
            RecipeError: a sample whose trajectory has NaN/Inf; nothing is written then.
        """
        grid, frames, n = self.solver_grid, self.time.frames, self.samples
        with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
            tensor = f.create_dataset(
                "tensor", (n, frames, grid.cells), np.float32, chunks=(1, frames, grid.cells)
            )
            f["x-coordinate"] = grid.centres.astype(np.float32)
            f["t-coordinate"] = (self.interval * np.arange(frames + 1)).astype(np.float32)
            f.attrs.update(values)
            f.attrs.update(boundary="periodic", pde=self.pde)
            f.attrs.update(PDES[self.pde].attributes(values))
            blocks = solved_chunks(
                self.solve,
                values,
                samples=n,
                chunk=self.chunk,
                target=target,
                pde=self.pde,
                remedy="a smaller solver.cfl",
            )
            for first, block in blocks:
                tensor[first : first + len(block)] = block
                advance(len(block))
            f.attrs["generator"] = self.file_settings(values)
