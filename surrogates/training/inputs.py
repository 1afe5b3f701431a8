"""An experiment's data: files (generated from a recipe when missing), splits, statistics and
the batches the compiled step consumes.

When the training split fits `data.memory_gb`, it lives on the devices (replicated) and the
step gathers its windows there from two small index arrays, so it never waits on the host.
Otherwise windows are read lazily from the HDF5 files by a background thread, two batches
ahead, and handed over already sharded.
"""

from __future__ import annotations

import glob
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogates.config import DataSpec
from surrogates.data import TrajectoryDataset, open_dataset
from surrogates.data.windows import Splits, WindowSampler, channel_statistics, split_trajectories
from surrogates.errors import TrainingError
from surrogates.training import sharding


def resolve_files(spec: DataSpec) -> list[Path]:
    """The data files: each entry a path or a glob pattern.

    With `spec.recipe`, the files are the recipe's: missing ones are generated first (just
    those, when named exactly), and an existing one made with other settings (say, fewer
    samples) is an error rather than silently used.
    """
    if spec.recipe is not None:
        from surrogates.data.generate.generator import run_recipe

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


@dataclass
class ExperimentData:
    """Everything the engine needs to know about the data, in physical units."""

    dataset: TrajectoryDataset
    splits: Splits
    mean: np.ndarray
    std: np.ndarray
    param_names: tuple[str, ...]
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

    def param_table(self, indices: np.ndarray) -> np.ndarray | None:
        """PDE parameters of trajectories `indices`: (n, P) float32, or None if there are none."""
        if not self.param_names:
            return None
        columns = [self.dataset.params[name][indices] for name in self.param_names]
        return np.stack(columns, axis=1).astype(np.float32)

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
    # Parameters that vary across the data are the ones a model could condition on.
    varying = tuple(name for name, values in ds.params.items() if np.ptp(values) > 0)
    return ExperimentData(ds, splits, mean, std, varying, static_names, static_mean, static_std)


def _statistics(fields, channels: int, normalise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of `fields` (N, ..., C), or 0 and 1 without normalisation."""
    if normalise:
        return channel_statistics(fields)
    return np.zeros(channels, np.float32), np.ones(channels, np.float32)


class TrainBatches:
    """The inputs of the compiled step for each batch of an epoch.

    Yields `(fields, param_table, static, trajectory, start)`: on the device path the whole
    training split and per-batch indices into it; on the lazy path the batch's own windows
    with indices `0..B-1` and start 0, so the same step gathers them unchanged.
    """

    def __init__(self, data: ExperimentData, sampler: WindowSampler, mesh, memory_gb: float):
        self.data, self.sampler = data, sampler
        self.replicated = sharding.replicated(mesh)
        self.batched = sharding.batch_sharded(mesh)
        indices = data.splits.train
        self.on_device = data.nbytes(indices) <= memory_gb * 2**30
        if self.on_device:
            self.fields = sharding.put(data.dataset.fields[indices], self.replicated)
            self.table = self._put(data.param_table(indices), self.replicated)
            self.static = self._put(data.static_rows(indices), self.replicated)

    @staticmethod
    def _put(values: np.ndarray | None, where) -> object:
        return None if values is None else sharding.put(values, where)

    def epoch(self, epoch: int) -> Iterator[tuple]:
        trajectory, start = self.sampler.epoch(epoch)
        if self.on_device:
            for rows, starts in zip(trajectory, start, strict=True):
                yield (
                    self.fields,
                    self.table,
                    self.static,
                    sharding.put(rows, self.batched),
                    sharding.put(starts, self.batched),
                )
        else:
            yield from _prefetched(self._read_batches(trajectory, start), depth=2)

    def _read_batches(self, trajectory: np.ndarray, start: np.ndarray) -> Iterator[tuple]:
        length, train = self.sampler.window, self.data.splits.train
        zeros = sharding.put(np.zeros(self.sampler.batch_size, np.int32), self.batched)
        rows = sharding.put(np.arange(self.sampler.batch_size, dtype=np.int32), self.batched)
        for batch_rows, batch_starts in zip(trajectory, start, strict=True):
            windows = np.stack(
                [
                    self.data.dataset.read_window(int(train[r]), int(s), length)
                    for r, s in zip(batch_rows, batch_starts, strict=True)
                ]
            )
            yield (
                sharding.put(windows, self.batched),
                self._put(self.data.param_table(train[batch_rows]), self.batched),
                self._put(self.data.static_rows(train[batch_rows]), self.batched),
                rows,
                zeros,
            )


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """`items` produced by a background thread, at most `depth` ahead of the consumer."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)
        buffer.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := buffer.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def read_split(data: ExperimentData, indices: np.ndarray) -> np.ndarray:
    """Trajectories `indices` as one host array (n, T, *X, C)."""
    return np.asarray(data.dataset.fields[indices])
