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


class SplitSpec(StrictModel):
    """Trajectory split. `random`: a seeded permutation of all trajectories, then `test`, `val`
    and train fractions. `pdebench`: PDEBench's convention per file, the first `test` fraction
    of each file's trajectories is the test set, the next `val` fraction validation.
    """

    method: Literal["random", "pdebench"] = "random"
    val: Fraction = 0.1
    test: Fraction = 0.1
    seed: int = 0

    @model_validator(mode="after")
    def _room_to_train(self) -> SplitSpec:
        if self.val + self.test >= 1:
            raise ValueError(f"val + test must leave trajectories to train on, got {self}")
        return self


class DataSpec(StrictModel):
    """Benchmark files (paths or glob patterns), windows and normalisation.

    `params` names the file attributes (PDE parameters) fed to the model as `pde_params`;
    None takes those that vary across the files, and a run records the names it resolved.
    """

    files: Annotated[list[str], Field(min_length=1)]
    recipe: str | None = None
    recipe_samples: Positive | None = None
    # Frames the model sees; 0 for a steady problem mapping static inputs to a solution (Darcy).
    history: Annotated[int, Field(ge=0)] = 10
    stride_t: Positive = 1
    stride_x: Positive = 1
    samples: Positive | None = None
    split: SplitSpec = SplitSpec()
    normalize: bool = True
    # Feed the data's static fields (Darcy's coefficient) to the model as input channels.
    static: bool = True
    params: list[str] | None = None
    windows_per_trajectory: Positive = 1
    memory_gb: Annotated[float, Field(gt=0)] = 4.0


class ModelSpec(StrictModel):
    """A registry name and that model's constructor arguments (checked against it), and the
    stack of wrappers around it, outermost first: `wrappers: [{multigrid: {levels: 1}}]`.
    The former `multigrid: {...}` key is read as a one-wrapper stack.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    wrappers: list[dict[str, dict[str, Any] | None]] = Field(default_factory=list)

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
    """`adam` (torch's coupled weight decay), `adamw`, or `lbfgs` (its line search sets the
    step; `memory_size` past updates)."""

    name: Literal["adam", "adamw", "lbfgs"] = "adam"
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    clip_norm: Annotated[float, Field(gt=0)] | None = None
    memory_size: Positive = 10

    @model_validator(mode="after")
    def _options_apply(self) -> OptimizerSpec:
        default = OptimizerSpec.model_construct()
        if self.name == "lbfgs":
            for key in ("lr", "weight_decay", "clip_norm"):
                if getattr(self, key) != getattr(default, key):
                    raise ValueError(
                        f"{key}: does not apply to lbfgs (its line search sets the step)"
                    )
        elif self.memory_size != default.memory_size:
            raise ValueError(f"memory_size: applies to lbfgs only, not {self.name}")
        return self


class ScheduleSpec(StrictModel):
    name: Literal["constant", "cosine", "step"] = "constant"
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    step_epochs: Positive = 100
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.5
    final_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0


class PhaseSpec(StrictModel):
    """`epochs` epochs trained with one optimizer and schedule (counted from the phase's start)."""

    epochs: Positive
    optimizer: OptimizerSpec = OptimizerSpec()
    schedule: ScheduleSpec = ScheduleSpec()

    @model_validator(mode="after")
    def _schedule_applies(self) -> PhaseSpec:
        if self.optimizer.name == "lbfgs" and self.schedule != ScheduleSpec():
            raise ValueError("schedule: does not apply to lbfgs (its line search sets the step)")
        return self


class FreezeSpec(StrictModel):
    """Hold part of the model still for the first `epochs` epochs. `module` is a dotted path in
    the configured model, or a list of them: `operator` for the model inside a wrapper,
    `blocks.0` for an FNO's first block, `operator.lifting` for the lifting of a wrapped FNO,
    `[operator, mix]` for all of a CAPE model but its block (CAPE's warm-up)."""

    module: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    )
    epochs: Positive

    @property
    def modules(self) -> tuple[str, ...]:
        """The held paths, one or more."""
        return (self.module,) if isinstance(self.module, str) else tuple(self.module)


