"""Benchmark metrics: PDEBench's RMSE family plus relative L2 and The Well's VRMSE.

Every metric takes a prediction and a target shaped `(B, T, *X, C)` (time second, channels
last, one to three spatial axes) and returns one value per rollout step and channel, `(T, C)`,
averaged over all `B` samples. PDEBench divides its batch sums by the number of batches minus
one; here every sample counts once, so results do not depend on how a test set is batched.

The functions are pure `jax.numpy`, so they run on any device. Shapes are checked in Python
before anything is traced; then each metric runs compiled (once per input shape and dtype),
and inside a caller's `jax.jit` it is inlined. The result has the inputs' (promoted,
floating) dtype.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from surrogates.metric_names import METRIC_NAMES

# The Well adds this to the target variance so that constant fields do not divide by zero.
_VRMSE_EPS = 1e-7


def _check_shapes(pred: ArrayLike, target: ArrayLike) -> None:
    """Fail, naming both shapes, unless both are the same `(B, T, *X, C)` with 1 to 3 axes X."""
    pred_shape, target_shape = np.shape(pred), np.shape(target)
    if pred_shape != target_shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {pred_shape} "
            f"and target {target_shape}"
        )
    if len(pred_shape) not in (4, 5, 6):
        raise ValueError(
            "pred and target must be shaped (B, T, *X, C) with 1 to 3 spatial axes, "
            f"got pred {pred_shape} and target {target_shape}"
        )


def _promoted(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Both fields in one floating dtype."""
    # A weak Python float promotes integers to the default float and leaves floats alone.
    dtype = jnp.result_type(pred, target, float)
    return pred.astype(dtype), target.astype(dtype)


def _field_metric(
    core: Callable[[jax.Array, jax.Array], jax.Array],
) -> Callable[[ArrayLike, ArrayLike], jax.Array]:
    """`core` behind a Python shape check, compiled once per input shape and dtype.

    Compiling each metric as a whole, rather than dispatching its operations one by one,
    is what makes eager calls cheap; inside a caller's `jax.jit` it is simply inlined.
    """

    @jax.jit
    @functools.wraps(core)
    def compiled(pred: jax.Array, target: jax.Array) -> jax.Array:
        return core(*_promoted(pred, target))

    @functools.wraps(core)
    def metric(pred: ArrayLike, target: ArrayLike) -> jax.Array:
        _check_shapes(pred, target)
        return compiled(pred, target)

    return metric


def _space_axes(field: jax.Array) -> tuple[int, ...]:
    """The spatial axes of a `(B, T, *X, C)` field."""
    return tuple(range(2, field.ndim - 1))


def _rms(field: jax.Array) -> jax.Array:
    """Root mean square over space: (B, T, *X, C) -> (B, T, C)."""
    return jnp.sqrt(jnp.mean(jnp.square(field), axis=_space_axes(field)))


@_field_metric
def rmse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Root mean squared error over space, averaged over samples.

    pred, target: (B, T, *X, C). Returns (T, C).
    """
    return jnp.mean(_rms(pred - target), axis=0)


@_field_metric
def nrmse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """RMSE normalised by the target's RMS norm per sample, step and channel, then averaged.

    pred, target: (B, T, *X, C). Returns (T, C). As in PDEBench, a target that is zero
    everywhere gives an infinite (or NaN) value.
    """
    return jnp.mean(_rms(pred - target) / _rms(target), axis=0)


@_field_metric
def crmse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Conserved-quantity error: `sqrt(mean_b (sum_x pred - sum_x target)^2) / n_space`.

    pred, target: (B, T, *X, C). Returns (T, C). `n_space` is the number of grid points.
    """
    space = _space_axes(pred)
    # Summing the difference equals the difference of sums but cancels less in float32.
    total = jnp.sum(pred - target, axis=space)
    return jnp.sqrt(jnp.mean(jnp.square(total), axis=0)) / math.prod(pred.shape[2:-1])


