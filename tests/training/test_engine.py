"""The training engine end to end on a tiny generated Burgers set: run folders, compiled step,
curricula, lazy data, divergence, resuming after a kill, evaluation and the CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from layout_files import write_cfd

from surrogates.cli import main
from surrogates.config import load_experiment
from surrogates.errors import TrainingError
from surrogates.evaluation.results import read_results
from surrogates.runs import read_jsonl
from surrogates.training import OperatorTask, Trainer
from surrogates.training.checkpoints import CheckpointMismatch, Checkpoints
from surrogates.workflow import evaluate, train


def test_a_run_writes_every_output(make_experiment):
    experiment = load_experiment(make_experiment())
    folder = train(experiment, progress=False)
    assert folder.parent == Path(experiment.run.root) / "tiny"
    # The resolved config is the experiment with the PDE parameters it resolved (none vary).
    recorded = load_experiment(folder / "config.yaml")
    assert recorded.data.params == []
    assert recorded == experiment.model_copy(
        update={"data": experiment.data.model_copy(update={"params": []})}
    )
    log = read_jsonl(folder / "metrics.jsonl")
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert [r["n_ar"] for r in log] == [0, 2, 3]  # linear curriculum, 3 rollout steps
    assert all(np.isfinite(r["train_loss"]) and r["val_nrmse"] > 0 for r in log)
    assert (folder / "checkpoints" / "latest" / "3").is_dir()
    results = read_results(folder / "eval.nc")
    assert list(results["model"].values) == ["fno", "persistence"]
    assert results["nrmse"].shape == (2, 6, 1) and list(results["channel"].values) == ["u"]
    np.testing.assert_allclose(results["time"], np.linspace(0.15, 0.4, 6), atol=1e-6)
    summary = (folder / "summary.md").read_text()
    assert "| fno " in summary and "| persistence " in summary
    assert (folder / "figures" / "error_vs_step.png").stat().st_size > 1000
    assert (folder / "figures" / "snapshot_0.png").stat().st_size > 1000
    assert train(experiment, progress=False) != folder  # a second run never reuses a folder


def test_persistence_scores_equal_a_direct_computation(make_experiment, burgers_file):
    from surrogates.data import open_dataset
    from surrogates.data.windows import split_trajectories
    from surrogates.metrics import nrmse

    experiment = load_experiment(make_experiment())
    folder = train(experiment, progress=False)
    results = read_results(folder / "eval.nc")
    ds = open_dataset(burgers_file)
    test = split_trajectories(ds, method="random", val=0.2, test=0.2, seed=0).test
    fields = np.asarray(ds.fields[test])
    truth = fields[:, 3:9]
    expected = nrmse(np.repeat(fields[:, 2:3], 6, axis=1), truth)
    np.testing.assert_allclose(results["nrmse"].sel(model="persistence"), expected, rtol=1e-5)


def test_the_step_compiles_once_while_the_curriculum_changes(make_experiment, tmp_path):
    experiment = load_experiment(make_experiment(), ["train.epochs=4"])
    task = OperatorTask.for_training(experiment)
    trainer = Trainer(task, experiment.train, tmp_path / "run", progress=False)
    trainer.fit()
    trainer.close()
    assert [task.curriculum(e) for e in range(4)] == [0, 2, 3, 3]
    assert trainer.compiled_step._cache_size() == 1


def test_lazy_reads_train_exactly_like_device_data(make_experiment, tmp_path):
    losses = {}
    for memory_gb in (4.0, 1e-9):
        experiment = load_experiment(make_experiment(), [f"data.memory_gb={memory_gb}"])
        task = OperatorTask.for_training(experiment)
        assert task.batches.on_device == (memory_gb == 4.0)
        trainer = Trainer(task, experiment.train)
        losses[memory_gb] = [trainer.run_epoch(e)[0] for e in range(2)]
    np.testing.assert_allclose(losses[4.0], losses[1e-9], rtol=1e-6)


def test_a_diverging_loss_stops_naming_epoch_and_step_and_keeps_the_checkpoint(
    make_experiment, tmp_path
):
    experiment = load_experiment(make_experiment(), ["train.epochs=4"])
    task = OperatorTask.for_training(experiment)
    make_step, calls = task.make_step, []

    def poisoned_step(tx):
        step = make_step(tx)

        def poisoned(params, opt_state, *rest):
            calls.append(1)
            params, opt_state, loss = step(params, opt_state, *rest)
            return params, opt_state, loss * np.nan if len(calls) == 5 else loss

        return poisoned

    task.make_step = poisoned_step
    trainer = Trainer(task, experiment.train, tmp_path / "run", progress=False)
    per_epoch = task.steps_per_epoch
    assert per_epoch < 5 <= 2 * per_epoch  # the fifth step is in epoch 2
    with pytest.raises(TrainingError, match=rf"loss is nan at epoch 2, step {5 - per_epoch};"):
        trainer.fit()
    trainer.close()
    assert [r["epoch"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1]
    (tmp_path / "run" / "config.yaml").write_text((make_experiment()).read_text())
    out = evaluate(tmp_path / "run")
    assert np.all(np.isfinite(read_results(out / "eval.nc")["nrmse"].values))


def test_resuming_after_a_kill_matches_an_uninterrupted_run(make_experiment):
    path = make_experiment(
        "resume",
        train=(
            "train:\n  epochs: 12\n  batch_size: 4\n  rollout_steps: 3\n"
            "  optimizer: {lr: 0.003}\n  schedule: {name: cosine}\n"
            "  curriculum: {name: cape_sigmoid}\n"
        ),
    )
    experiment = load_experiment(path)
    reference = train(experiment, progress=False)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, "-m", "surrogates", "train", str(path), "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    runs = Path(experiment.run.root) / "resume"
    deadline = time.monotonic() + 120
    killed = None
    while time.monotonic() < deadline and process.poll() is None:
        done = [
            p
            for p in runs.glob("*/checkpoints/latest/2/commit_success.txt")
            if reference not in p.parents
        ]
        if done:
            process.send_signal(signal.SIGKILL)
            killed = done[0].parents[3]
            break
        time.sleep(0.02)
    process.wait()
    assert killed is not None, process.stderr.read().decode()
    epochs_before = len(read_jsonl(killed / "metrics.jsonl"))
    assert epochs_before < 12 and not (killed / "eval.nc").exists()
    assert main(["train", "--resume", str(killed), "-q"]) == 0
    resumed, uninterrupted = (
        read_jsonl(killed / "metrics.jsonl"),
        read_jsonl(reference / "metrics.jsonl"),
    )
    assert [r["epoch"] for r in resumed] == list(range(1, 13))
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_nrmse"] == pytest.approx(b["val_nrmse"], rel=1e-5)
    np.testing.assert_allclose(
        read_results(killed / "eval.nc")["nrmse"],
        read_results(reference / "eval.nc")["nrmse"],
        rtol=1e-5,
    )


def test_resume_errors(tmp_path):
    assert main(["train", "--resume", str(tmp_path), "-q"]) == 2
    with pytest.raises(TrainingError, match="not a run folder"):
        evaluate(tmp_path)


def test_window_longer_than_the_data_is_a_clear_error(make_experiment, tmp_path):
    experiment = load_experiment(make_experiment(), ["train.rollout_steps=9"])
    with pytest.raises(TrainingError, match="frames, but the trajectories have 11"):
        train(experiment, progress=False)
    assert not list(Path(experiment.run.root).glob("tiny/*"))  # no empty run folder left
    with pytest.raises(
        TrainingError,
        match=r"history \+ train.rollout_steps = 12 frames, but the trajectories have 11",
    ):
        OperatorTask.for_training(experiment)


def test_evaluate_at_another_resolution_and_on_other_files(make_experiment, burgers_file, capsys):
    # A run with clipping (another optimizer chain) restores for evaluation too.
    experiment = load_experiment(
        make_experiment(), ["data.stride_x=2", "train.optimizer.clip_norm=1.0"]
    )
    folder = train(experiment, progress=False)
    trained = read_results(folder / "eval.nc")
    # Re-evaluating as trained reproduces the run's results: the weights and the
    # normalisation statistics both come back from the best checkpoint.
    assert main(["evaluate", str(folder), "-q"]) == 0
    again = read_results(Path(capsys.readouterr().out.strip()) / "eval.nc")
    np.testing.assert_allclose(again["nrmse"], trained["nrmse"], rtol=1e-6)
    assert main(["evaluate", str(folder), "--stride-x", "1", "-q"]) == 0
    fine = Path(capsys.readouterr().out.strip())
    assert fine.parent == folder / "evaluations"
    transferred = read_results(fine / "eval.nc")
    assert transferred.attrs["data"].endswith("stride_x 1")
    # Same trajectories at twice the resolution: the weights transfer and stay sane.
    assert np.all(np.isfinite(transferred["nrmse"].values))
    assert (
        float(transferred["nrmse"].sel(model="fno").mean())
        < 3 * float(trained["nrmse"].sel(model="fno").mean()) + 0.1
    )
    assert main(["evaluate", str(folder), "--data", str(burgers_file), "-q"]) == 0
    other = read_results(Path(capsys.readouterr().out.strip()) / "eval.nc")
    assert other.attrs["trajectories"] == 24


def test_models_and_benchmark_commands(make_experiment, tmp_path, capsys):
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "fno" in listed and "persistence" in listed
    first, second = (
        make_experiment("first"),
        make_experiment("second", model="model:\n  name: persistence\n"),
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: pair\nroot: {tmp_path / 'runs'}\noverrides: [train.epochs=1]\n"
        f"experiments:\n  - {first}\n  - path: {second}\n    overrides: [eval.rollout_steps=4]\n"
    )
    assert main(["benchmark", str(suite), "-q"]) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    table = (out / "comparison.md").read_text()
    assert "| first " in table and "| second " in table
    rows = (out / "comparison.csv").read_text().splitlines()
    # first: fno and its persistence baseline; second: the persistence model alone.
    assert [row.split(",")[:2] for row in rows[1:]] == [
        ["first", "fno"],
        ["first", "persistence"],
        ["second", "persistence"],
    ]


def test_two_dimensional_multichannel_data(tmp_path, make_experiment):
    path = tmp_path / "cfd.hdf5"
    write_cfd(path, n=10, t=6, spatial=(8, 8), eta=0.1)
    experiment = load_experiment(
        make_experiment(
            "cfd",
            data=f"data:\n  files: [{path}]\n  history: 2\n  split: {{val: 0.2, test: 0.2}}\n",
            model="model:\n  name: fno\n  n_modes: [4, 4]\n  hidden_channels: 8\n  n_layers: 1\n",
            eval="eval:\n  batch_size: 2\n",
        ),
        ["train.epochs=1", "train.batch_size=2", "train.rollout_steps=2"],
    )
    folder = train(experiment, progress=False)
    results = read_results(folder / "eval.nc")
    assert list(results["channel"].values) == ["density", "pressure", "Vx", "Vy"]
    assert results["nrmse"].shape == (2, 4, 4)  # model x 4 rollout steps x 4 channels
    assert np.all(np.isfinite(results["nrmse"].values))
    assert (folder / "figures" / "snapshot_0.png").stat().st_size > 1000


def test_normalisation_statistics_come_from_the_training_split_only(make_experiment, tmp_path):
    from surrogates.data.windows import channel_statistics

    experiment = load_experiment(make_experiment())
    task = OperatorTask.for_training(experiment)
    fields = task.data.dataset.fields
    mean, std = channel_statistics(fields[task.data.splits.train])
    np.testing.assert_allclose(task.data.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(task.data.std, std, rtol=1e-6)
    assert not np.allclose(channel_statistics(fields)[0], mean, rtol=1e-3)
    # The stepper carries them (and so do its checkpoints).
    np.testing.assert_allclose(task.model.rest["mean"][...], mean, rtol=1e-6)


def test_an_empty_evaluation_split_is_a_clear_error(make_experiment):
    experiment = load_experiment(make_experiment(), ["data.split.test=0.0", "train.epochs=1"])
    with pytest.raises(TrainingError, match=r"eval\.split: no test trajectories to evaluate"):
        train(experiment, progress=False)


def test_a_checkpoint_of_other_shapes_is_a_clear_error(tmp_path):
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    optimizer = {"count": jnp.ones(())}
    checkpoints.save({"weight": jnp.ones((2, 3, 4))}, optimizer, {"epoch": 1}, best=False)
    restored, _, meta = checkpoints.restore({"weight": jnp.zeros((2, 3, 4))})
    assert meta["epoch"] == 1 and float(restored["weight"].sum()) == 24.0
    # Same size, other layout: as a dense FNO checkpoint written before weights moved.
    with pytest.raises(TrainingError, match=r"epoch 1 does not fit.*\(4, 2, 3\).*\(2, 3, 4\)") as e:
        checkpoints.restore({"weight": jnp.zeros((4, 2, 3))})
    assert "\n" not in str(e.value)
    checkpoints.close()


def test_a_checkpoint_of_another_model_is_a_clear_error_and_stays_in_place(tmp_path):
    """A model with more arrays than the checkpoint (another architecture): a one-line
    error, and the intact checkpoint is not taken for damaged and moved aside."""
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    saved = {"weight": jnp.ones((2, 3))}
    checkpoints.save(saved, {"count": jnp.ones(())}, {"epoch": 1}, best=False)
    other = {"bias": jnp.zeros(3), "weight": jnp.zeros((2, 3))}
    with pytest.raises(CheckpointMismatch, match=r"epoch 1 does not fit.*2 arrays.*holds 1") as e:
        checkpoints.load(lambda meta: (other, None))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "checkpoints" / "damaged").exists()
    restored, _, _ = checkpoints.load(lambda meta: (saved, None))
    assert float(restored["weight"].sum()) == 6.0
    checkpoints.close()
