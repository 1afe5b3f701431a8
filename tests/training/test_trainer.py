"""The generic trainer on a task defined in the tests only (`wave_task`: fit a known function
at random points, no files): checkpoints, resume after a kill equal to an uninterrupted run,
the NaN stop, Adam then L-BFGS, `last` selection and freezing part of the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
import wave_task
from interrupting import interrupted_then_resumed

from surrogates.config import load_experiment
from surrogates.errors import TrainingError
from surrogates.runs import read_jsonl
from surrogates.training import Trainer
from surrogates.training.checkpoints import Checkpoints
from surrogates.workflow import resume, train

HERE = Path(__file__).parent


def experiment_file(tmp_path: Path, train_section: str, name: str = "wave", **extra) -> Path:
    path = tmp_path / f"{name}.yaml"
    lines = "".join(f"{key}: {value}\n" for key, value in extra.items())
    path.write_text(
        f"task: wave\nname: {name}\n{lines}run: {{root: {tmp_path / 'runs'}}}\n"
        + "train:\n"
        + textwrap.indent(textwrap.dedent(train_section), "  ")
    )
    return path


ADAM_THEN_LBFGS = """\
phases:
  - {epochs: 3, optimizer: {lr: 0.01}}
  - {epochs: 3, optimizer: {name: lbfgs}}
"""


def evaluated(folder: Path) -> float:
    return json.loads((folder / "eval.json").read_text())["error"]


def test_a_run_checkpoints_and_evaluates_the_best_epoch(tmp_path):
    path = experiment_file(tmp_path, "epochs: 6\noptimizer: {lr: 0.01}\n")
    folder = train(load_experiment(path), progress=False)
    log = read_jsonl(folder / "metrics.jsonl")
    assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert [r["lr"] for r in log] == [0.01] * 6
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert (folder / "checkpoints" / "latest" / "6").is_dir()
    assert evaluated(folder) == pytest.approx(min(r["val_error"] for r in log), rel=1e-6)


KILLED_AFTER_EPOCH_4 = """
import os, signal, sys
sys.path.insert(0, {here!r})
import wave_task
from surrogates.config import load_experiment
from surrogates.training.checkpoints import Checkpoints
from surrogates.workflow import train

save = Checkpoints.save

def save_then_die(self, model, optimizer, meta, *, best):
    save(self, model, optimizer, meta, best=best)
    if meta["epoch"] == 4:
        os.kill(os.getpid(), signal.SIGKILL)

