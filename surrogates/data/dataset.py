"""`TrajectoryDataset`: every benchmark file layout behind one lazy, channels-last view.

`open_dataset` detects each file's layout from its keys, checks that several files (a
parameter sweep) agree, and returns a dataset that reads one trajectory at a time, strided
at read time. h5py handles are opened on first use in each process, so a dataset can be
pickled into data-loader workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from surrogates.data.layouts import (
    FileInfo,
    Layout,
    PDEBenchCFD,
    PDEBenchDarcy,
    PDEBenchGroups,
    PDEBenchTensor,
)
from surrogates.data.pdearena import PDEArena
from surrogates.data.well import Well
from surrogates.errors import DatasetError

# Order matters: Darcy also has `tensor`, so it is tried before the plain tensor layout.
LAYOUTS: tuple[Layout, ...] = (
    Well(),
    PDEBenchDarcy(),
    PDEBenchTensor(),
    PDEBenchCFD(),
    PDEBenchGroups(),
    PDEArena(),
)
_LAYOUT_KEYS = {
    "well": "t0_fields/t1_fields/t2_fields + dimensions + n_trajectories",
    "pdebench-darcy": "tensor + nu",
    "pdebench-tensor": "tensor",
    "pdebench-cfd": "density + pressure + Vx",
    "pdebench-groups": "0000/data + 0000/grid",
    "pdearena": "train|valid|test/u + vx + vy",
}


@dataclass(frozen=True)
class Trajectory:
    """One trajectory: `fields (T, *X, C)`, `params {name: float}`, `static (*X, Cs)` or None."""

    fields: np.ndarray
    params: dict[str, float]
    static: np.ndarray | None


class LazyArray:
    """An array of trajectories read on demand: `(N, ...)` where indexing axis 0 reads files.

    `a[i]` reads trajectory `i`; `a[2:5]`, `a[[0, 7]]` read just those; further indices
    (`a[:, 0, ..., 1]`) are applied after reading. `np.asarray(a)` reads everything.
    """

    def __init__(self, shape: tuple[int, ...], read: Callable[[int], np.ndarray]):
        self.shape = shape
        self.dtype = np.dtype(np.float32)
        self._read = read

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        if isinstance(first, int | np.integer):
            return self._read(_checked_index(int(first), self.shape[0]))[rest]
        rows = np.arange(self.shape[0])[first]
        if rows.ndim != 1:
            raise IndexError(f"only 1-D indices are supported on the trajectory axis, got {first}")
        stacked = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for k, row in enumerate(rows):
            stacked[k] = self._read(int(row))
        return stacked[(slice(None), *rest)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        values = self[:]
        return values if dtype is None else values.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype})"


def _checked_index(i: int, n: int) -> int:
    if not -n <= i < n:
        raise IndexError(f"trajectory index {i} out of range for {n} trajectories")
    return i % n


class _Handles:
    """h5py files opened on first use, once per process (h5py handles cannot be pickled)."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = tuple(paths)
        self._open: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __getitem__(self, k: int) -> h5py.File:
        if self._pid != os.getpid():
            self._open, self._pid = {}, os.getpid()
        if k not in self._open:
            self._open[k] = h5py.File(self.paths[k], "r")
        return self._open[k]

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open = {}

    def __getstate__(self) -> dict:
        return {"paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["paths"])


class TrajectoryDataset:
    """Trajectories from one or more benchmark files, channels last, strided at read time.

    Attributes:
        fields: lazy `(N, T, *X, C)` float32.
        field_names: the C channel names, e.g. `("density", "pressure", "Vx")`.
        coords: `{"t": (T,), "x": (X,), ...}` after striding.
        params: `{name: (N,)}` PDE parameters per trajectory.
        static: lazy `(N, *X, Cs)` time-independent inputs (Darcy's coefficient), or None.
        static_names: the Cs static channel names.
        layout: the detected layout name.
        boundary: one of periodic | neumann | dirichlet | open | wall per spatial axis.
        files: the files, in order; `source(i)` tells which file and row trajectory i is.
    """

    def __init__(
        self,
        infos: Sequence[FileInfo],
        layout: Layout,
        handles: _Handles,
        rows: np.ndarray,
        stride_t: int,
        stride_x: int,
    ):
        self._infos = tuple(infos)
        self._layout = layout
        self._handles = handles
        self._rows = rows  # (N, 2): file index, row within that file
        self._stride_t = stride_t
        self._stride_x = stride_x
        first = self._infos[0]
        frames = len(range(0, first.frames, stride_t))
        spatial = tuple(len(range(0, size, stride_x)) for size in first.spatial)
        self.layout = first.layout
        self.field_names = first.field_names
        self.static_names = first.static_names
        self.boundary = first.boundary
        self.files = handles.paths
        self.coords = {"t": first.coords["t"][::stride_t]}
        self.coords.update({k: v[::stride_x] for k, v in first.coords.items() if k != "t"})
        self.params = {
            name: np.array([self._infos[f].params[name][r] for f, r in rows])
            for name in first.params
        }
        self.fields = LazyArray((len(rows), frames, *spatial, len(self.field_names)), self._read)
        self.static = None
        if self.static_names:
            shape = (len(rows), *spatial, len(self.static_names))
            self.static = LazyArray(shape, self._read_static)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        """`ds[i]` is a `Trajectory`; `ds[a:b]` or `ds[[i, j]]` a lazy sub-dataset."""
        if isinstance(index, int | np.integer):
            i = _checked_index(int(index), len(self))
            params = {name: float(values[i]) for name, values in self.params.items()}
            static = None if self.static is None else self.static[i]
            return Trajectory(fields=self.fields[i], params=params, static=static)
        rows = self._rows[np.arange(len(self))[index]]
        return TrajectoryDataset(
            self._infos, self._layout, self._handles, rows, self._stride_t, self._stride_x
        )

    def __repr__(self) -> str:
        return (
            f"TrajectoryDataset(layout={self.layout!r}, fields={self.fields.shape}, "
            f"field_names={self.field_names}, params={sorted(self.params)}, "
            f"files={len(self.files)})"
        )

    def source(self, i: int) -> tuple[Path, int]:
        """The file trajectory `i` comes from and its row in that file."""
        file, row = self._rows[_checked_index(i, len(self))]
        return self.files[file], int(row)

    def locate(self, i: int, channel: int, static: bool = False) -> str:
        """Where channel `channel` of trajectory `i` is stored, as error messages name it:
        `FILE: key 'KEY' trajectory ROW channel 'NAME'` (ROW counts within FILE).
        """
        file, row = self._rows[_checked_index(i, len(self))]
        info = self._infos[file]
        keys, names = (
            (info.static_keys, self.static_names) if static else (info.field_keys, self.field_names)
        )
        path, key, name = self.files[file], keys[channel], names[channel]
        return f"{path}: key '{key}' trajectory {int(row)} channel '{name}'"

    def read_unchecked(
        self, i: int, static: bool = False, frames: slice = slice(None)
    ) -> np.ndarray | None:
        """Trajectory `i`'s fields `(T, *X, C)` (only the strided frames `frames` selects), or
        static inputs `(*X, Cs)`, unchecked for NaN.
        """
        file, row = self._rows[_checked_index(i, len(self))]
        handle, info = self._handles[file], self._infos[file]
        st = self._stride_t
        time = slice(None, None, st)
        if frames != slice(None):
            # Strided frame k is file frame k * stride_t: read just the frames asked for.
            start, stop, _ = frames.indices(self.fields.shape[1])
            time = slice(start * st, stop * st, st)
        try:
            if static:
                return self._layout.read_static(handle, info, int(row), self._stride_x)
            return self._layout.read_fields(handle, info, int(row), time, self._stride_x)
        except OSError as error:
            # HDF5 found the file's structure intact but this trajectory's bytes damaged.
            raise DatasetError(
                f"{self.files[file]}: trajectory {int(row)} unreadable, the file is damaged "
                f"({error})"
            ) from None

    def read_window(self, i: int, start: int, length: int) -> np.ndarray:
        """Frames `start .. start + length - 1` of trajectory `i`: `(length, *X, C)`, reading
        only those frames from the file (what training windows need from large files).
        """
        frames = self.fields.shape[1]
        if start < 0 or length < 1 or start + length > frames:
            raise IndexError(f"window [{start}, {start + length}) outside 0..{frames} frames")
        values = self.read_unchecked(i, frames=slice(start, start + length))
        _check_finite(values, self, i)
        return values

    def close(self) -> None:
        """Close the HDF5 handles this process opened (they reopen on the next read)."""
        self._handles.close()

    def __enter__(self) -> TrajectoryDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, i: int) -> np.ndarray:
        values = self.read_unchecked(i)
        _check_finite(values, self, i)
        return values

    def _read_static(self, i: int) -> np.ndarray:
        values = self.read_unchecked(i, static=True)
        _check_finite(values, self, i, static=True)
        return values


