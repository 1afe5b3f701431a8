"""The training engine: an experiment in, a run folder out.

`train(experiment)` prepares the data, builds the model behind a `Stepper`, runs the compiled
step for every batch of every epoch (curriculum value per epoch, progress bar, NaN check),
logs `metrics.jsonl`, checkpoints the latest and the best validation rollout, and finally
evaluates the best checkpoint on the test split (`eval.nc`, `summary.md`, `figures/`).
`resume(run_folder)` continues a run from its latest checkpoint with the same numbers an
uninterrupted run would give.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from surrogates.atomic import write_text
from surrogates.config import Experiment, load_experiment, resolved_yaml
from surrogates.data.windows import WindowSampler
from surrogates.errors import ModelError, TrainingError
from surrogates.models import multigrid, registry
from surrogates.runs import append_jsonl, new_folder, read_jsonl
from surrogates.training import curriculum as curricula
from surrogates.training import sharding
from surrogates.training.checkpoints import Checkpoints
from surrogates.training.inputs import ExperimentData, TrainBatches, load_data, read_split
from surrogates.training.optimizers import learning_rate_schedule, make_optimizer
from surrogates.training.stepper import Stepper
from surrogates.training.steps import make_predict, make_train_step


def build_stepper(
    experiment: Experiment, data: ExperimentData, model: nnx.Module | None = None
) -> Stepper:
    """The configured model (or `model`, built by hand) behind a `Stepper`, sized from the
    data: the operator sees `Cs + history * C` input channels (static inputs first) and
    predicts `C`.
    """
    channels, history = len(data.channels), experiment.data.history
    if history == 0 and experiment.train.residual:
        raise TrainingError("train.residual: needs history frames to add the output to")
    if model is None:
        in_channels = len(data.static_names) + history * channels
        model = build_model(experiment, data, in_channels=in_channels)
    return Stepper(
        model,
        history=history,
        channels=channels,
        mean=data.mean,
        std=data.std,
        residual=experiment.train.residual,
        static_channels=len(data.static_names),
        static_mean=data.static_mean,
        static_std=data.static_std,
    )


def build_model(experiment: Experiment, data: ExperimentData, *, in_channels: int) -> nnx.Module:
    """The config's model from the registry, checked against the data's dimension, inside
    multi-grid patching if `model.multigrid` asks for it.
    """
    arguments = experiment.model.arguments()
    n_modes = arguments.get("n_modes")
    if n_modes is not None and len(n_modes) != len(data.spatial):
        raise TrainingError(
            f"model.n_modes: {len(n_modes)} entries for data with {len(data.spatial)} "
            f"spatial axes {data.spatial}"
        )
    patching = experiment.model.multigrid
    if patching is not None:
        try:
            multigrid.check_patching(data.spatial, patching.levels, patching.padding)
        except ModelError as error:
            raise TrainingError(f"model.multigrid: {error}") from None
        in_channels = multigrid.in_channels_for(in_channels, patching.levels)
    model = registry.build(
        experiment.model.name,
        in_channels=in_channels,
        out_channels=len(data.channels),
        rngs=nnx.Rngs(experiment.train.seed),
        **arguments,
    )
    if patching is None:
        return model
    return multigrid.Multigrid(
        model, levels=patching.levels, padding=patching.padding, stitching=patching.stitching
    )


def operator_of(stepper: Stepper) -> nnx.Module:
    """The operator model inside a stepper (inside multi-grid patching, if any)."""
    model = stepper.model
    return model.operator if isinstance(model, multigrid.Multigrid) else model


def modes_schedule(experiment: Experiment) -> Callable[[int], tuple[int, ...]] | None:
    """Active Fourier modes per epoch under `train.incremental` (None without it): from
    `start_modes`, `step` more every `every_epochs` epochs, up to the model's `max_n_modes`
    (else `n_modes`).
    """
    spec = experiment.train.incremental
    if spec is None:
        return None
    arguments = experiment.model.arguments()
    final = arguments.get("max_n_modes") or arguments.get("n_modes")
    if final is None:
        raise TrainingError(
            f"train.incremental: model {experiment.model.name} has no n_modes to grow"
        )
    if len(spec.start_modes) != len(final) or any(
        s > f for s, f in zip(spec.start_modes, final, strict=True)
    ):
        raise TrainingError(
            f"train.incremental.start_modes: {spec.start_modes} must have one entry per axis, "
            f"each at most the model's modes {list(final)}"
        )

    def modes(epoch: int) -> tuple[int, ...]:
        grown = spec.step * (epoch // spec.every_epochs)
        return tuple(min(s + grown, f) for s, f in zip(spec.start_modes, final, strict=True))

    return modes


def set_active_modes(model: Model, modes: tuple[int, ...]) -> Model:
    """`model` with its operator's active Fourier modes set to `modes` (same arrays, a new
    static graph, so compiled functions must be rebuilt).
    """
    stepper = nnx.merge(model.graphdef, model.params, model.rest)
    operator = operator_of(stepper)
    if not hasattr(operator, "set_n_modes"):
        raise TrainingError(
            f"train.incremental: {type(operator).__name__} has no Fourier modes to set"
        )
    operator.set_n_modes(modes)
    graphdef, params, rest = nnx.split(stepper, nnx.Param, ...)
    # The arrays are the ones that came in, with their shardings.
    return Model(graphdef, params, rest)


def make_curriculum(experiment: Experiment) -> curricula.Curriculum:
    spec, train = experiment.train.curriculum, experiment.train
    steps = train.rollout_steps
    if spec.name == "teacher_forcing":
        return curricula.teacher_forcing()
    if spec.name == "autoregressive":
        return curricula.autoregressive(steps)
    if spec.name == "linear":
        return curricula.linear(steps, spec.start_epoch, spec.end_epoch)
    if spec.name == "cape_sigmoid":
        return curricula.cape_sigmoid(
            steps, experiment.data.history, train.epochs, spec.warmup_epochs
        )
    return curricula.staged(steps, spec.stages)


def make_optimizer_for(
    experiment: Experiment, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The experiment's optimizer and learning-rate schedule (in optimizer steps)."""
    train = experiment.train
    schedule = learning_rate_schedule(
        train.schedule.name,
        train.optimizer.lr,
        steps_per_epoch=steps_per_epoch,
        epochs=train.epochs,
        warmup_epochs=train.schedule.warmup_epochs,
        step_epochs=train.schedule.step_epochs,
        gamma=train.schedule.gamma,
        final_fraction=train.schedule.final_fraction,
    )
    tx = make_optimizer(
        train.optimizer.name,
        schedule,
        weight_decay=train.optimizer.weight_decay,
        clip_norm=train.optimizer.clip_norm,
    )
    return tx, schedule


