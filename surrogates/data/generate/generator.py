"""Run a recipe: write every file of its sweep that is missing or out of date.

Each recipe kind solves and writes its own files (see `recipe.py`), under a hidden temporary
name in the output folder renamed into place only when complete, so an interrupted run never
leaves a partial file under the real name. A file that already exists with the same settings
(stored in its `generator` attribute) is kept; one with other settings is only replaced with
`force=True`.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from surrogates.data.generate.recipe import load_recipe
from surrogates.errors import RecipeError

DEFAULT_OUT = Path("datasets/data")


def output_folder(out: str | Path | None = None) -> Path:
    """`out`, else `$SURROGATES_DATA`, else `datasets/data` (relative to the working folder)."""
    if out is not None:
        return Path(out)
    return Path(os.environ.get("SURROGATES_DATA") or DEFAULT_OUT)


def stored_settings(path: Path) -> str | None:
    """The `generator` attribute of an existing file, or None if absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("generator")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


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
