"""Faults of training and evaluation as a user meets them, through the command: each gives
exit code 2 (130 for Ctrl-C) and one line without a traceback, and loses no run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import xarray as xr
import yaml
from commands import one_error_line
from tiny_runs import experiment_yaml

from surrogates.cli import main
from surrogates.runs import read_jsonl


@pytest.fixture(scope="module")
def trained(burgers_file: Path, tmp_path_factory) -> Path:
    """A finished 3-epoch run with a checkpoint every epoch (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("trained")
    path = folder / "tiny.yaml"
    path.write_text(experiment_yaml(burgers_file, folder / "runs"))
    assert main(["train", str(path), "-q", "-o", "train.checkpoint_every=1"]) == 0
    (run,) = (folder / "runs" / "tiny").iterdir()
    return run


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    # The config names the run's data by absolute path: the copy still finds it.
    return copy


def strict_json_lines(path: Path) -> list[dict]:
    """Every line of a JSON-lines file parsed as strict JSON (no NaN or Infinity)."""

    def refuse(constant: str):
        raise AssertionError(f"{path}: non-standard JSON constant {constant}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def runs_of(experiment_path: Path) -> list[Path]:
    folder = experiment_path.parent / "runs" / experiment_path.stem
    return sorted(folder.iterdir()) if folder.exists() else []


# Wrong or lost results.


def test_a_non_finite_validation_score_stops_the_run(make_experiment, command):
    path = make_experiment()
    code, _, err = command("train", path, "-q", "-o", "train.optimizer.lr=0.6")
    line = one_error_line(err, "train")
    assert code == 2
    assert "training diverged: val_nrmse is inf after epoch 1; no checkpoint was written" in line
    (run,) = runs_of(path)
    log = strict_json_lines(run / "metrics.jsonl")
    assert [r["val_nrmse"] for r in log] == [None]
    assert not (run / "eval.nc").exists()  # a diverged model is never reported as a result
    code, _, err = command("evaluate", run, "-q")
    assert code == 2 and "no checkpoint to evaluate" in one_error_line(err, "evaluate")
    assert not (run / "evaluations").exists() or not any((run / "evaluations").iterdir())
    # Resuming a run without a checkpoint starts it again: the same stop, one log line.
    code, _, err = command("train", "--resume", run, "-q")
    assert code == 2 and "val_nrmse is inf after epoch 1" in one_error_line(err, "train")
    assert len(strict_json_lines(run / "metrics.jsonl")) == 1


def test_a_loss_diverging_later_says_which_checkpoint_is_kept(make_experiment, command):
    path = make_experiment()
    # Without validation, the first epoch's finite loss makes its checkpoint the best.
    code, _, err = command(
        "train", path, "-q", "-o", "train.optimizer.lr=5", "-o", "data.split.val=0"
    )
    line = one_error_line(err, "train")
    assert code == 2
    assert re.search(
        r"loss is (nan|inf) at epoch 2, step \d+; the checkpoint of epoch 1 is kept", line
    )
    (run,) = runs_of(path)
    assert (run / "checkpoints" / "latest" / "1").is_dir()


def test_the_same_file_twice_is_refused(make_experiment, command, burgers_file):
    for files in (
        f"[{burgers_file}, {burgers_file}]",
        f"[{burgers_file}, '{burgers_file.parent}/*.hdf5']",
    ):
        code, _, err = command("train", make_experiment(), "-q", "-o", f"data.files={files}")
        assert code == 2
        assert f"{burgers_file}: given twice" in one_error_line(err, "train")
    assert runs_of(make_experiment()) == []


def test_non_finite_rollouts_are_reported_not_hidden(run_copy, command, monkeypatch):
    from surrogates.training.operator_task import OperatorTask

    rollout = OperatorTask.rollout

    def diverging(self, indices, steps=None, fields=None):
        prediction, truth = rollout(self, indices, steps, fields)
        prediction[1, -1] = float("nan")
        return prediction, truth

    monkeypatch.setattr(OperatorTask, "rollout", diverging)
    code, out, err = command("evaluate", run_copy, "-q")
    assert code == 0 and "Traceback" not in err
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert "rollouts of 1 of 5 trajectories are not finite (the first: trajectory" in warning
    summary = (Path(out.strip()) / "summary.md").read_text()
    assert "**Warning:** the model's rollouts of 1 of 5 trajectories are not finite" in summary
    results = xr.open_dataset(Path(out.strip()) / "eval.nc")
    assert results.attrs["non_finite_trajectories"] == 1
    assert bool(results["max_error"].sel(model="fno").isnull().any())


# Caught before training, and runs repaired after it.


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.rollout_steps=20", "eval.rollout_steps: 20 steps after 3 history frames need 23"),
        ("data.stride_x=2000", "stride_x: 2000 leaves 1 point of the 32 along spatial axis 0"),
        ("data.stride_x=3", "stride_x: 3 does not divide the 32 points of periodic"),
        ("data.stride_x=8", "model.n_modes: 8 modes along spatial axis 0 need at least 8"),
        ("data.samples=1", "data.split: 1 trajectories leave none to train on"),
        (
            "run.root=/dev/null/runs",
            "run.root: /dev/null/runs/tiny: cannot create a folder there: Not a",
        ),
    ],
)
def test_bad_settings_stop_before_the_first_step(make_experiment, command, override, message):
    path = make_experiment()
    code, _, err = command("train", path, "-q", "-o", override)
    assert code == 2 and message in one_error_line(err, "train")
    assert runs_of(path) == []  # nothing trained, no run folder left


