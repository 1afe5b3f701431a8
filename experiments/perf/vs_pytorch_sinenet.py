"""Benchmark: SineNet here against the same SineNet in PyTorch, side by side.

The published SineNet is PyTorch code that does not install here, so the PyTorch side is our
version written from the published architecture (`torch_sinenet.py`; its outputs equal ours
for the same weights, `tests/models/test_sinenet.py`). For each setting (hidden width, waves,
grid) both models are built with equal parameter counts (checked) and timed as
`vs_neuraloperator.py` times the FNO: training steps (AdamW, MSE) with the batch whole ("train
in 1", what a user's own loop runs) and as micro-batches, and inference, every round timing
every task of both libraries (`side_by_side.interleaved`). Prints samples per second and
the ratio ours / PyTorch (higher is faster here), and the best training row of each library
against the other's. INS-like channels: 12 in (4 frames of 3 fields), 3 out. Needs the
`compare` extra:

    .venv/bin/pip install -e ".[compare]"
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python experiments/perf/vs_pytorch_sinenet.py \\
        [--hidden 32 64] [--waves 4 8] [--size 64 128] [--batch 8] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from side_by_side import interleaved, jax_runs, print_rows, torch_runs
from torch_sinenet import TorchSineNet

from surrogates.models import SineNet

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


if __name__ == "__main__":
    main()
