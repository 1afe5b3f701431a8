"""Benchmark: APEBench's own trainer against the suite's, same scenario, network and machine.

On an APEBench scenario (default `diff_adv`, 1D advection: 50 training trajectories of 51
frames, 30 test ones of 201) with APEBench's protocol (one-step supervised training, MSE,
batch 20, Adam with warm-up cosine 0 -> 1e-3 over a fifth of the steps, then to 0):

1. APEBench trains PDEquinox's conv net (`Conv;34;10;relu`) with its own trainer (Trainax),
   from the key APEBench derives from the seed;
2. the suite trains the same network, from the same initial weights, through the Equinox
   adapter (`experiments/apebench/diff_adv_conv.yaml`, the model built by hand);
3. the suite trains its own FNO (`experiments/apebench/diff_adv_fno.yaml`).

Training time is the wall time of the training steps alone (APEBench's `trainer(...)` call;
here the trainer's epochs, without validation), each after its own compilation. The
errors are the test trajectories' nRMSE (`|pred - ref|_2 / |ref|_2` per trajectory, the mean
over trajectories) after 1, 10, 100 and 200 autoregressive steps, and its mean over the 200,
computed by one function for every model. For scale, it also times a bare Adam step of the
same network and batch (`equinox.filter_jit`, no trainer around it) and prints its
arithmetic by XLA's cost analysis. Needs the `ape` extra:

    .venv/bin/python experiments/perf/vs_apebench.py [--steps 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from apebench.scenarios import scenario_dict
from flax import nnx

from surrogates.config import load_experiment
from surrogates.models import from_equinox
from surrogates.training import OperatorTask, Trainer
from surrogates.training.stepper import rollout

CONV = "Conv;34;10;relu"
STEPS_SHOWN = (1, 10, 100, 200)


def nrmse_curve(advance: Callable[[jax.Array], jax.Array], test: np.ndarray) -> np.ndarray:
    """nRMSE after each step of the rollout from the first frame of `test (N, T + 1, C, *X)`
    by `advance ((N, C, *X) -> (N, C, *X))`: (T,)."""

    def step(state, _):
        state = advance(state)
        return state, state

    steps = test.shape[1] - 1
    scanned = jax.jit(lambda first: jax.lax.scan(step, first, None, length=steps)[1])
    states = scanned(jnp.asarray(test[:, 0]))
    prediction = np.moveaxis(np.asarray(states), 0, 1)  # (N, T, C, *X)
    reference = test[:, 1:]
    axes = tuple(range(2, reference.ndim))
    error = np.sqrt(np.sum((prediction - reference) ** 2, axis=axes))
    return np.mean(error / np.sqrt(np.sum(reference**2, axis=axes)), axis=0)


def train_apebench(scenario, seed: int) -> tuple[float, Callable]:
    """APEBench's one-step training of the conv net: (seconds, the trained network)."""
    trainer = scenario.get_trainer(train_config="one")
    init_key, shuffle_key = jax.random.split(jax.random.PRNGKey(seed))
    network = scenario.get_neural_stepper(task_config="predict", network_config=CONV, key=init_key)
    started = time.perf_counter()
    trained, losses, _ = trainer(network, shuffle_key, record_loss_every=100)
    jax.block_until_ready(losses)
    return time.perf_counter() - started, trained


def bare_step(network: eqx.Module, batch: int, points: int, steps: int = 500):
    """A bare Adam step of `network` on random `(batch, 1, points)` pairs: (ms per step, the
    best of 5 rounds of `steps`; GFLOP of its value and gradient by XLA's cost analysis)."""
    tx = optax.adam(1e-3)
    params, static = eqx.partition(network, eqx.is_array)
    inputs, targets = jax.random.normal(jax.random.key(0), (2, batch, 1, points))

    def loss(params):
        return jnp.mean((jax.vmap(eqx.combine(params, static))(inputs) - targets) ** 2)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    cost = jax.jit(jax.value_and_grad(loss)).lower(params).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    state = tx.init(params)
    params, state, value = step(params, state)
    jax.block_until_ready(value)
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(steps):
            params, state, value = step(params, state)
        jax.block_until_ready(value)
        rounds.append((time.perf_counter() - started) / steps * 1e3)
    return min(rounds), cost["flops"] / 1e9


