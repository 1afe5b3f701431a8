"""Runs from the top: train an experiment and evaluate it, resume a run, re-evaluate a run.

Training and evaluation stay apart (the trainer never calls evaluation); these functions call
one after the other. What differs between kinds of experiment (`task:`) is registered here as
a `TaskKind`: how to build the task for training and for a trained run, what the run records
about its data, and how to evaluate.

A run folder `runs/<experiment>/<timestamp>/` holds `config.yaml` (the resolved experiment:
every default, and what was derived from the data, such as the PDE parameters the model
takes), `data.json` (the files, split sizes and the training data's PDE-parameter values),
`metrics.jsonl`, `checkpoints/`, and the evaluation's outputs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flax import nnx
from rich.console import Console

from surrogates.atomic import write_text
from surrogates.config import (
    EVALUATION_KEYS,
    RESUME_KEYS,
    Experiment,
    check_run_overrides,
    load_experiment,
    resolved_yaml,
)
from surrogates.errors import ConfigError, Interrupted, TrainingError
from surrogates.evaluation.operator import evaluate_operator_run
from surrogates.evaluation.physics import evaluate_physics_run
from surrogates.runs import new_folder, read_jsonl
from surrogates.training import sharding
from surrogates.training.checkpoints import Checkpoints
from surrogates.training.files import resolve_other_files
from surrogates.training.operator_task import OperatorTask
from surrogates.training.physics_task import PhysicsTask
from surrogates.training.task import Task
from surrogates.training.trainer import Trainer, load_selected


@dataclass(frozen=True)
class TaskKind:
    """How the top level handles experiments of one `task:` kind.

    - `train_task(experiment, model)`: the task to train (`model`: one built by hand, or None).
    - `eval_task(experiment, files, stride_x, model)`: the task of a trained run for
      evaluation, on other files or another grid if given (`model`: one built by hand, or
      None).
    - `record(task)`: the task's experiment with what was derived from the data filled in
      (for `config.yaml`), and the JSON facts of the data for `data.json`.
    - `evaluate(task, run, out, *, files, stride_x, console, attrs)`: write the evaluation of
      the task's current model to `out`.
    """

    train_task: Callable[[Any, nnx.Module | None], Task]
    eval_task: Callable[[Any, list[Path] | None, int | None, nnx.Module | None], Task]
    record: Callable[[Any], tuple[Experiment, dict[str, Any]]]
    evaluate: Callable[..., Any]


_KINDS: dict[str, TaskKind] = {}


def register_task(kind: str, handling: TaskKind) -> None:
    """Handle experiments with `task: <kind>` (its schema registers with
    `surrogates.config.register_experiment`)."""
    _KINDS[kind] = handling


def _kind(experiment: Experiment) -> TaskKind:
    if experiment.task not in _KINDS:
        raise ConfigError(f"task: no trainer for task {experiment.task!r}")
    return _KINDS[experiment.task]


def train(
    experiment: Experiment, *, progress: bool = True, model: nnx.Module | None = None
) -> Path:
    """Train `experiment` in a new run folder under `run.root`, then evaluate the selected
    checkpoint there; returns the folder. `model` replaces the config's model (one built by
    hand); it holds the selected checkpoint's weights afterwards."""
    kind = _kind(experiment)
    # Joined before anything asks which process this is (the run folder, for one).
    sharding.initialise_distributed(experiment.run.distributed)
    folder = _new_folder(Path(experiment.run.root) / experiment.name, "run.root")
    try:
        task = kind.train_task(experiment, model)
    except BaseException:
        # Nothing ran: leave no empty run folder behind.
        if sharding.is_writer():
            shutil.rmtree(folder)
        raise
    resolved, facts = kind.record(task)
    if sharding.is_writer():
        write_text(folder / "config.yaml", resolved_yaml(resolved))
        write_text(folder / "data.json", json.dumps(facts, indent=1) + "\n")
    _fit(kind, task, experiment, folder, progress, resume=False, model=model)
    return folder


