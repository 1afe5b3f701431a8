"""Benchmark: the training step's time in one process and spread over several.

Times one epoch of the quickstart's training steps (after a warm-up epoch that compiles them)
with the devices of one process (`--devices`, forced CPU devices) or of several local processes
(`--processes`, one device each, started as `surrogates train --processes` starts them), so
the cost of the multi-process path can be told from the cost of splitting the batch:

    .venv/bin/python experiments/perf/process_step.py                  # 1 process, 1 device
    .venv/bin/python experiments/perf/process_step.py --devices 2      # 1 process, 2 devices
    .venv/bin/python experiments/perf/process_step.py --processes 2    # 2 processes
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

QUICKSTART = Path(__file__).parents[1] / "quickstart.yaml"


def worker(experiment_path: str) -> None:
    from surrogates.launch import join_from_environment

    join_from_environment()
    import jax

    from surrogates.config import load_experiment
    from surrogates.training import OperatorTask, Trainer

    experiment = load_experiment(experiment_path)
    task = OperatorTask.for_training(experiment)
    trainer = Trainer(task, experiment.train)
    trainer.run_epoch(0)
    started = time.perf_counter()
    _, waited = trainer.run_epoch(1)
    seconds = time.perf_counter() - started
    if jax.process_index() == 0:
        steps = task.steps_per_epoch
        print(
            f"{jax.process_count()} process(es), {jax.device_count()} device(s): "
            f"{seconds / steps * 1e3:.1f} ms per step ({steps} steps, batch "
            f"{experiment.train.batch_size}), {waited / seconds:.1%} waiting for data"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(QUICKSTART))
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--devices", type=int, default=1, help="devices of the one process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.processes == 1:
        if args.devices > 1:
            os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
        worker(args.experiment)
        return
    from surrogates.launch import launch

    launch([sys.executable, __file__, args.experiment, "--worker"], args.processes)


if __name__ == "__main__":
    main()
