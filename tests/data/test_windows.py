"""Splits by trajectory, training statistics and window sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from layout_files import write_tensor

from surrogates.data import DatasetError, open_dataset
from surrogates.data.windows import WindowSampler, channel_statistics, split_trajectories


@pytest.fixture
def sweep(tmp_path: Path):
    paths = [tmp_path / "a.hdf5", tmp_path / "b.hdf5"]
    for k, path in enumerate(paths):
        write_tensor(path, n=10, t=6, x=4, seed=k)
    return open_dataset(paths)


def test_random_split_is_seeded_disjoint_and_complete(sweep):
    splits = split_trajectories(sweep, method="random", val=0.1, test=0.2, seed=3)
    again = split_trajectories(sweep, method="random", val=0.1, test=0.2, seed=3)
    other = split_trajectories(sweep, method="random", val=0.1, test=0.2, seed=4)
    assert (len(splits.test), len(splits.val), len(splits.train)) == (4, 2, 14)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(vars(splits).values(), vars(again).values(), strict=True)
    )
    assert not np.array_equal(splits.test, other.test)
    together = np.concatenate([splits.train, splits.val, splits.test])
    assert sorted(together) == list(range(20))


def test_pdebench_split_takes_the_first_trajectories_of_each_file(sweep):
    splits = split_trajectories(sweep, method="pdebench", val=0.1, test=0.2, seed=0)
    np.testing.assert_array_equal(splits.test, [0, 1, 10, 11])
    np.testing.assert_array_equal(splits.val, [2, 12])
    np.testing.assert_array_equal(splits.train, [*range(3, 10), *range(13, 20)])


def test_no_trajectory_left_to_train_is_an_error(tmp_path: Path):
    write_tensor(tmp_path / "tiny.hdf5", n=2, t=4, x=4)
    with pytest.raises(DatasetError, match=r"data.split: 2 trajectories leave none to train on"):
        split_trajectories(
            open_dataset(tmp_path / "tiny.hdf5"), method="random", val=0.1, test=0.1, seed=0
        )


def test_channel_statistics_equal_numpy():
    rng = np.random.default_rng(0)
    fields = rng.normal(3.0, 2.0, size=(5, 4, 6, 7, 2)).astype(np.float32)
    fields[..., 1] = 4.0  # a constant channel keeps std 1
    mean, std = channel_statistics(fields)
    np.testing.assert_allclose(mean, fields.reshape(-1, 2).mean(0), rtol=1e-6)
    np.testing.assert_allclose(std[0], fields[..., 0].std(), rtol=1e-5)
    assert std[1] == 1.0


def test_sampler_draws_every_trajectory_in_full_batches():
    sampler = WindowSampler(
        trajectories=5, frames=10, window=4, windows_per_trajectory=3, batch_size=4, seed=1
    )
    assert sampler.steps_per_epoch == 4  # 15 windows -> 4 batches of 4, topped up
    rows, starts = sampler.epoch(0)
    assert rows.shape == starts.shape == (4, 4)
    # The first 15 windows are each trajectory 3 times; the 16th repeats the first.
    flat_rows, flat_starts = rows.ravel(), starts.ravel()
    assert np.bincount(flat_rows[:15], minlength=5).tolist() == [3] * 5
    assert (flat_rows[15], flat_starts[15]) == (flat_rows[0], flat_starts[0])
    assert flat_starts.min() >= 0 and flat_starts.max() <= 10 - 4
    again, _ = sampler.epoch(0)
    later, _ = sampler.epoch(1)
    assert np.array_equal(rows, again) and not np.array_equal(rows, later)


def test_window_longer_than_trajectories_is_an_error():
    with pytest.raises(ValueError, match="a window of 11 frames does not fit trajectories of 10"):
        WindowSampler(
            trajectories=2, frames=10, window=11, windows_per_trajectory=1, batch_size=2, seed=0
        )