@dataclass
class Model:
    """A stepper split for compiled use: static graph, parameters, other variables."""

    graphdef: nnx.GraphDef
    params: nnx.State
    rest: nnx.State

    @classmethod
    def of(cls, stepper: Stepper, mesh) -> Model:
        graphdef, params, rest = nnx.split(stepper, nnx.Param, ...)
        replicated = sharding.replicated(mesh)
        return cls(
            graphdef, sharding.put_tree(params, replicated), sharding.put_tree(rest, replicated)
        )

    @property
    def trainable(self) -> bool:
        return bool(jax.tree.leaves(self.params))


class Session:
    """A run in progress: data, model, optimizer, compiled functions, run folder.

    `model` replaces the config's `model` section with an operator built by hand (in a
    notebook, say); it must take `Cs + history * C` channels in (static inputs first) and
    give `C` out.
    """

    def __init__(
        self,
        experiment: Experiment,
        folder: Path,
        mesh: Mesh | None = None,
        model: nnx.Module | None = None,
    ):
        self.experiment, self.folder = experiment, folder
        if mesh is None:
            sharding.initialise_distributed(experiment.run.distributed)
            mesh = sharding.data_mesh()
        self.mesh = mesh
        sharding.check_divisible(experiment.train.batch_size, self.mesh, "train.batch_size")
        self.data = load_data(experiment.data)
        split = experiment.eval.split
        if len(getattr(self.data.splits, split)) == 0:
            # Found out now rather than after training.
            raise TrainingError(
                f"eval.split: no {split} trajectories to evaluate (data.split.{split} is 0)"
            )
        train = experiment.train
        self.window = experiment.data.history + train.rollout_steps
        if self.window > self.data.frames:
            raise TrainingError(
                f"data.history + train.rollout_steps = {self.window} frames, but the "
                f"trajectories have {self.data.frames} (after data.stride_t)"
            )
        self.sampler = WindowSampler(
            trajectories=len(self.data.splits.train),
            frames=self.data.frames,
            window=self.window,
            windows_per_trajectory=experiment.data.windows_per_trajectory,
            batch_size=train.batch_size,
            seed=train.seed,
        )
        self.model = Model.of(build_stepper(experiment, self.data, model), self.mesh)
        self.tx, self.schedule = make_optimizer_for(experiment, self.sampler.steps_per_epoch)
        # Placed like the parameters, so the step's first call sees the same input shardings
        # as every later one and compiles once.
        self.opt_state = sharding.put_tree(
            self.tx.init(self.model.params), sharding.replicated(self.mesh)
        )
        self.curriculum = make_curriculum(experiment)
        self.modes = modes_schedule(experiment)
        self.active_modes: tuple[int, ...] | None = None
        self._compile()
        self.batches = TrainBatches(self.data, self.sampler, self.mesh, experiment.data.memory_gb)
        self.checkpoints = Checkpoints(folder / "checkpoints")
        self.best = math.inf
        self.start_epoch = 0
        self._val_fields: np.ndarray | None = None

    def _compile(self) -> None:
        """The compiled step and rollout for the model's current static graph."""
        train = self.experiment.train
        self.step = make_train_step(
            self.model.graphdef,
            self.tx,
            window=self.window,
            loss=train.loss,
            pushforward=train.pushforward,
            remat=train.remat,
            batch_sharding=sharding.batch_sharded(self.mesh),
            micro_batches=train.micro_batches,
        )
        self.predict = make_predict(self.model.graphdef)

    def set_modes(self, epoch: int) -> None:
        """Active Fourier modes for `epoch` under `train.incremental` (recompiles on a change)."""
        if self.modes is None or self.modes(epoch) == self.active_modes:
            return
        self.active_modes = self.modes(epoch)
        self.model = set_active_modes(self.model, self.active_modes)
        self._compile()

    @property
    def state(self) -> tuple:
        return (self.model.params, self.model.rest, self.opt_state)

    @state.setter
    def state(self, value: tuple) -> None:
        self.model.params, self.model.rest, self.opt_state = value

    def restore_latest(self) -> None:
        self.state, meta = self.checkpoints.restore(self.state)
        self.start_epoch, self.best = int(meta["epoch"]), float(meta["best"])

    def run_epoch(
        self, epoch: int, on_step: Callable[[float], None] | None = None
    ) -> tuple[float, float]:
        """Every step of `epoch`; returns the mean loss and the seconds spent waiting for data.

        Each step's loss is read back one step late, so the host never stalls the device
        queue; a NaN or Inf loss stops the run naming the epoch and step.
        """
        self.set_modes(epoch)
        n_ar = jnp.asarray(self.curriculum(epoch), jnp.int32)
        batches, waited, losses = self.batches.epoch(epoch), 0.0, []
        for k in range(self.sampler.steps_per_epoch):
            started = time.perf_counter()
            batch = next(batches)
            waited += time.perf_counter() - started
            params, self.opt_state, loss = self.step(
                self.model.params, self.opt_state, self.model.rest, *batch, n_ar
            )
            self.model.params = params
            if losses:
                self._report(losses[-1], epoch, k, on_step)
            losses.append(loss)
        self._report(losses[-1], epoch, len(losses), on_step)
        return float(jnp.mean(jnp.stack(losses))), waited

    @staticmethod
    def _report(loss: jax.Array, epoch: int, step: int, on_step) -> None:
        value = float(loss)
        if not math.isfinite(value):
            raise TrainingError(
                f"training diverged: loss is {value} at epoch {epoch + 1}, step {step}; "
                "the last good checkpoint is kept (try a lower train.optimizer.lr or "
                "train.optimizer.clip_norm)"
            )
        if on_step is not None:
            on_step(value)

    def rollout(
        self, indices: np.ndarray, steps: int | None = None, fields: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rollouts of trajectories `indices` from their first `history` frames with the
        current weights, and the true frames they predict: two (n, steps, *X, C) arrays.
        `fields` are those trajectories if already read.
        """
        fields = read_split(self.data, indices) if fields is None else fields
        prediction = predict_trajectories(
            self.model, self.predict, self.mesh, self.experiment, self.data, indices, fields, steps
        )
        history = self.experiment.data.history
        return prediction, fields[:, history : history + prediction.shape[1]]

    def validation_error(self) -> float:
        """Mean rollout nRMSE over the whole validation trajectories (read once per run)."""
        from surrogates.evaluation.metrics import nrmse

        indices = self.data.splits.val
        if self._val_fields is None:
            self._val_fields = read_split(self.data, indices)
        prediction, truth = self.rollout(indices, fields=self._val_fields)
        return float(np.mean(nrmse(prediction, truth)))


def predict_trajectories(
    model: Model,
    predict,
    mesh,
    experiment: Experiment,
    data: ExperimentData,
    indices: np.ndarray,
    fields: np.ndarray,
    steps: int | None = None,
) -> np.ndarray:
    """Rollouts of trajectories `indices` (fields (n, T, *X, C)) from their first `history`
    frames: (n, steps, *X, C), `steps` defaulting to the rest of the trajectory.
    """
    from surrogates.evaluation.rollouts import predict_all

    history, batch_size = experiment.data.history, experiment.eval.batch_size
    steps = data.frames - history if steps is None else steps
    batched = sharding.batch_sharded(mesh)
    divisible = batch_size % mesh.size == 0

    def run(context: np.ndarray, params: np.ndarray | None, static: np.ndarray | None):
        if divisible:
            context, params, static = (
                None if a is None else sharding.put(a, batched) for a in (context, params, static)
            )
        return predict(model.params, model.rest, context, params, static, steps)

    return predict_all(
        run,
        fields,
        data.param_table(indices),
        data.static_rows(indices),
        history=history,
        batch_size=batch_size,
    )


def train(experiment: Experiment, *, progress: bool = True) -> Path:
    """Train `experiment` in a new run folder under `run.root`; returns the folder."""
    folder = new_folder(Path(experiment.run.root) / experiment.name)
    write_text(folder / "config.yaml", resolved_yaml(experiment))
    try:
        session = Session(experiment, folder)
    except BaseException:
        # Nothing ran: leave no empty run folder behind.
        shutil.rmtree(folder)
        raise
    _fit(session, progress)
    return folder


def resume(folder: Path, *, progress: bool = True) -> Path:
    """Continue the run in `folder` from its latest checkpoint."""
    config = folder / "config.yaml"
    if not config.exists():
        raise TrainingError(f"{folder}: not a run folder (no config.yaml)")
    session = Session(load_experiment(config), folder)
    if session.checkpoints.latest_epoch() is None:
        raise TrainingError(f"{folder}: no checkpoint to resume from")
    session.restore_latest()
    log = folder / "metrics.jsonl"
    kept = [r for r in read_jsonl(log) if r["epoch"] <= session.start_epoch]
    write_text(log, "".join(f"{json.dumps(r)}\n" for r in kept))
    _fit(session, progress)
    return folder


def _fit(session: Session, progress: bool) -> None:
    experiment = session.experiment
    train = experiment.train
    console = Console(stderr=True)
    if session.model.trainable:
        columns = (
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("lr {task.fields[lr]}"),
            TimeRemainingColumn(),
        )
        total = (train.epochs - session.start_epoch) * session.sampler.steps_per_epoch
        with Progress(*columns, console=console, disable=not progress) as bar:
            task = bar.add_task("train", total=total, epoch="", loss="-", lr="-")
            for epoch in range(session.start_epoch, train.epochs):
                _epoch(session, epoch, bar, task)
    from surrogates.evaluation.report import evaluate_session

    try:
        evaluate_session(session, console=console if progress else None)
    finally:
        session.checkpoints.close()


def _epoch(session: Session, epoch: int, bar: Progress, task) -> None:
    train = session.experiment.train
    started = time.perf_counter()
    lr = float(session.schedule(epoch * session.sampler.steps_per_epoch))
    bar.update(task, epoch=f"{epoch + 1}/{train.epochs}", lr=f"{lr:.2e}")

    def shown(loss: float) -> None:
        bar.update(task, advance=1, loss=f"{loss:.3e}")

    train_loss, waited = session.run_epoch(epoch, on_step=shown)
    has_val = len(session.data.splits.val) > 0
    val = session.validation_error() if has_val else train_loss
    is_best = val < session.best
    session.best = min(session.best, val)
    record = {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "val_nrmse": val if has_val else None,
        "lr": lr,
        "n_ar": session.curriculum(epoch),
        **({"n_modes": list(session.active_modes)} if session.active_modes else {}),
        "seconds": time.perf_counter() - started,
        "data_wait_seconds": waited,
    }
    append_jsonl(session.folder / "metrics.jsonl", record)
    last = epoch + 1 == train.epochs
    if is_best or last or (epoch + 1) % train.checkpoint_every == 0:
        meta = {"epoch": epoch + 1, "val": val, "best": session.best}
        if session.active_modes:
            meta["n_modes"] = list(session.active_modes)
        session.checkpoints.save(session.state, meta, best=is_best)
