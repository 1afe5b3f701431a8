"""Benchmark: a PINN trained here against the same PINN trained by DeepXDE (PyTorch backend).

Problem: Burgers, `u_t + u u_x = (0.01 / pi) u_xx` on [-1, 1] x [0, 1], u0 = -sin(pi x),
u(t, ±1) = 0 (`problem: burgers`). Both sides train the same tanh MLP (2 -> hidden^layers
-> 1, Glorot-normal weights, zero biases) on the same numbers of interior, initial and
boundary points, drawn once (DeepXDE's default; here `train.resample_every` is larger than
the run), with the mean squared residuals summed at weight 1. Timed in interleaved rounds
(`side_by_side.interleaved`), after a warm-up that compiles:

- `adam`: optimizer iterations per second, Adam at lr 1e-3. Here the engine's own loop
  (`Trainer.run_epoch`: one compiled step per iteration, each step's loss read back one step
  late for the NaN check), what `surrogates train` runs; there `model.train(iterations=n)`.
- `lbfgs`: L-BFGS iterations per second, memory 10 on both sides; optax's L-BFGS with its
  zoom line search here, torch's with its strong-Wolfe line search there (both may evaluate
  the loss more than once per iteration). DeepXDE's tolerances are 0, so it runs every
  iteration it is asked for (`iter_per_step` set to the timed count: its default of 1000
  iterations per `optimizer.step` would otherwise run whatever `maxiter` says).

Needs the `compare` extra (`.venv/bin/pip install -e ".[compare]"`):

    .venv/bin/python experiments/perf/vs_deepxde.py [--hidden 32] [--layers 6] \\
        [--points 4096] [--rounds 5] [--steps 200]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from side_by_side import interleaved

os.environ.setdefault("DDE_BACKEND", "pytorch")

NU = 0.01 / math.pi
EXPERIMENT = """
name: vs_deepxde
task: physics
problem: {{name: burgers}}
model: {{name: pinn, hidden: {hidden}, layers: {layers}}}
train:
  epochs: 1000000
  steps_per_epoch: {steps}
  resample_every: 1000000000
  points: {{residual: {points}, initial: {edge}, boundary: {edge}}}
  optimizer: {{name: {optimizer}{lr}}}
"""


def ours(args: argparse.Namespace, optimizer: str):
    """A run of `steps` iterations of the engine's loop, and the parameter count."""
    from surrogates.config import load_experiment
    from surrogates.training import Trainer
    from surrogates.training.physics_task import PhysicsTask

    text = EXPERIMENT.format(
        hidden=args.hidden,
        layers=args.layers,
        steps=args.steps,
        points=args.points,
        edge=args.points // 8,
        optimizer=optimizer,
        lr=", lr: 0.001" if optimizer == "adam" else "",
    )
    path = Path(tempfile.mkdtemp()) / "vs_deepxde.yaml"
    path.write_text(text)
    experiment = load_experiment(path)
    task = PhysicsTask(experiment)
    trainer = Trainer(task, experiment.train)
    epochs = iter(range(10**9))

    def run(steps: int) -> None:
        # One epoch of `steps` iterations (the points stay drawn once whatever its length).
        task.steps_per_epoch = steps
        trainer.run_epoch(next(epochs))

    return run, task.model.parameter_count()


def theirs(args: argparse.Namespace, optimizer: str):
    """DeepXDE's `model.train` for `steps` iterations, and the parameter count."""
    import deepxde as dde
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    geometry = dde.geometry.GeometryXTime(
        dde.geometry.Interval(-1.0, 1.0), dde.geometry.TimeDomain(0.0, 1.0)
    )

    def pde(x, u):
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - NU * u_xx

    boundary = dde.icbc.DirichletBC(geometry, lambda x: 0.0, lambda _, on: on)
    initial = dde.icbc.IC(geometry, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on: on)
    data = dde.data.TimePDE(
        geometry,
        pde,
        [boundary, initial],
        num_domain=args.points,
        num_boundary=args.points // 8,
        num_initial=args.points // 8,
        num_test=32,
    )
    net = dde.nn.FNN([2] + [args.hidden] * args.layers + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    if optimizer == "adam":
        model.compile("adam", lr=1e-3)
    else:
        dde.optimizers.set_LBFGS_options(maxcor=10, ftol=0, gtol=0, maxiter=args.steps)
        # One `optimizer.step` runs `iter_per_step` iterations (1000 by default, whatever
        # `maxiter` says): made `steps`, one `model.train()` runs exactly `steps`.
        dde.optimizers.config.LBFGS_options["iter_per_step"] = args.steps
        model.compile("L-BFGS")

    def run(steps: int) -> None:
        if optimizer == "adam":
            model.train(iterations=steps, display_every=10 * steps, verbose=0)
        else:
            model.train(display_every=10 * steps, verbose=0)

    count = sum(p.numel() for p in net.parameters())
    return run, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    tasks, counts = {}, {}
    for optimizer in ("adam", "lbfgs"):
        (mine, n_ours), (other, n_theirs) = ours(args, optimizer), theirs(args, optimizer)
        if n_ours != n_theirs:
            raise SystemExit(f"parameter counts differ: {n_ours} here, {n_theirs} in DeepXDE")
        tasks[optimizer], counts[optimizer] = (mine, other), n_ours
    seconds = interleaved(tasks, rounds=args.rounds, steps=args.steps, pause=1.0)
    print(
        f"Burgers, MLP 2-{args.hidden}x{args.layers}-1 ({counts['adam']} parameters), "
        f"{args.points} interior points, {args.points // 8} initial and boundary points each"
    )
    print(f"{'optimizer':<10} {'ours it/s':>10} {'DeepXDE it/s':>13} {'ratio':>6}")
    for name, (fast, slow) in seconds.items():
        print(f"{name:<10} {1 / fast:>10.1f} {1 / slow:>13.1f} {slow / fast:>6.2f}")


if __name__ == "__main__":
    main()