def resume(
    folder: Path,
    *,
    progress: bool = True,
    overrides: Sequence[str] = (),
    model: nnx.Module | None = None,
) -> Path:
    """Continue the run in `folder` from its latest checkpoint, then evaluate it. `overrides`
    (`key=value`) may change its evaluation and its epochs (`RESUME_KEYS`); `config.yaml`
    then records them. `model`: for a run trained on a model built by hand, one of the same
    structure (its weights are replaced by the checkpoint's)."""
    experiment = _run_experiment(folder, overrides, RESUME_KEYS, "--resume")
    kind = _kind(experiment)
    sharding.initialise_distributed(experiment.run.distributed)
    task = kind.train_task(experiment, model)
    _fit(kind, task, experiment, folder, progress, resume=True, overrides=overrides, model=model)
    return folder


def evaluate(
    folder: Path,
    *,
    data: list[Path] | None = None,
    stride_x: int | None = None,
    console: Console | None = None,
    overrides: Sequence[str] = (),
    name: str | None = None,
    model: nnx.Module | None = None,
) -> Path:
    """Re-evaluate the run in `folder` (the checkpoint `train.select` names) into
    `folder/evaluations/<stamp>/` (or `<name>/`, replacing an earlier one once complete), on
    other files (`data`, all their trajectories), at another spatial stride, or with other
    evaluation settings (`overrides` of `EVALUATION_KEYS`, such as `eval.rollout_steps=20`).
    A failed evaluation leaves no folder behind. `model`: for a run trained on a model built
    by hand, one of the same structure (its weights are replaced by the checkpoint's)."""
    experiment = _run_experiment(folder, overrides, EVALUATION_KEYS, "evaluate")
    kind = _kind(experiment)
    sharding.initialise_distributed(experiment.run.distributed)
    task = kind.eval_task(experiment, data, stride_x, model)
    checkpoints = Checkpoints(folder / "checkpoints")
    try:
        epoch = load_selected(task, checkpoints, experiment.train.select, folder)
    finally:
        checkpoints.close()
    _hand_back(task, model)
    attrs: dict[str, Any] = {"checkpoint_epoch": epoch}
    if overrides:
        attrs["overrides"] = " ".join(overrides)
    if name is None:
        out, earlier = _new_folder(folder / "evaluations"), None
    elif sharding.is_writer():
        out, earlier = _set_aside(folder / "evaluations" / name)
    else:
        out, earlier = folder / "evaluations" / name, None
    try:
        kind.evaluate(
            task, folder, out, files=data, stride_x=stride_x, console=console, attrs=attrs
        )
    except BaseException:
        if sharding.is_writer():
            shutil.rmtree(out, ignore_errors=True)
            if earlier is not None:
                earlier.rename(out)
        raise
    if earlier is not None:
        shutil.rmtree(earlier)
    _say_where(console, out)
    return out


def _new_folder(parent: Path, setting: str | None = None) -> Path:
    """`new_folder`; with several processes, the one process 0 made, in every process."""
    made = str(new_folder(parent, setting)) if sharding.is_writer() else ""
    return Path(sharding.agree(made))


def _hand_back(task: Task, model: nnx.Module | None) -> None:
    """Put the task's weights (the selected checkpoint's) into `model`, the model built by
    hand that the task trained or loaded: the training steps donated its own buffers."""
    if model is None:
        return
    inner = task.model.module()
    for name in task.model_path:
        inner = getattr(inner, name)
    nnx.update(model, nnx.state(inner))


def _say_where(console: Console | None, out: Path) -> None:
    if console is not None and sharding.is_writer():
        console.print(f"results in {out}: eval.nc, summary.md, figures/")


def _set_aside(out: Path) -> tuple[Path, Path | None]:
    """Make the empty folder `out` for an evaluation that replaces the one there, which
    waits in `<out>.old` until the new one is complete (and comes back if it fails); an
    `.old` left by a killed evaluation is the complete one. Returns `out` and the set-aside
    folder, if any."""
    earlier = out.with_name(f"{out.name}.old")
    if earlier.exists():
        shutil.rmtree(out, ignore_errors=True)
    elif out.exists():
        out.rename(earlier)
    else:
        earlier = None
    out.mkdir(parents=True)
    return out, earlier


