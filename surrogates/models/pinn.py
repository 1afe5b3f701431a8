"""The physics-informed MLP (`pinn`): coordinates in, the solution there out.

The network is a plain MLP, optionally with the input embeddings and the parametrisation
of Wang et al. 2023, "An expert's guide to training physics-informed neural networks"
(arXiv 2308.08468; the jaxpi library): periodic embeddings, random Fourier features
(Tancik et al. 2020, "Fourier features let networks learn high frequency functions in low
dimensional domains"), random weight factorisation and the modified MLP's gates. Every
option is off by default, so `pinn` alone is the classic tanh MLP of Raissi et al.

`check_box` and `to_unit_box` are shared with the other pointwise models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.registry import register

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
}

# Glorot normal as jaxpi and DeepXDE initialise their PINNs.
glorot_normal = jax.nn.initializers.glorot_normal()


def check_box(
    model: str, in_dims: int, lower: Sequence[float], upper: Sequence[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """`(lower, upper)` as tuples of floats; `ModelError` unless both have `in_dims` entries
    and the box has a positive width along every coordinate."""
    lower, upper = tuple(map(float, lower)), tuple(map(float, upper))
    if in_dims < 1 or len(lower) != in_dims or len(upper) != in_dims:
        raise ModelError(
            f"{model}: lower {lower} and upper {upper} need one entry per coordinate "
            f"(in_dims={in_dims})"
        )
    if any(hi <= lo for lo, hi in zip(lower, upper, strict=True)):
        raise ModelError(f"{model}: upper {upper} must exceed lower {lower} on every coordinate")
    return lower, upper


def to_unit_box(coords: jax.Array, lower: Sequence[float], upper: Sequence[float]) -> jax.Array:
    """coords (..., d) mapped affinely from the box [lower, upper] onto [-1, 1]^d."""
    lo = jnp.asarray(lower, coords.dtype)
    hi = jnp.asarray(upper, coords.dtype)
    return (2 * coords - (lo + hi)) / (hi - lo)


def check_coords(model: str, coords: jax.Array, in_dims: int) -> None:
    """`ModelError` unless the last axis of `coords` holds `in_dims` coordinates."""
    if coords.ndim < 1 or coords.shape[-1] != in_dims:
        raise ModelError(
            f"{model}: coords must be (..., {in_dims}), got shape {tuple(coords.shape)}"
        )


class FourierFrequencies(nnx.Variable):
    """Fixed random frequencies of a Fourier feature embedding: state, but not trained
    (not an `nnx.Param`, so optimisers leave it alone)."""


class Dense(nnx.Module):
    """Affine map of the last axis, `(..., in) -> (..., out)`: Glorot-normal weight, zero bias.

    With `factor=(mean, std)` the weight is stored factorised (random weight factorisation):
    `W = V diag(exp(s))`, a trained log-scale `s_j ~ N(mean, std^2)` per output unit and
    `V = W_glorot / exp(s)`, so at initialisation the layer is the unfactorised one with the
    same key. `kernel` holds `V` then, `log_scale` holds `s`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        factor: tuple[float, float] | None = None,
        rngs: nnx.Rngs,
    ):
        # One key split the same way with or without a factor, so both draw the same W.
        key_weight, key_scale = jax.random.split(rngs.params())
        weight = glorot_normal(key_weight, (in_features, out_features))
        if factor is None:
            self.log_scale = None
        else:
            mean, std = factor
            scale = mean + std * jax.random.normal(key_scale, (out_features,))
            self.log_scale = nnx.Param(scale)
            weight = weight / jnp.exp(scale)
        self.kernel = nnx.Param(weight)
        self.bias = nnx.Param(jnp.zeros(out_features))

    def weight(self) -> jax.Array:
        """The effective weight W: (in, out)."""
        kernel = self.kernel[...]
        return kernel if self.log_scale is None else kernel * jnp.exp(self.log_scale[...])

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (..., in) -> (..., out)."""
        return x @ self.weight() + self.bias[...]


@register("pinn", kind="pointwise")
class PINN(nnx.Module):
    """MLP on coordinates for physics-informed training.

    `coords (..., in_dims) -> (..., out_dims)`. Coordinates are first embedded: each one is
    mapped affinely from `[lower, upper]` onto `[-1, 1]` (so tanh units start in their
    useful range whatever the domain's units), or, with `periodic`, a coordinate with a
    period `P` becomes `(cos(2 pi x / P), sin(2 pi x / P))`. Then, optionally, random
    Fourier features; then `layers` hidden layers of `hidden` units and a linear output.
    Weights are Glorot-normal, biases zero. Only smooth operations, so the model supports
    forward-mode differentiation (`jax.jvp`, nested for higher derivatives).

    **Arguments** (`in_dims`, `out_dims`, `lower`, `upper`, `periods`, `rngs` are given by
    the engine from the problem):

    - `in_dims`, `out_dims`: coordinates per point (d) and solution components.
    - `lower`, `upper`: the domain's box, one entry per coordinate.
    - `periods`: per coordinate, its period or None.
    - `hidden`, `layers`: width and number of hidden layers.
    - `activation`: `"tanh"`, `"sin"`, `"gelu"` or `"swish"`.
    - `fourier_features`: width D of a random Fourier feature embedding
      `[cos(B e), sin(B e)]` of the embedded coordinates e, with D/2 frequencies
      `B ~ N(0, fourier_scale^2)` drawn once and kept fixed (Tancik et al. 2020; jaxpi's
      `FourierEmbs`, which typically uses D=256 and scale 1-2). 0 turns it off. Fourier
      features let an MLP fit high frequencies that it otherwise learns very slowly
      (spectral bias).
    - `fourier_scale`: standard deviation of the frequencies.
    - `periodic`: embed every coordinate that has a period as `(cos, sin)` of its phase
      (jaxpi's `PeriodEmbs`), so the output is exactly periodic along it and periodic
      boundary conditions hold by construction. Without it periodic coordinates are
      scaled as the others.
    - `factorised`: random weight factorisation of every dense layer,
      `W = V diag(exp(s))` with `s ~ N(factor_mean, factor_std^2)` per output unit, `V`
      and `s` both trained (Wang et al. 2023, section 3.3; jaxpi's defaults 1.0 and 0.1).
      Same function at initialisation; training moves the scale of each unit separately,
      which the paper finds speeds up and stabilises PINN training.
    - `factor_mean`, `factor_std`: the distribution of `s`.
    - `gates`: the modified MLP (Wang, Teng and Perdikaris 2021; Wang et al. 2023): two
      gates `U = act(W_u e)`, `V = act(W_v e)` of the embedding e, and after each hidden
      layer `h <- h * U + (1 - h) * V`, which feeds the input to every layer.
    - `rngs`: random streams for the initial parameters and the Fourier frequencies.
    """

    def __init__(
        self,
        in_dims: int,
        out_dims: int,
        lower: Sequence[float],
        upper: Sequence[float],
        periods: Sequence[float | None] | None = None,
        *,
        hidden: int = 64,
        layers: int = 4,
        activation: str = "tanh",
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        periodic: bool = False,
        factorised: bool = False,
        factor_mean: float = 1.0,
        factor_std: float = 0.1,
        gates: bool = False,
        rngs: nnx.Rngs,
    ):
        self.lower, self.upper = check_box("pinn", in_dims, lower, upper)
        self.periods = _check_periods(in_dims, periods) if periodic else (None,) * in_dims
        _check_options(hidden, layers, activation, fourier_features, fourier_scale, factor_std)
        self.in_dims, self.out_dims = in_dims, out_dims
        self.activation = activation
        factor = (factor_mean, factor_std) if factorised else None

        width = in_dims + sum(period is not None for period in self.periods)
        if fourier_features:
            frequencies = jax.random.normal(rngs.params(), (width, fourier_features // 2))
            self.frequencies = FourierFrequencies(fourier_scale * frequencies)
            width = fourier_features
        else:
            self.frequencies = None

        def dense(n_in: int, n_out: int) -> Dense:
            return Dense(n_in, n_out, factor=factor, rngs=rngs)

        self.gate_u = dense(width, hidden) if gates else None
        self.gate_v = dense(width, hidden) if gates else None
        self.hidden = nnx.List([dense(width if k == 0 else hidden, hidden) for k in range(layers)])
        self.output = dense(hidden, out_dims)

    @classmethod
    def example(cls) -> dict[str, Any]:
        """A small instance: two hidden layers of 8 units."""
        return {"hidden": 8, "layers": 2}

    def embed(self, coords: jax.Array) -> jax.Array:
        """The network's input: coords (..., in_dims) -> (..., width)."""
        unit = to_unit_box(coords, self.lower, self.upper)
        columns = []
        for axis, period in enumerate(self.periods):
            if period is None:
                columns.append(unit[..., axis])
            else:
                phase = (2 * math.pi / period) * coords[..., axis]
                columns.extend([jnp.cos(phase), jnp.sin(phase)])
        e = jnp.stack(columns, axis=-1)
        if self.frequencies is None:
            return e
        projected = e @ self.frequencies[...]
        return jnp.concatenate([jnp.cos(projected), jnp.sin(projected)], axis=-1)

    def __call__(self, coords: jax.Array) -> jax.Array:
        """coords: (..., in_dims) -> (..., out_dims)."""
        check_coords("pinn", coords, self.in_dims)
        act = ACTIVATIONS[self.activation]
        e = self.embed(coords)
        gated = self.gate_u is not None
        if gated:
            u, v = act(self.gate_u(e)), act(self.gate_v(e))
        h = e
        for layer in self.hidden:
            h = act(layer(h))
            if gated:
                h = h * u + (1 - h) * v
        return self.output(h)


def _check_periods(in_dims: int, periods: Sequence[float | None] | None) -> tuple:
    periods = tuple(periods) if periods is not None else (None,) * in_dims
    if len(periods) != in_dims:
        raise ModelError(f"pinn: periods {periods} need one entry per coordinate ({in_dims})")
    if any(period is not None and period <= 0 for period in periods):
        raise ModelError(f"pinn: periods {periods} must be positive or None")
    return tuple(None if period is None else float(period) for period in periods)


def _check_options(
    hidden: int,
    layers: int,
    activation: str,
    fourier_features: int,
    fourier_scale: float,
    factor_std: float,
) -> None:
    if activation not in ACTIVATIONS:
        raise ModelError(
            f"pinn: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
        )
    for name, value in (("hidden", hidden), ("layers", layers)):
        if value < 1:
            raise ModelError(f"pinn: {name} must be at least 1, got {value}")
    if fourier_features < 0 or fourier_features % 2:
        raise ModelError(
            f"pinn: fourier_features must be 0 (off) or a positive even number, "
            f"got {fourier_features}"
        )
    if fourier_scale <= 0:
        raise ModelError(f"pinn: fourier_scale must be positive, got {fourier_scale}")
    if factor_std < 0:
        raise ModelError(f"pinn: factor_std must not be negative, got {factor_std}")
