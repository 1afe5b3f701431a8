"""Orbax checkpoints of a run: `latest/` every N epochs and `best/` by validation error.

What is saved is the training state as a flat list of arrays (model parameters, other model
variables, optimizer state) plus JSON metadata (epoch, validation error, the best so far).
Restoring needs a state of the same structure (a freshly built model and optimizer) and puts
each array back with that state's sharding. Orbax writes each checkpoint to a temporary folder
and renames it when complete, so a checkpoint survives the process being killed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from surrogates.errors import TrainingError


def _manager(folder: Path, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(folder.absolute(), options=options)


def _flat(state: Any) -> dict[str, jax.Array]:
    return {f"{i:05d}": leaf for i, leaf in enumerate(jax.tree.leaves(state))}


class Checkpoints:
    """The checkpoints of one run folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._latest = _manager(folder / "latest", keep=2)
        self._best = _manager(folder / "best", keep=1)

    def save(self, state: Any, meta: dict[str, Any], *, best: bool) -> None:
        """Save `state` after epoch `meta["epoch"]` as the latest and, if `best`, the best."""
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(_flat(state)), meta=ocp.args.JsonSave(meta)
        )
        epoch = int(meta["epoch"])
        self._latest.save(epoch, args=args, force=True)
        if best:
            self._best.save(epoch, args=args, force=True)

    def latest_epoch(self, *, best: bool = False) -> int | None:
        """The epoch of the latest (or the best) checkpoint, None if there is none."""
        return (self._best if best else self._latest).latest_step()

    def restore(self, like: Any, *, best: bool = False) -> tuple[Any, dict[str, Any]]:
        """The saved state, in the structure and shardings of `like`, and its metadata."""
        manager = self._best if best else self._latest
        epoch = manager.latest_step()
        if epoch is None:
            raise FileNotFoundError(f"{manager.directory}: no checkpoint")
        leaves, treedef = jax.tree.flatten(like)
        abstract = {
            f"{i:05d}": jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
            for i, leaf in enumerate(leaves)
        }
        try:
            restored = manager.restore(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except ValueError as error:
            if "not compatible with the stored shape" not in str(error):
                raise
            detail = str(error).split(". Truncating")[0]
            raise TrainingError(
                f"{manager.directory}: the checkpoint of epoch {epoch} does not fit the model "
                f"({detail}); it was written by another model or by an older version of the "
                "model code (dense spectral weights, for one, are now stored modes first)"
            ) from None
        flat = restored["state"]
        return jax.tree.unflatten(treedef, [flat[key] for key in sorted(flat)]), restored["meta"]

    def close(self) -> None:
        self._latest.close()
        self._best.close()
