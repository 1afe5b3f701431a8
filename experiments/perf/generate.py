"""Benchmark: Burgers trajectories per second at PDEBench's size (1024 cells, 201 frames).

Generates one file of `--samples` trajectories (default 1000) for each `--nu` with the shipped
recipe's settings, including the HDF5 writes, after one warm-up chunk that compiles the solver.
Goal: 1,000 trajectories in under 2 minutes on a 2-core CPU.

    .venv/bin/python experiments/perf/generate.py [--samples 1000] [--nu 0.01 0.1 1.0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from surrogates.data.generate.recipe import load_recipe

RECIPE = Path(__file__).parents[2] / "datasets" / "burgers1d.yaml"
GOAL_SECONDS_PER_1000 = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--nu", type=float, nargs="+", default=[0.01])
    args = parser.parse_args()
    recipe = load_recipe(RECIPE)
    print(
        f"Burgers, {recipe.grid.cells} cells x {recipe.time.frames} frames, "
        f"chunks of {recipe.chunk}, {args.samples} trajectories per Nu"
    )
    start = time.perf_counter()
    recipe.solve({"Nu": args.nu[0]}, np.arange(recipe.chunk))
    print(f"compile + first chunk: {time.perf_counter() - start:.1f} s")
    for nu in args.nu:
        sweep = recipe.model_copy(update={"samples": args.samples, "parameters": {"Nu": [nu]}})
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            sweep.write(Path(folder) / "burgers.hdf5", {"Nu": nu}, lambda n: None)
            seconds = time.perf_counter() - start
        rate = args.samples / seconds
        per_1000 = 1000 / rate
        print(
            f"Nu={nu:<6g} {rate:7.1f} trajectories/s   1000 in {per_1000:6.1f} s   "
            f"goal ratio (120 s / time) {GOAL_SECONDS_PER_1000 / per_1000:.2f}"
        )


if __name__ == "__main__":
    main()
