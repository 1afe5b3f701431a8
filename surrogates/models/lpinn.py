"""The Lagrangian PINN (Mojgani, Balajewicz, Hassanzadeh, CMAME 2023).

Two tanh MLPs on `(t, xi)`: one for the state `u` carried along the characteristic that
starts at `xi`, one for the characteristic's position `X`. Both see `xi` through the periodic
embedding `(cos(2 pi xi / P), sin(2 pi xi / P))`, so no boundary condition is needed, and `t`
scaled to [-1, 1]. The position is `X = xi + D(t, xi)` with `D` from its branch: `X - xi` is
periodic in `xi` where `X` is not, and the embedding can only represent periodic functions.
`D` starts at zero: the flow starts as the identity, which meets `X(0, xi) = xi` and does not
stretch (`X_xi = 1`, where the diffusion along the flow is the plain `u_xixi`).
(The reference code regresses `X` itself onto `xi` at t = 0, which the embedding cannot fit
at the wrap-around.) The branches are separate, as the paper describes; the released code
shares some layers between them.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.registry import register


class TanhMLP(nnx.Module):
    """`(..., n_in) -> (..., n_out)` through `layers` tanh layers of `hidden` units,
    Glorot-normal weights and zero biases (as the reference); with `zero_output`, the output
    layer starts at zero (the network starts as the zero function)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: int,
        layers: int,
        *,
        zero_output: bool = False,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.glorot_normal()
        sizes = [n_in, *[hidden] * layers]
        self.hidden = nnx.List(
            [nnx.Linear(a, b, kernel_init=init, rngs=rngs) for a, b in itertools.pairwise(sizes)]
        )
        out_init = nnx.initializers.zeros if zero_output else init
        self.out = nnx.Linear(sizes[-1], n_out, kernel_init=out_init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.hidden:
            x = jnp.tanh(layer(x))
        return self.out(x)


@register("lpinn", kind="pointwise")
class LPINN(nnx.Module):
    """Lagrangian PINN: state and characteristic position on (t, xi), periodic in xi."""

    def __init__(
        self,
        in_dims: int,
        out_dims: int,
        lower: tuple[float, ...],
        upper: tuple[float, ...],
        periods: tuple[float | None, ...],
        *,
        hidden: int = 50,
        state_layers: int = 5,
        position_layers: int = 2,
        rngs: nnx.Rngs,
    ):
        if in_dims != 2 or out_dims != 1 or periods[1] is None:
            raise ModelError(
                "model.name: lpinn solves 1D evolution problems (t, x), periodic in x, with "
                "one output; this problem has "
                f"{in_dims} coordinates and {out_dims} outputs"
            )
        self.period = float(periods[1])
        self.t_range = (float(lower[0]), float(upper[0]))
        self.state = TanhMLP(3, 1, hidden, state_layers, rngs=rngs)
        # The flow starts as the identity, X = xi: a random branch starts folded for some
        # seeds (X_xi < 0 somewhere), a flow no characteristics can follow.
        self.displacement = TanhMLP(3, 1, hidden, position_layers, zero_output=True, rngs=rngs)

    @classmethod
    def example(cls) -> dict:
        return {"hidden": 8, "state_layers": 2, "position_layers": 1}

    def _embed(self, coords: jax.Array) -> jax.Array:
        t, xi = coords[..., 0:1], coords[..., 1:2]
        start, end = self.t_range
        angle = 2 * math.pi * xi / self.period
        time = 2 * (t - start) / (end - start) - 1
        return jnp.concatenate([jnp.cos(angle), jnp.sin(angle), time], axis=-1)

    def state_and_position(self, coords: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`coords (..., 2)` as `(t, xi)` -> `u (..., 1)`, `X (..., 1)`."""
        features = self._embed(coords)
        return self.state(features), coords[..., 1:2] + self.displacement(features)

    def __call__(self, coords: jax.Array) -> jax.Array:
        """`coords (..., 2)` -> `(u, X) (..., 2)`."""
        return jnp.concatenate(self.state_and_position(coords), axis=-1)
