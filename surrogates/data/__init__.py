"""Benchmark data: every HDF5 layout behind one lazy `TrajectoryDataset`."""

from surrogates.data.dataset import LazyArray as LazyArray
from surrogates.data.dataset import Trajectory as Trajectory
from surrogates.data.dataset import TrajectoryDataset as TrajectoryDataset
from surrogates.data.dataset import open_dataset as open_dataset
from surrogates.errors import DatasetError as DatasetError
