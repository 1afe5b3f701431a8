"""Convolutional building blocks, channels last, in 1D, 2D or 3D, as PyTorch builds them.

The U-shaped models (SineNet, the U-Nets) are PyTorch models in their papers; these layers
compute what `torch.nn.Conv{1,2,3}d`, `GroupNorm`, `AvgPool` and `interpolate` compute, with
torch's default initialisation, so a model here starts from the same distribution and has the
same parameter count:

- `Conv`: a convolution padded per axis, periodically (`padding_mode="circular"`) on the axes
  marked periodic and with zeros on the others; kernel and bias uniform in `+-1/sqrt(fan_in)`.
- `group_norm`: `GroupNorm(groups, C)` with torch's epsilon 1e-5.
- `avg_pool2x`, `upsample_cubic2x`: halve and double every spatial axis. The upsampling is
  torch's `interpolate(scale_factor=2, mode="bicubic", align_corners=False)`: Keys' cubic
  convolution with coefficient -0.75 (`jax.image.resize` uses -0.5), the border samples
  repeated; on a periodic axis the neighbours wrap around, which is what SineNet's
  `circular_interpolate` (circular pad 2, interpolate, crop 4) computes.
- `ConvTranspose`, `max_pool2x`: the U-Nets' transposed convolutions (torch's
  `ConvTranspose`, wrapping around on periodic axes) and max pooling; `periodic_axes` turns a
  model's `padding` option into the axes that wrap. `Conv` takes a stride and goes without
  bias for them too.

Arrays are `(B, *X, C)` throughout.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.convolve import convolve

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # torch's nn.GELU()
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called `name`; `ModelError` naming the known ones otherwise."""
    if name not in ACTIVATIONS:
        raise ModelError(f"activation: unknown {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def torch_uniform(fan_in: int) -> Callable[..., jax.Array]:
    """torch's default initialiser of a layer's kernel and bias: uniform in
    `+-1/sqrt(fan_in)`.

    With a concrete key the values are drawn on the host by NumPy, seeded by the key's bits:
    drawn by JAX, every new shape (a U-Net has dozens) would compile a random-number program
    first, and building a small SineNet took 12 s. Traced (`nnx.eval_shape`, building inside
    `jit`), JAX draws them. Either way the same key gives the same values every time."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        if isinstance(key, jax.core.Tracer):
            return jax.random.uniform(key, shape, dtype, -bound, bound)
        bits = (
            jax.random.key_data(key)
            if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
            else key
        )
        generator = np.random.default_rng(np.asarray(bits, np.uint32).ravel().tolist())
        return jnp.asarray(generator.uniform(-bound, bound, size=tuple(shape)), dtype)

    return init


class Conv(nnx.Module):
    """`kernel_size`-wide convolution over every spatial axis, `(B, *X, in) -> (B, *X /
    stride, out)` (every X divisible by `stride`): torch's `Conv{1,2,3}d(in, out, kernel_size,
    stride, padding=kernel_size // 2, bias=use_bias)`, padded periodically on the axes
    `periodic` marks and with zeros on the others. Parameters `conv.kernel (*k, in, out)` and,
    with `use_bias`, `conv.bias (out,)`."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int,
        periodic: Sequence[bool],
        *,
        stride: int = 1,
        use_bias: bool = True,
        rngs: nnx.Rngs,
    ):
        if kernel_size % 2 != 1:
            raise ModelError(f"kernel_size must be odd to keep the grid, got {kernel_size}")
        dims = len(periodic)
        init = torch_uniform(in_features * kernel_size**dims)
        self.periodic = tuple(bool(p) for p in periodic)
        self.half = kernel_size // 2
        self.stride = stride
        self.conv = nnx.Conv(
            in_features,
            out_features,
            (kernel_size,) * dims,
            strides=stride,
            padding="VALID",
            use_bias=use_bias,
            kernel_init=init,
            bias_init=init,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, *X, in) -> (B, *X / stride, out)."""
        half, stride = self.half, self.stride
        # Periodic axes get their neighbours wrapped around, then (with stride 1) the zero
        # padding every axis gets and a crop back: YNNPACK ran unpadded convolutions about 4x
        # slower (see `convolve`).
        if half and any(self.periodic):
            x = wrap(x, half, self.periodic)
        if stride == 1:
            y = convolve(x, self.conv.kernel[...], 1, (half,) * len(self.periodic))
            y = crop(y, half, self.periodic) if half else y
        else:
            padding = tuple(0 if wraps else half for wraps in self.periodic)
            y = convolve(x, self.conv.kernel[...], stride, padding)
        return y if self.conv.bias is None else y + self.conv.bias[...]


def pad(x: jax.Array, width: int, periodic: Sequence[bool], edge: bool = False) -> jax.Array:
    """`x (B, *X, C)` padded by `width` on both sides of each spatial axis: wrapped around
    on a periodic axis, else zeros (or the border value repeated, with `edge`)."""
    for axis, wraps in enumerate(periodic, start=1):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (width, width)
        mode = "wrap" if wraps else ("edge" if edge else "constant")
        x = jnp.pad(x, widths, mode=mode)
    return x


def wrap(x: jax.Array, width: int, periodic: Sequence[bool]) -> jax.Array:
    """`x (B, *X, C)` with `width` cells wrapped around onto both sides of the axes
    `periodic` marks; the other axes are left alone."""
    widths = [(0, 0)] + [(width, width) if p else (0, 0) for p in periodic] + [(0, 0)]
    return jnp.pad(x, widths, mode="wrap")


def crop(x: jax.Array, width: int, axes: Sequence[bool]) -> jax.Array:
    """`x (B, *X, C)` without `width` cells on both sides of the axes `axes` marks."""
    index = [slice(None)] + [slice(width, -width) if a else slice(None) for a in axes]
    return x[tuple(index)]


def pointwise(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """A 1x1 convolution: a dense map of the channel axis, initialised as torch's."""
    init = torch_uniform(in_features)
    return nnx.Linear(in_features, out_features, kernel_init=init, bias_init=init, rngs=rngs)


