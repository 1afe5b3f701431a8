"""Helmholtz `Δu + k^2 u = q` on [-1, 1]^2 with Dirichlet data: PIG's (Kang et al. 2025)
headline problem, after the physics-informed literature's manufactured solution

    u = sin(a1 pi x) sin(a2 pi y),   q = (k^2 - (a1^2 + a2^2) pi^2) u.

Large a1, a2 make u oscillate, which a plain MLP struggles to fit; (1, 4) is the default,
(10, 10) the hard case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.physics.derivatives import laplacian
from surrogates.physics.problem import (
    Box,
    Condition,
    PointFunction,
    Problem,
    dirichlet,
    on_grid,
    register_problem,
)


@register_problem("helmholtz")
@dataclass(frozen=True)
class Helmholtz(Problem):
    """Δu + k^2 u = q on [-1, 1]^2, u = sin(a1 pi x) sin(a2 pi y) on the boundary and inside."""

    k: float = 1.0
    a1: float = 1.0
    a2: float = 4.0

    @property
    def domain(self) -> Box:
        return Box(("x", "y"), (-1.0, -1.0), (1.0, 1.0))

    def exact(self, point: jax.Array) -> jax.Array:
        x, y = point[0], point[1]
        return (jnp.sin(self.a1 * jnp.pi * x) * jnp.sin(self.a2 * jnp.pi * y))[None]

    def source(self, point: jax.Array) -> jax.Array:
        """q = Δu + k^2 u of the exact u, by hand: (1,)."""
        frequency = (self.a1**2 + self.a2**2) * math.pi**2
        return (self.k**2 - frequency) * self.exact(point)

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        return laplacian(u, point, (0, 1)) + self.k**2 * u(point) - self.source(point)

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain
        return tuple(
            dirichlet("boundary", domain.face(axis, side), self.exact)
            for axis in domain.names
            for side in ("lower", "upper")
        )

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        return {"x": np.linspace(-1.0, 1.0, 256), "y": np.linspace(-1.0, 1.0, 256)}

    def reference(self) -> np.ndarray:
        return on_grid(self.exact, self.evaluation_grid())
