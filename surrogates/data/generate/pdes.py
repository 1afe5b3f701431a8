"""The 1D periodic PDEs of PDEBench's single-file sets and their batched, compiled solvers.

Every solver takes a batch of initial states (B, N) on the cell centres of a periodic grid and
returns the trajectories (B, T, N) at `T` equally spaced save times starting at t = 0. PDE
parameters are traced, so one compilation serves a whole parameter sweep; grid sizes, frame
counts and solver options are static.

- Advection `u_t + beta u_x = 0`: exact (the initial condition evaluated at `x - beta t`) or
  MUSCL-upwind finite volumes.
- Burgers `u_t + (u^2 / 2)_x = (Nu / pi) u_xx`: the viscosity is `Nu / pi`, as in PDEBench,
  so files carry PDEBench's `Nu`. Convection by MUSCL (MC limiter) with the Rusanov flux and
  SSP-RK2; viscosity explicit where that is cheap, else by the exact heat operator in Fourier
  space, Strang-split around the convection, so the step follows the convective CFL alone (an
  explicit viscous term would need `dt ~ dx^2 pi / Nu`, a million steps at Nu = 4).
- Reaction-diffusion `u_t = Nu u_xx + rho u (1 - u)`: Strang splitting of the exact logistic
  reaction and the exact heat operator; second order in time, spectral in space.

The fluxes and the logistic step are `surrogates.physics.equations`', which the
physics-informed problems' residuals use too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.data.generate.finite_volume import (
    Operator,
    conservation_rhs,
    heat,
    ssp_rk2,
    strang,
    substeps,
    trajectory,
)
from surrogates.data.generate.initial_conditions import SumOfSines
from surrogates.physics import equations


@dataclass(frozen=True)
class Grid:
    """A periodic 1D grid of `cells` cells on `[x_min, x_min + length)`."""

    cells: int
    x_min: float = 0.0
    length: float = 1.0

    @property
    def dx(self) -> float:
        return self.length / self.cells

    @property
    def centres(self) -> np.ndarray:
        """Cell centres `x_min + (i + 1/2) dx`: (N,) float64."""
        return self.x_min + (np.arange(self.cells) + 0.5) * self.dx


@functools.partial(jax.jit, static_argnames=("grid", "frames", "interval"))
def advection_exact(
    ic: SumOfSines, beta: jax.Array, *, grid: Grid, frames: int, interval: float
) -> jax.Array:
    """Exact advection of an analytic initial condition: (B, T, N), periodic wrap-around."""
    times = interval * jnp.arange(frames)
    shifted = jnp.asarray(grid.centres, times.dtype) - beta * times[:, None]
    return ic(grid.x_min + jnp.mod(shifted - grid.x_min, grid.length))


@functools.partial(jax.jit, static_argnames=("grid", "frames", "interval", "cfl"))
def advection_muscl(
    u0: jax.Array, beta: jax.Array, *, grid: Grid, frames: int, interval: float, cfl: float
) -> jax.Array:
    """MUSCL-upwind advection: (B, N) -> (B, T, N). The Rusanov flux is upwind here."""
    flux = functools.partial(equations.advection_flux, beta=beta)
    step = ssp_rk2(conservation_rhs(flux, lambda u: jnp.abs(beta), grid.dx))
    n = substeps(interval, jnp.abs(beta), cfl, grid.dx)
    dt = interval / n

    def advance(u: jax.Array) -> jax.Array:
        return jax.lax.fori_loop(0, n, lambda _, v: step(v, dt), u)

    return trajectory(advance, u0, frames)


# With explicit viscosity, SSP-RK2 on upwind convection plus central diffusion is stable for
# `c + 2 d <= 1` (Courant number c, diffusion number d = viscosity dt / dx^2, the symbol's
# worst case being the grid-scale mode); this keeps a 10% margin.
_EXPLICIT_STABILITY = 0.9
# A split step (two real FFTs on top of a convective step) costs about this many explicit
# steps on CPU; the cheaper of the two schemes is taken for each save interval.
_SPLIT_STEP_COST = 2.5


@functools.partial(jax.jit, static_argnames=("grid", "frames", "interval", "cfl", "viscous_scheme"))
def burgers(
    u0: jax.Array,
    nu: jax.Array,
    *,
    grid: Grid,
    frames: int,
    interval: float,
    cfl: float,
    viscous_scheme: str = "auto",
) -> jax.Array:
    """Viscous Burgers with viscosity `nu / pi`: (B, N) -> (B, T, N).

    Two second-order schemes: `explicit`, SSP-RK2 with the viscous term by central
    differences, and `split`, Strang splitting of the convection around the exact heat
    operator, whose step follows the convective CFL alone. `auto` takes the cheaper one for
    each save interval. The steps come from the batch's largest |u|, which neither scheme lets
    grow, so they stay within the limits for the whole interval.
    """
    viscosity = nu / jnp.pi
    flux, dx = equations.burgers_flux, grid.dx
    explicit = ssp_rk2(conservation_rhs(flux, jnp.abs, dx, viscosity))
    convect = ssp_rk2(conservation_rhs(flux, jnp.abs, dx))
    diffuse = heat(viscosity, grid.length)

    def advance(u: jax.Array) -> jax.Array:
        speed = jnp.max(jnp.abs(u))
        n_split = substeps(interval, speed, cfl, dx)
        n_stable = substeps(interval, speed + 2 * viscosity / dx, _EXPLICIT_STABILITY, dx)
        n_explicit = jnp.maximum(n_split, n_stable)

        def explicit_steps(v: jax.Array) -> jax.Array:
            dt = interval / n_explicit
            return jax.lax.fori_loop(0, n_explicit, lambda _, w: explicit(w, dt), v)

        def split_steps(v: jax.Array) -> jax.Array:
            return strang(diffuse, convect, v, interval / n_split, n_split)

        if viscous_scheme == "explicit":
            return explicit_steps(u)
        if viscous_scheme == "split":
            return split_steps(u)
        cheaper_explicit = n_explicit <= _SPLIT_STEP_COST * n_split
        return jax.lax.cond(cheaper_explicit, explicit_steps, split_steps, u)

    return trajectory(advance, u0, frames)


def logistic(rho: jax.Array) -> Operator:
    """Exact solution operator of `u_t = rho u (1 - u)`: `(u, dt) -> u(t + dt)`."""

    def step(u: jax.Array, dt: jax.Array) -> jax.Array:
        return equations.logistic_step(u, rho, dt)

    return step


@functools.partial(jax.jit, static_argnames=("grid", "frames", "interval", "steps_per_frame"))
def reaction_diffusion(
    u0: jax.Array,
    nu: jax.Array,
    rho: jax.Array,
    *,
    grid: Grid,
    frames: int,
    interval: float,
    steps_per_frame: int,
) -> jax.Array:
    """Fisher-KPP reaction-diffusion: (B, N) in [0, 1] -> (B, T, N)."""
    react, diffuse = logistic(rho), heat(nu, grid.length)
    dt = interval / steps_per_frame

    def advance(u: jax.Array) -> jax.Array:
        return strang(react, diffuse, u, dt, steps_per_frame)

    return trajectory(advance, u0, frames)
