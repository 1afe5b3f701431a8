"""A step sharded over 4 (forced host) devices gives the loss and parameters of one device.

The device count is fixed when JAX starts, so the comparison runs in a fresh interpreter with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tiny_runs import experiment_yaml

SCRIPT = textwrap.dedent(
    """
    import sys

    import jax
    import numpy as np
    from jax.sharding import Mesh

    from surrogates.config import load_experiment
    from surrogates.training import OperatorTask, Trainer

    # MODEL

    assert jax.device_count() == 4, jax.devices()
    experiment = load_experiment(sys.argv[1])
    results = {}
    for name, devices in (("four", jax.devices()), ("one", jax.devices()[:1])):
        mesh = Mesh(np.array(devices), ("data",))
        task = OperatorTask.for_training(experiment, mesh, model=model())
        trainer = Trainer(task, experiment.train)
        losses = [trainer.run_epoch(epoch)[0] for epoch in range(2)]
        shardings = {leaf.sharding.num_devices for leaf in jax.tree.leaves(task.model.params)}
        assert shardings == {len(devices)}, shardings
        results[name] = (losses, [np.asarray(p) for p in jax.tree.leaves(task.model.params)])
    np.testing.assert_allclose(results["four"][0], results["one"][0], rtol=1e-5)
    for a, b in zip(results["four"][1], results["one"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print("losses", results["four"][0], results["one"][0])
    """
)


def with_model(builder: str) -> str:
    """`SCRIPT` with `model()` defined by `builder` (None: the experiment's model)."""
    return SCRIPT.replace("# MODEL\n", textwrap.dedent(builder))


FROM_CONFIG = """
def model():
    return None
"""


# Multi-grid patches are a batch axis: they shard over the devices like the batch.
MULTIGRID = """\
model:
  name: tfno
  n_modes: [8]
  hidden_channels: 8
  n_layers: 2
  multigrid: {levels: 2, padding: 0.125}
"""


# Micro-batches take every other entry: one of each device's two per part.
MICRO_BATCHES = """\
train:
  epochs: 3
  batch_size: 8
  micro_batches: 2
  rollout_steps: 3
  optimizer: {lr: 0.003}
  curriculum: {name: linear, end_epoch: 2}
"""


@pytest.mark.parametrize(
    "sections",
    [{}, {"model": MULTIGRID}, {"train": MICRO_BATCHES}],
    ids=["fno", "multigrid_tfno", "fno_micro_batches"],
)
def test_sharded_step_equals_single_device_step(burgers_file, tmp_path, sections):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(experiment_yaml(burgers_file, tmp_path / "runs", **sections))
    on_four_devices(with_model(FROM_CONFIG), experiment)


def on_four_devices(script: str, experiment) -> None:
    """Run `script` on `experiment` in a fresh interpreter with 4 forced host devices; it
    prints `losses` when its comparisons pass."""
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", script, str(experiment)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "losses" in result.stdout


# An Equinox module through the adapter: its arrays replicate and the batch shards as any
# model's parameters and batch do.
EQUINOX = """
import equinox as eqx

from surrogates.models import from_equinox


def model():
    first, second = jax.random.split(jax.random.key(0))
    layers = [
        eqx.nn.Conv1d(3, 8, 3, padding=1, key=first),
        eqx.nn.Lambda(jax.nn.gelu),
        eqx.nn.Conv1d(8, 1, 3, padding=1, key=second),
    ]
    return from_equinox(eqx.nn.Sequential(layers))
"""


def test_an_equinox_model_shards_and_trains_as_on_one_device(burgers_file, tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(experiment_yaml(burgers_file, tmp_path / "runs"))
    on_four_devices(with_model(EQUINOX), experiment)


PHYSICS_SCRIPT = textwrap.dedent(
    """
    import sys

    import jax
    import numpy as np
    from jax.sharding import Mesh

    from surrogates.config import load_experiment
    from surrogates.training import Trainer
    from surrogates.training.physics_task import PhysicsTask

    assert jax.device_count() == 4, jax.devices()
    experiment = load_experiment(sys.argv[1])
    results = {}
    for name, devices in (("four", jax.devices()), ("one", jax.devices()[:1])):
        task = PhysicsTask(experiment, mesh=Mesh(np.array(devices), ("data",)))
        trainer = Trainer(task, experiment.train)
        losses = [trainer.run_epoch(epoch)[0] for epoch in range(2)]
        results[name] = (losses, [np.asarray(p) for p in jax.tree.leaves(task.model.params)])
    np.testing.assert_allclose(results["four"][0], results["one"][0], rtol=1e-5)
    for a, b in zip(results["four"][1], results["one"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print("losses", results["four"][0])
    """
)


def test_collocation_points_shard_and_train_as_on_one_device(tmp_path):
    """The physics task's points are drawn inside the step and split over 4 devices: the
    same losses and weights as on one, with gradient-norm weights and causal chunks."""
    experiment = tmp_path / "physics.yaml"
    experiment.write_text(
        "name: sharded\ntask: physics\nproblem: {name: burgers}\n"
        "model: {name: pinn, hidden: 16, layers: 2}\n"
        "train:\n  epochs: 2\n  steps_per_epoch: 5\n"
        "  points: {residual: 256, initial: 32, boundary: 32}\n"
        "  balance: {name: grad_norm, every: 2}\n  causal: {chunks: 8}\n"
    )
    on_four_devices(PHYSICS_SCRIPT, experiment)
