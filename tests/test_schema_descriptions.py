"""Every key of every YAML schema has a description in the code (a field docstring), so a
configuration reference generated from the schemas says what each key means."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from surrogates.config import (
    OperatorTrainSpec,
    PhaseSpec,
    PhysicsPhaseSpec,
    TrainSpec,
    experiment_schema,
    task_kinds,
)
from surrogates.data.generate.recipe import recipe_types
from surrogates.schema import StrictModel
from surrogates.suites import Suite


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models named anywhere in a type (inside Optional, list, dict, tuple,
    Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def schemas() -> list[type[StrictModel]]:
    """Every schema a YAML file can reach: the package's experiment kinds (not those a test
    registers), suites and dataset recipes, their nested sections and the schemas they
    extend."""
    kinds = [experiment_schema(kind) for kind in task_kinds()]
    roots: list[type[BaseModel]] = [k for k in kinds if k.__module__.startswith("surrogates.")]
    roots += [Suite, *recipe_types().values()]
    found: list[type[StrictModel]] = []
    pending = list(roots)
    while pending:
        model = pending.pop()
        if model in found or not issubclass(model, StrictModel) or model is StrictModel:
            continue
        found.append(model)
        pending += [base for base in model.__mro__ if isinstance(base, type)]
        for field in model.model_fields.values():
            pending += _models_in(field.annotation)
            pending += [m for item in field.metadata for m in _models_in(item)]
    return sorted(found, key=lambda model: model.__name__)


def test_the_walk_reaches_every_kind_of_schema():
    names = {model.__name__ for model in schemas()}
    assert {"OperatorExperiment", "PhysicsExperiment", "Experiment", "TrainSpec"} <= names
    assert {"SplitSpec", "CurriculumSpec", "PhysicsPhaseSpec", "SuiteEntry"} <= names
    assert {"PDEBench1DRecipe", "InitialConditionSpec", "RadialDamSpec", "NoiseSpec"} <= names


def test_every_field_has_a_description():
    missing = [
        f"{model.__name__}.{name}"
        for model in schemas()
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, f"{len(missing)} fields without a docstring: {', '.join(missing)}"


def test_descriptions_are_inherited_and_survive_an_own_model_config():
    for child, parent in [(OperatorTrainSpec, TrainSpec), (PhysicsPhaseSpec, PhaseSpec)]:
        for name in ("epochs", "optimizer"):
            description = parent.model_fields[name].description
            assert description and child.model_fields[name].description == description
    # ModelSpec and ProblemSpec set their own model_config; the parent's setting still holds.
    for name in ("ModelSpec", "ProblemSpec"):
        model = next(m for m in schemas() if m.__name__ == name)
        assert model.model_config.get("use_attribute_docstrings") is True
        assert model.model_config.get("extra") == "allow"