def train_suite(path: str, steps: int, seed: int, model: nnx.Module | None = None):
    """The suite's training of `path` for about `steps` steps (whole epochs):
    (seconds, the trained stepper, the steps run)."""
    per_epoch = OperatorTask.for_training(load_experiment(path)).steps_per_epoch
    epochs = math.ceil(steps / per_epoch)
    warmup = steps / 5 / per_epoch
    overrides = [f"train.epochs={epochs}", f"train.schedule.warmup_epochs={warmup}"]
    experiment = load_experiment(path, [f"train.seed={seed}", *overrides])
    task = OperatorTask.for_training(experiment, model=model)
    trainer = Trainer(task, experiment.train)
    started = time.perf_counter()
    for epoch in range(epochs):
        trainer.run_epoch(epoch)
    jax.block_until_ready(task.model.params)
    return time.perf_counter() - started, task.model.module(), epochs * per_epoch


def suite_advance(stepper: nnx.Module) -> Callable[[jax.Array], jax.Array]:
    """The trained stepper as `(N, C, *X) -> (N, C, *X)` on raw states (a pure function,
    for `lax.scan`)."""
    graphdef, state = nnx.split(stepper)

    def advance(frame: jax.Array) -> jax.Array:
        context = jnp.moveaxis(frame, 1, -1)[:, None]  # (N, 1, *X, C): one history frame
        predicted = rollout(nnx.merge(graphdef, state), context, 1)[:, 0]
        return jnp.moveaxis(predicted, -1, 1)

    return advance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="training steps of each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warmup = args.steps // 5
    scenario = scenario_dict["diff_adv"](
        optim_config=f"adam;{args.steps};warmup_cosine;0.0;1e-3;{warmup}"
    )
    test = np.asarray(scenario.get_test_data())
    rows = []

    seconds, trained = train_apebench(scenario, args.seed)
    rows.append(("APEBench, conv net", seconds, nrmse_curve(jax.vmap(trained), test)))

    init_key, _ = jax.random.split(jax.random.PRNGKey(args.seed))
    same = from_equinox(scenario.get_network(CONV, init_key))
    path = "experiments/apebench/diff_adv_conv.yaml"
    seconds, stepper, suite_steps = train_suite(path, args.steps, args.seed, model=same)
    rows.append(("suite, the same conv net", seconds, nrmse_curve(suite_advance(stepper), test)))

    path = "experiments/apebench/diff_adv_fno.yaml"
    seconds, stepper, _ = train_suite(path, args.steps, args.seed)
    rows.append(("suite, its FNO", seconds, nrmse_curve(suite_advance(stepper), test)))

    print(f"scenario diff_adv, {args.steps} training steps, seed {args.seed}")
    shown = " | ".join(f"step {k}" for k in STEPS_SHOWN)
    print(f"| model | training s | {shown} | mean over 200 |")
    print("| --- | ---: |" + " ---: |" * (len(STEPS_SHOWN) + 1))
    for name, seconds, curve in rows:
        values = " | ".join(f"{curve[k - 1]:.3g}" for k in STEPS_SHOWN)
        print(f"| {name} | {seconds:.1f} | {values} | {curve.mean():.3g} |")
    print(f"speed-up of the suite on the same network: {rows[0][1] / rows[1][1]:.2f}x")
    ms, gflop = bare_step(scenario.get_network(CONV, init_key), 20, test.shape[-1])
    print(
        f"bare jitted Adam step of the conv net, batch 20: {ms:.2f} ms, {gflop:.3f} GFLOP "
        f"({gflop / ms * 1e3:.0f} GFLOP/s); per step above: APEBench "
        f"{rows[0][1] / args.steps * 1e3:.2f} ms, the suite {rows[1][1] / suite_steps * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
