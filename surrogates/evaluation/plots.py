"""Figures of evaluation results: error versus rollout step; prediction, truth and error.

Figures are plain `matplotlib.figure.Figure`s on an Agg canvas, not `pyplot` figures: no
window ever opens, the caller's backend is left alone, and no global registry keeps a figure
alive after it is saved, so there is nothing to close. The `*_figure` builders return the
Figure (to show in a notebook or to inspect); the `plot_*` functions save it atomically and
return the path, in the format the path's suffix names (PNG without one).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from surrogates.atomic import atomic_path

SPACE_NAMES: tuple[str, ...] = ("x", "y", "z")
DPI = 100
_KINDS = ("prediction", "truth", "|error|")
_CMAPS = {"prediction": "viridis", "truth": "viridis", "|error|": "magma"}


def new_figure(width: float, height: float) -> Figure:
    """An empty Figure of `width` x `height` inches on an Agg canvas, constrained layout."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Save `figure` to `path` atomically. Returns the path."""
    target = Path(path)
    with atomic_path(target) as temporary:
        # The temporary name hides the suffix that would otherwise select the format.
        figure.savefig(temporary, format=target.suffix.lstrip(".") or "png")
    return target


def error_vs_step_figure(ds: xr.Dataset, metric: str = "nrmse") -> Figure:
    """One line per model: `metric` averaged over channels against the rollout step.

    ds: a results dataset (`metrics_dataset`), `ds[metric]` shaped (model, step, channel).
    The x axis is `time` if the dataset has that coord, else `step`; the y axis is
    logarithmic when every value is positive.
    """
    if metric not in ds.data_vars:
        raise ValueError(f"no metric {metric!r} in the results; they hold {list(ds.data_vars)}")
    curves = ds[metric].mean("channel", skipna=False).transpose("model", "step").values
    use_time = "time" in ds.coords
    x = ds["time"].values if use_time else ds["step"].values
    figure = new_figure(6.0, 4.0)
    axes = figure.add_subplot()
    for label, curve in zip(ds["model"].values.tolist(), curves, strict=True):
        axes.plot(x, curve, marker="o", markersize=3, label=str(label))
    if np.all(curves > 0):
        axes.set_yscale("log")
    if not use_time:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("time" if use_time else "rollout step")
    axes.set_ylabel(f"{metric} (mean over channels)")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return figure


def plot_error_vs_step(ds: xr.Dataset, path: str | os.PathLike[str], metric: str = "nrmse") -> Path:
    """Save `error_vs_step_figure(ds, metric)` to `path`. Returns the path."""
    return save_figure(error_vs_step_figure(ds, metric), path)


