"""Model registry: every model has a name, and configs build models by that name.

```python
@register("fno")
class FNO(nnx.Module): ...

model = build("fno", n_modes=(16, 16), in_channels=3, out_channels=1, hidden_channels=32,
              rngs=nnx.Rngs(0))
```

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

_MODELS: dict[str, type[nnx.Module]] = {}


def register(name: str) -> Callable[[_ModelType], _ModelType]:
    """Class decorator that makes a model buildable as `build(name, ...)`."""

    def decorate(cls: _ModelType) -> _ModelType:
        known = _MODELS.get(name)
        # A module imported twice re-registers its own class, which is harmless.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"model name {name!r} is already taken by {known.__qualname__}")
        _MODELS[name] = cls
        return cls

    return decorate


def available() -> tuple[str, ...]:
    """The registered model names, sorted."""
    return tuple(sorted(_MODELS))


def get(name: str) -> type[nnx.Module]:
    """The model class registered as `name`; `ModelError` if there is none."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}{_suggestion(name, _MODELS)}; "
            f"known models: {', '.join(available())}"
        ) from None


def summary(name: str) -> str:
    """First line of the docstring of the model registered as `name` ('' without one)."""
    doc = inspect.getdoc(get(name)) or ""
    return doc.splitlines()[0] if doc else ""


def build(name: str, **kwargs: Any) -> nnx.Module:
    """The model registered as `name`, constructed with `kwargs`.

    Unknown or missing constructor arguments raise `ModelError` naming the model and the
    argument, with the closest spelling for an unknown one.
    """
    cls = get(name)
    # nnx's metaclass hides the constructor's signature behind (*args, **kwargs).
    signature = inspect.signature(cls.__init__)
    parameters = dict(signature.parameters)
    del parameters[next(iter(parameters))]  # self
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if not takes_any:
        for key in kwargs:
            if key not in parameters:
                raise ModelError(
                    f"model {name!r} has no argument {key!r}{_suggestion(key, parameters)}; "
                    f"its arguments: {', '.join(parameters)}"
                )
    try:
        signature.bind(None, **kwargs)
    except TypeError as error:
        raise ModelError(f"model {name!r}: {error}") from None
    return cls(**kwargs)


def _suggestion(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean 'x'?)" for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