def test_a_stranded_run_is_repaired_by_overrides(run_copy, command, burgers_file):
    # A config whose evaluation no longer fits the data (as a run trained before the check).
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["eval"]["rollout_steps"] = 20
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = command("evaluate", run_copy, "-q")
    assert code == 2 and "eval.rollout_steps: 20 steps" in one_error_line(err, "evaluate")
    assert not (run_copy / "evaluations").exists() or not any((run_copy / "evaluations").iterdir())
    code, out, _ = command("evaluate", run_copy, "-q", "-o", "eval.rollout_steps=4")
    assert code == 0
    results = xr.open_dataset(Path(out.strip()) / "eval.nc")
    assert results.sizes["step"] == 4 and results.attrs["overrides"] == "eval.rollout_steps=4"
    (best,) = (run_copy / "checkpoints" / "best").iterdir()
    assert results.attrs["checkpoint_epoch"] == int(best.name)
    summary = (Path(out.strip()) / "summary.md").read_text()
    assert (
        f"Data: `{burgers_file}`. Trained for 3 epochs; evaluated the checkpoint of epoch "
        f"{best.name} (train.select: best); evaluated with `-o eval.rollout_steps=4`."
    ) in summary
    code, _, err = command("evaluate", run_copy, "-q", "-o", "data.stride_x=2")
    assert code == 2 and "evaluate keeps the run's data" in one_error_line(err, "evaluate")

    code, _, err = command(
        "train", "--resume", run_copy, "-q", "-o", "eval.rollout_steps=5", "-o", "train.epochs=4"
    )
    assert code == 0, err
    assert [r["epoch"] for r in read_jsonl(run_copy / "metrics.jsonl")] == [1, 2, 3, 4]
    text = (run_copy / "config.yaml").read_text()
    assert "# resumed" in text and "-o eval.rollout_steps=5 -o train.epochs=4" in text
    resolved = yaml.safe_load(text)
    assert resolved["train"]["epochs"] == 4 and resolved["eval"]["rollout_steps"] == 5
    assert xr.open_dataset(run_copy / "eval.nc").sizes["step"] == 5
    code, _, err = command("train", "--resume", run_copy, "-q", "-o", "train.epochs=2")
    assert code == 2
    assert "train.epochs: 2 is before the checkpoint's epoch 4" in one_error_line(err, "train")


def test_evaluate_at_a_stride_not_dividing_the_periodic_grid(run_copy, command):
    code, _, err = command("evaluate", run_copy, "-q", "--stride-x", "3")
    assert code == 2 and "stride_x: 3 does not divide the 32" in one_error_line(err, "evaluate")


# Faults survived.


def test_a_damaged_checkpoint_gives_way_to_the_newest_intact_one(run_copy, command):
    latest = run_copy / "checkpoints" / "latest"
    shutil.rmtree(latest / "3" / "model" / "d")
    code, _, err = command("evaluate", run_copy, "-q", "-o", "train.select=last")
    assert code == 0 and "Traceback" not in err
    (warning,) = err.splitlines()
    assert f"{latest / '3'}: checkpoint damaged (model/d/" in warning
    assert (run_copy / "checkpoints" / "damaged" / "latest-3").is_dir()  # kept, not deleted
    assert sorted(p.name for p in latest.iterdir()) == ["2"]
    # Resume goes on from epoch 2 and trains epoch 3 again: the same numbers as before.
    before = read_jsonl(run_copy / "metrics.jsonl")
    code, _, err = command("train", "--resume", run_copy, "-q")
    assert code == 0, err
    assert read_jsonl(run_copy / "metrics.jsonl")[2]["train_loss"] == before[2]["train_loss"]

    for kind in ("latest", "best"):
        for epoch in (run_copy / "checkpoints" / kind).iterdir():
            shutil.rmtree(epoch / "model" / "d")
    code, _, err = command("evaluate", run_copy, "-q")
    assert code == 2
    assert "no intact checkpoint" in one_error_line(err, "evaluate")


def test_a_log_line_cut_short_is_dropped_on_resume(run_copy, command):
    log = run_copy / "metrics.jsonl"
    text = log.read_text()
    # Killed while writing epoch 3's line, before its checkpoint.
    log.write_text(text[: len(text) - 25])
    shutil.rmtree(run_copy / "checkpoints" / "latest" / "3")
    code, _, err = command("train", "--resume", run_copy, "-q", "-o", "train.epochs=4")
    assert code == 0 and "dropped the last line, cut short" in err
    assert [r["epoch"] for r in strict_json_lines(log)] == [1, 2, 3, 4]