def _check_finite(values: np.ndarray, ds: TrajectoryDataset, i: int, static: bool = False) -> None:
    """NaN/Inf in trajectory `i`'s `values` `(..., C)` is a broken file: name the file, key,
    row and channel."""
    finite = np.isfinite(values).reshape(-1, values.shape[-1]).all(axis=0)
    if finite.all():
        return
    where = ds.locate(i, int(np.argmin(finite)), static=static)
    raise DatasetError(f"{where}: expected finite values, found NaN/Inf")


def _describe(path: Path) -> tuple[FileInfo, Layout]:
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path}: not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            for layout in LAYOUTS:
                if layout.matches(f):
                    return layout.describe(f, path), layout
            keys = sorted(f.keys())[:12]
    except OSError as error:
        raise DatasetError(f"{path}: unreadable HDF5 file ({error})") from error
    known = "; ".join(f"{name} ({keys})" for name, keys in _LAYOUT_KEYS.items())
    raise DatasetError(f"{path}: unknown layout: found keys {keys}; known layouts: {known}")


def _check_consistent(paths: Sequence[Path], infos: Sequence[FileInfo]) -> None:
    """Files opened together must share layout, names, shapes, grids and parameter names."""
    ref = infos[0]
    for path, info in zip(paths[1:], infos[1:], strict=True):
        checks = [
            ("layout", ref.layout, info.layout),
            ("channels", ref.field_names, info.field_names),
            ("static channels", ref.static_names, info.static_names),
            ("frames", ref.frames, info.frames),
            ("grid shape", ref.spatial, info.spatial),
            ("parameters", sorted(ref.params), sorted(info.params)),
        ]
        for what, expected, found in checks:
            if expected != found:
                raise DatasetError(
                    f"{path}: {what}: expected {expected} (as in {paths[0]}), found {found}"
                )
        for axis, values in ref.coords.items():
            if not np.allclose(values, info.coords[axis], rtol=1e-6, atol=1e-12):
                raise DatasetError(f"{path}: {axis} coordinates differ from those in {paths[0]}")


