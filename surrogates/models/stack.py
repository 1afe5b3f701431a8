"""A configured model: the registry's model inside its stack of wrappers, built for the data.

The stack is listed outermost first (`model.wrappers`). Each wrapper says what the model inside
it is built for (`inner_context`: multi-grid patching multiplies the input channels), so the
contexts are worked out from the outside in, the innermost model is built first, and the
wrappers are put around it from the inside out. Every constructor receives the context values
its signature asks for (`ModelContext.constructor_arguments`) besides the config's arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flax import nnx

from surrogates.models import registry
from surrogates.models.contract import ModelContext


def build_stack(
    name: str,
    arguments: dict[str, Any],
    wrappers: Sequence[tuple[str, dict[str, Any]]],
    context: ModelContext,
    *,
    rngs: nnx.Rngs,
) -> nnx.Module:
    """Model `name` with `arguments`, inside `wrappers` (`(kind, options)`, outermost first),
    for data described by `context`."""
    registry.check_kind(name, "operator")
    contexts = [context]
    for kind, options in wrappers:
        cls = registry.wrapper(kind)
        registry.check_wrapper(kind, **contexts[-1].constructor_arguments(cls, rngs), **options)
        contexts.append(cls.inner_context(contexts[-1], **options))
    cls = registry.get(name)
    model = registry.build(name, **contexts[-1].constructor_arguments(cls, rngs), **arguments)
    for (kind, options), outer in zip(reversed(wrappers), reversed(contexts[:-1]), strict=True):
        cls = registry.wrapper(kind)
        model = registry.wrap(kind, model, **outer.constructor_arguments(cls, rngs), **options)
    return model
