"""A zero-padded convolution whose gradients XLA computes with its fast convolution kernels.

`convolve` computes what `jax.lax.conv_general_dilated` computes for a channels-last input
and a `(*k, in, out)` kernel, with the same gradients, written out as three convolutions in
the canonical layout (batch first, channels last, kernel `(*k, in, out)`). XLA derives the
kernel gradient as a convolution whose operands have their axes permuted. Outside loops it
adds transposes and runs its fast kernels; inside a `lax.scan` body (micro-batches, the
rollouts of the training loss) it does not, and that one convolution runs tens of times
slower than the whole batch's. Here the transposes are explicit, so the scanned gradient costs
what the unscanned one does: a SineNet (hidden 32, 4 waves, 64^2, batch 8) trained on two
scanned micro-batches went from 0.52 to 7.33 samples/s (`experiments/perf/vs_pytorch_sinenet.py`,
"train in 2").

With YNNPACK's convolutions (jax 0.10's default on CPU, which the suite turns off, see
`surrogates.xla_options`) a convolution without padding (`"VALID"`) also ran about 4x slower
than one padded to keep its grid, so `Conv` wraps periodic axes around, pads and crops rather
than convolving without padding.

Shapes: x `(B, *N, I)`, kernel `(*k, I, O)`, output `(B, *M, O)` with
`M = (S + 2 padding - k) // stride + 1` on every axis, `padding` given per axis, where
`S = spread (N - 1) + 1` is the input's extent once its cells are spread `spread` apart
(zeros between them: the transposed convolutions of the U-Nets, `ConvTranspose`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def numbers(dims: int) -> tuple[str, str, str]:
    """Channels-last dimension numbers of a `dims`-D convolution: input, kernel, output."""
    spatial = "DHW"[-dims:]
    return f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def convolve(
    x: jax.Array,
    kernel: jax.Array,
    stride: int,
    padding: tuple[int, ...],
    spread: int = 1,
) -> jax.Array:
    """x (B, *N, I), its cells spread `spread` apart, convolved (cross-correlated, as torch
    and lax do) with kernel (*k, I, O), zero-padded by `padding[d]` cells on both sides of
    spatial axis d: (B, *M, O)."""
    dims = x.ndim - 2
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride,) * dims,
        padding=[(p, p) for p in padding],
        lhs_dilation=(spread,) * dims,
        dimension_numbers=numbers(dims),
    )


def _forward(
    x: jax.Array, kernel: jax.Array, stride: int, padding: tuple[int, ...], spread: int
) -> tuple[jax.Array, tuple]:
    return convolve(x, kernel, stride, padding, spread), (x, kernel)


def _extent(grid: tuple[int, ...], spread: int) -> tuple[int, ...]:
    """Cells of an axis of `grid` cells once spread `spread` apart."""
    return tuple(spread * (n - 1) + 1 for n in grid)


def input_gradient(
    g: jax.Array,
    kernel: jax.Array,
    grid: tuple[int, ...],
    stride: int,
    padding: tuple[int, ...],
    spread: int = 1,
) -> jax.Array:
    """d loss / d x (B, *grid, I) from g = d loss / d output (B, *M, O).

    Each (spread) input cell n collects g at the outputs m it fed, those with `stride m + a -
    padding = n`: the convolution of g spread `stride` apart with the kernel flipped and its
    channels swapped, padded so that the spread input's extent comes out, of which every
    `spread`-th cell is an input cell (the window steps by `spread`)."""
    dims = g.ndim - 2
    size = kernel.shape[0]
    flipped = jnp.flip(kernel, axis=tuple(range(dims))).swapaxes(-1, -2)
    widths = [
        (size - 1 - p, n + p - stride * (m - 1) - 1)
        for n, m, p in zip(_extent(grid, spread), g.shape[1:-1], padding, strict=True)
    ]
    return jax.lax.conv_general_dilated(
        g,
        flipped,
        window_strides=(spread,) * dims,
        padding=widths,
        lhs_dilation=(stride,) * dims,
        dimension_numbers=numbers(dims),
    )


def kernel_gradient(
    x: jax.Array,
    g: jax.Array,
    size: int,
    stride: int,
    padding: tuple[int, ...],
    spread: int = 1,
) -> jax.Array:
    """d loss / d kernel (*k, I, O) from the input x (B, *N, I) and g (B, *M, O).

    `sum over b, m of x_spread_padded[b, stride m + a, i] g[b, m, o]` for every kernel
    offset a: a convolution of x with g as the kernel, the batch axis contracted as channels.
    Written with x as `(I, *N, B)` and g as `(*M, B, O)`, it is in the canonical layout."""
    dims = x.ndim - 2
    spatial = tuple(range(1, dims + 1))
    lhs = jnp.transpose(x, (x.ndim - 1, *spatial, 0))
    rhs = jnp.transpose(g, (*spatial, 0, g.ndim - 1))
    extent = _extent(x.shape[1:-1], spread)
    widths = [
        (p, size + stride * (m - 1) - n - p)
        for n, m, p in zip(extent, g.shape[1:-1], padding, strict=True)
    ]
    out = jax.lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides=(1,) * dims,
        padding=widths,
        lhs_dilation=(spread,) * dims,
        rhs_dilation=(stride,) * dims,
        dimension_numbers=numbers(dims),
    )
    return jnp.transpose(out, (*spatial, 0, out.ndim - 1))  # (I, *k, O) -> (*k, I, O)


def _backward(
    stride: int, padding: tuple[int, ...], spread: int, saved: tuple, g: jax.Array
) -> tuple:
    x, kernel = saved
    dx = input_gradient(g, kernel, x.shape[1:-1], stride, padding, spread)
    dk = kernel_gradient(x, g, kernel.shape[0], stride, padding, spread)
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


convolve.defvjp(_forward, _backward)
