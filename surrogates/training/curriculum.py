"""Curricula: how many rollout steps feed back the model's own prediction, per epoch.

A training step unrolls `rollout_steps` frames. At step k (0-based) the model predicts frame
k; the next input window takes that prediction if `k < n_ar`, else the true frame (teacher
forcing). A curriculum maps the epoch (0-based) to `n_ar` in `[0, rollout_steps]`: 0 is pure
teacher forcing, `rollout_steps` fully autoregressive. The value is passed to the compiled
step as a traced integer, so changing it never recompiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Curriculum = Callable[[int], int]


def teacher_forcing() -> Curriculum:
    """Always feed the true frames back: `n_ar = 0`."""
    return lambda epoch: 0


def autoregressive(rollout_steps: int) -> Curriculum:
    """Always feed the model's predictions back: `n_ar = rollout_steps`."""
    return lambda epoch: rollout_steps


def linear(rollout_steps: int, start_epoch: int, end_epoch: int) -> Curriculum:
    """From teacher forcing at `start_epoch` to fully autoregressive at `end_epoch`, linearly:
    `n_ar = round(rollout_steps * clip((epoch - start) / (end - start), 0, 1))`.
    """
    if end_epoch <= start_epoch:
        raise ValueError(f"end_epoch ({end_epoch}) must exceed start_epoch ({start_epoch})")

    def schedule(epoch: int) -> int:
        fraction = min(max((epoch - start_epoch) / (end_epoch - start_epoch), 0.0), 1.0)
        return round(rollout_steps * fraction)

    return schedule


def cape_sigmoid(
    rollout_steps: int, history: int, epochs: int, warmup_epochs: int = 0
) -> Curriculum:
    """CAPE's curriculum, exactly as its training code computes it.

    With `t_train = history + rollout_steps` frames per window:
    `ep_norm = (epoch - warmup) / (epochs - warmup)`,
    `t_norm = (1 + tanh((ep_norm - 0.5) / 0.2)) / 2`,
    `t_ar = min(t_train, max(1, int(t_train * t_norm)))`. CAPE feeds back the prediction of
    absolute frame `t` (counted from the window start, `t >= history`) when `t < t_ar`, so the
    number of fed-back steps is `n_ar = clip(t_ar - history, 0, rollout_steps)`.
    """
    if epochs <= warmup_epochs:
        raise ValueError(f"epochs ({epochs}) must exceed warmup_epochs ({warmup_epochs})")
    t_train = history + rollout_steps

    def schedule(epoch: int) -> int:
        ep_norm = (epoch - warmup_epochs) / (epochs - warmup_epochs)
        t_norm = 0.5 * (1.0 + math.tanh((ep_norm - 0.5) / 0.2))
        t_ar = min(t_train, max(1, int(t_train * t_norm)))
        return min(max(t_ar - history, 0), rollout_steps)

    return schedule


def staged(rollout_steps: int, stages: Sequence[tuple[int, int]]) -> Curriculum:
    """A step function: `stages` lists `(first_epoch, n_ar)` pairs; before the first stage,
    teacher forcing. Values above `rollout_steps` are capped.
    """
    ordered = sorted(stages)
    if any(n < 0 for _, n in ordered):
        raise ValueError(f"stages must have n_ar >= 0, got {list(stages)}")

    def schedule(epoch: int) -> int:
        current = 0
        for first_epoch, n_ar in ordered:
            if epoch >= first_epoch:
                current = n_ar
        return min(current, rollout_steps)

    return schedule
