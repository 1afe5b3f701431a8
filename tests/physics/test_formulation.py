"""The Eulerian and Lagrangian loss terms against solutions worked out by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.physics.convection import Convection, ConvectionDiffusion
from surrogates.physics.formulation import LagrangianForm, eulerian_terms, lagrangian_terms


def points(problem, n=64, seed=0):
    return problem.domain.sample(jax.random.key(seed), n, jnp.float64)


def residuals(term, f, p):
    return np.asarray(jax.vmap(lambda q: term.residual(f, q))(p))


def test_eulerian_terms_are_the_problem_residual_and_its_conditions():
    problem = Convection(beta=3.0)
    terms = eulerian_terms(problem)
    assert [t.name for t in terms] == ["residual", "initial", "boundary"]
    assert terms[0].causal and not terms[1].causal
    with jax.enable_x64(True):
        for term in terms:
            sample = term.region.sample(jax.random.key(1), 32, jnp.float64)
            np.testing.assert_allclose(residuals(term, problem.exact, sample), 0, atol=1e-12)


def test_the_characteristics_of_convection_make_every_lagrangian_term_vanish():
    beta = 30.0
    problem = Convection(beta=beta)
    form = LagrangianForm(
        velocity=lambda u: beta * jnp.ones_like(u),
        diffusion=0.0,
        period=2 * np.pi,
        initial=problem.initial,
    )

    def exact(p):  # (t, xi) -> (u, X): the state stays, the position moves at beta
        return jnp.stack([jnp.sin(p[1]), p[1] + beta * p[0]])

    def wrong(p):
        return jnp.stack([jnp.sin(p[1]), p[1] + 0.5 * beta * p[0]])

    terms = lagrangian_terms(problem, form)
    assert [t.name for t in terms] == ["residual", "characteristics", "initial"]
    with jax.enable_x64(True):
        for term in terms:
            sample = term.region.sample(jax.random.key(2), 32, jnp.float64)
            np.testing.assert_allclose(residuals(term, exact, sample), 0, atol=1e-10)
        sample = points(problem)
        np.testing.assert_allclose(residuals(terms[1], wrong, sample), -0.5 * beta, rtol=1e-12)


def burgers_like_diffusion(nu: float):
    """A problem on [0, 2 pi) and the Lagrangian diffusion term of characteristics at the
    state's speed (Burgers') with diffusion `nu`."""
    problem = Convection(beta=1.0)
    form = LagrangianForm(
        velocity=lambda u: u, diffusion=nu, period=2 * np.pi, initial=problem.initial
    )
    return problem, lagrangian_terms(problem, form)[0]


def test_the_lagrangian_diffusion_is_the_eulerian_second_derivative_along_any_flow():
    """With X = xi + 0.3 t sin(xi) and u = g(X), g = sin(2 .): u_t at fixed xi is
    g'(X) X_t and u_xx is g''(X), whatever the stretching X_xi; the residual is the PDE's
    times X_xi^3."""
    nu = 0.07

    def flow(p):
        t, xi = p[0], p[1]
        x = xi + 0.3 * t * jnp.sin(xi)
        return jnp.stack([jnp.sin(2 * x), x])

    problem, residual = burgers_like_diffusion(nu)
    with jax.enable_x64(True):
        sample = points(problem)
        t, xi = np.asarray(sample[:, 0]), np.asarray(sample[:, 1])
        x = xi + 0.3 * t * np.sin(xi)
        pde = 2 * np.cos(2 * x) * 0.3 * np.sin(xi) - nu * (-4 * np.sin(2 * x))
        expected = (1 + 0.3 * t * np.cos(xi)) ** 3 * pde
        np.testing.assert_allclose(residuals(residual, flow, sample)[:, 0], expected, rtol=1e-9)


def test_lpinn_predictions_are_carried_back_to_the_eulerian_grid(tmp_path):
    """A Lagrangian model that is convection's exact solution, (u, X) = (sin xi, xi +
    beta t), evaluates to sin(x - beta t) on the grid, up to linear interpolation."""
    from flax import nnx

    from surrogates.config import load_experiment
    from surrogates.training.physics_task import PhysicsTask

    class Exact(nnx.Module):
        def __init__(self):
            self.beta = nnx.Param(jnp.asarray(7.0))

        def state_and_position(self, coords):
            t, xi = coords[..., 0:1], coords[..., 1:2]
            return jnp.sin(xi), xi + self.beta[...] * t

        def __call__(self, coords):
            return jnp.concatenate(self.state_and_position(coords), axis=-1)

    path = tmp_path / "lpinn.yaml"
    path.write_text(
        "name: l\ntask: physics\nproblem: {name: convection, beta: 7}\nmodel: {name: lpinn}\n"
    )
    task = PhysicsTask(load_experiment(path), model=Exact())
    assert [t.name for t in task.terms] == ["residual", "characteristics", "initial"]
    prediction = task.predict()
    reference = task.problem_reference()
    dx = 2 * np.pi / 256
    np.testing.assert_allclose(prediction, reference, atol=dx**2 / 8 * 1.01)
    assert np.abs(prediction - reference).max() > 1e-6  # interpolated, not exact


def test_an_initial_lpinn_follows_the_identity_flow_whatever_its_seed():
    """A random initial position branch starts the flow folded (X_xi through zero) for some
    seeds: with the diffusion divided by X_xi, convection-diffusion's first losses were 1e15.
    Every initial LPINN has X = xi, so X_xi = 1 and the diffusion residual is the state's
    own, of the state's size."""
    from flax import nnx

    from surrogates.models.lpinn import LPINN

    problem = ConvectionDiffusion(beta=30.0, nu=0.01)
    (diffusion, *_) = lagrangian_terms(problem, problem.lagrangian())
    domain = problem.domain
    p = domain.sample(jax.random.key(0), 512, jnp.float32)
    for seed in range(6):
        model = LPINN(2, 1, domain.lower, domain.upper, (None, 2 * np.pi), rngs=nnx.Rngs(seed))
        _, position = model.state_and_position(p)
        np.testing.assert_array_equal(position[:, 0], p[:, 1])
        assert np.abs(residuals(diffusion, model, p)).max() < 10, seed


def test_the_lagrangian_diffusion_stays_finite_where_the_flow_folds():
    """X = xi + t sin(xi) folds at xi = pi, t = 1 (X_xi = 0), where u_xx along the map divides
    by zero: the residual there is finite, -nu times the numerator, for u = cos(xi)."""
    nu = 0.1

    def flow(p):
        t, xi = p[0], p[1]
        return jnp.stack([jnp.cos(xi), xi + t * jnp.sin(xi)])

    _, residual = burgers_like_diffusion(nu)
    fold = jnp.asarray([[1.0, np.pi]], jnp.float32)
    got = residuals(residual, flow, fold)[0, 0]
    # u_xixi X_xi - u_xi X_xixi = (1)(0) - (0)(-sin pi) = 0 up to float32 rounding of pi.
    assert np.isfinite(got) and abs(got) < 1e-5
