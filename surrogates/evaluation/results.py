"""Evaluation results as xarray Datasets: build them, write and read NetCDF files, summarise.

A results dataset holds one data variable per metric, each `(model, step, channel)`, with
coords `model` (labels), `step` (rollout steps 1..S), `channel` (field names) and, when the
physical times are known, a non-index coord `time` on `step`. These are pooled over every
trajectory. Results of data with several PDE-parameter values also hold, per metric,
`<metric>_by_case` `(case, model, step, channel)`: the same metric over the trajectories of
each distinct value, with one coord on `case` per parameter (named after it, e.g. `beta`),
`seen` (whether the value was among the training data's) and `trajectories`. Files are NetCDF
written with h5netcdf, atomically, so an interrupted run never leaves a half-written `eval.nc`
behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from surrogates.atomic import atomic_path
from surrogates.errors import ResultsError

DIMS: tuple[str, str, str] = ("model", "step", "channel")
CASE_DIMS: tuple[str, str, str, str] = ("case", *DIMS)
BY_CASE = "_by_case"

# h5py turns HDF5's errors on a damaged file into any of these, depending on what broke.
_READ_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError)

# What a NetCDF attribute stores and reads back as an equal value; bools come back as
# integers and containers are not attributes at all.
_ATTR_TYPES = (str, int, float, np.integer, np.floating)


@dataclass(frozen=True)
class Cases:
    """Metrics per PDE-parameter value: `metrics[k]` is `{model: {metric: (S, C)}}` over the
    trajectories of `values[k]` (K, P), with parameter `names` (P,), `seen` (K,) and the
    number of `trajectories` (K,) of each."""

    names: tuple[str, ...]
    values: np.ndarray
    seen: np.ndarray
    trajectories: np.ndarray
    metrics: Sequence[Mapping[str, Mapping[str, ArrayLike]]]


def metrics_dataset(
    metrics: Mapping[str, Mapping[str, ArrayLike]],
    *,
    channels: Sequence[str],
    times: ArrayLike | None = None,
    attrs: Mapping[str, object] | None = None,
    cases: Cases | None = None,
) -> xr.Dataset:
    """Per-step, per-channel metrics of several models as one Dataset.

    metrics: `metrics[model_label][metric_name]` is an (S, C) array; every model must give
    the same metric names with the same shape. channels: the C channel names. times: (S,)
    physical time of each rollout step, stored as coord `time` on `step`. attrs: dataset
    attributes (str, int or float values), e.g. the experiment name or dataset path.

    cases: the same metrics per PDE-parameter value, stored as `<metric>_by_case`.

    Returns one data variable per metric, dims `("model", "step", "channel")`, models in the
    given order, `step` = 1..S.
    """
    labels = list(metrics)
    channels = list(channels)
    if not labels:
        raise ValueError("metrics must hold at least one model")
    if len(set(channels)) != len(channels):
        raise ValueError(f"channel names must be unique, got {channels}")
    names, n_steps = _check_metrics(metrics, n_channels=len(channels))
    coords: dict[str, object] = {
        "model": labels,
        "step": np.arange(1, n_steps + 1),
        "channel": channels,
    }
    if times is not None:
        coords["time"] = ("step", _checked_times(times, n_steps))
    data = {name: (DIMS, _stacked(metrics, labels, name)) for name in names}
    if cases is not None:
        for per_case in cases.metrics:
            _check_metrics(per_case, n_channels=len(channels))
        for name in names:
            stacked = np.stack([_stacked(per_case, labels, name) for per_case in cases.metrics])
            data[f"{name}{BY_CASE}"] = (CASE_DIMS, stacked)
        coords.update(_case_coords(cases))
    return xr.Dataset(data, coords=coords, attrs=_checked_attrs(attrs or {}))


def _stacked(metrics: Mapping[str, Mapping[str, ArrayLike]], labels: list[str], name: str):
    return np.stack([np.asarray(metrics[label][name]) for label in labels])


def _case_coords(cases: Cases) -> dict[str, object]:
    values = np.asarray(cases.values, np.float64)
    taken = {"case", *DIMS, "time", "seen", "trajectories"} & set(cases.names)
    if taken:
        raise ValueError(f"PDE parameter names {sorted(taken)} collide with the results' coords")
    coords: dict[str, object] = {"case": np.arange(len(values))}
    for column, name in enumerate(cases.names):
        coords[name] = ("case", values[:, column])
    coords["seen"] = ("case", np.asarray(cases.seen, bool))
    coords["trajectories"] = ("case", np.asarray(cases.trajectories, np.int64))
    return coords


def pooled_metrics(ds: xr.Dataset) -> list[str]:
    """The metrics pooled over every trajectory (the `(model, step, channel)` variables)."""
    return [str(name) for name, variable in ds.data_vars.items() if variable.dims == DIMS]


def _check_metrics(
    metrics: Mapping[str, Mapping[str, ArrayLike]], *, n_channels: int
) -> tuple[list[str], int]:
    """The metric names and number of steps, after checking every model against the first."""
    first = next(iter(metrics))
    names = list(metrics[first])
    if not names:
        raise ValueError(f"model {first!r} has no metrics")
    shape = np.shape(metrics[first][names[0]])
    if len(shape) != 2 or shape[0] < 1:
        raise ValueError(
            f"model {first!r}, metric {names[0]!r}: expected an (S, C) array with S >= 1, "
            f"got shape {shape}"
        )
    n_steps = shape[0]
    for label, values in metrics.items():
        missing, extra = set(names) - set(values), set(values) - set(names)
        if missing or extra:
            raise ValueError(
                f"model {label!r} has metrics {sorted(values)} but model {first!r} has "
                f"{sorted(names)} (missing {sorted(missing)}, extra {sorted(extra)})"
            )
        for name in names:
            shape = np.shape(values[name])
            if shape != (n_steps, n_channels):
                raise ValueError(
                    f"model {label!r}, metric {name!r}: expected shape (steps, channels) = "
                    f"{(n_steps, n_channels)}, got {shape}"
                )
    return names, n_steps


def _checked_times(times: ArrayLike, n_steps: int) -> np.ndarray:
    times = np.asarray(times)
    if times.shape != (n_steps,):
        raise ValueError(f"times must have shape ({n_steps},), one per step, got {times.shape}")
    return times


def _checked_attrs(attrs: Mapping[str, object]) -> dict[str, object]:
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise ValueError(f"attribute names must be strings, got {key!r}")
        if isinstance(value, bool | np.bool_) or not isinstance(value, _ATTR_TYPES):
            raise ValueError(
                f"attribute {key!r} must be a str, int or float to be stored in NetCDF, "
                f"got {type(value).__name__} {value!r}"
            )
    return dict(attrs)


def write_results(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write `ds` to `path` as NetCDF (h5netcdf), atomically. Returns the path."""
    target = Path(path)
    with atomic_path(target) as temporary:
        ds.to_netcdf(temporary, engine="h5netcdf")
    return target


