"""PDE parameters travel with the run: they reach the model in the compiled step (training data
on the device and read lazily) and in rollouts, normalised with the training split's
statistics; the run records their names and values; evaluation on other files reads the same
names, reports results per parameter value with whether training saw it, and names a file
that lacks one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from layout_files import write_tensor

from surrogates.cli import main
from surrogates.config import load_experiment
from surrogates.errors import DatasetError
from surrogates.evaluation.results import read_results
from surrogates.models import registry
from surrogates.training import OperatorTask, Trainer
from surrogates.workflow import evaluate, train


class ParameterEcho(nnx.Module):
    """Predicts its first PDE parameter everywhere, plus `w` (0) times the input's mean."""

    def __init__(self, in_channels: int, out_channels: int, n_params: int, *, rngs: nnx.Rngs):
        assert n_params >= 1
        self.out_channels = out_channels
        self.w = nnx.Param(jnp.zeros(()))

    def __call__(self, x, *, pde_params=None):
        value = pde_params[:, 0] + self.w[...] * jnp.mean(x, axis=tuple(range(1, x.ndim)))
        return jnp.broadcast_to(
            value.reshape(-1, *(1,) * (x.ndim - 1)), (*x.shape[:-1], self.out_channels)
        )


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    registry.register("parameter_echo")(ParameterEcho)


@pytest.fixture
def advection_files(tmp_path) -> dict[float, Path]:
    files = {}
    for k, beta in enumerate((0.4, 1.0, 2.5)):
        files[beta] = tmp_path / f"advection_beta{beta}.hdf5"
        write_tensor(files[beta], n=8, t=7, x=16, seed=k, beta=beta)
    return files


