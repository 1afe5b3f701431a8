"""An experiment's data files: paths and glob patterns resolved, missing files generated.

With `data.recipe`, the files are the recipe's: missing ones are generated first (just those,
when named exactly), and an existing one made with other settings (say, fewer samples) is an
error rather than silently used.
"""

from __future__ import annotations

import glob
from pathlib import Path

from surrogates.config import DataSpec
from surrogates.data.generate.generator import run_recipe
from surrogates.errors import TrainingError


def resolve_files(spec: DataSpec) -> list[Path]:
    """The data files: each entry a path or a glob pattern (sorted matches)."""
    if spec.recipe is not None:
        patterns = any(glob.has_magic(entry) for entry in spec.files)
        run_recipe(
            spec.recipe,
            samples=spec.recipe_samples,
            out=_common_folder(spec.files),
            # A pattern cannot say which files it wants: then the whole sweep is made.
            only=None if patterns else [Path(entry).name for entry in spec.files],
        )
    paths: list[Path] = []
    for entry in spec.files:
        found = _matches(entry)
        if not found:
            hint = "" if spec.recipe else " (set data.recipe to generate it)"
            raise TrainingError(f"data.files: {entry} matches no file{hint}")
        paths.extend(found)
    return paths


def _matches(entry: str) -> list[Path]:
    if glob.has_magic(entry):
        return [Path(p) for p in sorted(glob.glob(entry))]
    return [Path(entry)] if Path(entry).exists() else []


def _common_folder(entries: list[str]) -> Path:
    folders = {Path(entry).parent for entry in entries}
    if len(folders) != 1:
        raise TrainingError(
            f"data.recipe: the files live in several folders ({sorted(map(str, folders))}); "
            "a recipe writes to one"
        )
    return folders.pop()


def resolve_other_files(spec: DataSpec, entries: list[str]) -> list[Path]:
    """Files other than the training data's (`eval.other_files`), generated from the same
    `data.recipe` if missing."""
    return resolve_files(spec.model_copy(update={"files": list(entries)}))
