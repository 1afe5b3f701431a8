"""PDE terms shared by the physics-informed problems and the data generators.

One definition per term, so that a problem's residual and a generator's solver describe the
same equation: the generators (`surrogates.data.generate.pdes`, `...diffusion_reaction`)
take their fluxes and reactions from here, as do `surrogates.physics`' problems. Every
function is elementwise on arrays of any shape (jnp or traced), and keeps the expression the
solvers were written with, so their numerics are unchanged to the bit.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike


def advection_flux(u: ArrayLike, beta: ArrayLike) -> ArrayLike:
    """The flux of linear advection `u_t + (beta u)_x = 0`: `beta u`."""
    return beta * u


def burgers_flux(u: ArrayLike) -> ArrayLike:
    """The flux of inviscid Burgers `u_t + (u^2 / 2)_x = 0`: `u^2 / 2`."""
    return 0.5 * u * u


def logistic(u: ArrayLike, rho: ArrayLike) -> ArrayLike:
    """The logistic (Fisher-KPP) reaction `rho u (1 - u)`: `u_t = logistic(u, rho)` grows
    towards 1 from anywhere in (0, 1)."""
    return rho * u * (1 - u)


def logistic_step(u: ArrayLike, rho: ArrayLike, dt: ArrayLike) -> ArrayLike:
    """The exact solution of `u_t = logistic(u, rho)` after a time `dt` from `u`:
    `u e^{rho dt} / (1 - u + u e^{rho dt})`."""
    growth = jnp.exp(rho * dt)
    return u * growth / (1 - u + u * growth)


def bistable(u: ArrayLike) -> ArrayLike:
    """The cubic bistable reaction `u - u^3` (stable states -1 and 1): Allen-Cahn's
    `rate (u - u^3)` and FitzHugh-Nagumo's `u - u^3 - k - v`."""
    return u - u**3
