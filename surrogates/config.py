"""Experiment configs: strict, typed YAML with dotted command-line overrides.

`load_experiment("experiments/quickstart.yaml", ["train.epochs=5", "model.hidden_channels=32"])`
reads the YAML, applies the overrides (values parsed as YAML), and validates everything:
an unknown key, a wrong type or a bad value raises `ConfigError` naming the key path and what
is allowed, with a close spelling when there is one. Model arguments are checked against the
registered model's constructor.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from surrogates.errors import ConfigError, ModelError
from surrogates.evaluation.metrics import METRIC_NAMES
from surrogates.validation import StrictModel, describe_error, load_yaml, validate

Positive = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
# Set by the engine from the data; a config may not set them.
ENGINE_MODEL_ARGS = ("in_channels", "out_channels", "rngs")


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
    """Benchmark files (paths or glob patterns), windows and normalisation."""

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
    windows_per_trajectory: Positive = 1
    memory_gb: Annotated[float, Field(gt=0)] = 4.0


class MultigridSpec(StrictModel):
    """MG-TFNO patching around the model (`surrogates.models.multigrid`): `2**levels` patches
    per axis padded by `padding` (a fraction of the full size), with `levels` coarser context
    views as extra input channels; `stitching: false` scores the training loss per patch.
    """

    levels: Annotated[int, Field(ge=1, le=6)] = 1
    padding: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    stitching: bool = True


class IncrementalSpec(StrictModel):
    """Incremental modes (neuraloperator's incremental FNO): training starts with
    `start_modes` Fourier modes per axis and grows them by `step` every `every_epochs`
    epochs up to the model's `n_modes`, whose weights are allocated from the start.
    """

    start_modes: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    every_epochs: Positive = 10
    step: Positive = 1


class ModelSpec(StrictModel):
    """A registry name and that model's constructor arguments (checked against it), plus the
    engine's wrappers: `multigrid` patching.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    multigrid: MultigridSpec | None = None

    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimizerSpec(StrictModel):
    name: Literal["adam", "adamw"] = "adam"
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    clip_norm: Annotated[float, Field(gt=0)] | None = None


class ScheduleSpec(StrictModel):
    name: Literal["constant", "cosine", "step"] = "constant"
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    step_epochs: Positive = 100
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.5
    final_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0


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


class TrainSpec(StrictModel):
    epochs: Positive = 10
    batch_size: Positive = 32
    # The step runs the batch as this many equal micro-batches and averages their gradients:
    # the same update, with each micro-batch's activations small enough to stay in cache.
    micro_batches: Positive = 1
    optimizer: OptimizerSpec = OptimizerSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    loss: Literal["mse", "rel_l2", "h1"] = "mse"
    rollout_steps: Positive = 1
    curriculum: CurriculumSpec = CurriculumSpec()
    pushforward: bool = False
    residual: bool = False
    remat: bool = False
    incremental: IncrementalSpec | None = None
    checkpoint_every: Positive = 1
    seed: int = 0

    @model_validator(mode="after")
    def _micro_batches_divide(self) -> TrainSpec:
        if self.batch_size % self.micro_batches:
            raise ValueError(
                f"micro_batches ({self.micro_batches}) must divide batch_size ({self.batch_size})"
            )
        return self


class EvalSpec(StrictModel):
    metrics: list[Literal[METRIC_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(METRIC_NAMES)
    )
    rollout_steps: Positive | None = None
    split: Literal["test", "val"] = "test"
    batch_size: Positive = 16
    snapshots: Annotated[int, Field(ge=0)] = 1


class RunSpec(StrictModel):
    root: str = "runs"
    distributed: bool = False


class Experiment(StrictModel):
    """One experiment: data, model, training, evaluation and where runs go."""

    name: str
    data: DataSpec
    model: ModelSpec
    train: TrainSpec = TrainSpec()
    eval: EvalSpec = EvalSpec()
    run: RunSpec = RunSpec()

    @model_validator(mode="after")
    def _curriculum_fits(self) -> Experiment:
        curriculum = self.train.curriculum
        if curriculum.name == "cape_sigmoid" and curriculum.warmup_epochs >= self.train.epochs:
            raise ValueError("train.curriculum.warmup_epochs must be below train.epochs")
        return self


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


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read, override and validate an experiment; the name defaults to the file's stem."""
    path = Path(path)
    data = apply_overrides(load_yaml(path, ConfigError), list(overrides or []))
    data.setdefault("name", path.stem)
    experiment = validate(Experiment, data, str(path), ConfigError)
    check_model_arguments(experiment.model, str(path))
    return experiment


def check_model_arguments(spec: ModelSpec, source: str) -> None:
    """Fail unless `spec` names a registered model and its arguments fit the constructor."""
    from surrogates.models import registry

    try:
        constructor = registry.get(spec.name).__init__
    except ModelError as error:
        raise ConfigError(f"{source}: model.name: {error}") from None
    parameters = inspect.signature(constructor).parameters
    try:
        hints = typing.get_type_hints(constructor)
    except (NameError, TypeError):
        hints = {}
    allowed = [p for p in parameters if p != "self" and p not in ENGINE_MODEL_ARGS]
    for key, value in spec.arguments().items():
        if key in ENGINE_MODEL_ARGS:
            raise ConfigError(f"{source}: model.{key}: set by the engine from the data")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
            raise ConfigError(f"{source}: model.{key}: unknown argument of {spec.name} ({hint})")
        annotation = hints.get(key)
        if annotation is None:
            continue
        try:
            TypeAdapter(annotation).validate_python(value)
        except ValidationError as exc:
            detail = dict(exc.errors()[0], loc=("model", key, *exc.errors()[0]["loc"]))
            raise ConfigError(f"{source}: {describe_error(Experiment, detail)}") from None


def resolved_yaml(experiment: Experiment) -> str:
    """The experiment with every default filled in, as YAML (what a run records)."""
    return yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False)
