"""`Stepper`: an operator model made autoregressive, and compiled rollouts of it.

The stepper works in physical units: it normalises its input window per channel with the
training split's statistics, stacks the `history` frames time-major into channels (channel
`h * C + c` is frame h, field c), calls the operator model, optionally adds the model's output
to the last frame (residual), and undoes the normalisation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class Statistic(nnx.Variable):
    """A fixed array the model carries (normalisation statistics): saved, never trained."""


class Stepper(nnx.Module):
    """Next frame from the last `history` frames.

    window: (B, H, *X, C) physical fields -> (B, *X, C) the next frame. `params` (B, P), the
    PDE parameters, are passed on to models that use them.
    """

    def __init__(
        self,
        model: nnx.Module,
        *,
        history: int,
        channels: int,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        residual: bool = False,
    ):
        self.model = model
        self.history = history
        self.channels = channels
        self.residual = residual
        self.mean = Statistic(jnp.zeros(channels) if mean is None else jnp.asarray(mean))
        self.std = Statistic(jnp.ones(channels) if std is None else jnp.asarray(std))

    def normalise(self, fields: jax.Array) -> jax.Array:
        return (fields - self.mean[...]) / self.std[...]

    def denormalise(self, fields: jax.Array) -> jax.Array:
        return fields * self.std[...] + self.mean[...]

    def __call__(self, window: jax.Array, *, params: jax.Array | None = None) -> jax.Array:
        z = self.normalise(window)
        batch, history, *space, channels = z.shape
        stacked = jnp.moveaxis(z, 1, -2).reshape(batch, *space, history * channels)
        out = self.model(stacked, params=params)
        if self.residual:
            out = z[:, -1] + out
        return self.denormalise(out)


def rollout(
    stepper: Stepper, context: jax.Array, steps: int, *, params: jax.Array | None = None
) -> jax.Array:
    """`steps` frames predicted autoregressively from `context` (B, H, *X, C): (B, steps, *X, C)."""

    def advance(window: jax.Array, _) -> tuple[jax.Array, jax.Array]:
        frame = stepper(window, params=params)
        return jnp.concatenate([window[:, 1:], frame[:, None]], axis=1), frame

    _, frames = jax.lax.scan(advance, context, None, length=steps)
    return jnp.moveaxis(frames, 0, 1)