Checkpoints.save = save_then_die
train(load_experiment({path!r}), progress=False)
"""


def test_resuming_after_a_kill_in_the_lbfgs_phase_matches_an_uninterrupted_run(tmp_path):
    path = experiment_file(tmp_path, ADAM_THEN_LBFGS)
    reference = train(load_experiment(path), progress=False)
    script = KILLED_AFTER_EPOCH_4.format(here=str(HERE), path=str(path))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    (folder,) = [p for p in (tmp_path / "runs" / "wave").iterdir() if p != reference]
    assert len(read_jsonl(folder / "metrics.jsonl")) == 4 and not (folder / "eval.json").exists()
    # The checkpoint of epoch 4 holds the L-BFGS state of the second phase.
    checkpoints = Checkpoints(folder / "checkpoints")
    assert checkpoints.meta()["phase"] == 1
    checkpoints.close()

    resume(folder, progress=False)
    resumed, uninterrupted = (
        read_jsonl(folder / "metrics.jsonl"),
        read_jsonl(reference / "metrics.jsonl"),
    )
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_error"] == pytest.approx(b["val_error"], rel=1e-6)
    assert evaluated(folder) == pytest.approx(evaluated(reference), rel=1e-6)


def test_a_nan_loss_stops_the_run_and_keeps_the_checkpoints(tmp_path):
    path = experiment_file(tmp_path, "epochs: 5\n", poison_epoch=2)
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 3, step 1;"):
        train(load_experiment(path), progress=False)
    (folder,) = (tmp_path / "runs" / "wave").iterdir()
    assert [r["epoch"] for r in read_jsonl(folder / "metrics.jsonl")] == [1, 2]
    assert (folder / "checkpoints" / "latest" / "2").is_dir()


def test_adam_then_lbfgs_switches_optimizer_state_and_lowers_the_error(tmp_path):
    experiment = load_experiment(experiment_file(tmp_path, ADAM_THEN_LBFGS))
    task = wave_task.WaveTask(experiment)
    trainer = Trainer(task, experiment.train, tmp_path / "run", progress=False)
    trainer.fit()
    trainer.close()
    log = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    # L-BFGS's line search sets its step: no learning rate to log.
    assert [r["lr"] for r in log] == [0.01, 0.01, 0.01, None, None, None]
    # Each L-BFGS epoch lowers the error, well below where Adam left it (the size of the
    # gain depends on the float rounding of the machine: 0.57x on an AMD EPYC).
    errors = [r["val_error"] for r in log]
    assert errors[5] < errors[4] < errors[3] < errors[2]
    assert errors[5] < 0.7 * errors[2]
    kinds = {
        type(state).__name__ for state in jax.tree.leaves(trainer.opt_state, is_leaf=_is_state)
    }
    assert "ScaleByLBFGSState" in kinds and "ScaleByAdamState" not in kinds


def _is_state(node) -> bool:
    return type(node).__name__.startswith("ScaleBy")


def test_last_selection_evaluates_the_final_iterate(tmp_path):
    # A last phase with a far too large step: the final iterate is worse than the best one.
    section = """\
    select: {select}
    phases:
      - {{epochs: 4, optimizer: {{lr: 0.01}}}}
      - {{epochs: 1, optimizer: {{lr: 0.5}}}}
    """
    errors = {}
    for select in ("best", "last"):
        path = experiment_file(tmp_path, section.format(select=select), name=select)
        folder = train(load_experiment(path), progress=False)
        log = [r["val_error"] for r in read_jsonl(folder / "metrics.jsonl")]
        errors[select] = (evaluated(folder), log)
    (best, log), (last, same_log) = errors["best"], errors["last"]
    assert log == same_log and log[-1] > min(log)
    assert best == pytest.approx(min(log), rel=1e-6)
    assert last == pytest.approx(log[-1], rel=1e-6)


def test_freezing_holds_a_part_still_then_trains_it_and_resumes_exactly(tmp_path):
    section = (
        "epochs: 4\noptimizer: {lr: 0.01, clip_norm: 1.0}\nfreeze: {module: first, epochs: 2}\n"
    )
    experiment = load_experiment(experiment_file(tmp_path, section))
    task = wave_task.WaveTask(experiment)
    trainer = Trainer(task, experiment.train)
    structure = jax.tree.structure(task.optimizer_state(trainer.phases[0].tx))
    snapshots = [jax.tree.map(np.asarray, task.model.params)]
    for epoch in range(4):
        trainer.run_epoch(epoch)
        snapshots.append(jax.tree.map(np.asarray, task.model.params))
        assert jax.tree.structure(trainer.opt_state) == structure

    def moved(part: str, epoch: int) -> bool:
        before, after = snapshots[epoch][part], snapshots[epoch + 1][part]
        return any(
            not np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
        )

    assert [moved("first", e) for e in range(4)] == [False, False, True, True]
    assert all(moved("hidden", e) and moved("last", e) for e in range(4))

    # Interrupted after epoch 1 (inside the hold) and resumed: the same weights at the end.
    resumed_task = interrupted_then_resumed(
        lambda: wave_task.WaveTask(experiment),
        experiment.train,
        tmp_path / "run",
        stop_at_validation=2,
        message="interrupted in epoch 2; the checkpoint of epoch 1",
        resumed_from=1,
    )
    for a, b in zip(
        jax.tree.leaves(resumed_task.model.params), jax.tree.leaves(task.model.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_freezing_an_unknown_part_names_the_parts(tmp_path):
    section = "epochs: 2\nfreeze: {module: frist, epochs: 1}\n"
    experiment = load_experiment(experiment_file(tmp_path, section))
    with pytest.raises(
        TrainingError, match=r"'frist' is no part of the model \(its parts: first, hidden, last\)"
    ):
        Trainer(wave_task.WaveTask(experiment), experiment.train)


def test_the_optimizer_state_keeps_its_structure_across_the_hold():
    import jax.numpy as jnp

    from surrogates.training.optimizers import HELD, TRAINED, Hold, make_optimizer

    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    labels = {"a": HELD, "b": TRAINED}
    tx = make_optimizer(
        "adam", optax.constant_schedule(0.1), weight_decay=0.1, hold=Hold(labels, 2)
    )
    state = tx.init(params)
    grads = {"a": jnp.full(2, 0.5), "b": jnp.full(3, 0.5)}
    for step in range(3):
        updates, new_state = tx.update(grads, state, params)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        held = np.asarray(updates["a"])
        # Held for two updates (not even weight decay moves it), then Adam's first step.
        if step < 2:
            np.testing.assert_array_equal(held, 0.0)
        else:
            np.testing.assert_allclose(held, -0.1, rtol=1e-5)
        np.testing.assert_allclose(updates["b"], -0.1, rtol=1e-2)
        state = new_state
