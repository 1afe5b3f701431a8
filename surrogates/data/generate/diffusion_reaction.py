"""2D diffusion-reaction (FitzHugh-Nagumo), PDEBench's `2D_diff-react_NA_NA.h5`:

    u_t = Du lap u + u - u^3 - k - v,    v_t = Dv lap v + u - v

on the square [-1, 1]^2 with no-flux boundaries, from N(0, 1) noise in every cell for u and
v (PDEBench: Du = 1e-3, Dv = 5e-3, k = 5e-3, 128 x 128 cells, 101 frames on [0, 5]).

Space: the finite-volume 5-point Laplacian on cell centres. No flux through the boundary
faces means a ghost cell mirroring its neighbour inside (`laplacian`), so the face
differences telescope and the mean of u or v changes only by reaction, as in the PDE.

Time: classical RK4 with one fixed step `dt` (every save interval cut into equal steps), in
one jitted loop vmapped over samples. Explicit RK4 is stable on the negative real axis up to
`dt |lambda| = 2.785`; the fastest rates are diffusion's `8 D / dx^2` (164 for Dv at 128
cells) and the cubic reaction's `3 u^2` (below 100 for the largest |u| of N(0, 1) noise,
and falling within a frame). Stability alone would allow dt = 1e-2, but the grid-scale
noise that dominates the first frames then decays at RK4's rate rather than the exact one
(1e-3 of the largest |u| off at t = 0.05). The default dt = 5e-3 (`dt |lambda| <= 0.82`)
brings the time error, against steps sixteen times smaller, to 5e-5 of the largest |u| at
t = 0.05 and to float32 rounding (3e-5) later: far below the relative tolerance of scipy's
RK45 by default (1e-3), and below the spatial errors of resolved fields on these grids
(3e-4 and more; see the tests). An exponential integrator (diffusion
exact in the cosine basis of `laplacian`) would allow longer steps but needs a cosine
transform per stage; RK4 on the stencil is simpler and already accurate to rounding.

`DiffusionReactionRecipe` is the recipe schema of `pde: diffreact2d`; it writes PDEBench's
per-sample group layout (`0000/data` `(T, X, Y, 2)`, `0000/grid/x|y|t`, channels u, v).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import h5py
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from pydantic import Field, model_validator

from surrogates.atomic import atomic_path
from surrogates.data.generate.specs import (
    TimeSpec,
    check_file_name,
    parameter_sweep,
    solved_chunks,
    write_sample_groups,
)
from surrogates.physics.equations import bistable
from surrogates.schema import StrictModel

# The domain [LOW, HIGH]^2, PDEBench's.
LOW, HIGH = -1.0, 1.0
# RK4's stability limit on the negative real axis, `dt |lambda| <= 2.785`, with a margin for
# the reaction's rate that adds to diffusion's.
STABLE_DIFFUSION_NUMBER = 2.0

# A source term `(t, (2, N, N)) -> (2, N, N)` added to the right-hand side (for manufactured
# solutions); it gets the time and the state, and returns d(u, v)/dt contributions.
Source = Callable[[jax.Array, jax.Array], jax.Array]


def cell_centres(n: int) -> np.ndarray:
    """Centres `LOW + (i + 1/2) dx` of the n cells of each axis: (n,) float64."""
    return LOW + (np.arange(n) + 0.5) * (HIGH - LOW) / n


def cell_size(n: int) -> float:
    """The width dx of n cells on [LOW, HIGH]."""
    return (HIGH - LOW) / n


def laplacian(field: jax.Array, dx: float) -> jax.Array:
    """Finite-volume 5-point Laplacian with no-flux boundaries: (..., N, N) -> (..., N, N).

    Edge padding is the mirrored ghost cell: the face difference on the boundary is zero.
    """
    width = [(0, 0)] * (field.ndim - 2) + [(1, 1), (1, 1)]
    padded = jnp.pad(field, width, mode="edge")
    neighbours = (
        padded[..., :-2, 1:-1]
        + padded[..., 2:, 1:-1]
        + padded[..., 1:-1, :-2]
        + padded[..., 1:-1, 2:]
    )
    return (neighbours - 4 * field) / dx**2


def reaction(state: jax.Array, k: ArrayLike) -> jax.Array:
    """FitzHugh-Nagumo's reaction `(u - u^3 - k - v, u - v)` of a state (..., 2, N, N)
    holding (u, v) on axis -3: (..., 2, N, N).
    """
    u, v = state[..., 0, :, :], state[..., 1, :, :]
    return jnp.stack([bistable(u) - k - v, u - v], axis=-3)


def tendency(
    state: jax.Array,
    t: jax.Array,
    coefficients: jax.Array,
    dx: float,
    source: Source | None,
    reacting: bool,
) -> jax.Array:
    """d(u, v)/dt of one sample's state (2, N, N); coefficients (3,) = (Du, Dv, k)."""
    diffusivity = coefficients[:2, None, None]
    rate = diffusivity * laplacian(state, dx)
    if reacting:
        rate = rate + reaction(state, coefficients[2])
    if source is not None:
        rate = rate + source(t, state)
    return rate


