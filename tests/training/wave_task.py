"""A task defined in the tests only: fit `sin(2 pi x)` on [0, 1] at random points, no files.

The points of each step are drawn inside the compiled step from the key of its
`[epoch, step]`, as a physics-informed task draws its collocation points. Importing this module
registers the task kind `wave` with the config schema and the workflow, so `surrogates.train`
runs it like any experiment.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from surrogates.atomic import write_text
from surrogates.config import Experiment, register_experiment
from surrogates.training import sharding
from surrogates.training.optimizers import apply_update
from surrogates.training.task import Model, initial_optimizer_state, step_key
from surrogates.workflow import TaskKind, register_task


@register_experiment("wave")
class WaveExperiment(Experiment):
    task: Literal["wave"] = "wave"
    points: int = 128
    width: int = 16
    steps_per_epoch: int = 8
    # From this epoch (0-based) on, the loss is NaN: the trainer must stop.
    poison_epoch: int | None = None


class Wave(nnx.Module):
    """x (N, 1) -> (N, 1): a tanh MLP with parts `first`, `hidden` and `last`."""

    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.first = nnx.Linear(1, width, rngs=rngs)
        self.hidden = nnx.Linear(width, width, rngs=rngs)
        self.last = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.last(jnp.tanh(self.hidden(jnp.tanh(self.first(x)))))


def target(x: jax.Array) -> jax.Array:
    return jnp.sin(2 * jnp.pi * x)


def squared_error(model: Wave, x: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(model(x) - target(x)))


GRID = jnp.linspace(0.0, 1.0, 101)[:, None]


class WaveTask:
    validation_name = "val_error"
    model_path = ()

    def __init__(self, experiment: WaveExperiment):
        self.experiment = experiment
        self.mesh = sharding.data_mesh()
        wave = Wave(experiment.width, rngs=nnx.Rngs(experiment.train.seed))
        self.model = Model.of(wave, self.mesh)
        self.steps_per_epoch = experiment.steps_per_epoch

    def optimizer_state(self, tx: optax.GradientTransformation, previous: Any = None) -> Any:
        return initial_optimizer_state(tx, self.model.params, self.mesh)

    def start_epoch(self, epoch: int) -> bool:
        return False

    def make_step(self, tx):
        graphdef, seed, points = (
            self.model.graphdef,
            self.experiment.train.seed,
            self.experiment.points,
        )

        @partial(jax.jit, donate_argnums=(0, 1))
        def step(params, opt_state, rest, counter, poison):
            x = jax.random.uniform(step_key(seed, counter), (points, 1))

            def loss(candidate):
                return squared_error(nnx.merge(graphdef, candidate, rest), x) + poison

            value, grads = jax.value_and_grad(loss)(params)
            params, opt_state = apply_update(tx, params, opt_state, value, grads, loss)
            return params, opt_state, value

        return step

    def inputs(self, epoch: int):
        poisoned = (
            self.experiment.poison_epoch is not None and epoch >= self.experiment.poison_epoch
        )
        for _ in range(self.steps_per_epoch):
            yield (np.float32(np.nan if poisoned else 0.0),)

    def validate(self) -> float:
        return float(squared_error(self.model.module(), GRID))

    def epoch_log(self, epoch: int) -> dict[str, Any]:
        return {}

    def checkpoint_meta(self) -> dict[str, Any]:
        return {}

    def restore_meta(self, meta: dict[str, Any]) -> None:
        pass


def evaluate(task: WaveTask, run: Path, out: Path, **_) -> None:
    """`eval.json`: the error of the selected weights on the grid."""
    write_text(out / "eval.json", json.dumps({"error": task.validate()}))


register_task(
    "wave",
    TaskKind(
        train_task=lambda experiment, model: WaveTask(experiment),
        eval_task=lambda experiment, files, stride_x, model: WaveTask(experiment),
        record=lambda task: (task.experiment, {}),
        evaluate=evaluate,
    ),
)