def experiment_path(tmp_path: Path, files: list[Path], model: str, **data: str) -> Path:
    extra = "".join(f"  {key}: {value}\n" for key, value in data.items())
    path = tmp_path / "advection.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: advection
        data:
          files: [{", ".join(map(str, files))}]
          history: 2
          split: {{method: pdebench, val: 0.25, test: 0.25}}
        """)
        + extra
        + f"model: {model}\n"
        + textwrap.dedent(f"""\
        train:
          epochs: 1
          batch_size: 4
          rollout_steps: 1
          curriculum: {{name: teacher_forcing}}
        eval: {{batch_size: 4}}
        run: {{root: {tmp_path / "runs"}}}
        """)
    )
    return path


@pytest.mark.parametrize("memory_gb", [4.0, 1e-9], ids=["on_device", "lazy"])
def test_parameters_reach_the_model_in_the_step_and_in_rollouts(
    echo, advection_files, tmp_path, memory_gb
):
    files = [advection_files[0.4], advection_files[1.0]]
    path = experiment_path(tmp_path, files, "{name: parameter_echo}", memory_gb=str(memory_gb))
    experiment = load_experiment(path, ["train.optimizer.lr=1e-12"])
    task = OperatorTask.for_training(experiment)
    assert task.batches.on_device == (memory_gb == 4.0)
    data = task.data
    assert data.param_names == ("beta",)
    betas = data.dataset.params["beta"]
    train_betas = betas[data.splits.train]
    np.testing.assert_allclose(data.param_mean, [train_betas.mean()], rtol=1e-6)
    np.testing.assert_allclose(data.param_std, [train_betas.std()], rtol=1e-6)

    # The epoch's loss, by hand: the model predicts the normalised beta of each window's
    # trajectory, the loss is the MSE against the normalised next frame. (The learning rate
    # is too small for its one weight to move the predictions.)
    rows, starts = task.sampler.epoch(0)
    fields = np.asarray(data.dataset.fields)
    trajectories = data.splits.train[rows]
    target = fields[trajectories, starts + 2]
    predicted = (betas[trajectories] - data.param_mean[0]) / data.param_std[0]
    expected = np.mean((predicted[..., None, None] - (target - data.mean) / data.std) ** 2)
    loss, _ = Trainer(task, experiment.train).run_epoch(0)
    assert loss == pytest.approx(expected, rel=1e-5)

    # Rollouts: every frame of trajectory i is its beta (normalised, then denormalised).
    test = data.splits.test
    prediction, _ = task.rollout(test, steps=3)
    normalised = (betas[test] - data.param_mean[0]) / data.param_std[0]
    physical = normalised * data.std[0] + data.mean[0]
    np.testing.assert_allclose(
        prediction,
        np.broadcast_to(physical[:, None, None, None], prediction.shape),
        rtol=1e-5,
        atol=1e-6,
    )


FNO = "{name: fno, n_modes: [4], hidden_channels: 4, n_layers: 1}"


def test_a_run_records_its_parameters_and_reports_an_unseen_value(
    advection_files, tmp_path, capsys
):
    files = [advection_files[0.4], advection_files[1.0]]
    folder = train(load_experiment(experiment_path(tmp_path, files, FNO)), progress=False)
    recorded = load_experiment(folder / "config.yaml")
    assert recorded.data.params == ["beta"]
    trained = read_results(folder / "eval.nc")
    # Per value on the test split, both seen in training; pooled variables as before.
    assert trained["nrmse"].dims == ("model", "step", "channel")
    assert trained["nrmse_by_case"].dims == ("case", "model", "step", "channel")
    assert trained["beta"].values.tolist() == [0.4, 1.0]
    assert trained["seen"].values.tolist() == [True, True]
    assert int(trained["trajectories"].sum()) == trained.attrs["trajectories"]

    # The third speed: the model gets beta from that file, and it was never seen.
    assert main(["evaluate", str(folder), "--data", str(advection_files[2.5]), "-q"]) == 0
    out = Path(capsys.readouterr().out.strip())
    other = read_results(out / "eval.nc")
    assert other["beta"].values.tolist() == [2.5] and other["seen"].values.tolist() == [False]
    # One value: its case is the whole data set.
    np.testing.assert_allclose(other["nrmse_by_case"].isel(case=0), other["nrmse"], rtol=1e-6)
    summary = (out / "summary.md").read_text()
    assert "## Per PDE-parameter value" in summary
    assert [line for line in summary.splitlines() if line.startswith("| 2.500e+00 | no")]

    # A file without the attribute: one line naming the file and the attribute.
    bare = tmp_path / "bare.hdf5"
    write_tensor(bare, n=4, t=7, x=16, seed=9)
    with h5py.File(bare, "a") as f:
        assert "beta" not in f.attrs
    with pytest.raises(DatasetError, match=rf"{bare}: no PDE parameter attribute 'beta'"):
        evaluate(folder, data=[bare])
    assert main(["evaluate", str(folder), "--data", str(bare), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'beta'" in err and str(bare) in err


def test_data_params_chooses_the_attributes(echo, advection_files, tmp_path):
    # One speed: nothing varies, yet `data.params` feeds it to the model.
    one = [advection_files[0.4]]
    experiment = load_experiment(
        experiment_path(tmp_path, one, "{name: parameter_echo}", params="[beta]")
    )
    task = OperatorTask.for_training(experiment)
    assert task.data.param_names == ("beta",) and task.data.param_std.tolist() == [1.0]
    missing = load_experiment(experiment_path(tmp_path, one, FNO, params="[Nu]"))
    with pytest.raises(DatasetError, match=r"no PDE parameter attribute 'Nu' .*parameters: beta"):
        OperatorTask.for_training(missing)


def test_other_files_are_evaluated_after_training_and_listed_by_suites(
    advection_files, tmp_path, capsys, monkeypatch
):
    from surrogates.suites import run_suite

    files = [advection_files[0.4], advection_files[1.0]]
    unseen = advection_files[2.5]
    path = experiment_path(tmp_path, files, FNO)
    text = path.read_text().replace(
        "eval: {batch_size: 4}", f"eval: {{batch_size: 4, other_files: {{unseen: [{unseen}]}}}}"
    )
    path.write_text(text)
    bare = tmp_path / "bare.hdf5"
    write_tensor(bare, n=4, t=7, x=16, seed=9)
    folder = train(load_experiment(path), progress=True)
    other = read_results(folder / "evaluations" / "unseen" / "eval.nc")
    assert other["beta"].values.tolist() == [2.5] and other["seen"].values.tolist() == [False]
    assert other.attrs["trajectories"] == 8  # the whole file
    # The messages name where the results are.
    err = "".join(capsys.readouterr().err.split())  # rich wraps long lines anywhere
    assert f"resultsin{folder}:" in err
    assert f"resultsin{folder / 'evaluations' / 'unseen'}:" in err
    assert ".new" not in err and ".old" not in err

    # Evaluating into the same name again replaces the results once the new ones are
    # complete; a failed evaluation leaves the earlier ones in place.
    written = (folder / "evaluations" / "unseen" / "eval.nc").read_bytes()
    with pytest.raises(DatasetError, match="no PDE parameter attribute 'beta'"):
        evaluate(folder, data=[tmp_path / "bare.hdf5"], name="unseen")
    assert (folder / "evaluations" / "unseen" / "eval.nc").read_bytes() == written

    def fail(*args, **kwargs):  # after the new eval.nc is written
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr("surrogates.evaluation.operator.write_summary", fail)
        with pytest.raises(OSError, match="disk full"):
            evaluate(folder, data=[unseen], name="unseen")
    assert (folder / "evaluations" / "unseen" / "eval.nc").read_bytes() == written
    assert sorted(p.name for p in (folder / "evaluations").iterdir()) == ["unseen"]
    evaluate(folder, data=[unseen], name="unseen")
    again = read_results(folder / "evaluations" / "unseen" / "eval.nc")
    np.testing.assert_array_equal(again["nrmse"], other["nrmse"])
    assert sorted(p.name for p in (folder / "evaluations").iterdir()) == ["unseen"]

    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: unseen\nroot: {tmp_path / 'runs'}\nexperiments: [{path}]\n")
    out = run_suite(suite, progress=False)
    table = (out / "comparison.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines()[4:] if line.startswith("|")]
    assert "advection" in rows and "advection (unseen)" in rows
    assert rows.index("advection (unseen)") > rows.index("advection")


def test_a_gradient_penalty_without_parameters_stops_in_one_line(advection_files, tmp_path):
    from surrogates.errors import TrainingError

    one = [advection_files[0.4]]  # a single speed: no parameter varies, none is fed
    experiment = load_experiment(
        experiment_path(tmp_path, one, FNO), ["train.gradient_penalty={coefficient: 0.1}"]
    )
    task = OperatorTask.for_training(experiment)
    with pytest.raises(TrainingError, match=r"train.gradient_penalty: the data has no PDE param"):
        Trainer(task, experiment.train).run_epoch(0)
