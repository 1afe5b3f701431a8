"""Run a recipe: solve trajectories chunk by chunk and write PDEBench single-file HDF5 files.

Each file is written under a hidden temporary name in the output folder and renamed into place
only when complete, so an interrupted run never leaves a partial file under the real name. A
file that already exists with the same settings (stored in its `generator` attribute) is kept;
one with other settings is only replaced with `force=True`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import h5py
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from surrogates.atomic import atomic_path
from surrogates.data.generate import pdes
from surrogates.data.generate.initial_conditions import normalise_unit_range, sample_sum_of_sines
from surrogates.data.generate.recipe import Recipe, load_recipe
from surrogates.errors import RecipeError

DEFAULT_OUT = Path("datasets/data")


def output_folder(out: str | Path | None = None) -> Path:
    """`out`, else `$SURROGATES_DATA`, else `datasets/data` (relative to the working folder)."""
    if out is not None:
        return Path(out)
    return Path(os.environ.get("SURROGATES_DATA") or DEFAULT_OUT)


def grid_of(recipe: Recipe) -> pdes.Grid:
    spec = recipe.grid
    return pdes.Grid(cells=spec.cells, x_min=spec.x_min, length=spec.x_max - spec.x_min)


def solve(recipe: Recipe, values: dict[str, float], indices: np.ndarray) -> np.ndarray:
    """Trajectories of samples `indices` (B,) for one parameter combination: (B, T, N) float32."""
    grid, spec, options = grid_of(recipe), recipe.initial_condition, recipe.options()
    ic = sample_sum_of_sines(
        spec.seed,
        indices,
        x_min=grid.x_min,
        length=grid.length,
        modes=spec.modes,
        choices=spec.choices,
        p_abs=spec.p_abs,
        p_window=spec.p_window,
        window_width=spec.window_width,
    )
    frames = recipe.time.frames
    timing = {"grid": grid, "frames": frames, "interval": recipe.time.t_end / (frames - 1)}
    param = {name: jnp.float32(value) for name, value in values.items()}
    u0 = ic(jnp.asarray(grid.centres, jnp.float32))
    if recipe.pde == "advection" and options["method"] == "exact":
        out = pdes.advection_exact(ic, param["beta"], **timing)
    elif recipe.pde == "advection":
        out = pdes.advection_muscl(u0, param["beta"], cfl=options["cfl"], **timing)
    elif recipe.pde == "burgers":
        scheme = options["viscous_scheme"]
        out = pdes.burgers(u0, param["Nu"], cfl=options["cfl"], viscous_scheme=scheme, **timing)
    else:
        steps = options["steps_per_frame"]
        out = pdes.reaction_diffusion(
            normalise_unit_range(u0), param["Nu"], param["rho"], steps_per_frame=steps, **timing
        )
    return np.asarray(out, dtype=np.float32)


def stored_settings(path: Path) -> str | None:
    """The `generator` attribute of an existing file, or None if absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("generator")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def write_file(
    target: Path,
    recipe: Recipe,
    values: dict[str, float],
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Generate one parameter combination into `target`, atomically.

    Layout: `tensor (N, T, X)` float32, `x-coordinate (X,)` cell centres, `t-coordinate (T+1,)`
    as PDEBench writes it, the parameters as attributes, plus `boundary`, `pde` and
    `generator` (the settings, JSON). `advance(n)` is told of every n samples written.
    """
    grid, frames, n = grid_of(recipe), recipe.time.frames, recipe.samples
    chunk = min(recipe.chunk, n)
    interval = recipe.time.t_end / (frames - 1)
    with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
        tensor = f.create_dataset(
            "tensor", (n, frames, grid.cells), np.float32, chunks=(1, frames, grid.cells)
        )
        f["x-coordinate"] = grid.centres.astype(np.float32)
        f["t-coordinate"] = (interval * np.arange(frames + 1)).astype(np.float32)
        f.attrs.update(values)
        f.attrs.update(boundary="periodic", pde=recipe.pde)
        if recipe.pde == "burgers":
            f.attrs["viscosity"] = values["Nu"] / np.pi
        for start in range(0, n, chunk):
            # Whole chunks always, so the solver compiles once per file shape.
            block = solve(recipe, values, np.arange(start, start + chunk))[: n - start]
            _check_finite(block, target, start, recipe, values)
            tensor[start : start + len(block)] = block
            advance(len(block))
        f.attrs["generator"] = recipe.file_settings(values)


def _check_finite(
    block: np.ndarray, target: Path, start: int, recipe: Recipe, values: dict[str, float]
) -> None:
    bad = ~np.isfinite(block).reshape(len(block), -1).all(axis=1)
    if bad.any():
        sample = start + int(np.argmax(bad))
        raise RecipeError(
            f"{target}: the {recipe.pde} solver diverged (NaN/Inf) for sample {sample} with "
            f"{json.dumps(values)}; nothing was written (try a smaller solver.cfl)"
        )


def run_recipe(
    path: str | Path,
    *,
    samples: int | None = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    only: list[str] | None = None,
) -> list[Path]:
    """Generate every file of the recipe at `path`; returns the files, generated or kept.

    only: file names to restrict the sweep to (names the recipe does not produce are an error).

    Raises:
        RecipeError: a bad recipe, an existing file with other settings (without `force`),
            or a solver that diverged.
    """
    recipe = load_recipe(path)
    if samples is not None:
        if samples < 1:
            raise RecipeError(f"--samples: expected a positive number, found {samples}")
        recipe = recipe.model_copy(update={"samples": samples})
    folder = output_folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    plan = [(folder / recipe.file_name.format(**values), values) for values in recipe.sweep()]
    if only is not None:
        produced = {target.name for target, _ in plan}
        unknown = sorted(set(only) - produced)
        if unknown:
            raise RecipeError(
                f"{path}: makes no file named {unknown[0]} (it makes {', '.join(sorted(produced))})"
            )
        plan = [(target, values) for target, values in plan if target.name in only]
    todo = []
    for target, values in plan:
        if target.exists():
            found = stored_settings(target)
            if found == recipe.file_settings(values):
                continue
            if not force:
                raise RecipeError(
                    f"{target}: exists with other settings; pass --force to replace it, "
                    "or choose another --out"
                )
        todo.append((target, values))
    with Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
    ) as bar:
        for target, values in todo:
            task = bar.add_task(target.name, total=recipe.samples)
            recipe.write(target, values, lambda k, task=task: bar.advance(task, k))
    return [target for target, _ in plan]
