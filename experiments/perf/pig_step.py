"""Benchmark: one training step of Physics-Informed Gaussians (`pig`) on Helmholtz.

Builds the physics task of `experiments/physics/helmholtz/pig.yaml` (Δu + k^2 u = q on
[-1, 1]^2, the Laplacian by nested forward-mode JVPs per point, vmapped over the points) with
the model's size from the command line, draws one set of collocation points, and times the
compiled `jax.value_and_grad` of the weighted sum of the term losses, as
`PhysicsTask.make_step` computes them (without the optimizer's update). Prints the median and
the fastest step after compilation, and XLA's estimate of the step's temporary memory.

`--baseline` also times the same model with its embedding written directly, as `PIG.embed`
computed it before it was reorganised (the offsets of every point from every Gaussian as one
(points, channels, gaussians, d) array): both are compiled first, then timed in alternation,
so a background load falls on both alike.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python experiments/perf/pig_step.py \\
        [--gaussians 400] [--channels 4] [--points 8192] [--boundary 2048] \\
        [--covariance diagonal] [--repeats 10] [--baseline]

(`surrogates train` sets `GLIBC_TUNABLES` for itself; without it every step also pays for
mapping XLA's scratch memory, see the README.) On the 2-core development machine, 4 x 400
Gaussians, 8192 + 2048 points, `--baseline`, medians with nothing else running: 850 ms per
step for the direct embedding, 200-240 ms for `PIG.embed` (diagonal; full covariance 1110
and 300 ms); without `GLIBC_TUNABLES`, 1410 and 370 ms. With two other jobs on the cores the
direct embedding took 1800-2000 ms, `PIG.embed` 400-480 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from surrogates.config import parse_experiment
from surrogates.models.pig import PIG
from surrogates.models.pinn import to_unit_box
from surrogates.training.physics_task import PhysicsTask


def experiment(gaussians: int, channels: int, points: int, boundary: int, covariance: str):
    """The Helmholtz PIG experiment with the given model and point counts."""
    return parse_experiment(
        {
            "name": "helmholtz_pig_step",
            "task": "physics",
            "problem": {"name": "helmholtz", "a1": 1, "a2": 4},
            "model": {
                "name": "pig",
                "gaussians": gaussians,
                "channels": channels,
                "sigma": 0.1,
                "hidden": 16,
                "covariance": covariance,
            },
            "train": {
                "steps_per_epoch": 1,
                "points": {"residual": points, "boundary": boundary},
                "weights": {"residual": 0.0001},
                "phases": [{"epochs": 1, "optimizer": {"name": "adam", "lr": 0.01}}],
            },
        }
    )


def direct_embed(model: PIG, coords: jax.Array) -> jax.Array:
    """`PIG.embed`'s function written directly, as it was computed before: (..., C, N, d)
    offsets, then the squared norm over the last axis."""
    z = to_unit_box(coords, model.lower, model.upper)
    centres, inverse_sigma = model.unit_centres(), jnp.exp(-model.log_sigma[...])
    if model.rotation is None:
        whitened = (z[..., None, None, :] - centres) * inverse_sigma
    else:
        transform = model.rotations() * inverse_sigma[..., None, :]
        shift = jnp.einsum("cnk,cnkj->cnj", centres, transform)
        whitened = jnp.einsum("...k,cnkj->...cnj", z, transform) - shift
    distance = jnp.sum(jnp.square(whitened), axis=-1)
    return jnp.einsum("...cn,cn->...c", jnp.exp(-0.5 * distance), model.weight[...])


def step_function(task: PhysicsTask) -> tuple[Callable, tuple]:
    """`(step, arguments)`: `(params, rest, points, weights) -> (loss, grads)` of the task's
    weighted term losses, compiled, and its arguments (one draw of points)."""
    losses = task._term_losses()

    def loss(params, rest, points, weights):
        return jnp.sum(weights * losses(params, rest, points))

    points = task._sampler()(jax.random.key(0))
    weights = jnp.asarray(task.initial_weights())
    arguments = (task.model.params, task.model.rest, points, weights)
    return jax.jit(jax.value_and_grad(loss)).lower(*arguments).compile(), arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=400, help="Gaussians per channel")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--points", type=int, default=8192, help="residual points")
    parser.add_argument("--boundary", type=int, default=2048, help="boundary points")
    parser.add_argument("--covariance", choices=("diagonal", "full"), default="diagonal")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per variant")
    parser.add_argument(
        "--baseline", action="store_true", help="also time the directly written embedding"
    )
    args = parser.parse_args()
    spec = experiment(args.gaussians, args.channels, args.points, args.boundary, args.covariance)
    variants = {"PIG.embed": PIG.embed}
    if args.baseline:
        variants = {"direct embedding": direct_embed, **variants}
    print(
        f"pig {args.channels} x {args.gaussians} Gaussians ({args.covariance}), "
        f"{args.points} + {args.boundary} points, GLIBC_TUNABLES="
        f"{os.environ.get('GLIBC_TUNABLES', '(unset)')}"
    )
    steps = {}
    for name, embed in variants.items():
        PIG.embed = embed  # only while the step is traced
        try:
            start = time.perf_counter()
            steps[name] = step_function(PhysicsTask(spec))
            seconds = time.perf_counter() - start
        finally:
            PIG.embed = variants["PIG.embed"]
        memory = steps[name][0].memory_analysis()
        temporary = f", {memory.temp_size_in_bytes / 2**20:.0f} MiB temporary" if memory else ""
        print(f"  {name}: compiled in {seconds:.1f} s{temporary}")
    times = {name: [] for name in steps}
    for step, arguments in steps.values():
        jax.block_until_ready(step(*arguments))  # warm-up
    for _ in range(args.repeats):
        for name, (step, arguments) in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(*arguments))
            times[name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        print(
            f"  {name}: median {1e3 * statistics.median(seconds):.0f} ms/step, "
            f"fastest {1e3 * min(seconds):.0f} ms ({args.repeats} steps)"
        )


if __name__ == "__main__":
    main()
