"""An experiment's data: the opened files, their split, and the training split's statistics.

Everything here is in physical units; normalisation statistics (of the fields, the static
inputs and the PDE parameters) come from the training split only, so nothing of the test
trajectories leaks into training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogates.config import DataSpec
from surrogates.data import TrajectoryDataset, open_dataset
from surrogates.data.windows import Splits, channel_statistics, split_trajectories
from surrogates.errors import DatasetError, TrainingError
from surrogates.training.files import resolve_files


@dataclass
class ExperimentData:
    """Everything the engine needs to know about the data, in physical units.

    `param_names` are the PDE parameters the model takes (`data.params`), with the training
    split's mean and std.
    """

    dataset: TrajectoryDataset
    splits: Splits
    mean: np.ndarray
    std: np.ndarray
    param_names: tuple[str, ...]
    param_mean: np.ndarray | None = None
    param_std: np.ndarray | None = None
    # Static input channels the model sees (none unless the data has them and
    # `data.static` is on), with their training-split statistics.
    static_names: tuple[str, ...] = ()
    static_mean: np.ndarray | None = None
    static_std: np.ndarray | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        return self.dataset.field_names

    @property
    def frames(self) -> int:
        return self.dataset.fields.shape[1]

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.dataset.fields.shape[2:-1])

    def param_table(self, indices: np.ndarray, dtype=np.float32) -> np.ndarray | None:
        """PDE parameters of trajectories `indices`: (n, P) `dtype`, or None if there are none."""
        if not self.param_names:
            return None
        columns = [self.dataset.params[name][indices] for name in self.param_names]
        return np.stack(columns, axis=1).astype(dtype)

    def param_values(self, indices: np.ndarray) -> np.ndarray:
        """The distinct PDE-parameter values of trajectories `indices`: (K, P) float64,
        sorted; (0, 0) without parameters."""
        if not self.param_names:
            return np.zeros((0, 0))
        columns = [self.dataset.params[name][indices] for name in self.param_names]
        return np.unique(np.stack(columns, axis=1), axis=0)

    def static_rows(self, indices: np.ndarray) -> np.ndarray | None:
        """Static inputs of trajectories `indices`: (n, *X, Cs) float32, or None."""
        if not self.static_names:
            return None
        return np.asarray(self.dataset.static[indices], np.float32)

    def nbytes(self, indices: np.ndarray) -> int:
        per_trajectory = math.prod(self.dataset.fields.shape[1:])
        if self.static_names:
            per_trajectory += math.prod(self.dataset.static.shape[1:])
        return len(indices) * per_trajectory * 4


def load_data(
    spec: DataSpec,
    paths: list[Path] | None = None,
    stride_x: int | None = None,
    statistics: bool = True,
) -> ExperimentData:
    """Open, split and describe the data; statistics come from the training split only.

    `statistics=False` skips reading the training split for them (mean 0, std 1): for a
    model whose checkpoint brings its own.
    """
    ds = open_dataset(
        resolve_files(spec) if paths is None else paths,
        stride_t=spec.stride_t,
        stride_x=spec.stride_x if stride_x is None else stride_x,
        samples=spec.samples,
    )
    splits = split_trajectories(
        ds,
        method=spec.split.method,
        val=spec.split.val,
        test=spec.split.test,
        seed=spec.split.seed,
    )
    static_names = ds.static_names if spec.static and ds.static is not None else ()
    if spec.history == 0 and not static_names:
        raise TrainingError(
            "data.history: 0 history frames leave the model no input; that needs static "
            "inputs (data.static: true and data with static fields, e.g. Darcy's coefficient)"
        )
    normalise = spec.normalize and statistics
    # Lazy views: the statistics stream one trajectory at a time.
    mean, std = _statistics(ds[splits.train].fields, len(ds.field_names), normalise)
    static_mean = static_std = None
    if static_names:
        static_mean, static_std = _statistics(ds[splits.train].static, len(static_names), normalise)
    names = parameter_names(ds, spec.params)
    data = ExperimentData(
        ds,
        splits,
        mean,
        std,
        names,
        static_names=static_names,
        static_mean=static_mean,
        static_std=static_std,
    )
    if names:
        table = data.param_table(splits.train)
        data.param_mean, data.param_std = _statistics(table, len(names), normalise)
    return data


def parameter_names(ds: TrajectoryDataset, chosen: list[str] | None) -> tuple[str, ...]:
    """The PDE parameters fed to the model: `chosen` (`data.params`), each of which the files
    must have, else those that vary across the files (the ones a model could condition on)."""
    if chosen is None:
        return tuple(name for name, values in ds.params.items() if np.ptp(values) > 0)
    for name in chosen:
        if name not in ds.params:
            found = ", ".join(sorted(ds.params)) or "none"
            raise DatasetError(
                f"{ds.files[0]}: no PDE parameter attribute '{name}' (data.params asks for it; "
                f"the file's parameters: {found})"
            )
    return tuple(chosen)


def _statistics(fields, channels: int, normalise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of `fields` (N, ..., C), or 0 and 1 without normalisation."""
    if normalise:
        return channel_statistics(fields)
    return np.zeros(channels, np.float32), np.ones(channels, np.float32)


def read_split(data: ExperimentData, indices: np.ndarray) -> np.ndarray:
    """Trajectories `indices` as one host array (n, T, *X, C)."""
    return np.asarray(data.dataset.fields[indices])
