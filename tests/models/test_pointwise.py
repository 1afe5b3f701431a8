"""ChannelLinear and its hand-written gradient against nnx.Linear and autodiff of x @ W."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.models.pointwise import ChannelLinear, channel_matmul


@pytest.mark.parametrize(("fan_in", "fan_out"), [(5, 64), (64, 1), (32, 32), (16, 48)])
def test_gradient_equals_autodiff_of_the_plain_product(fan_in, fan_out):
    rng = np.random.default_rng(fan_in * fan_out)
    x = jnp.asarray(rng.normal(size=(3, 7, 6, fan_in)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(fan_in, fan_out)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(3, 7, 6, fan_out)), jnp.float32)
    got_y, got_vjp = jax.vjp(jax.jit(channel_matmul), x, kernel)
    want_y, want_vjp = jax.vjp(lambda a, w: jnp.einsum("...i,io->...o", a, w), x, kernel)
    np.testing.assert_allclose(np.asarray(got_y), np.asarray(want_y), rtol=1e-5, atol=1e-5)
    # And against float64 NumPy: dx = g W^T, dW = sum over rows of x^T g.
    x64, w64, g64 = (np.asarray(a, np.float64) for a in (x, kernel, g))
    expected = (g64 @ w64.T, x64.reshape(-1, fan_in).T @ g64.reshape(-1, fan_out))
    for got, want in zip(got_vjp(g), expected, strict=True):
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
    for got, want in zip(got_vjp(g), want_vjp(g), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("fan_in", "fan_out"), [(32, 16), (16, 32)])
def test_weight_gradient_transposes_the_narrower_operand_after_compilation(fan_in, fan_out):
    # The product's left factor is the one read transposed; XLA on CPU would turn
    # (g^T x)^T back into x^T g if nothing stopped it.
    x = jnp.ones((4096, fan_in))
    g = jnp.ones((4096, fan_out))

    def kernel_gradient(x, kernel, g):
        return jax.vjp(channel_matmul, x, kernel)[1](g)[1]

    compiled = jax.jit(kernel_gradient).lower(x, jnp.ones((fan_in, fan_out)), g).compile()
    narrow, wide = sorted((fan_in, fan_out))
    assert re.search(rf"f32\[{narrow},{wide}\]\S* dot\(", compiled.as_text())
    np.testing.assert_array_equal(
        np.asarray(compiled(x, jnp.ones((fan_in, fan_out)), g)), np.full((fan_in, fan_out), 4096)
    )


def test_channel_linear_is_nnx_linear_in_values_gradients_and_parameters():
    ours = ChannelLinear(6, 4, rngs=nnx.Rngs(3))
    theirs = nnx.Linear(6, 4, rngs=nnx.Rngs(3))
    assert jax.tree.map(jnp.shape, nnx.state(ours)) == jax.tree.map(jnp.shape, nnx.state(theirs))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 6)), jnp.float32)

    def loss(model, x):
        return jnp.sum(jnp.sin(model(x)))

    for got, want in zip(
        jax.tree.leaves(nnx.grad(loss, argnums=(0, 1))(ours, x)),
        jax.tree.leaves(nnx.grad(loss, argnums=(0, 1))(theirs, x)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6)


def test_channel_linear_without_bias_and_in_a_computation_dtype():
    layer = ChannelLinear(3, 2, use_bias=False, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    x = jnp.ones((4, 3), jnp.float32)
    y = layer(x)
    assert layer.bias is None and y.dtype == jnp.bfloat16
    expected = np.ones((4, 3)) @ np.asarray(layer.kernel[...], np.float64)
    np.testing.assert_allclose(np.asarray(y, np.float32), expected, rtol=2e-2, atol=2e-2)
