"""The physics task on the trainer: runs, their files, resume, loss weights, phases, errors."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr
from flax import nnx

from surrogates.config import load_experiment
from surrogates.errors import ConfigError, ModelError
from surrogates.evaluation.results import read_results
from surrogates.runs import read_jsonl
from surrogates.training import Trainer
from surrogates.training.physics_task import (
    PhysicsTask,
    _balanced,
    _causal,
    collocation_key,
)
from surrogates.workflow import evaluate, resume, train

CONVECTION = """
name: {name}
task: physics
problem: {{name: convection, beta: 2}}
model: {{name: pinn, hidden: 16, layers: 2}}
train:
  epochs: {epochs}
  steps_per_epoch: 10
  points: {{residual: 128, initial: 32, boundary: 32}}
  optimizer: {{lr: 0.01}}
{extra}
run: {{root: {root}}}
"""


def experiment_file(tmp_path, name="conv", epochs=2, extra=""):
    path = tmp_path / f"{name}.yaml"
    text = CONVECTION.format(name=name, epochs=epochs, extra=extra, root=tmp_path / "runs")
    path.write_text(text)
    return path


def test_a_run_writes_its_prediction_and_errors_that_recompute(tmp_path):
    folder = train(load_experiment(experiment_file(tmp_path)), progress=False)
    prediction = xr.load_dataset(folder / "prediction.nc", engine="h5netcdf")
    assert set(prediction.data_vars) == {"prediction_u", "reference_u"}
    assert prediction["prediction_u"].dims == ("t", "x")
    t, x = prediction["t"].values, prediction["x"].values
    np.testing.assert_allclose(
        prediction["reference_u"].values, np.sin(x[None, :] - 2 * t[:, None]), atol=1e-12
    )
    error = prediction["prediction_u"].values - prediction["reference_u"].values
    results = read_results(folder / "eval.nc")
    expected = np.linalg.norm(error) / np.linalg.norm(prediction["reference_u"].values)
    np.testing.assert_allclose(float(results["rel_l2"].values.squeeze()), expected, rtol=1e-6)
    np.testing.assert_allclose(float(results["max"].values.squeeze()), np.abs(error).max())
    by_time = read_results(folder / "eval_by_time.nc")
    slice_errors = np.linalg.norm(error, axis=1) / np.linalg.norm(
        prediction["reference_u"].values, axis=1
    )
    np.testing.assert_allclose(by_time["rel_l2"].values[0, :, 0], slice_errors, rtol=1e-6)
    log = read_jsonl(folder / "metrics.jsonl")
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[-1]["rel_l2"] == pytest.approx(expected, rel=1e-6)
    facts = json.loads((folder / "data.json").read_text())
    assert facts["points_per_step"] == {"residual": 128, "initial": 32, "boundary": 32}
    assert (folder / "figures" / "solution.png").stat().st_size > 0
    assert "rel_l2" in (folder / "summary.md").read_text()


def test_resume_continues_exactly_with_balanced_weights(tmp_path):
    """Gradient-norm weights live in the optimizer state: a run stopped after epoch 1 and
    resumed ends where the uninterrupted run ends."""
    extra = "  balance: {name: grad_norm, every: 3}"
    whole = train(load_experiment(experiment_file(tmp_path, "whole", 2, extra)), progress=False)
    part = train(load_experiment(experiment_file(tmp_path, "part", 1, extra)), progress=False)
    resume(part, progress=False, overrides=["train.epochs=2"])
    losses = [[r["train_loss"] for r in read_jsonl(f / "metrics.jsonl")] for f in (whole, part)]
    assert losses[0] == losses[1]
    errors = [float(read_results(f / "eval.nc")["rel_l2"].squeeze()) for f in (whole, part)]
    assert errors[0] == errors[1]


def test_points_are_drawn_per_block_of_steps_and_fixed_in_a_line_search_phase():
    same = collocation_key(0, jnp.int32(6), 3, 0), collocation_key(0, jnp.int32(8), 3, 1)
    other = collocation_key(0, jnp.int32(9), 3, 0)
    data = [jax.random.key_data(k) for k in (*same, other)]
    np.testing.assert_array_equal(data[0], data[1])
    assert not np.array_equal(data[0], data[2])
    fixed = [jax.random.key_data(collocation_key(0, jnp.int32(n), None, 1)) for n in (5, 50)]
    np.testing.assert_array_equal(*fixed)


def test_causal_weighting_follows_its_formula():
    rng = np.random.default_rng(0)
    squared = rng.random(12)

    class Spec:
        epsilon, chunks = 2.0, 4

    chunk = squared.reshape(4, 3).mean(axis=1)
    weights = np.exp(-2.0 * np.concatenate([[0.0], np.cumsum(chunk)[:-1]]))
    expected = np.mean(weights * chunk)
    np.testing.assert_allclose(_causal(jnp.asarray(squared), Spec), expected, rtol=1e-6)


def test_gradient_norm_weights_follow_their_formula():
    params = {"a": jnp.asarray([1.0, 2.0]), "b": jnp.asarray(3.0)}

    def losses(p, rest, points):
        return jnp.stack([jnp.sum(p["a"] ** 2) * points, p["b"] * p["a"][0]])

    grads = [jax.grad(lambda p, i=i: losses(p, None, 2.0)[i])(params) for i in range(2)]
    norms = np.array([np.sqrt(sum(np.sum(np.square(v)) for v in g.values())) for g in grads])
    target = norms.mean() / norms
    weights = jnp.asarray([1.0, 1.0])
    moved = _balanced(losses, params, None, 2.0, weights, 0.9)
    np.testing.assert_allclose(moved, 0.9 + 0.1 * target, rtol=1e-5)


def test_adam_then_lbfgs_keeps_the_balanced_weights_and_lowers_the_loss(tmp_path):
    extra = """  balance: {name: grad_norm, every: 5}
  phases:
    - {epochs: 2, optimizer: {name: adam, lr: 0.01}}
    - {epochs: 1, optimizer: {name: lbfgs}}"""
    text = experiment_file(tmp_path, epochs=3, extra=extra).read_text()
    text = text.replace("  optimizer: {lr: 0.01}\n", "").replace("epochs: 3", "epochs: 3")
    path = tmp_path / "phases.yaml"
    path.write_text(text)
    experiment = load_experiment(path)
    task = PhysicsTask(experiment)
    trainer = Trainer(task, experiment.train)
    losses = [trainer.run_epoch(epoch)[0] for epoch in range(2)]
    weights = np.asarray(trainer.opt_state["weights"])
    assert not np.allclose(weights, 1.0)
    losses.append(trainer.run_epoch(2)[0])
    np.testing.assert_array_equal(np.asarray(trainer.opt_state["weights"]), weights)
    assert losses[2] < losses[1]


PHASES = """  phases:
    - {epochs: 1, optimizer: {name: adam, lr: 0.01}}
    - {epochs: 1, optimizer: {name: lbfgs}, resample_every: 5,
       points: {residual: 256, initial: 64, boundary: 64}}
    - {epochs: 1, optimizer: {name: lbfgs}}"""


def test_a_phase_draws_its_own_points_and_resamples_only_when_told(tmp_path):
    """Phase 1 draws its own counts anew every 5 steps; phase 2 (L-BFGS by default) keeps
    one draw: the loss each compiled step reports is the loss at the draw expected."""
    text = experiment_file(tmp_path, epochs=3, extra=PHASES).read_text()
    path = tmp_path / "phases.yaml"
    path.write_text(text.replace("  optimizer: {lr: 0.01}\n", ""))
    task = PhysicsTask(load_experiment(path))
    assert task.facts()["points_per_phase"] == [
        {"residual": 128, "initial": 32, "boundary": 32},
        {"residual": 256, "initial": 64, "boundary": 64},
        {"residual": 128, "initial": 32, "boundary": 32},
    ]
    losses, weights = jax.jit(task._term_losses()), jnp.asarray(task.initial_weights())
    tx = optax.sgd(0.0)

    def reported(epoch, steps):
        """The loss the phase's compiled step reports at each of `steps` of `epoch`."""
        task.start_epoch(epoch)
        step, values = task.make_step(tx), []
        for number in steps:
            # The step donates its parameters and state: fresh copies for each call.
            params, state = jax.tree.map(jnp.copy, task.model.params), task.optimizer_state(tx)
            counter = np.asarray([epoch, number], np.int32)
            values.append(float(step(params, state, task.model.rest, counter)[2]))
        return values

    def expected(phase, number, every):
        key = collocation_key(0, jnp.int32(number), every, phase)
        points = task._sampler(task.counts(phase))(key)
        assert points[0].shape == (task.counts(phase)[0], 2)
        return float(jnp.sum(weights * losses(task.model.params, task.model.rest, points)))

    for epoch, steps, every in [(1, (3, 5), 5), (2, (0, 7), None)]:
        wanted = [expected(epoch, 10 * epoch + step, every) for step in steps]
        assert reported(epoch, steps) == pytest.approx(wanted, rel=1e-5)
    assert expected(1, 13, 5) == expected(1, 14, 5) != expected(1, 15, 5)
    assert expected(2, 20, None) == expected(2, 27, None)
    assert task.counts(1)[0] == 256


