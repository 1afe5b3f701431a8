"""Multi-grid patching: neuraloperator's shapes and values, exact unpatching, the wrapper, jit."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.multigrid import (
    Multigrid,
    in_channels_for,
    make_patches,
    padding_cells,
    patch_count,
    split_patches,
    stitch,
    unpatch,
)

# The smallest size each level accepts, 4**levels, on the first 2D axis and twice it elsewhere,
# so a swap of axes shows.
SHAPES = {
    (1, 1): (8,),
    (1, 2): (8, 16),
    (2, 1): (32,),
    (2, 2): (16, 32),
    (3, 1): (128,),
    (3, 2): (64, 128),
}


def field(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


class FirstChannels(nnx.Module):
    """Operator stand-in: the first `out_channels` channels, plus the first PDE parameter."""

    def __init__(self, out_channels: int) -> None:
        self.out_channels = out_channels

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        out = x[..., : self.out_channels]
        if pde_params is not None:
            out = out + pde_params[:, 0].reshape(-1, *(1,) * (x.ndim - 1))
        return out


def reference_patches(x: np.ndarray, levels: int, pad: tuple[int, ...]) -> np.ndarray:
    """Multi-grid patches built cell by cell with NumPy, from the definition.

    For level l the field is subsampled by 2**l and wrapped; patch i's window has the padded
    patch's size and is centred on the patch, half a coarse cell to the left when its centre
    falls between cells. Patches go batch-major, the patch grid row-major.
    """
    batch, *shape, channels = x.shape
    n = 2**levels
    patch = [size // n for size in shape]
    width = [k + 2 * p for k, p in zip(patch, pad, strict=True)]
    out = np.zeros((batch * n ** len(shape), *width, channels * (levels + 1)), x.dtype)
    for level in range(levels + 1):
        step = 2**level
        coarse = x[(slice(None), *(slice(None, None, step) for _ in shape))]
        for b in range(batch):
            for index, cell in enumerate(np.ndindex(*(n,) * len(shape))):
                axes = []
                for i, k, w, size in zip(cell, patch, width, shape, strict=True):
                    centre = (i * k + k / 2) / step
                    start = math.floor(centre - w / 2)
                    axes.append((start + np.arange(w)) % (size // step))
                window = coarse[b][np.ix_(*axes)]
                out[b * n ** len(shape) + index, ..., level * channels : (level + 1) * channels] = (
                    window
                )
    return out


def test_helpers_follow_neuraloperator_formulas():
    assert in_channels_for(3, 2) == 9
    assert patch_count(2, 2) == 16 and patch_count(3, 1) == 8
    # round(fraction * full size), Python's half-to-even rounding as in neuraloperator.
    assert padding_cells((128, 128), 0.1) == (13, 13)
    assert padding_cells((64, 128), 0.2) == (13, 26)
    assert padding_cells((125,), 0.1) == (12,)
    assert padding_cells((64, 128), (0.0, 0.1)) == (0, 13)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def patch_and_unpatch(x, levels, padding, pad):
    """Patches of `x` and `unpatch` of their level-0 channels, compiled once per case."""
    patches = make_patches(x, levels, padding)
    return patches, unpatch(patches[..., : x.shape[-1]], x.shape[0], levels, pad)


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("padding", [0.0, 0.1, 0.2])
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_patch_shapes_and_unpatch_identity(levels, padding, ndim):
    shape = SHAPES[levels, ndim]
    batch, channels = 2, 3
    x = field((batch, *shape, channels))
    n = 2**levels
    pad = tuple(round(padding * size) for size in shape)
    patches, restored = patch_and_unpatch(jnp.asarray(x), levels, padding, pad)

    assert patches.shape == (
        batch * n**ndim,
        *(size // n + 2 * p for size, p in zip(shape, pad, strict=True)),
        channels * (levels + 1),
    )
    np.testing.assert_array_equal(restored, x)


def test_patches_are_batch_major_and_row_major():
    x = field((2, 16, 32, 1))
    patches = np.asarray(split_patches(jnp.asarray(x), 2))
    assert patches.shape == (2 * 16, 4, 8, 1)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                np.testing.assert_array_equal(
                    patches[b * 16 + i * 4 + j], x[b, 4 * i : 4 * i + 4, 8 * j : 8 * j + 8]
                )
    np.testing.assert_array_equal(stitch(jnp.asarray(patches), 2, 2), x)


@pytest.mark.parametrize(
    ("shape", "levels", "padding"),
    [((32,), 2, 0.1), ((16, 32), 2, 0.1), ((16, 16), 1, 0.2), ((64,), 3, 0.2)],
)
def test_coarse_views_match_numpy_construction(shape, levels, padding):
    x = field((2, *shape, 3), seed=1)
    expected = reference_patches(x, levels, padding_cells(shape, padding))
    patches = jax.jit(make_patches, static_argnums=(1, 2))(jnp.asarray(x), levels, padding)
    np.testing.assert_array_equal(patches, expected)


def test_values_recorded_from_neuraloperator():
    """`MultigridPatching2D(levels=1, padding_fraction=0.125)` on x[r, c] = 100 r + c, 16x16."""
    rows, cols = np.mgrid[:16, :16]
    x = (100 * rows + cols).astype(np.float32)[None, :, :, None]
    patches = np.asarray(make_patches(jnp.asarray(x), 1, 0.125)).astype(int)
    assert patches.shape == (4, 12, 12, 2)
    # (patch, row, column, level) slices of neuraloperator's output, moved to channels last.
    full = slice(None)
    recorded = [
        ((1, 0, full, 0), [1406, 1407, 1408, 1409, 1410, 1411, 1412, 1413, 1414, 1415, 1400, 1401]),
        ((1, full, 0, 0), [1406, 1506, 6, 106, 206, 306, 406, 506, 606, 706, 806, 906]),
        ((1, 0, full, 1), [800, 802, 804, 806, 808, 810, 812, 814, 800, 802, 804, 806]),
        ((2, full, 0, 1), [8, 208, 408, 608, 808, 1008, 1208, 1408, 8, 208, 408, 608]),
    ]
    for index, values in recorded:
        assert patches[index].tolist() == values


@pytest.mark.parametrize("shape", [(32,), (16, 32)])
def test_wrapper_with_identity_operator_returns_input(shape):
    x = jnp.asarray(field((2, *shape, 3)))
    model = Multigrid(FirstChannels(3), levels=2, padding=0.1)
    assert model.patches(x).shape[-1] == in_channels_for(3, 2)
    np.testing.assert_array_equal(model(x), x)

    shift = jnp.asarray([1.0, -2.0])
    shifted = model(x, pde_params=shift[:, None])
    np.testing.assert_array_equal(shifted, x + shift.reshape(-1, *(1,) * (x.ndim - 1)))


@pytest.mark.parametrize("stitching", [True, False])
def test_training_pair_follows_stitching(stitching):
    x = jnp.asarray(field((2, 16, 32, 3)))
    y = jnp.asarray(field((2, 16, 32, 2), seed=1))
    model = Multigrid(FirstChannels(2), levels=2, padding=(0.2, 0.1), stitching=stitching)
    prediction, target = model.training_pair(x, y)
    if stitching:
        assert prediction.shape == target.shape == (2, 16, 32, 2)
        np.testing.assert_array_equal(prediction, x[..., :2])
        np.testing.assert_array_equal(target, y)
    else:
        assert prediction.shape == target.shape == (32, 4, 8, 2)
        np.testing.assert_array_equal(prediction, split_patches(x[..., :2], 2))
        np.testing.assert_array_equal(target, split_patches(y, 2))
        np.testing.assert_array_equal(model.stitch(model.patch_outputs(x), (16, 32)), model(x))


def test_jit_compiles_and_matches_eager():
    x = jnp.asarray(field((2, 16, 32, 3)))
    patch = jax.jit(make_patches, static_argnums=(1, 2))
    np.testing.assert_array_equal(patch(x, 2, 0.1), make_patches(x, 2, 0.1))

    model = Multigrid(FirstChannels(3), levels=2, padding=0.1)
    np.testing.assert_array_equal(nnx.jit(lambda m, x: m(x))(model, x), x)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(make_patches(x, 2, 0.1) ** 2)))(x)
    assert grad.shape == x.shape and bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize(
    ("shape", "levels", "padding", "match"),
    [
        ((24, 32), 2, 0.1, r"levels=2, padding=0\.1\): spatial size 24 \(axis 1"),
        ((32, 40), 2, 0.0, r"spatial size 40 \(axis 2.*4\*\*levels = 16"),
        ((48,), 3, 0.0, r"levels=3.*spatial size 48"),
        ((32,), 0, 0.1, r"levels=0.*integer >= 1"),
        ((32,), 2, -0.1, r"padding=-0\.1.*>= 0"),
        ((32,), 2, (0.1, 0.1), r"2 padding fractions for 1 spatial axes"),
        ((16, 16, 16), 1, 0.0, r"1 or 2 spatial axes"),
    ],
)
def test_bad_patching_raises_model_error(shape, levels, padding, match):
    with pytest.raises(ModelError, match=match):
        make_patches(jnp.zeros((1, *shape, 1)), levels, padding)


def test_wrapper_and_stitch_reject_bad_arguments():
    with pytest.raises(ModelError, match="levels must be an integer >= 1"):
        Multigrid(FirstChannels(1), levels=0, padding=0.1)
    with pytest.raises(ModelError, match=r"expected 2 x 4 patches"):
        stitch(jnp.zeros((6, 4, 1)), 2, 2)
