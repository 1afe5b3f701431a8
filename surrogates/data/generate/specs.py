"""Pieces every recipe kind is built from, whatever its PDE.

Schema parts (`GridSpec`, `TimeSpec`, `InitialConditionSpec`), the rules a recipe's parameter
sweep and `file_name` follow (`parameter_sweep`, `check_file_name`), the chunked solve
with its divergence check that the time-dependent kinds write from (`solved_chunks`), and
PDEBench's per-sample groups they write (`write_sample_groups`). No
recipe kind is imported here, so every kind can import this module.
"""

from __future__ import annotations

import itertools
import json
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated

import h5py
import numpy as np
from pydantic import Field, model_validator

from surrogates.errors import RecipeError
from surrogates.schema import StrictModel

# Trajectories of samples `indices` (B,) for one parameter combination: (B, T, ...) float32.
Solve = Callable[[dict[str, float], np.ndarray], np.ndarray]


class GridSpec(StrictModel):
    """A periodic grid of `cells` cells on `[x_min, x_max)`."""

    cells: Annotated[int, Field(ge=8)] = 1024
    """Cells of the grid; the fields are saved at their centres."""
    x_min: float = 0.0
    """The left end of the domain."""
    x_max: float = 1.0
    """The right end of the domain (the period is `x_max - x_min`)."""

    @model_validator(mode="after")
    def _ordered(self) -> GridSpec:
        if self.x_max <= self.x_min:
            raise ValueError(f"x_max ({self.x_max}) must exceed x_min ({self.x_min})")
        return self


class TimeSpec(StrictModel):
    """`frames` equally spaced save times from 0 to `t_end`, both included."""

    t_end: Annotated[float, Field(gt=0)] = 2.0
    """The time of the last saved frame."""
    frames: Annotated[int, Field(ge=2)] = 201
    """Saved frames per trajectory, the initial state included."""


class InitialConditionSpec(StrictModel):
    """PDEBench's sum-of-sines distribution (see `initial_conditions.py`)."""

    seed: int = 2022
    """Sample `i` draws from `fold_in(key(seed), i)`, whatever the chunk or file size."""
    modes: Annotated[int, Field(ge=1)] = 4
    """Harmonics `n = 1..modes`, each with an amplitude `~ U(0, 1)` and a phase
    `~ U(0, 2 pi)`."""
    choices: Annotated[int, Field(ge=1)] = 2
    """Draws among the harmonics (with replacement): a harmonic drawn `m` times has `m` times
    its wavenumber, one never drawn adds the constant `A_n sin(phi_n)`."""
    p_abs: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Probability that a sample is replaced by its absolute value (before its random
    sign)."""
    p_window: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Probability that a sample is multiplied by a tanh window, close to 1 inside a random
    interval and to 0 outside it."""
    window_width: Annotated[float, Field(gt=0)] = 0.01
    """The tanh window's transition width, as a fraction of the domain's length (PDEBench's
    0.01 on its unit domain)."""


def parameter_sweep(parameters: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """Every combination of the parameters' values, one dict per file, in the listed order."""
    names = list(parameters)
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*parameters.values())
    ]


def check_file_name(file_name: str, parameters: Mapping[str, Sequence[float]]) -> None:
    """Check that `file_name`'s placeholders are parameter names and tell the files apart.

    Raises:
        ValueError: a placeholder that is no parameter, or a parameter with several values
            and no placeholder (its files would overwrite each other).
    """
    fields = {name for _, name, _, _ in string.Formatter().parse(file_name) if name}
    unknown = fields - set(parameters)
    if unknown:
        raise ValueError(f"file_name: unknown placeholder {{{sorted(unknown)[0]}}}")
    swept = {name for name, values in parameters.items() if len(values) > 1}
    if swept - fields:
        raise ValueError(
            f"file_name: needs {{{sorted(swept - fields)[0]}}}, which takes several values"
        )


def check_finite(
    block: np.ndarray,
    *,
    target: Path,
    first: int,
    pde: str,
    values: dict[str, float],
    remedy: str,
) -> None:
    """Refuse trajectories `block` (B, ...) of samples `first, first + 1, ...` with NaN/Inf.

    Raises:
        RecipeError: naming the file, the first diverged sample and `remedy` (the option to
            change).
    """
    bad = ~np.isfinite(block).reshape(len(block), -1).all(axis=1)
    if bad.any():
        sample = first + int(np.argmax(bad))
        raise RecipeError(
            f"{target}: the {pde} solver diverged (NaN/Inf) for sample {sample} with "
            f"{json.dumps(values)}; nothing was written (try {remedy})"
        )


def write_sample_groups(
    f: h5py.File,
    blocks: Iterable[tuple[int, np.ndarray]],
    grid: Mapping[str, np.ndarray],
    advance: Callable[[int], None],
    attributes: Callable[[np.ndarray], Mapping[str, np.ndarray]] | None = None,
) -> None:
    """Write PDEBench's per-sample groups into the open file `f`.

    blocks: `(first, block)` with block (B, T, *X, C), the trajectories of samples `first,
    first + 1, ...` (as `solved_chunks` gives them). Sample i becomes group `str(i).zfill(4)`
    with `data` (T, *X, C) and `grid/<name>` for every entry of `grid` (x, y, t, ...);
    `attributes(indices)` gives per-sample group attributes, name -> (B,) values. `advance(B)`
    is told of each block written.
    """
    for first, block in blocks:
        indices = np.arange(first, first + len(block))
        extra = attributes(indices) if attributes is not None else {}
        for offset, trajectory in enumerate(block):
            group = f.create_group(str(first + offset).zfill(4))
            group["data"] = trajectory
            for name, values in grid.items():
                group[f"grid/{name}"] = values
            for name, values in extra.items():
                group.attrs[name] = values[offset]
        advance(len(block))


def solved_chunks(
    solve: Solve,
    values: dict[str, float],
    *,
    samples: int,
    chunk: int,
    target: Path,
    pde: str,
    remedy: str,
) -> Iterator[tuple[int, np.ndarray]]:
    """`(first, block)` for samples `0 .. samples - 1` in blocks of `chunk`, each checked finite.

    block: `solve(values, indices)` for the samples `first, first + 1, ...`, (B, T, ...) with
    B = `chunk` except for the last block. `target`, `pde` and `remedy` word the
    `RecipeError` of a diverged sample (see `check_finite`).
    """
    chunk = min(chunk, samples)
    for first in range(0, samples, chunk):
        # Whole chunks always, so the solver compiles once per file shape.
        block = solve(values, np.arange(first, first + chunk))[: samples - first]
        check_finite(block, target=target, first=first, pde=pde, values=values, remedy=remedy)
        yield first, block
