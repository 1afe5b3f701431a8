"""The batches the operator task's compiled step consumes.

When the training split fits `data.memory_gb`, it lives on the devices (replicated) and the
step gathers its windows there from two small index arrays, so it never waits on the host.
Otherwise windows are read lazily from the HDF5 files by a background thread, two batches
ahead, and handed over already sharded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from surrogates.data.windows import WindowSampler
from surrogates.training import sharding
from surrogates.training.experiment_data import ExperimentData
from surrogates.training.prefetch import prefetched


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
            yield from prefetched(self._read_batches(trajectory, start), depth=2)

    def _read_batches(self, trajectory: np.ndarray, start: np.ndarray) -> Iterator[tuple]:
        """The batches of the lazy path. With several processes each reads only the windows
        of its own rows of the batch (those its devices hold)."""
        length, train, size = self.sampler.window, self.data.splits.train, self.sampler.batch_size
        zeros = sharding.put(np.zeros(size, np.int32), self.batched)
        rows = sharding.put(np.arange(size, dtype=np.int32), self.batched)
        mine = sharding.local_rows(self.batched, size)
        for batch_rows, batch_starts in zip(trajectory[:, mine], start[:, mine], strict=True):
            windows = np.stack(
                [
                    self.data.dataset.read_window(int(train[r]), int(s), length)
                    for r, s in zip(batch_rows, batch_starts, strict=True)
                ]
            )
            yield (
                sharding.put_local(windows, self.batched, size),
                self._local(self.data.param_table(train[batch_rows]), size),
                self._local(self.data.static_rows(train[batch_rows]), size),
                rows,
                zeros,
            )

    def _local(self, values: np.ndarray | None, size: int) -> object:
        return None if values is None else sharding.put_local(values, self.batched, size)
