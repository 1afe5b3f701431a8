"""SpectralConv against a NumPy float64 reference written from the definition, plus exact cases.

Every test runs twice, once with FFTs and once with truncated DFTs as matrix products.
"""

from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.models import SpectralConv, spectral


@pytest.fixture(autouse=True, params=["fft", "matmul"])
def transform(request, monkeypatch) -> str:
    """Force one way of transforming, whatever `spectral._dft_by_matmul` would pick."""
    monkeypatch.setattr(spectral, "_dft_by_matmul", lambda grid, windows: request.param == "matmul")
    # A fresh jit, so that nothing traced with the other way is reused.
    monkeypatch.setattr(sys.modules[__name__], "apply", nnx.jit(lambda conv, x: conv(x)))
    return request.param


def kept_frequencies(size: int, modes: int, last: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer frequencies one axis keeps on a grid of `size`, and their weight indices.

    The last axis keeps the rfft frequencies 0 .. modes // 2; any other axis the centred block
    -(m // 2) .. m - m // 2 - 1, m = min(modes, size); weight index = frequency + modes // 2.
    """
    if last:
        freqs = np.arange(min(modes // 2 + 1, size // 2 + 1))
        return freqs, freqs
    kept = min(modes, size)
    freqs = np.arange(-(kept // 2), kept - kept // 2)
    return freqs, freqs + modes // 2


def reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, n_modes) -> np.ndarray:
    """x: (B, *X, Cin), weight: (Cin, Cout, *K) complex, bias: (Cout,) -> (B, *X, Cout).

    y = Re(sum over kept half-spectrum modes k of c_k W(k) x_hat(k) exp(2 pi i k.x)) + b, where
    x_hat = rfftn(x) / prod(X) and c_k = 1 for the DC and Nyquist entries of the last axis and
    2 for the others (each stands for itself and its conjugate partner).
    """
    batch, *grid, _ = x.shape
    axes = tuple(range(1, len(grid) + 1))
    x_hat = np.fft.rfftn(x, axes=axes) / np.prod(grid)
    y_hat = np.zeros((*x_hat.shape[:-1], weight.shape[1]), dtype=complex)
    bins, widx = [], []
    for i, (size, modes) in enumerate(zip(grid, n_modes, strict=True)):
        freqs, w = kept_frequencies(size, modes, last=i == len(grid) - 1)
        bins.append(freqs % size)
        widx.append(w)
    x_sel = x_hat[np.ix_(range(batch), *bins, range(x.shape[-1]))]
    w_sel = weight[np.ix_(range(weight.shape[0]), range(weight.shape[1]), *widx)]
    y_hat[np.ix_(range(batch), *bins, range(weight.shape[1]))] = np.einsum(
        "b...i,io...->b...o", x_sel, w_sel
    )
    n_last = grid[-1]
    multiplicity = np.full(n_last // 2 + 1, 2.0)
    multiplicity[0] = 1.0
    if n_last % 2 == 0:
        multiplicity[-1] = 1.0
    full = np.zeros((batch, *grid, weight.shape[1]), dtype=complex)
    full[..., : n_last // 2 + 1, :] = y_hat * multiplicity[:, None]
    y = np.fft.ifftn(full, axes=axes) * np.prod(grid)
    return y.real + bias


def weights_of(conv: SpectralConv) -> tuple[np.ndarray, np.ndarray]:
    """The complex weight and the bias of `conv`, in float64."""
    weight = np.asarray(conv.weight_tensor().reconstruct(), np.complex128)
    return weight, np.asarray(conv.bias[...], np.float64)


def conv_with(in_channels, out_channels, n_modes, weight=None, bias=None, seed=0) -> SpectralConv:
    """A SpectralConv holding `weight` and `bias` (complex-normal and normal when None).

    Built abstractly and then filled, so tests skip compiling the random initialiser for every
    weight shape; `test_initialisation` covers the real one.
    """
    conv = nnx.eval_shape(
        lambda: SpectralConv(in_channels, out_channels, n_modes, rngs=nnx.Rngs(0))
    )
    rng = np.random.default_rng(seed)
    shape = conv.weight_tensor().shape
    if weight is None:
        weight = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    if bias is None:
        bias = rng.normal(size=out_channels)
    conv.set_dense_weight(weight)
    conv.bias.set_value(jnp.asarray(bias, jnp.float32))
    return conv


# One compilation per model structure and input shape, instead of one per operation.
apply = nnx.jit(lambda conv, x: conv(x))


# (grid, n_modes): 1D/2D/3D, even and odd sizes and modes, and grids with fewer modes than
# the weight (including an even weight axis clipped to an odd count, where frequencies must
# still line up).
CASES = [
    ((16,), (6,)),
    ((15,), (7,)),
    ((9,), (32,)),
    ((10,), (10,)),
    ((12, 10), (6, 5)),
    ((11, 9), (5, 6)),
    ((7, 9), (10, 12)),
    ((16, 8), (8, 8)),
    ((8, 9, 10), (4, 5, 6)),
    ((7, 6, 5), (8, 3, 4)),
]


@pytest.mark.parametrize(("grid", "n_modes"), CASES)
def test_matches_numpy_reference(grid, n_modes):
    conv = conv_with(3, 2, n_modes)
    x = np.random.default_rng(1).normal(size=(2, *grid, 3)).astype(np.float32)
    y = apply(conv, jnp.asarray(x))
    assert y.shape == (2, *grid, 2)
    assert y.dtype == jnp.float32
    expected = reference(x.astype(np.float64), *weights_of(conv), n_modes)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5)


def test_half_precision_input_is_transformed_in_float32():
    conv = conv_with(3, 2, (6, 5))
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 12, 10, 3)), jnp.bfloat16)
    y = apply(conv, x)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(
        np.asarray(y), np.asarray(apply(conv, x.astype(jnp.float32))), rtol=1e-6, atol=1e-6
    )


def test_initialisation():
    conv = SpectralConv(40, 24, (12, 12), rngs=nnx.Rngs(0))
    # Stored modes first; neuraloperator's layout (Cin, Cout, *modes) through weight_tensor.
    assert conv.weight_real.shape == conv.weight_imag.shape == (12, 7, 40, 24)
    assert conv.weight_tensor().shape == (40, 24, 12, 7)
    assert conv.bias.shape == (24,)
    # Complex-normal with std sqrt(2 / (Cin + Cout)): each part sqrt(1 / 64), independent.
    real, imag = np.asarray(conv.weight_real[...]), np.asarray(conv.weight_imag[...])
    for part in (real, imag):
        assert abs(part.std() / np.sqrt(1.0 / 64) - 1) < 0.03
        assert abs(part.mean()) < 0.01
    assert abs(np.corrcoef(real.ravel(), imag.ravel())[0, 1]) < 0.02
    assert np.all(np.asarray(conv.bias[...]) != 0)
    y = apply(conv, jnp.ones((1, 20, 20, 40)))
    assert y.shape == (1, 20, 20, 24)
    assert np.all(np.isfinite(np.asarray(y)))


def identity_conv(channels: int, n_modes) -> SpectralConv:
    weight_modes = (*n_modes[:-1], n_modes[-1] // 2 + 1)
    weight = np.zeros((channels, channels, *weight_modes), dtype=complex)
    for c in range(channels):
        weight[c, c] = 1.0
    return conv_with(channels, channels, n_modes, weight, np.zeros(channels))


# All modes of a grid: n_modes equal to the grid, so an even last axis keeps its Nyquist entry
# (n_modes[-1] // 2 + 1 = X[-1] // 2 + 1) and an even other axis its -X/2 frequency.
@pytest.mark.parametrize("grid", [(8,), (9,), (6, 8), (7, 5), (4, 6, 5), (5, 4, 6)])
def test_identity_weights_with_all_modes_return_input(grid):
    x = np.random.default_rng(2).normal(size=(2, *grid, 2)).astype(np.float32)
    y = apply(identity_conv(2, grid), jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(y), x, atol=1e-5)


def test_even_last_axis_needs_its_nyquist_mode():
    # n_modes = 15 on 16 points keeps rfft bins 0..7, so only the Nyquist component is lost.
    x = np.random.default_rng(3).normal(size=(1, 16, 1))
    y = apply(identity_conv(1, (15,)), jnp.asarray(x, jnp.float32))
    alternating = (-1.0) ** np.arange(16)[None, :, None]
    nyquist = np.mean(x * alternating)
    np.testing.assert_allclose(np.asarray(y), x - nyquist * alternating, atol=1e-5)


def plane_wave(grid, freqs, amplitudes) -> np.ndarray:
    """(1, *grid, C): channel c is amplitudes[c] * cos(2 pi sum_a freqs[a] x_a / grid[a])."""
    coords = np.meshgrid(*(np.arange(n) / n for n in grid), indexing="ij")
    phase = 2 * np.pi * sum(f * c for f, c in zip(freqs, coords, strict=True))
    return (np.cos(phase)[None, ..., None] * np.asarray(amplitudes)).astype(np.float32)


@pytest.mark.parametrize(
    ("grid", "n_modes", "freqs", "kept"),
    [
        ((32,), (8,), (3,), True),
        ((32,), (8,), (5,), False),
        ((16, 12), (6, 6), (-3, 1), True),
        ((16, 12), (6, 6), (3, 1), False),  # an even block keeps -3 but not +3
        ((16, 12), (6, 6), (2, 3), True),
        ((16, 12), (6, 6), (1, 4), False),
        ((8, 10, 9), (4, 4, 5), (-2, 1, 2), True),
        ((8, 10, 9), (4, 4, 5), (1, 2, 2), False),
    ],
)
def test_single_mode_is_scaled_or_removed(grid, n_modes, freqs, kept):
    amplitudes = np.array([1.0, -0.5])
    conv = conv_with(2, 3, n_modes, bias=np.zeros(3))
    y = np.asarray(apply(conv, jnp.asarray(plane_wave(grid, freqs, amplitudes))), np.float64)
    # With a positive last frequency the wave has one coefficient, 1/2, in the half spectrum.
    y_hat = np.fft.rfftn(y, axes=tuple(range(1, len(grid) + 1))) / np.prod(grid)
    target = tuple(f % n for f, n in zip(freqs, grid, strict=True))
    expected = np.zeros_like(y_hat)
    if kept:
        weight, _ = weights_of(conv)
        index = tuple(
            f if i == len(grid) - 1 else f + m // 2
            for i, (f, m) in enumerate(zip(freqs, n_modes, strict=True))
        )
        expected[(0, *target)] = amplitudes @ weight[(slice(None), slice(None), *index)] / 2
    np.testing.assert_allclose(y_hat, expected, atol=1e-6)


def test_hermitian_fix_keeps_the_real_part_on_the_dc_plane():
    # cos(2 pi k x0) has coefficients 1/2 at (+-k, 0). The weight maps them independently, so
    # the result has to be projected back onto real fields: (W(k) + conj(W(-k))) / 4 at (k, 0).
    grid, n_modes, k = (16, 10), (6, 6), 2
    conv = conv_with(1, 1, n_modes, bias=np.zeros(1))
    weight = weights_of(conv)[0][0, 0]
    y = np.asarray(apply(conv, jnp.asarray(plane_wave(grid, (k, 0), [1.0]))), np.float64)
    y_hat = np.fft.rfft2(y[0, ..., 0]) / np.prod(grid)
    expected = np.zeros_like(y_hat)
    value = (weight[k + 3, 0] + np.conj(weight[-k + 3, 0])) / 4
    expected[k, 0], expected[-k, 0] = value, np.conj(value)
    np.testing.assert_allclose(y_hat, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("grid", "n_modes"), [((12,), (8,)), ((10, 9), (6, 5)), ((6, 8, 7), (4, 4, 4))]
)
def test_same_weights_give_the_same_function_on_a_finer_grid(grid, n_modes):
    conv = conv_with(2, 3, n_modes, seed=5)
    fine = tuple(2 * n for n in grid)
    # A field made of modes both grids resolve has the same coefficients on both grids.
    coarse_x = plane_wave(grid, (1,) * len(grid), [1.0, 0.3]) + plane_wave(
        grid, (-2, *((1,) * (len(grid) - 1))), [0.2, -1.0]
    )
    fine_x = plane_wave(fine, (1,) * len(grid), [1.0, 0.3]) + plane_wave(
        fine, (-2, *((1,) * (len(grid) - 1))), [0.2, -1.0]
    )
    coarse_y = apply(conv, jnp.asarray(coarse_x))
    fine_y = apply(conv, jnp.asarray(fine_x))
    assert fine_y.shape == (1, *fine, 3)
    subsampled = fine_y[(slice(None), *(slice(None, None, 2) for _ in grid))]
    np.testing.assert_allclose(np.asarray(subsampled), np.asarray(coarse_y), atol=1e-5)
