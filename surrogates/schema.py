"""Strict YAML-to-typed-object validation with one-line errors that name the key path.

Recipes and experiment configs are pydantic models that forbid unknown keys. A file that is
missing, not YAML, or invalid becomes one `SurrogatesError` subclass message such as
`datasets/burgers1d.yaml: solver.cfll: unknown key (did you mean 'cfl'?)`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from surrogates.errors import SurrogatesError

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """A frozen schema node that rejects keys it does not know.

    The string literal under a field is that field's `description`, the text a generated
    configuration reference shows for the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def load_yaml(path: str | Path, error: type[SurrogatesError]) -> dict[str, Any]:
    """The mapping at the top of a YAML file, or `error` naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of keys at the top, found {type(data).__name__}")
    return data


def validate(schema: type[Model], data: Any, source: str, error: type[SurrogatesError]) -> Model:
    """`schema` filled from `data`, or `error` with the first problem as `source: key.path: ...`."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise error(f"{source}: {describe_error(schema, exc.errors()[0])}") from None


def describe_error(schema: type[BaseModel], detail: dict[str, Any]) -> str:
    """One pydantic error as `key.path: message`, with a close spelling for unknown keys."""
    loc = [str(part) for part in detail["loc"]]
    message = detail["msg"].removeprefix("Value error, ")
    if not loc:
        # Whole-object checks name their keys in the message themselves.
        return message
    path = ".".join(loc)
    if detail["type"] == "extra_forbidden":
        known = _keys_at(schema, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(known)}"
        return f"{path}: unknown key ({hint})"
    if detail["type"] in ("missing", "value_error") or "input" not in detail:
        return f"{path}: {message}"
    return f"{path}: {message} (found {detail['input']!r})"


def _keys_at(schema: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys a (nested) model accepts at `loc`, or [] if `loc` is not a model."""
    model: Any = schema
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return []
        model = fields[part].annotation
    return list(getattr(model, "model_fields", {}))
