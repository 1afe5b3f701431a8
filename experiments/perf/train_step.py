"""Benchmark: training samples per second of the compiled step, and the share of step time
spent waiting for data.

Builds the operator task and the trainer for an experiment (default: the quickstart), compiles
the step, then times `--epochs` epochs of steps: the wall time, and the time spent getting each
batch (`next()` on the batch iterator), whose share should stay under 5%, and the page faults and
system time per step (mostly the kernel mapping XLA's fresh scratch memory; see the README on
`GLIBC_TUNABLES`).

    .venv/bin/python experiments/perf/train_step.py [EXPERIMENT] [--epochs 2] [-o key=value ...]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import jax

from surrogates.config import load_experiment
from surrogates.training import OperatorTask, Trainer

QUICKSTART = Path(__file__).parents[1] / "quickstart.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(QUICKSTART))
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up one")
    parser.add_argument("-o", "--override", action="append", default=[])
    args = parser.parse_args()
    experiment = load_experiment(args.experiment, args.override)
    task = OperatorTask.for_training(experiment)
    trainer = Trainer(task, experiment.train)
    start = time.perf_counter()
    trainer.run_epoch(0)
    print(f"warm-up epoch (compiles the step): {time.perf_counter() - start:.1f} s")
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    start, waited = time.perf_counter(), 0.0
    for epoch in range(1, 1 + args.epochs):
        waited += trainer.run_epoch(epoch)[1]
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    steps = args.epochs * task.steps_per_epoch
    batch = experiment.train.batch_size
    print(
        f"{experiment.name}: {steps} steps of batch {batch}, rollout "
        f"{experiment.train.rollout_steps}, {jax.device_count()} device(s), "
        f"training data on device: {task.batches.on_device}"
    )
    print(f"step time {1e3 * seconds / steps:.1f} ms, {batch * steps / seconds:.1f} samples/s")
    print(f"waiting for data: {100 * waited / seconds:.2f}% of step time (goal: under 5%)")
    faults = (usage.ru_minflt - usage_before.ru_minflt) / steps
    system = (usage.ru_stime - usage_before.ru_stime) / steps
    print(f"per step: {faults:.0f} page faults, {1e3 * system:.1f} ms of system time")


if __name__ == "__main__":
    main()
