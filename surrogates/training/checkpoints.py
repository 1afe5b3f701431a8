"""Orbax checkpoints of a run: `latest/` every N epochs and `best/` by validation score.

A checkpoint holds three items: `model` (the model's parameters and other variables as a flat
list of arrays), `optimizer` (the optimizer state, flat likewise) and `meta` (JSON: epoch,
validation score, the best so far, the optimizer phase, and what the task records). Keeping the
optimizer apart lets evaluation restore the model alone, whatever optimizer phase the run was
in. Restoring needs a state of the same structure (a freshly built model, and for training
the optimizer of the recorded phase) and puts each array back with that state's sharding.
Orbax writes each checkpoint to a temporary folder and renames it when complete, so a
checkpoint survives the process being killed.
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


def _abstract(like: Any) -> dict[str, jax.ShapeDtypeStruct]:
    return {
        f"{i:05d}": jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
        for i, leaf in enumerate(jax.tree.leaves(like))
    }


def _unflat(like: Any, flat: dict[str, jax.Array]) -> Any:
    return jax.tree.unflatten(jax.tree.structure(like), [flat[key] for key in sorted(flat)])


class Checkpoints:
    """The checkpoints of one run folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._latest = _manager(folder / "latest", keep=2)
        self._best = _manager(folder / "best", keep=1)

    def save(self, model: Any, optimizer: Any, meta: dict[str, Any], *, best: bool) -> None:
        """Save after epoch `meta["epoch"]` as the latest and, if `best`, the best."""
        args = ocp.args.Composite(
            model=ocp.args.StandardSave(_flat(model)),
            optimizer=ocp.args.StandardSave(_flat(optimizer)),
            meta=ocp.args.JsonSave(meta),
        )
        epoch = int(meta["epoch"])
        self._latest.save(epoch, args=args, force=True)
        if best:
            self._best.save(epoch, args=args, force=True)

    def latest_epoch(self, *, best: bool = False) -> int | None:
        """The epoch of the latest (or the best) checkpoint, None if there is none."""
        return self._manager(best).latest_step()

    def meta(self, *, best: bool = False) -> dict[str, Any]:
        """The metadata of the latest (or the best) checkpoint."""
        manager, epoch = self._newest(best)
        restored = manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored["meta"]

    def restore(
        self, model: Any, optimizer: Any = None, *, best: bool = False
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The saved model state (and optimizer state if `optimizer` is given; else None), in
        the structure and shardings of `model` and `optimizer`, and the metadata."""
        manager, epoch = self._newest(best)
        items = {
            "model": ocp.args.StandardRestore(_abstract(model)),
            "meta": ocp.args.JsonRestore(),
        }
        if optimizer is not None:
            items["optimizer"] = ocp.args.StandardRestore(_abstract(optimizer))
        try:
            restored = manager.restore(epoch, args=ocp.args.Composite(**items))
        except ValueError as error:
            if "not compatible with the stored shape" not in str(error):
                raise
            detail = str(error).split(". Truncating")[0]
            raise TrainingError(
                f"{manager.directory}: the checkpoint of epoch {epoch} does not fit the model "
                f"({detail}); it was written by another model or by an older version of the "
                "model code (dense spectral weights, for one, are now stored modes first)"
            ) from None
        restored_optimizer = None
        if optimizer is not None:
            restored_optimizer = _unflat(optimizer, restored["optimizer"])
        return _unflat(model, restored["model"]), restored_optimizer, restored["meta"]

    def close(self) -> None:
        self._latest.close()
        self._best.close()

    def _manager(self, best: bool) -> ocp.CheckpointManager:
        return self._best if best else self._latest

    def _newest(self, best: bool) -> tuple[ocp.CheckpointManager, int]:
        manager = self._manager(best)
        epoch = manager.latest_step()
        if epoch is None:
            raise FileNotFoundError(f"{manager.directory}: no checkpoint")
        return manager, epoch
