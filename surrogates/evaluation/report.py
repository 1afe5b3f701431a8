"""Evaluate a trained run and write what a person reads: `eval.nc`, `summary.md`, `figures/`.

After training, the best checkpoint is evaluated on the test split inside the run folder.
`evaluate_run(folder, data=..., stride_x=...)` re-evaluates a finished run, also on other
files or at another resolution (the operator models run at any grid size), into a new
`evaluations/<timestamp>/` folder of the run.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from surrogates.atomic import write_text
from surrogates.config import Experiment, load_experiment
from surrogates.errors import TrainingError
from surrogates.evaluation.plots import plot_error_vs_step, plot_snapshots
from surrogates.evaluation.results import metrics_dataset, summary_rows, write_results
from surrogates.evaluation.rollouts import PERSISTENCE, score_rollouts
from surrogates.evaluation.tables import markdown_table, rich_table
from surrogates.runs import new_folder
from surrogates.training import sharding
from surrogates.training.checkpoints import Checkpoints
from surrogates.training.engine import (
    Model,
    Session,
    build_stepper,
    make_optimizer_for,
    predict_trajectories,
    set_active_modes,
)
from surrogates.training.inputs import ExperimentData, load_data, read_split
from surrogates.training.steps import make_predict


def evaluate_session(session: Session, *, console: Console | None = None) -> list[dict]:
    """Evaluate a finished training session's best checkpoint into its run folder."""
    if session.model.trainable:
        session.state, meta = session.checkpoints.restore(session.state, best=True)
        if "n_modes" in meta:
            # The best epoch may have trained fewer incremental modes than the last one.
            session.model = set_active_modes(session.model, tuple(meta["n_modes"]))
    experiment, data = session.experiment, session.data
    indices = getattr(data.splits, experiment.eval.split)
    return write_evaluation(
        session.model,
        session.mesh,
        experiment,
        data,
        indices,
        session.folder,
        console=console,
        source=f"{experiment.eval.split} split",
    )


def evaluate_run(
    folder: Path,
    *,
    data: list[Path] | None = None,
    stride_x: int | None = None,
    console: Console | None = None,
) -> Path:
    """Re-evaluate the run in `folder` (best checkpoint) into `folder/evaluations/<stamp>/`.

    data: other files to evaluate on (all their trajectories); default the run's own test
    split. stride_x: another spatial stride than the run's, e.g. 1 to evaluate at a finer
    grid than a model trained with stride 2.
    """
    config = folder / "config.yaml"
    if not config.exists():
        raise TrainingError(f"{folder}: not a run folder (no config.yaml)")
    experiment = load_experiment(config)
    spec = experiment.data
    if data is not None:
        spec = spec.model_copy(
            update={"split": spec.split.model_copy(update={"val": 0.0, "test": 0.0})}
        )
    # The normalisation statistics come with the checkpoint.
    loaded = load_data(spec, paths=data, stride_x=stride_x, statistics=False)
    if data is not None:
        indices = np.arange(len(loaded.dataset))
        source = ", ".join(map(str, data))
    else:
        indices = getattr(loaded.splits, experiment.eval.split)
        source = f"{experiment.eval.split} split"
    mesh = sharding.data_mesh()
    model = restore_model(experiment, loaded, folder, mesh)
    out = new_folder(folder / "evaluations")
    stride = spec.stride_x if stride_x is None else stride_x
    write_evaluation(
        model,
        mesh,
        experiment,
        loaded,
        indices,
        out,
        console=console,
        source=f"{source}, stride_x {stride}",
    )
    return out


