"""The physics task: a pointwise model trained on a PDE's residual at collocation points.

Each step draws its points inside the compiled step, from a key derived from the run's seed
and the step's number (every `train.resample_every` steps a new draw; an L-BFGS phase keeps
one draw unless told otherwise, since its line search needs one objective), sharded over the
devices like a batch. A phase may set its own point counts and resampling.
The loss is a weighted sum of mean squared residuals, one per term (`residual`, `initial`,
`boundary`, and LPINN's `characteristics`), see `surrogates.physics.formulation`. The weights
live in the optimizer state, beside the optimizer's own: `fixed` keeps `train.weights`,
`grad_norm` rebalances them every `train.balance.every` steps, and a checkpoint keeps them so a
resumed run goes on with the same weights. Causal weighting (`train.causal`) orders the
residual of a time-dependent problem.

There is no validation data: the final iterate is evaluated (`train.select: last`). Each
epoch logs the relative L2 error on the problem's evaluation grid as a record of the error
over training; it never chooses a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from surrogates.config import PhaseSpec, PhysicsExperiment
from surrogates.errors import ConfigError
from surrogates.models import registry
from surrogates.models.contract import Lagrangian, PointwiseContext
from surrogates.physics import Problem, build_problem
from surrogates.physics.formulation import (
    HasLagrangianForm,
    LagrangianForm,
    eulerian_terms,
    lagrangian_terms,
)
from surrogates.physics.problem import grid_points
from surrogates.training import sharding
from surrogates.training.optimizers import apply_update
from surrogates.training.task import Model, Step, initial_optimizer_state

# Points per evaluation call: bounds the memory of a model's activations on a large grid.
EVALUATION_CHUNK = 16384


class PhysicsTask:
    """A pointwise model of `experiment.model` on the problem `experiment.problem`."""

    validation_name = "val_loss"
    model_path: tuple[str, ...] = ()

    def __init__(
        self,
        experiment: PhysicsExperiment,
        model: nnx.Module | None = None,
        mesh: Mesh | None = None,
    ):
        self.experiment = experiment
        spec = experiment.problem
        self.problem: Problem = build_problem(spec.name, **spec.parameters())
        cls = type(model) if model is not None else registry.get(experiment.model.name)
        self.form = self._lagrangian_form(cls)
        self.mesh = sharding.data_mesh() if mesh is None else mesh
        if model is None:
            rngs = nnx.Rngs(experiment.train.seed)
            arguments = self.context().constructor_arguments(cls, rngs)
            model = registry.build(
                experiment.model.name, **arguments, **experiment.model.arguments()
            )
        self.model = Model.of(model, self.mesh)
        if self.form is None:
            self.terms = eulerian_terms(self.problem)
        else:
            self.terms = lagrangian_terms(self.problem, self.form)
        self.names = list(dict.fromkeys(term.name for term in self.terms))
        self._check_weights()
        self.steps_per_epoch = experiment.train.steps_per_epoch
        self.phase_index = 0
        graphdef = self.model.graphdef
        self._forward = jax.jit(lambda params, rest, x: nnx.merge(graphdef, params, rest)(x))
        self._reference: np.ndarray | None = None

    def _lagrangian_form(self, cls: type) -> LagrangianForm | None:
        """The problem's Lagrangian form for a `Lagrangian` model (LPINN), else None."""
        if not issubclass(cls, Lagrangian):
            return None
        if not isinstance(self.problem, HasLagrangianForm):
            raise ConfigError(
                f"model.name: {self.experiment.model.name} needs a problem with a Lagrangian "
                f"form (u_t + F(u) u_x = nu u_xx); {self.problem.name} has none"
            )
        return self.problem.lagrangian()

    def context(self) -> PointwiseContext:
        """The problem as a pointwise model sees it (a Lagrangian model: periodic in x)."""
        domain, problem = self.problem.domain, self.problem
        periods = dict(problem.periods)
        if self.form is not None:
            periods["x"] = self.form.period
        return PointwiseContext(
            in_dims=domain.dims,
            out_dims=len(problem.outputs),
            lower=domain.lower,
            upper=domain.upper,
            periods=tuple(periods.get(name) for name in domain.names),
        )

    def _check_weights(self) -> None:
        for key in self.experiment.train.weights:
            if key not in self.names:
                raise ConfigError(
                    f"train.weights.{key}: no such loss term for {self.experiment.model.name} "
                    f"on {self.problem.name} (its terms: {', '.join(self.names)})"
                )

    def facts(self) -> dict[str, Any]:
        """What a run records about its problem (`data.json`)."""
        grid = self.problem.evaluation_grid()
        return {
            "problem": self.problem.name,
            "parameters": self.problem.parameters(),
            "outputs": list(self.problem.outputs),
            "evaluation_grid": {name: len(values) for name, values in grid.items()},
            "points_per_step": self.points_per_name(),
            "points_per_phase": [
                self.points_per_name(index) for index in range(len(self._phases()))
            ],
            "formulation": "eulerian" if self.form is None else "lagrangian",
        }

    def points_per_name(self, phase: int | None = None) -> dict[str, int]:
        """Points per step of each loss term in optimizer phase `phase` (the run's
        `train.points` when None), summed over its conditions (Helmholtz's four sides are
        one `boundary`)."""
        totals = dict.fromkeys(self.names, 0)
        for term, count in zip(self.terms, self.counts(phase), strict=True):
            totals[term.name] += count
        return totals

    def counts(self, phase: int | None = None) -> list[int]:
        """Points per term per step in optimizer phase `phase` (the run's `train.points`
        when None): each kind's count shared by its terms, rounded up to a multiple of the
        device count (the points are sharded) and, for a causally weighted term, of
        `causal.chunks` too (its points are cut into that many chunks)."""
        train = self.experiment.train
        points = train.points if phase is None else train.phase_points()[phase]
        per_kind = {"initial": points.initial, "boundary": points.boundary}
        devices = self.mesh.size
        counts = []
        for term in self.terms:
            total = per_kind.get(term.name, points.residual)
            share = -(-total // sum(t.name == term.name for t in self.terms))
            step = devices
            if train.causal is not None and term.causal:
                step = math.lcm(devices, train.causal.chunks)
            counts.append(-(-share // step) * step)
        return counts

    def initial_weights(self) -> np.ndarray:
        given = self.experiment.train.weights
        return np.asarray([given.get(name, 1.0) for name in self.names], np.float32)

    def optimizer_state(self, tx: optax.GradientTransformation, previous: Any = None) -> Any:
        """`{"tx": tx's state, "weights": (terms,)}`; the weights carry over from `previous`."""
        if previous is not None:
            weights = jnp.copy(previous["weights"])
        else:
            weights = jnp.asarray(self.initial_weights())
        weights = jax.device_put(weights, sharding.replicated(self.mesh))
        return {"tx": initial_optimizer_state(tx, self.model.params, self.mesh), "weights": weights}

    def start_epoch(self, epoch: int) -> bool:
        """Note the optimizer phase of `epoch`: a new phase compiles its own step (its
        point counts and draws)."""
        ends = np.cumsum([phase.epochs for phase in self._phases()])
        index = int(np.searchsorted(ends, epoch, side="right"))
        changed = index != self.phase_index
        self.phase_index = index
        return changed

    def _phases(self) -> list[PhaseSpec]:
        return self.experiment.train.phase_list()

    def make_step(self, tx: optax.GradientTransformationExtraArgs) -> Step:
        train = self.experiment.train
        losses = self._term_losses()
        phase = self.phase_index
        draw = self._sampler(self.counts(phase))
        resample = train.phase_resampling()[phase]
        line_search = self._phases()[phase].optimizer.name == "lbfgs"
        rebalance = train.balance.name == "grad_norm" and not line_search
        every, momentum = train.balance.every, train.balance.momentum
        steps_per_epoch = self.steps_per_epoch
        seed = train.seed

        @partial(jax.jit, donate_argnums=(0, 1))
        def step(params, opt_state, rest, counter):
            number = counter[0] * steps_per_epoch + counter[1]
            points = draw(collocation_key(seed, number, resample, phase))
            weights = opt_state["weights"]
            if rebalance:
                weights = jax.lax.cond(
                    number % every == 0,
                    lambda: _balanced(losses, params, rest, points, weights, momentum),
                    lambda: weights,
                )

            def loss(candidate):
                return jnp.sum(weights * losses(candidate, rest, points))

            value, grads = jax.value_and_grad(loss)(params)
            params, state = apply_update(tx, params, opt_state["tx"], value, grads, loss)
            return params, {"tx": state, "weights": weights}, value

        return step

    def _sampler(self, counts: list[int] | None = None):
        """`key -> points per term`, `counts` of them (the run's `train.points` by default),
        each `(n, d)` sharded over the devices; a causal residual's points sorted by time."""
        terms, counts = self.terms, counts or self.counts()
        causal = self.experiment.train.causal is not None
        placement = sharding.batch_sharded(self.mesh)

        def draw(key: jax.Array) -> list[jax.Array]:
            points = []
            for i, (term, n) in enumerate(zip(terms, counts, strict=True)):
                sample = term.region.sample(jax.random.fold_in(key, i), n)
                if causal and term.causal:
                    sample = sample[jnp.argsort(sample[:, 0])]
                points.append(jax.lax.with_sharding_constraint(sample, placement))
            return points

        return draw

    def _term_losses(self):
        """`(params, rest, points) -> (names,)`: each term's mean squared residual, averaged
        over the terms of one name."""
        graphdef, terms, names = self.model.graphdef, self.terms, self.names
        causal = self.experiment.train.causal

        def losses(params: nnx.State, rest: nnx.State, points: list[jax.Array]) -> jax.Array:
            model = nnx.merge(graphdef, params, rest)
            totals = [[] for _ in names]
            for term, sample in zip(terms, points, strict=True):
                residual = jax.vmap(lambda p, term=term: term.residual(model, p))(sample)
                squared = jnp.mean(jnp.square(residual), axis=-1)
                if causal is not None and term.causal:
                    totals[names.index(term.name)].append(_causal(squared, causal))
                else:
                    totals[names.index(term.name)].append(jnp.mean(squared))
            return jnp.stack([jnp.mean(jnp.stack(parts)) for parts in totals])

        return losses

    def inputs(self, epoch: int) -> Iterator[tuple]:
        for _ in range(self.steps_per_epoch):
            yield ()

    def validate(self) -> float | None:
        return None

    def epoch_log(self, epoch: int) -> dict[str, Any]:
        prediction, reference = self.predict(), self.problem_reference()
        return {"rel_l2": relative_l2(prediction, reference)}

    def checkpoint_meta(self) -> dict[str, Any]:
        return {}

    def restore_meta(self, meta: dict[str, Any]) -> None:
        return None

    def problem_reference(self) -> np.ndarray:
        """The reference on the evaluation grid (computed once): (*grid, n_out)."""
        if self._reference is None:
            self._reference = self.problem.reference()
        return self._reference

    def predict(self) -> np.ndarray:
        """The current model's solution on the problem's evaluation grid: (*grid, n_out)."""
        grid = self.problem.evaluation_grid()
        if self.form is not None:
            return self._predict_lagrangian(grid)
        return self._evaluate(grid_points(grid))

    def _evaluate(self, points: np.ndarray) -> np.ndarray:
        """The model's output at `points (..., d)`: (..., n_out), in chunks."""
        flat = points.reshape(-1, points.shape[-1]).astype(np.float32)
        parts = [
            np.asarray(
                self._forward(self.model.params, self.model.rest, flat[i : i + EVALUATION_CHUNK])
            )
            for i in range(0, len(flat), EVALUATION_CHUNK)
        ]
        return np.concatenate(parts).reshape(*points.shape[:-1], -1).astype(np.float64)

    def _predict_lagrangian(self, grid: dict[str, np.ndarray]) -> np.ndarray:
        """LPINN's state carried to the Eulerian grid: at each time, `u` on the
        characteristics from the grid's x, interpolated linearly (periodically) at their
        positions `X`."""
        outputs = self._evaluate(grid_points(grid))  # (T, N, 2) as (u, X)
        x, period = grid["x"], self.form.period
        lower = self.problem.domain.lower[1]
        rows = [
            np.interp(x, lower + np.mod(row[:, 1] - lower, period), row[:, 0], period=period)
            for row in outputs
        ]
        return np.stack(rows)[..., None]


def collocation_key(seed: int, number: jax.Array, every: int | None, phase: int) -> jax.Array:
    """The key of the collocation points of step `number` (counted from the run's start) in
    optimizer phase `phase`: one draw per `every` steps, or one draw for the whole phase
    when `every` is None (an L-BFGS phase's default)."""
    key = jax.random.key(seed)
    if every is None:
        return jax.random.fold_in(jax.random.fold_in(key, 1), phase)
    return jax.random.fold_in(jax.random.fold_in(key, 0), number // every)


def relative_l2(prediction: np.ndarray, reference: np.ndarray) -> float:
    """`|prediction - reference|_2 / |reference|_2` over the whole grid and every output."""
    return float(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))


def _causal(squared: jax.Array, spec) -> jax.Array:
    """Causal weighting of `squared (n,)` residuals sorted by time: chunk losses `L_k`
    weighted by `exp(-epsilon * sum_{j<k} L_j)` (the weights carry no gradient)."""
    chunks = jnp.mean(squared.reshape(spec.chunks, -1), axis=1)
    before = jnp.cumsum(chunks) - chunks
    weights = jax.lax.stop_gradient(jnp.exp(-spec.epsilon * before))
    return jnp.mean(weights * chunks)


def _balanced(losses, params, rest, points, weights: jax.Array, momentum: float) -> jax.Array:
    """Gradient-norm balancing: each weight moved towards `mean_j |g_j| / |g_i|` (the
    gradients of the unweighted term losses), as a moving average; no gradient flows."""
    jacobian = jax.jacrev(losses)(params, rest, points)
    squares = sum(
        jnp.sum(jnp.square(leaf).reshape(leaf.shape[0], -1), axis=1)
        for leaf in jax.tree.leaves(jacobian)
    )
    norms = jnp.sqrt(squares) + 1e-12
    target = jnp.mean(norms) / norms
    return jax.lax.stop_gradient(momentum * weights + (1 - momentum) * target)