@_field_metric
def max_error(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Largest absolute error over space and over all samples.

    pred, target: (B, T, *X, C). Returns (T, C).
    """
    return jnp.max(jnp.abs(pred - target), axis=(0, *_space_axes(pred)))


@_field_metric
def brmse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """RMSE over the boundary: the end points (1D), edge lines (2D) or faces (3D).

    pred, target: (B, T, *X, C). Returns (T, C). For each spatial axis the squared errors on
    its first and last slice are summed and the total is divided by the number of summed
    points, `2` (1D), `2 (nx + ny)` (2D), `2 (nx ny + ny nz + nx nz)` (3D); so, as in
    PDEBench, points on several boundaries (corners, edges) count once per boundary they lie
    on. Then `sqrt` per sample, step and channel, and the mean over samples. In 1D and 2D
    this is PDEBench's bRMSE. PDEBench's 3D version omits the mean over samples and mixes
    channels through a `view([nb, -1, nt])`; this is the consistent generalisation of its
    1D and 2D versions.
    """
    squared = jnp.square(pred - target)
    space = _space_axes(squared)
    n_points = math.prod(squared.shape[2:-1])
    total, count = 0.0, 0
    for axis in space:
        n = squared.shape[axis]
        faces = jnp.take(squared, np.array([0, n - 1]), axis=axis)
        total = total + jnp.sum(faces, axis=space)
        count += 2 * n_points // n
    return jnp.mean(jnp.sqrt(total / count), axis=0)


def frmse(
    pred: ArrayLike,
    target: ArrayLike,
    *,
    i_low: int = 4,
    i_high: int = 12,
    lengths: Sequence[float] | None = None,
) -> dict[str, jax.Array]:
    """Fourier-space RMSE in low, mid and high wavenumber bands, as PDEBench defines it.

    pred, target: (B, T, *X, C). Returns `{"low", "mid", "high"}`, each (T, C).

    The error's spectrum is taken per mode in 1D (`rfft`, `nx // 2 + 1` modes) and per radial
    shell `floor(|k|)` in 2D/3D, where a shell sums the squared spectral errors of the first
    quadrant/octant modes `k_i < n_i // 2` and only shells below `min(n_i // 2)` are kept.
    Per mode or shell: `sqrt(mean_b power) / prod(n_i) * prod(lengths)`. The bands are the
    modes/shells `[0, i_low)`, `[i_low, i_high)` and `[i_high, end)`, each averaged over its
    modes; a band with no modes (a grid too coarse for it) is NaN.

    lengths: domain length per spatial axis; default 1.0 each, as PDEBench's training scripts
    use.
    """
    _check_shapes(pred, target)
    grid = np.shape(pred)[2:-1]
    lengths = (1.0,) * len(grid) if lengths is None else tuple(lengths)
    if len(lengths) != len(grid):
        raise ValueError(f"lengths {lengths} must give one length per spatial axis of {grid}")
    if not 0 <= i_low <= i_high:
        raise ValueError(f"need 0 <= i_low <= i_high, got i_low={i_low} and i_high={i_high}")
    return _frmse_bands(pred, target, math.prod(lengths), i_low=i_low, i_high=i_high)


# The band limits slice the spectrum, so they fix its shape and must be static.
@functools.partial(jax.jit, static_argnames=("i_low", "i_high"))
def _frmse_bands(
    pred: jax.Array, target: jax.Array, volume: ArrayLike, *, i_low: int, i_high: int
) -> dict[str, jax.Array]:
    """`frmse` once the inputs are checked; `volume` is the domain's, `prod(lengths)`."""
    pred, target = _promoted(pred, target)
    power = _error_power(pred - target)
    n_points = math.prod(pred.shape[2:-1])
    per_mode = (jnp.sqrt(jnp.mean(power, axis=1)) * volume / n_points).astype(pred.dtype)
    bands = {"low": per_mode[:i_low], "mid": per_mode[i_low:i_high], "high": per_mode[i_high:]}
    return {name: jnp.mean(modes, axis=0) for name, modes in bands.items()}


def _error_power(error: jax.Array) -> jax.Array:
    """Squared spectral error per mode (1D) or radial shell (2D, 3D): (K, B, T, C)."""
    # XLA's FFTs take float32 and float64 only.
    error = error.astype(jnp.promote_types(error.dtype, jnp.float32))
    batch, steps, *grid, channels = error.shape
    if len(grid) == 1:
        return jnp.moveaxis(jnp.abs(jnp.fft.rfft(error, axis=2)) ** 2, 2, 0)
    # For a real field, rfftn agrees with fftn on the first quadrant/octant, which is all
    # that is binned, and halves the work along the last axis.
    spectrum = jnp.fft.rfftn(error, axes=_space_axes(error))
    quadrant = spectrum[(slice(None), slice(None), *(slice(n // 2) for n in grid))]
    power = jnp.moveaxis(jnp.abs(quadrant).reshape(batch, steps, -1, channels) ** 2, 2, 0)
    n_shells = min(n // 2 for n in grid)
    # Segment `n_shells` collects the corner modes beyond the last kept shell and is dropped.
    shells = jax.ops.segment_sum(power, _shell_index(grid), num_segments=n_shells + 1)
    return shells[:n_shells]


def _shell_index(grid: Sequence[int]) -> np.ndarray:
    """Radial shell `floor(|k|)` of each first-quadrant/octant mode, flattened in C order.

    Modes beyond the last kept shell, `min(n // 2) - 1`, get the overflow index `min(n // 2)`.
    """
    half = [n // 2 for n in grid]
    wavenumbers = np.meshgrid(*(np.arange(h) for h in half), indexing="ij")
    radius = np.sqrt(sum(k.astype(np.float64) ** 2 for k in wavenumbers))
    # float64 sqrt is correctly rounded, so floor is exact at perfect squares.
    shell = np.floor(radius).astype(np.int32).ravel()
    return np.minimum(shell, min(half))


@_field_metric
def rel_l2(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Relative L2 error `||pred - target|| / ||target||` over space, averaged over samples.

    pred, target: (B, T, *X, C). Returns (T, C).
    """
    space = _space_axes(pred)
    error_norm = jnp.linalg.vector_norm(pred - target, axis=space)
    return jnp.mean(error_norm / jnp.linalg.vector_norm(target, axis=space), axis=0)


@_field_metric
def vrmse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """The Well's variance-scaled RMSE, averaged over samples.

    pred, target: (B, T, *X, C). Returns (T, C). Per sample, step and channel:
    `sqrt(mean_x (pred - target)^2 / (var_x(target) + 1e-7))`. The variance is the unbiased
    one (ddof=1), because The Well takes it from `torch.std`'s default; predicting the
    spatial mean of the target therefore scores `sqrt((n - 1) / n)`, just under 1.
    """
    space = _space_axes(pred)
    mse = jnp.mean(jnp.square(pred - target), axis=space)
    variance = jnp.var(target, axis=space, ddof=1)
    return jnp.mean(jnp.sqrt(mse / (variance + _VRMSE_EPS)), axis=0)


_FIELD_METRICS = {
    "rmse": rmse,
    "nrmse": nrmse,
    "crmse": crmse,
    "brmse": brmse,
    "max_error": max_error,
    "rel_l2": rel_l2,
    "vrmse": vrmse,
}


def compute_metrics(
    pred: ArrayLike,
    target: ArrayLike,
    names: Sequence[str] = METRIC_NAMES,
    *,
    i_low: int = 4,
    i_high: int = 12,
    lengths: Sequence[float] | None = None,
) -> dict[str, jax.Array]:
    """The named metrics of `METRIC_NAMES`, each (T, C), in the order asked for.

    pred, target: (B, T, *X, C). `frmse_low|mid|high` are the bands of `frmse`, computed once
    with `i_low`, `i_high` and `lengths`. Under `jax.jit`, mark `names`, `i_low` and
    `i_high` static.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [name for name in names if name not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRIC_NAMES)}")
    values = {name: _FIELD_METRICS[name](pred, target) for name in names if name in _FIELD_METRICS}
    if any(name.startswith("frmse_") for name in names):
        bands = frmse(pred, target, i_low=i_low, i_high=i_high, lengths=lengths)
        values.update({f"frmse_{band}": value for band, value in bands.items()})
    return {name: values[name] for name in names}
