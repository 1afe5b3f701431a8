"""Data parallelism with `jax.sharding`: one `data` mesh axis over every device.

Batches are split over the `data` axis; parameters, optimizer state and the training fields
are replicated. Arrays are built with `make_array_from_callback`, so the same code runs on one
CPU, on several forced host devices in tests, on a GPU node, and on several hosts (each host
builds the shards of its own devices from the same global numpy array).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from surrogates.errors import TrainingError


def data_mesh() -> Mesh:
    """A 1-D mesh named `data` over all devices (of all hosts)."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Split the leading (batch) axis over `data`."""
    return NamedSharding(mesh, PartitionSpec("data"))


def put(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array with `sharding` from a host array every process holds in full."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def put_tree(tree, sharding: NamedSharding):
    """Every array of a pytree placed with `sharding` (used to replicate model state)."""
    return jax.tree.map(lambda leaf: jax.device_put(leaf, sharding), tree)


def check_divisible(batch_size: int, mesh: Mesh, what: str) -> None:
    if batch_size % mesh.size:
        raise TrainingError(
            f"{what}: {batch_size} does not split over {mesh.size} devices; "
            f"use a multiple of {mesh.size}"
        )


def initialise_distributed(enabled: bool) -> None:
    """Join a multi-host run (SLURM, Open MPI and TPU pods are detected by JAX itself)."""
    if enabled:
        jax.distributed.initialize()
