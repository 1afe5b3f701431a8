"""Evaluating an operator task: rollouts of the evaluation trajectories, scored against the
persistence baseline (pooled and per PDE-parameter value), written as `eval.nc`, `summary.md`
and `figures/`, and shown in the terminal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from rich.console import Console

from surrogates.config import OperatorExperiment
from surrogates.data import TrajectoryDataset
from surrogates.errors import warn
from surrogates.evaluation.plots import plot_evaluation
from surrogates.evaluation.results import metrics_dataset, summary_rows, write_results
from surrogates.evaluation.rollouts import PERSISTENCE, score_cases, score_rollouts
from surrogates.evaluation.summary import print_summary, write_summary
from surrogates.training import sharding
from surrogates.training.experiment_data import read_split
from surrogates.training.operator_task import OperatorTask, evaluation_steps


def evaluate_operator(
    task: OperatorTask,
    indices: np.ndarray,
    out: Path,
    *,
    source: str,
    seen: np.ndarray,
    console: Console | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Roll out trajectories `indices` of the task's data with its current weights, score
    them, and write the results to `out`.

    seen: (K, P) the PDE-parameter values of the training data, to mark the cases with.
    attrs: more attributes for `eval.nc` (str, int or float values).
    """
    experiment, data = task.experiment, task.data
    history = experiment.data.history
    steps = evaluation_steps(experiment, data.frames)
    started = time.perf_counter()
    fields = read_split(data, indices)
    prediction, truth = task.rollout(indices, steps, fields)
    diverged = non_finite_trajectories(prediction, indices)
    label = experiment.model.name
    scoring = {
        "history": history,
        "metrics": list(experiment.eval.metrics),
        "label": label,
        "baseline": label != PERSISTENCE,  # the baseline run is its own baseline
    }
    scores = score_rollouts(prediction, fields, **scoring)
    cases = None
    if data.param_names:
        table = data.param_table(indices, np.float64)
        cases = score_cases(prediction, fields, table, data.param_names, seen, **scoring)
    times = data.dataset.coords["t"][history : history + steps]
    results = metrics_dataset(
        scores,
        channels=data.channels,
        times=times,
        cases=cases,
        attrs={
            "experiment": experiment.name,
            "model": label,
            "data": source,
            "trajectories": len(indices),
            "history": history,
            "parameters": task.model.parameter_count(),
            "eval_seconds": time.perf_counter() - started,
            "non_finite_trajectories": len(diverged),
            **_overhead(task),
            **(attrs or {}),
        },
    )
    if not sharding.is_writer():
        return results  # with several processes, process 0 writes the results
    write_results(results, out / "eval.nc")
    what = describe(experiment, steps)
    warning = _non_finite_warning(results, diverged, len(indices), data.dataset)
    write_summary(
        out / "summary.md",
        results,
        title=experiment.name,
        description=f"Model `{label}`, {what}, on {len(indices)} trajectories ({source}). "
        + provenance(experiment, data.dataset.files, results.attrs)
        + (f"\n\n**Warning:** {warning}." if warning else ""),
    )
    coords = {
        axis: data.dataset.coords[axis] for axis in ("x", "y", "z") if axis in data.dataset.coords
    }
    plot_evaluation(
        results,
        prediction,
        truth,
        out / "figures",
        channel_names=data.channels,
        coords={**coords, "t": times},
        titles=[
            trajectory_title(data.dataset, int(i)) for i in indices[: experiment.eval.snapshots]
        ],
    )
    if console is not None:
        print_summary(console, results, f"{experiment.name}: {what}, {source}")
    if warning:
        warn(f"{out / 'eval.nc'}: {warning}")
    return results


