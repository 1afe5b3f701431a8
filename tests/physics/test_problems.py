"""The physics-informed problems against independent computations.

Closed forms must zero their PDE's residual and every condition's at random points (float64,
to round-off relative to the size of the terms); references are checked against formulas
written here in numpy, against other quadratures or exact solutions, and under refinement.
Checks over `problems()` take in any problem registered later.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogates.errors import ConfigError
from surrogates.physics import build_problem, problems
from surrogates.physics.allen_cahn import spectral_solve
from surrogates.physics.burgers import cole_hopf
from surrogates.physics.convection import fourier_convection_diffusion
from surrogates.physics.derivatives import partial, periodic_slope
from surrogates.physics.flow_mixing import swirl
from surrogates.physics.problem import Box, grid_points

CLOSED_FORM = [name for name in problems() if hasattr(build_problem(name), "exact")]

# u(0, ...) of every time-dependent problem, as the papers state it: coordinates -> (...).
INITIAL = {
    "allen_cahn": lambda x: x**2 * np.cos(np.pi * x),
    "burgers": lambda x: -np.sin(np.pi * x),
    "convection": np.sin,
    "convection_diffusion": np.sin,
    "flow_mixing": lambda x, y: -np.tanh(y / 2),
    "klein_gordon": lambda x, y: x + y,
    "reaction": lambda x: np.exp(-(((x - np.pi) / (np.pi / 4)) ** 2) / 2),
    "wave": lambda x: np.sin(np.pi * x) + 0.5 * np.sin(4 * np.pi * x),
}


def over_points(f, points: jax.Array) -> jax.Array:
    """A pointwise function on every row of `points`, compiled (eager vmaps of nested JVPs
    dispatch op by op and are slow)."""
    return jax.jit(jax.vmap(f))(points)


def term_scale(problem, points: jax.Array) -> float:
    """A bound on the size of the residual's terms at `points`: the largest value, first or
    second partial of the exact solution along any axis, times the largest parameter (>= 1)."""
    u, dims = problem.exact, points.shape[1]

    def largest(p: jax.Array) -> jax.Array:
        terms = [u(p)]
        terms += [partial(u, p, i) for i in range(dims)]
        terms += [partial(u, p, i, i) for i in range(dims)]
        return jnp.max(jnp.abs(jnp.concatenate(terms)))

    parameters = max([1.0, *(abs(v) for v in problem.parameters().values())])
    return float(jnp.max(over_points(largest, points))) * parameters


def max_abs(a) -> float:
    return float(np.max(np.abs(np.asarray(a))))


def test_every_problem_is_registered():
    expected = {
        "allen_cahn",
        "burgers",
        "convection",
        "convection_diffusion",
        "flow_mixing",
        "helmholtz",
        "klein_gordon",
        "reaction",
        "wave",
    }
    assert set(problems()) == expected
    assert set(CLOSED_FORM) == expected - {"allen_cahn", "burgers"}


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_exact_solution_zeroes_the_residual(name: str):
    problem = build_problem(name)
    with jax.enable_x64(True):
        points = problem.domain.sample(jax.random.key(0), 256, jnp.float64)
        residual = over_points(lambda p: problem.residual(problem.exact, p), points)

        # A slightly wrong solution must not pass: the residual does see u.
        def perturbed(p: jax.Array) -> jax.Array:
            return problem.exact(p) + 0.01 * jnp.sin(jnp.sum(p) + 1.0)

        wrong = over_points(lambda p: problem.residual(perturbed, p), points)
        scale = term_scale(problem, points)
    assert residual.dtype == jnp.float64 and residual.shape == (256, 1)
    assert max_abs(residual) <= 1e-13 * scale
    assert max_abs(wrong) >= 1e-3


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_exact_solution_meets_every_condition(name: str):
    problem = build_problem(name)
    with jax.enable_x64(True):
        conditions = problem.conditions()
        scale = term_scale(problem, problem.domain.sample(jax.random.key(1), 256, jnp.float64))
        for i, condition in enumerate(conditions):
            points = condition.region.sample(jax.random.key(i), 64, jnp.float64)
            residual = over_points(lambda p, c=condition: c.residual(problem.exact, p), points)
            assert max_abs(residual) <= 1e-13 * scale, (condition.name, condition.region)


@pytest.mark.parametrize("name", problems())
def test_conditions_live_on_faces(name: str):
    problem = build_problem(name)
    domain = problem.domain
    names = {c.name for c in problem.conditions()}
    assert names <= {"initial", "boundary"}
    assert ("initial" in names) == problem.time_dependent
    for condition in problem.conditions():
        region = condition.region
        flat = [i for i in range(domain.dims) if region.lower[i] == region.upper[i]]
        assert region.names == domain.names and len(flat) == 1
        (i,) = flat
        assert region.lower[i] in (domain.lower[i], domain.upper[i])
        others = [j for j in range(domain.dims) if j != i]
        assert all(region.lower[j] == domain.lower[j] for j in others)
        assert all(region.upper[j] == domain.upper[j] for j in others)
        if condition.name == "initial":
            assert domain.names[i] == "t" and region.lower[i] == domain.lower[i]


@pytest.mark.parametrize("name", problems())
def test_evaluation_grid_and_reference_shapes(name: str):
    problem = build_problem(name)
    grid = problem.evaluation_grid()
    assert tuple(grid) == problem.domain.names
    for i, values in enumerate(grid.values()):
        assert values.dtype == np.float64 and values.ndim == 1
        assert problem.domain.lower[i] <= values.min() and values.max() <= problem.domain.upper[i]
    reference = problem.reference()
    shape = tuple(v.size for v in grid.values())
    assert reference.shape == (*shape, len(problem.outputs)) and reference.dtype == np.float64
    assert np.all(np.isfinite(reference))
    for axis, period in problem.periods.items():
        # A periodic coordinate's grid leaves out the end that repeats the start.
        assert grid[axis].max() < problem.domain.upper[problem.domain.axis(axis)]
        assert problem.domain.length(axis) == period


@pytest.mark.parametrize("name", sorted(INITIAL))
def test_reference_starts_from_the_stated_initial_condition(name: str):
    problem = build_problem(name)
    grid = problem.evaluation_grid()
    assert grid["t"][0] == 0.0
    space = np.meshgrid(*list(grid.values())[1:], indexing="ij")
    np.testing.assert_allclose(problem.reference()[0, ..., 0], INITIAL[name](*space), atol=1e-14)


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_reference_equals_exact_on_the_grid(name: str):
    problem = build_problem(name)
    reference = problem.reference()
    points = grid_points(problem.evaluation_grid())
    rng = np.random.default_rng(0)
    indices = [tuple(rng.integers(0, n) for n in points.shape[:-1]) for _ in range(20)]
    with jax.enable_x64(True):
        for index in indices:
            exact = problem.exact(jnp.asarray(points[index], jnp.float64))
            np.testing.assert_allclose(reference[index], exact, rtol=0, atol=1e-12)


def test_helmholtz_reference_is_the_stated_solution():
    problem = build_problem("helmholtz", a1=2.0, a2=3.0)
    x, y = np.meshgrid(*problem.evaluation_grid().values(), indexing="ij")
    expected = np.sin(2 * np.pi * x) * np.sin(3 * np.pi * y)
    np.testing.assert_allclose(problem.reference()[..., 0], expected, atol=1e-14)


def test_wave_reference_is_the_stated_solution_for_any_speed():
    problem = build_problem("wave", c=1.5)
    t, x = np.meshgrid(*problem.evaluation_grid().values(), indexing="ij")
    expected = np.sin(np.pi * x) * np.cos(1.5 * np.pi * t)
    expected += 0.5 * np.sin(4 * np.pi * x) * np.cos(6 * np.pi * t)
    np.testing.assert_allclose(problem.reference()[..., 0], expected, atol=1e-14)


# --- convection-diffusion: the Fourier reference -------------------------------------------


def test_convection_diffusion_without_diffusion_is_convection():
    plain = build_problem("convection", beta=30.0).reference()
    np.testing.assert_allclose(
        build_problem("convection_diffusion", beta=30.0, nu=0.0).reference(), plain, atol=1e-12
    )


@pytest.mark.parametrize("nu", [0.01, 0.3])
def test_convection_diffusion_sine_decays_at_rate_nu(nu: float):
    problem = build_problem("convection_diffusion", beta=30.0, nu=nu)
    t, x = np.meshgrid(*problem.evaluation_grid().values(), indexing="ij")
    expected = np.exp(-nu * t) * np.sin(x - 30.0 * t)
    np.testing.assert_allclose(problem.reference()[..., 0], expected, atol=1e-12)


def test_fourier_convection_moves_any_profile_by_beta_t():
    # A Gaussian (not band-limited) carried exactly 5 cells in t = 1: a roll of the samples.
    n, length = 64, 2 * np.pi
    x = length * np.arange(n) / n
    u0 = np.exp(-((x - 2.0) ** 2))
    beta = 5 * length / n
    u = fourier_convection_diffusion(u0, np.array([0.0, 1.0]), beta, 0.0, length)
    np.testing.assert_allclose(u[0], u0, atol=1e-14)
    np.testing.assert_allclose(u[1], np.roll(u0, 5), atol=1e-14)
    # Mode 3 alone under diffusion decays as exp(-nu 9 t).
    damped = fourier_convection_diffusion(np.cos(3 * x), np.array([2.0]), 0.0, 0.1, length)
    np.testing.assert_allclose(damped[0], np.exp(-0.1 * 9 * 2.0) * np.cos(3 * x), atol=1e-14)


def test_periodic_slope_condition_sees_a_slope_jump():
    domain = Box(("t", "x"), (0.0, 0.0), (1.0, 2.0))
    condition = periodic_slope(domain, "x")
    points = condition.region.sample(jax.random.key(0), 8)
    # u = x^2: u_x is 0 at x = 0 and 4 at x = 2.
    residual = over_points(lambda p: condition.residual(lambda q: q[1:2] ** 2, p), points)
    np.testing.assert_allclose(residual, -4.0, rtol=1e-6)


# --- Burgers: the Cole-Hopf reference ------------------------------------------------------

NU = 0.01 / np.pi


def trapezoid_cole_hopf(point: jax.Array, nu: float = NU) -> jax.Array:
    """Burgers' solution at one point (t > 0, x) by the trapezoidal rule in z (exponentially
    accurate for this smooth, Gaussian-decaying integrand): (1,), jnp and differentiable."""
    z = jnp.linspace(-40.0, 40.0, 8001)
    t, x = point[0], point[1]
    y = x - jnp.sqrt(4 * nu * t) * z
    log_terms = -(z**2) - jnp.cos(jnp.pi * y) / (2 * jnp.pi * nu)
    terms = jnp.exp(log_terms - jax.lax.stop_gradient(jnp.max(log_terms)))
    return (-jnp.sum(jnp.sin(jnp.pi * y) * terms) / jnp.sum(terms))[None]


def test_burgers_reference_agrees_with_an_independent_quadrature():
    problem = build_problem("burgers")
    reference = problem.reference()[..., 0]
    grid = problem.evaluation_grid()
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        for _ in range(30):
            i, j = rng.integers(1, grid["t"].size), rng.integers(0, grid["x"].size)
            point = jnp.asarray([grid["t"][i], grid["x"][j]], jnp.float64)
            assert abs(reference[i, j] - float(trapezoid_cole_hopf(point)[0])) < 1e-12


def test_burgers_quadrature_converges_under_refinement():
    problem = build_problem("burgers")
    reference = problem.reference()
    errors = [max_abs(problem.reference(quadrature_points=n) - reference) for n in (20, 40, 80)]
    assert errors[0] > 1e-2 > errors[1] > 1e-7 > 1e-12 > errors[2]


def test_burgers_reference_meets_its_conditions():
    problem = build_problem("burgers")
    grid, reference = problem.evaluation_grid(), problem.reference()[..., 0]
    assert grid["x"][0] == -1.0 and grid["x"][-1] == 1.0
    assert max_abs(reference[:, [0, -1]]) < 1e-13
    np.testing.assert_allclose(reference[0], -np.sin(np.pi * grid["x"]), atol=1e-15)
    # u stays odd in x.
    np.testing.assert_allclose(reference, -reference[:, ::-1], atol=1e-12)


def test_burgers_steepest_slope_matches_basdevant():
    # Basdevant et al. (1986): |u_x(t, 0)| peaks at 152.00516 at t = 1.6037 / pi.
    h = 1e-6
    u = cole_hopf(np.array([1.6037 / np.pi]), np.array([-h, h]), NU)[0]
    assert (u[1] - u[0]) / (2 * h) == pytest.approx(-152.00516, abs=1e-5)


def test_burgers_reference_solves_the_pde_by_finite_differences():
    # Away from the shock (|x| >= 0.2), central differences with h = 1e-4 on Cole-Hopf.
    t = np.array([0.2, 0.5, 0.9])
    x = np.concatenate([np.linspace(-0.9, -0.2, 8), np.linspace(0.2, 0.9, 8)])
    h = 1e-4

    def u(times: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return cole_hopf(times, positions, NU)

    u_t = (u(t + h, x) - u(t - h, x)) / (2 * h)
    centre, left, right = u(t, x), u(t, x - h), u(t, x + h)
    u_x = (right - left) / (2 * h)
    u_xx = (right - 2 * centre + left) / h**2
    residual = u_t + centre * u_x - NU * u_xx
    assert max_abs(u_t) > 0.1  # the terms are O(1) ...
    assert max_abs(residual) < 1e-6  # ... and cancel to the differences' accuracy


def test_burgers_residual_vanishes_on_cole_hopf():
    problem = build_problem("burgers")
    with jax.enable_x64(True):
        unit = jax.random.uniform(jax.random.key(2), (24, 2), jnp.float64)
        # Late times and the shock's neighbourhood, where the terms are largest.
        points = jnp.stack([0.3 + 0.7 * unit[:, 0], 0.1 * (2 * unit[:, 1] - 1)], axis=1)
        residual = over_points(lambda p: problem.residual(trapezoid_cole_hopf, p), points)
        curvature = over_points(lambda p: partial(trapezoid_cole_hopf, p, 1, 1), points)
    scale = NU * max_abs(curvature)
    assert scale > 10.0  # steep: nu u_xx is large inside the shock
    assert max_abs(residual) < 1e-9 * scale


# --- Allen-Cahn: the spectral reference ----------------------------------------------------


def test_allen_cahn_reference_converges_under_refinement():
    problem = build_problem("allen_cahn")
    finest = problem.reference()  # 4096 modes, dt = 2.5e-3
    coarse = problem.reference(modes=512, steps_per_frame=1)
    fine = problem.reference(modes=1024, steps_per_frame=1)
    errors = [max_abs(coarse - finest), max_abs(fine - finest)]
    assert errors[0] > 4 * errors[1] and errors[1] < 1e-4
    # Later on the fronts are resolved: the fine solve is then good to 1e-7.
    assert max_abs(fine[20:] - finest[20:]) < 1e-7
    # Plateaus at +-1 joined by fronts by t = 1.
    assert max_abs(finest[-1]) == pytest.approx(1.0, abs=1e-3) and finest[-1].min() < -0.99


def test_allen_cahn_solver_follows_exact_solutions():
    # A uniform state follows u' = r (u - u^3): u = c e^{rt} / sqrt(1 - c^2 + c^2 e^{2rt}).
    times = 0.1 * np.arange(11)
    uniform = spectral_solve(
        lambda x: np.full_like(x, 0.2),
        1e-4,
        5.0,
        frames=11,
        interval=0.1,
        modes=16,
        steps_per_frame=20,
    )
    growth = np.exp(5.0 * times)
    expected = 0.2 * growth / np.sqrt(1 - 0.04 + 0.04 * growth**2)
    np.testing.assert_allclose(uniform, np.repeat(expected[:, None], 16, axis=1), atol=1e-9)
    # Without reaction, sin(pi x) decays as exp(-d pi^2 t).
    heat = spectral_solve(lambda x: np.sin(np.pi * x), 0.05, 0.0, frames=11, interval=0.1, modes=16)
    x = -1 + 2 * np.arange(16) / 16
    expected = np.exp(-0.05 * np.pi**2 * times)[:, None] * np.sin(np.pi * x)
    np.testing.assert_allclose(heat, expected, atol=1e-14)


def test_allen_cahn_residual_vanishes_on_exact_solutions():
    problem = build_problem("allen_cahn")
    d, r = problem.diffusion, problem.reaction

    def front(p: jax.Array) -> jax.Array:
        # Stationary: d u_xx + r (u - u^3) = 0 for u = tanh(x sqrt(r / (2 d))).
        return jnp.tanh(p[1:2] * math.sqrt(r / (2 * d)))

    def uniform(p: jax.Array) -> jax.Array:
        growth = jnp.exp(r * p[0:1])
        return 0.2 * growth / jnp.sqrt(1 - 0.04 + 0.04 * growth**2)

    with jax.enable_x64(True):
        points = problem.domain.sample(jax.random.key(3), 128, jnp.float64)
        points = points.at[:, 1].multiply(0.02)  # inside the front, where u_xx is large
        for u in (front, uniform):
            residual = over_points(lambda p, u=u: problem.residual(u, p), points)
            assert max_abs(residual) < 1e-11 * r * (1 + max_abs(over_points(u, points)) ** 3)
        # A moving profile is not a solution: the time derivative is in the residual.
        moving = over_points(
            lambda p: problem.residual(lambda q: front(q - q[0] * 0.01), p), points
        )
        assert max_abs(moving) > 1e-2


# --- flow mixing at the vortex's centre ----------------------------------------------------


def test_flow_mixing_is_smooth_at_the_centre():
    problem = build_problem("flow_mixing")
    with jax.enable_x64(True):
        # Either side of the switch to the series, and far from it.
        r2 = jnp.asarray([1e-6 * (1 - 1e-9), 1e-6 * (1 + 1e-9), 1e-2, 0.25, 4.0])
        r = np.sqrt(np.asarray(r2))
        np.testing.assert_allclose(swirl(r2), np.tanh(r) / (r * np.cosh(r) ** 2), rtol=1e-13)
        assert float(swirl(jnp.zeros((), jnp.float64))) == 1.0
        centre = jnp.asarray([1.5, 0.0, 0.0], jnp.float64)
        assert float(problem.angular_speed(centre[1], centre[2])) == pytest.approx(1 / 0.385)
        residual = jax.jit(problem.residual, static_argnums=0)(problem.exact, centre)
        slope = jax.jit(jax.jacfwd(lambda p: problem.residual(problem.exact, p)))(centre)
    assert max_abs(residual) < 1e-14
    assert np.all(np.isfinite(np.asarray(slope)))


# --- building by name ----------------------------------------------------------------------


def test_misspelt_problem_name_stops_in_one_line():
    with pytest.raises(ConfigError) as error:
        build_problem("burger")
    message = str(error.value)
    assert "\n" not in message and "'burger'" in message and "did you mean 'burgers'" in message


def test_misspelt_parameter_stops_in_one_line():
    with pytest.raises(ConfigError) as error:
        build_problem("allen_cahn", diffusoin=1e-3)
    message = str(error.value)
    assert "\n" not in message and message.startswith("problem.diffusoin:")
    assert "did you mean 'diffusion'" in message


def test_invalid_parameter_value_stops_in_one_line():
    with pytest.raises(ConfigError, match=r"^problem\.nu: burgers needs nu > 0, got -0\.1$"):
        build_problem("burgers", nu=-0.1)


def test_parameters_are_the_fields():
    problem = build_problem("helmholtz", a1=10.0, a2=10.0)
    assert problem.parameters() == {"k": 1.0, "a1": 10.0, "a2": 10.0}
    assert build_problem("convection_diffusion").parameters() == {"beta": 30.0, "nu": 0.01}