def _run_experiment(
    folder: Path, overrides: Sequence[str] = (), allowed: tuple[str, ...] = (), command: str = ""
) -> Experiment:
    config = folder / "config.yaml"
    if not config.exists():
        raise TrainingError(f"{folder}: not a run folder (no config.yaml)")
    check_run_overrides(list(overrides), allowed, command)
    return load_experiment(config, list(overrides))


def _fit(
    kind: TaskKind,
    task: Task,
    experiment: Experiment,
    folder: Path,
    progress: bool,
    resume: bool,
    overrides: Sequence[str] = (),
    model: nnx.Module | None = None,
) -> None:
    """Train `task` (or continue it), then evaluate the selected checkpoint on the
    experiment's split and on `eval.other_files`; `model`, the model built by hand that the
    task trains, holds the selected weights afterwards and is the one evaluated."""
    trainer = Trainer(task, experiment.train, folder, progress=progress)
    try:
        if resume:
            trainer.resume()
            if overrides and sharding.is_writer():
                _record_overrides(folder, experiment, overrides)
        trainer.fit()
        epoch = trainer.select()
    finally:
        trainer.close()
    _hand_back(task, model)
    seconds = sum(record["seconds"] for record in read_jsonl(folder / "metrics.jsonl"))
    console = Console(stderr=True) if progress else None
    try:
        kind.evaluate(
            task,
            folder,
            folder,
            files=None,
            stride_x=None,
            console=console,
            attrs={"train_seconds": seconds, "checkpoint_epoch": epoch},
        )
        _say_where(console, folder)
        _evaluate_other_files(experiment, folder, progress, model)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted while evaluating; the trained checkpoints are kept; "
            f"`surrogates evaluate {folder}` evaluates them"
        ) from None


def other_file_groups(experiment: Experiment) -> dict[str, list[str]]:
    """`eval.other_files` of an experiment kind that has it, else none."""
    return dict(getattr(getattr(experiment, "eval", None), "other_files", None) or {})


def _evaluate_other_files(
    experiment: Experiment, folder: Path, progress: bool, model: nnx.Module | None
) -> None:
    """`eval.other_files`: each group into `evaluations/<name>/`, with `model` if the run
    trained one built by hand. A resumed run evaluates its final checkpoint again: the new
    evaluation replaces the earlier one once it is complete."""
    for name, entries in other_file_groups(experiment).items():
        files = resolve_other_files(experiment.data, entries)
        console = Console(stderr=True) if progress else None
        evaluate(folder, data=files, console=console, name=name, model=model)


def _record_overrides(folder: Path, experiment: Experiment, overrides: Sequence[str]) -> None:
    """Rewrite `config.yaml` with the overrides of a resume, keeping their history as
    comments at its top."""
    config = folder / "config.yaml"
    history = [line for line in config.read_text().splitlines() if line.startswith("#")]
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    history.append(f"# resumed {stamp} with -o {' -o '.join(overrides)}")
    write_text(config, "\n".join(history) + "\n" + resolved_yaml(experiment))


register_task(
    "operator",
    TaskKind(
        train_task=lambda experiment, model: OperatorTask.for_training(experiment, model=model),
        eval_task=OperatorTask.for_evaluation,
        record=OperatorTask.record,
        evaluate=evaluate_operator_run,
    ),
)


def _physics_evaluation_task(
    experiment: Any, files: list[Path] | None, stride_x: int | None, model: nnx.Module | None
) -> PhysicsTask:
    """A physics run evaluates on its problem's grid: no data files, no stride."""
    if files is not None or stride_x is not None:
        raise ConfigError(
            f"{experiment.name}: a physics run is evaluated on its problem's grid; "
            "--data and --stride-x apply to operator runs"
        )
    return PhysicsTask(experiment, model)


register_task(
    "physics",
    TaskKind(
        train_task=lambda experiment, model: PhysicsTask(experiment, model),
        eval_task=_physics_evaluation_task,
        record=lambda task: (task.experiment, task.facts()),
        evaluate=evaluate_physics_run,
    ),
)
