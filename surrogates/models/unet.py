"""U-Net baselines, channels last, in 1D, 2D or 3D.

- `UNet` (`unet`): the 2015 U-Net as PDEBench trains it (`pdebench/models/unet/unet.py`,
  `UNet1d/2d/3d`): levels of double convolutions (conv3 without bias -> norm -> tanh,
  twice), max pooling down, a bottleneck, transposed convolutions (k=2, s=2) up, each level's
  encoder output concatenated after the upsampled features, a final 1x1 convolution.
  PDEBench's has four levels; `num_layers` changes that.
- `ModernUNet` (`unet_mod`): PDEArena's modern U-Net (`pdearena/modules/twod_unet.py`,
  class `Unet`, registry name `Unetmod-64`): pre-norm residual blocks, widths multiplied
  level by level by `ch_mults`, stride-2 convolutions down, transposed convolutions (k=4,
  s=2, p=1) up, every block's output kept as a skip connection.

Both take `padding`: `"zeros"` as the published models, `"circular"` on every axis, or
`"auto"`: periodically on the axes the data's boundary calls periodic, zeros on the others.
Pooling and the k=2 upsampling never cross a border; every other convolution pads as told,
so with circular padding a model commutes with rolls of its input by whole coarsest cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.convolution import (
    Conv,
    ConvTranspose,
    check_input,
    check_levels,
    group_norm,
    layer_options,
    max_pool2x,
    pointwise,
)
from surrogates.models.registry import register

Activation = Callable[[jax.Array], jax.Array]

# "group": one group, statistics over all channels (as SineNet's GroupNorm(1)); "instance":
# one group per channel, each channel normalised on its own as BatchNorm does across a batch.
UNET_NORMS = ("group", "instance")


class DoubleConv(nnx.Module):
    """PDEBench's `_block`, `(B, *X, in) -> (B, *X, out)`: conv3 -> norm -> activation, twice.

    The convolutions have a bias only without a norm (the norm's shift takes its place, as
    in the reference, where BatchNorm follows every bias-free convolution).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        periodic: tuple[bool, ...],
        *,
        norm: str | None,
        act: Activation,
        rngs: nnx.Rngs,
    ):
        def conv(width: int) -> Conv:
            return Conv(width, out_channels, 3, periodic, use_bias=norm is None, rngs=rngs)

        def normalise() -> nnx.GroupNorm | None:
            if norm is None:
                return None
            groups = 1 if norm == "group" else out_channels
            return group_norm(out_channels, groups, rngs=rngs)

        self.conv1, self.norm1 = conv(in_channels), normalise()
        self.conv2, self.norm2 = conv(out_channels), normalise()
        self.act = act

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv1(x)
        h = self.act(h if self.norm1 is None else self.norm1(h))
        h = self.conv2(h)
        return self.act(h if self.norm2 is None else self.norm2(h))


