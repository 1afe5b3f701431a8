"""Metrics against NumPy float64 references written PDEBench-style, plus hand-made fields."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogates.evaluation import (
    METRIC_NAMES,
    brmse,
    compute_metrics,
    crmse,
    frmse,
    max_error,
    nrmse,
    rel_l2,
    rmse,
    vrmse,
)

# (B, T, *X, C): 1D, 2D and 3D, odd and even sizes, grids fine enough for every fRMSE band.
SHAPES = [
    (3, 2, 33, 2),
    (2, 3, 40, 3),
    (3, 2, 27, 30, 2),
    (2, 2, 32, 29, 3),
    (2, 2, 27, 26, 28, 2),
]
RTOL = 1e-5


def random_pair(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=shape).astype(np.float32)
    pred = (target + 0.3 * rng.normal(size=shape)).astype(np.float32)
    return pred, target


# --- NumPy references, in PDEBench's (B, C, *X, T) layout; each returns (T, C). ---


def to_pdebench(a: np.ndarray) -> np.ndarray:
    """(B, T, *X, C) -> (B, C, *X, T) in float64."""
    return np.moveaxis(np.moveaxis(a.astype(np.float64), -1, 1), 2, -1)


def flat(a: np.ndarray) -> np.ndarray:
    """(B, C, *X, T) -> (B, C, N, T)."""
    return a.reshape(a.shape[0], a.shape[1], -1, a.shape[-1])


def ref_rmse(pred, target):
    err = flat(to_pdebench(pred) - to_pdebench(target))
    return np.sqrt(np.mean(err**2, axis=2)).mean(axis=0).T


def ref_nrmse(pred, target):
    p, t = flat(to_pdebench(pred)), flat(to_pdebench(target))
    per_sample = np.sqrt(np.mean((p - t) ** 2, axis=2)) / np.sqrt(np.mean(t**2, axis=2))
    return per_sample.mean(axis=0).T


def ref_crmse(pred, target):
    p, t = flat(to_pdebench(pred)), flat(to_pdebench(target))
    n_space = p.shape[2]
    return (np.sqrt(np.mean((p.sum(axis=2) - t.sum(axis=2)) ** 2, axis=0)) / n_space).T


def ref_max_error(pred, target):
    err = flat(to_pdebench(pred) - to_pdebench(target))
    return np.abs(err).max(axis=2).max(axis=0).T


def ref_brmse(pred, target):
    e = to_pdebench(pred) - to_pdebench(target)
    if e.ndim == 4:
        squared = (e[:, :, 0] ** 2 + e[:, :, -1] ** 2) / 2
    elif e.ndim == 5:
        nx, ny = e.shape[2:4]
        squared = (
            (e[:, :, 0, :] ** 2).sum(axis=2)
            + (e[:, :, -1, :] ** 2).sum(axis=2)
            + (e[:, :, :, 0] ** 2).sum(axis=2)
            + (e[:, :, :, -1] ** 2).sum(axis=2)
        ) / (2 * nx + 2 * ny)
    else:
        nx, ny, nz = e.shape[2:5]
        squared = (
            (e[:, :, 0, :, :] ** 2).sum(axis=(2, 3))
            + (e[:, :, -1, :, :] ** 2).sum(axis=(2, 3))
            + (e[:, :, :, 0, :] ** 2).sum(axis=(2, 3))
            + (e[:, :, :, -1, :] ** 2).sum(axis=(2, 3))
            + (e[:, :, :, :, 0] ** 2).sum(axis=(2, 3))
            + (e[:, :, :, :, -1] ** 2).sum(axis=(2, 3))
        ) / (2 * (nx * ny + ny * nz + nx * nz))
    return np.sqrt(squared).mean(axis=0).T


def ref_rel_l2(pred, target):
    p, t = flat(to_pdebench(pred)), flat(to_pdebench(target))
    per_sample = np.sqrt(np.sum((p - t) ** 2, axis=2)) / np.sqrt(np.sum(t**2, axis=2))
    return per_sample.mean(axis=0).T


def ref_vrmse(pred, target):
    p, t = flat(to_pdebench(pred)), flat(to_pdebench(target))
    mse = np.mean((p - t) ** 2, axis=2)
    return np.sqrt(mse / (np.var(t, axis=2, ddof=1) + 1e-7)).mean(axis=0).T


def ref_frmse(pred, target, i_low=4, i_high=12, lengths=None):
    e = to_pdebench(pred) - to_pdebench(target)
    nb, nc, *grid, nt = e.shape
    lengths = lengths or (1.0,) * len(grid)
    if len(grid) == 1:
        power = np.abs(np.fft.rfft(e, axis=2)) ** 2
    else:
        full = np.abs(np.fft.fftn(e, axes=tuple(range(2, 2 + len(grid))))) ** 2
        n_shells = min(n // 2 for n in grid)
        power = np.zeros((nb, nc, n_shells, nt))
        if len(grid) == 2:
            for i in range(grid[0] // 2):
                for j in range(grid[1] // 2):
                    shell = math.isqrt(i**2 + j**2)
                    if shell > n_shells - 1:
                        continue
                    power[:, :, shell] += full[:, :, i, j]
        else:
            for i in range(grid[0] // 2):
                for j in range(grid[1] // 2):
                    for k in range(grid[2] // 2):
                        shell = math.isqrt(i**2 + j**2 + k**2)
                        if shell > n_shells - 1:
                            continue
                        power[:, :, shell] += full[:, :, i, j, k]
    per_mode = np.sqrt(power.mean(axis=0)) / math.prod(grid) * math.prod(lengths)
    bands = {
        "low": per_mode[:, :i_low],
        "mid": per_mode[:, i_low:i_high],
        "high": per_mode[:, i_high:],
    }
    return {
        name: (modes.mean(axis=1) if modes.shape[1] else np.full((nc, nt), np.nan)).T
        for name, modes in bands.items()
    }


FIELD_METRICS = {
    "rmse": (rmse, ref_rmse),
    "nrmse": (nrmse, ref_nrmse),
    "crmse": (crmse, ref_crmse),
    "brmse": (brmse, ref_brmse),
    "max_error": (max_error, ref_max_error),
    "rel_l2": (rel_l2, ref_rel_l2),
    "vrmse": (vrmse, ref_vrmse),
}


# --- Random fields against the references. ---


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", FIELD_METRICS)
def test_metric_matches_numpy_reference(name, shape):
    metric, reference = FIELD_METRICS[name]
    pred, target = random_pair(shape)
    value = metric(pred, target)
    assert value.shape == (shape[1], shape[-1])
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(value, reference(pred, target), rtol=RTOL)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_frmse_matches_numpy_reference(shape):
    pred, target = random_pair(shape)
    value = frmse(pred, target)
    expected = ref_frmse(pred, target)
    assert set(value) == {"low", "mid", "high"}
    for band in ("low", "mid", "high"):
        assert value[band].shape == (shape[1], shape[-1])
        np.testing.assert_allclose(value[band], expected[band], rtol=RTOL, err_msg=band)


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        ((2, 2, 30, 2), {"i_low": 2, "i_high": 7, "lengths": (2.5,)}),
        ((2, 1, 28, 30, 2), {"i_low": 3, "i_high": 9, "lengths": (2.0, 3.0)}),
        ((2, 1, 10, 12, 14, 1), {"i_low": 1, "i_high": 3, "lengths": (1.0, 0.5, 4.0)}),
    ],
    ids=["1d", "2d", "3d"],
)
def test_frmse_band_limits_and_lengths_match_reference(shape, kwargs):
    pred, target = random_pair(shape, seed=1)
    value = frmse(pred, target, **kwargs)
    expected = ref_frmse(pred, target, **kwargs)
    for band in ("low", "mid", "high"):
        np.testing.assert_allclose(value[band], expected[band], rtol=RTOL, err_msg=band)


def test_frmse_scales_with_the_domain_volume():
    pred, target = random_pair((2, 1, 28, 30, 2), seed=2)
    unit = frmse(pred, target)
    scaled = frmse(pred, target, lengths=(2.0, 3.0))
    for band in ("low", "mid", "high"):
        np.testing.assert_allclose(scaled[band], 6.0 * unit[band], rtol=RTOL)


def test_frmse_band_beyond_a_coarse_grid_is_nan():
    # nx = 16 has rfft modes 0..8: mid is cut to [4, 9) and high has no modes at all.
    pred, target = random_pair((2, 2, 16, 1), seed=3)
    value = frmse(pred, target)
    assert np.isnan(value["high"]).all()
    expected = ref_frmse(pred, target)
    np.testing.assert_allclose(value["low"], expected["low"], rtol=RTOL)
    np.testing.assert_allclose(value["mid"], expected["mid"], rtol=RTOL)


# --- Hand-made fields with known values. ---


def band_of(index: int) -> str:
    return "low" if index < 4 else "mid" if index < 12 else "high"


@pytest.mark.parametrize("k", [0, 1, 3, 4, 7, 11, 12, 20, 32])
def test_single_fourier_mode_lands_in_its_band_1d(k):
    nx = 64
    x = np.arange(nx)
    target = np.random.default_rng(k).normal(size=(2, 1, nx, 1)).astype(np.float32)
    mode = np.cos(2 * np.pi * k * x / nx)[None, None, :, None]
    value = frmse(target + mode.astype(np.float32), target)
    # |rfft| of cos is nx/2 at 0 < k < nx/2 and nx at k = 0 and the Nyquist mode k = nx/2.
    amplitude = 1.0 if k in (0, nx // 2) else 0.5
    sizes = {"low": 4, "mid": 8, "high": nx // 2 + 1 - 12}
    for band, size in sizes.items():
        expected = amplitude / size if band == band_of(k) else 0.0
        np.testing.assert_allclose(value[band], expected, rtol=1e-4, atol=1e-5, err_msg=band)


@pytest.mark.parametrize(
    ("i", "j", "shell"),
    [(1, 2, 2), (0, 3, 3), (3, 3, 4), (8, 8, 11), (12, 0, 12), (9, 9, 12), (10, 10, 14)],
)
def test_single_fourier_mode_lands_in_its_band_2d(i, j, shell):
    nx, ny = 32, 30
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    mode = np.cos(2 * np.pi * (i * x / nx + j * y / ny))[None, None, :, :, None]
    target = np.random.default_rng(i + j).normal(size=(2, 1, nx, ny, 1)).astype(np.float32)
    value = frmse(target + mode.astype(np.float32), target)
    # Shells 0..14 (min(nx, ny) // 2 = 15); the mode has |F| = nx ny / 2 in the first quadrant.
    sizes = {"low": 4, "mid": 8, "high": 3}
    for band, size in sizes.items():
        expected = 0.5 / size if band == band_of(shell) else 0.0
        np.testing.assert_allclose(value[band], expected, rtol=1e-4, atol=1e-5, err_msg=band)


def test_mode_beyond_the_last_shell_is_dropped_2d():
    nx = ny = 32
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    # |k| = 14 sqrt(2) ~ 19.8 lies in the quadrant but past the last shell, 15.
    mode = np.cos(2 * np.pi * 14 * (x + y) / nx)[None, None, :, :, None].astype(np.float32)
    value = frmse(mode, np.zeros_like(mode))
    for band in ("low", "mid", "high"):
        np.testing.assert_allclose(value[band], 0.0, atol=1e-5, err_msg=band)
    assert float(rmse(mode, np.zeros_like(mode))[0, 0]) > 0.5


GRIDS = [(9,), (8, 7), (6, 5, 4)]


def boundary_mask(grid: tuple[int, ...]) -> np.ndarray:
    interior = np.zeros(grid, dtype=bool)
    interior[tuple(slice(1, -1) for _ in grid)] = True
    return ~interior


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_error_on_the_whole_boundary_gives_brmse_c(grid):
    target = np.random.default_rng(0).normal(size=(2, 2, *grid, 2)).astype(np.float32)
    pred = target + np.where(boundary_mask(grid), 0.5, 0.0)[None, None, ..., None]
    np.testing.assert_allclose(brmse(pred.astype(np.float32), target), 0.5, rtol=RTOL)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_error_in_the_interior_only_gives_zero_brmse(grid):
    target = np.random.default_rng(0).normal(size=(2, 2, *grid, 2)).astype(np.float32)
    pred = target + np.where(boundary_mask(grid), 0.0, 0.5)[None, None, ..., None]
    pred = pred.astype(np.float32)
    np.testing.assert_array_equal(brmse(pred, target), 0.0)
    assert (np.asarray(rmse(pred, target)) > 0).all()


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_corner_error_counts_once_per_boundary_it_lies_on(grid):
    error = np.zeros((1, 1, *grid, 1), dtype=np.float32)
    error[(0, 0, *(0 for _ in grid), 0)] = 2.0
    # A corner lies on one face per axis; faces hold 2 * prod(grid) / n points per axis.
    n_face_points = sum(2 * math.prod(grid) // n for n in grid)
    expected = math.sqrt(len(grid) * 4.0 / n_face_points)
    np.testing.assert_allclose(brmse(error, np.zeros_like(error)), expected, rtol=RTOL)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_constant_offset_error(grid):
    target = np.random.default_rng(1).normal(size=(3, 2, *grid, 2)).astype(np.float32)
    pred = target - np.float32(0.75)
    for metric in (rmse, crmse, max_error, brmse):
        np.testing.assert_allclose(metric(pred, target), 0.75, rtol=RTOL, err_msg=str(metric))


@pytest.mark.parametrize("shape", SHAPES[::2], ids=str)
def test_perfect_prediction_scores_zero_everywhere(shape):
    _, target = random_pair(shape)
    for name, value in compute_metrics(target, target).items():
        np.testing.assert_array_equal(value, 0.0, err_msg=name)


def test_rel_l2_is_scale_invariant_and_measures_relative_error():
    pred, target = random_pair((3, 2, 12, 10, 2), seed=4)
    base = rel_l2(pred, target)
    for scale in (1e-3, 1e3):
        np.testing.assert_allclose(rel_l2(scale * pred, scale * target), base, rtol=RTOL)
    np.testing.assert_allclose(rel_l2(1.1 * target, target), 0.1, rtol=1e-4)


def test_predicting_the_spatial_mean_gives_vrmse_about_one():
    _, target = random_pair((3, 2, 12, 10, 2), seed=5)
    pred = np.broadcast_to(target.mean(axis=(2, 3), keepdims=True), target.shape)
    n = 12 * 10
    # The unbiased variance in the denominator makes this sqrt((n - 1) / n), not exactly 1.
    np.testing.assert_allclose(vrmse(pred, target), math.sqrt((n - 1) / n), rtol=1e-5)


# --- Averaging over the batch. ---


@pytest.mark.parametrize("shape", [(4, 2, 20, 2), (5, 2, 9, 8, 2)], ids=str)
def test_per_sample_metrics_average_over_all_samples(shape):
    pred, target = random_pair(shape, seed=6)
    samples = [(pred[b : b + 1], target[b : b + 1]) for b in range(shape[0])]
    for metric in (rmse, nrmse, brmse, rel_l2, vrmse):
        manual = np.mean([metric(p, t) for p, t in samples], axis=0)
        np.testing.assert_allclose(metric(pred, target), manual, rtol=RTOL, err_msg=str(metric))
    manual_max = np.max([max_error(p, t) for p, t in samples], axis=0)
    np.testing.assert_allclose(max_error(pred, target), manual_max, rtol=RTOL)
    manual_crmse = np.sqrt(np.mean([np.square(crmse(p, t)) for p, t in samples], axis=0))
    np.testing.assert_allclose(crmse(pred, target), manual_crmse, rtol=RTOL)


def test_batch_mean_divides_by_the_number_of_samples():
    target = np.zeros((2, 1, 8, 1), dtype=np.float32)
    pred = np.concatenate([np.full((1, 1, 8, 1), 1.0), np.full((1, 1, 8, 1), 3.0)])
    np.testing.assert_allclose(rmse(pred.astype(np.float32), target), [[2.0]], rtol=RTOL)


# --- jit, dtypes, compute_metrics and errors. ---


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2], SHAPES[4]], ids=str)
def test_jit_equals_eager(shape):
    pred, target = random_pair(shape, seed=7)
    # The metrics compile themselves; disabling jit runs their operations one by one.
    with jax.disable_jit():
        eager = compute_metrics(pred, target)
    jitted = jax.jit(compute_metrics, static_argnames="names")(pred, target)
    assert set(jitted) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=1e-5, err_msg=name)


def test_low_precision_inputs_keep_their_dtype():
    pred, target = random_pair((2, 2, 28, 26, 1), seed=8)
    values = compute_metrics(jnp.asarray(pred, jnp.bfloat16), jnp.asarray(target, jnp.bfloat16))
    assert {value.dtype for value in values.values()} == {jnp.dtype(jnp.bfloat16)}
    np.testing.assert_allclose(values["rmse"].astype(np.float32), ref_rmse(pred, target), rtol=2e-2)


def test_integer_inputs_are_promoted_to_float():
    target = np.arange(2 * 1 * 6 * 1).reshape(2, 1, 6, 1)
    value = rmse(target + 2, target)
    assert jnp.issubdtype(value.dtype, jnp.floating)
    np.testing.assert_allclose(value, 2.0)


def test_compute_metrics_returns_the_named_metrics_in_order():
    pred, target = random_pair((2, 2, 30, 2), seed=9)
    values = compute_metrics(pred, target, ("vrmse", "frmse_mid", "rmse"), lengths=(2.0,))
    assert list(values) == ["vrmse", "frmse_mid", "rmse"]
    np.testing.assert_allclose(values["vrmse"], ref_vrmse(pred, target), rtol=RTOL)
    expected_mid = ref_frmse(pred, target, lengths=(2.0,))["mid"]
    np.testing.assert_allclose(values["frmse_mid"], expected_mid, rtol=RTOL)
    np.testing.assert_allclose(values["rmse"], ref_rmse(pred, target), rtol=RTOL)
    assert list(compute_metrics(pred, target, "crmse")) == ["crmse"]


def test_unknown_metric_name_lists_the_known_ones():
    pred, target = random_pair((2, 1, 8, 1))
    with pytest.raises(ValueError, match=r"'l1'.*known: rmse, nrmse, crmse"):
        compute_metrics(pred, target, ("rmse", "l1"))


@pytest.mark.parametrize(
    ("pred_shape", "target_shape"),
    [((2, 3, 8, 1), (2, 3, 9, 1)), ((2, 3, 8, 8, 1), (2, 3, 8, 1)), ((2, 8, 1), (2, 8, 1))],
)
@pytest.mark.parametrize("metric", [rmse, brmse, frmse, vrmse, compute_metrics])
def test_bad_shapes_raise_naming_both_shapes(metric, pred_shape, target_shape):
    pattern = f"pred {re.escape(str(pred_shape))} and target {re.escape(str(target_shape))}"
    with pytest.raises(ValueError, match=pattern):
        metric(np.zeros(pred_shape, np.float32), np.zeros(target_shape, np.float32))


def test_seven_dimensional_fields_are_rejected():
    field = np.zeros((1, 1, 2, 2, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="1 to 3 spatial axes"):
        rmse(field, field)


def test_bad_frmse_options_raise():
    pred, target = random_pair((2, 1, 8, 6, 1))
    with pytest.raises(ValueError, match="one length per spatial axis"):
        frmse(pred, target, lengths=(1.0,))
    with pytest.raises(ValueError, match="i_low <= i_high"):
        frmse(pred, target, i_low=5, i_high=3)
