"""The model contract: what the engine tells a model about the data, and what a model declares.

Every operator model maps `x (B, *X, C_in)` to `(B, *X, C_out)`, channels last, as
`model(x, pde_params=None)`; `pde_params` is `(B, P)` float or None. Beyond that:

- `ModelContext` holds the facts of the data a model is built for, made once from the data.
  A constructor receives the ones its signature names (`CONTEXT_ARGUMENTS`), so a model that
  needs the number of spatial axes asks for `spatial_dims`, one that needs the boundaries
  asks for `boundary`, and a config can never set them.
- PDE parameters reach the model normalised with the training split's statistics, unless a
  model of the stack sets `raw_pde_params = True` (CAPE transforms raw values itself);
  `takes_raw_pde_params` asks the stack.
- Optional capabilities are declared `Protocol`s, checked with `isinstance`: `ChecksGrid`,
  `AdjustableModes`, `PreparesWeights`, `HasLossView`, `AuxiliaryLoss`, and `Wrapper` for a
  model around another one (multi-grid patching; CAPE).

Auxiliary losses: a model may add terms of its own to the training loss (CAPE scores its own
prediction of the next frame). While it runs it records what the term needs with
`record_auxiliary(self, value)`; the training loss collects the records of one forward pass
(`collecting_auxiliary`) and adds `module.auxiliary_loss(value, target)` for each. Records
and terms are computed inside the same traced function, so this works inside the scanned
rollout, under rematerialisation and per micro-batch; outside a training loss (evaluation,
rollouts) nothing is recorded. For example:

    class Guessing(nnx.Module):
        def __call__(self, x, *, pde_params=None):
            guess = self.guess(x)                  # (B, *X, C)
            record_auxiliary(self, guess)
            return self.refine(jnp.concatenate([x, guess], axis=-1))

        def auxiliary_loss(self, guess, target):   # target: the next frame, (B, *X, C)
            return 0.1 * jnp.mean(jnp.square(guess - target))
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import nnx

from surrogates.errors import ModelError

# Constructor arguments the engine supplies from the data; configs may not set them.
CONTEXT_ARGUMENTS = (
    "in_channels",
    "out_channels",
    "spatial_dims",
    "spatial_shape",
    "boundary",
    "n_params",
    "in_dims",
    "out_dims",
    "lower",
    "upper",
    "periods",
    "rngs",
)


@dataclass(frozen=True)
class ModelContext:
    """The data a model is built for.

    - `in_channels`, `out_channels`: channels of the model's input and output.
    - `spatial_shape`: the grid `X`; `spatial_dims` is its length.
    - `boundary`: one of periodic | neumann | dirichlet | open | wall per spatial axis.
    - `param_names`: the PDE parameters fed as `pde_params (B, P)`; `n_params` is P.
    """

    in_channels: int
    out_channels: int
    spatial_shape: tuple[int, ...]
    boundary: tuple[str, ...]
    param_names: tuple[str, ...] = ()

    @property
    def spatial_dims(self) -> int:
        return len(self.spatial_shape)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def constructor_arguments(self, cls: type, rngs: nnx.Rngs) -> dict[str, Any]:
        """The context's values for the `CONTEXT_ARGUMENTS` that `cls.__init__` takes."""
        values = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "spatial_dims": self.spatial_dims,
            "spatial_shape": self.spatial_shape,
            "boundary": self.boundary,
            "n_params": self.n_params,
        }
        return _taken(cls, {**values, "rngs": rngs})


@dataclass(frozen=True)
class PointwiseContext:
    """The problem a pointwise model (`kind="pointwise"`) is built for.

    - `in_dims`: coordinates per point (d), `out_dims`: solution components.
    - `lower`, `upper`: the domain's box, per coordinate (a model may scale its inputs or
      place features inside it).
    - `periods`: per coordinate, its period if the problem is periodic along it, else None.
    """

    in_dims: int
    out_dims: int
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    periods: tuple[float | None, ...]

    def constructor_arguments(self, cls: type, rngs: nnx.Rngs) -> dict[str, Any]:
        """The context's values for the `CONTEXT_ARGUMENTS` that `cls.__init__` takes."""
        return _taken(cls, {**dataclasses.asdict(self), "rngs": rngs})


