"""Fourier layer of neuraloperator's FNO for real, channels-last fields on 1 to 3 axes.

A `SpectralConv` multiplies the lowest Fourier modes of its input by a learned complex
channel-mixing matrix per mode and drops every other mode:

    y = irfftn(W(k) . rfftn(x)(k) for the kept modes k, zero elsewhere) + b

with `norm="forward"` both ways, so a Fourier coefficient is the grid average of the field times
the conjugate mode. That makes coefficients of a smooth field (nearly) independent of the grid,
which is what lets one set of weights run at any resolution.

The transforms are either FFTs (full spectrum, then the kept block sliced out) or, when the
kept modes are few for the grid, truncated DFTs: one matrix product per axis that computes only
the kept modes (and, inverse, sums only them), with matrices built with NumPy from the static
shapes at trace time, so any grid still works. Both give the same function to float32
rounding; `_dft_by_matmul` picks the cheaper one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.factorized import (
    ComplexParam,
    DenseTensor,
    FactorizedTensor,
    Prepared,
    Rank,
    contract_dense,
    factorization_name,
    move_channels,
    new_tensor,
)

Implementation = Literal["factorized", "reconstructed"]

# One axis of the spectral window: where the kept modes start in the (shifted) spectrum of the
# input, where they start in the weight, and how many there are.
_AxisWindow = tuple[int, int, int]


class SpectralConv(nnx.Module):
    """Fourier convolution `(B, *X, Cin) -> (B, *X, Cout)` for real fields on 1 to 3 axes.

    **Arguments** (neuraloperator's names):

    - `in_channels`, `out_channels`: channel counts `Cin`, `Cout`.
    - `n_modes`: modes kept per spatial axis, counting both signs; its length sets the
      dimension. The last axis is transformed with `rfft`, so it keeps `n_modes[-1] // 2 + 1`
      non-negative frequencies; every other axis keeps the centred block of frequencies
      `-(m // 2) ... m - m // 2 - 1` with `m = n_modes[i]` (neuraloperator's fftshift and
      centred slice). So `n_modes=(12, 12)` gives a weight of shape `(Cin, Cout, 12, 7)`.
    - `bias`: add a learned real bias per output channel.
    - `factorization`: None (or "dense") for a full weight, or "cp", "tucker", "tt" for a
      factorized one (see `surrogates.models.factorized`); neuraloperator's capitalisations
      ("Tucker", "CP", "TT", "Dense") are accepted.
    - `rank`: rank of the factorization; a float is the fraction of the dense weight's parameters
      to keep (neuraloperator's TFNO uses 0.1), an int or a sequence the ranks themselves (see
      `surrogates.models.factorized`). Ignored when dense.
    - `fixed_rank_modes`: weight axes a Tucker factorization keeps at full rank; True means
      `[0]` (the input channels). Ignored by the other factorizations, as in neuraloperator.
    - `implementation`: "reconstructed" builds the weight from its factors and contracts with
      it; "factorized" contracts the kept modes with the factors directly. The two give the
      same function (a dense weight has nothing to factor, so it ignores this).
    - `separable`: one weight per channel and mode, `(C, *weight_modes)`, multiplying each
      channel by itself instead of mixing channels; needs `in_channels == out_channels`.
    - `max_n_modes`: modes the weight is allocated for (default `n_modes`), counted like
      `n_modes`; `n_modes` may be anything up to it, and `set_n_modes` changes it later
      (incremental modes). neuraloperator allocates `max_n_modes[-1]` entries on the last
      axis, of which only the first `max_n_modes[-1] // 2 + 1` are ever used; here only those
      exist, so with `max_n_modes` the parameter count is below neuraloperator's.
    - `rngs`: random streams; the weight and bias draw from `rngs.params`.

    **Weights:** the complex weight `(Cin, Cout, *weight_modes)`, `weight_modes =
    (*max_n_modes[:-1], max_n_modes[-1] // 2 + 1)`, has entries of standard deviation
    `sqrt(2 / (Cin + Cout))`, as neuraloperator; the bias `(Cout,)` is normal with the same.
    A dense weight is two real parameters `weight_real` and `weight_imag` (each part
    `sqrt(1 / (Cin + Cout))`) on this module, stored modes first, `(*weight_modes, Cin, Cout)`
    (separable: `(*weight_modes, C)`), the layout the per-mode channel products read as it
    lies; a factorized one is the submodule `weight`, whose factors are again pairs of real
    parameters. `weight_tensor()` returns either as a `FactorizedTensor` in the layout above.

    **Active modes and any grid:** weight index `j` of a non-last axis belongs to frequency
    `j - M // 2` with `M = max_n_modes[i]`, whatever the grid and the active `n_modes`. Fewer
    active modes (`n_modes[i] < M`) or a grid with fewer modes (`X[i] < n_modes[i]`, or
    `X[-1] // 2 + 1` below the active rfft modes) use the centred sub-block of the weight
    holding those same frequencies, and the first `n_modes[-1] // 2 + 1` entries of the last
    axis. neuraloperator slices `[s // 2, M - ceil(s / 2))` with `s` the number of dropped
    modes, which is the same block except for an even `M` with an odd number kept, where it is
    one frequency off (and learned weights would move to the neighbouring frequency as
    incremental training grows the modes); here frequencies always line up.

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
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        *,
        bias: bool = True,
        factorization: str | None = None,
        rank: Rank = 1.0,
        fixed_rank_modes: bool | Sequence[int] = False,
        implementation: Implementation = "reconstructed",
        separable: bool = False,
        max_n_modes: Sequence[int] | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        n_modes = _mode_counts(n_modes, "n_modes")
        max_n_modes = n_modes if max_n_modes is None else _mode_counts(max_n_modes, "max_n_modes")
        _check_active_modes(n_modes, max_n_modes)
        if implementation not in get_args(Implementation):
            raise ModelError(
                f"implementation must be one of {get_args(Implementation)}, got {implementation!r}"
            )
        if separable and in_channels != out_channels:
            raise ModelError(
                f"separable needs in_channels == out_channels, got {in_channels} and {out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_modes = n_modes
        self.max_n_modes = max_n_modes
        self.factorization = factorization_name(factorization)
        self.implementation = implementation
        self.separable = separable
        std = math.sqrt(2.0 / (in_channels + out_channels))
        channels = (in_channels,) if separable else (in_channels, out_channels)
        weight = new_tensor(
            factorization,
            (*channels, *max_n_modes[:-1], max_n_modes[-1] // 2 + 1),
            separable=separable,
            rank=rank,
            fixed_rank_modes=fixed_rank_modes,
            std=std,
            rngs=rngs,
        )
        if isinstance(weight, DenseTensor):
            # Stored modes first, the layout of the per-mode channel products (see
            # `contract_dense`); drawn in neuraloperator's layout and moved, so a seed gives
            # the same weights as before.
            self.weight_real, self.weight_imag = (
                nnx.Param(move_channels(part[...], len(channels), last=True))
                for part in (weight.tensor.real, weight.tensor.imag)
            )
            self.weight = None
        else:
            self.weight = weight
        self.bias = (
            nnx.Param(std * jax.random.normal(rngs.params(), (out_channels,))) if bias else None
        )

    def set_n_modes(self, n_modes: Sequence[int]) -> None:
        """Use `n_modes` (at most `max_n_modes`) from now on; the weights stay as they are.

        This changes static data of the module, so jitted functions taking it recompile.
        """
        n_modes = _mode_counts(n_modes, "n_modes")
        _check_active_modes(n_modes, self.max_n_modes)
        self.n_modes = n_modes

    def set_dense_weight(self, weight: jax.typing.ArrayLike) -> None:
        """Set the dense weight from `weight`, complex, in neuraloperator's layout
        `(Cin, Cout, *weight_modes)` (separable: `(C, *weight_modes)`).
        """
        if self.weight is not None:
            raise ModelError(
                f"set_dense_weight needs a dense weight, this one is {self.factorization}"
            )
        weight = jnp.asarray(weight)
        expected = self.weight_tensor().shape
        if weight.shape != expected:
            raise ModelError(f"weight must have shape {expected}, got {weight.shape}")
        moved = move_channels(weight, 1 if self.separable else 2, last=True)
        self.weight_real.set_value(jnp.real(moved).astype(self.weight_real.dtype))
        self.weight_imag.set_value(jnp.imag(moved).astype(self.weight_imag.dtype))

    def weight_tensor(self) -> FactorizedTensor:
        """The complex weight (Cin, Cout, *weight_modes) (separable: (C, *weight_modes))."""
        if self.weight is not None:
            return self.weight
        return DenseTensor(
            ComplexParam(self.weight_real, self.weight_imag),
            separable=self.separable,
            modes_first=True,
        )

    def prepare(self) -> Prepared:
        """What the contraction takes from the parameters, computed from them alone: the
        whole weight modes first when it is dense or "reconstructed", else the factorization's
        `prepare()`. An FNO prepares all of its blocks at once before scanning over them (see
        `fno.apply_blocks`); `__call__` prepares its own when given none.
        """
        weight = self.weight_tensor()
        if self._reconstructs:
            return weight.reconstruct(modes_first=True)
        return weight.prepare()

    @property
    def _reconstructs(self) -> bool:
        """Whether the contraction uses the rebuilt weight (a factorized "reconstructed" one;
        dense weights are their own reconstruction)."""
        return self.weight is not None and self.implementation == "reconstructed"

    def __call__(self, x: jax.Array, prepared: Prepared | None = None) -> jax.Array:
        """x: (B, *X, Cin) real -> (B, *X, Cout), the grid of `x`; `prepared` from `prepare()`."""
        grid = x.shape[1:-1]
        if len(grid) != len(self.n_modes) or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"expected input (B, *X, {self.in_channels}) with {len(self.n_modes)} spatial "
                f"axes, got shape {x.shape}"
            )
        windows = self._windows(grid)
        weight_window = tuple(slice(w, w + n) for _, w, n in windows)
        # XLA's FFTs take nothing below float32, and a DFT in half precision would be far
        # less accurate than the weights it feeds.
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if _dft_by_matmul(grid, windows):
            kept_modes, inverse = _kept_modes_by_matmul, _inverse_by_matmul
        else:
            kept_modes, inverse = _kept_modes_by_fft, _inverse_by_fft
        prepared = self.prepare() if prepared is None else prepared
        y_modes = self._contract(kept_modes(x, grid, windows), weight_window, prepared)
        y = inverse(y_modes, grid, windows)
        if self.bias is not None:
            y = y + self.bias[...]
        return y

    def _windows(self, grid: Sequence[int]) -> tuple[_AxisWindow, ...]:
        """Per axis: start in the input's shifted spectrum, start in the weight, mode count."""
        windows = []
        for size, modes, allocated in zip(
            grid[:-1], self.n_modes[:-1], self.max_n_modes[:-1], strict=True
        ):
            kept = min(size, modes)
            # Frequency 0 sits at index size // 2 of the fftshifted spectrum and at index
            # allocated // 2 of the weight; both windows start kept // 2 frequencies below it.
            windows.append((size // 2 - kept // 2, allocated // 2 - kept // 2, kept))
        windows.append((0, 0, min(grid[-1] // 2 + 1, self.n_modes[-1] // 2 + 1)))
        return tuple(windows)

    def _contract(
        self, x_modes: jax.Array, weight_window: tuple[slice, ...], prepared: Prepared
    ) -> jax.Array:
        """Mix channels mode by mode: (B, *K, Cin) -> (B, *K, Cout), both complex.

        `weight_window` selects the weight modes `K` matching `x_modes` (one slice per axis).
        """
        if self._reconstructs:
            return contract_dense(x_modes, prepared[weight_window], separable=self.separable)
        return self.weight_tensor().contract(x_modes, weight_window, prepared)


def _mode_counts(n_modes: Sequence[int], argument: str) -> tuple[int, ...]:
    """`n_modes` as a tuple of 1 to 3 positive ints; ModelError naming `argument` otherwise."""
    if isinstance(n_modes, int) or not all(isinstance(m, int | np.integer) for m in n_modes):
        raise ModelError(f"{argument} must be 1 to 3 positive integers, got {n_modes!r}")
    counts = tuple(int(m) for m in n_modes)
    if not 1 <= len(counts) <= 3 or min(counts) < 1:
        raise ModelError(f"{argument} must be 1 to 3 positive integers, got {counts}")
    return counts


def _check_active_modes(n_modes: tuple[int, ...], max_n_modes: tuple[int, ...]) -> None:
    if len(n_modes) != len(max_n_modes) or any(
        m > top for m, top in zip(n_modes, max_n_modes, strict=True)
    ):
        raise ModelError(
            f"n_modes must have one entry per axis of max_n_modes {max_n_modes}, none larger, "
            f"got {n_modes}"
        )


def _imag_keep(size: int) -> np.ndarray:
    """(size // 2 + 1,) ones, zero at the DC and, for an even `size`, the Nyquist entry."""
    keep = np.ones(size // 2 + 1, dtype=np.float32)
    keep[0] = 0.0
    if size % 2 == 0:
        keep[-1] = 0.0
    return keep


# Truncated DFTs as matrix products pay off while they need at most this many multiply-adds
# per flop of the FFTs they replace (see `_dft_by_matmul`).
_MATMUL_TO_FFT_COST = 5.0


def _dft_by_matmul(grid: Sequence[int], windows: Sequence[_AxisWindow]) -> bool:
    """Whether truncated DFTs as matrix products are cheaper here than FFTs.

    Per batch entry and channel, forward and inverse each take, for every axis `a`, a
    `(2 K_a) x (2 X_a)` product (half as wide for the real end) on each point of the other
    axes (kept modes before `a`, grid points after it); an FFT of `N` points takes about
    `2.5 N log2 N` flops each way, plus transposes that bring each axis last. Timed with XLA
    on CPU over 1D to 3D grids, forward and gradient, the products were faster whenever they
    needed at most `_MATMUL_TO_FFT_COST` times the FFT's flops and slower beyond (the README's
    performance section has the crossover points). So few kept modes (FNO's usual 12 to 32)
    use products, keeping most of a grid's modes uses FFTs.
    """
    kept = [n for _, _, n in windows]
    products = 0
    for axis, size in enumerate(grid):
        width = size if axis == 0 else 2 * size
        products += 2 * kept[axis] * width * math.prod(kept[:axis]) * math.prod(grid[axis + 1 :])
    points = math.prod(grid)
    fft_flops = 2.5 * points * math.log2(points)
    return 2 * products <= _MATMUL_TO_FFT_COST * 2 * fft_flops


def _kept_modes_by_fft(
    x: jax.Array, grid: Sequence[int], windows: Sequence[_AxisWindow]
) -> jax.Array:
    """x: (B, *X, Cin) real -> the kept Fourier coefficients (B, *K, Cin), complex."""
    spatial = tuple(range(1, x.ndim - 1))
    x_hat = jnp.fft.rfftn(x, axes=spatial, norm="forward")
    x_hat = jnp.fft.fftshift(x_hat, axes=spatial[:-1])
    index = tuple(slice(start, start + n) for start, _, n in windows)
    return x_hat[(slice(None), *index)]


def _inverse_by_fft(
    y_modes: jax.Array, grid: Sequence[int], windows: Sequence[_AxisWindow]
) -> jax.Array:
    """Kept modes (B, *K, Cout) complex -> the real field (B, *X, Cout) on `grid`."""
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


def _kept_modes_by_matmul(
    x: jax.Array, grid: Sequence[int], windows: Sequence[_AxisWindow]
) -> jax.Array:
    """x: (B, *X, Cin) real -> the kept Fourier coefficients (B, *K, Cin), complex.

    Axis by axis from the first, each product turns the axis, together with the axis of
    real and imaginary parts just before it (none for the real input), into its kept modes
    followed by a new part axis: (B, *K[:a], 2, X_a, *X[a+1:], C) -> (B, *K[:a+1], 2,
    *X[a+1:], C). The contracted axes are always adjacent and everything after them one
    contiguous block, so no product needs a transpose.

    The first product, which reads the whole field, computes only the non-negative
    frequencies: the first axis' transform of a real field has d(-f) = conj(d(f)). The
    second product then also takes each of them conjugated (the same matrix with the
    imaginary columns negated, as more rows), and the negative frequencies are picked from
    those rows, a rearrangement of small arrays.
    """
    batch, channels = x.shape[0], x.shape[-1]
    kept = tuple(n for _, _, n in windows)
    first, count = _kept_frequencies(grid, windows, 0)
    mirror = len(grid) > 1 and first < 0
    if mirror:
        top = max(-first, first + count - 1)
        y = _left_multiply(
            _forward_dft(grid[0], 0, top + 1, real=True), x.reshape(batch, grid[0], -1)
        )
        matrix = _forward_dft(grid[1], *_kept_frequencies(grid, windows, 1), real=False)
        conjugated = matrix * np.repeat([1.0, -1.0], grid[1])
        y = _left_multiply(
            np.concatenate([matrix, conjugated]), y.reshape(batch * (top + 1), 2 * grid[1], -1)
        )
        y = y.reshape(batch, top + 1, 2, kept[1], 2, *grid[2:], channels)
        # Frequencies first .. -1 are the conjugates of -first .. 1, then 0 .. first + count - 1.
        y = jnp.concatenate([y[:, -first:0:-1, 1], y[:, : first + count, 0]], axis=1)
        done = 2
    else:
        y, done = x, 0
    for axis in range(done, len(grid)):
        size = grid[axis]
        matrix = _forward_dft(size, *_kept_frequencies(grid, windows, axis), real=axis == 0)
        lead = (batch, *kept[:axis])
        y = _left_multiply(matrix, y.reshape(math.prod(lead), matrix.shape[1], -1))
        y = y.reshape(*lead, kept[axis], 2, *grid[axis + 1 :], channels)
    return jax.lax.complex(y[..., 0, :], y[..., 1, :])


def _inverse_by_matmul(
    y_modes: jax.Array, grid: Sequence[int], windows: Sequence[_AxisWindow]
) -> jax.Array:
    """Kept modes (B, *K, Cout) complex -> the real field (B, *X, Cout) on `grid`.

    The forward steps run backwards, last axis first: (B, *K[:a+1], 2, *X[a+1:], C) ->
    (B, *K[:a], 2, *X[a:], C), the first axis giving the real part only. The output is the
    real part of the kept half spectrum summed with the rfft axis' DC and Nyquist terms
    counted once and the others twice, which is what the FFT path computes.
    """
    batch, channels = y_modes.shape[0], y_modes.shape[-1]
    kept = y_modes.shape[1:-1]
    n_axes = len(grid)
    y = jnp.stack([y_modes.real, y_modes.imag], axis=-2)
    for axis in reversed(range(n_axes)):
        matrix = _inverse_dft(
            grid[axis],
            *_kept_frequencies(grid, windows, axis),
            half_spectrum=axis == n_axes - 1,
            real=axis == 0,
        )
        lead = (batch, *kept[:axis])
        y = _left_multiply(matrix, y.reshape(math.prod(lead), matrix.shape[1], -1))
        y = y.reshape(*lead, *((2,) if axis else ()), *grid[axis:], channels)
    return y


def _kept_frequencies(
    grid: Sequence[int], windows: Sequence[_AxisWindow], axis: int
) -> tuple[int, int]:
    """The lowest kept frequency of `axis` and the number kept (consecutive frequencies)."""
    start, _, count = windows[axis]
    if axis == len(grid) - 1:
        return 0, count
    return start - grid[axis] // 2, count


def _left_multiply(matrix: np.ndarray, x: jax.Array) -> jax.Array:
    """matrix (R, N) times every slab of x (P, N, Q) -> (P, R, Q), in x's dtype.

    The gradient is the same kind of product with the transposed matrix (a constant, so
    only x gets one). Left to autodiff, the transpose of the broadcast product below became
    a batched product contracting the matrix's first axis, which XLA on CPU runs through a
    slow generic kernel: about a tenth of an FNO training step at 64 x 64.
    """
    transposed = _frozen(np.ascontiguousarray(matrix.T))

    @jax.custom_vjp
    def product(x: jax.Array) -> jax.Array:
        return _slab_product(matrix, x)

    def forward(x: jax.Array) -> tuple[jax.Array, None]:
        return _slab_product(matrix, x), None

    def backward(_: None, g: jax.Array) -> tuple[jax.Array]:
        return (_slab_product(transposed, g),)

    product.defvjp(forward, backward)
    return product(x)


def _slab_product(matrix: np.ndarray, x: jax.Array) -> jax.Array:
    """matrix (R, N) times every slab of x (P, N, Q) -> (P, R, Q), at full precision.

    Full precision because TF32 on a GPU would cost the transforms their float32 accuracy.
    """
    rows, cols = matrix.shape
    slabs, _, width = x.shape
    m = jnp.asarray(matrix, x.dtype)
    precision = jax.lax.Precision.HIGHEST
    if rows * cols <= (rows + cols) * width:
        # A batched product over the slabs with the matrix broadcast to each reads x as it
        # lies. Without the broadcast XLA puts the slabs side by side for one product, which
        # transposes x and the result: dearer unless the slabs are narrow next to the matrix.
        return jax.lax.dot_general(
            jnp.broadcast_to(m, (slabs, rows, cols)),
            x,
            (((2,), (1,)), ((0,), (0,))),
            precision=precision,
        )
    return jnp.matmul(m, x, precision=precision)


def _phases(size: int, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of `2 pi f n / size`, (count, size), for f = first .. first + count - 1.

    Angles are reduced modulo a full turn in integers, and the sines at 0 and half a turn
    are exact zeros, so DC and Nyquist modes stay exactly real.
    """
    turns = np.outer(np.arange(first, first + count), np.arange(size)) % size
    angle = 2.0 * np.pi * turns / size
    cos, sin = np.cos(angle), np.sin(angle)
    sin[(turns == 0) | (2 * turns == size)] = 0.0
    return cos, sin


@functools.lru_cache(maxsize=256)
def _forward_dft(size: int, first: int, count: int, *, real: bool) -> np.ndarray:
    """DFT (`norm="forward"`) of `count` frequencies from `first` on `size` points.

    Rows are (frequency, part), columns (part, point), parts real then imaginary: a
    (2 count, 2 size) matrix, or (2 count, size) taking only the real part of the input.
    """
    cos, sin = _phases(size, first, count)
    matrix = np.empty((count, 2, 2, size))
    # (a + ib) e^{-i t} = (a cos t + b sin t) + i (b cos t - a sin t)
    matrix[:, 0, 0], matrix[:, 0, 1] = cos, sin
    matrix[:, 1, 0], matrix[:, 1, 1] = -sin, cos
    if real:
        matrix = matrix[:, :, :1]
    return _frozen(matrix.reshape(2 * count, -1) / size)


@functools.lru_cache(maxsize=256)
def _inverse_dft(
    size: int, first: int, count: int, *, half_spectrum: bool, real: bool
) -> np.ndarray:
    """Inverse of `_forward_dft` (unnormalised, as `norm="forward"`), summing only its modes.

    Rows are (part, point), columns (frequency, part): a (2 size, 2 count) matrix, or
    (size, 2 count) giving only the real part. With `half_spectrum` (the rfft axis) every
    mode but DC and Nyquist also stands for its conjugate and counts twice.
    """
    cos, sin = _phases(size, first, count)
    if half_spectrum:
        freqs = np.arange(first, first + count)[:, None]
        twice = np.where((freqs == 0) | (2 * freqs == size), 1.0, 2.0)
        cos, sin = cos * twice, sin * twice
    matrix = np.empty((2, size, count, 2))
    # (a + ib) e^{i t} = (a cos t - b sin t) + i (a sin t + b cos t)
    matrix[0, ..., 0], matrix[0, ..., 1] = cos.T, -sin.T
    matrix[1, ..., 0], matrix[1, ..., 1] = sin.T, cos.T
    if real:
        matrix = matrix[:1]
    return _frozen(matrix.reshape(-1, 2 * count))


def _frozen(array: np.ndarray) -> np.ndarray:
    """`array`, read-only, as cached matrices are shared."""
    array.flags.writeable = False
    return array
