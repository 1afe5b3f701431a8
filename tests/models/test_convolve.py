"""`convolve`: values and gradients against a direct NumPy computation in float64, in 1D to
3D, with strides, paddings and spread inputs (transposed convolutions); the same inside a
`lax.scan`; and a periodic `Conv` against the wrapped-around sum it stands for."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.models.convolution import Conv
from surrogates.models.convolve import convolve


def offsets(size: int, dims: int):
    return itertools.product(range(size), repeat=dims)


def window(padded: np.ndarray, start: tuple[int, ...], count: tuple[int, ...], stride: int):
    """padded[:, start + stride * m] for m < count on every axis."""
    index = [slice(None)] + [
        slice(a, a + stride * (m - 1) + 1, stride) for a, m in zip(start, count, strict=True)
    ]
    return (*index, slice(None))


def spread_out(x: np.ndarray, spread: int) -> np.ndarray:
    """x (B, *N, C) with spread - 1 zeros between neighbouring cells of every axis."""
    grid = tuple(spread * (n - 1) + 1 for n in x.shape[1:-1])
    out = np.zeros((x.shape[0], *grid, x.shape[-1]), x.dtype)
    out[(slice(None), *[slice(None, None, spread)] * len(grid))] = x
    return out


def reference(x, kernel, g, stride, padding, spread=1):
    """Output, d(sum(output * g))/dx and /dkernel of the zero-padded strided correlation of x
    spread `spread` apart, written out over the kernel offsets in float64."""
    x, kernel, g = (np.asarray(a, np.float64) for a in (x, kernel, g))
    dims = x.ndim - 2
    if spread > 1:
        out, dx, dkernel = reference(spread_out(x, spread), kernel, g, stride, padding)
        return out, dx[(slice(None), *[slice(None, None, spread)] * dims)], dkernel
    size = kernel.shape[0]
    widths = [(0, 0)] + [(p, p) for p in padding] + [(0, 0)]
    padded = np.pad(x, widths)
    count = tuple(
        (n + 2 * p - size) // stride + 1 for n, p in zip(x.shape[1:-1], padding, strict=True)
    )
    out = np.zeros((x.shape[0], *count, kernel.shape[-1]))
    dpadded = np.zeros_like(padded)
    dkernel = np.zeros_like(kernel)
    for a in offsets(size, dims):
        cells = window(padded, a, count, stride)
        out += padded[cells] @ kernel[a]
        dpadded[cells] += g @ kernel[a].T
        dkernel[a] = padded[cells].reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1])
    inner = tuple(
        [slice(None)] + [slice(p, p + n) for p, n in zip(padding, x.shape[1:-1], strict=True)]
    )
    return out, dpadded[inner], dkernel


CASES = [
    # dims, grid, kernel size, stride, padding per axis, spread
    (1, 9, 3, 1, (1,), 1),
    (1, 9, 5, 2, (2,), 1),
    (1, 8, 3, 2, (0,), 1),
    (2, 8, 3, 1, (1, 1), 1),
    (2, 9, 3, 2, (1, 0), 1),
    (2, 7, 1, 1, (0, 0), 1),
    (3, 6, 3, 1, (1, 0, 1), 1),
    (3, 6, 3, 2, (1, 1, 1), 1),
    # transposed convolutions as the U-Nets use them: kernel 2 and 4, spread 2
    (1, 5, 2, 1, (1,), 2),
    (2, 4, 4, 1, (0, 0), 2),
    (2, 5, 3, 1, (2, 1), 3),
    (3, 3, 2, 1, (1, 1, 1), 2),
]


@pytest.mark.parametrize(("dims", "grid", "size", "stride", "padding", "spread"), CASES)
def test_values_and_gradients_equal_the_direct_sums(dims, grid, size, stride, padding, spread):
    rng = np.random.default_rng(dims * 100 + grid + size + stride)
    x = rng.normal(size=(2, *(grid,) * dims, 3)).astype(np.float32)
    kernel = rng.normal(size=(*(size,) * dims, 3, 4)).astype(np.float32)
    out, pullback = jax.vjp(lambda x, k: convolve(x, k, stride, padding, spread), x, kernel)
    g = rng.normal(size=out.shape).astype(np.float32)
    dx, dkernel = pullback(jnp.asarray(g))
    expected = reference(x, kernel, g, stride, padding, spread)
    for found, wanted in zip((out, dx, dkernel), expected, strict=True):
        assert found.shape == wanted.shape
        np.testing.assert_allclose(found, wanted, rtol=1e-4, atol=1e-4)


def test_gradients_inside_a_scan_equal_those_outside():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4, 8, 8, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 5)), jnp.float32)

    def loss(k, x):
        return jnp.sum(jnp.tanh(convolve(x, k, 1, (1, 1))) ** 2)

    def scanned(k, x):
        parts = x.reshape(2, 2, *x.shape[1:])
        return jax.lax.scan(lambda total, part: (total + loss(k, part), None), 0.0, parts)[0]

    whole = jax.jit(jax.grad(loss, argnums=(0, 1)))(kernel, x)
    parts = jax.jit(jax.grad(scanned, argnums=(0, 1)))(kernel, x)
    for a, b in zip(whole, parts, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("periodic", [(True, False), (True, True)])
def test_periodic_conv_wraps_around(periodic):
    """A periodic axis sees the cells across the border; the other axis sees zeros."""
    rng = np.random.default_rng(1)
    conv = Conv(2, 3, 3, periodic, rngs=nnx.Rngs(0))
    x = rng.normal(size=(2, 6, 5, 2)).astype(np.float32)
    wrapped = np.pad(x, [(0, 0)] + [(1, 1) if p else (0, 0) for p in periodic] + [(0, 0)], "wrap")
    padding = tuple(0 if p else 1 for p in periodic)
    kernel = np.asarray(conv.conv.kernel[...])
    expected = reference(wrapped, kernel, np.zeros((2, 6, 5, 3)), 1, padding)[0]
    expected += np.asarray(conv.conv.bias[...])
    np.testing.assert_allclose(conv(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