def _taken(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of `values` that `cls.__init__` names."""
    taken = inspect.signature(cls.__init__).parameters
    return {name: value for name, value in values.items() if name in taken}


@runtime_checkable
class Lagrangian(Protocol):
    """A pointwise model of `(t, xi)`, a time and a characteristic's starting point, that
    outputs the state on the characteristic and its position, `(u, X)` (LPINN); the physics
    task trains it on the Lagrangian form of the PDE (`surrogates.physics.formulation`)."""

    def state_and_position(self, coords: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`coords (..., 2)` -> `u (..., 1)`, `X (..., 1)`."""
        ...


@runtime_checkable
class HasCentres(Protocol):
    """A pointwise model built on localised features (PIG's Gaussians), whose centres an
    evaluation can draw."""

    def centres(self) -> jax.Array:
        """The features' centres in the problem's coordinates: (channels, N, d)."""
        ...


@runtime_checkable
class ChecksGrid(Protocol):
    """A model that works on some grids only (the FNO needs one mode count per axis)."""

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """Raise `ModelError` unless the model can run on `spatial_shape`, in one line that
        names the config key a user would change (`model.n_modes`, `data.stride_x`, ...).
        """
        ...


@runtime_checkable
class AdjustableModes(Protocol):
    """Fourier modes that can be changed after building, up to those allocated
    (incremental training grows them)."""

    n_modes: tuple[int, ...]

    @property
    def max_n_modes(self) -> tuple[int, ...]: ...

    def set_n_modes(self, n_modes: Sequence[int]) -> None:
        """Use `n_modes` from now on (static data: compiled functions must be rebuilt)."""
        ...


@runtime_checkable
class PreparesWeights(Protocol):
    """A module that computes with a prepared form of its weights (see
    `surrogates.models.prepared`)."""

    def prepare_weights(self) -> Any:
        """That form, a pytree computed from the parameters alone."""
        ...


@runtime_checkable
class HasLossView(Protocol):
    """A model whose training loss compares another view of the fields than the whole
    output (multi-grid patching without stitching compares patches)."""

    def loss_view(self, y: jax.Array) -> jax.Array:
        """A field (B, *X, C) as the training loss sees it."""
        ...


@runtime_checkable
class AuxiliaryLoss(Protocol):
    """A module that adds a term of its own to the training loss (see the module docs)."""

    def auxiliary_loss(self, recorded: Any, target: jax.Array) -> jax.Array:
        """The scalar term from what the module recorded in one forward pass and the target
        frame, normalised as the model's input frames are: (B, *X, C)."""
        ...


@runtime_checkable
class Wrapper(Protocol):
    """A model around another one, a layer of the model stack (`model.wrappers`).

    `inner_context(context, **options)` (a classmethod) says what the inner model is built
    for: multi-grid patching multiplies its input channels by the number of views.
    """

    @property
    def inner(self) -> nnx.Module:
        """The model inside."""
        ...

    def inner_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The grid the inner model sees when this one runs on `spatial_shape`."""
        ...


def operator_of(model: nnx.Module) -> nnx.Module:
    """The innermost model of a stack of wrappers (the model itself if it wraps nothing)."""
    while isinstance(model, Wrapper):
        model = model.inner
    return model


def takes_raw_pde_params(model: nnx.Module) -> bool:
    """Whether a model of the stack asks for unnormalised PDE parameters (`raw_pde_params`)."""
    while True:
        if getattr(model, "raw_pde_params", False):
            return True
        if not isinstance(model, Wrapper):
            return False
        model = model.inner


def check_grid(model: nnx.Module, spatial_shape: Sequence[int]) -> None:
    """Every model of the stack checks the grid it will run on."""
    shape = tuple(spatial_shape)
    while True:
        if isinstance(model, ChecksGrid):
            model.check_grid(shape)
        if not isinstance(model, Wrapper):
            return
        shape = model.inner_shape(shape)
        model = model.inner


# The records of the forward pass being collected, or None outside a training loss.
_RECORDS: contextvars.ContextVar[list[tuple[Any, Any]] | None] = contextvars.ContextVar(
    "auxiliary_records", default=None
)


def record_auxiliary(module: AuxiliaryLoss, value: Any) -> None:
    """Keep `value` for `module.auxiliary_loss` if a training loss is collecting."""
    records = _RECORDS.get()
    if records is None:
        return
    if not isinstance(module, AuxiliaryLoss):
        raise ModelError(
            f"{type(module).__name__} records an auxiliary value but has no auxiliary_loss"
        )
    records.append((module, value))


@contextlib.contextmanager
def collecting_auxiliary() -> Iterator[list[tuple[Any, Any]]]:
    """The records of the forward passes run inside this block."""
    records: list[tuple[Any, Any]] = []
    token = _RECORDS.set(records)
    try:
        yield records
    finally:
        _RECORDS.reset(token)


def auxiliary_total(records: list[tuple[Any, Any]], target: jax.Array) -> jax.Array:
    """The sum of the recorded modules' auxiliary terms against `target` (0 without any)."""
    total = jnp.zeros((), target.dtype)
    for module, value in records:
        total = total + module.auxiliary_loss(value, target)
    return total
