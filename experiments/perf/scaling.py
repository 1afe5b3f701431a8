"""Benchmark: what the multi-process path costs on one machine, 1 process against 2.

Trains the quickstart and the 2D Darcy FNO (`experiments/darcy/fno.yaml`, 400 samples at 64²)
as a user does, `surrogates train EXPERIMENT -q` and `surrogates train EXPERIMENT -q
--processes 2` (one CPU device per process), alternating, `--rounds` times each, and reads
each run's `metrics.jsonl`: training samples per second over the epochs after the first (which
compiles), and the share of those epochs spent waiting for data. With two processes on two
cores nothing can be gained; the difference is the cost of the multi-process path (the
collectives between processes, two XLA runtimes sharing the cores).

    .venv/bin/python experiments/perf/scaling.py [--epochs 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from surrogates.config import load_experiment
from surrogates.training import OperatorTask

ROOT = Path(__file__).parents[2]
CASES = {
    "quickstart (1D FNO, batch 16)": ("experiments/quickstart.yaml", []),
    "Darcy 64² (2D FNO, batch 16)": ("experiments/darcy/fno.yaml", ["data.samples=400"]),
}


def run(path: str, overrides: list[str], processes: int, root: Path) -> Path:
    """One training run; returns its folder."""
    command = [sys.executable, "-m", "surrogates", "train", path, "-q"]
    command += [f"-o={override}" for override in [*overrides, f"run.root={root}"]]
    if processes > 1:
        command += ["--processes", str(processes)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def throughput(folder: Path, samples_per_epoch: int) -> tuple[float, float]:
    """Samples per second and the share of time waiting for data, over the epochs after the
    first."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    later = records[1:]
    seconds = sum(r["seconds"] for r in later)
    waited = sum(r["data_wait_seconds"] for r in later)
    return samples_per_epoch * len(later) / seconds, waited / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("| experiment | processes | samples/s (each round) | waiting for data | overhead |")
    print("| --- | ---: | --- | --- | ---: |")
    with tempfile.TemporaryDirectory() as scratch:
        for name, (path, overrides) in CASES.items():
            overrides = [*overrides, f"train.epochs={args.epochs}"]
            experiment = load_experiment(ROOT / path, overrides)
            task = OperatorTask.for_training(experiment)
            samples = task.steps_per_epoch * experiment.train.batch_size
            figures: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for processes in (1, 2):
                    folder = run(path, overrides, processes, Path(scratch))
                    figures[processes].append(throughput(folder, samples))
            single = statistics.median(s for s, _ in figures[1])
            for processes, rows in figures.items():
                rates = ", ".join(f"{s:.0f}" for s, _ in rows)
                waits = ", ".join(f"{w:.1%}" for _, w in rows)
                median = statistics.median(s for s, _ in rows)
                overhead = "" if processes == 1 else f"{1 - median / single:.0%}"
                print(f"| {name} | {processes} | {rates} | {waits} | {overhead} |")


if __name__ == "__main__":
    main()
