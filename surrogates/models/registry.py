"""Model registry: every model and wrapper has a name, and configs build them by that name.

```python
@register("fno")
class FNO(nnx.Module): ...

model = build("fno", n_modes=(16, 16), in_channels=3, out_channels=1, hidden_channels=32,
              rngs=nnx.Rngs(0))
```

Models are of one of two kinds: `operator` (the default; fields in, fields out, trained on
trajectories) or `pointwise` (coordinates in, the solution there out, trained on a PDE's
residual: `register("pinn", kind="pointwise")`). Each task builds models of its own kind only.

Wrappers (a model around another, `surrogates.models.contract.Wrapper`) register with
`register_wrapper("multigrid")` and are listed in configs under `model.wrappers`.

A misspelt model or argument name raises `ModelError` with the closest known spelling, so a
config typo fails in one line instead of deep inside a constructor.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flax import nnx

from surrogates.errors import ModelError

_ModelType = TypeVar("_ModelType", bound=type[nnx.Module])

KINDS = ("operator", "pointwise")

_MODELS: dict[str, type[nnx.Module]] = {}
_KIND: dict[str, str] = {}
_WRAPPERS: dict[str, type[nnx.Module]] = {}


def _registering(table: dict[str, type[nnx.Module]], name: str, what: str):
    def decorate(cls: _ModelType) -> _ModelType:
        known = table.get(name)
        # A module imported twice re-registers its own class, which is harmless.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"{what} name {name!r} is already taken by {known.__qualname__}")
        table[name] = cls
        return cls

    return decorate


def register(name: str, kind: str = "operator") -> Callable[[_ModelType], _ModelType]:
    """Class decorator that makes a model of `kind` (see `KINDS`) buildable as
    `build(name, ...)`."""
    if kind not in KINDS:
        raise ValueError(f"model kind {kind!r} is none of {', '.join(KINDS)}")
    _KIND[name] = kind
    return _registering(_MODELS, name, "model")


def register_wrapper(name: str) -> Callable[[_ModelType], _ModelType]:
    """Class decorator that makes a wrapper usable as `model.wrappers: [{name: {...}}]`."""
    return _registering(_WRAPPERS, name, "wrapper")


def wrappers() -> tuple[str, ...]:
    """The registered wrapper names, sorted."""
    return tuple(sorted(_WRAPPERS))


def wrapper(name: str) -> type[nnx.Module]:
    """The wrapper class registered as `name`; `ModelError` if there is none."""
    return _lookup(_WRAPPERS, name, "wrapper")


def available(kind: str | None = None) -> tuple[str, ...]:
    """The registered model names (of `kind` if given), sorted."""
    return tuple(sorted(name for name in _MODELS if kind is None or _KIND[name] == kind))


def kind_of(name: str) -> str:
    """`operator` or `pointwise`: what the model registered as `name` maps."""
    get(name)
    return _KIND[name]


def check_kind(name: str, kind: str, key: str = "model.name") -> None:
    """`ModelError` unless the model registered as `name` is of `kind`, naming `key`."""
    if kind_of(name) != kind:
        raise ModelError(
            f"{key}: {name!r} is a model of kind {kind_of(name)}; this task trains {kind} "
            f"models ({', '.join(available(kind))})"
        )


def get(name: str) -> type[nnx.Module]:
    """The model class registered as `name`; `ModelError` if there is none."""
    return _lookup(_MODELS, name, "model")


def _lookup(table: dict[str, type[nnx.Module]], name: str, what: str) -> type[nnx.Module]:
    try:
        return table[name]
    except KeyError:
        raise ModelError(
            f"unknown {what} {name!r}{_suggestion(name, table)}; "
            f"known {what}s: {', '.join(sorted(table))}"
        ) from None


def summary(name: str) -> str:
    """First line of the docstring of the model registered as `name` ('' without one)."""
    return _first_line(get(name))


def wrapper_summary(name: str) -> str:
    """First line of the docstring of the wrapper registered as `name`."""
    return _first_line(wrapper(name))


def wrapper_overhead(name: str) -> list[str]:
    """What the wrapper registered as `name` adds to a model, in words (its
    `overhead_lines()` classmethod; nothing if it has none)."""
    lines = getattr(wrapper(name), "overhead_lines", None)
    return list(lines()) if lines is not None else []


def _first_line(cls: type) -> str:
    """The docstring's first paragraph on one line (a sentence may span several)."""
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def build(name: str, **kwargs: Any) -> nnx.Module:
    """The model registered as `name`, constructed with `kwargs`.

    Unknown or missing constructor arguments raise `ModelError` naming the model and the
    argument, with the closest spelling for an unknown one.
    """
    return _construct(get(name), f"model {name!r}", (), kwargs)


def wrap(name: str, inner: nnx.Module, **kwargs: Any) -> nnx.Module:
    """The wrapper registered as `name` around `inner`, with options `kwargs` (checked as
    `build` checks a model's)."""
    return _construct(wrapper(name), f"wrapper {name!r}", (inner,), kwargs)


def check_wrapper(name: str, **kwargs: Any) -> None:
    """`ModelError` unless `kwargs` (besides the model inside) fit the wrapper's constructor."""
    _check_call(wrapper(name), f"wrapper {name!r}", (None,), kwargs)


def _construct(cls: type, what: str, args: tuple, kwargs: dict[str, Any]) -> nnx.Module:
    _check_call(cls, what, args, kwargs)
    return cls(*args, **kwargs)


def _check_call(cls: type, what: str, args: tuple, kwargs: dict[str, Any]) -> None:
    # nnx's metaclass hides the constructor's signature behind (*args, **kwargs).
    signature = inspect.signature(cls.__init__)
    # Leave out self and the positional arguments given.
    parameters = dict(list(signature.parameters.items())[1 + len(args) :])
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if not takes_any:
        for key in kwargs:
            if key not in parameters:
                raise ModelError(
                    f"{what} has no argument {key!r}{_suggestion(key, parameters)}; "
                    f"its arguments: {', '.join(parameters)}"
                )
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise ModelError(f"{what}: {error}") from None


def _suggestion(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean 'x'?)" for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