def group_norm(channels: int, groups: int, *, rngs: nnx.Rngs) -> nnx.GroupNorm:
    """torch's `GroupNorm(groups, channels)`: statistics over each group's channels and the
    whole grid, per sample; scale and shift per channel."""
    return nnx.GroupNorm(channels, num_groups=groups, epsilon=1e-5, rngs=rngs)


def avg_pool2x(x: jax.Array) -> jax.Array:
    """`(B, *X, C) -> (B, *X/2, C)`: the mean of each 2 x ... x 2 block (every X even)."""
    return avg_pool(x, 2)


def avg_pool(x: jax.Array, factor: int) -> jax.Array:
    """`(B, *X, C) -> (B, *X/factor, C)`: the mean of each block of `factor` cells per axis
    (every X a multiple of `factor`)."""
    batch, *grid, channels = x.shape
    split = [n for size in grid for n in (size // factor, factor)]
    blocks = x.reshape(batch, *split, channels)
    return blocks.mean(axis=tuple(range(2, 2 * len(grid) + 1, 2)))


def _cubic_weights(t: float, a: float = -0.75) -> tuple[float, float, float, float]:
    """Keys' cubic convolution weights of the samples at -1, 0, 1, 2 for a point `t` in
    [0, 1) past sample 0 (torch's `upsample_bicubic2d` coefficients)."""

    def near(s: float) -> float:  # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s: float) -> float:  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return far(1 + t), near(t), near(1 - t), far(2 - t)


# Doubling with align_corners=False: output 2k samples the input at k - 1/4, output 2k + 1
# at k + 1/4, so every output is one of two fixed four-tap filters.
_EVEN = _cubic_weights(0.75)  # taps k-2 .. k+1
_ODD = _cubic_weights(0.25)  # taps k-1 .. k+2


def upsample_cubic2x(x: jax.Array, periodic: Sequence[bool]) -> jax.Array:
    """`(B, *X, C) -> (B, *2X, C)`, cubic convolution along each spatial axis in turn (torch's
    bicubic in 2D; the same filter in 1D and 3D). Border samples repeat on a non-periodic
    axis and wrap around on a periodic one."""
    for axis, wraps in enumerate(periodic, start=1):
        x = _double(x, axis, wraps)
    return x


def _padded(x: jax.Array, axis: int, wraps: bool) -> jax.Array:
    """x with 2 cells more on both ends of `axis`: wrapped around, or the border repeated."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = (2, 2)
    return jnp.pad(x, widths, mode="wrap" if wraps else "edge")


def _zero_padded(x: jax.Array, axis: int, low: int, high: int) -> jax.Array:
    widths = [(0, 0)] * x.ndim
    widths[axis] = (low, high)
    return jnp.pad(x, widths)


def _weighted_windows(x: jax.Array, weights: Sequence[float], axis: int, size: int) -> jax.Array:
    """sum over j of weights[j] x[j : j + size] along `axis`."""
    return sum(w * jax.lax.slice_in_dim(x, j, j + size, axis=axis) for j, w in enumerate(weights))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _double(x: jax.Array, axis: int, wraps: bool) -> jax.Array:
    """x (..., N, ...) -> (..., 2N, ...) along `axis`: outputs 2k and 2k + 1 are the even and
    odd four-tap filters over the padded samples k .. k + 3 and k + 1 .. k + 4."""
    size = x.shape[axis]
    padded = _padded(x, axis, wraps)
    even = _weighted_windows(padded, _EVEN, axis, size)
    odd = _weighted_windows(jax.lax.slice_in_dim(padded, 1, size + 4, axis=axis), _ODD, axis, size)
    both = jnp.stack([even, odd], axis=axis + 1)
    return both.reshape(*x.shape[:axis], 2 * size, *x.shape[axis + 1 :])


def _double_forward(x: jax.Array, axis: int, wraps: bool) -> tuple[jax.Array, None]:
    return _double(x, axis, wraps), None  # linear: the gradient needs nothing of x


def _double_backward(axis: int, wraps: bool, _: None, g: jax.Array) -> tuple[jax.Array]:
    """The gradient as one correlation of the even and odd halves of g with the reversed
    filters, then the padding folded back onto x. Autodiff instead adds one padded copy of
    g per tap (eight per axis), which took 6% of a SineNet's training step."""
    size = g.shape[axis] // 2
    shape = (*g.shape[:axis], size, *g.shape[axis + 1 :])
    halves = g.reshape(*g.shape[:axis], size, 2, *g.shape[axis + 1 :])
    even, odd = (jax.lax.index_in_dim(halves, i, axis + 1, keepdims=False) for i in (0, 1))
    # Padded sample q took even[q - j] with weight _EVEN[j] and odd[q - 1 - j] with _ODD[j].
    d_padded = _weighted_windows(
        _zero_padded(even, axis, 3, 4), _EVEN[::-1], axis, size + 4
    ) + _weighted_windows(_zero_padded(odd, axis, 4, 3), _ODD[::-1], axis, size + 4)
    _, pad_transpose = jax.vjp(lambda x: _padded(x, axis, wraps), jnp.zeros(shape, g.dtype))
    return pad_transpose(d_padded.astype(g.dtype))


_double.defvjp(_double_forward, _double_backward)


def check_levels(
    model: str,
    spatial_dims: int,
    levels: int,
    spatial_shape: Sequence[int],
    depth: str = "num_layers",
) -> None:
    """`ModelError` unless `spatial_shape` has `spatial_dims` axes that each halve `levels`
    times; the message names `data.stride_x` and the model's `depth` setting."""
    if len(spatial_shape) != spatial_dims:
        raise ModelError(
            f"{model}: built for {spatial_dims} spatial axes, the data has "
            f"{len(spatial_shape)} {tuple(spatial_shape)}"
        )
    factor = 2**levels
    for axis, size in enumerate(spatial_shape):
        if size % factor:
            raise ModelError(
                f"{model}: {levels} levels halve the grid {levels} times, so every axis must "
                f"be divisible by {factor}; spatial axis {axis} has {size} points (change "
                f"data.stride_x or model.{depth})"
            )


def check_input(x: jax.Array, spatial_dims: int, in_channels: int) -> None:
    """`ValueError` unless `x` is `(B, *X, in_channels)` with `spatial_dims` axes."""
    if x.ndim != spatial_dims + 2 or x.shape[-1] != in_channels:
        raise ValueError(
            f"expected input (B, *X, {in_channels}) with {spatial_dims} spatial axes, got "
            f"shape {x.shape}"
        )


PADDINGS = ("zeros", "circular", "auto")


def periodic_axes(padding: str, spatial_dims: int, boundary: Sequence[str] | None) -> tuple:
    """Which spatial axes a model's `padding` wraps around: all (`"circular"`), none
    (`"zeros"`), or those `boundary` calls periodic (`"auto"`)."""
    if padding not in PADDINGS:
        raise ModelError(f"padding: expected one of {', '.join(PADDINGS)}, got {padding!r}")
    if padding != "auto":
        return (padding == "circular",) * spatial_dims
    if boundary is None or len(boundary) != spatial_dims:
        raise ModelError(
            "padding='auto' takes the data's boundary per spatial axis, and none was given"
        )
    return tuple(kind == "periodic" for kind in boundary)


class ConvTranspose(nnx.Module):
    """torch's `ConvTranspose{1,2,3}d(in, out, kernel_size, stride, padding=(kernel_size -
    stride) // 2)`, which multiplies the grid by `stride`: `(B, *X, in) -> (B, *stride X,
    out)`. On the axes `periodic` marks it computes as if the input repeated periodically
    (torch's transposed convolutions pad with zeros only), so the output wraps around too.

    Parameters `kernel (*k, in, out)` (torch's weight `(in, out, *k)` with its axes moved,
    not flipped) and `bias (out,)`, both uniform in `+-1/sqrt(out * k**d)`: torch counts the
    fan-in of a transposed weight over its output channels.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int,
        periodic: Sequence[bool],
        *,
        stride: int = 2,
        rngs: nnx.Rngs,
    ):
        if kernel_size < stride or (kernel_size - stride) % 2:
            raise ModelError(
                f"a transposed convolution that multiplies the grid by {stride} needs "
                f"kernel_size - stride even and >= 0, got kernel_size {kernel_size}"
            )
        dims = len(periodic)
        init = torch_uniform(out_features * kernel_size**dims)
        self.kernel = nnx.Param(
            init(rngs.params(), (kernel_size,) * dims + (in_features, out_features))
        )
        self.bias = nnx.Param(init(rngs.params(), (out_features,)))
        self.periodic = tuple(bool(p) for p in periodic)
        self.stride = stride
        self.padding = (kernel_size - stride) // 2

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, *X, in) -> (B, *stride X, out)."""
        dims = len(self.periodic)
        size = self.kernel.shape[0]
        # Input cells past each border that still reach the output: wrapped around on a
        # periodic axis, zeros (which add nothing) on the others; the output is cropped back
        # by as many strides.
        reach = (self.padding + self.stride - 1) // self.stride
        if reach:
            x = pad(x, reach, self.periodic)
        crop = self.padding + self.stride * reach
        # A transposed convolution is the convolution of the input spread `stride` apart
        # with the kernel flipped, padded by `kernel_size - 1 - padding`.
        flipped = jnp.flip(self.kernel[...], axis=tuple(range(dims)))
        y = convolve(x, flipped, 1, (size - 1 - crop,) * dims, self.stride)
        return y + self.bias[...]


def max_pool2x(x: jax.Array) -> jax.Array:
    """`(B, *X, C) -> (B, *X/2, C)`: the maximum of each 2 x ... x 2 block (every X even)."""
    batch, *grid, channels = x.shape
    split = [n for size in grid for n in (size // 2, 2)]
    blocks = x.reshape(batch, *split, channels)
    return blocks.max(axis=tuple(range(2, 2 * len(grid) + 1, 2)))


def layer_options(
    model: str,
    spatial_dims: int,
    activation_name: str,
    padding: str,
    boundary: Sequence[str] | None,
    dims: tuple[int, ...] = (1, 2, 3),
) -> tuple[Callable[[jax.Array], jax.Array], tuple[bool, ...]]:
    """A convolutional model's `(activation, periodic axes)` from its options, or
    `ModelError` prefixed with the model's name; `dims` are the spatial dimensions it
    supports."""
    if spatial_dims not in dims:
        supported = ", ".join(map(str, dims))
        raise ModelError(f"{model}: spatial_dims must be one of {supported}, got {spatial_dims}")
    try:
        return activation(activation_name), periodic_axes(padding, spatial_dims, boundary)
    except ModelError as error:
        raise ModelError(f"{model}: {error}") from None
