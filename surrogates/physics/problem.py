"""The physics-informed problem contract: a PDE on a box, its conditions and its reference.

A problem is a frozen dataclass whose fields are its PDE parameters (`Convection(beta=30.0)`),
registered by name (`@register_problem("convection")`) so that an experiment's
`problem: {name: convection, beta: 30}` builds it. Points are rows `(d,)` of coordinates in
the order of `domain.names`, time first for evolution problems (`("t", "x")`).

Everything a physics-informed task needs is pointwise, on a function `u: (d,) -> (n_out,)`:

- `residual(u, point) -> (k,)`: the PDE's residual(s) at one interior point, with derivatives
  from `surrogates.physics.derivatives` (forward mode);
- `conditions()`: initial and boundary conditions, each a `Condition` with the face it lives
  on and its own pointwise residual (`u(p) - g(p)` for Dirichlet data, `u(p) - u(p')` for a
  periodic pair);
- `reference()`: the exact or reference solution on `evaluation_grid()`, float64.

The task vectorises these over points with `jax.vmap`; nothing here loops over points in
Python.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.errors import ConfigError

# A pointwise function of the coordinates: (d,) -> (n_out,).
PointFunction = Callable[[jax.Array], jax.Array]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box: `lower[i] <= point[i] <= upper[i]` for the coordinate `names[i]`.
    A face of a box is a box with `lower[i] == upper[i]` on one axis."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def dims(self) -> int:
        return len(self.names)

    def axis(self, name: str) -> int:
        return self.names.index(name)

    def sample(self, key: jax.Array, n: int, dtype: Any = jnp.float32) -> jax.Array:
        """`n` points drawn uniformly in the box: (n, d)."""
        unit = jax.random.uniform(key, (n, self.dims), dtype)
        lower, upper = jnp.asarray(self.lower, dtype), jnp.asarray(self.upper, dtype)
        return lower + unit * (upper - lower)

    def face(self, name: str, side: str) -> Box:
        """The face `name = lower` (`side="lower"`) or `name = upper`."""
        i = self.axis(name)
        value = self.lower[i] if side == "lower" else self.upper[i]
        lower, upper = list(self.lower), list(self.upper)
        lower[i] = upper[i] = value
        return Box(self.names, tuple(lower), tuple(upper))

    def length(self, name: str) -> float:
        i = self.axis(name)
        return self.upper[i] - self.lower[i]


@dataclass(frozen=True)
class Condition:
    """An initial or boundary condition: `residual(u, point) -> (k,)` vanishes on `region`.

    `name` is the loss term it feeds (`initial`, `boundary`, ...); conditions of one name
    share its weight and its number of points.
    """

    name: str
    region: Box
    residual: Callable[[PointFunction, jax.Array], jax.Array]


def dirichlet(name: str, region: Box, value: Callable[[jax.Array], jax.Array]) -> Condition:
    """`u(p) = value(p)` on `region` (`value: (d,) -> (n_out,)`)."""
    return Condition(name, region, lambda u, p: u(p) - value(p))


def periodic(domain: Box, axis: str, name: str = "boundary") -> Condition:
    """`u` equal on the faces `axis = lower` and `axis = upper` (points drawn on the first)."""
    i, length = domain.axis(axis), domain.length(axis)
    return Condition(name, domain.face(axis, "lower"), lambda u, p: u(p) - u(p.at[i].add(length)))


class Problem:
    """Base of the registered problems (frozen dataclasses; their fields are the PDE
    parameters). Subclasses set `domain`, `outputs`, `periods` and implement the methods."""

    name: ClassVar[str] = ""
    # The solution's components: one output of the model each.
    outputs: ClassVar[tuple[str, ...]] = ("u",)

    @property
    def domain(self) -> Box:
        raise NotImplementedError

    @property
    def periods(self) -> dict[str, float]:
        """The periodic coordinates and their periods (a model may embed them periodically)."""
        return {}

    @property
    def time_dependent(self) -> bool:
        return self.domain.names[0] == "t"

    def residual(self, u: PointFunction, point: jax.Array) -> jax.Array:
        """The PDE's residual(s) at one interior point: (k,)."""
        raise NotImplementedError

    def conditions(self) -> tuple[Condition, ...]:
        raise NotImplementedError

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        """Coordinate name -> its values (1D, float64), in `domain.names` order; the
        reference and the evaluation live on their tensor product."""
        raise NotImplementedError

    def reference(self) -> np.ndarray:
        """The solution on `evaluation_grid()`: (*grid, n_out) float64."""
        raise NotImplementedError

    def parameters(self) -> dict[str, float]:
        """The PDE parameters (the dataclass fields), for records and file attributes."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def check_parameter(problem: Problem, name: str, valid: bool, rule: str) -> None:
    """Stop in one line naming `problem.<name>` unless `valid`; `rule` says what is expected
    (`"nu > 0"`). For a problem's `__post_init__`."""
    if not valid:
        raise ConfigError(
            f"problem.{name}: {problem.name} needs {rule}, got {getattr(problem, name)!r}"
        )