def rk4_step(
    rhs: Callable[[jax.Array, jax.Array], jax.Array], y: jax.Array, t: ArrayLike, dt: float
) -> jax.Array:
    """One classical Runge-Kutta step of `y' = rhs(y, t)` from t to t + dt."""
    a = rhs(y, t)
    b = rhs(y + 0.5 * dt * a, t + 0.5 * dt)
    c = rhs(y + 0.5 * dt * b, t + 0.5 * dt)
    d = rhs(y + dt * c, t + dt)
    return y + dt / 6 * (a + 2 * (b + c) + d)


@functools.partial(jax.jit, static_argnames=("frames", "interval", "steps", "source", "reacting"))
def solve(
    state0: jax.Array,
    coefficients: ArrayLike,
    *,
    frames: int,
    interval: float,
    steps: int,
    source: Source | None = None,
    reacting: bool = True,
) -> jax.Array:
    """Trajectories from initial states: state0 (B, 2, N, N) -> (B, T, N, N, 2), frame 0 =
    state0 with channels last.

    coefficients: (Du, Dv, k). Frames are `interval` apart, each reached in `steps` RK4 steps.
    `source` adds a forcing `(t, state (2, N, N)) -> (2, N, N)`; `reacting=False` drops the
    reaction (pure diffusion).
    """
    n = state0.shape[-1]
    dx = cell_size(n)
    coefficients = jnp.asarray(coefficients, state0.dtype)
    dt = interval / steps

    def rhs(y: jax.Array, t: jax.Array) -> jax.Array:
        return tendency(y, t, coefficients, dx, source, reacting)

    def one(y0: jax.Array) -> jax.Array:
        def save(y: jax.Array, frame: jax.Array) -> tuple[jax.Array, jax.Array]:
            def step(s: int, z: jax.Array) -> jax.Array:
                return rk4_step(rhs, z, (frame * steps + s) * dt, dt)

            y = jax.lax.fori_loop(0, steps, step, y)
            return y, y

        _, later = jax.lax.scan(save, y0, jnp.arange(frames - 1))
        return jnp.moveaxis(jnp.concatenate([y0[None], later]), 1, -1)

    return jax.vmap(one)(state0)


@functools.partial(jax.jit, static_argnames=("n",))
def sample_noise(seed: int, indices: ArrayLike, *, n: int) -> jax.Array:
    """Initial states of samples `indices` (B,): N(0, 1) in every cell, (B, 2, n, n) float32.

    Sample i draws from `fold_in(key(seed), i)`, so it does not depend on the batch it is
    drawn in.
    """

    def one(i: jax.Array) -> jax.Array:
        return jax.random.normal(jax.random.fold_in(jax.random.key(seed), i), (2, n, n))

    return jax.vmap(one)(jnp.asarray(indices))


def steps_per_interval(interval: float, dt: float) -> int:
    """Equal steps of at most `dt` covering one save interval."""
    return max(1, math.ceil(interval / dt * (1 - 1e-12)))


PositiveList = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]


class DiffusionReactionValues(StrictModel):
    """The sweep's values (one file per combination); PDEBench's by default."""

    Du: PositiveList = Field(default_factory=lambda: [1e-3])
    """The diffusivity of `u`."""
    Dv: PositiveList = Field(default_factory=lambda: [5e-3])
    """The diffusivity of `v`."""
    k: Annotated[list[float], Field(min_length=1)] = Field(default_factory=lambda: [5e-3])
    """The constant `k` in `u`'s reaction `u - u^3 - k - v`."""


class NoiseSpec(StrictModel):
    """N(0, 1) noise in every cell, for u and v."""

    seed: int = 0
    """Sample `i` draws from `fold_in(key(seed), i)`, whatever the batch."""


