"""Readers for PDEBench's HDF5 layouts, detected from a file's keys.

Each layout turns an open `h5py.File` into a `FileInfo` (shapes, names, coordinates,
parameters) and reads one trajectory at a time, strided at read time, channels last.
The Well's and PDEArena's layouts live in `well.py` and `pdearena.py`; `dataset.LAYOUTS`
lists all of them in the order they are tried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import h5py
import numpy as np

from surrogates.errors import DatasetError

# PDE parameters PDEBench stores as file attributes (names as in its files).
PARAMETER_ATTRIBUTES = ("beta", "Nu", "nu", "rho", "eta", "zeta", "M")
SPATIAL_AXES = ("x", "y", "z")
BOUNDARY_KINDS = ("periodic", "neumann", "dirichlet", "open", "wall")
CFD_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
_GROUP_KEY = re.compile(r"^\d+$")


@dataclass(frozen=True)
class FileInfo:
    """What a file holds, before striding.

    `coords["t"]` has `frames` entries; `coords[axis]` one entry per grid point of that axis.
    `params[name]` has one value per trajectory: `(n,)`.
    """

    layout: str
    n: int
    frames: int
    spatial: tuple[int, ...]
    field_names: tuple[str, ...]
    field_keys: tuple[str, ...]
    coords: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    boundary: tuple[str, ...]
    static_names: tuple[str, ...] = ()
    static_keys: tuple[str, ...] = ()
    # What a layout needs to find trajectory i again (group names, field descriptors).
    layout_data: tuple = ()


class Layout(Protocol):
    """One HDF5 layout: how to recognise it, describe it and read trajectory `i` from it."""

    name: str

    def matches(self, f: h5py.File) -> bool: ...

    def describe(self, f: h5py.File, path: Path) -> FileInfo: ...

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        """Trajectory `i` as `(T', *X', C)` float32: the frames `time` selects (in the file's
        frame numbers, e.g. `slice(None, None, st)` or a window of them), every `sx`-th point.
        """
        ...

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> np.ndarray | None:
        """Time-independent inputs of trajectory `i` as `(*X', Cs)`, or None."""
        ...


def strided(ndim: int, sx: int) -> tuple[slice, ...]:
    """One `::sx` slice per spatial axis."""
    return (slice(None, None, sx),) * ndim


def require(f: h5py.File, key: str, path: Path, what: str) -> h5py.Dataset:
    """The dataset `key`, or a DatasetError saying which layout needed it."""
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise DatasetError(f"{path}: key '{key}' missing: expected {what}")
    return f[key]


def read_parameters(attrs: h5py.AttributeManager, n: int, names=PARAMETER_ATTRIBUTES) -> dict:
    """Numeric attributes among `names`, broadcast to one value per trajectory `(n,)`."""
    params = {}
    for name in names:
        if name not in attrs:
            continue
        value = np.asarray(attrs[name])
        if value.dtype.kind not in "iuf" or value.size != 1:
            continue
        params[name] = np.full(n, float(value.reshape(())), dtype=np.float64)
    return params


def read_boundary(attrs: h5py.AttributeManager, ndim: int, default: str, path: Path) -> tuple:
    """Per-axis boundary kinds from a `boundary` attribute (one string or one per axis)."""
    if "boundary" not in attrs:
        return (default,) * ndim
    raw = attrs["boundary"]
    kinds = [raw] if isinstance(raw, str) else [str(k) for k in np.asarray(raw).ravel()]
    kinds = [k.lower() for k in kinds]
    if len(kinds) == 1:
        kinds = kinds * ndim
    if len(kinds) != ndim or any(k not in BOUNDARY_KINDS for k in kinds):
        raise DatasetError(
            f"{path}: attribute 'boundary': expected one of {BOUNDARY_KINDS} per spatial axis "
            f"({ndim}), found {list(kinds)}"
        )
    return tuple(kinds)


def grid_coordinates(f: h5py.File, path: Path, spatial: tuple[int, ...]) -> dict:
    """`x-coordinate`, `y-coordinate`, ... checked against the field's spatial shape."""
    coords = {}
    for axis, size in zip(SPATIAL_AXES, spatial, strict=False):
        key = f"{axis}-coordinate"
        values = np.asarray(require(f, key, path, f"{size} {axis} cell centres")[()]).ravel()
        if values.shape[0] != size:
            raise DatasetError(
                f"{path}: key '{key}': expected {size} entries (the field's {axis} size), "
                f"found {values.shape[0]}"
            )
        coords[axis] = values.astype(np.float64)
    return coords


