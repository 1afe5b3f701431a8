"""Train/validation/test splits by trajectory, channel statistics and window sampling.

A window is `history + rollout_steps` consecutive frames of one trajectory: the first
`history` frames are the model's input, the rest its targets. Each epoch draws, for every
training trajectory, `windows_per_trajectory` random start frames, shuffles all windows and
cuts them into full batches (the last batch is topped up from the start of the shuffled list,
so every step has the same shape and compiles once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surrogates.data.dataset import TrajectoryDataset
from surrogates.errors import DatasetError


@dataclass(frozen=True)
class Splits:
    """Trajectory indices of each split, sorted: (n_train,), (n_val,), (n_test,)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _counts(n: int, val: float, test: float) -> tuple[int, int]:
    """Test and validation sizes: at least one trajectory for each positive fraction."""
    n_test = max(1, round(test * n)) if test > 0 else 0
    n_val = max(1, round(val * n)) if val > 0 else 0
    return n_test, n_val


def split_trajectories(
    ds: TrajectoryDataset, *, method: str, val: float, test: float, seed: int
) -> Splits:
    """Deterministic split of `ds`'s trajectories.

    `random`: a permutation seeded by `seed`; the first `test` fraction is the test set, the
    next `val` fraction validation. `pdebench`: per file, PDEBench's `FNODatasetSingle`
    convention, the first trajectories of each file are the test set (then validation), in
    file order, so a sweep is split evenly across its parameter values.
    """
    n = len(ds)
    if method == "random":
        order = np.random.default_rng(seed).permutation(n)
        groups = [order]
    else:
        files = np.array([str(ds.source(i)[0]) for i in range(n)])
        groups = [np.flatnonzero(files == name) for name in dict.fromkeys(files)]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for group in groups:
        n_test, n_val = _counts(len(group), val, test)
        parts["test"].append(group[:n_test])
        parts["val"].append(group[n_test : n_test + n_val])
        parts["train"].append(group[n_test + n_val :])
    splits = {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
    if len(splits["train"]) == 0:
        raise DatasetError(
            f"data.split: {n} trajectories leave none to train on after val {val} and test "
            f"{test} (more data.samples, or smaller data.split.val and data.split.test)"
        )
    return Splits(**splits)


def channel_statistics(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over everything but the channel axis.

    fields: (N, ..., C), e.g. trajectories (N, T, *X, C) or static inputs (N, *X, Cs) (an
    array or a lazy one, read one sample at a time).
    Returns two (C,) float32 arrays; a constant channel gets std 1 so it normalises to 0.
    """
    total = total_sq = 0.0
    count = 0
    for i in range(fields.shape[0]):
        values = np.asarray(fields[i], np.float64)
        flat = values.reshape(-1, values.shape[-1])
        total = total + flat.sum(axis=0)
        total_sq = total_sq + np.square(flat).sum(axis=0)
        count += flat.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


@dataclass(frozen=True)
class WindowSampler:
    """Batches of `(trajectory, start)` windows for each epoch, reproducible from the seed."""

    trajectories: int
    frames: int
    window: int
    windows_per_trajectory: int
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        if self.window > self.frames:
            raise ValueError(
                f"a window of {self.window} frames does not fit trajectories of {self.frames}"
            )

    @property
    def steps_per_epoch(self) -> int:
        windows = self.trajectories * self.windows_per_trajectory
        return -(-windows // self.batch_size)

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Trajectory and start indices, each (steps_per_epoch, batch_size) int32."""
        rng = np.random.default_rng([self.seed, epoch])
        trajectory = np.repeat(np.arange(self.trajectories), self.windows_per_trajectory)
        start = rng.integers(0, self.frames - self.window + 1, size=trajectory.shape)
        order = rng.permutation(len(trajectory))
        total = self.steps_per_epoch * self.batch_size
        order = np.resize(order, total)
        shape = (self.steps_per_epoch, self.batch_size)
        return (
            trajectory[order].reshape(shape).astype(np.int32),
            start[order].reshape(shape).astype(np.int32),
        )
