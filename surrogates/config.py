"""Experiment configs: strict, typed YAML with dotted command-line overrides.

`load_experiment("experiments/quickstart.yaml", ["train.epochs=5", "model.hidden_channels=32"])`
reads the YAML, applies the overrides (values parsed as YAML), and validates everything:
an unknown key, a wrong type or a bad value raises `ConfigError` naming the key path and what
is allowed, with a close spelling when there is one.

An experiment's `task:` says what kind of learning problem it is and so which schema applies
(a discriminated union, default `operator`: an autoregressive operator on stored
trajectories); each kind registers its schema with `register_experiment`. The sections common
to every kind are `train` (the trainer's settings: epochs, optimizer phases, checkpoint
selection, freezing) and `run`. Model arguments are checked against the registered model's
constructor when a config is loaded; this module itself imports no JAX.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from surrogates.errors import ConfigError, ModelError
from surrogates.metric_names import METRIC_NAMES
from surrogates.schema import StrictModel, describe_error, load_yaml, validate

Positive = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


def _only_where_they_apply(
    spec: StrictModel, only: dict[str, tuple[str, ...]], choice: str = "name"
) -> None:
    """Refuse an option set away from its default where the spec's `choice` (its `name`)
    does not use it: a silently ignored setting would be mistaken for one that took effect."""
    chosen = getattr(spec, choice)
    for key, names in only.items():
        default = type(spec).model_fields[key].get_default(call_default_factory=True)
        if chosen not in names and getattr(spec, key) != default:
            raise ValueError(f"{key}: applies to {' and '.join(names)} only, not {chosen}")


class SplitSpec(StrictModel):
    """How the trajectories are split into training, validation and test sets (whole
    trajectories go to one set)."""

    method: Literal["random", "pdebench"] = "random"
    """`random`: a seeded permutation of all trajectories, then `test`, `val` and train
    fractions. `pdebench`: PDEBench's convention per file, the first `test` fraction of each
    file's trajectories is the test set, the next `val` fraction validation."""
    val: Fraction = 0.1
    """Fraction of the trajectories (of each file with `pdebench`) for validation, at least
    one when positive; `val + test` must leave trajectories to train on."""
    test: Fraction = 0.1
    """Fraction of the trajectories (of each file with `pdebench`) for the test set, at least
    one when positive."""
    seed: int = 0
    """Seed of the `random` permutation (unused by `pdebench`)."""

    @model_validator(mode="after")
    def _room_to_train(self) -> SplitSpec:
        _only_where_they_apply(self, {"seed": ("random",)}, choice="method")
        if self.val + self.test >= 1:
            raise ValueError(f"val + test must leave trajectories to train on, got {self}")
        return self


class DataSpec(StrictModel):
    """Benchmark files (paths or glob patterns), windows and normalisation."""

    files: Annotated[list[str], Field(min_length=1)]
    """The benchmark files: paths or glob patterns (a pattern's matches sorted), all of one
    layout and grid; several files (a parameter sweep) are read as one dataset."""
    recipe: str | None = None
    """A dataset recipe file (`datasets/*.yaml`) that generates the files if missing, into the
    one folder the `files` are in (only the files named, unless they are patterns); an existing
    file made with other settings is an error. None: the files must exist."""
    recipe_samples: Positive | None = None
    """Samples per file when `recipe` generates the files, in place of the recipe's `samples`;
    None: the recipe's."""
    history: Annotated[int, Field(ge=0)] = 10
    """Frames the model sees; 0 for a steady problem mapping static inputs to a solution
    (Darcy)."""
    stride_t: Positive = 1
    """Keep every `stride_t`-th frame of the files."""
    stride_x: Positive = 1
    """Keep every `stride_x`-th grid point along each spatial axis; it must leave at least 2
    points along an axis and divide a periodic axis."""
    samples: Positive | None = None
    """The most trajectories taken from each file (PDEBench's `num_samples_max`, so a sweep
    stays balanced); None: all."""
    split: SplitSpec = SplitSpec()
    """How the trajectories are split into training, validation and test sets."""
    normalize: bool = True
    """Normalise the fields, static inputs and PDE parameters with their per-channel mean and
    standard deviation over the training split; false: mean 0 and standard deviation 1."""
    static: bool = True
    """Feed the data's static fields (Darcy's coefficient) to the model as input channels."""
    params: list[str] | None = None
    """The file attributes (PDE parameters) fed to the model as `pde_params`; None takes those
    that vary across the files, and a run records the names it resolved."""
    windows_per_trajectory: Positive = 1
    """Windows of `history + train.rollout_steps` frames drawn from each training trajectory
    per epoch, each at a random start frame; an epoch is all of them, shuffled."""
    memory_gb: Annotated[float, Field(gt=0)] = 4.0
    """Size in GiB (float32) up to which the training split is held on the devices, where the
    step gathers its windows; a larger split is read lazily from the files, two batches
    ahead."""


