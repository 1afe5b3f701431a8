"""Flow mixing, `u_t + a u_x + b u_y = 0` on t in [0, 4], x, y in [-4, 4]: a vortex winds the
front `u0 = -tanh(y / 2)` into a spiral (PIG's and SPINN's benchmark).

The velocity is a rotation about the origin with angular speed omega(r):

    v_t = sech^2(r) tanh(r),  omega = v_t / (r v_max),  (a, b) = omega (-y, x),

(the papers' `a = -(v_t / v_max)(y / r)`, `b = (v_t / v_max)(x / r)`), so every point keeps
its radius and the exact solution is u0 rotated back by omega t:

    u = -tanh((y / 2) cos(omega t) - (x / 2) sin(omega t)).

`v_t / r` is taken from its Taylor series near r = 0 (`swirl`), so omega, the residual and
their derivatives stay finite and smooth at the vortex's centre.
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
    check_parameter,
    dirichlet,
    on_grid,
    register_problem,
)

# Below this r^2 (r < 1e-3), sech^2(r) tanh(r) / r is its Taylor series
# 1 - 4 r^2 / 3 + 17 r^4 / 15 to within 0.8 r^6 < 1e-18.
_SERIES_BELOW = 1e-6


def swirl(r2: jax.Array) -> jax.Array:
    """sech^2(r) tanh(r) / r = v_t / r as a function of r^2, smooth through r = 0 (value 1).

    Both branches of the `where` are evaluated and differentiated: the series is finite
    everywhere, and the closed form's r is kept away from 0 (where sqrt's derivative is
    infinite), so no NaN leaks into values or derivatives.
    """
    small = r2 < _SERIES_BELOW
    r = jnp.sqrt(jnp.where(small, 1.0, r2))
    series = 1 - 4 * r2 / 3 + 17 * r2**2 / 15
    return jnp.where(small, series, jnp.tanh(r) / (r * jnp.square(jnp.cosh(r))))


@register_problem("flow_mixing")
@dataclass(frozen=True)
class FlowMixing(Problem):
    """u_t + a u_x + b u_y = 0 on [0, 4] x [-4, 4]^2 with (a, b) = omega(r) (-y, x)."""

    v_max: float = 0.385

    def __post_init__(self) -> None:
        check_parameter(self, "v_max", self.v_max > 0, "v_max > 0")

    @property
    def domain(self) -> Box:
        return Box(("t", "x", "y"), (0.0, -4.0, -4.0), (4.0, 4.0, 4.0))

    def angular_speed(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """omega = sech^2(r) tanh(r) / (r v_max), 1 / v_max at r = 0."""
        return swirl(x**2 + y**2) / self.v_max

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        x, y = point[1], point[2]
        omega = self.angular_speed(x, y)
        # (a, b) . grad u with (a, b) = omega (-y, x).
        drift = -y * partial(u, point, 1) + x * partial(u, point, 2)
        return partial(u, point, 0) + omega * drift

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x, y) = -tanh(y / 2): (1,)."""
        return -jnp.tanh(point[2:3] / 2)

    def exact(self, point: jax.Array) -> jax.Array:
        t, x, y = point[0], point[1], point[2]
        angle = self.angular_speed(x, y) * t
        return -jnp.tanh(y / 2 * jnp.cos(angle) - x / 2 * jnp.sin(angle))[None]

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain
        faces = [domain.face(axis, side) for axis in ("x", "y") for side in ("lower", "upper")]
        return (
            dirichlet("initial", domain.face("t", "lower"), self.initial),
            *(dirichlet("boundary", face, self.exact) for face in faces),
        )

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        # Modest: 21 times (every 0.2) by 64 x 64 positions.
        space = np.linspace(-4.0, 4.0, 64)
        return {"t": np.linspace(0.0, 4.0, 21), "x": space, "y": space}

    def reference(self) -> np.ndarray:
        return on_grid(self.exact, self.evaluation_grid())