class DiffusionReactionSolverSpec(StrictModel):
    """Classical RK4 with one fixed step."""

    dt: Annotated[float, Field(gt=0)] = 5e-3
    """The largest RK4 step (each save interval is cut into equal steps of at most dt); the
    step taken must keep `8 D dt / dx^2` at most 2 for the sweep's largest diffusivity."""


class DiffusionReactionRecipe(StrictModel):
    """Recipe of `pde: diffreact2d`: one `.h5` file of per-sample groups per (Du, Dv, k)."""

    pde: Literal["diffreact2d"]
    """Selects this recipe kind."""
    parameters: DiffusionReactionValues = DiffusionReactionValues()
    """The values to sweep, one file per combination."""
    file_name: str = "2D_diff-react_NA_NA.h5"
    """The files' name pattern, with `{Du}`, `{Dv}`, `{k}` for the parameters (needed for
    those with several values)."""
    samples: Annotated[int, Field(ge=1)] = 100
    """Trajectories per file."""
    chunk: Annotated[int, Field(ge=1)] = 8
    """Samples solved together; files do not depend on it."""
    resolution: Annotated[int, Field(ge=4)] = 128
    """Cells per axis of the square `[-1, 1]^2`."""
    time: TimeSpec = TimeSpec(t_end=5.0, frames=101)
    """The saved frames."""
    initial_condition: NoiseSpec = NoiseSpec()
    """The random initial states."""
    solver: DiffusionReactionSolverSpec = DiffusionReactionSolverSpec()
    """The time stepping."""

    @model_validator(mode="after")
    def _consistent(self) -> DiffusionReactionRecipe:
        check_file_name(self.file_name, self.parameters.model_dump())
        number = self.dt * 8 * max(self.parameters.Du + self.parameters.Dv)
        number /= cell_size(self.resolution) ** 2
        if number > STABLE_DIFFUSION_NUMBER:
            raise ValueError(
                f"solver.dt: 8 D dt / dx^2 = {number:.3g} exceeds RK4's stable "
                f"{STABLE_DIFFUSION_NUMBER}; use a smaller dt"
            )
        return self

    @property
    def interval(self) -> float:
        return self.time.t_end / (self.time.frames - 1)

    @property
    def steps(self) -> int:
        """RK4 steps per save interval."""
        return steps_per_interval(self.interval, self.solver.dt)

    @property
    def dt(self) -> float:
        """The step actually taken."""
        return self.interval / self.steps

    def sweep(self) -> list[dict[str, float]]:
        """One combination per (Du, Dv, k), in the recipe's order."""
        return parameter_sweep(self.parameters.model_dump())

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines one file's contents, as canonical JSON (not `chunk`)."""
        settings = self.model_dump(exclude={"parameters", "file_name", "chunk"})
        settings.update(parameters=values)
        return json.dumps(settings, sort_keys=True)

    def solve(self, values: dict[str, float], indices: np.ndarray) -> np.ndarray:
        """Trajectories of samples `indices` (B,): (B, T, N, N, 2) float32, channels (u, v)."""
        state0 = sample_noise(self.initial_condition.seed, indices, n=self.resolution)
        coefficients = [values["Du"], values["Dv"], values["k"]]
        out = solve(
            state0, coefficients, frames=self.time.frames, interval=self.interval, steps=self.steps
        )
        return np.asarray(out, dtype=np.float32)

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve the parameters `values` into `target` atomically, in PDEBench's groups.

        Groups `0000`, `0001`, ... hold `data` (T, N, N, 2) float32 (axes t, x, y, (u, v)),
        `grid/x`, `grid/y` (the cell centres) and `grid/t` (T,); file attributes `Du`, `Dv`,
        `k`, `boundary` (`neumann`), `pde` and `generator` (the settings). `advance(m)` is
        told of every m samples.

        Raises:
            RecipeError: a sample whose trajectory has NaN/Inf; nothing is written then.
        """
        centres = cell_centres(self.resolution).astype(np.float32)
        times = np.linspace(0.0, self.time.t_end, self.time.frames).astype(np.float32)
        with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
            f.attrs.update(values)
            f.attrs.update(boundary="neumann", pde=self.pde)
            blocks = solved_chunks(
                self.solve,
                values,
                samples=self.samples,
                chunk=self.chunk,
                target=target,
                pde=self.pde,
                remedy="a smaller solver.dt",
            )
            grid = {"x": centres, "y": centres, "t": times}
            write_sample_groups(f, blocks, grid, advance)
            f.attrs["generator"] = self.file_settings(values)
