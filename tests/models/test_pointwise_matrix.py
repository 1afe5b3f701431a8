"""Every pointwise model of the registry (`kind="pointwise"`), built from a problem's context:
output shapes, jit equal to eager, forward-mode second derivatives equal to reverse mode (the
physics task differentiates by JVPs), a checkpoint round trip. A model joins by registering
with an `example()` classmethod giving a small instance's arguments.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.models import available, build, get
from surrogates.models.contract import PointwiseContext
from surrogates.physics.derivatives import partial
from surrogates.training.checkpoints import Checkpoints

# (t, x) on [0, 1] x [0, 2 pi), periodic in x: every pointwise model (LPINN included) fits.
CONTEXT = PointwiseContext(
    in_dims=2, out_dims=1, lower=(0.0, 0.0), upper=(1.0, 2 * math.pi), periods=(None, 2 * math.pi)
)


def make(name: str) -> nnx.Module:
    cls = get(name)
    arguments = CONTEXT.constructor_arguments(cls, nnx.Rngs(0))
    return build(name, **arguments, **cls.example())


@pytest.fixture(scope="module", params=available("pointwise"))
def name(request) -> str:
    return request.param


def test_pointwise_models_are_registered_apart_from_operators():
    assert {"pinn", "pig", "lpinn"} <= set(available("pointwise"))
    assert not set(available("pointwise")) & set(available("operator"))


def test_shapes_and_jit(name):
    model = make(name)
    coords = jax.random.uniform(jax.random.key(0), (3, 5, 2)) * jnp.asarray([1.0, 6.0])
    graphdef, state = nnx.split(model)
    jitted = jax.jit(lambda s, c: nnx.merge(graphdef, s)(c))
    out = jitted(state, coords)
    assert out.shape[:2] == (3, 5)
    assert jitted(state, coords[0, 0]).shape == out.shape[2:]
    # Eager on a few points only: each operation apart is slow.
    np.testing.assert_allclose(model(coords[0, :2]), out[0, :2], rtol=1e-5, atol=1e-6)


def test_forward_mode_second_derivatives_equal_reverse_mode(name):
    with jax.enable_x64(True):
        model = make(name)
        graphdef, state = nnx.split(model)
        state = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        point = jnp.asarray([0.3, 1.7], jnp.float64)

        @jax.jit
        def both(state, point):
            f = nnx.merge(graphdef, state)
            forward = [[partial(f, point, i, j)[0] for j in range(2)] for i in range(2)]
            return jnp.asarray(forward), jax.hessian(lambda p: f(p)[0])(point)

        forward, reverse = both(state, point)
        np.testing.assert_allclose(forward, reverse, rtol=1e-8)


def test_checkpoint_round_trip(name, tmp_path):
    _, params, rest = nnx.split(make(name), nnx.Param, ...)
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    checkpoints.save((params, rest), {"count": jnp.zeros(())}, {"epoch": 1}, best=False)
    restored, _, meta = checkpoints.restore(jax.tree.map(jnp.zeros_like, (params, rest)))
    checkpoints.close()
    assert meta["epoch"] == 1
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves((params, rest)), strict=True):
        np.testing.assert_array_equal(a, b)
