"""Engine runs beyond autoregressive rollouts: a steady problem (Darcy: coefficient in, solution
out), multi-grid patching around the operator, incremental Fourier modes, the H1 loss, and
zero-shot evaluation at twice the training resolution.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from flax import nnx
from tiny_runs import experiment_yaml

from surrogates.config import load_experiment
from surrogates.errors import ModelError, TrainingError
from surrogates.evaluation.results import read_results
from surrogates.models.multigrid import Multigrid
from surrogates.runs import read_jsonl
from surrogates.training import OperatorTask
from surrogates.training.checkpoints import Checkpoints
from surrogates.training.trainer import load_selected
from surrogates.workflow import evaluate, train

DARCY = """\
pde: darcy
parameters: {beta: [1.0]}
file_name: "darcy.hdf5"
samples: 40
resolution: 32
"""


@pytest.fixture(scope="module")
def darcy_file(tmp_path_factory) -> Path:
    from surrogates.data.generate.generator import run_recipe

    folder = tmp_path_factory.mktemp("darcy")
    (folder / "recipe.yaml").write_text(DARCY)
    return run_recipe(folder / "recipe.yaml", out=folder, progress=False)[0]


def darcy_experiment(data_file: Path, root: Path, *overrides: str) -> Path:
    text = textwrap.dedent(f"""\
        name: darcy
        data:
          files: [{data_file}]
          history: 0
          stride_x: 2
          split: {{val: 0.1, test: 0.2}}
        model: {{name: fno, n_modes: [8, 8], hidden_channels: 12, n_layers: 2,
                 non_linearity: gelu_tanh}}
        train:
          epochs: 12
          batch_size: 4
          rollout_steps: 1
          loss: h1
          optimizer: {{lr: 0.005}}
        eval: {{batch_size: 8}}
        run: {{root: {root}}}
        """)
    path = root / "darcy.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_steady_problem_learns_the_solution_from_the_coefficient(darcy_file, tmp_path):
    experiment = load_experiment(darcy_experiment(darcy_file, tmp_path / "runs"))
    folder = train(experiment, progress=False)
    log = read_jsonl(folder / "metrics.jsonl")
    assert log[-1]["train_loss"] < 0.6 * log[0]["train_loss"]
    results = read_results(folder / "eval.nc")
    # No last frame to persist: the model is scored alone, on the one solution frame.
    assert list(results["model"].values) == ["fno"] and results["nrmse"].shape == (1, 1, 1)
    trained = float(results["nrmse"].mean())
    assert 0 < trained < 0.5
    assert "solution from the static inputs" in (folder / "summary.md").read_text()

    # The model saw the coefficient as its one input channel (plus FNO's grid embedding).
    stepper = trained_stepper(folder)
    assert stepper.model.in_channels == 1 and stepper.static_channels == 1

    # Zero-shot at twice the training resolution: the same weights on the 32 x 32 grid.
    fine = read_results(evaluate(folder, stride_x=1) / "eval.nc")
    assert fine.attrs["data"].endswith("stride_x 1")
    transferred = float(fine["nrmse"].mean())
    assert np.isfinite(transferred) and transferred < 3 * trained


def test_history_zero_needs_static_inputs(make_experiment):
    experiment = load_experiment(make_experiment(), ["data.history=0", "train.rollout_steps=1"])
    with pytest.raises(TrainingError, match=r"data.history: 0 history frames leave the model"):
        train(experiment, progress=False)


def test_multigrid_patching_wraps_the_operator(burgers_file, tmp_path):
    root = tmp_path / "runs"
    path = tmp_path / "mg.yaml"
    model = "model:\n  name: fno\n  n_modes: [8]\n  hidden_channels: 8\n  n_layers: 2\n"
    path.write_text(experiment_yaml(burgers_file, root, model=model))
    for stitching in (True, False):
        overrides = [
            "model.multigrid.levels=1",
            "model.multigrid.padding=0.125",
            f"model.multigrid.stitching={str(stitching).lower()}",
            "train.epochs=2",
            "train.loss=rel_l2",
        ]
        experiment = load_experiment(path, overrides)
        folder = train(experiment, progress=False)
        assert all(np.isfinite(r["train_loss"]) for r in read_jsonl(folder / "metrics.jsonl"))
        results = read_results(folder / "eval.nc")
        assert np.all(np.isfinite(results["nrmse"].values))
    stepper = trained_stepper(folder)
    assert isinstance(stepper.model, Multigrid) and stepper.model.levels == 1
    # Three history frames, doubled by the one coarse view.
    assert stepper.model.operator.in_channels == 6
    bad = load_experiment(path, ["model.multigrid.levels=4"])
    with pytest.raises(ModelError, match=r"model.wrappers: .*levels=4.*data.stride_x"):
        train(bad, progress=False)


def trained_stepper(folder: Path) -> nnx.Module:
    """The stepper of the run in `folder` with its best checkpoint's weights."""
    task = OperatorTask.for_evaluation(load_experiment(folder / "config.yaml"))
    checkpoints = Checkpoints(folder / "checkpoints")
    load_selected(task, checkpoints, "best", folder)
    checkpoints.close()
    return task.model.module()


def test_incremental_modes_grow_by_epoch_and_evaluate_as_trained(make_experiment):
    overrides = [
        "train.incremental.start_modes=[4]",
        "train.incremental.every_epochs=1",
        "train.incremental.step=2",
    ]
    experiment = load_experiment(make_experiment(), overrides)
    folder = train(experiment, progress=False)
    log = read_jsonl(folder / "metrics.jsonl")
    assert [r["n_modes"] for r in log] == [[4], [6], [8]]
    # Re-evaluation sets the modes the best checkpoint was trained with and reproduces the run.
    trained = read_results(folder / "eval.nc")
    again = read_results(evaluate(folder) / "eval.nc")
    np.testing.assert_allclose(again["nrmse"], trained["nrmse"], rtol=1e-6)
    best = min(log, key=lambda r: r["val_nrmse"])
    stepper = trained_stepper(folder)
    assert list(stepper.model.n_modes) == best["n_modes"]
    with pytest.raises(TrainingError, match="start_modes: \\[9\\] must have one entry per axis"):
        train(load_experiment(make_experiment(), ["train.incremental.start_modes=[9]"]))


def test_a_model_checks_its_grid_before_anything_runs(make_experiment, capsys):
    from surrogates.cli import main

    path = make_experiment()
    experiment = load_experiment(path, ["model.n_modes=[8, 8]"])
    with pytest.raises(
        ModelError, match=r"^model\.n_modes: 2 entries for data with 1 spatial axes \(32,\)$"
    ):
        train(experiment, progress=False)
    assert not list(Path(experiment.run.root).glob("tiny/*"))  # no run folder left
    assert main(["train", str(path), "-o", "model.n_modes=[8, 8]", "-q"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
