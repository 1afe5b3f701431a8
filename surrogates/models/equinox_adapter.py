"""Equinox modules as models of the engine: `from_equinox(module)`.

An Equinox module, as Equinox and PDEquinox build them, maps one sample `(C_in, *X)` to
`(C_out, *X)`, channels first. The adapter holds copies of the module's floating-point
array leaves as `nnx.Param`s (other arrays, integer ones say, as `EquinoxConstant`s that are
not trained), so the module passed in stays usable, and keeps the rest of the module (its
structure, activations, static fields) aside. Calling it maps the engine's batched,
channels-last `(B, *X, C)` to the module's convention with a `vmap` over the batch.
Optimizers, orbax checkpoints, micro-batches and data-parallel sharding therefore see
ordinary Flax parameters, and the gradient with respect to them is the gradient
`equinox.filter_grad` computes for the module's arrays.

    net = eqx.nn.Conv2d(3, 2, 3, padding=1, key=jax.random.key(0))
    model = from_equinox(net)            # (B, H, W, 3) -> (B, H, W, 2)
    folder = train(experiment, model=model)
    trained = model.module()             # the Equinox module with the trained arrays
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx

from surrogates.errors import ModelError


class EquinoxConstant(nnx.Variable):
    """An array of the wrapped module that is not trained (one that is not floating point)."""


@dataclass(frozen=True, eq=False)
class _Skeleton:
    """The module without its arrays: the tree they go back into and the static part.
    Compared by identity, so nnx keeps it as one static attribute."""

    treedef: Any
    static: Any


class EquinoxModel(nnx.Module):
    """An `equinox.Module` mapping `(C_in, *X) -> (C_out, *X)`, as an operator model of
    the engine, `(B, *X, C_in) -> (B, *X, C_out)`.

    **Arguments:**

    - `module`: the Equinox module. It takes one sample and nothing else (no `key`, no
      `state`): modules with dropout or batch statistics are not supported.
    """

    def __init__(self, module: eqx.Module):
        if not isinstance(module, eqx.Module):
            raise ModelError(
                f"from_equinox: expected an equinox.Module, got {type(module).__name__}"
            )
        arrays, static = eqx.partition(module, eqx.is_array)
        leaves, treedef = jax.tree.flatten(arrays)
        self.arrays = nnx.List([_variable(leaf) for leaf in leaves])
        self.skeleton = _Skeleton(treedef, static)

    def module(self) -> eqx.Module:
        """The Equinox module with the adapter's current arrays."""
        leaves = [variable[...] for variable in self.arrays]
        arrays = jax.tree.unflatten(self.skeleton.treedef, leaves)
        return eqx.combine(arrays, self.skeleton.static)

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, C_in) -> (B, *X, C_out); the module sees each sample as (C_in, *X).

        `pde_params` are ignored: an Equinox module takes the sample only.
        """
        channels_first = jnp.moveaxis(x, -1, 1)
        return jnp.moveaxis(jax.vmap(self.module())(channels_first), 1, -1)


def from_equinox(module: eqx.Module) -> EquinoxModel:
    """`module` (one sample, channels first) as a model the engine trains: see
    `EquinoxModel`."""
    return EquinoxModel(module)


def _variable(leaf: jax.Array) -> nnx.Variable:
    # A copy: the engine's steps donate their parameters' buffers, which would otherwise
    # delete the arrays of the module the user passed in.
    leaf = jnp.array(leaf, copy=True)
    if jnp.issubdtype(leaf.dtype, jnp.inexact):
        return nnx.Param(leaf)
    return EquinoxConstant(leaf)
