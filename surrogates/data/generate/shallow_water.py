"""2D shallow water equations and PDEBench's radial dam break (`2D_rdb_NA_NA.h5`).

    h_t + (h u)_x + (h v)_y = 0
    (h u)_t + (h u^2 + g h^2 / 2)_x + (h u v)_y = 0
    (h v)_t + (h u v)_x + (h v^2 + g h^2 / 2)_y = 0

on the square `[-extent, extent]^2` (PDEBench: 2.5, g = 1) with open boundaries: zero-gradient
ghost cells, so waves leave the domain. PDEBench's initial state is a still column of water,
h = 2 inside a circle of radius r ~ U(0.3, 0.7) about the origin and 1 outside.

The scheme is a second-order finite volume method on cell averages of `(h, h u, h v)`:
MUSCL reconstruction of the primitive variables `(h, u, v)` with the MC limiter (limiting
velocities rather than momenta keeps the reconstructed velocities within their neighbours'
range at depth jumps), HLL fluxes with Davis' wave speed bounds `min / max(u -+ c)` over both sides
(c = sqrt(g h)), both directions at once (unsplit) and SSP-RK2 (Heun) in time.

Time steps are adaptive per sample and per save interval: each interval is cut into equal
steps whose Courant number `dt (max(|u| + c) + max(|v| + c)) / dx` is at most `cfl` for the
state at the interval's start. That sum of both directions' numbers is the unsplit scheme's
stability measure; below 1/2 the MUSCL-SSP-RK2 update is a convex combination of first-order
steps. Save intervals are short (0.01 in PDEBench's set, a few steps), so the flow hardly
speeds up within one: at the default 0.4 no step of the dam breaks exceeds a Courant number
of 0.41. A sample's trajectory depends only on its own initial state, never on the chunk it
is solved in.

`ShallowWaterRecipe` is the recipe schema of `pde: swe2d`; it writes PDEBench's per-sample
group layout (`0000/data` `(T, X, Y, 1)`, the depth h only, and `0000/grid/x|y|t`).
"""

from __future__ import annotations

import functools
import json
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
from surrogates.data.generate.finite_volume import muscl_states, ssp_rk2, substeps
from surrogates.data.generate.specs import (
    TimeSpec,
    check_file_name,
    parameter_sweep,
    solved_chunks,
    write_sample_groups,
)
from surrogates.schema import StrictModel

# More steps than this per save interval means the solution has blown up: its frames become NaN.
MAX_STEPS = 1 << 16
# Order of the conserved components across a y face: (h, h v, h u), so y fluxes reuse the x code.
_SWAP_VELOCITIES = np.array([0, 2, 1])


def cell_centres(cells: int, extent: float) -> np.ndarray:
    """Centres `-extent + (i + 1/2) dx` of `cells` cells on `[-extent, extent]`: (cells,)."""
    dx = 2 * extent / cells
    return -extent + (np.arange(cells) + 0.5) * dx


@functools.partial(jax.jit, static_argnames=("low", "high"))
def sample_radii(seed: int, indices: ArrayLike, *, low: float, high: float) -> jax.Array:
    """Dam radii ~ U(low, high) of samples `indices` (B,): (B,) float32.

    Sample i draws from `fold_in(key(seed), i)`, so its radius never depends on the batch.
    """

    def one(i: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.key(seed), i)
        return jax.random.uniform(key, (), jnp.float32, low, high)

    return jax.vmap(one)(jnp.asarray(indices))


def dam_depth(radii: ArrayLike, centres: np.ndarray, inside: float, outside: float) -> np.ndarray:
    """Initial depths of circular dams about the origin: radii (B,) -> (B, X, X) float32.

    `inside` where the cell centre lies within the radius (boundary included), else `outside`.
    """
    distance = np.hypot(centres[:, None], centres[None, :])
    radii = np.asarray(radii, np.float64)[:, None, None]
    return np.where(distance <= radii, inside, outside).astype(np.float32)


def hll_flux(left: jax.Array, right: jax.Array, gravity: float) -> jax.Array:
    """HLL flux of `(h, h u_n, h u_t)` through faces from primitive states `(h, u_n, u_t)`.

    left, right: (3, ...) on either side of each face, `u_n` the velocity normal to the face
    and `u_t` the one along it. Returns (3, ...). The wave speeds are clamped to include 0,
    so one formula gives the upwind flux when all waves go one way.
    """

    def physical(w: jax.Array) -> tuple[jax.Array, jax.Array]:
        h, un, ut = w
        mass = h * un
        state = jnp.stack([h, mass, h * ut])
        flux = jnp.stack([mass, mass * un + 0.5 * gravity * h * h, mass * ut])
        return state, flux

    q_left, f_left = physical(left)
    q_right, f_right = physical(right)
    c_left, c_right = jnp.sqrt(gravity * left[0]), jnp.sqrt(gravity * right[0])
    slow = jnp.minimum(jnp.minimum(left[1] - c_left, right[1] - c_right), 0.0)
    fast = jnp.maximum(jnp.maximum(left[1] + c_left, right[1] + c_right), 0.0)
    jump = slow * fast * (q_right - q_left)
    return (fast * f_left - slow * f_right + jump) / (fast - slow)


