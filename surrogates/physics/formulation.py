"""Loss terms of physics-informed training: what a model's output must satisfy, pointwise.

A `Term` is a residual drawn on a region: the PDE on the domain, or a condition on a face.
Two formulations turn a problem into terms:

- Eulerian (a PINN, PIG): the model is the solution `u(t, x)`; its terms are the problem's
  residual and conditions.
- Lagrangian (LPINN, Mojgani et al. 2023): the model maps `(t, xi)`, the time and the
  starting position of a characteristic, to the state on it and its position,
  `(u, X)(t, xi)`. The PDE `u_t + F(u) u_x = nu u_xx` splits into `X_t = F(u)` (the
  `characteristics` term) and `u_t = nu u_xx` along them (the `residual` term), with
  `X(0, xi) = xi` and `u(0, xi) = u0(xi)`. The second derivative in x is taken along the
  map, `u_xx = (u_xixi X_xi - u_xi X_xixi) / X_xi^3`: exact for any flow. The reference code
  takes `u_xixi`, exact only when `X_xi = 1` (pure convection). The residual is the PDE
  times `X_xi^3`, `X_xi^3 u_t - nu (u_xixi X_xi - u_xi X_xixi)`: the same where the flow
  does not stretch, and finite where a flow in training folds (`X_xi` through 0), where the
  divided form gave losses of 1e25.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from surrogates.physics.derivatives import along, partial
from surrogates.physics.problem import Box, PointFunction, Problem

Residual = Callable[[PointFunction, jax.Array], jax.Array]


@dataclass(frozen=True)
class Term:
    """`residual(f, point) -> (k,)` should vanish at points of `region`; `f` is the model's
    output function `(d,) -> (n_out,)`. `causal`: a residual over time, which causal
    weighting may order."""

    name: str
    region: Box
    residual: Residual
    causal: bool = False


@dataclass(frozen=True)
class LagrangianForm:
    """What the Lagrangian formulation needs of a 1D evolution problem `(t, x)`:
    `u_t + velocity(u) u_x = diffusion * u_xx`, periodic in x with `period`, from
    `initial(point) -> (1,)` at t = 0."""

    velocity: Callable[[jax.Array], jax.Array]
    diffusion: float
    period: float
    initial: Callable[[jax.Array], jax.Array]


@runtime_checkable
class HasLagrangianForm(Protocol):
    """A problem a Lagrangian model (LPINN) can solve."""

    def lagrangian(self) -> LagrangianForm: ...


def eulerian_terms(problem: Problem) -> list[Term]:
    """The problem's residual on its domain and each of its conditions."""
    terms = [Term("residual", problem.domain, problem.residual, causal=problem.time_dependent)]
    terms += [Term(c.name, c.region, c.residual) for c in problem.conditions()]
    return terms


def lagrangian_terms(problem: Problem, form: LagrangianForm) -> list[Term]:
    """LPINN's terms for a model `f(t, xi) = (u, X)`: characteristics, the diffusion along
    them, and the initial state and positions. No boundary term: the model embeds xi
    periodically."""
    domain = problem.domain

    def characteristics(f: PointFunction, point: jax.Array) -> jax.Array:
        position_rate = partial(_position(f), point, 0)
        return position_rate - form.velocity(_state(f)(point))

    def diffusion(f: PointFunction, point: jax.Array) -> jax.Array:
        u, x = _state(f), _position(f)
        rate = partial(u, point, 0)
        if form.diffusion == 0:
            return rate
        # X_xi^3 (u_t - nu u_xx), with u_xx = (u_xixi X_xi - u_xi X_xixi) / X_xi^3.
        u_xi, x_xi = along(u, 1), along(x, 1)
        stretch = x_xi(point)
        bend = partial(u_xi, point, 1) * stretch - u_xi(point) * partial(x_xi, point, 1)
        return stretch**3 * rate - form.diffusion * bend

    def initial(f: PointFunction, point: jax.Array) -> jax.Array:
        values = f(point)
        return jnp.concatenate([values[0:1] - form.initial(point), values[1:2] - point[1:2]])

    return [
        Term("residual", domain, diffusion, causal=True),
        Term("characteristics", domain, characteristics),
        Term("initial", domain.face("t", "lower"), initial),
    ]


def _state(f: PointFunction) -> PointFunction:
    return lambda p: f(p)[0:1]


def _position(f: PointFunction) -> PointFunction:
    return lambda p: f(p)[1:2]
