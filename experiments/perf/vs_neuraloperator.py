"""Benchmark: FNO and TFNO here against neuraloperator 2.0 (PyTorch), side by side.

Builds the same architecture in both libraries (default: 2D 64x64, 3 channels in, 1 out,
hidden 32, n_modes (16, 16), 4 layers, batch 16; FNO dense and TFNO Tucker rank 0.1), checks
that the parameter counts are equal, then measures training steps (Adam, MSE) and inference
(forward only) of both. Every round times every task of both libraries, so that all rows see
the same machine states (see `interleaved`). Training is timed with the batch taken whole
("train in 1") and as 2, 4 and 8 micro-batches whose gradients are accumulated ("train in 2"
...; the same update), in both libraries alike: `train.micro_batches` of the engine. Prints
samples per second of each and the ratio ours / neuraloperator (higher is faster here), and
per model the best training row of each library against the other's ("train, best"). The
parameters and optimiser state are updated in place in both (buffer donation here). The
header shows the machine's load average: PyTorch's CPU throughput drops far more than XLA's
when other processes compete for the cores (over ten times on a busy 2-core machine), so
ratios measured under load overstate ours. Needs the `compare` extra:

    .venv/bin/pip install -e ".[compare]"
    .venv/bin/python experiments/perf/vs_neuraloperator.py [--rounds 5] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from surrogates.models import registry
from surrogates.training.steps import model_value_and_grad


@dataclass(frozen=True)
class Variant:
    """One architecture, named as both libraries name its arguments."""

    label: str
    name: str  # registry name here; neuraloperator class name there
    arguments: dict


def variants(modes: int, hidden: int, layers: int, rank: float) -> list[Variant]:
    common = {"n_modes": (modes, modes), "hidden_channels": hidden, "n_layers": layers}
    return [
        Variant("FNO dense", "fno", common),
        Variant(f"TFNO Tucker {rank}", "tfno", {**common, "factorization": "tucker", "rank": rank}),
    ]


def ours(
    variant: Variant, batch: int, size: int, channels: tuple[int, int], micro_batches: list[int]
):
    """Compiled train steps (one per micro-batch count) and forward of our model, and its
    parameter count.
    """
    model = registry.build(
        variant.name,
        in_channels=channels[0],
        out_channels=channels[1],
        rngs=nnx.Rngs(0),
        **variant.arguments,
    )
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, channels[0])), jnp.float32)
    y = jnp.asarray(rng.normal(size=(batch, size, size, channels[1])), jnp.float32)

    def loss_of(model, batch):
        x, y = batch
        return jnp.mean(jnp.square(model(x) - y))

    def train_step(params, opt_state, x, y, *, parts: int):
        # The engine's gradient: micro-batched, weights prepared once per step.
        loss, grads = model_value_and_grad(graphdef, loss_of, parts)(params, (x, y), rest)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def forward(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    state = {"params": params, "opt": opt_state}

    def trainer(parts: int) -> Callable[[int], None]:
        # Parameters and optimiser state updated in place, as the engine's step and torch's
        # optimiser do.
        compiled = jax.jit(partial(train_step, parts=parts), donate_argnums=(0, 1))

        def train(steps: int) -> None:
            for _ in range(steps):
                state["params"], state["opt"], loss = compiled(state["params"], state["opt"], x, y)
            loss.block_until_ready()

        return train

    def infer(steps: int) -> None:
        for _ in range(steps):
            out = forward(state["params"], x)
        out.block_until_ready()

    count = sum(np.size(leaf) for leaf in jax.tree.leaves(params))
    return {parts: trainer(parts) for parts in micro_batches}, infer, count


def theirs(
    variant: Variant, batch: int, size: int, channels: tuple[int, int], micro_batches: list[int]
):
    """neuraloperator's train steps (gradients accumulated over each count of micro-batches)
    and forward of the same architecture, and its count.
    """
    import torch
    from neuralop import models
    from neuralop.utils import count_model_params

    torch.manual_seed(0)
    cls = models.TFNO if variant.name == "tfno" else models.FNO
    model = cls(in_channels=channels[0], out_channels=channels[1], **variant.arguments)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, channels[0], size, size)
    y = torch.randn(batch, channels[1], size, size)

    def trainer(parts: int) -> Callable[[int], None]:
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

    return {parts: trainer(parts) for parts in micro_batches}, infer, count_model_params(model)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rank", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds")
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds of idling before each timed round"
    )
    parser.add_argument(
        "--micro-batches",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8],
        help="training steps to time: the batch as this many micro-batches, in both libraries",
    )
    args = parser.parse_args()
    import torch

    channels = (3, 1)
    print(
        f"jax {jax.__version__} ({jax.default_backend()}, {jax.device_count()} device), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"2D {args.size}x{args.size}, batch {args.batch}, hidden {args.hidden}, "
        f"n_modes ({args.modes}, {args.modes}), {args.layers} layers; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    header = f"{'model':<18} {'params':>9} {'task':<12} {'ours/s':>9} {'theirs/s':>9} {'ratio':>6}"
    print(header)
    for variant in variants(args.modes, args.hidden, args.layers, args.rank):
        parts = args.micro_batches
        our_train, our_infer, our_count = ours(variant, args.batch, args.size, channels, parts)
        their_train, their_infer, their_count = theirs(
            variant, args.batch, args.size, channels, parts
        )
        if our_count != their_count:
            raise SystemExit(
                f"{variant.label}: {our_count} parameters here, {their_count} in neuraloperator"
            )
        tasks = {f"train in {m}": (our_train[m], their_train[m]) for m in parts}
        tasks["inference"] = (our_infer, their_infer)
        seconds = interleaved(tasks, rounds=args.rounds, steps=args.steps, pause=args.pause)
        for task, (fast, slow) in seconds.items():
            print(
                f"{variant.label:<18} {our_count:>9} {task:<12} {args.batch / fast:>9.1f} "
                f"{args.batch / slow:>9.1f} {slow / fast:>6.2f}"
            )
        training = [task for task in seconds if task.startswith("train")]
        ours_best = min(training, key=lambda task: seconds[task][0])
        theirs_best = min(training, key=lambda task: seconds[task][1])
        fast, slow = seconds[ours_best][0], seconds[theirs_best][1]
        print(
            f"{variant.label:<18} {our_count:>9} {'train, best':<12} {args.batch / fast:>9.1f} "
            f"{args.batch / slow:>9.1f} {slow / fast:>6.2f}   ({ours_best} against {theirs_best})"
        )


if __name__ == "__main__":
    main()
