"""Factorized spectral weights (dense, CP, Tucker, TT), separable and incremental spectral convs,
and TFNO: NumPy references, exact cases and neuraloperator 2.0's parameter counts."""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import FNO, TFNO, SpectralConv, build, get
from surrogates.models.factorized import (
    ComplexParam,
    CPTensor,
    DenseTensor,
    TTTensor,
    TuckerTensor,
)

FACTORIZATIONS = ("dense", "cp", "tucker", "tt")
IMPLEMENTATIONS = ("factorized", "reconstructed")
# Channel axes of a weight and where modes-first layouts put them, by number of channel axes.
CHANNELS = {1: (0,), 2: (0, 1)}
MOVED = {1: (-1,), 2: (-2, -1)}

# One compilation per model structure and input shape, instead of one per operation.
apply = nnx.jit(lambda conv, x: conv(x))
apply_pair = nnx.jit(lambda a, b, x: (a(x), b(x)))


def param_count(module: nnx.Module) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(module, nnx.Param)))


def abstract_conv(in_channels: int, out_channels: int, n_modes, **kwargs) -> SpectralConv:
    return nnx.eval_shape(
        lambda: SpectralConv(in_channels, out_channels, n_modes, rngs=nnx.Rngs(0), **kwargs)
    )


def filled(factory, seed: int = 0):
    """`factory()` with N(0, 0.5^2) parameters, built abstractly and then filled, so tests skip
    compiling the random initialisers; `test_initial_weights_have_the_dense_std` covers those."""
    graphdef, state = nnx.split(nnx.eval_shape(factory))
    rng = np.random.default_rng(seed)
    state = jax.tree.map(
        lambda leaf: jnp.asarray(0.5 * rng.normal(size=leaf.shape), leaf.dtype), state
    )
    return nnx.merge(graphdef, state)


def filled_conv(in_channels: int, out_channels: int, n_modes, seed: int = 0, **kwargs):
    return filled(
        lambda: SpectralConv(in_channels, out_channels, n_modes, rngs=nnx.Rngs(0), **kwargs), seed
    )


def like(conv: SpectralConv, **changes) -> SpectralConv:
    """An abstract conv with `conv`'s constructor arguments, some of them changed."""
    arguments = {
        "n_modes": conv.n_modes,
        "factorization": conv.factorization,
        "rank": getattr(conv.weight, "rank", 1.0),
        "separable": conv.separable,
        "implementation": conv.implementation,
        "max_n_modes": conv.max_n_modes,
        **changes,
    }
    return abstract_conv(conv.in_channels, conv.out_channels, **arguments)


def twin(conv: SpectralConv, **changes) -> SpectralConv:
    """A conv like `conv`, some constructor arguments changed, holding `conv`'s weights."""
    other = like(conv, **changes)
    nnx.update(other, nnx.state(conv))
    return other


def weight_of(conv: SpectralConv, window=None) -> np.ndarray:
    return np.asarray(conv.weight_tensor().reconstruct(window), np.complex128)


def set_complex(param: ComplexParam, value: np.ndarray) -> None:
    param.real.set_value(jnp.asarray(np.real(value), jnp.float32))
    param.imag.set_value(jnp.asarray(np.imag(value), jnp.float32))


def random_input(shape, seed: int = 1) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


# (grid, n_modes) per dimension: odd and even sizes and mode counts, grids with fewer modes.
MATRIX = {1: ((9,), (6,)), 2: ((8, 7), (5, 4)), 3: ((6, 5, 4), (4, 3, 5))}


@functools.cache
def matrix_outputs(factorization: str, dim: int) -> dict[str, np.ndarray]:
    """Outputs of both implementations of one conv (same weights), computed in one compile."""
    grid, n_modes = MATRIX[dim]
    factorized = filled_conv(
        2, 3, n_modes, factorization=factorization, rank=0.5, implementation="factorized"
    )
    reconstructed = twin(factorized, implementation="reconstructed")
    y_factorized, y_reconstructed = apply_pair(
        factorized, reconstructed, random_input((2, *grid, 2))
    )
    return {"factorized": np.asarray(y_factorized), "reconstructed": np.asarray(y_reconstructed)}


