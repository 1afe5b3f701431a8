"""Fourier neural operator as neuraloperator builds it (`neuralop.models.FNO`), channels last.

    x (B, *X, Cin) -> grid embedding -> lifting -> domain padding -> n_layers FNO blocks
      -> unpadding -> projection -> (B, *X, Cout)

Dense layers act on the channel axis only (neuraloperator's 1x1 convolutions) and start from
torch's default initialisation, kernel and bias uniform in `+-1/sqrt(fan_in)`, so a model here
starts from the same distribution as its PyTorch twin.

`TFNO` is the same model with Tucker-factorized spectral weights (neuraloperator's TFNO).

Gradients are reverse mode only: the dense layers and the truncated DFTs have hand-written
VJPs laid out for XLA (see `pointwise` and `spectral`), and the blocks take their gradient by
another path than their value (see `_alike_blocks`); forward mode cannot go through either.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.factorized import Prepared, Rank
from surrogates.models.pointwise import ChannelLinear
from surrogates.models.prepared import given_weights
from surrogates.models.registry import register
from surrogates.models.spectral import Implementation, SpectralConv

Activation = Callable[[jax.Array], jax.Array]


def exact_gelu(x: jax.Array) -> jax.Array:
    """GELU with the exact erf, `x / 2 * (1 + erf(x / sqrt(2)))`, as torch computes it.

    `jax.nn.gelu(x, approximate=False)` is the same function written with `erfc`, and agrees
    to a float32 rounding (at most 1e-6 for |x| < 16), but XLA on CPU expands `erfc` into a
    long piecewise expression, which made it the costliest part of an FNO's forward pass;
    `erf` is a short polynomial.
    """
    return 0.5 * x * (1.0 + jax.lax.erf(x * math.sqrt(0.5)))


ACTIVATIONS: dict[str, Activation] = {
    "gelu": exact_gelu,
    # The tanh approximation, within 1e-3 of the exact GELU (jax.nn.gelu's default).
    "gelu_tanh": jax.nn.gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
}
SKIP_TYPES = ("linear", "soft-gating", "identity", None)


def dense(
    in_features: int, out_features: int, *, use_bias: bool = True, rngs: nnx.Rngs
) -> ChannelLinear:
    """Linear map of the channel axis, (..., in) -> (..., out), initialised as torch's Conv1d."""
    bound = 1.0 / math.sqrt(in_features)

    def uniform(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return ChannelLinear(
        in_features,
        out_features,
        use_bias=use_bias,
        kernel_init=uniform,
        bias_init=uniform,
        rngs=rngs,
    )


class ChannelMLP(nnx.Module):
    """Pointwise MLP over channels, (..., widths[0]) -> (..., widths[-1]).

    Dense layers `widths[0] -> widths[1] -> ...` with `activation` between them, none after
    the last.
    """

    def __init__(self, widths: Sequence[int], *, activation: Activation, rngs: nnx.Rngs) -> None:
        self.layers = nnx.List([dense(a, b, rngs=rngs) for a, b in itertools.pairwise(widths)])
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (..., widths[0]) -> (..., widths[-1])."""
        for i, layer in enumerate(self.layers):
            if i:
                x = self.activation(x)
            x = layer(x)
        return x


class SoftGating(nnx.Module):
    """Per-channel scale, (..., C) -> (..., C), initialised to ones; no bias."""

    def __init__(self, channels: int) -> None:
        self.weight = nnx.Param(jnp.ones((channels,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (..., C) -> (..., C)."""
        return x * self.weight[...]


def _identity(x: jax.Array) -> jax.Array:
    return x


def _check_skip(kind: str | None, argument: str) -> None:
    if kind not in SKIP_TYPES:
        raise ModelError(f"{argument} must be one of {SKIP_TYPES}, got {kind!r}")


def _skip(kind: str | None, channels: int, *, argument: str, rngs: nnx.Rngs) -> Activation | None:
    """The skip connection `kind` on `channels` channels, or None for no skip."""
    _check_skip(kind, argument)
    if kind == "linear":
        return dense(channels, channels, use_bias=False, rngs=rngs)
    if kind == "soft-gating":
        return SoftGating(channels)
    if kind == "identity":
        return _identity
    return None


class FNOBlock(nnx.Module):
    """One FNO layer in neuraloperator's post-activation order, (B, *X, C) -> (B, *X, C).

        y = act(spectral(x) + fno_skip(x))
        y = act(channel_mlp(y) + channel_mlp_skip(x))

    Both skips read the block input `x`; `act` is left out when `activate_output` is False
    (the last block of an FNO). `factorization`, `rank`, `fixed_rank_modes`,
    `implementation`, `separable` and `max_n_modes` go to the `SpectralConv`.
    """

    def __init__(
        self,
        channels: int,
        n_modes: Sequence[int],
        *,
        channel_mlp_expansion: float,
        fno_skip: str | None,
        channel_mlp_skip: str | None,
        activation: Activation,
        activate_output: bool,
        factorization: str | None = None,
        rank: Rank = 1.0,
        fixed_rank_modes: bool | Sequence[int] = False,
        implementation: Implementation = "factorized",
        separable: bool = False,
        max_n_modes: Sequence[int] | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        self.spectral = SpectralConv(
            channels,
            channels,
            n_modes,
            factorization=factorization,
            rank=rank,
            fixed_rank_modes=fixed_rank_modes,
            implementation=implementation,
            separable=separable,
            max_n_modes=max_n_modes,
            rngs=rngs,
        )
        self.fno_skip = _skip(fno_skip, channels, argument="fno_skip", rngs=rngs)
        mlp_width = round(channel_mlp_expansion * channels)
        self.channel_mlp = ChannelMLP(
            (channels, mlp_width, channels), activation=activation, rngs=rngs
        )
        self.channel_mlp_skip = _skip(
            channel_mlp_skip, channels, argument="channel_mlp_skip", rngs=rngs
        )
        self.activation = activation
        self.activate_output = activate_output

    def prepare(self) -> Prepared:
        """The spectral weights as the contraction takes them (see `SpectralConv.prepare`)."""
        return self.spectral.prepare()

    def __call__(self, x: jax.Array, prepared: Prepared | None = None) -> jax.Array:
        """x: (B, *X, C) -> (B, *X, C); `prepared` from `prepare()` (made here when None)."""
        y = self.spectral(x, prepared)
        if self.fno_skip is not None:
            y = y + self.fno_skip(x)
        y = self._activate(y)
        y = self.channel_mlp(y)
        if self.channel_mlp_skip is not None:
            y = y + self.channel_mlp_skip(x)
        return self._activate(y)

    def _activate(self, y: jax.Array) -> jax.Array:
        return self.activation(y) if self.activate_output else y


def block_runs(blocks: Sequence[FNOBlock]) -> list[tuple[nnx.GraphDef, list[FNOBlock]]]:
    """`blocks` grouped into runs of consecutive blocks of the same structure."""
    return [(graphdef, list(run)) for graphdef, run in itertools.groupby(blocks, key=nnx.graphdef)]


def prepare_blocks(blocks: Sequence[FNOBlock]) -> list[Prepared]:
    """Each block's spectral weights as the contraction takes them (see `FNOBlock.prepare`)."""
    return [block.prepare() for block in blocks]


# The variables of a block that its `prepare()` reads: the spectral weights, not their bias.
_PREPARED_FROM = nnx.All(nnx.PathContains("spectral"), nnx.Not(nnx.PathContains("bias")))


def _state_without_weight_gradients(block: FNOBlock) -> Any:
    """The block's state with the spectral weights' gradients stopped.

    The blocks compute with the prepared weights, never these, so their gradients are zero;
    left to autodiff, the backward pass would still fill a zero gradient for them (in every
    micro-batch). Their gradients flow through the preparation instead.
    """
    weights, others = nnx.split_state(nnx.state(block), _PREPARED_FROM, ...)
    return nnx.merge_state(jax.lax.stop_gradient(weights), others)


def apply_blocks(
    blocks: Sequence[FNOBlock], x: jax.Array, prepared: list[Prepared] | None = None
) -> jax.Array:
    """`x` through `blocks` in order; each run of alike blocks as one computation.

    Consecutive blocks of the same structure (in an FNO all but the last, which leaves out
    its output activation) run as one `lax.scan` over their stacked parameters when only
    values are wanted, unrolled when differentiated (see `_alike_blocks`).

    `prepared` is `prepare_blocks(blocks)`, made here when None. The weights are prepared
    before the blocks run, so under `train.micro_batches` XLA hoists them out of the loop
    over parts: the same weights serve every part.
    """
    prepared = prepare_blocks(blocks) if prepared is None else prepared
    done = 0
    for graphdef, run in block_runs(blocks):
        ready = prepared[done : done + len(run)]
        done += len(run)
        if len(run) == 1:
            x = run[0](x, ready[0])
        else:
            states = [_state_without_weight_gradients(block) for block in run]
            x = _alike_blocks(graphdef)(states, ready, x)
    return x


def _alike_blocks(graphdef: nnx.GraphDef) -> Callable[..., jax.Array]:
    """`(states, prepared, x) -> y`: `x` (B, *X, C) through the blocks of structure
    `graphdef` with these states and prepared weights (one list entry per block).

    The value is one `lax.scan` over the blocks' stacked states and weights; its gradient (a
    custom VJP) comes from the blocks unrolled, each rematerialised (`jax.checkpoint`). The
    two win in opposite cases (the README's performance section has the timings):

    - Forward pass: unrolled, XLA on CPU fuses the cheap end of a block's activation into
      each of its consumers, the next block's skips included, which is slower than the scan
      (it stores each block's output once).
    - Training step: the scan, rematerialised, spends its time slicing and stacking each
      block's inputs, weights, outputs and gradients, and is slower than the unrolled blocks.

    Rematerialising a block leaves a barrier behind which the backward pass keeps only the
    block's input. XLA on CPU drops such barriers and merges the recomputation into the
    forward pass, so there every intermediate is kept, more scratch memory than the
    rematerialised scan needs; `train.micro_batches` divides it.
    """

    def block(state: Any, h: jax.Array, ready: Prepared) -> jax.Array:
        return nnx.merge(graphdef, state)(h, ready)

    def scanned(states: list, ready: list, x: jax.Array) -> jax.Array:
        def step(h: jax.Array, xs: tuple) -> tuple[jax.Array, None]:
            return block(xs[0], h, xs[1]), None

        pairs = zip(states, ready, strict=True)
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *pairs)
        return jax.lax.scan(step, x, stacked)[0]

    def unrolled(states: list, ready: list, x: jax.Array) -> jax.Array:
        rematerialised = jax.checkpoint(block)
        for state, weights in zip(states, ready, strict=True):
            x = rematerialised(state, x, weights)
        return x

    def forward(states: list, ready: list, x: jax.Array) -> tuple[jax.Array, Callable]:
        return jax.vjp(unrolled, states, ready, x)

    def backward(pullback: Callable, g: jax.Array) -> tuple:
        return pullback(g)

    run = jax.custom_vjp(scanned)
    run.defvjp(forward, backward)
    return run


def grid_embedding(x: jax.Array) -> jax.Array:
    """x: (B, *X, C) -> (B, *X, C + len(X)), appending each axis' coordinate `i / X[a]`.

    The coordinates are `linspace(0, 1, n + 1)[:-1]` per axis (the periodic endpoint left
    out), one channel per axis in axis order, after the input channels.
    """
    axes = [np.linspace(0.0, 1.0, n + 1)[:-1] for n in x.shape[1:-1]]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(x.dtype)
    coords = jnp.broadcast_to(coords, (x.shape[0], *coords.shape))
    return jnp.concatenate([x, coords], axis=-1)


@register("fno")
class FNO(nnx.Module):
    """Fourier neural operator (neuraloperator's FNO), (B, *X, in_channels) -> (B, *X, out).

    **Arguments** (neuraloperator's names and defaults):

    - `n_modes`: Fourier modes kept per spatial axis, counting both signs (see
      `SpectralConv`); its length, 1 to 3, is the number of spatial axes.
    - `in_channels`, `out_channels`, `hidden_channels`: channels in, out, and of the latent.
    - `n_layers`: number of FNO blocks.
    - `lifting_channel_ratio`: the lifting MLP is `in (+ len(n_modes)) -> ratio * hidden ->
      hidden`; 0 makes it a single linear layer. `projection_channel_ratio` likewise for the
      projection `hidden -> ratio * hidden -> out_channels`.
    - `positional_embedding`: `"grid"` appends the coordinates of every axis in `[0, 1)` to the
      input (see `grid_embedding`); `None` appends nothing.
    - `domain_padding`: zero padding of the lifted latent, `round(p * X[a])` on both sides of
      axis `a`, removed before the projection; one fraction `p` for all axes or one per axis.
      It scales with the grid, so it means the same at every resolution.
    - `channel_mlp_expansion`: width of each block's channel MLP relative to `hidden_channels`.
    - `channel_mlp_skip`, `fno_skip`: `"linear"` (dense, no bias), `"soft-gating"` (per-channel
      scale starting at one), `"identity"` or `None` (no skip).
    - `non_linearity`: `"gelu"` (exact, torch's), `"gelu_tanh"` (its tanh approximation),
      `"relu"`, `"silu"`, `"tanh"` or a function.
    - `norm`: only `None` for now.
    - `factorization`, `rank`, `fixed_rank_modes`, `implementation`, `separable`,
      `max_n_modes`: the spectral weights of every block (see `SpectralConv`): None (dense),
      "cp", "tucker" or "tt" (any case), the rank (a float is the fraction of the dense
      parameter count kept), the Tucker axes kept at full rank (True: the input channels),
      contracting with the factors ("factorized", neuraloperator FNO's default) or with the
      rebuilt weight ("reconstructed"), one weight per channel instead of channel mixing, and
      the modes the weights are allocated for (`set_n_modes` changes the active `n_modes` up
      to them).
    - `rngs`: random streams for the initial parameters.

    Any grid works with the same weights (modes a grid does not have are skipped).
    """

    def __init__(
        self,
        n_modes: Sequence[int],
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        *,
        n_layers: int = 4,
        lifting_channel_ratio: float = 2,
        projection_channel_ratio: float = 2,
        positional_embedding: str | None = "grid",
        domain_padding: float | Sequence[float] | None = None,
        channel_mlp_expansion: float = 0.5,
        channel_mlp_skip: str | None = "soft-gating",
        fno_skip: str | None = "linear",
        non_linearity: str | Activation = "gelu",
        norm: None = None,
        factorization: str | None = None,
        rank: Rank = 1.0,
        fixed_rank_modes: bool | Sequence[int] = False,
        implementation: Implementation = "factorized",
        separable: bool = False,
        max_n_modes: Sequence[int] | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        if isinstance(n_modes, int):
            raise ModelError(f"n_modes must have one entry per spatial axis, got {n_modes}")
        n_modes = tuple(n_modes)
        if positional_embedding not in ("grid", None):
            raise ModelError(
                f"positional_embedding must be 'grid' or None, got {positional_embedding!r}"
            )
        if norm is not None:
            raise ModelError(f"norm must be None (norms are not implemented yet), got {norm!r}")
        if n_layers < 1:
            raise ModelError(f"n_layers must be at least 1, got {n_layers}")
        _check_skip(fno_skip, "fno_skip")
        _check_skip(channel_mlp_skip, "channel_mlp_skip")
        activation = _activation(non_linearity)
        self.n_modes = n_modes
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.positional_embedding = positional_embedding
        self.domain_padding = _padding_fractions(domain_padding, len(n_modes))
        lifted_in = in_channels + (len(n_modes) if positional_embedding else 0)
        self.lifting = ChannelMLP(
            _mlp_widths(lifted_in, lifting_channel_ratio * hidden_channels, hidden_channels),
            activation=activation,
            rngs=rngs,
        )
        self.blocks = nnx.List(
            [
                FNOBlock(
                    hidden_channels,
                    n_modes,
                    channel_mlp_expansion=channel_mlp_expansion,
                    fno_skip=fno_skip,
                    channel_mlp_skip=channel_mlp_skip,
                    activation=activation,
                    activate_output=layer < n_layers - 1,
                    factorization=factorization,
                    rank=rank,
                    fixed_rank_modes=fixed_rank_modes,
                    implementation=implementation,
                    separable=separable,
                    max_n_modes=max_n_modes,
                    rngs=rngs,
                )
                for layer in range(n_layers)
            ]
        )
        self.projection = ChannelMLP(
            _mlp_widths(hidden_channels, projection_channel_ratio * hidden_channels, out_channels),
            activation=activation,
            rngs=rngs,
        )

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """Arguments of a small instance on `spatial_dims` axes (the registry's test matrix)."""
        return {"n_modes": (4,) * spatial_dims, "hidden_channels": 8, "n_layers": 2}

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """One mode count per spatial axis, and a grid that holds the modes: a run on fewer
        points than modes would silently use a smaller model than configured (the layers
        themselves compute on any grid)."""
        if len(self.n_modes) != len(spatial_shape):
            raise ModelError(
                f"model.n_modes: {len(self.n_modes)} entries for data with "
                f"{len(spatial_shape)} spatial axes {tuple(spatial_shape)}"
            )
        for axis, (size, modes) in enumerate(zip(spatial_shape, self.max_n_modes, strict=True)):
            if size < modes:
                raise ModelError(
                    f"model.n_modes: {modes} modes along spatial axis {axis} need at least "
                    f"{modes} grid points, the grid has {size} (a smaller data.stride_x or "
                    "fewer modes)"
                )

    @property
    def max_n_modes(self) -> tuple[int, ...]:
        """The modes the spectral weights are allocated for (`set_n_modes` goes up to them)."""
        return self.blocks[0].spectral.max_n_modes

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, in_channels) -> (B, *X, out_channels); `pde_params` are ignored."""
        if x.ndim != len(self.n_modes) + 2 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"expected input (B, *X, {self.in_channels}) with {len(self.n_modes)} spatial "
                f"axes, got shape {x.shape}"
            )
        if self.positional_embedding == "grid":
            x = grid_embedding(x)
        x = self.lifting(x)
        widths = tuple(
            round(p * n) for p, n in zip(self.domain_padding, x.shape[1:-1], strict=True)
        )
        x = jnp.pad(x, [(0, 0), *((w, w) for w in widths), (0, 0)])
        x = apply_blocks(self.blocks, x, given_weights(self))
        x = x[(slice(None), *(slice(w, n - w) for w, n in zip(widths, x.shape[1:-1], strict=True)))]
        return self.projection(x)

    def prepare_weights(self) -> list[Prepared]:
        """Every block's spectral weights as the contraction takes them, one entry per block
        (see `prepare_blocks`); the forward pass uses them when given (see
        `surrogates.models.prepared`).
        """
        return prepare_blocks(self.blocks)

    def set_n_modes(self, n_modes: Sequence[int]) -> None:
        """Use `n_modes` (at most `max_n_modes`) in every block from now on (incremental modes).

        This changes static data of the model, so jitted functions taking it recompile.
        """
        for block in self.blocks:
            block.spectral.set_n_modes(n_modes)
        self.n_modes = tuple(n_modes)


@register("tfno")
class TFNO(FNO):
    """Tensorized FNO (neuraloperator's TFNO): an FNO with Tucker-factorized spectral weights.

    Same arguments as `FNO`; only the defaults differ, `factorization="tucker"` and `rank=0.1`
    (about a tenth of the dense spectral parameters).
    """

    def __init__(
        self,
        n_modes: Sequence[int],
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        *,
        n_layers: int = 4,
        lifting_channel_ratio: float = 2,
        projection_channel_ratio: float = 2,
        positional_embedding: str | None = "grid",
        domain_padding: float | Sequence[float] | None = None,
        channel_mlp_expansion: float = 0.5,
        channel_mlp_skip: str | None = "soft-gating",
        fno_skip: str | None = "linear",
        non_linearity: str | Activation = "gelu",
        norm: None = None,
        factorization: str | None = "tucker",
        rank: Rank = 0.1,
        fixed_rank_modes: bool | Sequence[int] = False,
        implementation: Implementation = "factorized",
        separable: bool = False,
        max_n_modes: Sequence[int] | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        super().__init__(
            n_modes,
            in_channels,
            out_channels,
            hidden_channels,
            n_layers=n_layers,
            lifting_channel_ratio=lifting_channel_ratio,
            projection_channel_ratio=projection_channel_ratio,
            positional_embedding=positional_embedding,
            domain_padding=domain_padding,
            channel_mlp_expansion=channel_mlp_expansion,
            channel_mlp_skip=channel_mlp_skip,
            fno_skip=fno_skip,
            non_linearity=non_linearity,
            norm=norm,
            factorization=factorization,
            rank=rank,
            fixed_rank_modes=fixed_rank_modes,
            implementation=implementation,
            separable=separable,
            max_n_modes=max_n_modes,
            rngs=rngs,
        )


def _activation(non_linearity: str | Activation) -> Activation:
    if callable(non_linearity):
        return non_linearity
    if non_linearity not in ACTIVATIONS:
        raise ModelError(
            f"non_linearity must be a function or one of {tuple(ACTIVATIONS)}, "
            f"got {non_linearity!r}"
        )
    return ACTIVATIONS[non_linearity]


def _mlp_widths(in_channels: int, hidden: float, out_channels: int) -> tuple[int, ...]:
    """Widths of a lifting or projection MLP; no hidden layer for a zero ratio."""
    hidden = round(hidden)
    return (in_channels, hidden, out_channels) if hidden else (in_channels, out_channels)


def _padding_fractions(
    domain_padding: float | Sequence[float] | None, n_dim: int
) -> tuple[float, ...]:
    """One padding fraction per spatial axis (zeros for no padding)."""
    if domain_padding is None:
        return (0.0,) * n_dim
    fractions = (
        (float(domain_padding),) * n_dim
        if isinstance(domain_padding, int | float)
        else tuple(float(p) for p in domain_padding)
    )
    if len(fractions) != n_dim or min(fractions) < 0:
        raise ModelError(
            f"domain_padding must be None, a fraction >= 0 or {n_dim} of them (one per axis), "
            f"got {domain_padding!r}"
        )
    return fractions
