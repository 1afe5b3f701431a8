"""`Stepper`: an operator model made autoregressive, and compiled rollouts of it.

The stepper works in physical units: it normalises its input window per channel with the
training split's statistics, stacks the `history` frames time-major into channels (channel
`h * C + c` is frame h, field c) after the normalised static inputs if the data has them
(Darcy's coefficient; they come first so the last `C` channels are always the latest frame),
calls the operator model, optionally adds the model's output to the last frame (residual),
and undoes the normalisation. With `history=0` the model sees only the static inputs: a steady
problem, a map from coefficients to the solution. PDE parameters reach the model normalised
with the training split's statistics, which the stepper carries (so checkpoints do).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class Statistic(nnx.Variable):
    """A fixed array the model carries (normalisation statistics): saved, never trained."""


class Stepper(nnx.Module):
    """Next frame from the last `history` frames and the static inputs.

    window: (B, H, *X, C) physical fields, static: (B, *X, Cs) or None, pde_params: (B, P)
    or None -> (B, *X, C) the next frame. The model gets `Cs + H * C` channels and the PDE
    parameters normalised with `pde_mean` and `pde_std` (P,).
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
        static_channels: int = 0,
        static_mean: np.ndarray | None = None,
        static_std: np.ndarray | None = None,
        pde_mean: np.ndarray | None = None,
        pde_std: np.ndarray | None = None,
    ):
        if history == 0 and (residual or static_channels == 0):
            raise ValueError("a stepper without history needs static inputs and cannot be residual")
        self.model = model
        self.history = history
        self.channels = channels
        self.residual = residual
        self.static_channels = static_channels
        self.mean = Statistic(_or(mean, jnp.zeros(channels)))
        self.std = Statistic(_or(std, jnp.ones(channels)))
        # None rather than empty arrays, which checkpoints cannot hold.
        self.static_mean = self.static_std = nnx.data(None)
        if static_channels:
            self.static_mean = Statistic(_or(static_mean, jnp.zeros(static_channels)))
            self.static_std = Statistic(_or(static_std, jnp.ones(static_channels)))
        self.pde_mean = self.pde_std = nnx.data(None)
        if pde_mean is not None:
            self.pde_mean = Statistic(jnp.asarray(pde_mean, jnp.float32))
            self.pde_std = Statistic(_or(pde_std, jnp.ones(len(pde_mean), jnp.float32)))

    def normalise(self, fields: jax.Array) -> jax.Array:
        return (fields - self.mean[...]) / self.std[...]

    def denormalise(self, fields: jax.Array) -> jax.Array:
        return fields * self.std[...] + self.mean[...]

    def normalise_pde_params(self, pde_params: jax.Array | None) -> jax.Array | None:
        if pde_params is None or self.pde_mean is None:
            return pde_params
        return (pde_params - self.pde_mean[...]) / self.pde_std[...]

    def __call__(
        self,
        window: jax.Array,
        *,
        pde_params: jax.Array | None = None,
        static: jax.Array | None = None,
    ) -> jax.Array:
        if (static is None) != (self.static_channels == 0):
            raise ValueError(
                f"expected static inputs with {self.static_channels} channels, got "
                f"{None if static is None else static.shape}"
            )
        z = self.normalise(window)
        batch, history, *space, channels = z.shape
        stacked = jnp.moveaxis(z, 1, -2).reshape(batch, *space, history * channels)
        if static is not None:
            normalised = (static - self.static_mean[...]) / self.static_std[...]
            stacked = jnp.concatenate([normalised.astype(stacked.dtype), stacked], axis=-1)
        out = self.model(stacked, pde_params=self.normalise_pde_params(pde_params))
        if self.residual:
            out = z[:, -1] + out
        return self.denormalise(out)


def _or(value: np.ndarray | None, default: jax.Array) -> jax.Array:
    return default if value is None else jnp.asarray(value)


def shift_in(window: jax.Array, frame: jax.Array) -> jax.Array:
    """The next window: drop the oldest frame of (B, H, *X, C), append `frame` (B, *X, C).

    A window without history frames (a steady problem) stays empty.
    """
    if window.shape[1] == 0:
        return window
    return jnp.concatenate([window[:, 1:], frame[:, None]], axis=1)


def rollout(
    stepper: Stepper,
    context: jax.Array,
    steps: int,
    *,
    pde_params: jax.Array | None = None,
    static: jax.Array | None = None,
) -> jax.Array:
    """`steps` frames predicted autoregressively from `context` (B, H, *X, C), the static
    inputs (B, *X, Cs) and the PDE parameters (B, P): (B, steps, *X, C).
    """

    def advance(window: jax.Array, _) -> tuple[jax.Array, jax.Array]:
        frame = stepper(window, pde_params=pde_params, static=static)
        return shift_in(window, frame), frame

    _, frames = jax.lax.scan(advance, context, None, length=steps)
    return jnp.moveaxis(frames, 0, 1)
