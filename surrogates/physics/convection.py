"""Convection `u_t + beta u_x = 0` and convection-diffusion `u_t + beta u_x - nu u_xx = 0` on
x in [0, 2 pi) periodic, t in [0, 1], u0 = sin x.

Krishnapriyan et al. (2021)'s failure mode: a plain PINN trained on the residual fails for
beta >= 30. The exact solutions are `sin(x - beta t)` and `e^{-nu t} sin(x - beta t)`; the
reference of convection-diffusion is nevertheless computed as theirs is, mode by mode in
Fourier space from the sampled initial condition (`fourier_convection_diffusion`), which a
test holds against the closed forms.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.physics.derivatives import chain_rule, partial, periodic_slope, value_and_partials
from surrogates.physics.equations import advection_flux
from surrogates.physics.formulation import LagrangianForm
from surrogates.physics.problem import (
    Condition,
    PeriodicEvolution,
    PointFunction,
    check_parameter,
    on_grid,
    register_problem,
)

TWO_PI = 2 * math.pi


@register_problem("convection")
@dataclass(frozen=True)
class Convection(PeriodicEvolution):
    """u_t + beta u_x = 0, x in [0, 2 pi) periodic, t in [0, 1], u(0, x) = sin x."""

    beta: float = 30.0

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        # The flux form (beta u)_x, one JVP through the model and the flux together.
        flux = partial(lambda p: advection_flux(u(p), self.beta), point, 1)
        return partial(u, point, 0) + flux

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x): (1,)."""
        return jnp.sin(point[1:2])

    def exact(self, point: jax.Array) -> jax.Array:
        t, x = point[0], point[1]
        return jnp.sin(x - self.beta * t)[None]

    def lagrangian(self) -> LagrangianForm:
        """Characteristics at the flux's speed `beta`, diffusion `nu` along them (none here)."""
        return LagrangianForm(
            velocity=lambda u: chain_rule(
                lambda v: advection_flux(v, self.beta), u, jnp.ones_like(u)
            ),
            diffusion=0.0,
            period=TWO_PI,
            initial=self.initial,
        )


def fourier_convection_diffusion(
    u0: np.ndarray, times: np.ndarray, beta: float, nu: float, length: float = TWO_PI
) -> np.ndarray:
    """The exact solution of `u_t + beta u_x = nu u_xx` from the trigonometric interpolant of
    `u0`, samples (N,) on the periodic grid `length * arange(N) / N`, at `times` (T,):
    (T, N) float64. Mode k evolves as `u0_k exp(-nu k^2 t - i beta k t)`."""
    n = u0.shape[-1]
    k = 2 * np.pi * np.fft.fftfreq(n, d=length / n)
    t = np.asarray(times, np.float64)[:, None]
    modes = np.fft.fft(np.asarray(u0, np.float64)) * np.exp(-(nu * k**2 + 1j * beta * k) * t)
    # The real part: the Nyquist mode's shift is one-sided in `fftfreq`'s convention.
    return np.fft.ifft(modes, axis=-1).real


@register_problem("convection_diffusion")
@dataclass(frozen=True)
class ConvectionDiffusion(Convection):
    """u_t + beta u_x - nu u_xx = 0, x in [0, 2 pi) periodic, t in [0, 1], u(0, x) = sin x."""

    beta: float = 30.0
    nu: float = 0.01

    def __post_init__(self) -> None:
        check_parameter(self, "nu", self.nu >= 0, "nu >= 0")

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        value, slope, curvature = value_and_partials(u, point, 1)
        flux = chain_rule(lambda v: advection_flux(v, self.beta), value, slope)
        return partial(u, point, 0) + flux - self.nu * curvature

    def lagrangian(self) -> LagrangianForm:
        return dataclasses.replace(super().lagrangian(), diffusion=self.nu)

    def conditions(self) -> tuple[Condition, ...]:
        # Diffusion is second order in x: u and u_x both match across the period.
        return (*super().conditions(), periodic_slope(self.domain, "x"))

    def exact(self, point: jax.Array) -> jax.Array:
        t, x = point[0], point[1]
        return (jnp.exp(-self.nu * t) * jnp.sin(x - self.beta * t))[None]

    def reference(self) -> np.ndarray:
        grid = self.evaluation_grid()
        u0 = on_grid(self.initial, {"t": np.zeros(1), "x": grid["x"]})[0, :, 0]
        return fourier_convection_diffusion(u0, grid["t"], self.beta, self.nu)[..., None]