class ModelSpec(StrictModel):
    """A registry name and that model's constructor arguments (every other key of the section,
    checked against the constructor), and the stack of wrappers around it."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    """A model registered in `surrogates.models.registry` (`surrogates models` lists them).
    The arguments the engine supplies from the data or the problem
    (`models.contract.CONTEXT_ARGUMENTS`: `in_channels`, `n_params`, ...) are not set here."""
    wrappers: list[dict[str, dict[str, Any] | None]] = Field(default_factory=list)
    """Registered wrappers around the model, outermost first, each one `{kind: {options}}`
    mapping (options checked against the wrapper's constructor; null for its defaults):
    `wrappers: [{multigrid: {levels: 1}}]`. The former `multigrid: {...}` key is read as a
    one-wrapper stack. Pointwise (physics) models take none."""

    @model_validator(mode="before")
    @classmethod
    def _multigrid_key(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "multigrid" not in data:
            return data
        data = dict(data)
        options = data.pop("multigrid")
        if data.get("wrappers"):
            raise ValueError("multigrid: give the patching as a wrappers entry, not both keys")
        data["wrappers"] = [{"multigrid": options}]
        return data

    @model_validator(mode="after")
    def _one_kind_per_wrapper(self) -> ModelSpec:
        for item in self.wrappers:
            if len(item) != 1:
                raise ValueError(
                    f"wrappers: each entry is one `kind: {{options}}` mapping, found {item}"
                )
        return self

    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def wrapper_list(self) -> list[tuple[str, dict[str, Any]]]:
        """`(kind, options)` of every wrapper, outermost first."""
        return [
            (kind, dict(options or {})) for item in self.wrappers for kind, options in item.items()
        ]


class OptimizerSpec(StrictModel):
    """An optimizer from optax; options that do not apply to it are refused."""

    name: Literal["adam", "adamw", "lbfgs"] = "adam"
    """`adam` (torch's coupled weight decay: `weight_decay * param` added to the gradient, as
    PDEBench and CAPE train), `adamw` (decoupled weight decay), or `lbfgs` (optax's L-BFGS,
    whose zoom line search sets the step: `lr`, `weight_decay`, `clip_norm` and a schedule do
    not apply)."""
    lr: Annotated[float, Field(gt=0)] = 1e-3
    """The learning rate (the peak, under a schedule that varies it); not for `lbfgs`."""
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    """Weight decay coefficient, coupled (`adam`) or decoupled (`adamw`); not for `lbfgs`."""
    clip_norm: Annotated[float, Field(gt=0)] | None = None
    """Clip the gradients to this global norm before the update; None: no clipping. Not for
    `lbfgs`."""
    memory_size: Positive = 10
    """`lbfgs` only: the past updates its curvature estimate keeps."""

    @model_validator(mode="after")
    def _options_apply(self) -> OptimizerSpec:
        default = OptimizerSpec.model_construct()
        if self.name == "lbfgs":
            for key in ("lr", "weight_decay", "clip_norm"):
                if getattr(self, key) != getattr(default, key):
                    raise ValueError(
                        f"{key}: does not apply to lbfgs (its line search sets the step)"
                    )
        _only_where_they_apply(self, {"memory_size": ("lbfgs",)})
        return self


class ScheduleSpec(StrictModel):
    """The learning-rate schedule of a phase, in epochs counted from the phase's start
    (converted to optimizer steps); none for `lbfgs`."""

    name: Literal["constant", "cosine", "step"] = "constant"
    """`constant`: `optimizer.lr` throughout. `cosine`: a linear warm-up from 0 over
    `warmup_epochs`, then cosine decay to `final_fraction` of the peak at the phase's last step.
    `step`: multiplied by `gamma` every `step_epochs` epochs (torch's `StepLR` stepped once
    per epoch)."""
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    """`cosine` only: epochs of linear warm-up (fractions allowed)."""
    step_epochs: Positive = 100
    """`step` only: epochs between two multiplications by `gamma`."""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.5
    """`step` only: the factor the learning rate is multiplied by every `step_epochs`."""
    final_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    """`cosine` only: the learning rate at the phase's last step, as a fraction of
    `optimizer.lr`."""

    @model_validator(mode="after")
    def _options_apply(self) -> ScheduleSpec:
        cosine, step = ("cosine",), ("step",)
        only = {"warmup_epochs": cosine, "final_fraction": cosine}
        _only_where_they_apply(self, {**only, "step_epochs": step, "gamma": step})
        return self


class PhaseSpec(StrictModel):
    """`epochs` epochs trained with one optimizer and schedule (counted from the phase's start)."""

    epochs: Positive
    """Epochs of this phase."""
    optimizer: OptimizerSpec = OptimizerSpec()
    """The optimizer of this phase (a new optimizer state at the phase's start)."""
    schedule: ScheduleSpec = ScheduleSpec()
    """The learning-rate schedule of this phase, counted from its first epoch; none for
    `lbfgs`."""

    @model_validator(mode="after")
    def _schedule_applies(self) -> PhaseSpec:
        if self.optimizer.name == "lbfgs" and self.schedule != ScheduleSpec():
            raise ValueError("schedule: does not apply to lbfgs (its line search sets the step)")
        return self


class FreezeSpec(StrictModel):
    """Hold part of the model still for the first `epochs` epochs: its gradients are zeroed
    (before clipping) and its optimizer state is left as it was."""

    module: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    )
    """A dotted path in the configured model, or a list of them: `operator` for the model
    inside a wrapper, `blocks.0` for an FNO's first block, `operator.lifting` for the lifting
    of a wrapped FNO, `[operator, mix]` for all of a CAPE model but its block (CAPE's
    warm-up)."""
    epochs: Positive
    """Epochs from the start during which the part is held; below `train.epochs`, and no
    `lbfgs` phase may start before they end."""

    @property
    def modules(self) -> tuple[str, ...]:
        """The held paths, one or more."""
        return (self.module,) if isinstance(self.module, str) else tuple(self.module)


class TrainSpec(StrictModel):
    """The trainer's settings, common to every task."""

    epochs: Positive = 10
    """Epochs to train; with `phases`, their sum (the default then)."""
    optimizer: OptimizerSpec = OptimizerSpec()
    """The optimizer for all `epochs`, when there are no `phases`."""
    schedule: ScheduleSpec = ScheduleSpec()
    """The learning-rate schedule for all `epochs`, when there are no `phases`."""
    phases: list[PhaseSpec] = Field(default_factory=list)
    """Optimizer phases in order (say Adam, then L-BFGS), in place of `optimizer` and
    `schedule`; their epochs add up to `epochs`. Empty: one phase of `optimizer` and
    `schedule`."""
    select: Literal["best", "last"] = "best"
    """The checkpoint evaluated at the end: `best` by the task's validation score (the latest
    if there is none) or `last` (the final iterate)."""
    freeze: FreezeSpec | None = None
    """Hold part of the model still for the first epochs; None: all of it trains from the
    start."""
    checkpoint_every: Positive = 1
    """Epochs between two writes of the latest checkpoint; the last epoch and every new best
    validation score are written too."""
    seed: int = 0
    """Seed of the initial weights and of what training draws (the operator task's windows,
    their order and input noise; the physics task's collocation points). The data split has its
    own, `data.split.seed`."""

    @model_validator(mode="before")
    @classmethod
    def _epochs_from_phases(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("phases") and "epochs" not in data:
            phases = data["phases"]
            if isinstance(phases, list) and all(isinstance(p, dict) for p in phases):
                total = sum(p.get("epochs", 0) for p in phases)
                if isinstance(total, int) and total > 0:
                    data = {**data, "epochs": total}
        return data

    @model_validator(mode="after")
    def _phases_fit(self) -> TrainSpec:
        if self.phases:
            total = sum(phase.epochs for phase in self.phases)
            if total != self.epochs:
                raise ValueError(f"epochs: {self.epochs}, but the phases add up to {total}")
            if self.optimizer != OptimizerSpec() or self.schedule != ScheduleSpec():
                raise ValueError("phases: set the optimizer and schedule per phase, not both")
        if self.optimizer.name == "lbfgs" and self.schedule != ScheduleSpec():
            raise ValueError("schedule: does not apply to lbfgs (its line search sets the step)")
        if self.freeze is not None:
            if self.freeze.epochs >= self.epochs:
                raise ValueError("freeze.epochs must be below train.epochs")
            if self._line_search_before(self.freeze.epochs):
                raise ValueError("freeze: an lbfgs phase cannot hold part of the model still")
        return self

    def _line_search_before(self, epoch: int) -> bool:
        first = 0
        for phase in self.phase_list():
            if first < epoch and phase.optimizer.name == "lbfgs":
                return True
            first += phase.epochs
        return False

    def phase_list(self) -> list[PhaseSpec]:
        """The optimizer phases in order (one when `phases` is not given)."""
        if self.phases:
            return list(self.phases)
        return [PhaseSpec(epochs=self.epochs, optimizer=self.optimizer, schedule=self.schedule)]


class RunSpec(StrictModel):
    """Where runs go and how their processes start."""

    root: str = "runs"
    """The folder that holds the runs: each is a new `<root>/<name>/<timestamp>/`."""
    distributed: bool = False
    """Join a multi-host run with `jax.distributed.initialize()` (which finds the cluster on
    SLURM, Open MPI and TPU pods) before anything else; processes the local launcher
    (`--processes N`) started have joined already."""


class Experiment(StrictModel):
    """What every experiment has: a name, its task kind, the trainer's settings and where
    runs go. A kind's schema extends it (`OperatorExperiment`)."""

    name: str
    """The experiment's name, the folder of its runs under `run.root`; `load_experiment`
    defaults it to the YAML file's stem."""
    task: str = "operator"
    """The kind of learning problem, which decides the schema of the other sections: a kind
    registered with `register_experiment` (`operator`, `physics`)."""
    train: TrainSpec = TrainSpec()
    """The trainer's settings."""
    run: RunSpec = RunSpec()
    """Where runs go and how their processes start."""

    def verify(self, source: str) -> None:
        """Checks that need the model registry (called when a config is loaded)."""


_Kind = TypeVar("_Kind", bound=type[Experiment])
_KINDS: dict[str, type[Experiment]] = {}


def register_experiment(kind: str) -> Callable[[_Kind], _Kind]:
    """Class decorator: the schema of experiments with `task: <kind>`."""

    def decorate(cls: _Kind) -> _Kind:
        _KINDS[kind] = cls
        return cls

    return decorate


def task_kinds() -> tuple[str, ...]:
    return tuple(sorted(_KINDS))


def experiment_schema(kind: str) -> type[Experiment]:
    """The schema of experiments with `task: <kind>` (a `KeyError` for an unknown kind)."""
    return _KINDS[kind]


class CurriculumSpec(StrictModel):
    """Per epoch, how many rollout steps `n_ar` feed back the model's own prediction instead of
    the true frame (see `surrogates.training.curriculum`). Epochs are counted from 0."""

    name: Literal["teacher_forcing", "autoregressive", "linear", "cape_sigmoid", "staged"] = (
        "autoregressive"
    )
    """`teacher_forcing`: always the true frames (`n_ar = 0`). `autoregressive`: always the
    predictions (`n_ar = rollout_steps`). `linear`: from teacher forcing at `start_epoch` to
    fully autoregressive at `end_epoch`. `cape_sigmoid`: CAPE's sigmoid in the epoch, after
    `warmup_epochs`. `staged`: the steps listed in `stages`."""
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    """`cape_sigmoid` only: CAPE's warm-up epochs, from which its sigmoid is counted; below
    `train.epochs`."""
    start_epoch: Annotated[int, Field(ge=0)] = 0
    """`linear` only: the epoch at which `n_ar` starts to grow from 0."""
    end_epoch: Positive | None = None
    """`linear` only, and needed there: the first fully autoregressive epoch, greater than
    `start_epoch`."""
    stages: list[tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]] = Field(
        default_factory=list
    )
    """`staged` only, and needed there: `[first_epoch, n_ar]` pairs, each `n_ar` from its
    `first_epoch` on (at most `rollout_steps`); teacher forcing before the first stage."""

    @model_validator(mode="after")
    def _complete(self) -> CurriculumSpec:
        linear = ("linear",)
        only = {"start_epoch": linear, "end_epoch": linear, "stages": ("staged",)}
        _only_where_they_apply(self, {**only, "warmup_epochs": ("cape_sigmoid",)})
        if self.name == "linear" and (self.end_epoch is None or self.end_epoch <= self.start_epoch):
            raise ValueError("linear needs end_epoch greater than start_epoch")
        if self.name == "staged" and not self.stages:
            raise ValueError("staged needs stages: [[first_epoch, n_ar], ...]")
        return self


class IncrementalSpec(StrictModel):
    """Incremental modes (neuraloperator's incremental FNO): training starts with few Fourier
    modes and grows them up to the model's `n_modes`, whose weights are allocated from the
    start. Each change recompiles the step once; checkpoints record the active modes."""

    start_modes: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    """Active Fourier modes per spatial axis at the start: one entry per axis, each at most
    the model's `n_modes`."""
    every_epochs: Positive = 10
    """Epochs between two growths of the modes."""
    step: Positive = 1
    """Modes added per axis at each growth."""


class GradientPenaltySpec(StrictModel):
    """CAPE's gradient penalty: `coefficient * mean((|d out / d p| - target)^2)` at a
    rollout's first step, the derivative of the summed prediction by the PDE parameters `p`,
    drawn afresh around the batch's range (see `surrogates.training.steps`)."""

    coefficient: Annotated[float, Field(gt=0)] = 5.16e-4
    """The penalty's weight in the loss (CAPE's 1D `gp_coef`)."""
    target: Annotated[float, Field(ge=0)] = 4.58
    """The norm `|d out / d p|` is pulled towards (CAPE's `kk`)."""


class OperatorTrainSpec(TrainSpec):
    """The trainer's settings plus the operator task's: batches, loss, rollouts, curricula."""

    batch_size: Positive = 32
    """Windows per optimizer step, sharded over the devices."""
    micro_batches: Positive = 1
    """The step runs the batch as this many equal micro-batches and averages their gradients:
    the same update, with each micro-batch's activations small enough to stay in cache. Must
    divide `batch_size`."""
    loss: Literal["mse", "rel_l2", "h1"] = "mse"
    """The loss of each predicted frame, averaged over the rollout: `mse` of the normalised
    fields (channels weigh equally whatever their units); `rel_l2`, `||pred - target|| /
    ||target||` over space per sample and channel; `h1`, neuraloperator's relative H1 loss
    (first derivatives by periodic central differences on a unit domain)."""
    rollout_steps: Positive = 1
    """Frames each training window predicts after its `data.history` frames."""
    curriculum: CurriculumSpec = CurriculumSpec()
    """How many of the `rollout_steps` feed back the model's prediction, per epoch."""
    pushforward: bool = False
    """Feed predictions back without their gradient (`stop_gradient`), so no gradient flows
    through a fed-back frame into the steps before it."""
    residual: bool = False
    """The model predicts the change from the last input frame (in normalised units) instead
    of the next frame; needs `data.history` of at least 1."""
    remat: bool = False
    """Rematerialise each rollout step in the backward pass (`jax.checkpoint`): less memory
    for more compute."""
    incremental: IncrementalSpec | None = None
    """Grow the active Fourier modes during training (models with Fourier modes only); None:
    all of the model's modes from the start."""
    input_noise: Annotated[float, Field(ge=0)] = 0.0
    """The standard deviation of Gaussian noise added to the model's input frames at every
    rollout step of training (physical units, CAPE's 0.001; fed-back frames stay clean), drawn
    from the run's seed, epoch, step and sample, so a resumed run draws the same noise. 0: no
    noise."""
    gradient_penalty: GradientPenaltySpec | None = None
    """CAPE's gradient penalty (see `GradientPenaltySpec`); needs PDE parameters. None: no
    penalty."""

    @model_validator(mode="after")
    def _micro_batches_divide(self) -> OperatorTrainSpec:
        if self.batch_size % self.micro_batches:
            raise ValueError(
                f"micro_batches ({self.micro_batches}) must divide batch_size ({self.batch_size})"
            )
        return self


class EvalSpec(StrictModel):
    """How a trained model is evaluated: rollouts from each trajectory's first `data.history`
    frames, scored against the persistence baseline, pooled and per PDE-parameter value."""

    metrics: list[Literal[METRIC_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(METRIC_NAMES)
    )
    """The metrics computed (see `surrogates.metrics`); all of them by default."""
    rollout_steps: Positive | None = None
    """Frames each evaluation rollout predicts after the history frames; None: to the end of
    the trajectories."""
    split: Literal["test", "val"] = "test"
    """The split of `data` evaluated."""
    batch_size: Positive = 16
    """Trajectories rolled out together, in evaluation and in the validation after each
    epoch (the last batch is padded, so the rollout compiles once)."""
    snapshots: Annotated[int, Field(ge=0)] = 1
    """Evaluated trajectories plotted as `figures/snapshot_<k>.png`, the first ones; 0 for
    none."""
    other_files: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")],
        Annotated[list[str], Field(min_length=1)],
    ] = Field(default_factory=dict)
    """More groups of files, `{name: [files]}` (say `{unseen: [...]}` for PDE parameters
    training never saw), each evaluated after training on all its trajectories into
    `evaluations/<name>/` of the run (missing files are generated from `data.recipe` first).
    Suites list each group as a row of its own."""


@register_experiment("operator")
class OperatorExperiment(Experiment):
    """An autoregressive (or steady) operator learned from stored trajectories."""

    task: Literal["operator"] = "operator"
    """`operator`: an autoregressive (or steady) operator learned from stored trajectories."""
    data: DataSpec
    """The benchmark files and how they are read, split, windowed and normalised."""
    model: ModelSpec
    """The operator: a registered model, its constructor arguments and its wrappers."""
    train: OperatorTrainSpec = OperatorTrainSpec()
    """The trainer's settings plus the operator task's."""
    eval: EvalSpec = EvalSpec()
    """How the trained model is evaluated."""

    @model_validator(mode="after")
    def _curriculum_fits(self) -> OperatorExperiment:
        curriculum = self.train.curriculum
        if curriculum.name == "cape_sigmoid" and curriculum.warmup_epochs >= self.train.epochs:
            raise ValueError("train.curriculum.warmup_epochs must be below train.epochs")
        return self

    def verify(self, source: str) -> None:
        """The model and every wrapper are registered and their arguments fit."""
        from surrogates.models import registry

        model = self.model
        try:
            cls = registry.get(model.name)
        except ModelError as error:
            raise ConfigError(f"{source}: model.name: {error}") from None
        _check_arguments(cls, model.arguments(), "model", f"of {model.name}", source)
        for index, (kind, options) in enumerate(model.wrapper_list()):
            where = f"model.wrappers.{index}.{kind}"
            try:
                wrapper = registry.wrapper(kind)
            except ModelError as error:
                raise ConfigError(f"{source}: model.wrappers.{index}: {error}") from None
            _check_arguments(wrapper, options, where, f"of the {kind} wrapper", source, inner=True)


class ProblemSpec(StrictModel):
    """A registered physics problem and its PDE parameters: `{name: convection, beta: 30}`
    (checked against the problem when the config is loaded)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    """A registered physics problem (`surrogates.physics.problems()` lists them); its PDE
    parameters are the section's other keys, its defaults where left out."""

    def parameters(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PointsSpec(StrictModel):
    """Collocation points per step: in the interior and on each kind of condition. Each
    count is shared by the conditions of its kind and rounded up to a multiple of the device
    count (the points are sharded)."""

    residual: Positive = 4096
    """Points in the interior, where the PDE's residual is taken (and LPINN's
    `characteristics`)."""
    initial: Positive = 512
    """Points on the initial conditions (at the first time)."""
    boundary: Positive = 512
    """Points on the boundary conditions (Helmholtz's four sides share them)."""


class BalanceSpec(StrictModel):
    """Loss weights of the physics task's terms during training; checkpoints keep them."""

    name: Literal["fixed", "grad_norm"] = "fixed"
    """`fixed`: `train.weights` throughout. `grad_norm` (Wang et al.): every `every` steps each
    term's weight moves towards `mean_j |grad L_j| / |grad L_i|` by `1 - momentum`, starting
    from `train.weights`; held still in L-BFGS phases."""
    every: Positive = 1000
    """`grad_norm` only: steps between two moves of the weights, counted from the run's
    first step."""
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """`grad_norm` only: the share of its old value a weight keeps at each move."""

    @model_validator(mode="after")
    def _options_apply(self) -> BalanceSpec:
        _only_where_they_apply(self, {"every": ("grad_norm",), "momentum": ("grad_norm",)})
        return self


class CausalSpec(StrictModel):
    """Causal weighting of the residual of a time-dependent problem (Wang et al.): the
    points sorted by time in `chunks` groups with losses `L_k`, weighted by
    `exp(-epsilon * sum_{j<k} L_j)`, so later times count once earlier ones are fit."""

    epsilon: Annotated[float, Field(gt=0)] = 1.0
    """`epsilon` in the weights: how strongly the losses of earlier times hold back later
    ones."""
    chunks: Positive = 32
    """Groups of the time-sorted residual points; must divide `points.residual` (each phase's
    too)."""


class PhysicsPhaseSpec(PhaseSpec):
    """An optimizer phase of a physics run, which may draw its collocation points in its own
    way."""

    points: PointsSpec | None = None
    """Collocation points per step in this phase; None: the run's `train.points`."""
    resample_every: Positive | None = None
    """Steps between two draws of points in this phase; None: the run's
    `train.resample_every`, but one draw for the whole phase in an L-BFGS phase (the PIG
    paper's L-BFGS draws 10,000 new points each iteration)."""


class PhysicsTrainSpec(TrainSpec):
    """The trainer's settings plus the physics task's: collocation points, loss weights."""

    steps_per_epoch: Positive = 100
    """Optimizer steps per epoch (the unit of `epochs`, phases, schedules and `freeze`); each
    epoch logs the relative L2 error on the problem's evaluation grid."""
    points: PointsSpec = PointsSpec()
    """Collocation points per step."""
    resample_every: Positive = 1
    """Steps between two draws of new collocation points, drawn from the run's seed and the
    step's number (an L-BFGS phase keeps one draw: its line search needs one objective)."""
    phases: list[PhysicsPhaseSpec] = Field(default_factory=list)
    """Optimizer phases in order (say Adam, then L-BFGS), in place of `optimizer` and
    `schedule`; their epochs add up to `epochs`. A phase may set its own `points` and
    `resample_every`."""
    weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    """Initial weight per loss term (`residual`, `initial`, `boundary`; LPINN's
    `characteristics` too), 1 for a term not named; a name that is no loss term of the run
    is an error."""
    balance: BalanceSpec = BalanceSpec()
    """How the loss weights change during training."""
    causal: CausalSpec | None = None
    """Causal weighting of a time-dependent problem's residual; None: none."""
    select: Literal["last"] = "last"
    """The final iterate is evaluated: a physics run has no validation data, and choosing on
    the reference would be choosing on the test set."""

    @model_validator(mode="after")
    def _causal_chunks_divide(self) -> PhysicsTrainSpec:
        if self.causal is None:
            return self
        for index, points in enumerate(self.phase_points()):
            if points.residual % self.causal.chunks:
                own = self.phases and self.phases[index].points is not None
                where = f"phases.{index}.points" if own else "points"
                raise ValueError(
                    f"causal.chunks ({self.causal.chunks}) must divide {where}.residual "
                    f"({points.residual})"
                )
        return self

    def phase_points(self) -> list[PointsSpec]:
        """The collocation points per step of each optimizer phase."""
        return [getattr(phase, "points", None) or self.points for phase in self.phase_list()]

    def phase_resampling(self) -> list[int | None]:
        """Steps between draws of points in each optimizer phase; None: one draw for the
        phase (an L-BFGS phase unless it sets `resample_every`)."""
        every = []
        for phase in self.phase_list():
            given = getattr(phase, "resample_every", None)
            if given is None and phase.optimizer.name != "lbfgs":
                given = self.resample_every
            every.append(given)
        return every


@register_experiment("physics")
class PhysicsExperiment(Experiment):
    """A pointwise model trained on a PDE's residual at collocation points (a PINN)."""

    task: Literal["physics"] = "physics"
    """`physics`: a pointwise model trained on a PDE's residual (a PINN)."""
    problem: ProblemSpec
    """The PDE problem and its parameters."""
    model: ModelSpec
    """A registered pointwise model and its constructor arguments (no wrappers)."""
    train: PhysicsTrainSpec = PhysicsTrainSpec()
    """The trainer's settings plus the physics task's."""

    def verify(self, source: str) -> None:
        """The problem and its parameters exist; the model is a registered pointwise model
        whose arguments fit."""
        from surrogates.models import registry
        from surrogates.physics import build_problem

        try:
            problem = build_problem(self.problem.name, **self.problem.parameters())
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: problem: {error}") from None
        try:
            cls = registry.get(self.model.name)
            registry.check_kind(self.model.name, "pointwise")
        except ModelError as error:
            raise ConfigError(f"{source}: model.name: {error}") from None
        if self.train.causal is not None and not problem.time_dependent:
            raise ConfigError(
                f"{source}: train.causal: {self.problem.name} has no time axis to weight causally"
            )
        if self.model.wrappers:
            raise ConfigError(f"{source}: model.wrappers: pointwise models take no wrappers")
        _check_arguments(cls, self.model.arguments(), "model", f"of {self.model.name}", source)


def _check_arguments(
    cls: type, arguments: dict[str, Any], where: str, owner: str, source: str, inner: bool = False
) -> None:
    """Fail unless `arguments` fit `cls`'s constructor (a wrapper's first argument, the model
    inside, and the arguments the engine supplies from the data are not the config's)."""
    from surrogates.models.contract import CONTEXT_ARGUMENTS

    constructor = cls.__init__
    names = [p for p in inspect.signature(constructor).parameters if p != "self"]
    if inner:
        names = names[1:]
    try:
        hints = typing.get_type_hints(constructor, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    allowed = [name for name in names if name not in CONTEXT_ARGUMENTS]
    for key, value in arguments.items():
        if key in CONTEXT_ARGUMENTS:
            raise ConfigError(f"{source}: {where}.{key}: set by the engine from the data")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
            raise ConfigError(f"{source}: {where}.{key}: unknown argument {owner} ({hint})")
        annotation = hints.get(key)
        if annotation is None:
            continue
        try:
            TypeAdapter(annotation).validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            detail = dict(first, loc=(*where.split("."), key, *first["loc"]))
            raise ConfigError(f"{source}: {describe_error(OperatorExperiment, detail)}") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key.path=value` overrides applied to a copy of `data`; values are parsed as YAML."""
    data = yaml.safe_load(yaml.safe_dump(data))
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r}: expected key.path=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part} is not a section")
            node = child
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: value is not valid YAML") from None
    return data


def parse_experiment(data: dict[str, Any], source: str = "experiment") -> Experiment:
    """The experiment `data` describes, validated against its task's schema; `source` names
    it in errors."""
    kind = data.get("task", "operator")
    if kind not in _KINDS:
        close = difflib.get_close_matches(str(kind), list(_KINDS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(task_kinds())}"
        raise ConfigError(f"{source}: task: unknown task {kind!r} ({hint})")
    experiment = validate(_KINDS[kind], data, source, ConfigError)
    experiment.verify(source)
    return experiment


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read, override and validate an experiment; the name defaults to the file's stem."""
    path = Path(path)
    data = apply_overrides(load_yaml(path, ConfigError), list(overrides or []))
    data.setdefault("name", path.stem)
    return parse_experiment(data, str(path))


# What a trained run's overrides may change: how it is evaluated, and for how many epochs
# it trains (`evaluate RUN -o` takes the first, `train --resume RUN -o` both).
EVALUATION_KEYS = ("eval.", "train.select")
RESUME_KEYS = (*EVALUATION_KEYS, "train.epochs", "train.checkpoint_every")


def check_run_overrides(overrides: list[str], allowed: tuple[str, ...], command: str) -> None:
    """Refuse an override of a key a trained run keeps (its data, model and training), in
    one line naming the override and the keys `command` takes."""
    for override in overrides:
        key = override.partition("=")[0].strip()
        if not any(key == a or (a.endswith(".") and key.startswith(a)) for a in allowed):
            keys = ", ".join(f"{a}*" if a.endswith(".") else a for a in allowed)
            raise ConfigError(
                f"override {override!r}: {command} keeps the run's data, model and training "
                f"settings; it takes {keys}"
            )


def resolved_yaml(experiment: Experiment) -> str:
    """The experiment with every default filled in, as YAML (what a run records)."""
    return yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False)
