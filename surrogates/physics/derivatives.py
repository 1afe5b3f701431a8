"""Derivatives of pointwise functions `u: (d,) -> (n_out,)` at one point, by forward mode.

A k-th partial derivative is k nested Jacobian-vector products along coordinate axes: no
Jacobian matrix is formed and no reverse pass is taped, which is the cheap way for the few
input coordinates of a physics-informed model. Vectorise over points with `jax.vmap`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from surrogates.physics.problem import Box, Condition, PointFunction, periodic


def along(u: PointFunction, axis: int) -> PointFunction:
    """The function `p -> du/dp[axis] (p)`, by one JVP."""

    def derivative(point: jax.Array) -> jax.Array:
        direction = jnp.zeros_like(point).at[axis].set(1)
        return jax.jvp(u, (point,), (direction,))[1]

    return derivative


def partial(u: PointFunction, point: jax.Array, *axes: int) -> jax.Array:
    """d^k u / dp[axes[0]] ... dp[axes[-1]] at `point`: (n_out,). `partial(u, p)` is `u(p)`."""
    for axis in axes:
        u = along(u, axis)
    return u(point)


def value_and_partials(
    u: PointFunction, point: jax.Array, axis: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(u, du/dp[axis], d2u/dp[axis]^2)` at `point`, sharing the inner JVP's primal."""
    first = along(u, axis)
    direction = jnp.zeros_like(point).at[axis].set(1)
    (value, slope), (_, curvature) = jax.jvp(lambda p: (u(p), first(p)), (point,), (direction,))
    return value, slope, curvature


def laplacian(u: PointFunction, point: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """The sum of the second derivatives of `u` along `axes` at `point`: (n_out,)."""
    return sum(partial(u, point, axis, axis) for axis in axes)


def chain_rule(
    f: Callable[[jax.Array], jax.Array], value: jax.Array, slope: jax.Array
) -> jax.Array:
    """`d f(u) / dp = f'(u) du/dp` from `u`'s `value` and `slope` at a point, by one JVP of `f`:
    the derivative of a flux or reaction term from its pointwise definition
    (`surrogates.physics.equations`) without another pass through the model."""
    return jax.jvp(f, (value,), (slope,))[1]


def periodic_slope(domain: Box, axis: str, name: str = "boundary") -> Condition:
    """`du/d axis` equal on the faces `axis = lower` and `axis = upper`: with `periodic`, the
    two conditions a second-order (diffusive) term needs on a periodic coordinate."""
    values = periodic(domain, axis, name)
    i = domain.axis(axis)
    return Condition(name, values.region, lambda u, p: values.residual(along(u, i), p))
