"""Reader for The Well's HDF5 layout (`reference/the-well-format.md`).

A field's on-disk shape is `[B if sample_varying] + [T if time_varying] + [n_d for each
varying spatial dim] + [D] * order`. Time-varying fields become channels (t0 fields in
`field_names` order, then each t1 field's D components, then t2 components row-major);
fields that do not vary in time become static inputs. Axes a field does not vary along are
broadcast, so every channel has the full `(T, *X)` shape.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from surrogates.data.layouts import FileInfo, strided, time_coordinate
from surrogates.errors import DatasetError

_FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
_BOUNDARY = {"periodic": "periodic", "wall": "wall", "open": "open"}


@dataclass(frozen=True)
class _Field:
    """One field dataset and how its axes map onto `(B, T, *X, components)`."""

    key: str
    order: int
    sample_varying: bool
    time_varying: bool
    dim_varying: tuple[bool, ...]
    components: tuple[str, ...]


def _flag(attrs: h5py.AttributeManager, name: str, default: bool = True) -> bool:
    return bool(np.asarray(attrs[name]).reshape(())) if name in attrs else default


def _names(attrs: h5py.AttributeManager, key: str) -> list[str]:
    if key not in attrs:
        return []
    raw = attrs[key]
    return [raw] if isinstance(raw, str) else [str(v) for v in np.asarray(raw).ravel()]


def _component_names(name: str, order: int, dims: list[str]) -> tuple[str, ...]:
    if order == 0:
        return (name,)
    return tuple(f"{name}_{''.join(c)}" for c in itertools.product(dims, repeat=order))


def _fields(f: h5py.File, path: Path, dims: list[str]) -> list[_Field]:
    fields = []
    for order, group_name in enumerate(_FIELD_GROUPS):
        if group_name not in f:
            continue
        group = f[group_name]
        for name in _names(group.attrs, "field_names"):
            key = f"{group_name}/{name}"
            if name not in group:
                raise DatasetError(f"{path}: key '{key}' missing: listed in field_names")
            attrs = group[name].attrs
            dim_varying = tuple(bool(v) for v in np.asarray(attrs.get("dim_varying", [])).ravel())
            if len(dim_varying) != len(dims):
                raise DatasetError(
                    f"{path}: key '{key}': expected attribute dim_varying with {len(dims)} "
                    f"flags, found {list(dim_varying)}"
                )
            fields.append(
                _Field(
                    key=key,
                    order=order,
                    sample_varying=_flag(attrs, "sample_varying"),
                    time_varying=_flag(attrs, "time_varying"),
                    dim_varying=dim_varying,
                    components=_component_names(name, order, dims),
                )
            )
    return fields


def _expected_shape(field: _Field, n: int, frames: int, spatial: tuple[int, ...]) -> tuple:
    shape = [n] if field.sample_varying else []
    shape += [frames] if field.time_varying else []
    shape += [size for size, varies in zip(spatial, field.dim_varying, strict=True) if varies]
    return (*shape, *[len(spatial)] * field.order)


def _spatial_shape(f: h5py.File, path: Path, dims: list[str]) -> tuple[int, ...]:
    sizes = []
    for dim in dims:
        key = f"dimensions/{dim}"
        if key not in f:
            raise DatasetError(f"{path}: key '{key}' missing: listed in spatial_dims")
        sizes.append(f[key].shape[-1])
    return tuple(sizes)


def _first_row(values: np.ndarray) -> np.ndarray:
    """Coordinates that vary per sample or in time: the first sample's, first time's."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, values.shape[-1])[0]


def _parameters(f: h5py.File, n: int) -> dict[str, np.ndarray]:
    params = {}
    for name in _names(f.attrs, "simulation_parameters"):
        value = np.asarray(f.attrs.get(name, np.nan))
        if value.dtype.kind in "iuf" and value.size == 1:
            params[name] = np.full(n, float(value.reshape(())))
    scalars = f.get("scalars")
    for name in _names(scalars.attrs, "field_names") if scalars is not None else []:
        if name in params or name not in scalars:
            continue
        attrs = scalars[name].attrs
        if _flag(attrs, "time_varying", default=False):
            continue
        values = np.asarray(scalars[name][()], dtype=np.float64).ravel()
        if _flag(attrs, "sample_varying", default=False) and values.size == n:
            params[name] = values
        elif values.size == 1:
            params[name] = np.full(n, values[0])
    return params


