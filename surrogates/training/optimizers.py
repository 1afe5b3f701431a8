"""Optimisers, learning-rate schedules and optimizer phases from optax, configured in epochs.

Schedules are given in epochs (as PDEBench's and CAPE's `StepLR`) and converted to optimiser
steps with the number of steps per epoch. A run is one or more phases (`train.phases`, say
Adam then L-BFGS), each with its own optimizer and schedule counted from the phase's first
step. Every optimizer takes optax's extra arguments, so a step always calls
`tx.update(grads, state, params, value=, grad=, value_fn=)`: L-BFGS's line search uses them,
the others ignore them.

`train.freeze` holds part of the model still for its first epochs: that part's gradients are
zeroed before clipping (so they do not count in the global norm), and its own optimizer
partition neither updates it nor changes its state; the optimizer state has the same structure
before and after, so a checkpoint of either side restores into the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from surrogates.config import PhaseSpec, TrainSpec

TRAINED, HELD = "trained", "held"


def learning_rate_schedule(
    name: str,
    learning_rate: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
    step_epochs: int = 100,
    gamma: float = 0.5,
    final_fraction: float = 0.0,
) -> optax.Schedule:
    """`constant`, `cosine` (linear warm-up, then cosine decay to `final_fraction` of the peak
    at the last step) or `step` (multiply by `gamma` every `step_epochs` epochs, as torch's
    `StepLR` stepped once per epoch).
    """
    if name == "constant":
        return optax.constant_schedule(learning_rate)
    if name == "step":
        return optax.exponential_decay(
            learning_rate,
            transition_steps=step_epochs * steps_per_epoch,
            decay_rate=gamma,
            staircase=True,
        )
    if name == "cosine":
        total = max(epochs * steps_per_epoch, 1)
        warmup = min(round(warmup_epochs * steps_per_epoch), total - 1)
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0 if warmup else learning_rate,
            peak_value=learning_rate,
            warmup_steps=warmup,
            decay_steps=total,
            end_value=final_fraction * learning_rate,
        )
    raise ValueError(f"unknown schedule {name!r}; known: constant, cosine, step")


@dataclass(frozen=True)
class Hold:
    """Parameters held still for the first `steps` updates: `labels` is a pytree like the
    parameters with `HELD` or `TRAINED` at every leaf."""

    labels: Any
    steps: int


def make_optimizer(
    name: str,
    schedule: optax.Schedule | None,
    *,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    memory_size: int = 10,
    hold: Hold | None = None,
) -> optax.GradientTransformationExtraArgs:
    """`adam` with torch's coupled weight decay (`wd * param` added to the gradient, as
    PDEBench and CAPE train), `adamw` (decoupled), optionally after global-norm clipping, or
    `lbfgs` (optax's, with its zoom line search; `schedule` unused).
    """
    if name == "lbfgs":
        if hold is not None:
            raise ValueError("lbfgs cannot hold part of the parameters still")
        return optax.lbfgs(memory_size=memory_size)
    if name == "adam":
        per_parameter = optax.chain(optax.add_decayed_weights(weight_decay), optax.scale_by_adam())
    elif name == "adamw":
        per_parameter = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(weight_decay))
    else:
        raise ValueError(f"unknown optimizer {name!r}; known: adam, adamw, lbfgs")
    parts = []
    if hold is not None:
        parts.append(_zeroed_while_holding(hold))
        per_parameter = optax.multi_transform(
            {TRAINED: per_parameter, HELD: _held(per_parameter, hold.steps)}, hold.labels
        )
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    parts += [per_parameter, optax.scale_by_learning_rate(schedule)]
    return optax.with_extra_args_support(optax.chain(*parts))


class HoldState(NamedTuple):
    count: jax.Array


class HeldState(NamedTuple):
    count: jax.Array
    inner: Any


def _zeroed_while_holding(hold: Hold) -> optax.GradientTransformation:
    """Zero the held parameters' gradients during the hold."""

    def init(params: Any) -> HoldState:
        del params
        return HoldState(jnp.zeros([], jnp.int32))

    def update(updates: Any, state: HoldState, params: Any = None) -> tuple[Any, HoldState]:
        del params
        holding = state.count < hold.steps
        updates = jax.tree.map(
            lambda u, label: jnp.where(holding & (label == HELD), jnp.zeros_like(u), u),
            updates,
            hold.labels,
        )
        return updates, HoldState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init, update)