def snapshots_figure(
    prediction: ArrayLike,
    truth: ArrayLike,
    *,
    channel_names: Sequence[str],
    coords: Mapping[str, ArrayLike] | None = None,
    steps: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """Prediction, truth and |error| of one trajectory; `title` says which one.

    prediction, truth: (S, *X, C), rollout steps 1..S, one to three spatial axes.
    channel_names: the C names. coords: optional 1D coordinates `t` (S,), `x`, `y`, `z`
    (one per spatial axis, cell centres of a uniform grid) for the axes' labels and extents.

    1D: per channel a row of three space-time images, time upwards. 2D: per channel three
    rows (prediction, truth, |error|) at the 0-based `steps` (default first, middle, last).
    3D: as 2D on the middle slice along the last spatial axis. Prediction and truth share a
    colour scale per channel, labelled with the channel's name; the error has its own.
    """
    prediction, truth = np.asarray(prediction), np.asarray(truth)
    _check_fields(prediction, truth, channel_names)
    n_space = prediction.ndim - 2
    coords = _checked_coords(coords or {}, prediction.shape[:-1])
    if n_space == 1:
        if steps is not None:
            raise ValueError("steps select frames of 2D/3D fields; 1D plots show every step")
        figure = _space_time_figure(prediction, truth, channel_names, coords)
        titles = [title]
    else:
        steps = _checked_steps(steps, prediction.shape[0])
        if n_space == 3:
            middle = prediction.shape[3] // 2
            prediction, truth = prediction[:, :, :, middle], truth[:, :, :, middle]
            where = f"z = {coords['z'][middle]:.3g}" if "z" in coords else f"z index {middle}"
        figure = _frames_figure(prediction, truth, channel_names, coords, steps)
        titles = [title, f"slice {where}" if n_space == 3 else None]
    if any(titles):
        figure.suptitle(", ".join(t for t in titles if t))
    return figure


def plot_snapshots(
    prediction: ArrayLike,
    truth: ArrayLike,
    path: str | os.PathLike[str],
    *,
    channel_names: Sequence[str],
    coords: Mapping[str, ArrayLike] | None = None,
    steps: Sequence[int] | None = None,
    title: str | None = None,
) -> Path:
    """Save `snapshots_figure(prediction, truth, ...)` to `path`. Returns the path.

    prediction, truth: (S, *X, C) with one to three spatial axes.
    """
    figure = snapshots_figure(
        prediction, truth, channel_names=channel_names, coords=coords, steps=steps, title=title
    )
    return save_figure(figure, path)


def _check_fields(prediction: np.ndarray, truth: np.ndarray, channel_names: Sequence[str]) -> None:
    if prediction.shape != truth.shape:
        raise ValueError(
            f"prediction and truth must have the same shape, got {prediction.shape} "
            f"and {truth.shape}"
        )
    if prediction.ndim not in (3, 4, 5) or 0 in prediction.shape:
        raise ValueError(
            "prediction and truth must be shaped (S, *X, C) with 1 to 3 non-empty spatial "
            f"axes, got {prediction.shape}"
        )
    if len(channel_names) != prediction.shape[-1]:
        raise ValueError(
            f"got {len(channel_names)} channel names {list(channel_names)} for "
            f"{prediction.shape[-1]} channels"
        )


def _checked_coords(
    coords: Mapping[str, ArrayLike], shape: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """`coords` as arrays after checking them against the fields' (S, *X) `shape`."""
    sizes = dict(zip(("t", *SPACE_NAMES), shape, strict=False))
    unknown = [key for key in coords if key not in sizes]
    if unknown:
        raise ValueError(
            f"coords {unknown} do not apply to fields shaped (S, *X) = {shape}; "
            f"expected some of {list(sizes)}"
        )
    checked = {key: np.asarray(values) for key, values in coords.items()}
    for key, values in checked.items():
        if values.shape != (sizes[key],):
            raise ValueError(f"coords[{key!r}] must have shape ({sizes[key]},), got {values.shape}")
    return checked


def _checked_steps(steps: Sequence[int] | None, n_steps: int) -> list[int]:
    """0-based frame indices to show: `steps` (negative ones count from the end) or default."""
    if steps is None:
        return sorted({0, n_steps // 2, n_steps - 1})
    chosen = [operator.index(step) for step in steps]
    if not chosen:
        raise ValueError("steps must name at least one step")
    outside = [step for step in chosen if not -n_steps <= step < n_steps]
    if outside:
        raise ValueError(f"steps {outside} are outside the {n_steps} predicted steps")
    return [step % n_steps for step in chosen]


def _extent(centres: np.ndarray | None, n: int, first: float = 0.0) -> tuple[float, float]:
    """Edges of `n` uniform cells around `centres`, or of cells `first`, `first + 1`, ..."""
    if centres is None:
        return first - 0.5, first + n - 0.5
    half = 0.5 if n == 1 else 0.5 * float(centres[-1] - centres[0]) / (n - 1)
    return float(centres[0]) - half, float(centres[-1]) + half


def _value_range(*fields: np.ndarray) -> tuple[float | None, float | None]:
    """The finite extremes of `fields` together; None (automatic) if nothing is finite."""
    values = np.concatenate([field.ravel() for field in fields])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    return float(values.min()), float(values.max())


def _space_time_figure(
    prediction: np.ndarray,
    truth: np.ndarray,
    channel_names: Sequence[str],
    coords: Mapping[str, np.ndarray],
) -> Figure:
    """1D fields (S, X, C): per channel, three (S, X) images with time upwards."""
    n_steps, n_x, n_channels = prediction.shape
    error = np.abs(prediction - truth)
    extent = (*_extent(coords.get("x"), n_x), *_extent(coords.get("t"), n_steps, first=1.0))
    figure = new_figure(10.0, 2.8 * n_channels)
    grid = figure.subplots(n_channels, 3, squeeze=False, sharex=True, sharey=True)
    for c, name in enumerate(channel_names):
        row = grid[c]
        field_range = _value_range(prediction[..., c], truth[..., c])
        ranges = (field_range, field_range, _value_range(error[..., c]))
        for axes, kind, field, (low, high) in zip(
            row, _KINDS, (prediction, truth, error), ranges, strict=True
        ):
            axes.imshow(
                field[..., c],
                origin="lower",
                aspect="auto",
                extent=extent,
                cmap=_CMAPS[kind],
                vmin=low,
                vmax=high,
            )
            axes.set_title(f"{name}: {kind}")
        figure.colorbar(row[0].images[0], ax=list(row[:2]), label=name)
        figure.colorbar(row[2].images[0], ax=row[2], label=f"|error| of {name}")
        row[0].set_ylabel("time" if "t" in coords else "rollout step")
    for axes in grid[-1]:
        axes.set_xlabel("x")
    return figure


def _frames_figure(
    prediction: np.ndarray,
    truth: np.ndarray,
    channel_names: Sequence[str],
    coords: Mapping[str, np.ndarray],
    steps: Sequence[int],
) -> Figure:
    """2D fields (S, X, Y, C): per channel, rows prediction / truth / |error| at `steps`."""
    n_x, n_y, n_channels = prediction.shape[1:]
    error = np.abs(prediction - truth)
    extent = (*_extent(coords.get("x"), n_x), *_extent(coords.get("y"), n_y))
    figure = new_figure(2.6 * len(steps) + 1.4, 7.2 * n_channels)
    grid = figure.subplots(3 * n_channels, len(steps), squeeze=False, sharex=True, sharey=True)
    for c, name in enumerate(channel_names):
        rows = grid[3 * c : 3 * c + 3]
        fields = [field[steps, ..., c] for field in (prediction, truth, error)]
        field_range = _value_range(*fields[:2])
        ranges = (field_range, field_range, _value_range(fields[2]))
        for row, kind, frames, (low, high) in zip(rows, _KINDS, fields, ranges, strict=True):
            for axes, frame in zip(row, frames, strict=True):
                # Arrays are (x, y); images are (row, column) = (y, x).
                axes.imshow(
                    frame.T, origin="lower", extent=extent, cmap=_CMAPS[kind], vmin=low, vmax=high
                )
            row[0].set_ylabel(f"{name} {kind}\ny")
        for axes, step in zip(rows[0], steps, strict=True):
            axes.set_title(_step_label(step, coords))
        figure.colorbar(rows[0][0].images[0], ax=list(rows[:2].ravel()), label=name)
        figure.colorbar(rows[2][0].images[0], ax=list(rows[2]), label=f"|error| of {name}")
    for axes in grid[-1]:
        axes.set_xlabel("x")
    return figure


def _step_label(step: int, coords: Mapping[str, np.ndarray]) -> str:
    """The title of a 0-based frame: its time if known, else its rollout step (1-based)."""
    return f"t = {coords['t'][step]:.3g}" if "t" in coords else f"step {step + 1}"


def plot_evaluation(
    results: xr.Dataset,
    prediction: np.ndarray,
    truth: np.ndarray,
    folder: Path,
    *,
    channel_names: Sequence[str],
    coords: Mapping[str, ArrayLike],
    titles: Sequence[str],
) -> None:
    """An evaluation's figures in `folder`: `error_vs_step.png` (if nRMSE was computed) and
    `snapshot_<k>.png` of the first `len(titles)` trajectories, titled with `titles` (which
    trajectory each shows). prediction, truth: (N, S, *X, C).
    """
    if "nrmse" in results:
        plot_error_vs_step(results, folder / "error_vs_step.png")
    for k, title in enumerate(titles[: len(prediction)]):
        plot_snapshots(
            prediction[k],
            truth[k],
            folder / f"snapshot_{k}.png",
            channel_names=channel_names,
            coords=coords,
            title=title,
        )
