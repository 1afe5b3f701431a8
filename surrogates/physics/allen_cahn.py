"""Allen-Cahn `u_t - d u_xx - r (u - u^3) = 0` on x in [-1, 1) periodic, t in [0, 1], from
u0 = x^2 cos(pi x): jaxpi's setting (d = 1e-4, r = 5, i.e. `u_t - 1e-4 u_xx + 5 u^3 - 5 u`).

The solution settles into plateaus at ±1 joined by fronts `sqrt(2 d / r)` (6e-3) wide. The
reference is Fourier pseudo-spectral in x and ETDRK4 in time (Cox and Matthews 2002) with
Kassam and Trefethen's (2005) contour-integral coefficients (`spectral_solve`).

u0 is periodic but its slope is not (u0'(±1) = ∓2): the kink is smoothed by diffusion only
through a layer `sqrt(d t)` wide. Sampling u0 on the solver's grid would alias the kink's
slowly decaying modes into the low ones for good (an error ~1/N^2 that never decays: 6e-6
with 16384 modes), so the initial spectrum is taken from u0 on a much finer grid and
truncated. The default reference (4096 modes, dt = 2.5e-3, about a second) is then within
5e-9 of one with 8192 modes and dt = 6.25e-4 at t = 0.005, where the kink's layer is
thinnest, and within 1e-9 from t = 0.01 on (relative L2 error 1.5e-10).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.physics.derivatives import partial, periodic_slope, value_and_partials
from surrogates.physics.equations import bistable
from surrogates.physics.problem import (
    Box,
    Condition,
    PointFunction,
    Problem,
    check_parameter,
    dirichlet,
    on_grid,
    periodic,
    register_problem,
)

# The domain [-1, 1), period 2.
LOW, LENGTH = -1.0, 2.0
# The default reference: spectral modes (grid points) and ETDRK4 steps per saved frame
# (dt = 2.5e-3); see the module docstring for its accuracy.
MODES = 4096
STEPS_PER_FRAME = 2
# u0's spectrum comes from this many times the solver's grid (see the module docstring).
OVERSAMPLING = 256
# Points on the contour of the ETDRK4 coefficients' Cauchy integrals.
CONTOUR_POINTS = 64


def etdrk4_coefficients(linear: np.ndarray, h: float) -> tuple[np.ndarray, ...]:
    """ETDRK4's multipliers for `v' = linear v + N(v)` (diagonal `linear` (K,)) and step `h`:
    `(E, E_half, Q, f1, f2, f3)`, each (K,).

    The phi-functions lose all digits to cancellation near `h linear = 0`; Kassam and
    Trefethen evaluate them as means over a unit circle around each `h linear` instead.
    """
    circle = np.exp(1j * np.pi * (np.arange(1, CONTOUR_POINTS + 1) - 0.5) / CONTOUR_POINTS)
    z = h * linear[:, None] + circle[None, :]
    ez = np.exp(z)

    def mean(values: np.ndarray) -> np.ndarray:
        return h * np.real(np.mean(values, axis=1))

    q = mean((np.exp(z / 2) - 1) / z)
    f1 = mean((-4 - z + ez * (4 - 3 * z + z**2)) / z**3)
    f2 = mean((2 + z + ez * (z - 2)) / z**3)
    f3 = mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3)
    return np.exp(h * linear), np.exp(h * linear / 2), q, f1, f2, f3


def spectral_solve(
    initial: Callable[[np.ndarray], np.ndarray],
    diffusion: float,
    reaction: float,
    *,
    frames: int,
    interval: float,
    modes: int = MODES,
    steps_per_frame: int = STEPS_PER_FRAME,
) -> np.ndarray:
    """`u_t = diffusion u_xx + reaction (u - u^3)` on [-1, 1) periodic from `initial`
    (x (n,) -> u0 (n,), float64 numpy) at `frames` times `interval` apart from t = 0:
    (frames, modes) float64 on the grid `-1 + 2 arange(modes) / modes`."""
    x = LOW + LENGTH * np.arange(modes) / modes
    fine = LOW + LENGTH * np.arange(modes * OVERSAMPLING) / (modes * OVERSAMPLING)
    v = np.fft.rfft(initial(fine))[: modes // 2 + 1] / OVERSAMPLING
    k = 2 * np.pi / LENGTH * np.arange(modes // 2 + 1)
    e, e_half, q, f1, f2, f3 = etdrk4_coefficients(-diffusion * k**2, interval / steps_per_frame)

    def nonlinear(spectrum: np.ndarray) -> np.ndarray:
        return np.fft.rfft(reaction * bistable(np.fft.irfft(spectrum, modes)))

    out = [initial(x)]
    for _ in range(frames - 1):
        for _ in range(steps_per_frame):
            nv = nonlinear(v)
            a = e_half * v + q * nv
            na = nonlinear(a)
            b = e_half * v + q * na
            nb = nonlinear(b)
            c = e_half * a + q * (2 * nb - nv)
            v = e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nonlinear(c)
        out.append(np.fft.irfft(v, modes))
    return np.stack(out)


@register_problem("allen_cahn")
@dataclass(frozen=True)
class AllenCahn(Problem):
    """u_t = diffusion u_xx + reaction (u - u^3), x in [-1, 1) periodic, t in [0, 1],
    u0 = x^2 cos(pi x)."""

    diffusion: float = 1e-4
    reaction: float = 5.0

    def __post_init__(self) -> None:
        check_parameter(self, "diffusion", self.diffusion >= 0, "diffusion >= 0")

    @property
    def domain(self) -> Box:
        return Box(("t", "x"), (0.0, LOW), (1.0, LOW + LENGTH))

    @property
    def periods(self) -> dict[str, float]:
        return {"x": LENGTH}

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        value, _, curvature = value_and_partials(u, point, 1)
        source = self.reaction * bistable(value)
        return partial(u, point, 0) - self.diffusion * curvature - source

    def initial(self, point: jax.Array) -> jax.Array:
        """u(0, x) = x^2 cos(pi x): (1,)."""
        x = point[1:2]
        return x**2 * jnp.cos(jnp.pi * x)

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain
        return (
            dirichlet("initial", domain.face("t", "lower"), self.initial),
            periodic(domain, "x"),
            periodic_slope(domain, "x"),
        )

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        # jaxpi's reference grid: 201 times by 512 positions, x = 1 excluded.
        return {
            "t": np.linspace(0.0, 1.0, 201),
            "x": np.linspace(LOW, LOW + LENGTH, 512, endpoint=False),
        }

    def reference(self, modes: int = MODES, steps_per_frame: int = STEPS_PER_FRAME) -> np.ndarray:
        """The spectral solution on `evaluation_grid()`: (201, 512, 1) float64. `modes` must
        be a multiple of 512 (the grid's points are then solver points)."""
        return _reference(self, modes, steps_per_frame).copy()


@functools.cache
def _reference(problem: AllenCahn, modes: int, steps_per_frame: int) -> np.ndarray:
    """AllenCahn.reference, once per parameters and resolution (a frozen problem hashes by
    its fields)."""
    grid = problem.evaluation_grid()
    times, positions = grid["t"], grid["x"]
    if modes % positions.size:
        raise ValueError(f"modes: {modes} is not a multiple of the grid's {positions.size}")

    def initial(x: np.ndarray) -> np.ndarray:
        return on_grid(problem.initial, {"t": np.zeros(1), "x": x})[0, :, 0]

    u = spectral_solve(
        initial,
        problem.diffusion,
        problem.reaction,
        frames=times.size,
        interval=float(times[1] - times[0]),
        modes=modes,
        steps_per_frame=steps_per_frame,
    )
    return u[:, :: modes // positions.size, None]
