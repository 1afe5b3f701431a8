"""The two ways SpectralConv transforms: FFTs, and truncated DFTs as matrix products."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_spectral import CASES as REFERENCE_CASES

from surrogates.models import SpectralConv, spectral


def windows_of(grid, n_modes):
    conv = nnx.eval_shape(lambda: SpectralConv(1, 1, n_modes, rngs=nnx.Rngs(0)))
    return conv._windows(grid)


def stacked(z: np.ndarray) -> np.ndarray:
    """Complex vector -> its parts as the matrices' (point, part) order flattens them."""
    return np.stack([z.real, z.imag], axis=-1).reshape(-1)


@pytest.mark.parametrize("size", [7, 8])
def test_dft_matrices_match_numpy(size):
    rng = np.random.default_rng(0)
    a = rng.normal(size=size) + 1j * rng.normal(size=size)
    first, freqs = -(size // 2), np.arange(-(size // 2), size - size // 2)
    # Complex input: columns (part, point).
    forward = spectral._forward_dft(size, first, size, real=False)
    coefficients = (forward @ np.concatenate([a.real, a.imag])).reshape(size, 2)
    coefficients = coefficients[:, 0] + 1j * coefficients[:, 1]
    np.testing.assert_allclose(coefficients, np.fft.fft(a)[freqs % size] / size, atol=1e-12)
    # Real input: only the real columns.
    real = spectral._forward_dft(size, first, size, real=True)
    np.testing.assert_allclose(
        real @ a.real, stacked(np.fft.fft(a.real)[freqs % size] / size), atol=1e-12
    )
    # Inverse of every frequency: back to the input, rows (part, point).
    inverse = spectral._inverse_dft(size, first, size, half_spectrum=False, real=False)
    np.testing.assert_allclose(
        (inverse @ stacked(coefficients)).reshape(2, size), [a.real, a.imag], atol=1e-12
    )
    # Half spectrum: the inner modes count twice, as irfft counts them.
    half = np.fft.rfft(a.real) / size
    irfft = spectral._inverse_dft(size, 0, size // 2 + 1, half_spectrum=True, real=True)
    np.testing.assert_allclose(irfft @ stacked(half), a.real, atol=1e-12)


CASES = [
    *REFERENCE_CASES,
    ((6, 5), (1, 4)),  # one mode on the first axis: nothing to mirror
    ((8, 6), (8, 6)),  # all modes of an even first axis: its Nyquist mode mirrors itself
]


@pytest.mark.parametrize(("grid", "n_modes"), CASES)
def test_fft_and_products_agree_in_values_and_gradients(grid, n_modes):
    windows = windows_of(grid, n_modes)
    kept = tuple(n for _, _, n in windows)
    rng = np.random.default_rng(1)

    def complex_normal(shape):
        return jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape), jnp.complex64)

    x = jnp.asarray(rng.normal(size=(2, *grid, 3)), jnp.float32)
    modes = complex_normal((2, *kept, 3))
    for by_fft, by_matmul, argument, cotangent in [
        (spectral._kept_modes_by_fft, spectral._kept_modes_by_matmul, x, modes),
        (spectral._inverse_by_fft, spectral._inverse_by_matmul, modes, x),
    ]:
        results = []
        for transform in (by_fft, by_matmul):
            value, vjp = jax.vjp(lambda a, f=transform: f(a, grid, windows), argument)
            results.append((np.asarray(value), np.asarray(vjp(cotangent)[0])))
        (fft_value, fft_grad), (matmul_value, matmul_grad) = results
        assert matmul_value.dtype == fft_value.dtype
        np.testing.assert_allclose(matmul_value, fft_value, atol=2e-6 * np.abs(fft_value).max())
        np.testing.assert_allclose(matmul_grad, fft_grad, atol=2e-6 * np.abs(fft_grad).max())


@pytest.mark.parametrize(
    ("grid", "n_modes", "by_matmul"),
    [
        ((64, 64), (16, 16), True),
        ((64, 64), (32, 32), True),
        ((64, 64), (64, 64), False),
        ((256, 256), (64, 64), True),
        ((256, 256), (128, 128), False),
        ((1024,), (64,), True),
        ((4096,), (512,), False),
        ((64, 64, 64), (32, 32, 32), True),
        ((1,), (1,), False),
    ],
)
def test_products_are_chosen_for_few_modes_and_ffts_for_most(grid, n_modes, by_matmul):
    assert spectral._dft_by_matmul(grid, windows_of(grid, n_modes)) is by_matmul