@pytest.mark.parametrize("dim", sorted(MATRIX))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_matrix_shape_dtype_and_implementations_agree(factorization, implementation, dim):
    outputs = matrix_outputs(factorization, dim)
    y = outputs[implementation]
    other = outputs[next(i for i in IMPLEMENTATIONS if i != implementation)]
    assert y.shape == (2, *MATRIX[dim][0], 3)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 0.1
    np.testing.assert_allclose(y, other, rtol=1e-5, atol=1e-5)


def numpy_cp(weights: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
    """Sum over r of weights[r] times the outer product of the factor columns r."""
    total = 0
    for r, weight in enumerate(weights):
        total = total + weight * functools.reduce(np.multiply.outer, [f[:, r] for f in factors])
    return total


def numpy_tucker(core: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
    """core x_0 factors[0] x_1 factors[1] ... (mode-n products, one axis at a time)."""
    tensor = core
    for axis, factor in enumerate(factors):
        tensor = np.moveaxis(np.tensordot(factor, tensor, axes=(1, axis)), 0, axis)
    return tensor


def numpy_tt(cores: list[np.ndarray]) -> np.ndarray:
    """Chain of matrix products G_0[:, j_0, :] ... G_n[:, j_n, :] over all index tuples."""
    shape = tuple(c.shape[1] for c in cores)
    chain = cores[0].reshape(-1, cores[0].shape[-1])  # (j_0, R_1)
    for core in cores[1:]:
        chain = (chain @ core.reshape(core.shape[0], -1)).reshape(-1, core.shape[-1])
    return chain.reshape(shape)


def complex_of(param: ComplexParam) -> np.ndarray:
    return np.asarray(param.real[...], np.float64) + 1j * np.asarray(param.imag[...], np.float64)


@pytest.mark.parametrize(
    ("cls", "shape", "separable", "rank"),
    [
        (CPTensor, (3, 4, 5, 3), False, 0.5),
        (CPTensor, (3, 6, 4), True, 3),
        (TuckerTensor, (3, 4, 5, 3), False, 0.5),
        (TuckerTensor, (2, 3, 4, 3, 2), False, (2, 3, 2, 2, 1)),
        (TTTensor, (3, 4, 5, 3), False, 0.5),
        (TTTensor, (3, 5, 4, 3), True, (1, 2, 3, 2, 1)),
    ],
)
def test_reconstruct_and_contract_match_numpy(cls, shape, separable, rank):
    kwargs = {"fixed_rank_modes": False} if cls is TuckerTensor else {}
    tensor = filled(
        lambda: cls(shape, rank, separable=separable, std=1.0, rngs=nnx.Rngs(0), **kwargs)
    )
    channels = 1 if separable else 2
    window = tuple(slice(1, n - 1) for n in shape[channels:])
    rng = np.random.default_rng(1)
    x_shape = (2, *(n - 2 for n in shape[channels:]), shape[0])
    x = rng.normal(size=x_shape) + 1j * rng.normal(size=x_shape)

    @nnx.jit
    def evaluate(tensor, x):
        return tensor.reconstruct(), tensor.reconstruct(window), tensor.contract(x, window)

    full, block, y = (np.asarray(a) for a in evaluate(tensor, jnp.asarray(x, jnp.complex64)))
    if cls is CPTensor:
        expected = numpy_cp(complex_of(tensor.weights), [complex_of(f) for f in tensor.factors])
    elif cls is TuckerTensor:
        expected = numpy_tucker(complex_of(tensor.core), [complex_of(f) for f in tensor.factors])
    else:
        expected = numpy_tt([complex_of(c) for c in tensor.cores])
    assert expected.shape == shape
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-5)
    # A window of modes slices the mode factors only, and the contraction with spectral modes
    # (B, *K, Cin) -> (B, *K, Cout) uses that same sub-block.
    expected_block = expected[(slice(None),) * channels + window]
    np.testing.assert_allclose(block, expected_block, rtol=1e-5, atol=1e-5)
    modes_first = np.asarray(nnx.jit(lambda t: t.reconstruct(window, modes_first=True))(tensor))
    np.testing.assert_allclose(
        modes_first, np.moveaxis(expected_block, CHANNELS[channels], MOVED[channels]), atol=1e-5
    )
    if separable:
        expected_y = x * np.moveaxis(expected_block, 0, -1)
    else:
        expected_y = np.einsum("b...i,io...->b...o", x, expected_block)
    np.testing.assert_allclose(y, expected_y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("factorization", "implementation", "separable"),
    [
        ("dense", "factorized", False),  # dense ignores the implementation
        *((f, i, False) for f in ("cp", "tucker", "tt") for i in IMPLEMENTATIONS),
        ("dense", "factorized", True),
        ("tucker", "factorized", True),
        ("cp", "reconstructed", True),
    ],
)
def test_a_conv_uses_the_prepared_weights_it_is_given(factorization, implementation, separable):
    """`conv(x, other.prepare())` is `other(x)` for a twin `other` with other weights (and the
    same bias): what `prepare` returns is what the contraction uses, window included."""
    kwargs = {"factorization": factorization, "implementation": implementation}
    kwargs |= {"separable": separable, "max_n_modes": (8, 6)}
    conv = filled_conv(3, 3, (6, 5), seed=0, **kwargs)
    other = filled_conv(3, 3, (6, 5), seed=1, **kwargs)
    other.bias.set_value(conv.bias[...])
    x = random_input((2, 9, 8, 3))
    both = nnx.jit(lambda a, b, x: (a(x, b.prepare()), b(x), a(x)))
    given, expected, own = (np.asarray(y) for y in both(conv, other, x))
    np.testing.assert_allclose(given, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(own - expected).max() > 1e-2


def test_tucker_prepares_the_core_over_the_modes():
    tensor = filled(
        lambda: TuckerTensor(
            (4, 5, 6, 4),
            (3, 2, 3, 2),
            separable=False,
            fixed_rank_modes=False,
            std=1.0,
            rngs=nnx.Rngs(0),
        )
    )
    prepared = nnx.jit(lambda t: t.prepare())(tensor)
    core = complex_of(tensor.core)
    inputs, outputs, *modes = (complex_of(f) for f in tensor.factors)
    # (k, l, R_in, R_out): the core with only the mode factors applied, modes first.
    expected = np.einsum("ABCD,kC,lD->klAB", core, *modes)
    assert prepared["per_mode"].shape == (6, 4, 3, 2)
    np.testing.assert_allclose(np.asarray(prepared["per_mode"]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(prepared["inputs"]), inputs, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(prepared["outputs"]), outputs, rtol=1e-6)


@pytest.mark.parametrize("modes_first", [False, True])
@pytest.mark.parametrize("separable", [False, True])
def test_dense_tensor_reconstructs_and_contracts_alike_in_both_layouts(separable, modes_first):
    shape = (3, 5, 4) if separable else (3, 2, 5, 4)
    channels = 1 if separable else 2
    rng = np.random.default_rng(0)
    weight = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    stored = np.moveaxis(weight, CHANNELS[channels], MOVED[channels]) if modes_first else weight
    parts = (nnx.Param(jnp.asarray(part, jnp.float32)) for part in (stored.real, stored.imag))
    tensor = DenseTensor(ComplexParam(*parts), separable=separable, modes_first=modes_first)
    assert tensor.shape == shape
    window = (slice(1, 4), slice(0, 3))
    block = weight[(slice(None),) * channels + window]
    np.testing.assert_allclose(np.asarray(tensor.reconstruct()), weight, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tensor.reconstruct(window)), block, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(tensor.reconstruct(window, modes_first=True)),
        np.moveaxis(block, CHANNELS[channels], MOVED[channels]),
        atol=1e-6,
    )
    x = rng.normal(size=(2, 3, 3, 3)) + 1j * rng.normal(size=(2, 3, 3, 3))
    y = np.asarray(tensor.contract(jnp.asarray(x, jnp.complex64), window))
    if separable:
        expected = x * np.moveaxis(block, 0, -1)
    else:
        expected = np.einsum("b...i,io...->b...o", x, block)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_set_dense_weight_takes_neuraloperators_layout():
    conv = abstract_conv(2, 3, (4, 4))
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(2, 3, 4, 3)) + 1j * rng.normal(size=(2, 3, 4, 3))
    conv.set_dense_weight(weight)
    # Stored modes first: entry (i, o, k, l) of neuraloperator's layout is (k, l, i, o) here.
    assert conv.weight_real.shape == conv.weight_imag.shape == (4, 3, 2, 3)
    np.testing.assert_allclose(np.asarray(conv.weight_real[...])[1, 2], weight.real[..., 1, 2])
    np.testing.assert_allclose(np.asarray(conv.weight_imag[...])[3, 0], weight.imag[..., 3, 0])
    np.testing.assert_allclose(weight_of(conv), weight, rtol=1e-6, atol=1e-6)
    with pytest.raises(ModelError, match=r"shape \(2, 3, 4, 3\), got \(2, 3, 4, 2\)"):
        conv.set_dense_weight(weight[..., :2])
    with pytest.raises(ModelError, match="dense weight, this one is tucker"):
        abstract_conv(2, 3, (4, 4), factorization="tucker").set_dense_weight(weight)


def identity_conv(factorization: str, channels: int, grid) -> SpectralConv:
    """A conv keeping every mode of `grid` whose weight is the identity on channels, in each
    factorization's own terms (CP rank C with identity channel factors and constant mode
    factors, Tucker and TT with an identity channel block and rank 1 on the modes)."""
    modes = (*grid[:-1], grid[-1] // 2 + 1)
    ranks = {
        "dense": 1.0,
        "cp": channels,
        "tucker": (channels, channels, *(1,) * len(grid)),
        "tt": (1, channels, *(1,) * (len(grid) + 1)),
    }
    conv = abstract_conv(
        channels,
        channels,
        grid,
        factorization=factorization,
        rank=ranks[factorization],
        implementation="factorized",
    )
    eye = np.eye(channels)
    if factorization == "dense":
        weight = np.zeros((channels, channels, *modes))
        weight[np.arange(channels), np.arange(channels)] = 1.0
        conv.set_dense_weight(weight)
    elif factorization == "cp":
        set_complex(conv.weight.weights, np.ones(channels))
        in_factor, out_factor, *mode_factors = conv.weight.factors
        set_complex(in_factor, eye)
        set_complex(out_factor, eye)
        for factor, size in zip(mode_factors, modes, strict=True):
            set_complex(factor, np.ones((size, channels)))
    elif factorization == "tucker":
        set_complex(conv.weight.core, eye.reshape(conv.weight.core.shape))
        in_factor, out_factor, *mode_factors = conv.weight.factors
        set_complex(in_factor, eye)
        set_complex(out_factor, eye)
        for factor, size in zip(mode_factors, modes, strict=True):
            set_complex(factor, np.ones((size, 1)))
    else:
        first, second, *mode_cores = conv.weight.cores
        set_complex(first, eye[None])
        set_complex(second, eye[..., None])
        for core, size in zip(mode_cores, modes, strict=True):
            set_complex(core, np.ones((1, size, 1)))
    conv.bias.set_value(jnp.zeros(channels))
    return conv


@pytest.mark.parametrize(
    ("factorization", "grid"),
    [
        ("dense", (6, 5)),
        ("cp", (9,)),
        ("cp", (6, 5)),
        ("tucker", (8, 7)),
        ("tucker", (5, 4, 6)),
        ("tt", (7,)),
        ("tt", (4, 5, 3)),
    ],
)
def test_identity_weights_with_all_modes_return_input(factorization, grid):
    conv = identity_conv(factorization, 2, grid)
    np.testing.assert_allclose(weight_of(conv)[0, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(weight_of(conv)[0, 1], 0.0, atol=1e-6)
    x = random_input((2, *grid, 2), seed=2)
    np.testing.assert_allclose(np.asarray(apply(conv, x)), np.asarray(x), atol=1e-5)


def plane_wave(grid, freqs, amplitudes) -> np.ndarray:
    """(1, *grid, C): channel c is amplitudes[c] * cos(2 pi sum_a freqs[a] x_a / grid[a])."""
    coords = np.meshgrid(*(np.arange(n) / n for n in grid), indexing="ij")
    phase = 2 * np.pi * sum(f * c for f, c in zip(freqs, coords, strict=True))
    return (np.cos(phase)[None, ..., None] * np.asarray(amplitudes)).astype(np.float32)


@pytest.mark.parametrize(
    ("factorization", "grid", "n_modes", "freqs", "kept"),
    [
        ("tucker", (16, 12), (6, 5), (-3, 2), True),
        ("tucker", (16, 12), (6, 5), (3, 2), False),  # an even block keeps -3 but not +3
        ("tt", (8, 10, 9), (4, 5, 5), (-2, 2, 1), True),
        ("tt", (8, 10, 9), (4, 5, 5), (1, 3, 2), False),
    ],
)
def test_single_mode_is_scaled_by_the_reconstructed_weight(
    factorization, grid, n_modes, freqs, kept
):
    amplitudes = np.array([1.0, -0.5])
    conv = filled_conv(2, 3, n_modes, factorization=factorization, implementation="factorized")
    conv.bias.set_value(jnp.zeros(3))
    y = np.asarray(apply(conv, jnp.asarray(plane_wave(grid, freqs, amplitudes))), np.float64)
    # With a positive last frequency the wave has one coefficient, 1/2, in the half spectrum.
    y_hat = np.fft.rfftn(y, axes=tuple(range(1, len(grid) + 1))) / np.prod(grid)
    expected = np.zeros_like(y_hat)
    if kept:
        index = tuple(
            f if a == len(grid) - 1 else f + m // 2
            for a, (f, m) in enumerate(zip(freqs, n_modes, strict=True))
        )
        target = tuple(f % n for f, n in zip(freqs, grid, strict=True))
        weight = weight_of(conv)[(slice(None), slice(None), *index)]
        expected[(0, *target)] = amplitudes @ weight / 2
    np.testing.assert_allclose(y_hat, expected, atol=1e-6)


apply_three = nnx.jit(lambda a, b, c, x: (a(x), b(x), c(x)))


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_separable_multiplies_each_channel_by_its_own_weight(factorization):
    # Separable with W (C, *K) is by definition y_hat[k, c] = W[c, k] x_hat[k, c]: the dense
    # conv (checked against NumPy in test_spectral) with the diagonal weight W'[i, o] = d_io W[i].
    grid, n_modes = (9, 8), (6, 5)
    factorized = filled_conv(
        3, 3, n_modes, factorization=factorization, separable=True, implementation="factorized"
    )
    reconstructed = twin(factorized, implementation="reconstructed")
    weight = weight_of(factorized)
    assert weight.shape == (3, 6, 3)
    diagonal = np.zeros((3, 3, 6, 3), complex)
    diagonal[np.arange(3), np.arange(3)] = weight
    dense = abstract_conv(3, 3, n_modes)
    dense.set_dense_weight(diagonal)
    dense.bias.set_value(factorized.bias[...])
    outputs = apply_three(factorized, reconstructed, dense, random_input((2, *grid, 3)))
    y_factorized, y_reconstructed, expected = (np.asarray(y) for y in outputs)
    np.testing.assert_allclose(y_factorized, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_reconstructed, expected, rtol=1e-5, atol=1e-5)


def sub_block(conv: SpectralConv, small: SpectralConv, starts) -> None:
    """Give `small` the mode sub-block of `conv`'s weight starting at `starts`, factor by factor
    (dense: the weight itself; CP and Tucker: rows of the mode factors; TT: the mode cores)."""
    channels = 1 if conv.separable else 2
    counts = (*small.n_modes[:-1], small.n_modes[-1] // 2 + 1)
    window = tuple(slice(s, s + n) for s, n in zip(starts, counts, strict=True))
    big = dict(nnx.to_flat_state(nnx.state(conv, nnx.Param)))
    blocks = []
    for path, variable in nnx.to_flat_state(nnx.state(small, nnx.Param)):
        value = big[path][...]
        if path[-1] in ("weight_real", "weight_imag"):  # stored modes first
            value = value[window]
        elif "factors" in path and path[-2] >= channels:
            value = value[window[path[-2] - channels]]
        elif "cores" in path and path[-2] >= channels:
            value = value[:, window[path[-2] - channels]]
        blocks.append((path, variable.replace(value)))
    nnx.update(small, nnx.from_flat_state(blocks))


@pytest.mark.parametrize(
    ("factorization", "max_n_modes", "n_modes", "grid", "starts"),
    [
        # frequencies -3..2 of the 8 allocated (-4..3): indices 1..6, neuraloperator's too
        ("dense", (8, 9), (6, 6), (10, 11), (1, 0)),
        # frequencies -2..2: indices 2..6 (neuraloperator's [s // 2, ...) would start at 1)
        ("tucker", (8, 9), (5, 6), (10, 11), (2, 0)),
        ("cp", (9,), (4,), (12,), (0,)),
        ("tt", (7, 8), (4, 5), (9, 8), (1, 0)),
        ("tucker", (6, 5, 6), (4, 3, 4), (7, 6, 8), (1, 1, 0)),
    ],
)
def test_active_modes_use_the_centred_sub_block(factorization, max_n_modes, n_modes, grid, starts):
    conv = filled_conv(
        2, 3, n_modes, factorization=factorization, rank=0.5, max_n_modes=max_n_modes
    )
    small = like(conv, max_n_modes=None)
    sub_block(conv, small, starts)
    assert param_count(small) < param_count(conv)
    y, expected = apply_pair(conv, small, random_input((2, *grid, 2)))
    assert y.shape == (2, *grid, 3)
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_set_n_modes_grows_the_modes_and_keeps_shapes():
    conv = filled_conv(2, 2, (4, 5), factorization="tucker", max_n_modes=(8, 9))
    x = random_input((2, 12, 11, 2))
    y_small = apply(conv, x)
    conv.set_n_modes((8, 9))
    assert conv.n_modes == (8, 9)
    y_full = apply(conv, x)
    assert y_small.shape == y_full.shape == (2, 12, 11, 2)
    # All allocated modes active: the same function as a conv built with those modes.
    expected = apply(twin(conv, n_modes=(8, 9), max_n_modes=None), x)
    np.testing.assert_allclose(np.asarray(y_full), np.asarray(expected), atol=1e-6)
    assert not np.allclose(np.asarray(y_small), np.asarray(y_full), atol=1e-3)
    with pytest.raises(ModelError, match="n_modes"):
        conv.set_n_modes((10, 9))


def test_initial_weights_have_the_dense_std():
    # sqrt(2 / (Cin + Cout)) = 0.25 for every factorization (tensorly-torch's TT init would give
    # 0.25 / sqrt(prod(rank)), about 0.006 here).
    def weights(key: jax.Array) -> list[jax.Array]:
        return [
            SpectralConv(
                16, 16, (8, 8), factorization=f, rank=0.1, bias=False, rngs=nnx.Rngs(params=key)
            )
            .weight_tensor()
            .reconstruct()
            for f in FACTORIZATIONS
        ]

    # Eight draws in one compile; RBG keys compile much faster than threefry on CPU.
    keys = jax.random.split(jax.random.key(0, impl="rbg"), 8)
    for factorization, sample in zip(FACTORIZATIONS, jax.jit(jax.vmap(weights))(keys), strict=True):
        rms = float(jnp.sqrt(jnp.mean(jnp.abs(sample) ** 2)))
        assert abs(rms / 0.25 - 1) < 0.15, (factorization, rms)
        assert abs(float(jnp.mean(sample.real))) < 0.02, factorization


# Parameter counts: neuraloperator 2.0.0 `count_model_params` (a complex number counts as two)
# printed once for these configurations; the formulas below are written from tensorly's rules.


def dense_params(shape) -> int:
    return 2 * math.prod(shape)


def cp_params(shape, rank) -> int:
    r = rank if isinstance(rank, int) else round(math.prod(shape) * rank / sum(shape))
    return 2 * r * (1 + sum(shape))  # weights and one (size, r) factor per axis


def tucker_ranks(shape, rank, fixed=()) -> tuple[int, ...]:
    """rank * prod(shape) = prod(shape) c^n_free + (sum of all squared sizes) c, by bisection."""
    if isinstance(rank, int):
        return tuple(s if a in fixed else rank for a, s in enumerate(shape))
    n_free = len(shape) - len(fixed)
    low, high = 0.0, max(rank, 1.0)
    for _ in range(200):
        c = (low + high) / 2
        count = math.prod(shape) * c**n_free + sum(s * s for s in shape) * c
        low, high = (c, high) if count < rank * math.prod(shape) else (low, c)
    return tuple(s if a in fixed else max(round(s * c), 1) for a, s in enumerate(shape))


def tucker_params(shape, rank, fixed=()) -> int:
    ranks = tucker_ranks(shape, rank, fixed)
    return 2 * (math.prod(ranks) + sum(s * r for s, r in zip(shape, ranks, strict=True)))


def tt_ranks(shape, rank) -> tuple[int, ...]:
    """Ranks c * (mean of neighbouring sizes), c from the cores' count quadratic in c."""
    if isinstance(rank, int):
        return (1, *(rank,) * (len(shape) - 1), 1)
    mean = [(a + b) / 2 for a, b in itertools.pairwise(shape)]
    quadratic = (
        sum(mean[a - 1] * shape[a] * mean[a] for a in range(1, len(shape) - 1))
        if len(shape) > 2
        else mean[0] ** 2 * shape[0]
    )
    linear = shape[0] * mean[0] + shape[-1] * mean[-1]
    c = (math.sqrt(linear**2 + 4 * quadratic * rank * math.prod(shape)) - linear) / (2 * quadratic)
    return (1, *(max(round(m * c), 1) for m in mean), 1)


def tt_params(shape, rank) -> int:
    ranks = tt_ranks(shape, rank)
    return 2 * sum(ranks[a] * s * ranks[a + 1] for a, s in enumerate(shape))


def weight_params(factorization, shape, rank, fixed=()) -> int:
    if factorization == "dense":
        return dense_params(shape)
    if factorization == "cp":
        return cp_params(shape, rank)
    if factorization == "tucker":
        return tucker_params(shape, rank, fixed)
    return tt_params(shape, rank)


@pytest.mark.parametrize(
    ("factorization", "n_modes", "channels", "separable", "rank", "fixed", "neuraloperator"),
    [
        ("dense", (6, 5), (4, 4), True, 1.0, False, 144),
        ("cp", (6, 5), (3, 5), False, 0.5, False, 288),
        ("cp", (4, 5, 6), (3, 3), True, 0.1, False, 68),
        ("tucker", (6, 5), (3, 5), False, 0.5, True, 252),
        ("tucker", (4, 5, 6), (2, 3), False, 0.1, False, 78),
        ("tucker", (7,), (3, 3), True, 0.5, True, 32),
        ("tucker", (8,), (4, 4), False, 2, True, 100),
        ("tt", (4, 5, 6), (2, 3), False, 0.5, False, 534),
        ("tt", (6, 5), (4, 4), True, 0.5, False, 76),
        ("tt", (7,), (3, 3), True, 2, False, 28),
    ],
)
def test_spectral_conv_parameter_counts_match_neuraloperator(
    factorization, n_modes, channels, separable, rank, fixed, neuraloperator
):
    conv = abstract_conv(
        *channels,
        n_modes,
        factorization=factorization,
        rank=rank,
        fixed_rank_modes=fixed,
        separable=separable,
        bias=False,
    )
    shape = (*channels[: 1 if separable else 2], *n_modes[:-1], n_modes[-1] // 2 + 1)
    formula = weight_params(factorization, shape, rank, (0,) if fixed else ())
    assert param_count(conv) == formula == neuraloperator


# 2D FNO, hidden 32, n_modes (16, 16), 4 layers, in 3, out 1: everything but the spectral
# weights is lifting 2_464 + projection 2_177 + 4 * (bias 32 + linear skip 1_024 + channel MLP
# 1_072 + soft gating 32) = 13_281 (see test_fno).
FNO_REST = 13_281
FNO_WEIGHT = (32, 32, 16, 9)


@pytest.mark.parametrize(
    ("kwargs", "neuraloperator"),
    [
        ({}, 1_192_929),
        ({"factorization": "Tucker", "rank": 0.1}, 140_649),
        ({"factorization": "Tucker", "rank": 0.1, "fixed_rank_modes": True}, 126_593),
        ({"factorization": "Tucker", "rank": 0.5}, 635_873),
        ({"factorization": "CP", "rank": 0.1}, 132_801),
        ({"factorization": "CP", "rank": 0.5}, 609_441),
        ({"factorization": "TT", "rank": 0.1}, 134_889),
        ({"factorization": "TT", "rank": 0.5}, 611_201),
        ({"factorization": "Tucker", "rank": 0.1, "separable": True}, 16_817),
        ({"separable": True}, 50_145),
    ],
)
def test_fno_parameter_counts_match_neuraloperator(kwargs, neuraloperator):
    fno = nnx.eval_shape(lambda: FNO((16, 16), 3, 1, 32, rngs=nnx.Rngs(0), **kwargs))
    factorization = (kwargs.get("factorization") or "dense").lower()
    shape = FNO_WEIGHT[1:] if kwargs.get("separable") else FNO_WEIGHT
    fixed = (0,) if kwargs.get("fixed_rank_modes") else ()
    formula = FNO_REST + 4 * weight_params(factorization, shape, kwargs.get("rank", 1.0), fixed)
    assert param_count(fno) == formula == neuraloperator


@pytest.mark.parametrize(
    ("factorization", "rank", "fixed", "ranks"),
    [
        ("tucker", 0.1, False, (18, 18, 9, 5)),
        ("tucker", 0.1, True, (32, 14, 7, 4)),
        ("cp", 0.1, False, 166),
        ("tt", 0.1, False, (1, 22, 17, 9, 1)),
        ("tt", 0.5, False, (1, 50, 38, 20, 1)),
    ],
)
def test_float_ranks_match_neuraloperator(factorization, rank, fixed, ranks):
    conv = abstract_conv(
        32, 32, (16, 16), factorization=factorization, rank=rank, fixed_rank_modes=fixed
    )
    assert conv.weight.rank == ranks


def test_tfno_is_fno_with_tucker_defaults():
    fno_parameters = inspect.signature(FNO.__init__).parameters
    tfno_parameters = inspect.signature(TFNO.__init__).parameters
    assert list(tfno_parameters) == list(fno_parameters)
    for name, parameter in fno_parameters.items():
        other = tfno_parameters[name]
        assert (other.kind, other.annotation) == (parameter.kind, parameter.annotation), name
        if name not in ("factorization", "rank"):
            assert other.default == parameter.default, name
    assert (tfno_parameters["factorization"].default, tfno_parameters["rank"].default) == (
        "tucker",
        0.1,
    )
    assert fno_parameters["implementation"].default == "factorized"
    # Configs check model arguments against these hints.
    hints = typing.get_type_hints(TFNO.__init__)
    assert typing.get_args(hints["implementation"]) == ("factorized", "reconstructed")
    assert get("tfno") is TFNO
    tfno = nnx.eval_shape(
        lambda: build(
            "tfno",
            n_modes=(16, 16),
            in_channels=3,
            out_channels=1,
            hidden_channels=32,
            rngs=nnx.Rngs(0),
        )
    )
    assert param_count(tfno) == 140_649
    assert tfno.blocks[0].spectral.factorization == "tucker"


def test_tfno_gets_gradients_everywhere_and_set_n_modes_reaches_every_block():
    tfno = filled(
        lambda: TFNO((6, 5), 2, 1, 4, n_layers=2, max_n_modes=(8, 7), rank=0.5, rngs=nnx.Rngs(0))
    )
    x = random_input((2, 10, 9, 2))

    def loss(model: TFNO) -> jax.Array:
        return jnp.mean(model(x) ** 2)

    grads = nnx.jit(nnx.grad(loss))(tfno)
    for path, grad in nnx.to_flat_state(grads):
        assert np.any(np.asarray(grad[...]) != 0), path
    tfno.set_n_modes((8, 7))
    assert tfno.n_modes == (8, 7)
    assert all(block.spectral.n_modes == (8, 7) for block in tfno.blocks)
    assert apply(tfno, x).shape == (2, 10, 9, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factorization": "svd"}, "factorization"),
        ({"factorization": "tucker", "rank": -0.5}, "rank"),
        ({"factorization": "tucker", "rank": "high"}, "rank"),
        ({"factorization": "tucker", "rank": (2, 2)}, "rank"),
        ({"factorization": "cp", "rank": (2, 2)}, "rank"),
        ({"factorization": "cp", "rank": 0.01}, "rank"),
        ({"factorization": "tt", "rank": (2, 2, 2, 2, 2)}, "rank"),
        ({"factorization": "tucker", "fixed_rank_modes": (7,)}, "fixed_rank_modes"),
        ({"implementation": "fast"}, "implementation"),
        ({"separable": True}, "separable"),
        ({"max_n_modes": (4, 4)}, "n_modes"),
        ({"max_n_modes": (8, 8, 8)}, "max_n_modes"),
        ({"max_n_modes": (8, -1)}, "max_n_modes"),
        ({"n_modes": (6, 6.5)}, "n_modes"),
    ],
)
def test_bad_arguments_raise_model_error_naming_them(kwargs, message):
    arguments = {"n_modes": (6, 6), **kwargs}
    with pytest.raises(ModelError, match=message) as error:
        abstract_conv(2, 3, **arguments)
    assert "\n" not in str(error.value)
    if "separable" not in kwargs:  # an FNO's blocks always have in == out channels
        with pytest.raises(ModelError, match=message):
            nnx.eval_shape(
                lambda: TFNO(
                    in_channels=2, out_channels=1, hidden_channels=2, rngs=nnx.Rngs(0), **arguments
                )
            )