def restore_model(experiment: Experiment, data: ExperimentData, folder: Path, mesh) -> Model:
    """The run's best checkpoint (else its latest) in a model sized for `data`."""
    model = Model.of(build_stepper(experiment, data), mesh)
    if not model.trainable:
        return model
    # The optimizer state is part of a checkpoint, so its structure is needed to read one.
    tx, _ = make_optimizer_for(experiment, steps_per_epoch=1)
    checkpoints = Checkpoints(folder / "checkpoints")
    try:
        best = checkpoints.latest_epoch(best=True) is not None
        if not best and checkpoints.latest_epoch() is None:
            raise TrainingError(f"{folder}: no checkpoint to evaluate")
        state = (model.params, model.rest, tx.init(model.params))
        (model.params, model.rest, _), meta = checkpoints.restore(state, best=best)
    finally:
        checkpoints.close()
    if "n_modes" in meta:
        # Trained with incremental modes: evaluate with the modes the weights were trained at.
        model = set_active_modes(model, tuple(meta["n_modes"]))
    return model


def write_evaluation(
    model: Model,
    mesh,
    experiment: Experiment,
    data: ExperimentData,
    indices: np.ndarray,
    out: Path,
    *,
    console: Console | None,
    source: str,
) -> list[dict]:
    """Roll out trajectories `indices`, score them against persistence, write the results."""
    history = experiment.data.history
    steps = experiment.eval.rollout_steps or data.frames - history
    if history + steps > data.frames:
        raise TrainingError(
            f"eval.rollout_steps: {steps} steps after {history} history frames need "
            f"{history + steps} frames, the data has {data.frames}"
        )
    fields = read_split(data, indices)
    prediction = predict_trajectories(
        model, make_predict(model.graphdef), mesh, experiment, data, indices, fields, steps
    )
    label = experiment.model.name
    scores = score_rollouts(
        prediction,
        fields,
        history=history,
        metrics=list(experiment.eval.metrics),
        label=label,
        baseline=label != PERSISTENCE,  # the baseline run is its own baseline
    )
    times = data.dataset.coords["t"][history : history + steps]
    results = metrics_dataset(
        scores,
        channels=data.channels,
        times=times,
        attrs={
            "experiment": experiment.name,
            "model": label,
            "data": source,
            "trajectories": len(indices),
            "history": history,
            "parameters": parameter_count(model.params),
        },
    )
    write_results(results, out / "eval.nc")
    rows = summary_rows(results)
    _write_summary(out / "summary.md", experiment, source, len(indices), steps, rows)
    figures = out / "figures"
    if "nrmse" in results:
        plot_error_vs_step(results, figures / "error_vs_step.png")
    coords = {
        axis: data.dataset.coords[axis] for axis in ("x", "y", "z") if axis in data.dataset.coords
    }
    coords["t"] = times
    for k in range(min(experiment.eval.snapshots, len(indices))):
        truth = fields[k, history : history + steps]
        plot_snapshots(
            prediction[k],
            truth,
            figures / f"snapshot_{k}.png",
            channel_names=data.channels,
            coords=coords,
        )
    if console is not None:
        # One row per metric keeps the table readable in an 80-column terminal.
        by_metric = [
            {"metric": key, **{row["model"]: row[key] for row in rows}}
            for key in rows[0]
            if key != "model"
        ]
        title = f"{experiment.name}: {_task(experiment, steps)}, {source}"
        console.print(rich_table(by_metric, title))
        console.print(f"results: {out / 'eval.nc'}, {out / 'summary.md'}, figures in {figures}")
    return rows


def _write_summary(
    path: Path, experiment: Experiment, source: str, trajectories: int, steps: int, rows
) -> None:
    text = (
        f"# {experiment.name}\n\n"
        f"Model `{experiment.model.name}`, {_task(experiment, steps)}, "
        f"on {trajectories} trajectories ({source}). "
        "Metrics are averaged over samples, steps and channels; `nrmse_last` is the last "
        "step's nRMSE.\n\n"
        f"{markdown_table(rows)}\n"
    )
    write_text(path, text)


def parameter_count(params) -> int:
    """Trainable numbers in a parameter tree (a complex weight stored as two real arrays
    counts twice, as neuraloperator counts complex parameters).
    """
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def _task(experiment: Experiment, steps: int) -> str:
    """What was evaluated, in words."""
    history = experiment.data.history
    if history == 0:
        return "solution from the static inputs"
    return f"autoregressive rollout of {steps} steps from {history} frames"
