"""Evaluating a physics task: the final model on the problem's evaluation grid against its
exact or reference solution.

A run (or re-evaluation) folder gets:
- `prediction.nc`: an xarray Dataset with `prediction_<output>` and `reference_<output>` on
  the grid, coordinates named after the problem's variables (`t`, `x`, `y`), so anyone can
  recompute the errors;
- `eval.nc`: relative L2, RMSE and max error over the whole grid, per output (the results
  layout of `surrogates.evaluation.results`, one `step`), so suites compare physics runs as
  they compare operators; and, for a time-dependent problem, `eval_by_time.nc`: the same per
  time slice (`step` k is the k-th time, coord `time`);
- `summary.md` and `figures/solution.png` (prediction, reference, error); a model with
  Gaussian features (PIG) also draws their centres in `figures/gaussians.png`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from rich.console import Console

from surrogates.atomic import write_text
from surrogates.evaluation.plots import new_figure, save_figure
from surrogates.evaluation.results import metrics_dataset, summary_rows, write_results
from surrogates.evaluation.summary import print_summary
from surrogates.evaluation.tables import markdown_table
from surrogates.models.contract import HasCentres
from surrogates.training import sharding
from surrogates.training.physics_task import PhysicsTask

METRICS = ("rel_l2", "rmse", "max")


def grid_metrics(prediction: np.ndarray, reference: np.ndarray, axes: tuple[int, ...]) -> dict:
    """Relative L2, RMSE and max |error| of `prediction` against `reference` (*grid, C),
    reduced over `axes`: each `(..., C)`."""
    error = prediction - reference
    return {
        "rel_l2": np.sqrt(np.sum(error**2, axis=axes) / np.sum(reference**2, axis=axes)),
        "rmse": np.sqrt(np.mean(error**2, axis=axes)),
        "max": np.max(np.abs(error), axis=axes),
    }


def prediction_dataset(
    task: PhysicsTask, prediction: np.ndarray, reference: np.ndarray
) -> xr.Dataset:
    """`prediction_<output>` and `reference_<output>` on the evaluation grid."""
    grid = task.problem.evaluation_grid()
    dims = tuple(grid)
    variables = {}
    for c, name in enumerate(task.problem.outputs):
        variables[f"prediction_{name}"] = (dims, prediction[..., c])
        variables[f"reference_{name}"] = (dims, reference[..., c])
    attrs = {"problem": task.problem.name, "model": task.experiment.model.name}
    attrs.update({k: float(v) for k, v in task.problem.parameters().items()})
    return xr.Dataset(variables, coords=dict(grid), attrs=attrs)


def evaluate_physics_run(
    task: PhysicsTask,
    run: Path,
    out: Path,
    *,
    files: list[Path] | None,
    stride_x: int | None,
    console: Console | None,
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Evaluate the task's current model into `out` (see the module docs)."""
    started = time.perf_counter()
    prediction, reference = task.predict(), task.problem_reference()
    seconds = time.perf_counter() - started
    experiment, problem = task.experiment, task.problem
    label = experiment.model.name
    outputs = list(problem.outputs)
    every = tuple(range(prediction.ndim - 1))
    info = {
        "experiment": experiment.name,
        "model": label,
        "problem": problem.name,
        "parameters": task.model.parameter_count(),
        "eval_seconds": seconds,
        **attrs,
    }
    whole = grid_metrics(prediction, reference, every)
    results = metrics_dataset(
        {label: {k: v[None] for k, v in whole.items()}}, channels=outputs, attrs=info
    )
    if not sharding.is_writer():
        return results  # with several processes, process 0 writes the results
    write_results(prediction_dataset(task, prediction, reference), out / "prediction.nc")
    write_results(results, out / "eval.nc")
    by_time = None
    if problem.time_dependent:
        per_slice = grid_metrics(prediction, reference, every[1:])
        times = problem.evaluation_grid()["t"]
        by_time = metrics_dataset({label: per_slice}, channels=outputs, times=times, attrs=info)
        write_results(by_time, out / "eval_by_time.nc")
    _write_summary(out / "summary.md", task, results, by_time)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    save_figure(solution_figure(task, prediction, reference), figures / "solution.png")
    module = task.model.module()
    if isinstance(module, HasCentres):
        save_figure(
            gaussians_figure(task, np.asarray(module.centres()), reference),
            figures / "gaussians.png",
        )
    if console is not None:
        print_summary(console, results, f"{experiment.name}: {problem.name}")
    return results


