"""Orbax checkpoints of a run: `latest/` every N epochs and `best/` by validation score.

A checkpoint holds three items: `model` (the model's parameters and other variables as a flat
list of arrays), `optimizer` (the optimizer state, flat likewise) and `meta` (JSON: epoch,
validation score, the best so far, the optimizer phase, and what the task records). Keeping the
optimizer apart lets evaluation restore the model alone, whatever optimizer phase the run was
in. Restoring needs a state of the same structure (a freshly built model, and for training
the optimizer of the recorded phase) and puts each array back with that state's sharding.
Orbax writes each checkpoint to a temporary folder and renames it when complete, so a
checkpoint survives the process being killed. Each checkpoint also lists its files and their
sizes (`files.json`); one found damaged against that list (files deleted or cut short) is moved
to `damaged/` with a warning and the newest intact one is used instead (`load`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from surrogates.atomic import write_text
from surrogates.errors import TrainingError, warn


def _manager(folder: Path, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        enable_async_checkpointing=False,
        # A save cut short by a kill leaves a temporary folder; the next opening removes it.
        cleanup_tmp_directories=True,
    )
    # The items' handlers named up front: reading a checkpoint's metadata needs them.
    handlers = {
        "model": ocp.StandardCheckpointHandler(),
        "optimizer": ocp.StandardCheckpointHandler(),
        "meta": ocp.JsonCheckpointHandler(),
    }
    return ocp.CheckpointManager(folder.absolute(), options=options, item_handlers=handlers)


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
        for manager in (self._latest, self._best) if best else (self._latest,):
            if epoch in manager.all_steps():
                # Left by the run before a resume from an earlier checkpoint: replaced.
                manager.delete(epoch)
            manager.save(epoch, args=args, force=True)
            if jax.process_index() == 0:  # one writer when several processes save together
                _write_manifest(Path(manager.directory) / str(epoch))

    def latest_epoch(self, *, best: bool = False) -> int | None:
        """The epoch of the latest (or the best) checkpoint, None if there is none."""
        return self._manager(best).latest_step()

    def meta(self, *, best: bool = False, epoch: int | None = None) -> dict[str, Any]:
        """The metadata of the latest (or the best) checkpoint, or of `epoch`'s."""
        manager, epoch = self._at(best, epoch)
        restored = manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored["meta"]

    def restore(
        self, model: Any, optimizer: Any = None, *, best: bool = False, epoch: int | None = None
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The saved model state (and optimizer state if `optimizer` is given; else None) of
        the latest (or the best) checkpoint or of `epoch`'s, in the structure and shardings
        of `model` and `optimizer`, and the metadata."""
        manager, epoch = self._at(best, epoch)
        _check_counts(manager, epoch, {"model": model, "optimizer": optimizer})
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
            raise CheckpointMismatch(
                f"{manager.directory}: the checkpoint of epoch {epoch} does not fit the model "
                f"({detail}); it was written by another model or by an older version of the "
                "model code (dense spectral weights, for one, are now stored modes first)"
            ) from None
        restored_optimizer = None
        if optimizer is not None:
            restored_optimizer = _unflat(optimizer, restored["optimizer"])
        return _unflat(model, restored["model"]), restored_optimizer, restored["meta"]

    def load(
        self, like: Callable[[dict[str, Any]], tuple[Any, Any]], *, best: bool = False
    ) -> tuple[Any, Any, dict[str, Any]]:
        """`restore` of the newest readable latest (or best) checkpoint. `like(meta)` gives
        the model and optimizer states (optimizer None for the model alone) to restore into,
        from the checkpoint's metadata. A checkpoint that cannot be read (files deleted or
        damaged) is skipped with a one-line warning; if none can, `CheckpointUnreadable`."""
        manager = self._manager(best)
        epochs = sorted(manager.all_steps(), reverse=True)
        if not epochs:
            raise CheckpointUnreadable(f"{manager.directory}: no checkpoint")
        for epoch in epochs:
            folder = Path(manager.directory) / str(epoch)
            problem = _damage(folder)
            if problem is None:
                try:
                    model, optimizer = like(self.meta(best=best, epoch=epoch))
                    return self.restore(model, optimizer, best=best, epoch=epoch)
                except CheckpointMismatch:
                    raise
                except Exception as error:
                    problem = f"{type(error).__name__}: {_first_line(error)}"
            aside = self._set_aside(manager, folder)
            warn(f"{folder}: checkpoint damaged ({problem}); moved to {aside}, skipped")
        raise CheckpointUnreadable(
            f"{manager.directory}: no intact checkpoint (epochs {', '.join(map(str, epochs))} "
            "were damaged)"
        )

    def _set_aside(self, manager: ocp.CheckpointManager, folder: Path) -> Path:
        """Move a damaged checkpoint out of the manager's way (kept, not deleted)."""
        aside = self.folder / "damaged" / f"{Path(manager.directory).name}-{folder.name}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        while aside.exists():
            aside = aside.with_name(aside.name + "+")
        folder.rename(aside)
        manager.reload()
        return aside

    def close(self) -> None:
        self._latest.close()
        self._best.close()

    def _manager(self, best: bool) -> ocp.CheckpointManager:
        return self._best if best else self._latest

    def _at(self, best: bool, epoch: int | None) -> tuple[ocp.CheckpointManager, int]:
        manager = self._manager(best)
        epoch = manager.latest_step() if epoch is None else epoch
        if epoch is None:
            raise CheckpointUnreadable(f"{manager.directory}: no checkpoint")
        return manager, epoch


def _check_counts(manager: ocp.CheckpointManager, epoch: int, states: dict[str, Any]) -> None:
    """`CheckpointMismatch` if a saved item holds another number of arrays than the state
    given for it (another architecture): orbax's own error would read like damage."""
    try:
        stored = manager.item_metadata(epoch)
    except Exception:  # unreadable metadata: restoring reports the damage
        return
    for name, state in states.items():
        saved = getattr(stored.get(name), "tree", None) if state is not None else None
        if saved is None:
            continue
        have = len(jax.tree.leaves(state))
        if have != len(saved):
            raise CheckpointMismatch(
                f"{manager.directory}: the checkpoint of epoch {epoch} does not fit the "
                f"{name} (it has {have} arrays, the checkpoint holds {len(saved)}); it was "
                "written for another model"
            )


class CheckpointMismatch(TrainingError):
    """A checkpoint holds other arrays (other shapes or another number) than the model's."""


class CheckpointUnreadable(TrainingError):
    """No checkpoint, or none that can be read."""


MANIFEST = "files.json"


def _write_manifest(folder: Path) -> None:
    """List every file of a saved checkpoint with its size, to find damage before restoring
    (orbax, reading a checkpoint with files missing, fails deep in its async readers)."""
    sizes = {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    write_text(folder / MANIFEST, json.dumps(sizes, indent=0) + "\n")


def _damage(folder: Path) -> str | None:
    """What is missing or cut short in a checkpoint against its manifest, or None (also for
    a checkpoint without a manifest, which is trusted)."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return None
    try:
        sizes = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return f"{MANIFEST} unreadable"
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            return f"{name} missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    return None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else ""