def primitives(q: jax.Array) -> jax.Array:
    """`(h, u, v)` from the conserved `(h, h u, h v)`: (3, X, Y) -> (3, X, Y)."""
    return jnp.stack([q[0], q[1] / q[0], q[2] / q[0]])


def flux_divergence(w: jax.Array, axis: int, dx: float, gravity: float) -> jax.Array:
    """`-(F_{i+1/2} - F_{i-1/2}) / dx` along spatial `axis` (1 for x, 2 for y) of the
    primitive state w (3, X, Y): (3, X, Y), in the conserved components `(h, h u, h v)`.
    """
    if axis == 2:
        w = w[_SWAP_VELOCITIES]
    left, right = muscl_states(w, axis=axis, boundary="extrapolate")
    face = hll_flux(left, right, gravity)
    n = w.shape[axis]
    ahead = jax.lax.slice_in_dim(face, 1, n + 1, axis=axis)
    behind = jax.lax.slice_in_dim(face, 0, n, axis=axis)
    du = -(ahead - behind) / dx
    return du[_SWAP_VELOCITIES] if axis == 2 else du


def shallow_water_rhs(dx: float, gravity: float) -> Callable[[jax.Array], jax.Array]:
    """`q -> dq/dt` of the unsplit semi-discrete scheme for one sample, q (3, X, Y)."""

    def rhs(q: jax.Array) -> jax.Array:
        w = primitives(q)
        return flux_divergence(w, 1, dx, gravity) + flux_divergence(w, 2, dx, gravity)

    return rhs


def signal_speed(q: jax.Array, gravity: float) -> jax.Array:
    """`max(|u| + c) + max(|v| + c)` of one sample q (3, X, Y): the Courant number's speed."""
    h, u, v = primitives(q)
    c = jnp.sqrt(gravity * h)
    return jnp.max(jnp.abs(u) + c) + jnp.max(jnp.abs(v) + c)


def advance_interval(
    q: jax.Array, duration: float, dx: float, cfl: float, gravity: float
) -> jax.Array:
    """One sample q (3, X, Y) over `duration` in equal SSP-RK2 steps at Courant number <= `cfl`
    (at the start); NaN if that would take more than `MAX_STEPS` steps.
    """
    speed = signal_speed(q, gravity)
    # A NaN state needs no more than one step to stay NaN, nor does a blown-up one to be
    # flagged NaN below: no point taking the huge number of steps its speed asks for.
    speed = jnp.where(jnp.isfinite(speed), speed, 0.0)
    cap = MAX_STEPS * cfl * dx / duration
    blown_up = speed > cap
    steps = jnp.where(blown_up, 1, substeps(duration, jnp.minimum(speed, cap), cfl, dx))
    dt = (duration / steps).astype(q.dtype)
    step = ssp_rk2(shallow_water_rhs(dx, gravity))
    q = jax.lax.fori_loop(0, steps, lambda _, state: step(state, dt), q)
    return jnp.where(blown_up, jnp.nan, q)


@functools.partial(jax.jit, static_argnames=("dx", "frames", "interval", "cfl", "gravity"))
def solve(
    h0: jax.Array,
    *,
    dx: float,
    frames: int,
    interval: float,
    cfl: float = 0.4,
    gravity: float = 1.0,
) -> jax.Array:
    """Depths of still water released from h0 (B, X, Y): (B, T, X, Y) float32, frame 0 = h0.

    Square cells of width `dx`, open boundaries, frames `interval` apart. Each sample takes
    its own time steps (see the module docstring).
    """

    def one(h: jax.Array) -> jax.Array:
        def save(q: jax.Array, _) -> tuple[jax.Array, jax.Array]:
            q = advance_interval(q, interval, dx, cfl, gravity)
            return q, q[0]

        q0 = jnp.stack([h, jnp.zeros_like(h), jnp.zeros_like(h)])
        _, later = jax.lax.scan(save, q0, None, length=frames - 1)
        return jnp.concatenate([h[None], later])

    return jax.vmap(one)(jnp.asarray(h0, jnp.float32))


class NoParameters(StrictModel):
    """The radial dam break has no physical parameter to sweep: `parameters: {}`, one file."""


class RadialDamSpec(StrictModel):
    """PDEBench's dam: depth `inside` within radius r ~ U(radius), `outside` beyond, at rest."""

    seed: int = 0
    """Sample `i`'s radius draws from `fold_in(key(seed), i)`, whatever the batch."""
    radius: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = (0.3, 0.7)
    """`[low, high]`: the dam's radius about the origin is drawn from `U(low, high)`."""
    inside: Annotated[float, Field(gt=0)] = 2.0
    """The water's depth within the radius."""
    outside: Annotated[float, Field(gt=0)] = 1.0
    """The water's depth beyond the radius."""

    @model_validator(mode="after")
    def _ordered(self) -> RadialDamSpec:
        if self.radius[1] < self.radius[0]:
            raise ValueError(f"radius: expected [low, high] with low <= high, found {self.radius}")
        return self


