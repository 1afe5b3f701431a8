"""Fourier layer of neuraloperator's FNO for real, channels-last fields on 1 to 3 axes.

A `SpectralConv` multiplies the lowest Fourier modes of its input by a learned complex
channel-mixing matrix per mode and drops every other mode:

    y = irfftn(W(k) . rfftn(x)(k) for the kept modes k, zero elsewhere) + b

with `norm="forward"` both ways, so a Fourier coefficient is the grid average of the field times
the conjugate mode. That makes coefficients of a smooth field (nearly) independent of the grid,
which is what lets one set of weights run at any resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from surrogates.errors import ModelError

# One axis of the spectral window: where the kept modes start in the (shifted) spectrum of the
# input, where they start in the weight, and how many there are.
_AxisWindow = tuple[int, int, int]


class SpectralConv(nnx.Module):
    """Fourier convolution `(B, *X, Cin) -> (B, *X, Cout)` for real fields on 1 to 3 axes.

    **Arguments:**

    - `in_channels`, `out_channels`: channel counts `Cin`, `Cout`.
    - `n_modes`: modes kept per spatial axis, counting both signs; its length sets the
      dimension. The last axis is transformed with `rfft`, so it keeps `n_modes[-1] // 2 + 1`
      non-negative frequencies; every other axis keeps the centred block of frequencies
      `-(m // 2) ... m - m // 2 - 1` with `m = n_modes[i]` (neuraloperator's fftshift and
      centred slice). So `n_modes=(12, 12)` gives a weight of shape `(Cin, Cout, 12, 7)`.
    - `bias`: add a learned real bias per output channel.
    - `rngs`: random streams; the weight and bias draw from `rngs.params`.

    **Weights:** the complex weight `(Cin, Cout, *weight_modes)` is stored as two real
    parameters `weight_real` and `weight_imag`, so optimisers and checkpoints only ever see real
    arrays. It is complex-normal with standard deviation `sqrt(2 / (Cin + Cout))` (each part
    `sqrt(1 / (Cin + Cout))`), as neuraloperator; the bias `(Cout,)` is normal with
    `sqrt(2 / (Cin + Cout))`.

    **Any grid:** weight index `j` of a non-last axis belongs to frequency `j - m // 2`, whatever
    the grid. On a grid with fewer modes than the weight (`X[i] < n_modes[i]`, or
    `X[-1] // 2 + 1` below the kept rfft modes) only the frequencies the grid has are used, with
    the weight entries of those same frequencies. neuraloperator slices its weight
    `[s // 2, m - ceil(s / 2))` with `s` the number of dropped modes, which is one frequency off
    when `m` is even and `s` odd; here frequencies always line up.

    **Real output (neuraloperator's Hermitian fix):** the kept modes of the last axis are only
    the non-negative half of a spectrum, and `irfft` along that axis assumes its DC entry (and,
    on an even grid, its Nyquist entry) is real, as for the transform of a real line. After the
    weight, which treats `+k` and `-k` of the other axes independently, those entries are
    complex. So the inverse runs over the other axes first (each line along the last axis is
    then an ordinary half spectrum), the imaginary parts of the DC and Nyquist entries of the
    last axis are zeroed, and the last axis goes through `irfft` last. The output is then the
    real part of the inverse of the kept half spectrum (DC and Nyquist counted once, the other
    rfft modes twice), the same on every FFT backend instead of whatever a backend makes of a
    non-Hermitian input. Zeroing in the joint spectrum instead would be wrong: there the
    condition on the DC plane is Hermitian symmetry across the other axes, not realness.

    **Factorized weights:** `_contract` is the only place that touches the weight, and it gets
    the window of weight modes in use, so a factorized weight (CP, Tucker, TT) only needs to
    replace the weight parameters and `_contract`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        *,
        bias: bool = True,
        rngs: nnx.Rngs,
    ) -> None:
        n_modes = tuple(int(m) for m in n_modes)
        if not 1 <= len(n_modes) <= 3 or min(n_modes) < 1:
            raise ModelError(f"n_modes must be 1 to 3 positive integers, got {n_modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_modes = n_modes
        self.weight_modes = (*n_modes[:-1], n_modes[-1] // 2 + 1)
        std = math.sqrt(2.0 / (in_channels + out_channels))
        shape = (in_channels, out_channels, *self.weight_modes)
        # Each part carries half the variance of the complex value.
        self.weight_real = nnx.Param(std / math.sqrt(2.0) * jax.random.normal(rngs.params(), shape))
        self.weight_imag = nnx.Param(std / math.sqrt(2.0) * jax.random.normal(rngs.params(), shape))
        self.bias = (
            nnx.Param(std * jax.random.normal(rngs.params(), (out_channels,))) if bias else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (B, *X, Cin) real -> (B, *X, Cout), the grid of `x`."""
        grid = x.shape[1:-1]
        if len(grid) != len(self.n_modes) or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"expected input (B, *X, {self.in_channels}) with {len(self.n_modes)} spatial "
                f"axes, got shape {x.shape}"
            )
        windows = self._windows(grid)
        x_modes = self._kept_modes(x, windows)
        weight_window = tuple(slice(w, w + n) for _, w, n in windows)
        y = self._inverse(self._contract(x_modes, weight_window), grid, windows)
        if self.bias is not None:
            y = y + self.bias[...]
        return y

    def _windows(self, grid: Sequence[int]) -> tuple[_AxisWindow, ...]:
        """Per axis: start in the input's shifted spectrum, start in the weight, mode count."""
        windows = []
        for size, modes in zip(grid[:-1], self.n_modes[:-1], strict=True):
            kept = min(size, modes)
            # Frequency 0 sits at index size // 2 of the fftshifted spectrum and at index
            # modes // 2 of the weight; both windows start kept // 2 frequencies below it.
            windows.append((size // 2 - kept // 2, modes // 2 - kept // 2, kept))
        windows.append((0, 0, min(grid[-1] // 2 + 1, self.weight_modes[-1])))
        return tuple(windows)

    def _kept_modes(self, x: jax.Array, windows: Sequence[_AxisWindow]) -> jax.Array:
        """x: (B, *X, Cin) real -> the kept Fourier coefficients (B, *K, Cin), complex."""
        spatial = tuple(range(1, x.ndim - 1))
        x_hat = jnp.fft.rfftn(x, axes=spatial, norm="forward")
        x_hat = jnp.fft.fftshift(x_hat, axes=spatial[:-1])
        index = tuple(slice(start, start + n) for start, _, n in windows)
        return x_hat[(slice(None), *index)]

    def _contract(self, x_modes: jax.Array, weight_window: tuple[slice, ...]) -> jax.Array:
        """Mix channels mode by mode: (B, *K, Cin) -> (B, *K, Cout), both complex.

        `weight_window` selects the weight modes `K` matching `x_modes` (one slice per axis).
        """
        weight = jax.lax.complex(
            self.weight_real[(..., *weight_window)], self.weight_imag[(..., *weight_window)]
        )
        return jnp.einsum("b...i,io...->b...o", x_modes, weight)

    def _inverse(
        self, y_modes: jax.Array, grid: Sequence[int], windows: Sequence[_AxisWindow]
    ) -> jax.Array:
        """Kept modes (B, *K, Cout) -> the real field (B, *X, Cout) on `grid`."""
        spatial = tuple(range(1, len(grid) + 1))
        spectrum_shape = (*grid[:-1], grid[-1] // 2 + 1)
        pads = [(0, 0)]
        for (start, _, n), size in zip(windows, spectrum_shape, strict=True):
            pads.append((start, size - start - n))
        pads.append((0, 0))
        y_hat = jnp.fft.ifftshift(jnp.pad(y_modes, pads), axes=spatial[:-1])
        if len(grid) > 1:
            y_hat = jnp.fft.ifftn(y_hat, axes=spatial[:-1], norm="forward")
        y_hat = jax.lax.complex(y_hat.real, y_hat.imag * _imag_keep(grid[-1])[:, None])
        return jnp.fft.irfft(y_hat, n=grid[-1], axis=-2, norm="forward")


def _imag_keep(size: int) -> np.ndarray:
    """(size // 2 + 1,) ones, zero at the DC and, for an even `size`, the Nyquist entry."""
    keep = np.ones(size // 2 + 1, dtype=np.float32)
    keep[0] = 0.0
    if size % 2 == 0:
        keep[-1] = 0.0
    return keep
