"""CAPE: channel attention guided by PDE parameters, around any operator model (Takamoto,
Alesiani and Niepert, ICML 2023), channels last, 1D and 2D.

`CAPEBlock` makes a cheap first guess of the next frame from the input and the PDE parameters
`p (B, P)`. Three small MLPs `Linear(P, W/2) -> GELU -> Linear(W/2, W)` turn the parameters
into per-channel gains, and the block runs

    h  = GELU(conv_k(x))                                   (W/2 channels, no bias)
    y0 = upsample4(spectral(avgpool4(h)) * gain0)          (spectral conv on a 4x coarser grid)
    y1 = conv_1x1(h) * gain1
    y2 = depthwise_k(h) * gain2                            (W/2 -> W, two outputs per channel)
    y  = conv_1x1(GELU(y0 + y1 + y2 + conv_1x1(h)))        (W -> K C)
    guess = tile(latest, K) + LN(y)          in 1D
    guess = tile(latest, K) * (1 + LN(y))    in 2D

where multiplying each path's channels by its parameter-conditioned gain is the "channel
attention", `latest` is the input's latest frame (its last C channels: the engine stacks frames
oldest first, see `surrogates.training.stepper`) and K = `frames` predicted frames. The block
reads every input channel (all history frames, static inputs) but its residual is the latest
frame; with one history frame, as in the paper, that is the whole input. The parameters enter
raw in 1D and as `p / (1 + p)` (the reference's `sigmoid(log p)`) in 2D, so a CAPE model asks
the engine for unnormalised parameters (`raw_pde_params`), and in 2D they must be positive.

`LN` is the reference's `LayerNorm` over the grid: per sample and channel, the field is
normalised by its mean and variance over all cells, then scaled and shifted cell by cell. The
reference fixes those per-cell fields to one grid; here they are stored on the grid the model
is built for and, on any other grid, sampled at the new cells' positions by linear
interpolation (wrapping around on periodic axes, clamped on the others). Cell j of N' sits at
j N / N' of the build grid, so a grid strided by s (`evaluate --stride-x`) reads every s-th
value exactly.

`CAPE` (`model.wrappers: [{cape: {...}}]`) concatenates the guess to the input channels, runs
the operator inside on `C_in + K C` channels with `(K + 1) C` outputs, and mixes those back
to C with a 1x1 layer, as the reference's `_wrap_model` does. In training it records its guess
for an auxiliary loss: `coefficient` times the relative L2 error of the guess's first frame
against the next frame (the reference's `PrmEmb_coeff`, 5.7e-5 in 1D and 8.34e-5 in 2D, the
defaults). The reference adds this term cumulatively over a rollout's steps; here each step
adds its own term once.

Departures, all forced by running at any grid: the spectral convolution keeps the lowest
`modes` frequencies per axis (16 in 1D, 9 in 2D: weight shapes as the reference's
`SpectralConv1d` and `SpectralConv2d_fast`) and fewer where the pooled grid has fewer; it is
`surrogates.models.spectral.SpectralConv` (the FNO's, grid-independent normalisation and
initialisation) without bias. Convolutions pad with zeros, as the reference's `padding="same"`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.contract import ModelContext, record_auxiliary
from surrogates.models.convolution import Conv, avg_pool, pointwise, torch_uniform
from surrogates.models.fno import exact_gelu
from surrogates.models.registry import register_wrapper
from surrogates.models.spectral import SpectralConv

POOL = 4  # the block's spectral path runs on a grid this many times coarser per axis
MODES = {1: 16, 2: 9}  # the reference's spectral modes per axis
COEFFICIENTS = {1: 5.7e-5, 2: 8.34e-5}  # the reference's auxiliary-loss coefficients


class ParameterGain(nnx.Module):
    """`Linear(P, W/2) -> GELU -> Linear(W/2, W)`: per-channel gains (B, W) from p (B, P)."""

    def __init__(self, n_params: int, width: int, *, rngs: nnx.Rngs):
        self.hidden = pointwise(n_params, width // 2, rngs=rngs)
        self.out = pointwise(width // 2, width, rngs=rngs)

    def __call__(self, p: jax.Array) -> jax.Array:
        return self.out(exact_gelu(self.hidden(p)))


class SpatialLayerNorm(nnx.Module):
    """torch's `LayerNorm(X)` on `(B, C, *X)`, channels last: each sample's channel normalised
    over the grid (biased variance, epsilon 1e-5), then scaled and shifted per cell by fields
    `scale`, `shift` `(*X)` of the build grid, resampled on other grids (module docs)."""

    def __init__(self, spatial_shape: Sequence[int], periodic: Sequence[bool]):
        self.spatial_shape = tuple(spatial_shape)
        self.periodic = tuple(periodic)
        self.scale = nnx.Param(jnp.ones(self.spatial_shape))
        self.shift = nnx.Param(jnp.zeros(self.spatial_shape))

    def __call__(self, y: jax.Array) -> jax.Array:
        """y: (B, *X', C) -> (B, *X', C)."""
        axes = tuple(range(1, y.ndim - 1))
        mean = jnp.mean(y, axis=axes, keepdims=True)
        variance = jnp.mean(jnp.square(y - mean), axis=axes, keepdims=True)
        normalised = (y - mean) * jax.lax.rsqrt(variance + 1e-5)
        grid = y.shape[1:-1]
        scale, shift = (self.resampled(field[...], grid) for field in (self.scale, self.shift))
        return normalised * scale[None, ..., None] + shift[None, ..., None]

    def resampled(self, field: jax.Array, grid: Sequence[int]) -> jax.Array:
        """`field` (*X) at the cells of `grid` (*X'), linearly interpolated axis by axis."""
        for axis, (old, new, wraps) in enumerate(
            zip(self.spatial_shape, grid, self.periodic, strict=True)
        ):
            if old != new:
                field = _interpolated(field, axis, old, new, wraps)
        return field


def _interpolated(field: jax.Array, axis: int, old: int, new: int, wraps: bool) -> jax.Array:
    """`field` along `axis` (old cells) sampled at positions j old / new, j < new."""
    position = np.arange(new) * old / new
    low = np.floor(position).astype(int)
    weight = jnp.asarray(position - low, field.dtype)
    high = low + 1
    high = high % old if wraps else np.minimum(high, old - 1)
    shape = [1] * field.ndim
    shape[axis] = new
    weight = weight.reshape(shape)
    return (1 - weight) * jnp.take(field, low, axis=axis) + weight * jnp.take(
        field, high, axis=axis
    )


def _repeat(x: jax.Array, factor: int) -> jax.Array:
    """(B, *X, C) -> (B, *factor X, C): every cell repeated (torch's nearest upsampling)."""
    for axis in range(1, x.ndim - 1):
        x = jnp.repeat(x, factor, axis=axis)
    return x


class CAPEBlock(nnx.Module):
    """The CAPE block: `x (B, *X, in_channels)`, `p (B, P)` -> the guess `(B, *X, frames *
    channels)` of the next frame(s) (module docs).

    **Arguments:** `in_channels` (all input channels), `channels` (C, the fields; the latest
    frame is the input's last C channels), `n_params` (P), `spatial_shape` (the grid the
    layer norm's fields are stored for), `periodic` (per axis, for resampling them), `width`
    (W, the reference's `widening_factor`), `kernel` (of the first and the depthwise
    convolutions), `modes` (spectral modes per axis, default 16 in 1D and 9 in 2D),
    `frames` (K).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        n_params: int,
        spatial_shape: Sequence[int],
        periodic: Sequence[bool],
        *,
        width: int = 64,
        kernel: int = 5,
        modes: int | None = None,
        frames: int = 1,
        rngs: nnx.Rngs,
    ):
        dims = len(spatial_shape)
        _check_options(dims, width, kernel, frames, n_params)
        half = width // 2
        modes = MODES[dims] if modes is None else modes
        # The reference keeps modes 0..m-1 on the rfft axis and -m..m-1 on the other one.
        n_modes = (*(2 * modes,) * (dims - 1), 2 * modes - 2)
        zeros = (False,) * dims
        self.dims = dims
        self.channels = channels
        self.frames = frames
        self.gains = nnx.List([ParameterGain(n_params, width, rngs=rngs) for _ in range(3)])
        self.lift = Conv(in_channels, half, kernel, zeros, use_bias=False, rngs=rngs)
        self.spectral = SpectralConv(half, width, n_modes, bias=False, rngs=rngs)
        self.pointwise = pointwise(half, width, rngs=rngs)
        self.depthwise = nnx.Conv(
            half,
            width,
            (kernel,) * dims,
            padding="SAME",
            feature_group_count=half,
            use_bias=False,
            kernel_init=torch_uniform(kernel**dims),
            rngs=rngs,
        )
        self.skip = pointwise(half, width, rngs=rngs)
        self.out = pointwise(width, frames * channels, rngs=rngs)
        self.norm = SpatialLayerNorm(spatial_shape, periodic)

    def __call__(self, x: jax.Array, p: jax.Array) -> jax.Array:
        """x: (B, *X, in_channels), p: (B, P) raw -> (B, *X, frames * channels)."""
        p = p.astype(x.dtype)
        if self.dims == 2:
            p = p / (1 + p)  # sigmoid(log p)
        gain0, gain1, gain2 = (_per_channel(gain(p), x.ndim) for gain in self.gains)
        h = exact_gelu(self.lift(x))
        y0 = _repeat(self.spectral(avg_pool(h, POOL)) * gain0, POOL)
        y1 = self.pointwise(h) * gain1
        y2 = self.depthwise(h) * gain2
        y = self.norm(self.out(exact_gelu(y0 + y1 + y2 + self.skip(h))))
        latest = jnp.tile(x[..., -self.channels :], self.frames)
        return latest + y if self.dims == 1 else latest * (1 + y)


def _per_channel(gain: jax.Array, ndim: int) -> jax.Array:
    """(B, W) -> (B, 1, ..., 1, W), broadcasting over the grid of an ndim-D field."""
    return gain.reshape(gain.shape[0], *(1,) * (ndim - 2), gain.shape[-1])


def _check_options(dims: int, width: int, kernel: int, frames: int, n_params: int) -> None:
    if dims not in MODES:
        raise ModelError(f"cape: 1D or 2D data only, got {dims} spatial axes")
    if n_params < 1:
        raise ModelError(
            "cape: the data has no PDE parameters to guide it (set data.params, or use "
            "files whose attributes hold them)"
        )
    if width < 2 or width % 2:
        raise ModelError(f"cape: width must be an even number >= 2, got {width}")
    if kernel < 1 or kernel % 2 == 0:
        raise ModelError(f"cape: kernel must be odd to keep the grid, got {kernel}")
    if frames < 1:
        raise ModelError(f"cape: frames must be >= 1, got {frames}")


@register_wrapper("cape")
class CAPE(nnx.Module):
    """CAPE's parameter-guided channel attention around any operator model, 1D or 2D.

    `__call__(x (B, *X, Cin), pde_params (B, P))` -> `(B, *X, C)`: the block's guess of the
    next `frames` frames is concatenated to `x`, the operator maps the `Cin + frames * C`
    channels to `(frames + 1) * C`, and a 1x1 layer mixes them to C (module docs).

    **Options** (`model.wrappers: [{cape: {width: 64, kernel: 5, frames: 1}}]`): `width`,
    `kernel`, `modes`, `frames` (the block's, see `CAPEBlock`) and `coefficient`, the
    auxiliary loss's weight (default 5.7e-5 in 1D, 8.34e-5 in 2D). The engine supplies the
    channels, grid, boundaries and parameter count from the data.
    """

    raw_pde_params = True  # the block transforms raw parameters itself (module docs)

    def __init__(
        self,
        operator: nnx.Module,
        *,
        in_channels: int,
        out_channels: int,
        spatial_shape: tuple[int, ...],
        boundary: tuple[str, ...],
        n_params: int,
        width: int = 64,
        kernel: int = 5,
        modes: int | None = None,
        frames: int = 1,
        coefficient: float | None = None,
        rngs: nnx.Rngs,
    ):
        periodic = tuple(side == "periodic" for side in boundary)
        self.block = CAPEBlock(
            in_channels,
            out_channels,
            n_params,
            spatial_shape,
            periodic,
            width=width,
            kernel=kernel,
            modes=modes,
            frames=frames,
            rngs=rngs,
        )
        self.operator = operator
        self.mix = pointwise((frames + 1) * out_channels, out_channels, rngs=rngs)
        dims = len(spatial_shape)
        self.coefficient = COEFFICIENTS[dims] if coefficient is None else float(coefficient)
        self.channels = out_channels

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """Options of a small block (the registry's test matrix)."""
        return {"width": 8, "kernel": 3, "modes": 2}

    @classmethod
    def overhead_lines(cls) -> list[str]:
        """The parameters the default block and mixing layer add, for CAPE's 1D and 2D
        settings (one field, one history frame, one PDE parameter)."""
        lines = []
        for grid in ((128,), (64, 64)):
            block = nnx.eval_shape(
                lambda grid=grid: CAPEBlock(1, 1, 1, grid, (True,) * len(grid), rngs=nnx.Rngs(0))
            )
            count = sum(np.size(leaf) for leaf in jax.tree.leaves(nnx.state(block, nnx.Param)))
            cells = "x".join(map(str, grid))
            lines.append(
                f"adds {count + 2 + 1:,} parameters on {cells} cells (one field and parameter, "
                "defaults), plus the model inside's wider input and output"
            )
        return lines

    @classmethod
    def inner_context(
        cls, context: ModelContext, *, frames: int = 1, **options: Any
    ) -> ModelContext:
        """The operator reads the input and the guess, and gives `frames + 1` frames' channels."""
        del options
        return replace(
            context,
            in_channels=context.in_channels + frames * context.out_channels,
            out_channels=(frames + 1) * context.out_channels,
        )

    @property
    def inner(self) -> nnx.Module:
        return self.operator

    def inner_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        return spatial_shape

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """The spectral path pools by 4: every axis a multiple of 4."""
        if any(size % POOL for size in spatial_shape):
            raise ModelError(
                f"cape: the grid {tuple(spatial_shape)} must be a multiple of {POOL} on every "
                "axis (change data.stride_x)"
            )

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, Cin), pde_params: (B, P) raw -> (B, *X, C)."""
        if pde_params is None:
            raise ModelError(
                "cape: the model needs PDE parameters (pde_params), and none were given"
            )
        guess = self.block(x, pde_params)
        record_auxiliary(self, guess)
        out = self.operator(jnp.concatenate([x, guess], axis=-1), pde_params=pde_params)
        return self.mix(out)

    def auxiliary_loss(self, guess: jax.Array, target: jax.Array) -> jax.Array:
        """`coefficient` times the mean over samples of `|g - t| / |t|` (L2 over the grid and
        channels) for the guess's first frame g (B, *X, C) and the next frame t."""
        first = guess[..., : self.channels]
        axes = tuple(range(1, target.ndim))
        error = jnp.sqrt(jnp.sum(jnp.square(first - target), axis=axes))
        size = jnp.sqrt(jnp.sum(jnp.square(target), axis=axes))
        return self.coefficient * jnp.mean(error / size)
