"""The training loop, for any `Task`: epochs, optimizer phases, logging, checkpoints, resume.

The trainer knows nothing of what a step computes. Per epoch it enters the optimizer phase of
that epoch (a new optimizer state when the phase changes), lets the task get ready (a task may
change its model's static graph, and the step is then compiled again), runs the task's compiled
step on each of its inputs, timing how long it waits for them, reads each step's loss back one
step late (so the host never stalls the device queue) and stops on a NaN or Inf loss. Then it
asks the task for its validation score and logs one line of `metrics.jsonl`, and it writes the
latest checkpoint every `train.checkpoint_every` epochs, at the last epoch and whenever the
score is the best so far. Every step receives `[epoch, step]`, from which a task that samples
its inputs inside the step derives its key, so a resumed run is the uninterrupted one.

At the end, `select()` puts back the checkpoint `train.select` names (`best` by validation
score, `last` the final iterate) for the evaluation that follows.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from surrogates.atomic import write_text
from surrogates.config import TrainSpec
from surrogates.errors import Interrupted, TrainingError, warn
from surrogates.runs import append_jsonl, read_jsonl
from surrogates.training import sharding
from surrogates.training.checkpoints import Checkpoints, CheckpointUnreadable
from surrogates.training.optimizers import HELD, TRAINED, Phase, make_phases, phase_at
from surrogates.training.task import Step, Task


class Trainer:
    """Trains `task` with the settings `train`; logs and checkpoints go to `folder` (fit and
    resume need one; `run_epoch` alone does not)."""

    def __init__(
        self,
        task: Task,
        train: TrainSpec,
        folder: Path | None = None,
        *,
        progress: bool = True,
    ):
        self.task, self.train, self.folder = task, train, folder
        # With several processes, process 0 alone shows progress and writes the log.
        self.writer = sharding.is_writer()
        self.progress = progress and self.writer
        self.phases = make_phases(train, task.steps_per_epoch, held=self._held_labels)
        self.phase: Phase | None = None
        self.opt_state: Any = None
        self.compiled_step: Step | None = None
        self.checkpoints = Checkpoints(folder / "checkpoints") if folder is not None else None
        self.best = math.inf
        self.start_epoch = 0
        self.logged_epoch = 0  # the last epoch with its line in metrics.jsonl

    def run_epoch(
        self, epoch: int, on_step: Callable[[float], None] | None = None
    ) -> tuple[float, float]:
        """Every step of `epoch` (0-based); returns the mean loss and the seconds spent
        waiting for inputs. A NaN or Inf loss stops the run naming the epoch and step."""
        step = self._enter(epoch)
        model = self.task.model
        inputs = self.task.inputs(epoch)
        waited, losses = 0.0, []
        for k in range(self.task.steps_per_epoch):
            started = time.perf_counter()
            batch = next(inputs)
            waited += time.perf_counter() - started
            counter = np.asarray([epoch, k], np.int32)
            model.params, self.opt_state, loss = step(
                model.params, self.opt_state, model.rest, counter, *batch
            )
            if losses:
                self._report(losses[-1], epoch, k, on_step)
            losses.append(loss)
        self._report(losses[-1], epoch, len(losses), on_step)
        return float(jnp.mean(jnp.stack(losses))), waited

    def fit(self) -> None:
        """Train from `start_epoch` to `train.epochs`, logging and checkpointing each epoch."""
        if not self.task.model.trainable:
            return
        columns = (
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("lr {task.fields[lr]}"),
            TimeRemainingColumn(),
        )
        total = (self.train.epochs - self.start_epoch) * self.task.steps_per_epoch
        console = Console(stderr=True)
        with Progress(*columns, console=console, disable=not self.progress) as bar:
            shown = bar.add_task("train", total=total, epoch="", loss="-", lr="-")
            epoch = self.start_epoch
            try:
                for epoch in range(self.start_epoch, self.train.epochs):
                    self._epoch(epoch, bar, shown)
            except KeyboardInterrupt:
                # Past the log line, the interrupt waited for the epoch's checkpoint.
                when = "after" if self.logged_epoch == epoch + 1 else "in"
                raise Interrupted(
                    f"interrupted {when} epoch {epoch + 1}; {self._kept()}; resume with "
                    f"`surrogates train --resume {self.folder}`"
                ) from None

    def resume(self) -> None:
        """Continue from the newest readable latest checkpoint: the model, the optimizer state
        of its phase, the epoch and the best score come back; `metrics.jsonl` keeps the epochs
        before it. A run stopped before its first checkpoint starts again from epoch 0."""
        if self.checkpoints.latest_epoch() is None:
            self._truncate_log(0)
            return
        phases = {}

        def like(meta: dict[str, Any]) -> tuple[Any, Any]:
            phases["phase"] = self.phases[int(meta.get("phase", 0))]
            self.task.restore_meta(meta)
            model = self.task.model
            return (model.params, model.rest), self.task.optimizer_state(phases["phase"].tx)

        (params, rest), self.opt_state, meta = self.checkpoints.load(like)
        # Read the model only now: restoring the metadata may have rebuilt it.
        self.task.model.params, self.task.model.rest = params, rest
        self.phase, self.compiled_step = phases["phase"], None
        self.start_epoch, self.best = int(meta["epoch"]), _score(meta["best"])
        if self.start_epoch > self.train.epochs:
            raise TrainingError(
                f"train.epochs: {self.train.epochs} is before the checkpoint's epoch "
                f"{self.start_epoch}"
            )
        self._truncate_log(self.start_epoch)

    def _truncate_log(self, epoch: int) -> None:
        """Keep the log lines of the epochs up to `epoch` (the writing process)."""
        if not self.writer:
            return
        log = self.folder / "metrics.jsonl"
        kept = [r for r in read_jsonl(log) if r["epoch"] <= epoch]
        write_text(log, "".join(f"{json.dumps(r)}\n" for r in kept))

    def select(self) -> int:
        """Put back the checkpoint `train.select` names, for the final evaluation; returns
        its epoch."""
        return load_selected(self.task, self.checkpoints, self.train.select, self.folder)

    def close(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.close()

    def _enter(self, epoch: int) -> Step:
        """The optimizer phase and compiled step of `epoch`."""
        phase = phase_at(self.phases, epoch)
        rebuild = self.task.start_epoch(epoch)
        if phase is not self.phase:
            self.opt_state = self.task.optimizer_state(phase.tx, self.opt_state)
            self.phase, rebuild = phase, True
        if rebuild or self.compiled_step is None:
            self.compiled_step = self.task.make_step(phase.tx)
        return self.compiled_step

    def _report(self, loss: jax.Array, epoch: int, step: int, on_step) -> None:
        value = float(loss)
        if not math.isfinite(value):
            raise TrainingError(
                f"training diverged: loss is {value} at epoch {epoch + 1}, step {step}; "
                f"{self._kept()} (try a lower train.optimizer.lr or train.optimizer.clip_norm)"
            )
        if on_step is not None:
            on_step(value)

    def _kept(self) -> str:
        """What a stopped run leaves to evaluate or resume from, in words."""
        epoch = None if self.checkpoints is None else self.checkpoints.latest_epoch()
        if epoch is None:
            return "no checkpoint was written"
        return f"the checkpoint of epoch {epoch} is kept"

    def _epoch(self, epoch: int, bar: Progress, shown) -> None:
        started = time.perf_counter()
        lr = phase_at(self.phases, epoch).learning_rate(epoch, self.task.steps_per_epoch)
        bar.update(
            shown,
            epoch=f"{epoch + 1}/{self.train.epochs}",
            lr="-" if lr is None else f"{lr:.2e}",
        )

        def advance(loss: float) -> None:
            bar.update(shown, advance=1, loss=f"{loss:.3e}")

        train_loss, waited = self.run_epoch(epoch, on_step=advance)
        validation = self.task.validate()
        score = train_loss if validation is None else validation
        finite = math.isfinite(score)
        is_best = score < self.best
        self.best = min(self.best, score)
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            self.task.validation_name: validation,
            "lr": lr,
            **self.task.epoch_log(epoch),
            "seconds": time.perf_counter() - started,
            "data_wait_seconds": waited,
        }
        with deferred_interrupt():
            if self.writer:
                append_jsonl(self.folder / "metrics.jsonl", record)
            self.logged_epoch = epoch + 1
        if not finite:
            # A model whose rollouts blow up is no result: stop as for a diverging loss.
            raise TrainingError(
                f"training diverged: {self.task.validation_name} is {score} after epoch "
                f"{epoch + 1}; {self._kept()} (try a lower train.optimizer.lr or "
                "train.optimizer.clip_norm)"
            )
        last = epoch + 1 == self.train.epochs
        if is_best or last or (epoch + 1) % self.train.checkpoint_every == 0:
            meta = {
                "epoch": epoch + 1,
                "val": score,
                "best": self.best,
                "phase": self.phase.index,
                **self.task.checkpoint_meta(),
            }
            model = self.task.model
            with deferred_interrupt():
                self.checkpoints.save(
                    (model.params, model.rest), self.opt_state, meta, best=is_best
                )

    def _held_labels(self) -> Any:
        """`HELD` for the parameters under `train.freeze.module`(s), `TRAINED` for the others."""
        leaves, _ = jax.tree_util.tree_flatten_with_path(self.task.model.params)
        paths = [_names(path) for path, _ in leaves]
        prefixes = []
        for module in self.train.freeze.modules:
            prefix = (*self.task.model_path, *module.split("."))
            if not any(path[: len(prefix)] == prefix for path in paths):
                depth = len(self.task.model_path)
                parts = sorted({path[depth] for path in paths if len(path) > depth})
                raise TrainingError(
                    f"train.freeze.module: {module!r} is no part of the model "
                    f"(its parts: {', '.join(parts)})"
                )
            prefixes.append(prefix)

        def label(path: tuple, _: Any) -> str:
            names = _names(path)
            return HELD if any(names[: len(p)] == p for p in prefixes) else TRAINED

        return jax.tree_util.tree_map_with_path(label, self.task.model.params)


def _names(path: tuple) -> tuple[str, ...]:
    """A pytree key path as the names of its parts (`blocks.0.kernel` as `("blocks", "0",
    "kernel")`)."""
    names = []
    for entry in path:
        for field in ("key", "idx", "name"):
            if hasattr(entry, field):
                names.append(str(getattr(entry, field)))
                break
    return tuple(names)


def load_selected(task: Task, checkpoints: Checkpoints, select: str, folder: Path) -> int:
    """Put the `select`ed checkpoint (`best`, else the latest; or `last`) into `task`'s model;
    returns its epoch (0 for a model without training). An unreadable best checkpoint gives
    way to the latest, with a warning."""
    if not task.model.trainable:
        return 0

    def like(meta: dict[str, Any]) -> tuple[Any, None]:
        task.restore_meta(meta)
        return (task.model.params, task.model.rest), None

    best = select == "best" and checkpoints.latest_epoch(best=True) is not None
    if best:
        try:
            state, _, meta = checkpoints.load(like, best=True)
        except CheckpointUnreadable as error:
            warn(f"{error}; using the latest checkpoint instead")
            best = False
    if not best:
        if checkpoints.latest_epoch() is None:
            raise TrainingError(f"{folder}: no checkpoint to evaluate")
        state, _, meta = checkpoints.load(like)
    # Read the model only now: restoring the metadata may have rebuilt it.
    task.model.params, task.model.rest = state
    return int(meta["epoch"])


def _score(value: float | None) -> float:
    """A score read back from JSON (None for a non-finite one)."""
    return math.inf if value is None else float(value)


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block is done, so a checkpoint or a log line is
    written whole; in the main thread only (where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