def read_results(path: str | os.PathLike[str]) -> xr.Dataset:
    """A results file written by `write_results`, loaded into memory; the file is closed.

    Raises `ResultsError` naming the file if it is missing, unreadable or not laid out as
    `metrics_dataset` makes it.
    """
    source = Path(path)
    try:
        ds = xr.load_dataset(source, engine="h5netcdf")
    except FileNotFoundError as error:
        raise ResultsError(f"{source}: no such results file") from error
    except _READ_ERRORS as error:
        raise ResultsError(f"{source}: not a readable NetCDF file ({error})") from error
    problem = _layout_problem(ds)
    if problem:
        raise ResultsError(f"{source}: not a results file: {problem}")
    return ds


def _layout_problem(ds: xr.Dataset) -> str | None:
    """Why `ds` is not laid out as `metrics_dataset` makes it, or None if it is."""
    missing = [dim for dim in DIMS if dim not in ds.coords]
    if missing:
        return f"expected coordinates {list(DIMS)}, missing {missing}"
    if not ds.data_vars:
        return "no metric variables"
    for name, variable in ds.data_vars.items():
        expected = CASE_DIMS if str(name).endswith(BY_CASE) else DIMS
        if variable.dims != expected:
            return f"variable {name!r} has dims {variable.dims}, expected {expected}"
    return None


def summary_rows(ds: xr.Dataset, metrics: Sequence[str] | None = None) -> list[dict[str, object]]:
    """One row per model: `{"model": label, <metric>: mean over steps and channels, ...}`.

    metrics: which data variables, in order; default every pooled one. If `nrmse` is among
    them, the row ends with `nrmse_last`, the nRMSE of the last step averaged over channels.
    Means keep NaN (a metric that is NaN anywhere is NaN in the summary) rather than hide it.
    """
    names = _metric_names(ds, metrics)
    means = {name: ds[name].mean(("step", "channel"), skipna=False) for name in names}
    if "nrmse" in names:
        means["nrmse_last"] = ds["nrmse"].isel(step=-1).mean("channel", skipna=False)
    return [
        {"model": label, **{key: float(mean.values[i]) for key, mean in means.items()}}
        for i, label in enumerate(ds["model"].values.tolist())
    ]


