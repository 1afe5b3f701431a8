"""Weights prepared once per training step, whatever the number of micro-batches.

Some models compute with a form of their weights that depends on the parameters alone: an
FNO's spectral weights made complex and laid out modes first, or a Tucker core expanded over
the modes. Such a model declares `prepare_weights()` (that form, a pytree; the protocol
`surrogates.models.contract.PreparesWeights`) and looks in its
forward pass for a form given from outside with `given_weights(self)`, preparing its own when
there is none.

That lets a training step split the gradient at the prepared form. Under
`train.micro_batches` it prepares once before the loop over parts, takes each part's gradient
with respect to the prepared form (besides the parameters), and pulls the sum back to the
parameters once (see `steps.micro_batched_value_and_grad`); otherwise the backward pass of the
preparation would run once per part (which matters for a Tucker core expanded over the modes,
little for a dense weight).

    prepared = prepare_all(model)            # {path: prepared form}, from parameters only
    with given(model, prepared):
        y = model(x)                         # the forward pass reads `prepared`
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.contract import PreparesWeights

# id of a module -> its given prepared form, for the forward passes traced inside `given`.
_GIVEN: contextvars.ContextVar[dict[int, Any] | None] = contextvars.ContextVar(
    "given", default=None
)


def _preparing(model: Any) -> dict[str, nnx.Module]:
    """The modules of `model` (itself included) that define `prepare_weights`, by path."""
    return {
        "/".join(str(part) for part in path): node
        for path, node in nnx.iter_graph(model)
        if isinstance(node, nnx.Module) and isinstance(node, PreparesWeights)
    }


def prepare_all(model: Any) -> dict[str, Any]:
    """`{path: module.prepare_weights()}` for every module of `model` that prepares weights
    (empty when none does)."""
    return {path: module.prepare_weights() for path, module in _preparing(model).items()}


@contextlib.contextmanager
def given(model: Any, prepared: dict[str, Any] | None) -> Iterator[None]:
    """Within this block, forward passes of `model`'s modules use `prepared` (from
    `prepare_all` on a model of the same structure) instead of preparing their own weights;
    None gives nothing.
    """
    if prepared is None:
        yield
        return
    modules = _preparing(model)
    if set(modules) != set(prepared):
        raise ModelError(
            f"prepared weights are for modules {sorted(prepared)}, this model's are "
            f"{sorted(modules)}"
        )
    outer = _GIVEN.get() or {}
    token = _GIVEN.set(
        {**outer, **{id(module): prepared[path] for path, module in modules.items()}}
    )
    try:
        yield
    finally:
        _GIVEN.reset(token)


def given_weights(module: nnx.Module) -> Any | None:
    """The prepared form given to `module` by an enclosing `given`, or None."""
    return (_GIVEN.get() or {}).get(id(module))