class TrainSpec(StrictModel):
    """The trainer's settings, common to every task.

    One optimizer and schedule for all `epochs`, or `phases` (say Adam, then L-BFGS) whose
    epochs add up to `epochs`. `select`: the checkpoint evaluated at the end, `best` by the
    task's validation score or `last` (the final iterate).
    """

    epochs: Positive = 10
    optimizer: OptimizerSpec = OptimizerSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    phases: list[PhaseSpec] = Field(default_factory=list)
    select: Literal["best", "last"] = "best"
    freeze: FreezeSpec | None = None
    checkpoint_every: Positive = 1
    seed: int = 0

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
    root: str = "runs"
    distributed: bool = False


class Experiment(StrictModel):
    """What every experiment has: a name, its task kind, the trainer's settings and where
    runs go. A kind's schema extends it (`OperatorExperiment`)."""

    name: str
    task: str = "operator"
    train: TrainSpec = TrainSpec()
    run: RunSpec = RunSpec()

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


class CurriculumSpec(StrictModel):
    """See `surrogates.training.curriculum`; `linear` needs `end_epoch`, `staged` `stages`."""

    name: Literal["teacher_forcing", "autoregressive", "linear", "cape_sigmoid", "staged"] = (
        "autoregressive"
    )
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    start_epoch: Annotated[int, Field(ge=0)] = 0
    end_epoch: Positive | None = None
    stages: list[tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _complete(self) -> CurriculumSpec:
        if self.name == "linear" and (self.end_epoch is None or self.end_epoch <= self.start_epoch):
            raise ValueError("linear needs end_epoch greater than start_epoch")
        if self.name == "staged" and not self.stages:
            raise ValueError("staged needs stages: [[first_epoch, n_ar], ...]")
        return self


class IncrementalSpec(StrictModel):
    """Incremental modes (neuraloperator's incremental FNO): training starts with
    `start_modes` Fourier modes per axis and grows them by `step` every `every_epochs`
    epochs up to the model's `n_modes`, whose weights are allocated from the start.
    """

    start_modes: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    every_epochs: Positive = 10
    step: Positive = 1


class GradientPenaltySpec(StrictModel):
    """CAPE's gradient penalty: `coefficient * mean((|d out / d p| - target)^2)` at a
    rollout's first step, the derivative of the summed prediction by the PDE parameters `p`,
    drawn afresh around the batch's range (see `surrogates.training.steps`)."""

    coefficient: Annotated[float, Field(gt=0)] = 5.16e-4
    target: Annotated[float, Field(ge=0)] = 4.58


class OperatorTrainSpec(TrainSpec):
    """The trainer's settings plus the operator task's: batches, loss, rollouts, curricula.

    `input_noise`: the standard deviation of Gaussian noise added to the model's input frames
    at every training step (physical units, CAPE's 0.001), drawn from the run's seed, epoch,
    step and sample, so a resumed run draws the same noise. `gradient_penalty`: see
    `GradientPenaltySpec`; needs PDE parameters.
    """

    batch_size: Positive = 32
    # The step runs the batch as this many equal micro-batches and averages their gradients:
    # the same update, with each micro-batch's activations small enough to stay in cache.
    micro_batches: Positive = 1
    loss: Literal["mse", "rel_l2", "h1"] = "mse"
    rollout_steps: Positive = 1
    curriculum: CurriculumSpec = CurriculumSpec()
    pushforward: bool = False
    residual: bool = False
    remat: bool = False
    incremental: IncrementalSpec | None = None
    input_noise: Annotated[float, Field(ge=0)] = 0.0
    gradient_penalty: GradientPenaltySpec | None = None

    @model_validator(mode="after")
    def _micro_batches_divide(self) -> OperatorTrainSpec:
        if self.batch_size % self.micro_batches:
            raise ValueError(
                f"micro_batches ({self.micro_batches}) must divide batch_size ({self.batch_size})"
            )
        return self


class EvalSpec(StrictModel):
    """How a trained model is evaluated: on the `split` of its data and, with `other_files`
    (`{name: [files]}`, say `{unseen: [...]}` for PDE parameters training never saw), also on
    all trajectories of each group of files, into `evaluations/<name>/` of the run (missing
    files are generated from `data.recipe` first). Suites list each group as a row of its
    own."""

    metrics: list[Literal[METRIC_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(METRIC_NAMES)
    )
    rollout_steps: Positive | None = None
    split: Literal["test", "val"] = "test"
    batch_size: Positive = 16
    snapshots: Annotated[int, Field(ge=0)] = 1
    other_files: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")],
        Annotated[list[str], Field(min_length=1)],
    ] = Field(default_factory=dict)


@register_experiment("operator")
class OperatorExperiment(Experiment):
    """An autoregressive (or steady) operator learned from stored trajectories."""

    task: Literal["operator"] = "operator"
    data: DataSpec
    model: ModelSpec
    train: OperatorTrainSpec = OperatorTrainSpec()
    eval: EvalSpec = EvalSpec()

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

    def parameters(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PointsSpec(StrictModel):
    """Collocation points per step: in the interior (`residual`) and on each kind of
    condition, shared by the conditions of that kind (Helmholtz's four sides share
    `boundary`)."""

    residual: Positive = 4096
    initial: Positive = 512
    boundary: Positive = 512


class BalanceSpec(StrictModel):
    """Loss weights. `fixed`: `train.weights` throughout. `grad_norm` (Wang et al.): every
    `every` steps each term's weight moves towards `mean_j |grad L_j| / |grad L_i|` by
    `1 - momentum`, starting from `train.weights`; held still in L-BFGS phases."""

    name: Literal["fixed", "grad_norm"] = "fixed"
    every: Positive = 1000
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9


class CausalSpec(StrictModel):
    """Causal weighting of the residual of a time-dependent problem (Wang et al.): the
    points sorted by time in `chunks` groups with losses `L_k`, weighted by
    `exp(-epsilon * sum_{j<k} L_j)`, so later times count once earlier ones are fit."""

    epsilon: Annotated[float, Field(gt=0)] = 1.0
    chunks: Positive = 32


class PhysicsPhaseSpec(PhaseSpec):
    """An optimizer phase of a physics run. `points` and `resample_every`, when given, replace
    the run's for this phase: an L-BFGS phase keeps one draw of points unless it is given a
    `resample_every` (the PIG paper's L-BFGS draws 10,000 new points each iteration)."""

    points: PointsSpec | None = None
    resample_every: Positive | None = None


class PhysicsTrainSpec(TrainSpec):
    """The trainer's settings plus the physics task's. An epoch is `steps_per_epoch`
    optimizer steps; every `resample_every` steps new collocation points are drawn from the
    run's seed and the step's number (an L-BFGS phase keeps one draw: its line search needs
    one objective). `weights`: initial weight per loss term (`residual`, `initial`,
    `boundary`; LPINN's `characteristics` too), 1 for a term not named. The final iterate is
    evaluated (`select: last`): a physics run has no validation data, and choosing on the
    reference would be choosing on the test set."""

    steps_per_epoch: Positive = 100
    points: PointsSpec = PointsSpec()
    resample_every: Positive = 1
    phases: list[PhysicsPhaseSpec] = Field(default_factory=list)
    weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    balance: BalanceSpec = BalanceSpec()
    causal: CausalSpec | None = None
    select: Literal["last"] = "last"

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
    problem: ProblemSpec
    model: ModelSpec
    train: PhysicsTrainSpec = PhysicsTrainSpec()

    def verify(self, source: str) -> None:
        """The problem and its parameters exist; the model is a registered pointwise model
        whose arguments fit."""
        from surrogates.models import registry
        from surrogates.physics import build_problem

        try:
            build_problem(self.problem.name, **self.problem.parameters())
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: problem: {error}") from None
        try:
            cls = registry.get(self.model.name)
            registry.check_kind(self.model.name, "pointwise")
        except ModelError as error:
            raise ConfigError(f"{source}: model.name: {error}") from None
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