def _select_rows(infos: Sequence[FileInfo], samples) -> np.ndarray:
    """`(N, 2)` (file, row) pairs; an int `samples` caps each file, a sequence picks globally."""
    cap = samples if isinstance(samples, int | np.integer) else None
    if cap is not None and cap < 1:
        raise DatasetError(f"samples: expected a positive integer, found {cap}")
    counts = [info.n if cap is None else min(cap, info.n) for info in infos]
    rows = np.concatenate(
        [np.stack([np.full(n, k), np.arange(n)], axis=1) for k, n in enumerate(counts)]
    )
    if samples is None or cap is not None:
        return rows
    if isinstance(samples, slice):
        return rows[samples]
    picked = np.asarray(samples, dtype=int).ravel()
    if picked.size and not (-len(rows) <= picked.min() and picked.max() < len(rows)):
        raise DatasetError(
            f"samples: expected indices in [0, {len(rows)}), found {picked.min()}..{picked.max()}"
        )
    return rows[picked]


def _check_stride(name: str, value: int) -> None:
    if not isinstance(value, int | np.integer) or value < 1:
        raise DatasetError(f"{name}: expected a positive integer, found {value!r}")


def _check_distinct(paths: Sequence[Path]) -> None:
    """Each file once: a file given twice (say, by a path and a glob matching it) would put
    copies of its trajectories into more than one split, test data among them in training."""
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            same = "twice" if seen[key] == path else f"twice (also as {seen[key]})"
            raise DatasetError(
                f"{path}: given {same}; each file may appear once, else copies of its "
                "trajectories land in more than one split"
            )
        seen[key] = path


def _check_grid_stride(path: Path, info: FileInfo, stride_x: int) -> None:
    """`stride_x` keeps at least two points per axis, and on a periodic axis divides the
    grid (else the spacing across the boundary differs from the rest)."""
    for axis, (size, boundary) in enumerate(zip(info.spatial, info.boundary, strict=True)):
        kept = len(range(0, size, stride_x))
        if kept < 2:
            raise DatasetError(
                f"stride_x: {stride_x} leaves {kept} point of the {size} along spatial axis "
                f"{axis} of {path}; at least 2 are needed"
            )
        if boundary == "periodic" and size % stride_x:
            raise DatasetError(
                f"stride_x: {stride_x} does not divide the {size} points of periodic spatial "
                f"axis {axis} of {path} (the spacing across the boundary would differ); "
                f"take a divisor of {size}"
            )


def open_dataset(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    stride_t: int = 1,
    stride_x: int = 1,
    samples: int | Sequence[int] | slice | None = None,
) -> TrajectoryDataset:
    """Open one benchmark file, or several (a parameter sweep), as one `TrajectoryDataset`.

    Args:
        paths: an HDF5 file or a list of them, all of the same layout and grid.
        stride_t: keep every `stride_t`-th frame (applied when reading).
        stride_x: keep every `stride_x`-th grid point along each spatial axis.
        samples: None for all; an int caps the trajectories taken from each file (as
            PDEBench's `num_samples_max`, so a sweep stays balanced); a sequence of indices or
            a slice picks trajectories of the concatenated files.

    Raises:
        DatasetError: a missing file, not HDF5, unknown layout, files that disagree, a file
            given twice, or a `stride_x` that leaves fewer than two points along an axis or
            does not divide a periodic axis.
    """
    _check_stride("stride_t", stride_t)
    _check_stride("stride_x", stride_x)
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("open_dataset: expected at least one file, found none")
    _check_distinct(paths)
    described = [_describe(path) for path in paths]
    infos = [info for info, _ in described]
    _check_consistent(paths, infos)
    _check_grid_stride(paths[0], infos[0], stride_x)
    rows = _select_rows(infos, samples)
    if len(rows) == 0:
        raise DatasetError(f"{paths[0]}: expected at least one trajectory, found none")
    return TrajectoryDataset(infos, described[0][1], _Handles(paths), rows, stride_t, stride_x)
