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
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from side_by_side import interleaved, jax_runs, print_rows, torch_runs

from surrogates.models import registry


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


def ours(variant: Variant, batch: int, size: int, channels: tuple[int, int], parts: list[int]):
    """Compiled train steps (one per micro-batch count) and forward of our model, and its
    parameter count."""
    model = registry.build(
        variant.name,
        in_channels=channels[0],
        out_channels=channels[1],
        rngs=nnx.Rngs(0),
        **variant.arguments,
    )
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, channels[0])), jnp.float32)
    y = jnp.asarray(rng.normal(size=(batch, size, size, channels[1])), jnp.float32)
    return jax_runs(model, optax.adam(1e-3), x, y, parts)


def theirs(variant: Variant, batch: int, size: int, channels: tuple[int, int], parts: list[int]):
    """neuraloperator's train steps and forward of the same architecture, and its count."""
    import torch
    from neuralop import models
    from neuralop.utils import count_model_params

    torch.manual_seed(0)
    cls = models.TFNO if variant.name == "tfno" else models.FNO
    model = cls(in_channels=channels[0], out_channels=channels[1], **variant.arguments)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, channels[0], size, size)
    y = torch.randn(batch, channels[1], size, size)
    return (*torch_runs(model, optimizer, x, y, parts), count_model_params(model))


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
    header = f"{'model':<18} {'params':>10} {'task':<12} {'ours/s':>9} {'theirs/s':>9} {'ratio':>6}"
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
        print_rows(variant.label, our_count, args.batch, seconds, width=18)


if __name__ == "__main__":
    main()
