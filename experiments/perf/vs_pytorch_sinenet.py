"""Benchmark: SineNet here against the same SineNet in PyTorch, side by side.

The published SineNet is PyTorch code that does not install here, so the PyTorch side is our
version written from the published architecture (`torch_sinenet.py`; its outputs equal ours
for the same weights, `tests/models/test_sinenet.py`). For each setting (hidden width, waves,
grid) both models are built with equal parameter counts (checked) and timed as
`vs_neuraloperator.py` times the FNO: training steps (AdamW, MSE) with the batch whole ("train
in 1", what a user's own loop runs) and as micro-batches, and inference, every round timing
every task of both libraries (`side_by_side.interleaved`). Prints samples per second and
the ratio ours / PyTorch (higher is faster here), and the best training row of each library
against the other's. INS-like channels: 12 in (4 frames of 3 fields), 3 out.

With `--convolutions`, each setting also times the model's 3x3 convolutions alone, as the
PyTorch model runs them (shapes recorded by forward hooks), forward and forward with both
gradients, in both libraries, and prints their sums over the model's layers. The
convolutions are most of the work, so PyTorch's whole training step over our convolutions
alone bounds the ratio any work on the other layers could reach. Needs the `compare` extra:

    .venv/bin/pip install -e ".[compare]"
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python experiments/perf/vs_pytorch_sinenet.py \\
        [--hidden 32 64] [--waves 4 8] [--size 64 128] [--batch 8] [--rounds 5] [--steps 5] \\
        [--convolutions]
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from side_by_side import Run, interleaved, jax_runs, print_rows, torch_runs
from torch_sinenet import TorchSineNet

from surrogates.models import SineNet
from surrogates.models.convolve import convolve

CHANNELS = (12, 3)
MULTS = {2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}  # the paper's width growth per wave count


def ours(settings: dict, batch: int, size: int, parts: list[int]):
    """Compiled train steps (one per micro-batch count) and forward here; parameter count."""
    model = SineNet(*CHANNELS, **settings, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, CHANNELS[0])), jnp.float32)
    y = jnp.asarray(rng.normal(size=(batch, size, size, CHANNELS[1])), jnp.float32)
    return jax_runs(model, optax.adamw(1e-3, weight_decay=1e-5), x, y, parts)


def theirs(settings: dict, batch: int, size: int, parts: list[int]):
    """PyTorch's train steps (gradients accumulated over the micro-batches) and forward."""
    import torch

    torch.manual_seed(0)
    model = TorchSineNet(*CHANNELS, **settings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    x = torch.randn(batch, CHANNELS[0], size, size)
    y = torch.randn(batch, CHANNELS[1], size, size)
    count = sum(p.numel() for p in model.parameters())
    return (*torch_runs(model, optimizer, x, y, parts), count)


def convolution_shapes(settings: dict, batch: int, size: int) -> Counter:
    """(in, out, grid) of every 3x3 convolution PyTorch's SineNet runs, with multiplicity."""
    import torch

    model = TorchSineNet(*CHANNELS, **settings)
    shapes: Counter = Counter()

    def record(module, inputs, output) -> None:
        if module.kernel_size == (3, 3):
            shapes[(module.in_channels, module.out_channels, inputs[0].shape[-1])] += 1

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(record)
    with torch.no_grad():
        model(torch.zeros(batch, CHANNELS[0], size, size))
    return shapes


def convolution_runs(shape: tuple[int, int, int], batch: int) -> dict[str, tuple[Run, Run]]:
    """Forward, and forward with input and kernel gradients, of one 3x3 convolution (zero
    padding 1) here and in PyTorch (channels first, as its model runs)."""
    import torch

    channels_in, channels_out, size = shape
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, channels_in)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, channels_in, channels_out)), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=(batch, size, size, channels_out)), jnp.float32)
    forward = jax.jit(lambda x, k: convolve(x, k, 1, (1, 1)))
    gradients = jax.jit(
        jax.grad(lambda x, k: jnp.sum(convolve(x, k, 1, (1, 1)) * cotangent), argnums=(0, 1))
    )
    x_t = torch.randn(batch, channels_in, size, size, requires_grad=True)
    kernel_t = torch.randn(channels_out, channels_in, 3, 3, requires_grad=True)
    cotangent_t = torch.randn(batch, channels_out, size, size)

    def repeat(call: Callable[[], Any]) -> Run:
        def run(steps: int) -> None:
            for _ in range(steps):
                out = call()
            jax.block_until_ready(out)

        return run

    def torch_forward() -> None:
        with torch.no_grad():
            torch.nn.functional.conv2d(x_t, kernel_t, padding=1)

    def torch_gradients() -> None:
        x_t.grad = kernel_t.grad = None
        torch.nn.functional.conv2d(x_t, kernel_t, padding=1).backward(cotangent_t)

    return {
        "forward": (repeat(lambda: forward(x, kernel)), repeat(torch_forward)),
        "gradients": (repeat(lambda: gradients(x, kernel)), repeat(torch_gradients)),
    }


def time_convolutions(settings: dict, args: argparse.Namespace, size: int, label: str) -> None:
    """Print the seconds of the model's 3x3 convolutions alone, summed over its layers."""
    totals = {"forward": [0.0, 0.0], "gradients": [0.0, 0.0]}
    for shape, count in convolution_shapes(settings, args.batch, size).items():
        runs = convolution_runs(shape, args.batch)
        # Tens of milliseconds per timing, not a few: a library's thread pool that has just
        # woken up would be timed along with the convolution.
        seconds = interleaved(runs, rounds=args.rounds, steps=20 * args.steps, pause=args.pause)
        for task, (ours_, theirs_) in seconds.items():
            totals[task][0] += count * ours_
            totals[task][1] += count * theirs_
    for task, (ours_, theirs_) in totals.items():
        print(
            f"{label:<24} {'3x3 convs':>10} {task:<12} {1e3 * ours_:>7.1f}ms "
            f"{1e3 * theirs_:>7.1f}ms {theirs_ / ours_:>6.2f}"
        )


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
    parser.add_argument(
        "--convolutions", action="store_true", help="also time the 3x3 convolutions alone"
    )
    args = parser.parse_args()
    import torch

    print(
        f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); batch {args.batch}, channels {CHANNELS}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(f"{'model':<24} {'params':>10} {'task':<12} {'ours/s':>9} {'torch/s':>9} {'ratio':>6}")
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
        print_rows(label, our_count, args.batch, seconds, width=24)
        if args.convolutions:
            time_convolutions(settings, args, size, label)


if __name__ == "__main__":
    main()
