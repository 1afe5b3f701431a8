"""Benchmark: SineNet here against the same SineNet in PyTorch, side by side.

The published SineNet is PyTorch code that does not install here, so the PyTorch side is our
version written from the published architecture (`torch_sinenet.py`; its outputs equal ours
for the same weights, `tests/models/test_sinenet.py`). For each setting (hidden width, waves,
grid) both models are built with equal parameter counts (checked) and timed as
`vs_neuraloperator.py` times the FNO: training steps (AdamW, MSE) with the batch whole ("train
in 1", what a user's own loop runs) and as micro-batches, and inference, every round timing
every task of both libraries (`interleaved`). Prints samples per second and the ratio ours /
PyTorch (higher is faster here), and the best training row of each library against the
other's. INS-like channels: 12 in (4 frames of 3 fields), 3 out. Needs the `compare` extra:

    .venv/bin/pip install -e ".[compare]"
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python experiments/perf/vs_pytorch_sinenet.py \\
        [--hidden 32 64] [--waves 4 8] [--size 64 128] [--batch 8] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from torch_sinenet import TorchSineNet
from vs_neuraloperator import interleaved

from surrogates.models import SineNet
from surrogates.training.steps import model_value_and_grad

CHANNELS = (12, 3)
MULTS = {2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}  # the paper's width growth per wave count

Runs = tuple[dict[int, Callable[[int], None]], Callable[[int], None], int]


def ours(settings: dict, batch: int, size: int, micro_batches: list[int]) -> Runs:
    """Compiled train steps (one per micro-batch count) and forward here; parameter count."""
    model = SineNet(*CHANNELS, **settings, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adamw(1e-3, weight_decay=1e-5)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, CHANNELS[0])), jnp.float32)
    y = jnp.asarray(rng.normal(size=(batch, size, size, CHANNELS[1])), jnp.float32)

    def loss_of(model, batch):
        x, y = batch
        return jnp.mean(jnp.square(model(x) - y))

    def train_step(params, opt_state, x, y, *, parts: int):
        loss, grads = model_value_and_grad(graphdef, loss_of, parts)(params, (x, y), rest)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    state = {"params": params, "opt": tx.init(params)}

    def trainer(parts: int) -> Callable[[int], None]:
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


def theirs(settings: dict, batch: int, size: int, micro_batches: list[int]) -> Runs:
    """PyTorch's train steps (gradients accumulated over the micro-batches) and forward."""
    import torch

    torch.manual_seed(0)
    model = TorchSineNet(*CHANNELS, **settings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    x = torch.randn(batch, CHANNELS[0], size, size)
    y = torch.randn(batch, CHANNELS[1], size, size)

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

    count = sum(p.numel() for p in model.parameters())
    return {parts: trainer(parts) for parts in micro_batches}, infer, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--waves", type=int, nargs="+", default=[4, 8], choices=sorted(MULTS))
    parser.add_argument("--size", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds")
    parser.add_argument("--steps", type=int, default=5, help="steps per round")
    parser.add_argument("--pause", type=float, default=1.0, help="idle seconds before a round")
    parser.add_argument("--micro-batches", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    import torch

    print(
        f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); batch {args.batch}, channels {CHANNELS}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(f"{'model':<24} {'params':>10} {'task':<12} {'ours/s':>8} {'torch/s':>8} {'ratio':>6}")
    for hidden, waves, size in itertools.product(args.hidden, args.waves, args.size):
        settings = {"hidden_channels": hidden, "num_waves": waves, "mult": MULTS[waves]}
        label = f"C{hidden} K{waves} {size}^2"
        parts = args.micro_batches
        our_train, our_infer, our_count = ours(settings, args.batch, size, parts)
        their_train, their_infer, their_count = theirs(settings, args.batch, size, parts)
        if our_count != their_count:
            raise SystemExit(f"{label}: {our_count} parameters here, {their_count} in torch")
        tasks = {f"train in {m}": (our_train[m], their_train[m]) for m in parts}
        tasks["inference"] = (our_infer, their_infer)
        seconds = interleaved(tasks, rounds=args.rounds, steps=args.steps, pause=args.pause)
        for task, (fast, slow) in seconds.items():
            print(
                f"{label:<24} {our_count:>10} {task:<12} {args.batch / fast:>8.2f} "
                f"{args.batch / slow:>8.2f} {slow / fast:>6.2f}"
            )
        training = [task for task in seconds if task.startswith("train")]
        ours_best = min(training, key=lambda task: seconds[task][0])
        theirs_best = min(training, key=lambda task: seconds[task][1])
        fast, slow = seconds[ours_best][0], seconds[theirs_best][1]
        print(
            f"{label:<24} {our_count:>10} {'train, best':<12} {args.batch / fast:>8.2f} "
            f"{args.batch / slow:>8.2f} {slow / fast:>6.2f}   ({ours_best} against {theirs_best})"
        )


if __name__ == "__main__":
    main()
