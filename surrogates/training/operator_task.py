"""The operator task: an autoregressive (or steady) operator learned from stored trajectories.

The model (the registry's model inside its wrappers, sized from the data's `ModelContext`)
sits behind a `Stepper`. Each epoch draws windows of `history + rollout_steps` frames, the
compiled step unrolls the rollout with the curriculum's number of fed-back frames, and the
validation score is the mean rollout nRMSE over the whole validation trajectories. Under
`train.incremental` the active Fourier modes grow by epoch (the step recompiles once per
change, and checkpoints record the modes).

`OperatorTask.for_training(experiment)` opens the data with the training split's statistics;
`OperatorTask.for_evaluation(experiment, files, stride_x)` opens other files or another grid
for a trained run, whose checkpoint brings the statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from surrogates.config import OperatorExperiment
from surrogates.data.windows import WindowSampler
from surrogates.errors import TrainingError
from surrogates.metrics import nrmse
from surrogates.models.contract import (
    AdjustableModes,
    ModelContext,
    check_grid,
    operator_of,
    takes_raw_pde_params,
)
from surrogates.models.stack import build_stack
from surrogates.training import curriculum as curricula
from surrogates.training import sharding
from surrogates.training.batches import TrainBatches
from surrogates.training.experiment_data import ExperimentData, load_data, read_split
from surrogates.training.stepper import Stepper
from surrogates.training.steps import make_predict, make_train_step
from surrogates.training.task import Model, Step, initial_optimizer_state


class OperatorTask:
    """An operator model behind a `Stepper`, trained on windows of stored trajectories.

    `model` replaces the config's `model` section with an operator built by hand (in a
    notebook, say); it must take `context().in_channels` channels in (static inputs first,
    then the history frames time-major) and give `context().out_channels` out.
    """

    validation_name = "val_nrmse"
    model_path = ("model",)

    def __init__(
        self,
        experiment: OperatorExperiment,
        data: ExperimentData,
        mesh: Mesh,
        model: nnx.Module | None = None,
    ):
        self.experiment, self.data, self.mesh = experiment, data, mesh
        self.history = experiment.data.history
        if self.history == 0 and experiment.train.residual:
            raise TrainingError("train.residual: needs history frames to add the output to")
        self.model = Model.of(self._stepper(model), mesh)
        self.predict = make_predict(self.model.graphdef)
        self.active_modes: tuple[int, ...] | None = None
        self._val_fields: np.ndarray | None = None

    @classmethod
    def for_training(
        cls,
        experiment: OperatorExperiment,
        mesh: Mesh | None = None,
        model: nnx.Module | None = None,
    ) -> OperatorTask:
        """The task on the experiment's data, every setting checked against it first."""
        if mesh is None:
            sharding.initialise_distributed(experiment.run.distributed)
            mesh = sharding.data_mesh()
        train = experiment.train
        sharding.check_divisible(train.batch_size, mesh, "train.batch_size")
        data = load_data(experiment.data)
        split = experiment.eval.split
        if len(getattr(data.splits, split)) == 0:
            # Found out now rather than after training.
            raise TrainingError(
                f"eval.split: no {split} trajectories to evaluate (data.split.{split} is 0)"
            )
        window = experiment.data.history + train.rollout_steps
        if window > data.frames:
            raise TrainingError(
                f"data.history + train.rollout_steps = {window} frames, but the "
                f"trajectories have {data.frames} (after data.stride_t)"
            )
        evaluation_steps(experiment, data.frames)
        return cls(experiment, data, mesh, model)

    @classmethod
    def for_evaluation(
        cls,
        experiment: OperatorExperiment,
        files: list[Path] | None = None,
        stride_x: int | None = None,
        model: nnx.Module | None = None,
    ) -> OperatorTask:
        """The task of a trained run on other `files` (all their trajectories) or at another
        spatial stride; the PDE parameters are the run's (`data.params`), and the weights and
        statistics come from its checkpoint (into `model` if given: one built by hand)."""
        spec = experiment.data
        if files is not None:
            spec = spec.model_copy(
                update={"split": spec.split.model_copy(update={"val": 0.0, "test": 0.0})}
            )
        data = load_data(spec, paths=files, stride_x=stride_x, statistics=False)
        return cls(experiment, data, sharding.data_mesh(), model)

    def record(self) -> tuple[OperatorExperiment, dict[str, Any]]:
        """What a run records of its data: the experiment with the PDE parameters it resolved
        (`data.params`, for `config.yaml`), and the facts for `data.json`: the files, the
        split sizes, the parameter names and the training split's values of them."""
        data = self.data
        names = list(data.param_names)
        spec = self.experiment.data.model_copy(update={"params": names})
        splits = ("train", "val", "test")
        facts = {
            "files": [str(path) for path in data.dataset.files],
            "trajectories": {split: len(getattr(data.splits, split)) for split in splits},
            "params": names,
            "seen": data.param_values(data.splits.train).tolist(),
        }
        return self.experiment.model_copy(update={"data": spec}), facts

    def context(self) -> ModelContext:
        """What the operator model is built for: `Cs + history * C` channels in, `C` out."""
        data = self.data
        return ModelContext(
            in_channels=len(data.static_names) + self.history * len(data.channels),
            out_channels=len(data.channels),
            spatial_shape=data.spatial,
            boundary=tuple(data.dataset.boundary),
            param_names=data.param_names,
        )

    def parameter_overhead(self) -> int | None:
        """Parameters the config's wrappers add: the whole stack's count less that of the
        same model built without them (shapes only); None without wrappers."""
        spec = self.experiment.model
        if not spec.wrapper_list():
            return None
        bare = nnx.eval_shape(
            lambda: build_stack(spec.name, spec.arguments(), [], self.context(), rngs=nnx.Rngs(0))
        )
        bare_count = sum(np.size(leaf) for leaf in jax.tree.leaves(nnx.state(bare, nnx.Param)))
        return self.model.parameter_count() - int(bare_count)

    def _stepper(self, model: nnx.Module | None) -> Stepper:
        context, spec = self.context(), self.experiment.model
        if model is None:
            model = build_stack(
                spec.name,
                spec.arguments(),
                spec.wrapper_list(),
                context,
                rngs=nnx.Rngs(self.experiment.train.seed),
            )
        check_grid(model, context.spatial_shape)
        data = self.data
        return Stepper(
            model,
            history=self.history,
            channels=len(data.channels),
            mean=data.mean,
            std=data.std,
            residual=self.experiment.train.residual,
            static_channels=len(data.static_names),
            static_mean=data.static_mean,
            static_std=data.static_std,
            pde_mean=(
                data.param_mean if data.param_names and not takes_raw_pde_params(model) else None
            ),
            pde_std=data.param_std,
        )

    # What the trainer drives (`surrogates.training.task.Task`).

    @cached_property
    def sampler(self) -> WindowSampler:
        train = self.experiment.train
        return WindowSampler(
            trajectories=len(self.data.splits.train),
            frames=self.data.frames,
            window=self.history + train.rollout_steps,
            windows_per_trajectory=self.experiment.data.windows_per_trajectory,
            batch_size=train.batch_size,
            seed=train.seed,
        )

    @cached_property
    def batches(self) -> TrainBatches:
        return TrainBatches(self.data, self.sampler, self.mesh, self.experiment.data.memory_gb)

    @cached_property
    def curriculum(self) -> curricula.Curriculum:
        return make_curriculum(self.experiment)

    @cached_property
    def modes(self) -> Callable[[int], tuple[int, ...]] | None:
        return modes_schedule(self.experiment, operator_of(self.model.module().model))

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps_per_epoch

    def optimizer_state(self, tx: optax.GradientTransformation, previous: Any = None) -> Any:
        # Placed like the parameters, so the step's first call sees the same input shardings
        # as every later one and compiles once.
        return initial_optimizer_state(tx, self.model.params, self.mesh)

    def start_epoch(self, epoch: int) -> bool:
        """Active Fourier modes for `epoch` under `train.incremental`; True when they change."""
        if self.modes is None or self.modes(epoch) == self.active_modes:
            return False
        self.set_modes(self.modes(epoch))
        return True

    def set_modes(self, modes: tuple[int, ...]) -> None:
        """The operator's active Fourier modes (same arrays, a new static graph)."""
        self.active_modes = tuple(modes)
        self.model = set_active_modes(self.model, self.active_modes)
        self.predict = make_predict(self.model.graphdef)

    def make_step(self, tx: optax.GradientTransformationExtraArgs) -> Step:
        train = self.experiment.train
        if train.gradient_penalty is not None and not self.data.param_names:
            raise TrainingError(
                "train.gradient_penalty: the data has no PDE parameters to differentiate by "
                "(set data.params, or use files whose attributes hold them)"
            )
        return make_train_step(
            self.model.graphdef,
            tx,
            window=self.history + train.rollout_steps,
            loss=train.loss,
            pushforward=train.pushforward,
            remat=train.remat,
            batch_sharding=sharding.batch_sharded(self.mesh),
            micro_batches=train.micro_batches,
            noise=train.input_noise,
            penalty=(
                None
                if train.gradient_penalty is None
                else (train.gradient_penalty.coefficient, train.gradient_penalty.target)
            ),
            seed=train.seed,
        )

    def inputs(self, epoch: int) -> Iterator[tuple]:
        n_ar = jnp.asarray(self.curriculum(epoch), jnp.int32)
        for batch in self.batches.epoch(epoch):
            yield (*batch, n_ar)

    def validate(self) -> float | None:
        """Mean rollout nRMSE over the whole validation trajectories (read once per run)."""
        indices = self.data.splits.val
        if len(indices) == 0:
            return None
        if self._val_fields is None:
            self._val_fields = read_split(self.data, indices)
        prediction, truth = self.rollout(indices, fields=self._val_fields)
        return float(np.mean(nrmse(prediction, truth)))

    def epoch_log(self, epoch: int) -> dict[str, Any]:
        return {"n_ar": self.curriculum(epoch), **self.checkpoint_meta()}

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"n_modes": list(self.active_modes)} if self.active_modes else {}

    def restore_meta(self, meta: dict[str, Any]) -> None:
        if "n_modes" in meta:
            # The checkpoint may have trained fewer incremental modes than the last epoch.
            self.set_modes(tuple(meta["n_modes"]))

    # Predictions.

    def rollout(
        self, indices: np.ndarray, steps: int | None = None, fields: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rollouts of trajectories `indices` from their first `history` frames with the
        current weights, and the true frames they predict: two (n, steps, *X, C) arrays,
        `steps` defaulting to the rest of the trajectories. `fields` are those trajectories
        if already read.
        """
        fields = read_split(self.data, indices) if fields is None else fields
        steps = self.data.frames - self.history if steps is None else steps
        prediction = predict_all(
            self._predict_batch(steps),
            fields,
            self.data.param_table(indices),
            self.data.static_rows(indices),
            history=self.history,
            batch_size=self.experiment.eval.batch_size,
        )
        return prediction, fields[:, self.history : self.history + steps]

    def _predict_batch(self, steps: int) -> Callable[..., np.ndarray]:
        batched = sharding.batch_sharded(self.mesh)
        divisible = self.experiment.eval.batch_size % self.mesh.size == 0

        def run(context: np.ndarray, pde_params: np.ndarray | None, static: np.ndarray | None):
            if divisible:
                context, pde_params, static = (
                    None if a is None else sharding.put(a, batched)
                    for a in (context, pde_params, static)
                )
            return self.predict(
                self.model.params, self.model.rest, context, pde_params, static, steps
            )

        return run


def predict_all(
    predict: Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray],
    fields: np.ndarray,
    pde_params: np.ndarray | None,
    static: np.ndarray | None = None,
    *,
    history: int,
    batch_size: int,
) -> np.ndarray:
    """Rollouts of every trajectory: fields (N, T, *X, C) -> (N, S, *X, C).

    `predict(context, pde_params, static)` maps (B, H, *X, C), (B, P) or None and (B, *X, Cs)
    or None to (B, S, *X, C). Batches are padded to `batch_size` so the rollout compiles once.
    """
    outputs = []
    for first in range(0, len(fields), batch_size):
        rows = np.arange(first, first + batch_size) % len(fields)
        context = fields[rows, :history]
        row_params, row_static = (None if a is None else a[rows] for a in (pde_params, static))
        prediction = predict(context, row_params, row_static)
        outputs.append(sharding.to_host(prediction)[: len(fields) - first])
    return np.concatenate(outputs)


def make_curriculum(experiment: OperatorExperiment) -> curricula.Curriculum:
    """The experiment's curriculum: epoch -> fed-back rollout steps."""
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


def modes_schedule(
    experiment: OperatorExperiment, operator: nnx.Module
) -> Callable[[int], tuple[int, ...]] | None:
    """Active Fourier modes per epoch under `train.incremental` (None without it): from
    `start_modes`, `step` more every `every_epochs` epochs, up to the operator's allocated
    modes."""
    spec = experiment.train.incremental
    if spec is None:
        return None
    if not isinstance(operator, AdjustableModes):
        raise TrainingError(
            f"train.incremental: {type(operator).__name__} has no Fourier modes to set"
        )
    final = operator.max_n_modes
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
    """`model` (a stepper) with its operator's active Fourier modes set to `modes`: the same
    arrays, a new static graph, so compiled functions must be rebuilt."""
    stepper = model.module()
    operator_of(stepper.model).set_n_modes(modes)
    graphdef, params, rest = nnx.split(stepper, nnx.Param, ...)
    # The arrays are the ones that came in, with their shardings.
    return Model(graphdef, params, rest)


def evaluation_steps(experiment: OperatorExperiment, frames: int) -> int:
    """The evaluated rollout's length: `eval.rollout_steps`, else to the trajectories' end;
    checked against trajectories of `frames` frames."""
    history = experiment.data.history
    steps = experiment.eval.rollout_steps or frames - history
    if history + steps > frames:
        raise TrainingError(
            f"eval.rollout_steps: {steps} steps after {history} history frames need "
            f"{history + steps} frames, the data has {frames} (after data.stride_t)"
        )
    return steps