def _metric_names(ds: xr.Dataset, metrics: Sequence[str] | None) -> list[str]:
    names = pooled_metrics(ds) if metrics is None else list(metrics)
    unknown = [name for name in names if name not in ds.data_vars]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; the results hold {list(ds.data_vars)}")
    for name in names:
        if ds[name].dims != DIMS:
            raise ValueError(f"metric {name!r} has dims {ds[name].dims}, expected {DIMS}")
    return [str(name) for name in names]


def comparison_rows(
    results: Mapping[str, xr.Dataset], metrics: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """One row per (experiment, model): `{"experiment": name, **summary row}`.

    results: experiment name -> results dataset. metrics: default, the metrics that every
    experiment has (in the first one's order), so that all rows share their columns.
    """
    if metrics is None:
        metrics = _shared_metrics(list(results.values()))
    for experiment, ds in results.items():
        missing = [name for name in metrics if name not in ds.data_vars]
        if missing:
            raise ValueError(f"experiment {experiment!r} has no metric(s) {missing}")
    return [
        {"experiment": experiment, **row, "params": _parameters(ds, row["model"])}
        for experiment, ds in results.items()
        for row in summary_rows(ds, metrics)
    ]


def seed_rows(
    results: Mapping[str, Sequence[xr.Dataset]], metrics: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """One row per (experiment, model) over runs with several seeds: `experiment`, `model`,
    `seeds` (the number of runs), `<column>_mean` and `<column>_std` (the sample standard
    deviation over runs; None for a single run) for each metric column of `comparison_rows`,
    `params`, and for the trained model the runs' mean `train_seconds` and `eval_seconds`
    (from the results' attributes).

    results: experiment name -> the results of each seed's run.
    """
    if metrics is None:
        metrics = _shared_metrics([ds for runs in results.values() for ds in runs])
    rows = []
    for experiment, runs in results.items():
        per_run = [comparison_rows({experiment: ds}, metrics) for ds in runs]
        for same in zip(*per_run, strict=True):
            first = same[0]
            row: dict[str, object] = {"experiment": experiment, "model": first["model"]}
            row["seeds"] = len(same)
            for key in first:
                if key not in ("experiment", "model", "params"):
                    values = np.array([r[key] for r in same], np.float64)
                    row[f"{key}_mean"] = float(values.mean())
                    row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
            trained = first["params"] is not None
            row["params"] = first["params"]
            for key in ("train_seconds", "eval_seconds"):
                row[key] = _mean_attribute(runs, key) if trained else None
            rows.append(row)
    return rows


def _mean_attribute(runs: Sequence[xr.Dataset], key: str) -> float | None:
    values = [float(ds.attrs[key]) for ds in runs if key in ds.attrs]
    return float(np.mean(values)) if values else None


def _parameters(ds: xr.Dataset, model: object) -> int | None:
    """The trained model's parameter count (attribute `parameters`), None for a baseline or
    results written without it.
    """
    if model != ds.attrs.get("model") or "parameters" not in ds.attrs:
        return None
    return int(ds.attrs["parameters"])


def _shared_metrics(datasets: Sequence[xr.Dataset]) -> list[str]:
    """The metrics present in every dataset, in the first one's order."""
    if not datasets:
        return []
    first, *others = datasets
    return [name for name in pooled_metrics(first) if all(name in ds.data_vars for ds in others)]


def case_rows(
    ds: xr.Dataset, metric: str = "nrmse", *, last: bool = True
) -> list[dict[str, object]]:
    """One row per PDE-parameter value: the parameters, `seen`, `trajectories`, and for each
    model `metric` averaged over steps and channels and, if `last`, at the last step (empty
    without cases or without `metric`)."""
    name = f"{metric}{BY_CASE}"
    if name not in ds.data_vars:
        return []
    values = ds[name]
    means = values.mean(("step", "channel"), skipna=False)
    at_last = values.isel(step=-1).mean("channel", skipna=False)
    parameters = [str(c) for c, coord in ds.coords.items() if coord.dims == ("case",)]
    parameters = [c for c in parameters if c not in ("case", "seen", "trajectories")]
    rows = []
    for k in range(ds.sizes["case"]):
        row: dict[str, object] = {p: float(ds[p].values[k]) for p in parameters}
        row["seen"] = "yes" if bool(ds["seen"].values[k]) else "no"
        row["trajectories"] = int(ds["trajectories"].values[k])
        for i, label in enumerate(ds["model"].values.tolist()):
            row[f"{label} {metric}"] = float(means.values[k, i])
            if last:
                row[f"{label} {metric}_last"] = float(at_last.values[k, i])
        rows.append(row)
    return rows
