"""Timing two libraries side by side, for the comparisons in this folder: the training and
inference runs of a JAX model and of a PyTorch model on the same batch, timed in interleaved
rounds, and the rows printed with their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from surrogates.training.steps import model_value_and_grad

Run = Callable[[int], None]  # run this many steps


def jax_runs(
    model: nnx.Module,
    tx: optax.GradientTransformation,
    x: jax.Array,
    y: jax.Array,
    micro_batches: list[int],
) -> tuple[dict[int, Run], Run, int]:
    """Compiled train steps of `model` (MSE, one per micro-batch count, the engine's gradient:
    micro-batched, weights prepared once per step), its compiled forward, and its parameter
    count. Parameters and optimiser state are updated in place (donated), as the engine's
    step and torch's optimiser do."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss_of(model: nnx.Module, batch: Any) -> jax.Array:
        x, y = batch
        return jnp.mean(jnp.square(model(x) - y))

    def train_step(params, opt_state, x, y, *, parts: int):
        loss, grads = model_value_and_grad(graphdef, loss_of, parts)(params, (x, y), rest)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    state = {"params": params, "opt": tx.init(params)}

    def trainer(parts: int) -> Run:
        compiled = jax.jit(partial(train_step, parts=parts), donate_argnums=(0, 1))

        def train(steps: int) -> None:
            for _ in range(steps):
                state["params"], state["opt"], loss = compiled(state["params"], state["opt"], x, y)
            loss.block_until_ready()

        return train

    forward = jax.jit(lambda params, x: nnx.merge(graphdef, params, rest)(x))

    def infer(steps: int) -> None:
        for _ in range(steps):
            out = forward(state["params"], x)
        out.block_until_ready()

    count = sum(np.size(leaf) for leaf in jax.tree.leaves(params))
    return {parts: trainer(parts) for parts in micro_batches}, infer, count


def torch_runs(model, optimizer, x, y, micro_batches: list[int]) -> tuple[dict[int, Run], Run]:
    """PyTorch's train steps of `model` (MSE, gradients accumulated over each count of
    micro-batches) and its forward, on the batch `x`, `y` (channels first)."""
    import torch

    def trainer(parts: int) -> Run:
        def train(steps: int) -> None:
            model.train()
            for _ in range(steps):
                optimizer.zero_grad(set_to_none=True)
                for x_part, y_part in zip(x.chunk(parts), y.chunk(parts), strict=True):
                    loss = torch.mean(torch.square(model(x_part) - y_part)) / parts
                    loss.backward()
                optimizer.step()

        return train

    def infer(steps: int) -> None:
        model.eval()
        with torch.no_grad():
            for _ in range(steps):
                model(x)

    return {parts: trainer(parts) for parts in micro_batches}, infer


def interleaved(
    tasks: dict[str, tuple[Callable[[int], None], Callable[[int], None]]],
    *,
    rounds: int,
    steps: int,
    pause: float,
) -> dict[str, tuple[float, float]]:
    """Median seconds per step of ours and theirs for every task, after one warm-up each.

    Every round times every task of both libraries, so all tasks sample the same machine
    states and rows can be compared with each other (the best of one library against the
    best of the other), not only within a row: on a shared machine throughput drifts by
    10-20% within minutes. Which library goes first alternates from round to round. Each
    timing starts after `pause` seconds of idling: the threads of one library keep spinning
    for a while after its last operation (PyTorch's OpenMP pool does), and would otherwise
    slow down whatever runs next.
    """
    for ours_run, theirs_run in tasks.values():
        ours_run(2)
        theirs_run(2)
    times: dict[str, tuple[list[float], list[float]]] = {task: ([], []) for task in tasks}
    for round_ in range(rounds):
        for task, runs in tasks.items():
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for side in order:
                time.sleep(pause)
                start = time.perf_counter()
                runs[side](steps)
                times[task][side].append((time.perf_counter() - start) / steps)
    return {
        task: (statistics.median(ours), statistics.median(theirs))
        for task, (ours, theirs) in times.items()
    }


def print_rows(
    label: str, count: int, batch: int, seconds: dict[str, tuple[float, float]], width: int
) -> None:
    """Samples per second of both libraries and their ratio (higher is faster here) for every
    task, then the best training row of each library against the other's."""
    for task, (fast, slow) in seconds.items():
        print(
            f"{label:<{width}} {count:>10} {task:<12} {batch / fast:>9.2f} {batch / slow:>9.2f} "
            f"{slow / fast:>6.2f}"
        )
    training = [task for task in seconds if task.startswith("train")]
    ours_best = min(training, key=lambda task: seconds[task][0])
    theirs_best = min(training, key=lambda task: seconds[task][1])
    fast, slow = seconds[ours_best][0], seconds[theirs_best][1]
    print(
        f"{label:<{width}} {count:>10} {'train, best':<12} {batch / fast:>9.2f} "
        f"{batch / slow:>9.2f} {slow / fast:>6.2f}   ({ours_best} against {theirs_best})"
    )
