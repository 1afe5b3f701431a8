"""The generators' solvers against exact solutions and refined references, with observed orders.

Errors are root-mean-square over the grid; orders are `log2(e(N) / e(2N))`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from surrogates.data.generate import pdes
from surrogates.data.generate.finite_volume import heat, mc_limited_slope
from surrogates.data.generate.initial_conditions import sample_sum_of_sines


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def orders(errors: list[float]) -> np.ndarray:
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def cole_hopf(x: np.ndarray, t: float, amplitude: float, viscosity: float) -> np.ndarray:
    """Exact viscous Burgers solution from u0 = amplitude sin(2 pi x) on the unit period.

    u = -2 viscosity phi_x / phi with phi solving the heat equation from
    phi0 = exp(-amplitude (1 - cos 2 pi x) / (4 pi viscosity)); phi0's Fourier series is taken
    from 4096 samples (it is analytic, so this is exact to rounding) and summed at x.
    """
    samples = 4096
    grid = np.arange(samples) / samples
    phi0 = np.exp(-amplitude * (1 - np.cos(2 * np.pi * grid)) / (4 * np.pi * viscosity))
    coeff = np.fft.fft(phi0) / samples
    k = 2 * np.pi * np.fft.fftfreq(samples, 1 / samples)
    coeff = coeff * np.exp(-viscosity * k**2 * t)
    waves = np.exp(1j * np.outer(x, k))
    phi = (waves @ coeff).real
    phi_x = (waves @ (1j * k * coeff)).real
    return -2 * viscosity * phi_x / phi


@pytest.mark.parametrize("scheme", ["explicit", "split"])
def test_burgers_converges_to_cole_hopf_at_second_order(scheme: str):
    amplitude, viscosity, t_end = 0.5, 0.02, 0.5
    errors = []
    for cells in (64, 128, 256):
        grid = pdes.Grid(cells)
        u0 = jnp.asarray(amplitude * np.sin(2 * np.pi * grid.centres), jnp.float32)[None]
        out = pdes.burgers(
            u0,
            jnp.float32(viscosity * np.pi),  # the file parameter Nu; viscosity is Nu / pi
            grid=grid,
            frames=6,
            interval=t_end / 5,
            cfl=0.4,
            viscous_scheme=scheme,
        )
        exact = cole_hopf(grid.centres, t_end, amplitude, viscosity)
        errors.append(rms(np.asarray(out)[0, -1] - exact))
    assert np.all(orders(errors) > 1.7), errors
    assert errors[-1] < 3e-5


def test_burgers_conserves_mass_and_never_grows_its_maximum():
    grid = pdes.Grid(256)
    ic = sample_sum_of_sines(7, np.arange(6), x_min=0.0, length=1.0)
    u0 = ic(jnp.asarray(grid.centres, jnp.float32))
    out = np.asarray(
        pdes.burgers(u0, jnp.float32(0.01), grid=grid, frames=21, interval=0.05, cfl=0.4),
        np.float64,
    )
    mass = out.mean(axis=-1)
    np.testing.assert_allclose(mass, mass[:, :1] * np.ones_like(mass), atol=2e-5)
    peak = np.abs(out).max(axis=-1)
    assert np.all(np.diff(peak, axis=1) <= 1e-5)
    # Shocks form (Nu = 0.01): the solution is far from the initial state.
    assert rms(out[:, -1] - out[:, 0]) > 0.1


def test_burgers_auto_scheme_matches_both_schemes():
    grid = pdes.Grid(128)
    u0 = sample_sum_of_sines(3, np.arange(4), x_min=0.0, length=1.0)(
        jnp.asarray(grid.centres, jnp.float32)
    )
    runs = {
        scheme: np.asarray(
            pdes.burgers(
                u0,
                jnp.float32(nu),
                grid=grid,
                frames=5,
                interval=0.05,
                cfl=0.4,
                viscous_scheme=scheme,
            )
        )
        for nu in (0.3,)
        for scheme in ("auto", "explicit", "split")
    }
    # Both schemes approximate the same solution to well within their discretisation error.
    assert rms(runs["explicit"] - runs["split"]) < 1e-3
    assert min(rms(runs["auto"] - runs["explicit"]), rms(runs["auto"] - runs["split"])) < 1e-7


def test_exact_advection_is_the_shifted_initial_condition():
    grid = pdes.Grid(100, x_min=-1.0, length=2.0)
    ic = sample_sum_of_sines(0, np.arange(3), x_min=-1.0, length=2.0, p_window=1.0)
    beta, interval = 0.7, 0.25
    out = np.asarray(
        pdes.advection_exact(ic, jnp.float32(beta), grid=grid, frames=9, interval=interval)
    )
    for k in (0, 3, 8):
        shifted = -1.0 + np.mod(grid.centres - beta * k * interval + 1.0, 2.0)
        np.testing.assert_allclose(out[:, k], np.asarray(ic(shifted)), atol=2e-6)
    # After one period (beta t = L) the field is back where it started.
    period = np.asarray(
        pdes.advection_exact(ic, jnp.float32(2.0), grid=grid, frames=2, interval=1.0)
    )
    np.testing.assert_allclose(period[:, 1], period[:, 0], atol=2e-5)


def test_muscl_advection_converges_to_the_exact_solution():
    beta, t_end = 0.7, 1.0
    errors = []
    for cells in (64, 128, 256):
        grid = pdes.Grid(cells)
        u0 = jnp.asarray(np.sin(2 * np.pi * grid.centres), jnp.float32)[None]
        out = pdes.advection_muscl(
            u0, jnp.float32(beta), grid=grid, frames=3, interval=t_end / 2, cfl=0.4
        )
        exact = np.sin(2 * np.pi * (grid.centres - beta * t_end))
        errors.append(rms(np.asarray(out)[0, -1] - exact))
    # The limiter clips smooth extrema, so the L2 order sits between 1.5 and 2.
    assert np.all(orders(errors) > 1.55), errors
    assert errors[-1] < 1e-3


def test_muscl_advection_conserves_mass_and_stays_bounded():
    grid = pdes.Grid(128)
    u0 = jnp.asarray(np.where(np.abs(grid.centres - 0.5) < 0.2, 1.0, 0.0), jnp.float32)[None]
    out = np.asarray(
        pdes.advection_muscl(u0, jnp.float32(-1.3), grid=grid, frames=5, interval=0.3, cfl=0.5)
    )
    np.testing.assert_allclose(out.mean(axis=-1), float(u0.mean()), atol=1e-6)
    # TVD: a step profile gains no new extrema.
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6


def test_mc_limiter_values():
    backward = jnp.array([1.0, 1.0, -1.0, 0.2, 3.0])
    forward = jnp.array([1.0, -1.0, -3.0, 1.0, 0.5])
    # minmod(2b, 2f, (b + f) / 2): equal -> itself, extremum -> 0, limited by 2|b| or 2|f|.
    expected = jnp.array([1.0, 0.0, -2.0, 0.4, 1.0])
    np.testing.assert_allclose(mc_limited_slope(backward, forward), expected)


def test_heat_operator_damps_each_mode_exactly():
    grid = pdes.Grid(64, length=2.0)
    x = grid.centres
    u = np.sin(2 * np.pi * 3 * x / 2.0) + 0.5 * np.cos(2 * np.pi * 5 * x / 2.0) + 0.25
    out = np.asarray(heat(0.01, 2.0)(jnp.asarray(u), 0.7))
    k3, k5 = 2 * np.pi * 3 / 2.0, 2 * np.pi * 5 / 2.0
    expected = (
        np.exp(-0.01 * k3**2 * 0.7) * np.sin(k3 * x)
        + 0.5 * np.exp(-0.01 * k5**2 * 0.7) * np.cos(k5 * x)
        + 0.25
    )
    np.testing.assert_allclose(out, expected, atol=1e-6)


def rd(u0: np.ndarray, nu: float, rho: float, steps: int, cells: int = 128) -> np.ndarray:
    return np.asarray(
        pdes.reaction_diffusion(
            jnp.asarray(u0, jnp.float32),
            jnp.float32(nu),
            jnp.float32(rho),
            grid=pdes.Grid(cells),
            frames=6,
            interval=0.1,
            steps_per_frame=steps,
        ),
        np.float64,
    )


def test_reaction_diffusion_special_cases_are_exact():
    x = pdes.Grid(128).centres
    # A uniform state follows the logistic equation exactly, whatever the diffusion.
    uniform = np.full((1, 128), 0.1)
    t = 0.1 * np.arange(6)
    logistic = 0.1 * np.exp(5 * t) / (1 - 0.1 + 0.1 * np.exp(5 * t))
    np.testing.assert_allclose(
        rd(uniform, 2.0, 5.0, 1)[0], logistic[:, None] * np.ones(128), rtol=2e-6
    )
    # Without reaction each Fourier mode decays as exp(-nu k^2 t).
    wave = (0.5 + 0.3 * np.sin(4 * np.pi * x))[None]
    decay = np.exp(-0.05 * (4 * np.pi) ** 2 * t)
    np.testing.assert_allclose(
        rd(wave, 0.05, 0.0, 1)[0], 0.5 + 0.3 * decay[:, None] * np.sin(4 * np.pi * x), atol=2e-6
    )


def test_reaction_diffusion_converges_in_time_at_second_order():
    grid = pdes.Grid(128)
    ic = sample_sum_of_sines(11, np.arange(4), x_min=0.0, length=1.0)
    u0 = np.asarray(ic(jnp.asarray(grid.centres, jnp.float32)))
    u0 = (u0 - u0.min(1, keepdims=True)) / np.ptp(u0, axis=1, keepdims=True)
    reference = rd(u0, 0.01, 10.0, 256)
    errors = [rms(rd(u0, 0.01, 10.0, steps) - reference) for steps in (2, 4, 8)]
    assert np.all(orders(errors) > 1.8), errors
    solution = rd(u0, 0.01, 10.0, 20)
    assert solution.min() >= -1e-6 and solution.max() <= 1 + 1e-6