def time_coordinate(values: np.ndarray, frames: int, path: Path, key: str) -> np.ndarray:
    """The first `frames` times: PDEBench stores T+1 times for T frames, so keep T."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape[0] < frames:
        raise DatasetError(
            f"{path}: key '{key}': expected at least {frames} times (one per frame), "
            f"found {values.shape[0]}"
        )
    return values[:frames]


def _check_ndim(dset: h5py.Dataset, path: Path, allowed: tuple[int, ...], what: str) -> None:
    if dset.ndim not in allowed:
        raise DatasetError(
            f"{path}: key '{dset.name.lstrip('/')}': expected {what}, found shape {dset.shape}"
        )


def _check_spatial_axes(f: h5py.File, dset: h5py.Dataset, path: Path, layout: str) -> None:
    """`dset` `(N, T, *X)` has one spatial axis per coordinate key: with `x-coordinate` present
    but a later axis's key absent, the likelier fault is the shape (a trailing channel axis,
    say), so that is what the error names (with no `x-coordinate` at all, the key is missing).
    """
    axes = SPATIAL_AXES[: dset.ndim - 2]
    missing = [f"{axis}-coordinate" for axis in axes if f"{axis}-coordinate" not in f]
    if not missing or missing[0] == "x-coordinate":
        return
    raise DatasetError(
        f"{path}: key '{dset.name.lstrip('/')}': found shape {dset.shape} with no "
        f"'{missing[0]}'; the {layout} layout expects (N, T, X) with 'x-coordinate' of "
        "length X for 1D data, (N, T, X, Y) with x- and y-coordinates for 2D, (N, T, X, Y, Z) "
        "with x-, y- and z-coordinates for 3D (one axis per coordinate, no channel axis)"
    )


class PDEBenchTensor:
    """Single-file `tensor` layout `(N, T, *X)`: 1D advection, Burgers, reaction–diffusion."""

    name = "pdebench-tensor"

    def matches(self, f: h5py.File) -> bool:
        return "tensor" in f and "nu" not in f

    def describe(self, f: h5py.File, path: Path) -> FileInfo:
        tensor = require(f, "tensor", path, "the solution (N, T, X...)")
        _check_ndim(tensor, path, (3, 4, 5), "shape (N, T, X[, Y[, Z]])")
        _check_spatial_axes(f, tensor, path, self.name)
        n, frames, *spatial = tensor.shape
        t = require(f, "t-coordinate", path, f"{frames} (or {frames + 1}) times")[()]
        coords = {"t": time_coordinate(t, frames, path, "t-coordinate")}
        coords.update(grid_coordinates(f, path, tuple(spatial)))
        return FileInfo(
            layout=self.name,
            n=n,
            frames=frames,
            spatial=tuple(spatial),
            field_names=("u",),
            field_keys=("tensor",),
            coords=coords,
            params=read_parameters(f.attrs, n),
            boundary=read_boundary(f.attrs, len(spatial), "periodic", path),
        )

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        index = (i, time, *strided(len(info.spatial), sx))
        return np.asarray(f["tensor"][index], dtype=np.float32)[..., None]

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> None:
        return None


class PDEBenchCFD:
    """Compressible Navier–Stokes: `density`, `pressure`, `Vx`[, `Vy`, `Vz`], each `(N, T, *X)`."""

    name = "pdebench-cfd"

    def matches(self, f: h5py.File) -> bool:
        return all(key in f for key in ("density", "pressure", "Vx"))

    def describe(self, f: h5py.File, path: Path) -> FileInfo:
        density = require(f, "density", path, "density (N, T, X...)")
        _check_ndim(density, path, (3, 4, 5), "shape (N, T, X[, Y[, Z]])")
        _check_spatial_axes(f, density, path, self.name)
        n, frames, *spatial = density.shape
        names = CFD_FIELDS[: 2 + len(spatial)]
        for key in names:
            found = require(f, key, path, f"{key} of shape {density.shape}").shape
            if found != density.shape:
                raise DatasetError(
                    f"{path}: key '{key}': expected shape {density.shape} (as density), "
                    f"found {found}"
                )
        t = require(f, "t-coordinate", path, f"{frames} (or {frames + 1}) times")[()]
        coords = {"t": time_coordinate(t, frames, path, "t-coordinate")}
        coords.update(grid_coordinates(f, path, tuple(spatial)))
        return FileInfo(
            layout=self.name,
            n=n,
            frames=frames,
            spatial=tuple(spatial),
            field_names=names,
            field_keys=names,
            coords=coords,
            params=read_parameters(f.attrs, n),
            boundary=read_boundary(f.attrs, len(spatial), "periodic", path),
        )

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        index = (i, time, *strided(len(info.spatial), sx))
        channels = [np.asarray(f[key][index], dtype=np.float32) for key in info.field_keys]
        return np.stack(channels, axis=-1)

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> None:
        return None


class PDEBenchDarcy:
    """Darcy flow: coefficient `nu` `(N, X, Y)` as static input, `tensor` `(N, 1, X, Y)`."""

    name = "pdebench-darcy"

    def matches(self, f: h5py.File) -> bool:
        return "tensor" in f and "nu" in f

    def describe(self, f: h5py.File, path: Path) -> FileInfo:
        tensor = require(f, "tensor", path, "the solution (N, 1, X, Y)")
        _check_ndim(tensor, path, (4,), "shape (N, 1, X, Y)")
        n, frames, *spatial = tensor.shape
        nu = require(f, "nu", path, f"the coefficient of shape {(n, *spatial)}")
        if nu.shape != (n, *spatial):
            raise DatasetError(
                f"{path}: key 'nu': expected shape {(n, *spatial)} (as tensor), found {nu.shape}"
            )
        coords = {"t": np.zeros(frames)}
        if "t-coordinate" in f:
            coords["t"] = time_coordinate(f["t-coordinate"][()], frames, path, "t-coordinate")
        coords.update(grid_coordinates(f, path, tuple(spatial)))
        return FileInfo(
            layout=self.name,
            n=n,
            frames=frames,
            spatial=tuple(spatial),
            field_names=("u",),
            field_keys=("tensor",),
            coords=coords,
            params=read_parameters(f.attrs, n),
            boundary=read_boundary(f.attrs, len(spatial), "dirichlet", path),
            static_names=("nu",),
            static_keys=("nu",),
        )

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        index = (i, time, *strided(2, sx))
        return np.asarray(f["tensor"][index], dtype=np.float32)[..., None]

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> np.ndarray:
        return np.asarray(f["nu"][(i, *strided(2, sx))], dtype=np.float32)[..., None]


class PDEBenchGroups:
    """Per-sample groups `0000/data` `(T, *X, C)` with `grid/x|y|z|t`: SWE, 2D diff-react, sorption.

    The files carry no channel names: one channel is `u`, two are `u`, `v` (diffusion–reaction's
    activator and inhibitor), more are `c0`, `c1`, ...
    """

    name = "pdebench-groups"

    def matches(self, f: h5py.File) -> bool:
        keys = list(f.keys())
        return bool(keys) and all(_GROUP_KEY.match(k) for k in keys)

    def describe(self, f: h5py.File, path: Path) -> FileInfo:
        keys = tuple(sorted(f.keys(), key=int))
        first = keys[0]
        data = require(f, f"{first}/data", path, "a trajectory (T, X[, Y[, Z]], C)")
        _check_ndim(data, path, (3, 4, 5), "shape (T, X[, Y[, Z]], C)")
        for key in keys[1:]:
            found = require(f, f"{key}/data", path, f"a trajectory of shape {data.shape}").shape
            if found != data.shape:
                raise DatasetError(
                    f"{path}: key '{key}/data': expected shape {data.shape} (as '{first}/data'), "
                    f"found {found}"
                )
        frames, *spatial, channels = data.shape
        coords = {"t": time_coordinate(f[first]["grid/t"][()], frames, path, f"{first}/grid/t")}
        for axis, size in zip(SPATIAL_AXES, spatial, strict=False):
            key = f"{first}/grid/{axis}"
            values = np.asarray(require(f, key, path, f"{size} {axis} coordinates")[()]).ravel()
            if values.shape[0] != size:
                raise DatasetError(
                    f"{path}: key '{key}': expected {size} entries, found {values.shape[0]}"
                )
            coords[axis] = values.astype(np.float64)
        names = ("u", "v") if channels == 2 else tuple(f"c{k}" for k in range(channels))
        return FileInfo(
            layout=self.name,
            n=len(keys),
            frames=frames,
            spatial=tuple(spatial),
            field_names=("u",) if channels == 1 else names,
            field_keys=("data",) * channels,
            coords=coords,
            params=read_parameters(f.attrs, len(keys)),
            boundary=read_boundary(f.attrs, len(spatial), "neumann", path),
            layout_data=keys,
        )

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        key = info.layout_data[i]
        index = (time, *strided(len(info.spatial), sx), slice(None))
        return np.asarray(f[key]["data"][index], dtype=np.float32)

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> None:
        return None