def test_causal_chunks_must_divide_each_phases_points(tmp_path):
    extra = "  causal: {chunks: 32}\n" + PHASES.replace("residual: 256", "residual: 250")
    text = experiment_file(tmp_path, epochs=3, extra=extra).read_text()
    path = tmp_path / "phases.yaml"
    path.write_text(text.replace("  optimizer: {lr: 0.01}\n", ""))
    with pytest.raises(ConfigError, match=r"causal\.chunks \(32\) must divide phases\.1\.points"):
        load_experiment(path)


def test_causal_points_divide_into_chunks_on_any_device_count(tmp_path):
    """42 residual points in 6 causal chunks pass the config's check; rounding them up to a
    multiple of 4 devices alone (44) made the chunking fail in the step."""
    from types import SimpleNamespace

    path = experiment_file(tmp_path, extra="  causal: {chunks: 6}\n")
    path.write_text(path.read_text().replace("residual: 128", "residual: 42"))
    terms = [
        SimpleNamespace(name="residual", causal=True),
        SimpleNamespace(name="initial", causal=False),
    ]
    four_devices = SimpleNamespace(size=4)
    task = SimpleNamespace(experiment=load_experiment(path), terms=terms, mesh=four_devices)
    assert PhysicsTask.counts(task) == [48, 32]  # 48: the least multiple of 4 and 6 from 42


