"""Writers of small files in every layout, with the exact key names and shapes of the reference.

Each writer returns the arrays it stored, so tests compare what `open_dataset` reads with an
independent transposition of what was written.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_tensor(path: Path, n=5, t=7, x=16, seed=0, **attrs) -> np.ndarray:
    """PDEBench single-file layout: `tensor (N, T, X)`, T+1 times, cell-centre x."""
    tensor = np.random.default_rng(seed).normal(size=(n, t, x)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["tensor"] = tensor
        f["x-coordinate"] = (np.arange(x) + 0.5) / x
        f["t-coordinate"] = np.arange(t + 1) * 0.01
        f.attrs.update(attrs)
    return tensor


def write_cfd(path: Path, n=3, t=4, spatial=(8,), seed=0, **attrs) -> dict[str, np.ndarray]:
    """PDEBench CFD: `density`, `pressure`, `Vx`[, `Vy`, `Vz`] each `(N, T, *X)`."""
    rng = np.random.default_rng(seed)
    names = ("density", "pressure", "Vx", "Vy", "Vz")[: 2 + len(spatial)]
    fields = {k: rng.normal(size=(n, t, *spatial)).astype(np.float32) for k in names}
    with h5py.File(path, "w") as f:
        for key in reversed(names):  # on-disk order must not matter
            f[key] = fields[key]
        for axis, size in zip("xyz", spatial, strict=False):
            f[f"{axis}-coordinate"] = (np.arange(size) + 0.5) / size
        f["t-coordinate"] = np.arange(t + 1) * 0.05
        f.attrs.update(attrs)
    return fields


def write_darcy(path: Path, n=3, x=8, beta=1.0) -> tuple[np.ndarray, np.ndarray]:
    """PDEBench Darcy: `nu (N, X, Y)` coefficient, `tensor (N, 1, X, Y)` solution."""
    rng = np.random.default_rng(1)
    nu = np.where(rng.random((n, x, x)) > 0.5, 1.0, 0.1).astype(np.float32)
    tensor = rng.normal(size=(n, 1, x, x)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["nu"] = nu
        f["tensor"] = tensor
        f["x-coordinate"] = (np.arange(x) + 0.5) / x
        f["y-coordinate"] = (np.arange(x) + 0.5) / x
        f.attrs["beta"] = beta
    return nu, tensor


def write_groups(path: Path, n=3, t=5, spatial=(6, 6), c=2) -> list[np.ndarray]:
    """PDEBench per-sample groups: `0000/data (T, *X, C)`, `0000/grid/x|y|t`."""
    rng = np.random.default_rng(2)
    data = [rng.normal(size=(t, *spatial, c)).astype(np.float32) for _ in range(n)]
    with h5py.File(path, "w") as f:
        for k in reversed(range(n)):
            group = f.create_group(str(k).zfill(4))
            group["data"] = data[k]
            for axis, size in zip("xyz", spatial, strict=False):
                group[f"grid/{axis}"] = np.linspace(-1, 1, size)
            group["grid/t"] = np.linspace(0, 5, t)
            group.attrs["config"] = "sim: test"
    return data


def write_well(path: Path, b=3, t=4, nx=6, ny=5) -> dict[str, np.ndarray]:
    """The Well: t0/t1 fields with their varying flags, a constant field, scalars, BCs."""
    rng = np.random.default_rng(3)
    stored = {
        "pressure": rng.normal(size=(b, t, nx, ny)),
        "velocity": rng.normal(size=(b, t, nx, ny, 2)),
        "height": rng.normal(size=(b, t, nx)),  # does not vary along y
        "mask": rng.normal(size=(nx, ny)),  # same for every sample and time: static
        "Re": np.array([10.0, 20.0, 30.0])[:b],
    }
    with h5py.File(path, "w") as f:
        f.attrs.update(
            simulation_parameters=["alpha"],
            alpha=0.5,
            dataset_name="test",
            grid_type="cartesian",
            n_spatial_dims=2,
            n_trajectories=b,
        )
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"] = np.arange(t) * 0.1
        dims["x"] = np.linspace(0, 1, nx)
        dims["y"] = np.linspace(0, 2, ny)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["pressure", "height", "mask"]
        flags = {
            "pressure": ([True, True], True, True),
            "height": ([True, False], True, True),
            "mask": ([True, True], False, False),
        }
        for name, (dim_varying, sample_varying, time_varying) in flags.items():
            t0[name] = stored[name].astype(np.float32)
            t0[name].attrs.update(
                dim_varying=dim_varying, sample_varying=sample_varying, time_varying=time_varying
            )
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        t1["velocity"] = stored["velocity"].astype(np.float32)
        t1["velocity"].attrs.update(
            dim_varying=[True, True], sample_varying=True, time_varying=True
        )
        f.create_group("t2_fields").attrs["field_names"] = []
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["Re"]
        scalars["Re"] = stored["Re"]
        scalars["Re"].attrs.update(sample_varying=True, time_varying=False)
        for name, dim, kind in (("x_boundary", "x", "PERIODIC"), ("y_boundary", "y", "WALL")):
            bc = f.create_group(f"boundary_conditions/{name}")
            bc.attrs.update(associated_dims=[dim], bc_type=kind, sample_varying=False)
    return stored


def write_pdearena(
    path: Path, mode="train", n=3, nt=5, nx=8, ny=8, seed=4, buoyancy=None
) -> dict[str, np.ndarray]:
    """PDEArena Navier–Stokes 2D: group `mode` with `u`, `vx`, `vy` `(N, T, X, Y)` float64,
    per-trajectory `t (N, T)`, `x (N, X)`, `y (N, Y)`, `dt`, `dx`, `dy`, `buo_y (N,)`."""
    rng = np.random.default_rng(seed)
    stored = {key: rng.normal(size=(n, nt, nx, ny)) for key in ("u", "vx", "vy")}
    stored["t"] = np.linspace(18.0, 102.0, nt)
    stored["x"] = np.linspace(0.0, 32.0, nx)
    stored["y"] = np.linspace(0.0, 32.0, ny)
    stored["buo_y"] = rng.uniform(0.2, 0.5, n) if buoyancy is None else np.full(n, buoyancy)
    with h5py.File(path, "w") as f:
        group = f.create_group(mode)
        for key in ("vy", "u", "vx"):  # on-disk order must not matter
            group[key] = stored[key]
        group["t"] = np.tile(stored["t"], (n, 1))
        group["dt"] = np.full(n, stored["t"][1] - stored["t"][0])
        group["x"] = np.tile(stored["x"], (n, 1))
        group["dx"] = np.full(n, stored["x"][1] - stored["x"][0])
        group["y"] = np.tile(stored["y"], (n, 1))
        group["dy"] = np.full(n, stored["y"][1] - stored["y"][0])
        group["buo_y"] = stored["buo_y"]
    return stored
