"""Optimisers and learning-rate schedules from optax, configured in epochs.

Schedules are given in epochs (as PDEBench's and CAPE's `StepLR`) and converted to optimiser
steps with the number of steps per epoch.
"""

from __future__ import annotations

import optax


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


def make_optimizer(
    name: str,
    schedule: optax.Schedule,
    *,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """`adam` with torch's coupled weight decay (`wd * param` added to the gradient, as
    PDEBench and CAPE train) or `adamw` (decoupled), optionally after global-norm clipping.
    """
    if name == "adam":
        core = optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.scale_by_adam(),
            optax.scale_by_learning_rate(schedule),
        )
    elif name == "adamw":
        core = optax.adamw(schedule, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {name!r}; known: adam, adamw")
    if clip_norm is None:
        return core
    return optax.chain(optax.clip_by_global_norm(clip_norm), core)
