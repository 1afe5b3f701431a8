"""Run a recipe: write every file of its sweep that is missing or out of date.

Each recipe kind solves and writes its own files (see `recipe.py`), under a hidden temporary
name in the output folder renamed into place only when complete, so an interrupted run never
leaves a partial file under the real name. A run killed outright (SIGKILL, out of memory)
leaves that full-size hidden temporary behind; the next run of the recipe into the same
folder deletes the temporaries of writers that are no longer running, and keeps those another
live process (say a concurrent `surrogates generate`) is still writing. A file that already
exists with the same settings (stored in its `generator` attribute) is kept; one with other
settings is only replaced with `force=True`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from surrogates.atomic import remove_stale_temporaries
from surrogates.data.generate.recipe import DatasetRecipe, load_recipe
from surrogates.errors import RecipeError

DEFAULT_OUT = Path("datasets/data")


def output_folder(out: str | Path | None = None) -> Path:
    """`out`, else `$SURROGATES_DATA`, else `datasets/data` (relative to the working folder)."""
    if out is not None:
        return Path(out)
    return Path(os.environ.get("SURROGATES_DATA") or DEFAULT_OUT)


def _folder_source(out: str | Path | None) -> str:
    """Where the output folder came from, for error messages."""
    if out is not None:
        return "--out"
    return "$SURROGATES_DATA" if os.environ.get("SURROGATES_DATA") else "output folder"


def _create_folder(folder: Path, source: str) -> None:
    """Create `folder`; a RecipeError names it if it is a file or cannot be created."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise RecipeError(f"{source} {folder}: not a directory") from error
    except OSError as error:
        raise RecipeError(f"{source} {folder}: cannot create: {error.strerror}") from error


def _check_writable(folder: Path, source: str) -> None:
    """Fail before solving, not after, if no file can be written in `folder`."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise RecipeError(f"{source} {folder}: cannot write: {error.strerror}") from error


def stored_settings(path: Path) -> str | None:
    """The `generator` attribute of an existing file, or None if absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("generator")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def _files_to_write(
    recipe: DatasetRecipe, plan: list[tuple[Path, dict[str, float]]], force: bool
) -> list[tuple[Path, dict[str, float]]]:
    """The files of `plan` missing or out of date, after removing killed runs' temporaries.

    Raises:
        RecipeError: an existing file with other settings, without `force`.
    """
    todo = []
    for target, values in plan:
        remove_stale_temporaries(target)
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
    return todo


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

    Hidden temporaries of these files left by killed runs (see the module docstring) are
    deleted first.

    Raises:
        RecipeError: a bad recipe, an existing file with other settings (without `force`),
            a solver that diverged, or an output folder that cannot be created or written.
    """
    recipe = load_recipe(path)
    if samples is not None:
        if samples < 1:
            raise RecipeError(f"--samples: expected a positive number, found {samples}")
        recipe = recipe.model_copy(update={"samples": samples})
    folder, source = output_folder(out), _folder_source(out)
    _create_folder(folder, source)
    plan = [(folder / recipe.file_name.format(**values), values) for values in recipe.sweep()]
    if only is not None:
        produced = {target.name for target, _ in plan}
        unknown = sorted(set(only) - produced)
        if unknown:
            raise RecipeError(
                f"{path}: makes no file named {unknown[0]} (it makes {', '.join(sorted(produced))})"
            )
        plan = [(target, values) for target, values in plan if target.name in only]
    todo = _files_to_write(recipe, plan, force)
    if todo:
        _check_writable(folder, source)
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
            try:
                recipe.write(target, values, lambda k, task=task: bar.advance(task, k))
            except OSError as error:  # a full disk, or a folder removed under the run
                raise RecipeError(f"{target}: cannot write: {error.strerror or error}") from error
    return [target for target, _ in plan]