def test_a_typo_in_a_weight_names_the_terms(tmp_path):
    path = experiment_file(tmp_path, extra="  weights: {intial: 10}")
    with pytest.raises(ConfigError, match=r"train.weights.intial: .*initial"):
        PhysicsTask(load_experiment(path))


def test_models_of_the_other_kind_and_wrong_problems_stop_in_one_line(tmp_path):
    path = experiment_file(tmp_path)
    with pytest.raises(ConfigError, match=r"model\.name: 'fno' is a model of kind operator"):
        load_experiment(path, ["model={name: fno}"])
    with pytest.raises(ConfigError, match=r"problem\.bta: convection has no parameter"):
        load_experiment(path, ["problem.bta=3"])
    with pytest.raises(ConfigError, match="unknown problem 'convektion'"):
        load_experiment(path, ["problem.name=convektion"])
    with pytest.raises(ModelError, match="'pinn' is a model of kind pointwise"):
        from surrogates.models import ModelContext, build_stack

        context = ModelContext(1, 1, (8,), ("periodic",))
        build_stack("pinn", {}, [], context, rngs=nnx.Rngs(0))


def test_a_physics_run_is_evaluated_on_its_grid_only(tmp_path):
    folder = train(load_experiment(experiment_file(tmp_path, epochs=1)), progress=False)
    with pytest.raises(ConfigError, match="--data and --stride-x apply to operator runs"):
        evaluate(folder, stride_x=2)
    again = evaluate(folder)
    first = read_results(folder / "eval.nc")["rel_l2"].values
    np.testing.assert_array_equal(read_results(again / "eval.nc")["rel_l2"].values, first)


def test_the_step_optimises_every_term(tmp_path):
    """One Adam step lowers each term of a fixed draw (the weights reach every term)."""
    experiment = load_experiment(experiment_file(tmp_path))
    task = PhysicsTask(experiment)
    losses = task._term_losses()
    points = task._sampler()(collocation_key(0, jnp.int32(0), 1, 0))
    before = losses(task.model.params, task.model.rest, points)
    tx = optax.sgd(1e-3)
    state = task.optimizer_state(tx)
    step = task.make_step(tx)
    params, _, _ = step(task.model.params, state, task.model.rest, np.zeros(2, np.int32))
    after = losses(params, task.model.rest, points)
    assert before.shape == (3,)
    assert np.all(np.asarray(after) < np.asarray(before))


def test_the_record_sums_the_points_of_conditions_that_share_a_name(tmp_path):
    """Helmholtz's four sides share `points.boundary`: the run records their sum."""
    path = tmp_path / "helmholtz.yaml"
    path.write_text(
        "name: h\ntask: physics\nproblem: {name: helmholtz}\nmodel: {name: pinn}\n"
        "train: {points: {residual: 64, boundary: 40}}\n"
    )
    task = PhysicsTask(load_experiment(path))
    assert [t.name for t in task.terms].count("boundary") == 4
    assert task.facts()["points_per_step"] == {"residual": 64, "boundary": 40}


def test_causal_weighting_of_a_problem_without_time_is_refused(tmp_path):
    path = experiment_file(tmp_path, extra="  causal: {chunks: 8}\n")
    path.write_text(path.read_text().replace("{name: convection, beta: 2}", "{name: helmholtz}"))
    with pytest.raises(ConfigError, match=r"train\.causal: helmholtz has no time axis"):
        load_experiment(path)
