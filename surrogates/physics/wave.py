"""The 1D wave equation `u_tt = c^2 u_xx` on x in [0, 1], t in [0, 1], fixed ends, at rest
initially: PINNacle's Wave1d-C and jaxpi's PirateNet example (c = 2).

The exact solution superposes the first and fourth standing modes,

    u = sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t),

whose two scales (and the fast mode's 4 periods in time at c = 2) make it multiscale.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.physics.derivatives import partial
from surrogates.physics.problem import (
    Box,
    Condition,
    PointFunction,
    Problem,
    dirichlet,
    on_grid,
    register_problem,
)


@register_problem("wave")
@dataclass(frozen=True)
class Wave(Problem):
    """u_tt = c^2 u_xx, x in [0, 1], t in [0, 1], u(t, 0) = u(t, 1) = 0, u_t(0, x) = 0."""

    c: float = 2.0

    @property
    def domain(self) -> Box:
        return Box(("t", "x"), (0.0, 0.0), (1.0, 1.0))

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        return partial(u, point, 0, 0) - self.c**2 * partial(u, point, 1, 1)

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x) = sin(pi x) + 0.5 sin(4 pi x): (1,)."""
        x = point[1:2]
        return jnp.sin(jnp.pi * x) + 0.5 * jnp.sin(4 * jnp.pi * x)

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain
        start = domain.face("t", "lower")

        def zero(point: jax.Array) -> jax.Array:
            return jnp.zeros(1, point.dtype)

        return (
            dirichlet("initial", start, self.initial),
            # Second order in time: the initial velocity too (at rest).
            Condition("initial", start, lambda u, p: partial(u, p, 0)),
            dirichlet("boundary", domain.face("x", "lower"), zero),
            dirichlet("boundary", domain.face("x", "upper"), zero),
        )

    def exact(self, point: jax.Array) -> jax.Array:
        t, x = point[0], point[1]
        slow = jnp.sin(jnp.pi * x) * jnp.cos(self.c * jnp.pi * t)
        fast = 0.5 * jnp.sin(4 * jnp.pi * x) * jnp.cos(4 * self.c * jnp.pi * t)
        return (slow + fast)[None]

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        # Time is the fast axis: 50 points per period of the fast mode at c = 2.
        return {"t": np.linspace(0.0, 1.0, 201), "x": np.linspace(0.0, 1.0, 101)}

    def reference(self) -> np.ndarray:
        return on_grid(self.exact, self.evaluation_grid())
