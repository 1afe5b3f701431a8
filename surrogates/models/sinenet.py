"""SineNet (Zhang et al., ICLR 2024): K sequential U-shaped waves that evolve high-resolution
features a little at a time, so that each wave's skip connections join features that are
close in time.

The architecture of the published code (PDEArena fork, `sinenet_dual.py`), channels last and
in 1D or 2D:

- a 3x3 lifting convolution to `hidden_channels` C;
- K waves, each a U of `num_layers` levels with widths `int(C * mult**k)`, k = 0..L:
  - `Down`: average-pool by 2, `num_blocks` ConvBlocks (conv3x3 -> GroupNorm(1) -> activation,
    twice), plus a 1x1 residual of the pooled input. "Disentangled" multiscale input: the
    wave's input is pooled alongside to each level and, from the second level on,
    concatenated to the features entering the ConvBlock (`disentangle=False`: the "tangle"
    variant, without it);
  - `Up`: bicubic x2 upsampling (torch's, see `convolution.upsample_cubic2x`), concatenated
    after the skip connection of that level, ConvBlocks, plus a 1x1 residual of the
    upsampled input;
  - the wave's residual: `x = x + wave(x)`;
- a 3x3 output convolution to `out_channels`.

`padding="circular"` pads every convolution and every upsampling periodically (the published
`-circ` models); `"zeros"` with zeros and repeated borders; `"auto"` periodically on the axes
the data's boundary calls periodic and with zeros on the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.convolution import (
    Conv,
    avg_pool2x,
    check_input,
    check_levels,
    group_norm,
    layer_options,
    pointwise,
    upsample_cubic2x,
)
from surrogates.models.registry import register


class ConvBlock(nnx.Module):
    """Post-norm double convolution, `(B, *X, in) -> (B, *X, out)`: conv3x3 -> GroupNorm(1)
    -> activation, twice. Conditioned (`conditioning` "add" or "adagn" with an embedding of
    `embedding` channels), a linear map of the embedding is added to the first half's
    output, or scales and shifts it: `h * (1 + scale) + shift`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        periodic: tuple[bool, ...],
        *,
        norm: bool,
        act: Callable[[jax.Array], jax.Array],
        conditioning: str = "none",
        embedding: int = 0,
        rngs: nnx.Rngs,
    ):
        self.conv1 = Conv(in_channels, out_channels, 3, periodic, rngs=rngs)
        self.conv2 = Conv(out_channels, out_channels, 3, periodic, rngs=rngs)
        self.norm1 = group_norm(out_channels, 1, rngs=rngs) if norm else None
        self.norm2 = group_norm(out_channels, 1, rngs=rngs) if norm else None
        width = 2 * out_channels if conditioning == "adagn" else out_channels
        conditioned = conditioning != "none"
        self.condition = pointwise(embedding, width, rngs=rngs) if conditioned else None
        self.act = act

    def __call__(self, x: jax.Array, embedding: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, in), embedding: (B, E) if conditioned -> (B, *X, out)."""
        h = self.conv1(x)
        h = self.act(self.norm1(h) if self.norm1 is not None else h)
        if self.condition is not None:
            h = _condition(h, self.condition(embedding))
        h = self.conv2(h)
        return self.act(self.norm2(h) if self.norm2 is not None else h)


def _condition(h: jax.Array, values: jax.Array) -> jax.Array:
    """h (B, *X, C) plus values (B, C), or scaled and shifted by values (B, 2C)."""
    values = values.reshape(values.shape[0], *(1,) * (h.ndim - 2), values.shape[-1])
    if values.shape[-1] == h.shape[-1]:
        return h + values
    scale, shift = jnp.split(values, 2, axis=-1)
    return h * (1 + scale) + shift


class Down(nnx.Module):
    """One level down: pool by 2, ConvBlocks (the first also taking the pooled wave input
    when disentangled and not the first level), 1x1 residuals."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        wave_channels: int,
        *,
        first: bool,
        disentangle: bool,
        num_blocks: int,
        residual: bool,
        block: Callable[[int, int], ConvBlock],
        rngs: nnx.Rngs,
    ):
        joins = disentangle and not first
        widths = [in_channels + wave_channels * joins] + [out_channels] * (num_blocks - 1)
        self.blocks = nnx.List([block(width, out_channels) for width in widths])
        self.shortcut = pointwise(in_channels, out_channels, rngs=rngs) if residual else None
        self.joins, self.disentangle = joins, disentangle

    def __call__(
        self, dx: jax.Array, h: jax.Array, embedding: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """dx: the wave input at the level above; h: (B, *X, in) -> both at X/2, h with
        `out` channels."""
        if self.disentangle:
            dx = avg_pool2x(dx)
        h = avg_pool2x(h)
        extra = dx if self.joins else None
        return dx, _blocks(self.blocks, self.shortcut, h, embedding, extra=extra)


class Up(nnx.Module):
    """One level up: bicubic x2, the level's skip connection first, ConvBlocks, 1x1
    residuals of the upsampled input."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_blocks: int,
        residual: bool,
        periodic: tuple[bool, ...],
        block: Callable[[int, int], ConvBlock],
        rngs: nnx.Rngs,
    ):
        widths = [in_channels + out_channels] + [out_channels] * (num_blocks - 1)
        self.blocks = nnx.List([block(width, out_channels) for width in widths])
        self.shortcut = pointwise(in_channels, out_channels, rngs=rngs) if residual else None
        self.periodic = periodic

    def __call__(
        self, low: jax.Array, skip: jax.Array, embedding: jax.Array | None = None
    ) -> jax.Array:
        """low: (B, *X/2, in), skip: (B, *X, out) -> (B, *X, out)."""
        h = upsample_cubic2x(low, self.periodic)
        return _blocks(self.blocks, self.shortcut, h, embedding, before=skip)


def _blocks(
    blocks: Sequence[ConvBlock],
    shortcut: nnx.Linear | None,
    h: jax.Array,
    embedding: jax.Array | None,
    *,
    extra: jax.Array | None = None,
    before: jax.Array | None = None,
) -> jax.Array:
    """ConvBlocks on `h` (the first on `[before, h, extra]`, whichever are given), each
    with a residual: a 1x1 map of `h` for the first block, the identity after."""
    parts = [p for p in (before, h, extra) if p is not None]
    x = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else h
    for k, block in enumerate(blocks):
        out = block(x if k == 0 else h, embedding)
        if shortcut is not None:
            out = out + (shortcut(h) if k == 0 else h)
        h = out
    return h


class Wave(nnx.Module):
    """One U: `num_layers` levels down and up, widths `widths[0] .. widths[-1]`."""

    def __init__(
        self,
        widths: Sequence[int],
        *,
        disentangle: bool,
        num_blocks: int,
        residual: bool,
        periodic: tuple[bool, ...],
        block: Callable[[int, int], ConvBlock],
        rngs: nnx.Rngs,
    ):
        levels = range(len(widths) - 1)
        common = {"num_blocks": num_blocks, "residual": residual, "block": block, "rngs": rngs}
        self.down = nnx.List(
            [
                Down(
                    widths[k],
                    widths[k + 1],
                    widths[0],
                    first=k == 0,
                    disentangle=disentangle,
                    **common,
                )
                for k in levels
            ]
        )
        self.up = nnx.List(
            [Up(widths[k + 1], widths[k], periodic=periodic, **common) for k in reversed(levels)]
        )

    def __call__(self, x: jax.Array, embedding: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, widths[0]), embedding: (B, E) if conditioned -> the same shape."""
        skips, dx = [x], x
        for down in self.down:
            dx, h = down(dx, skips[-1], embedding)
            skips.append(h)
        h = skips.pop()
        for up in self.up:
            h = up(h, skips.pop(), embedding)
        return h


@register("sinenet")
class SineNet(nnx.Module):
    """SineNet: K sequential U-shaped waves with disentangled multiscale inputs (ICLR 2024).

    **Arguments:**

    - `in_channels`, `out_channels`: input channels (history frames stacked) and output.
    - `spatial_dims`: 1 or 2 (the paper's models are 2D).
    - `hidden_channels`: width C of the top level; level k has `int(C * mult**k)`.
    - `num_waves`: K; `num_layers`: levels per wave (the grid must halve that often);
      `num_blocks`: ConvBlocks per level.
    - `padding`: `zeros`, `circular` or `auto` (periodic where `boundary` says so).
    - `disentangle`: feed the pooled wave input to every level below the first.
    - `residual`: the 1x1 residuals of the levels; `wave_residual`: `x + wave(x)`.
    - `norm`: GroupNorm(1) in the ConvBlocks; `activation`: gelu (torch's exact), relu, silu.
    - `conditioning`: `none`, or the published conditioned variants on the PDE parameters:
      each parameter's sinusoidal embedding (C features, periods up to 1e4) goes through an
      MLP C -> 4C -> 4C, the sum over parameters is the embedding every ConvBlock adds
      (`add`) or scales and shifts by (`adagn`) after its first convolution. The published
      models embed the time step Δt the same way; the engine steps one fixed Δt, so that
      constant embedding is left out (with one parameter the parameter count is the
      published time-conditioned model's).
    - `boundary`, `n_params`: the data's boundary per axis and its number of PDE parameters
      (given by the engine).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        hidden_channels: int = 64,
        num_waves: int = 8,
        mult: float = 1.425,
        num_layers: int = 4,
        num_blocks: int = 1,
        padding: str = "zeros",
        disentangle: bool = True,
        residual: bool = True,
        wave_residual: bool = True,
        norm: bool = True,
        activation: str = "gelu",
        conditioning: str = "none",
        boundary: Sequence[str] | None = None,
        n_params: int = 0,
        rngs: nnx.Rngs,
    ):
        _check_sizes(num_waves, num_layers, num_blocks)
        _check_conditioning(conditioning, n_params)
        act, periodic = layer_options(
            "sinenet", spatial_dims, activation, padding, boundary, dims=(1, 2)
        )
        widths = [int(hidden_channels * mult**k) for k in range(num_layers + 1)]
        embedding = 4 * hidden_channels

        def block(width_in: int, width_out: int) -> ConvBlock:
            return ConvBlock(
                width_in,
                width_out,
                periodic,
                norm=norm,
                act=act,
                conditioning=conditioning,
                embedding=embedding,
                rngs=rngs,
            )

        self.embedders = nnx.List(
            []
            if conditioning == "none"
            else [
                ParameterEmbedding(hidden_channels, embedding, act, rngs=rngs)
                for _ in range(n_params)
            ]
        )

        self.lifting = Conv(in_channels, hidden_channels, 3, periodic, rngs=rngs)
        self.waves = nnx.List(
            [
                Wave(
                    widths,
                    disentangle=disentangle,
                    num_blocks=num_blocks,
                    residual=residual,
                    periodic=periodic,
                    block=block,
                    rngs=rngs,
                )
                for _ in range(num_waves)
            ]
        )
        self.projection = Conv(hidden_channels, out_channels, 3, periodic, rngs=rngs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.spatial_dims, self.num_layers = spatial_dims, num_layers
        self.wave_residual = wave_residual
        self.widths = tuple(widths)

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any] | None:
        """A small instance: one wave of 2 levels, 4 channels at the top, scale-shift
        conditioned on the PDE parameters (quick to compile; the tests of `sinenet` run
        several waves)."""
        arguments = {"hidden_channels": 4, "num_waves": 1, "num_layers": 2, "mult": 1.5}
        return {**arguments, "conditioning": "adagn"}

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """One axis per `spatial_dims`, each halving `num_layers` times."""
        check_levels("sinenet", self.spatial_dims, self.num_layers, spatial_shape)

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, in_channels), pde_params: (B, P), used if conditioned -> (B, *X,
        out_channels)."""
        check_input(x, self.spatial_dims, self.in_channels)
        embedding = None
        if len(self.embedders):
            if pde_params is None or pde_params.shape[-1] != len(self.embedders):
                raise ValueError(
                    f"sinenet: conditioned on {len(self.embedders)} PDE parameters, got "
                    f"{None if pde_params is None else pde_params.shape}"
                )
            embedding = sum(embed(pde_params[:, k]) for k, embed in enumerate(self.embedders))
        x = self.lifting(x)
        for wave in self.waves:
            x = x + wave(x, embedding) if self.wave_residual else wave(x, embedding)
        return self.projection(x)


class ParameterEmbedding(nnx.Module):
    """One PDE parameter's embedding, `(B,) -> (B, E)`: sinusoidal features of `features`
    periods (`sinusoidal_embedding`), then Linear -> activation -> Linear."""

    def __init__(
        self,
        features: int,
        width: int,
        act: Callable[[jax.Array], jax.Array],
        *,
        rngs: nnx.Rngs,
    ):
        self.first = pointwise(features, width, rngs=rngs)
        self.second = pointwise(width, width, rngs=rngs)
        self.features, self.act = features, act

    def __call__(self, values: jax.Array) -> jax.Array:
        return self.second(self.act(self.first(sinusoidal_embedding(values, self.features))))


def sinusoidal_embedding(values: jax.Array, features: int, max_period: float = 1e4) -> jax.Array:
    """`(B,) -> (B, features)`: cosines then sines of `values` times frequencies from 1 down
    to `1 / max_period` (geometric), a zero column appended for an odd count."""
    half = features // 2
    frequencies = jnp.exp(-jnp.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = values[:, None].astype(jnp.float32) * frequencies
    parts = [jnp.cos(angles), jnp.sin(angles)]
    if features % 2:
        parts.append(jnp.zeros_like(angles[:, :1]))
    return jnp.concatenate(parts, axis=-1)


CONDITIONINGS = ("none", "add", "adagn")


def _check_conditioning(conditioning: str, n_params: int) -> None:
    if conditioning not in CONDITIONINGS:
        raise ModelError(
            f"sinenet: conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}"
        )
    if conditioning != "none" and n_params < 1:
        raise ModelError(
            f"sinenet: conditioning {conditioning!r} needs PDE parameters, and the data gives "
            "none (data.params)"
        )


def _check_sizes(num_waves: int, num_layers: int, num_blocks: int) -> None:
    for name, value in (("num_waves", num_waves), ("num_layers", num_layers)):
        if value < 1:
            raise ModelError(f"sinenet: {name} must be at least 1, got {value}")
    if num_blocks < 1:
        raise ModelError(f"sinenet: num_blocks must be at least 1, got {num_blocks}")


# The published models at about 35.5M parameters: fewer waves, wider levels.
VARIANTS = {2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}


def _variant(waves: int, mult: float) -> type[SineNet]:
    """SineNet-`waves` of the paper: `SineNet` with its `num_waves`, `mult` and C = 64."""
    defaults = {"num_waves": waves, "mult": mult, "hidden_channels": 64}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        SineNet.__init__(self, *args, **{**defaults, **kwargs})

    signature = inspect.signature(SineNet.__init__)
    __init__.__signature__ = signature.replace(  # what the registry checks arguments against
        parameters=[
            p.replace(default=defaults[p.name]) if p.name in defaults else p
            for p in signature.parameters.values()
        ]
    )
    name = f"SineNet{waves}"
    doc = f"SineNet-{waves}: {waves} waves, widths 64 * {mult}**k (the paper's ~35.5M model)."

    @classmethod
    def example(cls, spatial_dims: int) -> None:
        # The same class as `sinenet`, which the registry matrix covers; the defaults are
        # checked by the parameter counts of the tests.
        return None

    attributes = {"__init__": __init__, "__doc__": doc, "example": example}
    variant = type(name, (SineNet,), {**attributes, "__qualname__": name, "__module__": __name__})
    return register(f"sinenet{waves}")(variant)


# One assignment each, so that the API reference documents each registered name.
SineNet2 = _variant(2, VARIANTS[2])
"""`sinenet2`: SineNet-2, widths 64 * 1.8075**k."""
SineNet4 = _variant(4, VARIANTS[4])
"""`sinenet4`: SineNet-4, widths 64 * 1.611**k."""
SineNet6 = _variant(6, VARIANTS[6])
"""`sinenet6`: SineNet-6, widths 64 * 1.5**k."""
SineNet8 = _variant(8, VARIANTS[8])
"""`sinenet8`: SineNet-8, widths 64 * 1.425**k."""
