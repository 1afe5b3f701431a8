"""Viscous Burgers `u_t + u u_x - nu u_xx = 0` on x in [-1, 1], t in [0, 1], from
u0 = -sin(pi x) with u(t, -1) = u(t, 1) = 0 (Raissi et al. 2019; nu = 0.01 / pi).

A shock forms at x = 0 near t = 1 / pi, about nu wide. The reference is exact up to
quadrature: the Cole-Hopf transform turns Burgers into the heat equation, whose solution is a
Gaussian convolution (Basdevant et al. 1986),

    u(t, x) = -∫ sin(pi (x - η)) f(x - η) G(η) dη / ∫ f(x - η) G(η) dη,
    f(y) = exp(-cos(pi y) / (2 pi nu)),  G(η) = exp(-η^2 / (4 nu t)),

and η = sqrt(4 nu t) z makes both integrals Gauss-Hermite ones in z (`cole_hopf`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import roots_hermite

from surrogates.physics.derivatives import chain_rule, partial, value_and_partials
from surrogates.physics.equations import burgers_flux
from surrogates.physics.formulation import LagrangianForm
from surrogates.physics.problem import (
    Box,
    Condition,
    PointFunction,
    Problem,
    check_parameter,
    dirichlet,
    register_problem,
)

# Gauss-Hermite nodes of the default reference. At nu = 0.01 / pi on the evaluation grid, 20,
# 40 and 80 nodes are off by 0.24, 3e-5 and 8e-14, and 128 agree with 400 to 2e-15; smaller
# nu (a sharper integrand) needs more.
QUADRATURE_POINTS = 128


def cole_hopf(
    times: np.ndarray, positions: np.ndarray, nu: float, quadrature_points: int = QUADRATURE_POINTS
) -> np.ndarray:
    """Burgers' solution from u0 = -sin(pi x) by the Cole-Hopf integrals with
    `quadrature_points` Gauss-Hermite nodes: times (T,), positions (X,) -> (T, X) float64.

    f spans exp(±1 / (2 pi nu)) (e^±50 at the default nu), so the weighted terms are scaled
    by their largest before summing, as in a log-sum-exp: the ratio is unchanged and nothing
    overflows. Rows at t = 0 are the initial condition itself.
    """
    z, w = roots_hermite(quadrature_points)
    # Far nodes' weights underflow to 0 in float64; they carry nothing.
    z, log_w = z[w > 0], np.log(w[w > 0])
    x = np.asarray(positions, np.float64)[:, None]
    rows = []
    for t in np.asarray(times, np.float64):
        if t == 0:
            rows.append(-np.sin(np.pi * x[:, 0]))
            continue
        y = x - math.sqrt(4 * nu * t) * z
        log_terms = log_w - np.cos(np.pi * y) / (2 * np.pi * nu)
        terms = np.exp(log_terms - log_terms.max(axis=1, keepdims=True))
        rows.append(-np.sum(np.sin(np.pi * y) * terms, axis=1) / np.sum(terms, axis=1))
    return np.stack(rows)


@register_problem("burgers")
@dataclass(frozen=True)
class Burgers(Problem):
    """u_t + (u^2 / 2)_x = nu u_xx, x in [-1, 1], t in [0, 1], u0 = -sin(pi x), u(t, ±1) = 0."""

    nu: float = 0.01 / math.pi

    def __post_init__(self) -> None:
        check_parameter(self, "nu", self.nu > 0, "nu > 0")

    @property
    def domain(self) -> Box:
        return Box(("t", "x"), (0.0, -1.0), (1.0, 1.0))

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        value, slope, curvature = value_and_partials(u, point, 1)
        flux = chain_rule(burgers_flux, value, slope)
        return partial(u, point, 0) + flux - self.nu * curvature

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x) = -sin(pi x): (1,)."""
        return -jnp.sin(jnp.pi * point[1:2])

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain

        def zero(point: jax.Array) -> jax.Array:
            return jnp.zeros(1, point.dtype)

        return (
            dirichlet("initial", domain.face("t", "lower"), self.initial),
            dirichlet("boundary", domain.face("x", "lower"), zero),
            dirichlet("boundary", domain.face("x", "upper"), zero),
        )

    def lagrangian(self) -> LagrangianForm:
        """Characteristics at the flux's speed `u`. u0 = -sin(pi x) is odd and 2-periodic, so
        the periodic solution on [-1, 1) vanishes at x = ±1: the Dirichlet problem's."""
        return LagrangianForm(
            velocity=lambda u: chain_rule(burgers_flux, u, jnp.ones_like(u)),
            diffusion=self.nu,
            period=2.0,
            initial=self.initial,
        )

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        return {"t": np.linspace(0.0, 1.0, 101), "x": np.linspace(-1.0, 1.0, 256)}

    def reference(self, quadrature_points: int = QUADRATURE_POINTS) -> np.ndarray:
        grid = self.evaluation_grid()
        return cole_hopf(grid["t"], grid["x"], self.nu, quadrature_points)[..., None]
