"""The nonlinear Klein-Gordon equation in 2+1 dimensions, `u_tt - u_xx - u_yy + u^2 = f`, on
t in [0, 10], x, y in [-1, 1]: PIG's and SPINN's benchmark, with the manufactured solution

    u = (x + y) cos(k t) + x y sin(k t),

so that u is linear in x and in y (u_xx = u_yy = 0), u_tt = -k^2 u and f = u^2 - k^2 u.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.physics.derivatives import laplacian, partial, value_and_partials
from surrogates.physics.problem import (
    Box,
    Condition,
    PointFunction,
    Problem,
    dirichlet,
    on_grid,
    register_problem,
)


@register_problem("klein_gordon")
@dataclass(frozen=True)
class KleinGordon(Problem):
    """u_tt - Δu + u^2 = f on [0, 10] x [-1, 1]^2, data from u = (x+y) cos kt + xy sin kt."""

    k: float = 2.0

    @property
    def domain(self) -> Box:
        return Box(("t", "x", "y"), (0.0, -1.0, -1.0), (10.0, 1.0, 1.0))

    def exact(self, point: jax.Array) -> jax.Array:
        t, x, y = point[0], point[1], point[2]
        return ((x + y) * jnp.cos(self.k * t) + x * y * jnp.sin(self.k * t))[None]

    def source(self, point: jax.Array) -> jax.Array:
        """f = u^2 - k^2 u of the exact u, by hand: (1,)."""
        u = self.exact(point)
        return u**2 - self.k**2 * u

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        value, _, acceleration = value_and_partials(u, point, 0)
        return acceleration - laplacian(u, point, (1, 2)) + value**2 - self.source(point)

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x, y) = x + y: (1,)."""
        return (point[1] + point[2])[None]

    def initial_velocity(self, point: jax.Array) -> jax.Array:
        """u_t(0, x, y) = k x y: (1,)."""
        return (self.k * point[1] * point[2])[None]

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain
        start = domain.face("t", "lower")
        faces = [domain.face(axis, side) for axis in ("x", "y") for side in ("lower", "upper")]
        return (
            dirichlet("initial", start, self.initial),
            Condition("initial", start, lambda u, p: partial(u, p, 0) - self.initial_velocity(p)),
            *(dirichlet("boundary", face, self.exact) for face in faces),
        )

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        # Modest: 21 times (every 0.5) by 64 x 64 positions.
        space = np.linspace(-1.0, 1.0, 64)
        return {"t": np.linspace(0.0, 10.0, 21), "x": space, "y": space}

    def reference(self) -> np.ndarray:
        return on_grid(self.exact, self.evaluation_grid())
