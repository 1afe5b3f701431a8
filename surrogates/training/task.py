"""What the `Trainer` drives: the `Task` protocol, and the model state a task trains.

A task is a learning problem: it builds the model, says how many steps an epoch has and what
each step takes, compiles the step for an optimizer, and scores the model on its validation
data. The trainer owns everything else (epochs, optimizer phases, logging, checkpoints,
resume, selection), so a new kind of problem plugs in without touching the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from surrogates.training import sharding

# step(params, opt_state, rest, counter, *inputs) -> (params, opt_state, loss); `params` and
# `opt_state` are donated. `counter` is `[epoch, step]` (int32): a task that samples inside
# the step derives its key from it (`step_key`), so a resumed run draws the same samples.
Step = Callable[..., tuple[Any, Any, jax.Array]]


@dataclass
class Model:
    """An `nnx.Module` split for compiled use: static graph, parameters, other variables."""

    graphdef: nnx.GraphDef
    params: nnx.State
    rest: nnx.State

    @classmethod
    def of(cls, module: nnx.Module, mesh: Mesh) -> Model:
        """`module` split, its arrays replicated over `mesh`."""
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)
        replicated = sharding.replicated(mesh)
        return cls(
            graphdef, sharding.put_tree(params, replicated), sharding.put_tree(rest, replicated)
        )

    @property
    def trainable(self) -> bool:
        return bool(jax.tree.leaves(self.params))

    def module(self) -> nnx.Module:
        """The module again, with the current arrays."""
        return nnx.merge(self.graphdef, self.params, self.rest)

    def parameter_count(self) -> int:
        """Trainable numbers (a complex weight stored as two real arrays counts twice, as
        neuraloperator counts complex parameters)."""
        return int(sum(np.size(leaf) for leaf in jax.tree.leaves(self.params)))


class Task(Protocol):
    """A learning problem the `Trainer` drives.

    Attributes:
        model: the model being trained, replaced as training goes on.
        steps_per_epoch: optimizer steps in one epoch.
        validation_name: the key of the validation score in `metrics.jsonl`.
        model_path: where the configured model sits in `model.params` (`train.freeze`
            names its parts relative to it).
    """

    model: Model
    steps_per_epoch: int
    validation_name: str
    model_path: tuple[str, ...]

    def optimizer_state(self, tx: optax.GradientTransformation, previous: Any = None) -> Any:
        """`tx`'s initial state for the current parameters, placed like them. `previous` is
        the state at the end of the phase before (None for the first phase, and when only
        the state's structure is needed): a task that keeps state of its own in the
        optimizer state (loss weights) carries it over from there."""
        ...

    def start_epoch(self, epoch: int) -> bool:
        """Get ready for `epoch` (0-based); True if the model's static graph changed, so that
        a compiled step must be rebuilt."""
        ...

    def make_step(self, tx: optax.GradientTransformation) -> Step:
        """The compiled step for the model's current graph and optimizer `tx`."""
        ...

    def inputs(self, epoch: int) -> Iterator[tuple]:
        """The task's inputs of every step of `epoch`, after `(params, opt_state, rest,
        counter)`."""
        ...

    def validate(self) -> float | None:
        """The current model's validation score (lower is better), None without
        validation data."""
        ...

    def epoch_log(self, epoch: int) -> dict[str, Any]:
        """Task facts of `epoch` for its `metrics.jsonl` line (JSON values)."""
        ...

    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint must record besides the arrays to restore the model as it was
        (JSON values)."""
        ...

    def restore_meta(self, meta: dict[str, Any]) -> None:
        """Set the model up as `checkpoint_meta` recorded it, before its arrays are put back."""
        ...


def initial_optimizer_state(tx: optax.GradientTransformation, params: nnx.State, mesh: Mesh) -> Any:
    """`tx`'s initial state for `params`, replicated over `mesh`, every leaf its own buffer:
    some optimizers (L-BFGS among them) start with one array in several places, and a step
    that donates the state cannot take the same buffer twice."""
    state = jax.tree.map(jnp.copy, tx.init(params))
    return sharding.put_tree(state, sharding.replicated(mesh))


def step_key(seed: int, counter: jax.Array) -> jax.Array:
    """The PRNG key of the step `counter = [epoch, step]` of a run seeded `seed`."""
    key = jax.random.fold_in(jax.random.key(seed), counter[0])
    return jax.random.fold_in(key, counter[1])