class PeriodicEvolution(Problem):
    """A 1D evolution on x in [0, 2 pi) periodic, t in [0, 1], from `initial(point) -> (1,)`,
    scored against `exact` on Krishnapriyan et al.'s grid (100 times by 256 positions, x = 2 pi
    excluded): the setting of the convection and reaction failure modes."""

    @property
    def domain(self) -> Box:
        return Box(("t", "x"), (0.0, 0.0), (1.0, 2 * np.pi))

    @property
    def periods(self) -> dict[str, float]:
        return {"x": 2 * np.pi}

    def initial(self, point: jax.Array) -> jax.Array:
        raise NotImplementedError

    def exact(self, point: jax.Array) -> jax.Array:
        raise NotImplementedError

    def conditions(self) -> tuple[Condition, ...]:
        domain = self.domain
        return (
            dirichlet("initial", domain.face("t", "lower"), self.initial),
            periodic(domain, "x"),
        )

    def evaluation_grid(self) -> dict[str, np.ndarray]:
        return {
            "t": np.linspace(0.0, 1.0, 100),
            "x": np.linspace(0.0, 2 * np.pi, 256, endpoint=False),
        }

    def reference(self) -> np.ndarray:
        return on_grid(self.exact, self.evaluation_grid())


def grid_points(grid: dict[str, np.ndarray]) -> np.ndarray:
    """The tensor product of `grid`'s coordinates as points: (*shape, d) float64, `ij`
    order (the first coordinate varies slowest)."""
    axes = np.meshgrid(*grid.values(), indexing="ij")
    return np.stack(axes, axis=-1)


def on_grid(exact: PointFunction, grid: dict[str, np.ndarray]) -> np.ndarray:
    """A closed-form solution evaluated on `grid` in float64: (*shape, n_out)."""
    points = grid_points(grid)
    flat = points.reshape(-1, points.shape[-1])
    with jax.enable_x64(True):
        values = jax.jit(jax.vmap(exact))(jnp.asarray(flat, jnp.float64))
        values = np.asarray(values, np.float64)
    return values.reshape(*points.shape[:-1], -1)


_ProblemType = TypeVar("_ProblemType", bound=type[Problem])
_PROBLEMS: dict[str, type[Problem]] = {}


def register_problem(name: str) -> Callable[[_ProblemType], _ProblemType]:
    """Class decorator: the problem is built as `build_problem(name, **parameters)`."""

    def decorate(cls: _ProblemType) -> _ProblemType:
        cls.name = name
        _PROBLEMS[name] = cls
        return cls

    return decorate


def problems() -> tuple[str, ...]:
    """The registered problem names, sorted."""
    return tuple(sorted(_PROBLEMS))


def problem_class(name: str) -> type[Problem]:
    if name not in _PROBLEMS:
        close = difflib.get_close_matches(name, list(_PROBLEMS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"problem.name: unknown problem {name!r}{hint}; known: {', '.join(problems())}"
        )
    return _PROBLEMS[name]


def build_problem(name: str, **parameters: Any) -> Problem:
    """The problem registered as `name` with its PDE `parameters`; a misspelt parameter
    stops in one line naming it and the problem's parameters."""
    cls = problem_class(name)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in parameters:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"problem.{key}: {name} has no parameter {key!r}{hint}; "
                f"its parameters: {', '.join(fields) or 'none'}"
            )
    return cls(**parameters)