def _boundaries(f: h5py.File, path: Path, dims: list[str]) -> tuple[str, ...]:
    kinds = dict.fromkeys(dims, "open")
    group = f.get("boundary_conditions")
    for bc in group.values() if group is not None else []:
        kind = str(np.asarray(bc.attrs.get("bc_type", "")).reshape(())).lower()
        if kind not in _BOUNDARY:
            raise DatasetError(
                f"{path}: key '{bc.name.lstrip('/')}': expected bc_type in "
                f"{sorted(_BOUNDARY)}, found '{kind}'"
            )
        for dim in _names(bc.attrs, "associated_dims"):
            kinds[dim] = _BOUNDARY[kind]
    return tuple(kinds[d] for d in dims)


class Well:
    """The Well: `t0_fields`, `t1_fields`, `t2_fields`, `dimensions`, `boundary_conditions`."""

    name = "well"

    def matches(self, f: h5py.File) -> bool:
        has_fields = any(group in f for group in _FIELD_GROUPS)
        return has_fields and "dimensions" in f and "n_trajectories" in f.attrs

    def describe(self, f: h5py.File, path: Path) -> FileInfo:
        n = int(np.asarray(f.attrs["n_trajectories"]).reshape(()))
        dims = _names(f["dimensions"].attrs, "spatial_dims")
        spatial = _spatial_shape(f, path, dims)
        if "dimensions/time" not in f:
            raise DatasetError(f"{path}: key 'dimensions/time' missing: expected T times")
        time = _first_row(f["dimensions/time"][()])
        fields = _fields(f, path, dims)
        frames = time.shape[0]
        for field in fields:
            expected = _expected_shape(field, n, frames, spatial)
            if f[field.key].shape != expected:
                raise DatasetError(
                    f"{path}: key '{field.key}': expected shape {expected} from its "
                    f"sample/time/dim_varying flags, found {f[field.key].shape}"
                )
        dynamic = [fd for fd in fields if fd.time_varying]
        static = [fd for fd in fields if not fd.time_varying]
        if not dynamic:
            raise DatasetError(f"{path}: expected at least one time-varying field, found none")
        coords = {"t": time_coordinate(time, frames, path, "dimensions/time")}
        coords.update({d: _first_row(f[f"dimensions/{d}"][()]) for d in dims})
        return FileInfo(
            layout=self.name,
            n=n,
            frames=frames,
            spatial=spatial,
            field_names=tuple(c for fd in dynamic for c in fd.components),
            field_keys=tuple(fd.key for fd in dynamic for _ in fd.components),
            coords=coords,
            params=_parameters(f, n),
            boundary=_boundaries(f, path, dims),
            static_names=tuple(c for fd in static for c in fd.components),
            static_keys=tuple(fd.key for fd in static for _ in fd.components),
            layout_data=tuple(fields),
        )

    def _read(self, dset: h5py.Dataset, field: _Field, i: int, time: slice, sx: int) -> np.ndarray:
        """`(T' or 1, *X' or 1, n_components)` for trajectory `i`."""
        index: tuple = (i,) if field.sample_varying else ()
        index += (time,) if field.time_varying else ()
        index += strided(sum(field.dim_varying), sx)
        values = np.asarray(dset[index], dtype=np.float32)
        if not field.time_varying:
            values = values[None]
        shape = [values.shape[0]]
        varying_sizes = iter(values.shape[1:])
        shape += [next(varying_sizes) if varies else 1 for varies in field.dim_varying]
        return values.reshape(*shape, len(field.components))

    def _stack(self, f: h5py.File, info: FileInfo, static: bool, i: int, time: slice, sx: int):
        """The dynamic (or static) fields of trajectory `i`, broadcast and concatenated."""
        spatial = tuple(len(range(0, size, sx)) for size in info.spatial)
        parts = []
        for field in info.layout_data:
            if field.time_varying == static:
                continue
            part = self._read(f[field.key], field, i, time, sx)
            parts.append(np.broadcast_to(part, (part.shape[0], *spatial, part.shape[-1])))
        return np.concatenate(parts, axis=-1)

    def read_fields(self, f: h5py.File, info: FileInfo, i: int, time: slice, sx: int) -> np.ndarray:
        return self._stack(f, info, False, i, time, sx)

    def read_static(self, f: h5py.File, info: FileInfo, i: int, sx: int) -> np.ndarray | None:
        if not info.static_keys:
            return None
        return self._stack(f, info, True, i, slice(None), sx)[0]