class ShallowWaterSolverSpec(StrictModel):
    """The finite-volume solver's adaptive time steps."""

    cfl: Annotated[float, Field(gt=0, le=0.5)] = 0.4
    """The Courant number `dt (max(|u| + c) + max(|v| + c)) / dx` of the adaptive steps, for
    the state at each save interval's start."""


class ShallowWaterRecipe(StrictModel):
    """Recipe of `pde: swe2d`: one `.h5` file of per-sample groups (PDEBench's radial dam break)."""

    pde: Literal["swe2d"]
    """Selects this recipe kind."""
    parameters: NoParameters = NoParameters()
    """Nothing to sweep: `{}`, one file."""
    file_name: str = "2D_rdb_NA_NA.h5"
    """The file's name (no placeholders: nothing is swept)."""
    samples: Annotated[int, Field(ge=1)] = 100
    """Trajectories in the file."""
    chunk: Annotated[int, Field(ge=1)] = 8
    """Samples solved together; each keeps its own time steps, so files do not depend on
    it."""
    resolution: Annotated[int, Field(ge=8)] = 128
    """Cells per axis of the square `[-extent, extent]^2`."""
    extent: Annotated[float, Field(gt=0)] = 2.5
    """Half the side of the square domain `[-extent, extent]^2` (PDEBench's 2.5)."""
    gravity: Annotated[float, Field(gt=0)] = 1.0
    """The gravitational acceleration `g` (PDEBench's 1)."""
    time: TimeSpec = TimeSpec(t_end=1.0, frames=101)
    """The saved frames."""
    initial_condition: RadialDamSpec = RadialDamSpec()
    """The radial dam."""
    solver: ShallowWaterSolverSpec = ShallowWaterSolverSpec()
    """The time stepping."""

    @model_validator(mode="after")
    def _consistent(self) -> ShallowWaterRecipe:
        check_file_name(self.file_name, self.parameters.model_dump())
        return self

    @property
    def centres(self) -> np.ndarray:
        """Cell centres of each axis: (resolution,) float64."""
        return cell_centres(self.resolution, self.extent)

    def sweep(self) -> list[dict[str, float]]:
        """One file, with no parameter values."""
        return parameter_sweep(self.parameters.model_dump())

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines the file's contents, as canonical JSON (not `chunk`)."""
        settings = self.model_dump(exclude={"parameters", "file_name", "chunk"})
        settings.update(parameters=values)
        return json.dumps(settings, sort_keys=True)

    def radii(self, indices: np.ndarray) -> np.ndarray:
        """Dam radii of samples `indices` (B,): (B,) float32."""
        ic = self.initial_condition
        low, high = ic.radius
        return np.asarray(sample_radii(ic.seed, indices, low=low, high=high))

    def solve(self, values: dict[str, float], indices: np.ndarray) -> np.ndarray:
        """Depth trajectories of samples `indices` (B,): (B, T, X, Y) float32."""
        ic = self.initial_condition
        h0 = dam_depth(self.radii(indices), self.centres, ic.inside, ic.outside)
        out = solve(
            h0,
            dx=2 * self.extent / self.resolution,
            frames=self.time.frames,
            interval=self.time.t_end / (self.time.frames - 1),
            cfl=self.solver.cfl,
            gravity=self.gravity,
        )
        return np.asarray(out, dtype=np.float32)

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve every sample into `target` atomically, in PDEBench's per-sample groups.

        Groups `0000`, `0001`, ... hold `data` (T, X, Y, 1) float32 (the depth h), `grid/x`,
        `grid/y` (the cell centres) and `grid/t` (T,), and the attribute `radius` (the dam's);
        file attributes `boundary` (open), `pde`, `gravity` and `generator` (the settings).
        `advance(k)` is told of every k samples.

        Raises:
            RecipeError: a sample whose trajectory has NaN/Inf; nothing is written then.
        """
        centres = self.centres.astype(np.float32)
        times = np.linspace(0.0, self.time.t_end, self.time.frames).astype(np.float32)
        with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
            f.attrs.update(values)
            f.attrs.update(boundary="open", pde=self.pde, gravity=self.gravity)
            blocks = solved_chunks(
                self.solve,
                values,
                samples=self.samples,
                chunk=self.chunk,
                target=target,
                pde=self.pde,
                remedy="a smaller solver.cfl",
            )
            grid = {"x": centres, "y": centres, "t": times}
            fields = ((first, block[..., None]) for first, block in blocks)  # the depth h
            write_sample_groups(f, fields, grid, advance, lambda i: {"radius": self.radii(i)})
            f.attrs["generator"] = self.file_settings(values)
