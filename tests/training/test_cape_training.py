"""CAPE in the engine: raw parameters reach it, its auxiliary loss is in the logged loss, the
warm-up (`train.freeze` on the rest of the model) trains the block alone, and a run resumed
across the warm-up's end, with input noise, equals an uninterrupted one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from interrupting import interrupted_then_resumed
from layout_files import write_tensor

from surrogates.config import load_experiment
from surrogates.training import OperatorTask, Trainer

MODEL = (
    "{name: fno, n_modes: [4], hidden_channels: 4, n_layers: 1, "
    "wrappers: [{cape: {width: 8, kernel: 3, modes: 3}}]}"
)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("advection")
    paths = []
    for k, beta in enumerate((0.4, 1.0, 2.5)):
        paths.append(folder / f"advection_beta{beta}.hdf5")
        write_tensor(paths[-1], n=8, t=7, x=16, seed=k, beta=beta)
    return paths


def experiment(tmp_path: Path, files: list[Path], *overrides: str):
    path = tmp_path / "cape.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: cape_advection
        data:
          files: [{", ".join(map(str, files))}]
          history: 1
          split: {{method: pdebench, val: 0.25, test: 0.25}}
        model: {MODEL}
        train:
          epochs: 4
          batch_size: 4
          rollout_steps: 2
          loss: rel_l2
          optimizer: {{lr: 0.003}}
          freeze: {{module: [operator, mix], epochs: 2}}
          curriculum: {{name: teacher_forcing}}
        eval: {{batch_size: 4}}
        run: {{root: {tmp_path / "runs"}}}
        """)
    )
    return load_experiment(path, list(overrides))


def part(params, name: str) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(params["model"][name])]


def moved(before, after, name: str) -> bool:
    return any(
        not np.array_equal(a, b) for a, b in zip(part(before, name), part(after, name), strict=True)
    )


def test_the_warm_up_trains_the_block_alone_on_raw_parameters(files, tmp_path):
    task = OperatorTask.for_training(experiment(tmp_path, files))
    stepper = nnx.merge(task.model.graphdef, task.model.params, task.model.rest)
    assert stepper.pde_mean is None  # CAPE reads the betas as they are
    trainer = Trainer(task, task.experiment.train)
    snapshots = [jax.tree.map(np.asarray, task.model.params)]
    for epoch in range(4):
        trainer.run_epoch(epoch)
        snapshots.append(jax.tree.map(np.asarray, task.model.params))
    for name, expected in [
        ("block", [True] * 4),
        ("operator", [False, False, True, True]),
        ("mix", [False, False, True, True]),
    ]:
        assert [moved(snapshots[e], snapshots[e + 1], name) for e in range(4)] == expected


def test_the_auxiliary_loss_is_in_the_logged_loss(files, tmp_path):
    def epoch_loss(coefficient: float) -> float:
        cape = f"{{width: 8, kernel: 3, modes: 3, coefficient: {coefficient}}}"
        options = [
            f"model.wrappers=[{{cape: {cape}}}]",
            "train.optimizer.lr=1e-12",  # the weights stay put: the losses compare
        ]
        task = OperatorTask.for_training(experiment(tmp_path, files, *options))
        return Trainer(task, task.experiment.train).run_epoch(0)[0]

    without = epoch_loss(0.0)
    term = epoch_loss(1.0) - without
    assert term > 1e-3
    assert epoch_loss(0.5) - without == pytest.approx(0.5 * term, rel=1e-3)


def test_resuming_across_the_warm_ups_end_with_input_noise_is_exact(files, tmp_path):
    spec = experiment(tmp_path, files, "train.input_noise=0.01")
    task = OperatorTask.for_training(spec)
    whole = Trainer(task, spec.train, tmp_path / "whole", progress=False)
    whole.fit()
    whole.close()

    resumed = interrupted_then_resumed(
        lambda: OperatorTask.for_training(spec),
        spec.train,
        tmp_path / "run",
        stop_at_validation=3,  # in epoch 3, the first after the warm-up
        message="interrupted in epoch 3; the checkpoint of epoch 2",
        resumed_from=2,
    )
    for a, b in zip(
        jax.tree.leaves(resumed.model.params), jax.tree.leaves(task.model.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_run_reports_the_parameters_cape_adds(files, tmp_path):
    from surrogates.evaluation.results import read_results
    from surrogates.models import ModelContext, build_stack
    from surrogates.workflow import train

    folder = train(experiment(tmp_path, files, "train.epochs=3"), progress=False)
    results = read_results(folder / "eval.nc")
    context = ModelContext(1, 1, (16,), ("periodic",), ("beta",))
    bare = build_stack(
        "fno", {"n_modes": [4], "hidden_channels": 4, "n_layers": 1}, [], context, rngs=nnx.Rngs(0)
    )
    bare_count = sum(np.size(leaf) for leaf in jax.tree.leaves(nnx.state(bare, nnx.Param)))
    assert results.attrs["parameter_overhead"] == results.attrs["parameters"] - bare_count
    summary = (folder / "summary.md").read_text()
    assert f"The wrappers (cape) add {results.attrs['parameter_overhead']:,} of" in summary