@register("unet")
class UNet(nnx.Module):
    """U-Net (2015) as PDEBench's baseline: levels of conv3-norm-tanh pairs, max pooling.

    Level k has `init_features * 2**k` channels (k = 0 .. num_layers - 1), the bottleneck
    `init_features * 2**num_layers`; the grid must halve `num_layers` times. With 4 levels
    and the same norm parameters the parameter count is PDEBench's `UNet{1,2,3}d(in_channels,
    out_channels, init_features)`.

    **Arguments:**

    - `in_channels`, `out_channels`: input channels (history frames stacked) and output.
    - `spatial_dims`: 1, 2 or 3.
    - `init_features`: channels of the first level (PDEBench: 32).
    - `num_layers`: levels, each halving the grid (PDEBench: 4).
    - `norm`: `"group"`, GroupNorm with one group (statistics over all channels and the grid
      of each sample); `"instance"`, one group per channel (per-channel statistics, as
      BatchNorm's but per sample); both with a scale and shift per channel, as BatchNorm's
      2 x C. `None`: no norm, and then the convolutions have a bias.
      BatchNorm itself is left out: its running statistics would have to be returned by the
      training step as updated state and the model switched to evaluation mode for
      rollouts, and the engine's compiled step carries no mutable batch statistics.
    - `padding`: `"zeros"` (PDEBench's), `"circular"` or `"auto"` (periodic where `boundary`
      says so).
    - `activation`: `"tanh"` (PDEBench's), `"gelu"`, `"relu"` or `"silu"`.
    - `boundary`: the data's boundary per axis (given by the engine).
    - `rngs`: random streams for the initial parameters (torch's initialisation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        init_features: int = 32,
        num_layers: int = 4,
        norm: str | None = "group",
        padding: str = "zeros",
        activation: str = "tanh",
        boundary: Sequence[str] | None = None,
        rngs: nnx.Rngs,
    ):
        act, periodic = layer_options("unet", spatial_dims, activation, padding, boundary)
        if norm is not None and norm not in UNET_NORMS:
            raise ModelError(f"unet: norm must be one of {(*UNET_NORMS, None)}, got {norm!r}")
        for name, value in (("init_features", init_features), ("num_layers", num_layers)):
            if value < 1:
                raise ModelError(f"unet: {name} must be at least 1, got {value}")

        def block(width_in: int, width_out: int) -> DoubleConv:
            return DoubleConv(width_in, width_out, periodic, norm=norm, act=act, rngs=rngs)

        widths = [init_features * 2**k for k in range(num_layers + 1)]
        self.encoders = nnx.List(
            [block(a, b) for a, b in zip([in_channels, *widths[:-2]], widths[:-1], strict=True)]
        )
        self.bottleneck = block(widths[-2], widths[-1])
        below = list(reversed(widths[:-1]))
        self.upsamples = nnx.List(
            [ConvTranspose(2 * width, width, 2, periodic, stride=2, rngs=rngs) for width in below]
        )
        self.decoders = nnx.List([block(2 * width, width) for width in below])
        self.output = pointwise(init_features, out_channels, rngs=rngs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.spatial_dims, self.num_layers = spatial_dims, num_layers

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 2 levels of 2 and 4 channels, 8 at the bottleneck."""
        return {"init_features": 2, "num_layers": 2, "padding": "auto"}

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """One axis per `spatial_dims`, each halving `num_layers` times."""
        check_levels("unet", self.spatial_dims, self.num_layers, spatial_shape)

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, in_channels) -> (B, *X, out_channels); `pde_params` are ignored."""
        check_input(x, self.spatial_dims, self.in_channels)
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = max_pool2x(x)
        x = self.bottleneck(x)
        for upsample, decoder in zip(self.upsamples, self.decoders, strict=True):
            x = decoder(jnp.concatenate([upsample(x), skips.pop()], axis=-1))
        return self.output(x)


class ResidualBlock(nnx.Module):
    """PDEArena's pre-norm residual block, `(B, *X, in) -> (B, *X, out)`:

        h = conv3(act(norm1(x)));  h = conv3(act(norm2(h)));  return h + shortcut(x)

    norms GroupNorm(1) (the reference's blocks keep its default of one group), the shortcut
    a 1x1 convolution when the widths differ, the identity otherwise.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        periodic: tuple[bool, ...],
        *,
        norm: bool,
        act: Activation,
        rngs: nnx.Rngs,
    ):
        self.conv1 = Conv(in_channels, out_channels, 3, periodic, rngs=rngs)
        self.conv2 = Conv(out_channels, out_channels, 3, periodic, rngs=rngs)
        self.norm1 = group_norm(in_channels, 1, rngs=rngs) if norm else None
        self.norm2 = group_norm(out_channels, 1, rngs=rngs) if norm else None
        changes = in_channels != out_channels
        self.shortcut = pointwise(in_channels, out_channels, rngs=rngs) if changes else None
        self.act = act

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv1(self.act(x if self.norm1 is None else self.norm1(x)))
        h = self.conv2(self.act(h if self.norm2 is None else self.norm2(h)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class Attention(nnx.Module):
    """PDEArena's `AttentionBlock` with one head, `(B, *X, C) -> (B, *X, C)`: single-head
    self-attention over all grid cells plus the input.

    As in the reference (and the DDPM code it follows) the softmax normalises over the
    queries, not the keys, and there is no norm: the reference builds a GroupNorm it never
    applies, left out here (2 x C parameters fewer than PDEArena counts).
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.projection = pointwise(channels, 3 * channels, rngs=rngs)
        self.output = pointwise(channels, channels, rngs=rngs)
        self.scale = channels**-0.5

    def __call__(self, x: jax.Array) -> jax.Array:
        tokens = x.reshape(x.shape[0], -1, x.shape[-1])  # (B, N, C)
        q, k, v = jnp.split(self.projection(tokens), 3, axis=-1)
        scores = jnp.einsum("bic,bjc->bij", q, k) * self.scale
        weights = jax.nn.softmax(scores, axis=1)
        mixed = jnp.einsum("bij,bjc->bic", weights, v)
        return (self.output(mixed) + tokens).reshape(x.shape)


@register("unet_mod")
class ModernUNet(nnx.Module):
    """Modern U-Net (PDEArena's Unetmod): pre-norm residual blocks, widths multiplied per level.

    The widths: `hidden_channels` after the input convolution, then level i has
    `hidden_channels * ch_mults[0] * ... * ch_mults[i]` channels; `len(ch_mults) - 1`
    stride-2 convolutions halve the grid, so every axis must be divisible by
    `2**(len(ch_mults) - 1)`. Down: per level `n_blocks` residual blocks, then a downsampling
    conv3 (stride 2) except at the last level. Middle: residual block, attention (with
    `mid_attn`), residual block. Up, per level from the bottom: `n_blocks + 1` residual
    blocks, each on its input concatenated with a skip connection (the outputs of the input
    convolution and of every down module, last first), the last one dividing the width by
    the level's multiplier, then a transposed convolution (k=4, s=2, p=1) except at the top.
    Out: GroupNorm(8) -> activation -> conv3.

    PDEArena's `Unetmod-64` (hidden 64, ch_mults (1, 2, 2, 4), n_blocks 2, norm) has
    144M parameters; the count here is the reference's for the same channels, except with
    `mid_attn` (see `Attention`). Its per-level attention (`is_attn`, off in every
    registered PDEArena model) is left out.

    **Arguments:**

    - `in_channels`, `out_channels`: input channels (history frames stacked) and output.
    - `spatial_dims`: 1, 2 or 3 (the reference is 2D; the others use the same layers).
    - `hidden_channels`: width after the input convolution (a multiple of 8 with `norm`).
    - `ch_mults`: integer width multiplier of each level, applied cumulatively.
    - `n_blocks`: residual blocks per level on the way down (one more on the way up).
    - `norm`: the GroupNorms of the blocks and before the output convolution.
    - `mid_attn`: self-attention between the two middle blocks.
    - `use1x1`: 1x1 instead of 3x3 input and output convolutions (the `-1x1` models).
    - `padding`: `"zeros"` (PDEArena's), `"circular"` or `"auto"` (periodic where `boundary`
      says so).
    - `activation`: `"gelu"` (torch's exact), `"relu"`, `"silu"` or `"tanh"`.
    - `boundary`: the data's boundary per axis (given by the engine).
    - `rngs`: random streams for the initial parameters (torch's initialisation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        hidden_channels: int = 64,
        ch_mults: Sequence[int] = (1, 2, 2, 4),
        n_blocks: int = 2,
        norm: bool = True,
        mid_attn: bool = False,
        use1x1: bool = False,
        padding: str = "zeros",
        activation: str = "gelu",
        boundary: Sequence[str] | None = None,
        rngs: nnx.Rngs,
    ):
        act, periodic = layer_options("unet_mod", spatial_dims, activation, padding, boundary)
        ch_mults = tuple(ch_mults)
        _check_widths(hidden_channels, ch_mults, n_blocks, norm)

        def block(width_in: int, width_out: int) -> ResidualBlock:
            return ResidualBlock(width_in, width_out, periodic, norm=norm, act=act, rngs=rngs)

        outer = 1 if use1x1 else 3
        self.lifting = Conv(in_channels, hidden_channels, outer, periodic, rngs=rngs)
        down: list[nnx.Module] = []
        width, skips = hidden_channels, [hidden_channels]
        for level, mult in enumerate(ch_mults):
            wider = width * mult
            for _ in range(n_blocks):
                down.append(block(width, wider))
                width = wider
                skips.append(width)
            if level < len(ch_mults) - 1:
                down.append(Conv(width, width, 3, periodic, stride=2, rngs=rngs))
                skips.append(width)
        self.down = nnx.List(down)
        self.middle = nnx.List(
            [block(width, width)]
            + ([Attention(width, rngs=rngs)] if mid_attn else [])
            + [block(width, width)]
        )
        up: list[nnx.Module] = []
        for level in reversed(range(len(ch_mults))):
            for _ in range(n_blocks):
                up.append(block(width + skips.pop(), width))
            narrower = width // ch_mults[level]
            up.append(block(width + skips.pop(), narrower))
            width = narrower
            if level > 0:
                up.append(ConvTranspose(width, width, 4, periodic, stride=2, rngs=rngs))
        self.up = nnx.List(up)
        self.norm = group_norm(hidden_channels, 8, rngs=rngs) if norm else None
        self.projection = Conv(hidden_channels, out_channels, outer, periodic, rngs=rngs)
        self.act = act
        self.in_channels, self.out_channels = in_channels, out_channels
        self.spatial_dims, self.levels = spatial_dims, len(ch_mults) - 1

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: widths 8 and 16, one block per level, middle attention."""
        return {
            "hidden_channels": 8,
            "ch_mults": (1, 2),
            "n_blocks": 1,
            "mid_attn": True,
            "padding": "auto",
        }

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """One axis per `spatial_dims`, each halving `len(ch_mults) - 1` times."""
        check_levels("unet_mod", self.spatial_dims, self.levels, spatial_shape, "ch_mults")

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, in_channels) -> (B, *X, out_channels); `pde_params` are ignored."""
        check_input(x, self.spatial_dims, self.in_channels)
        x = self.lifting(x)
        skips = [x]
        for module in self.down:
            x = module(x)
            skips.append(x)
        for module in self.middle:
            x = module(x)
        for module in self.up:
            if isinstance(module, ConvTranspose):
                x = module(x)
            else:
                x = module(jnp.concatenate([x, skips.pop()], axis=-1))
        x = self.act(x if self.norm is None else self.norm(x))
        return self.projection(x)


def _check_widths(hidden_channels: int, ch_mults: tuple, n_blocks: int, norm: bool) -> None:
    if not ch_mults or any(not isinstance(m, int) or m < 1 for m in ch_mults):
        raise ModelError(f"unet_mod: ch_mults must be positive integers, got {ch_mults}")
    if n_blocks < 1:
        raise ModelError(f"unet_mod: n_blocks must be at least 1, got {n_blocks}")
    if hidden_channels < 1 or (norm and hidden_channels % 8):
        raise ModelError(
            "unet_mod: hidden_channels must be positive and, with norm (GroupNorm(8) before "
            f"the output), a multiple of 8, got {hidden_channels}"
        )
