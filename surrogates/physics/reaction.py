"""Reaction `u_t - rho u (1 - u) = 0` on x in [0, 2 pi) periodic, t in [0, 1].

Krishnapriyan et al. (2021)'s second failure mode: a logistic growth at every point from a
Gaussian bump `u0 = exp(-((x - pi) / (pi / 4))^2 / 2)`; the solution sharpens into a plateau
as rho grows. No x-derivative enters, so each point follows the logistic equation alone and
the exact solution is its closed form `u0 e^{rho t} / (u0 e^{rho t} + 1 - u0)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from surrogates.physics.derivatives import partial
from surrogates.physics.equations import logistic, logistic_step
from surrogates.physics.problem import (
    PeriodicEvolution,
    PointFunction,
    register_problem,
)


@register_problem("reaction")
@dataclass(frozen=True)
class Reaction(PeriodicEvolution):
    """u_t = rho u (1 - u), x in [0, 2 pi) periodic, t in [0, 1], Gaussian bump at x = pi."""

    rho: float = 5.0

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        return partial(u, point, 0) - logistic(u(point), self.rho)

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x) = exp(-((x - pi) / (pi / 4))^2 / 2): (1,)."""
        return jnp.exp(-0.5 * jnp.square((point[1:2] - math.pi) / (math.pi / 4)))

    def exact(self, point: jax.Array) -> jax.Array:
        return logistic_step(self.initial(point), self.rho, point[0])