def provenance(experiment: OperatorExperiment, files: list[Path], attrs: dict) -> str:
    """Where the results come from, in words: the data files, the training's epochs and
    the evaluated checkpoint's epoch."""
    names = ", ".join(f"`{path}`" for path in files)
    text = f"Data: {names}. Trained for {experiment.train.epochs} epochs"
    if "checkpoint_epoch" in attrs:
        text += (
            f"; evaluated the checkpoint of epoch {attrs['checkpoint_epoch']} "
            f"(train.select: {experiment.train.select})"
        )
    if "overrides" in attrs:
        text += f"; evaluated with `-o {attrs['overrides']}`"
    if "parameter_overhead" in attrs:
        kinds = ", ".join(kind for kind, _ in experiment.model.wrapper_list())
        text += (
            f". The wrappers ({kinds}) add {int(attrs['parameter_overhead']):,} of the model's "
            f"{int(attrs['parameters']):,} parameters"
        )
    return text + "."


def _overhead(task: OperatorTask) -> dict[str, int]:
    """`parameter_overhead` of a model with wrappers (see `OperatorTask`), else nothing."""
    overhead = task.parameter_overhead()
    return {} if overhead is None else {"parameter_overhead": overhead}


def trajectory_title(dataset: TrajectoryDataset, index: int) -> str:
    """Which trajectory a figure shows: its file, row and PDE parameters."""
    path, row = dataset.source(index)
    values = ", ".join(f"{name} = {dataset.params[name][index]:.4g}" for name in dataset.params)
    return f"{path.name} trajectory {row}" + (f" ({values})" if values else "")


def non_finite_trajectories(prediction: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The trajectories (of `indices`) whose predicted rollout has a NaN or Inf anywhere.

    prediction: (n, S, *X, C)."""
    finite = np.isfinite(prediction.reshape(len(prediction), -1)).all(axis=1)
    return np.asarray(indices)[~finite]


def _non_finite_warning(
    results: xr.Dataset, diverged: np.ndarray, total: int, dataset: TrajectoryDataset
) -> str | None:
    """What is NaN in the results and why, in one sentence, or None if nothing is."""
    if len(diverged):
        path, row = dataset.source(int(diverged[0]))
        return (
            f"the model's rollouts of {len(diverged)} of {total} trajectories are not finite "
            f"(the first: trajectory {row} of {path}), so its metrics are NaN"
        )
    rows = summary_rows(results)
    undefined = sorted({key for row in rows for key, value in row.items() if _is_nan(value)})
    if undefined:
        return (
            f"{', '.join(undefined)} undefined on this grid (NaN): too few points for the "
            "metric (a wavenumber band without modes, a field without variance)"
        )
    return None


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and not np.isfinite(value)


def evaluate_operator_run(
    task: OperatorTask,
    run: Path,
    out: Path,
    *,
    files: list[Path] | None,
    stride_x: int | None,
    console: Console | None,
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Evaluate the run in `run` into `out`: its `eval.split` (or every trajectory of
    `files`), the cases marked with the training values recorded in `run/data.json`. A
    re-evaluation (`out` not the run folder) names the spatial stride in the results."""
    experiment = task.experiment
    if files is None:
        indices = getattr(task.data.splits, experiment.eval.split)
        source = f"{experiment.eval.split} split"
    else:
        indices = np.arange(len(task.data.dataset))
        source = ", ".join(map(str, files))
    if out != run:
        stride = experiment.data.stride_x if stride_x is None else stride_x
        source = f"{source}, stride_x {stride}"
    seen = training_values(run, len(task.data.param_names))
    return evaluate_operator(
        task, indices, out, source=source, seen=seen, console=console, attrs=attrs
    )


def training_values(run: Path, count: int) -> np.ndarray:
    """The PDE-parameter values of the run's training split, (K, count), from `data.json`
    (none for a run that predates it)."""
    facts = run / "data.json"
    if not facts.exists():
        return np.zeros((0, count))
    seen = np.asarray(json.loads(facts.read_text())["seen"], np.float64)
    return seen.reshape(len(seen), count)


def describe(experiment: OperatorExperiment, steps: int) -> str:
    """What was evaluated, in words."""
    history = experiment.data.history
    if history == 0:
        return "solution from the static inputs"
    return f"autoregressive rollout of {steps} steps from {history} frames"
