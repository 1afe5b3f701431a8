"""Data parallelism with `jax.sharding`: one `data` mesh axis over every device.

Batches are split over the `data` axis; parameters, optimizer state and the training fields
are replicated. Arrays are built with `make_array_from_callback`, so the same code runs on one
CPU, on several forced host devices in tests, on a GPU node, and on several hosts (each host
builds the shards of its own devices from the same global numpy array). With several
processes, process 0 alone writes the run's files (`is_writer`), outputs come back to every
process whole (`to_host`), and names chosen by one process reach the others (`agree`).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
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


def local_rows(sharding: NamedSharding, size: int) -> np.ndarray:
    """The rows of a `size`-row array split by `sharding` that this process's devices hold,
    in order (all of them with one process)."""
    indices = sharding.addressable_devices_indices_map((size,)).values()
    return np.asarray(sorted({r for index in indices for r in range(*index[0].indices(size))}))


def put_local(rows: np.ndarray, sharding: NamedSharding, size: int) -> jax.Array:
    """A global array of `size` rows split by `sharding` from this process's own `rows` (those
    `local_rows` names): each process supplies only what its devices hold."""
    if jax.process_count() == 1:
        return put(rows, sharding)
    return jax.make_array_from_process_local_data(sharding, rows, (size, *rows.shape[1:]))


def put_tree(tree, sharding: NamedSharding):
    """Every array of a pytree placed with `sharding` (used to replicate model state). With
    several processes, an array of this process alone is placed from its host copy: placed
    directly, its shards are not one per device, and orbax cannot save it."""

    def place(leaf):
        if jax.process_count() > 1 and getattr(leaf, "is_fully_addressable", True):
            return put(np.asarray(leaf), sharding)
        return jax.device_put(leaf, sharding)

    return jax.tree.map(place, tree)


def check_divisible(batch_size: int, mesh: Mesh, what: str) -> None:
    if batch_size % mesh.size:
        raise TrainingError(
            f"{what}: {batch_size} does not split over {mesh.size} devices; "
            f"use a multiple of {mesh.size}"
        )


def initialise_distributed(enabled: bool) -> None:
    """Join a multi-host run (SLURM, Open MPI and TPU pods are detected by JAX itself), once:
    a process the local launcher started has joined already."""
    if enabled and not jax.distributed.is_initialized():
        jax.distributed.initialize()


def is_writer() -> bool:
    """Whether this process writes the run's files: the only one, or process 0 of several."""
    return jax.process_index() == 0


def to_host(array: jax.Array) -> np.ndarray:
    """A (possibly sharded) array whole on the host of every process; with several
    processes, a collective every process must call."""
    if array.is_fully_addressable:
        return np.asarray(array)
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


NAME_BYTES = 4096


def agree(text: str) -> str:
    """Process 0's `text` in every process (a collective with several processes; `text` is
    ignored elsewhere): a folder name one process chose, say."""
    if jax.process_count() == 1:
        return text
    encoded = text.encode()
    if len(encoded) > NAME_BYTES:
        raise TrainingError(f"{text[:80]}...: longer than {NAME_BYTES} bytes")
    buffer = np.zeros(NAME_BYTES + 4, np.uint8)
    buffer[:4] = np.frombuffer(np.uint32(len(encoded)).tobytes(), np.uint8)
    buffer[4 : 4 + len(encoded)] = np.frombuffer(encoded, np.uint8)
    shared = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    size = int(np.frombuffer(shared[:4].tobytes(), np.uint32)[0])
    return shared[4 : 4 + size].tobytes().decode()
