"""Persistence baseline: the next frame is the last frame seen."""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.registry import register


@register("persistence")
class Persistence(nnx.Module):
    """Baseline that predicts no change: returns the last frame of its input; no parameters.

    A stepper stacks its history frames time-major into channels, so the last `out_channels`
    channels of the input are the most recent frame. Any model worth training should beat it.

    **Arguments:**

    - `in_channels`: input channels: history frames stacked time-major, nothing appended
      after them (so no grid embedding).
    - `out_channels`: channels of one frame, at most `in_channels`.
    - `rngs`: accepted for a uniform model signature and unused.
    """

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs | None = None):
        if not 1 <= out_channels <= in_channels:
            raise ModelError(
                f"persistence needs 1 <= out_channels <= in_channels, got out_channels="
                f"{out_channels} and in_channels={in_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """Arguments of a small instance (none: it has no parameters)."""
        del spatial_dims
        return {}

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, in_channels) -> (B, *X, out_channels), its last `out_channels` channels.

        `pde_params` are ignored.
        """
        if x.shape[-1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got shape {x.shape}")
        return x[..., -self.out_channels :]
