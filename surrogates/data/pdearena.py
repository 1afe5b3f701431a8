"""Reader for PDEArena's 2D Navier–Stokes HDF5 layout (smoke buoyancy, plain and conditioned).

A file holds one split group, `train`, `valid` or `test`, with the smoke scalar `u` and the
velocity `vx`, `vy`, each `(N, T, X, Y)` float64, and per trajectory `t (N, T)`, `x (N, X)`,
`y (N, Y)`, `dt`, `dx`, `dy` and the buoyancy `buo_y (N,)`. PDEArena writes each split to its
own file, so a file with several split groups is refused rather than one of them picked
silently. The domain is closed (the velocity is extrapolated with zeros, the smoke with its
boundary values): the boundary defaults to `open`, not periodic.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from surrogates.data.layouts import FileInfo, read_boundary, require, strided, time_coordinate
from surrogates.errors import DatasetError

SPLITS = ("train", "valid", "test")
FIELDS = ("u", "vx", "vy")
# Per-trajectory scalars read as PDE parameters (names as stored).
PARAMETERS = ("buo_y",)


def _split_groups(f: h5py.File) -> list[str]:
    """The top-level split groups that hold all of `u`, `vx`, `vy`."""
    return [
        name
        for name in SPLITS
        if isinstance(f.get(name), h5py.Group) and all(key in f[name] for key in FIELDS)
    ]


def _fields_shape(f: h5py.File, split: str, path: Path) -> tuple[int, ...]:
    """The shared `(N, T, X, Y)` shape of `u`, `vx`, `vy`."""
    first = require(f, f"{split}/{FIELDS[0]}", path, "the smoke scalar (N, T, X, Y)")
    if first.ndim != 4:
        raise DatasetError(
            f"{path}: key '{split}/{FIELDS[0]}': expected shape (N, T, X, Y), found {first.shape}"
        )
    for key in FIELDS[1:]:
        found = require(f, f"{split}/{key}", path, f"shape {first.shape}").shape
        if found != first.shape:
            raise DatasetError(
                f"{path}: key '{split}/{key}': expected shape {first.shape} "
                f"(as '{split}/{FIELDS[0]}'), found {found}"
            )
    return first.shape


def _shared_row(f: h5py.File, key: str, n: int, size: int, path: Path, what: str) -> np.ndarray:
    """Coordinates stored per trajectory `(N, size)` (or once, `(size,)`) as one `(size,)` row;
    the dataset has one grid, so every trajectory must carry the same values."""
    values = np.asarray(require(f, key, path, f"{what} of shape ({n}, {size})")[()], np.float64)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2 or values.shape[1] != size or values.shape[0] not in (1, n):
        raise DatasetError(
            f"{path}: key '{key}': expected shape ({n}, {size}), found {values.shape}"
        )
    differs = ~np.isclose(values, values[0], rtol=1e-6, atol=1e-12).all(axis=1)
    if differs.any():
        raise DatasetError(
            f"{path}: key '{key}': trajectory {int(np.argmax(differs))} has {what} other than "
            "trajectory 0's; one grid per file is expected"
        )
    return values[0]


def _parameters(f: h5py.File, split: str, n: int, path: Path) -> dict[str, np.ndarray]:
    """`buo_y` `(N,)` when stored (a file may lack it, then it has no parameters)."""
    params = {}
    for name in PARAMETERS:
        key = f"{split}/{name}"
        if key not in f:
            continue
        values = np.asarray(f[key][()], dtype=np.float64)
        if values.shape != (n,):
            raise DatasetError(
                f"{path}: key '{key}': expected shape ({n},), one value per trajectory, "
                f"found {values.shape}"
            )
        params[name] = values
    return params


class PDEArena:
    """PDEArena's Navier–Stokes 2D: group `train|valid|test` with `u`, `vx`, `vy` `(N, T, X, Y)`."""

    name = "pdearena"

    def matches(self, f: h5py.File) -> bool:
        return bool(_split_groups(f))

    def describe(self, f: h5py.File, path: Path) -> FileInfo:
        splits = _split_groups(f)
        if len(splits) > 1:
            raise DatasetError(
                f"{path}: found split groups {splits}, expected one: the {self.name} layout "
                "reads one split per file (as PDEArena writes them); copy each to its own file"
            )
        split = splits[0]
        n, frames, nx, ny = _fields_shape(f, split, path)
        t = _shared_row(f, f"{split}/t", n, frames, path, "times")
        coords = {"t": time_coordinate(t, frames, path, f"{split}/t")}
        coords["x"] = _shared_row(f, f"{split}/x", n, nx, path, "x coordinates")
        coords["y"] = _shared_row(f, f"{split}/y", n, ny, path, "y coordinates")
        return FileInfo(
            layout=self.name,
            n=n,
            frames=frames,
            spatial=(nx, ny),
            field_names=FIELDS,
            field_keys=tuple(f"{split}/{key}" for key in FIELDS),
            coords=coords,
            params=_parameters(f, split, n, path),
            boundary=read_boundary(f.attrs, 2, "open", path),
        )

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        index = (i, time, *strided(2, sx))
        channels = [np.asarray(f[key][index], dtype=np.float32) for key in info.field_keys]
        return np.stack(channels, axis=-1)

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> None:
        return None