def _write_summary(
    path: Path, task: PhysicsTask, results: xr.Dataset, by_time: xr.Dataset | None
) -> None:
    problem, experiment = task.problem, task.experiment
    values = ", ".join(f"{k} = {v:g}" for k, v in problem.parameters().items())
    grid = problem.evaluation_grid()
    shape = " x ".join(f"{len(v)} {k}" for k, v in grid.items())
    text = (
        f"# {experiment.name}\n\nModel `{experiment.model.name}` "
        f"({task.model.parameter_count():,} parameters) on `{problem.name}` ({values}), "
        f"the final iterate after {experiment.train.epochs * task.steps_per_epoch} steps, "
        f"against the reference on a {shape} grid. `rel_l2`: |error|_2 / |reference|_2 "
        "over the grid; `max`: the largest |error|.\n\n"
        f"{markdown_table(summary_rows(results))}\n"
    )
    if by_time is not None:
        times = by_time["time"].values
        picked = np.unique(np.linspace(0, len(times) - 1, 6).round().astype(int))
        rows = [
            {"t": float(times[k]), **{m: float(by_time[m].values[0, k].mean()) for m in METRICS}}
            for k in picked
        ]
        text += f"\n## Per time\n\n{markdown_table(rows)}\n"
    write_text(path, text)


def _panels(task: PhysicsTask) -> tuple[list[str], list[int | None]]:
    """The two coordinates each image spans, and the time slices drawn (None: the whole
    2D grid)."""
    names = list(task.problem.evaluation_grid())
    if len(names) == 2:
        return names, [None]
    count = len(task.problem.evaluation_grid()[names[0]])
    return names[1:], [0, count // 2, count - 1]


def solution_figure(task: PhysicsTask, prediction: np.ndarray, reference: np.ndarray):
    """Prediction, reference and |error| of the first output: one row per time slice of a
    (2+1)D problem, one row for a 2D grid (time upwards for `(t, x)`)."""
    grid = task.problem.evaluation_grid()
    (first, second), slices = _panels(task)
    figure = new_figure(11.0, 3.0 * len(slices))
    axes = figure.subplots(len(slices), 3, squeeze=False)
    name = task.problem.outputs[0]
    low, high = float(reference[..., 0].min()), float(reference[..., 0].max())
    for row, k in zip(axes, slices, strict=True):
        fields = (prediction[..., 0], reference[..., 0])
        if k is not None:
            fields = tuple(f[k] for f in fields)
        error = np.abs(fields[0] - fields[1])
        extent = (grid[second][0], grid[second][-1], grid[first][0], grid[first][-1])
        for ax, field, title, cmap, bounds in zip(
            row,
            (*fields, error),
            ("prediction", "reference", "|error|"),
            ("viridis", "viridis", "magma"),
            ((low, high), (low, high), (0.0, float(error.max()))),
            strict=True,
        ):
            image = ax.imshow(
                field,
                origin="lower",
                aspect="auto",
                extent=extent,
                cmap=cmap,
                vmin=bounds[0],
                vmax=bounds[1],
            )
            when = "" if k is None else f" at t = {grid['t'][k]:.3g}"
            ax.set_title(f"{name}: {title}{when}")
            ax.set_xlabel(second)
            ax.set_ylabel(first)
            figure.colorbar(image, ax=ax)
    return figure


def gaussians_figure(task: PhysicsTask, centres: np.ndarray, reference: np.ndarray):
    """The Gaussians' centres (channels, N, d) over the reference: in the plane of the
    last two coordinates (a (2+1)D problem's at its last time)."""
    grid = task.problem.evaluation_grid()
    names = list(grid)
    first, second = names[-2], names[-1]
    field = reference[..., 0] if len(names) == 2 else reference[-1, ..., 0]
    figure = new_figure(6.0, 5.0)
    ax = figure.subplots()
    extent = (grid[second][0], grid[second][-1], grid[first][0], grid[first][-1])
    ax.imshow(field, origin="lower", aspect="auto", extent=extent, cmap="Greys", alpha=0.6)
    points = centres.reshape(-1, centres.shape[-1])
    ax.scatter(points[:, -1], points[:, -2], s=4, c="tab:red")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(second)
    ax.set_ylabel(first)
    ax.set_title(f"{len(points)} Gaussian centres")
    return figure