def _held(inner: optax.GradientTransformation, steps: int) -> optax.GradientTransformation:
    """`inner`, except that its first `steps` updates are zero and leave its state as it was."""

    def init(params: Any) -> HeldState:
        return HeldState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates: Any, state: HeldState, params: Any = None) -> tuple[Any, HeldState]:
        new_updates, new_inner = inner.update(updates, state.inner, params)
        holding = state.count < steps
        updates = jax.tree.map(lambda u: jnp.where(holding, jnp.zeros_like(u), u), new_updates)
        kept = jax.tree.map(lambda old, new: jnp.where(holding, old, new), state.inner, new_inner)
        return updates, HeldState(optax.safe_increment(state.count), kept)

    return optax.GradientTransformation(init, update)


@dataclass(frozen=True)
class Phase:
    """Epochs `first_epoch .. first_epoch + epochs - 1` (0-based) trained with `tx`."""

    index: int
    first_epoch: int
    epochs: int
    tx: optax.GradientTransformationExtraArgs
    schedule: optax.Schedule | None

    def learning_rate(self, epoch: int, steps_per_epoch: int) -> float | None:
        """The learning rate at the start of `epoch`; None where a line search sets it."""
        if self.schedule is None:
            return None
        return float(self.schedule((epoch - self.first_epoch) * steps_per_epoch))


def make_phases(
    train: TrainSpec,
    steps_per_epoch: int,
    held: Callable[[], Any] | None = None,
) -> list[Phase]:
    """The run's optimizer phases. `held()` gives the labels of `train.freeze`'s parameters
    (see `Hold`), asked for only if the run freezes some."""
    labels = None if train.freeze is None else held()
    phases, first = [], 0
    for index, spec in enumerate(train.phase_list()):
        hold = None
        if train.freeze is not None and train.freeze.epochs > first:
            hold = Hold(labels, (train.freeze.epochs - first) * steps_per_epoch)
        phases.append(_phase(index, first, spec, steps_per_epoch, hold))
        first += spec.epochs
    return phases


def _phase(index: int, first: int, spec: PhaseSpec, steps_per_epoch: int, hold: Hold | None):
    optimizer = spec.optimizer
    schedule = None
    if optimizer.name != "lbfgs":
        schedule = learning_rate_schedule(
            spec.schedule.name,
            optimizer.lr,
            steps_per_epoch=steps_per_epoch,
            epochs=spec.epochs,
            warmup_epochs=spec.schedule.warmup_epochs,
            step_epochs=spec.schedule.step_epochs,
            gamma=spec.schedule.gamma,
            final_fraction=spec.schedule.final_fraction,
        )
    tx = make_optimizer(
        optimizer.name,
        schedule,
        weight_decay=optimizer.weight_decay,
        clip_norm=optimizer.clip_norm,
        memory_size=optimizer.memory_size,
        hold=hold,
    )
    return Phase(index, first, spec.epochs, tx, schedule)


def phase_at(phases: list[Phase], epoch: int) -> Phase:
    """The phase that trains `epoch` (0-based)."""
    for phase in phases:
        if epoch < phase.first_epoch + phase.epochs:
            return phase
    return phases[-1]


def apply_update(
    tx: optax.GradientTransformationExtraArgs,
    params: Any,
    opt_state: Any,
    value: jax.Array,
    grads: Any,
    value_fn: Callable[[Any], jax.Array],
) -> tuple[Any, Any]:
    """One optimizer update: `(params, opt_state)` after the gradient `grads` of the loss
    `value`; `value_fn(params)` recomputes the loss on the same inputs (for line searches).
    """
    updates, opt_state = tx.update(
        grads, opt_state, params, value=value, grad=grads, value_fn=value_fn
    )
    return optax.apply_updates(params, updates), opt_state
