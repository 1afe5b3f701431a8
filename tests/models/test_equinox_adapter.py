"""Equinox modules through `from_equinox`, and PDEquinox's architectures in the registry: the
same outputs and gradients as Equinox's own, one-line errors, and runs that train,
checkpoint, resume and re-evaluate like any model's."""

from __future__ import annotations

import importlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from surrogates.config import load_experiment
from surrogates.errors import ModelError
from surrogates.evaluation.results import read_results
from surrogates.models import ModelContext, build_stack
from surrogates.models.contract import check_grid
from surrogates.models.equinox_adapter import EquinoxConstant, from_equinox
from surrogates.runs import read_jsonl
from surrogates.workflow import evaluate, resume, train


class Rolled(eqx.Module):
    """A convolution whose output is rolled by an integer array (a leaf not to train)."""

    conv: eqx.nn.Conv2d
    shift: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.roll(self.conv(x), self.shift, axis=-1)


def rolled(seed: int) -> Rolled:
    conv = eqx.nn.Conv2d(3, 2, 3, padding=1, key=jax.random.key(seed))
    return Rolled(conv, jnp.asarray(2, jnp.int32))


def burgers_net(seed: int) -> eqx.Module:
    """A small periodic 1D conv net for the tiny Burgers runs: 3 history frames in, 1 out."""
    first, second = jax.random.split(jax.random.key(seed))
    return eqx.nn.Sequential(
        [
            eqx.nn.Conv1d(3, 8, 3, padding=1, padding_mode="CIRCULAR", key=first),
            eqx.nn.Lambda(jax.nn.gelu),
            eqx.nn.Conv1d(8, 1, 3, padding=1, padding_mode="CIRCULAR", key=second),
        ]
    )


def test_the_output_is_the_modules_sample_by_sample_channels_last():
    net = rolled(0)
    x = jax.random.normal(jax.random.key(1), (3, 8, 10, 3))
    expected = np.stack([np.moveaxis(np.asarray(net(np.moveaxis(s, -1, 0))), 0, -1) for s in x])
    model = from_equinox(net)
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6, atol=1e-6)
    params = nnx.state(model, nnx.Param)
    assert sorted(leaf.shape for leaf in jax.tree.leaves(params)) == [(2, 1, 1), (2, 3, 3, 3)]
    constants = jax.tree.leaves(nnx.state(model, EquinoxConstant))
    assert [int(c) for c in constants] == [2]


def test_an_adam_step_equals_the_one_on_equinox_filter_grad():
    net, x = rolled(0), jax.random.normal(jax.random.key(1), (4, 8, 10, 3))
    target = jax.random.normal(jax.random.key(2), (4, 8, 10, 2))
    tx = optax.adam(1e-2)

    def equinox_loss(module):
        out = jax.vmap(module)(jnp.moveaxis(x, -1, 1))
        return jnp.mean(jnp.square(out - jnp.moveaxis(target, -1, 1)))

    grads = eqx.filter_grad(equinox_loss)(net)
    state = tx.init(eqx.filter(net, eqx.is_inexact_array))
    updates, _ = tx.update(grads, state)
    stepped = eqx.apply_updates(net, updates)

    model = from_equinox(net)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    ours = nnx.grad(lambda m: jnp.mean(jnp.square(m(x) - target)))(model)
    optimizer.update(model, ours)
    for a, b in zip(
        jax.tree.leaves(eqx.filter(model.module(), eqx.is_array)),
        jax.tree.leaves(eqx.filter(stepped, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_anything_but_an_equinox_module_stops_in_one_line():
    with pytest.raises(ModelError, match=r"from_equinox: expected an equinox\.Module, got dict"):
        from_equinox({"weight": jnp.ones(3)})


def test_a_run_checkpoints_resumes_and_re_evaluates_an_equinox_model(make_experiment):
    """Two epochs then one more by `resume` end where three epochs end; the checkpoint put
    into a differently initialised module re-evaluates to the run's own numbers."""
    path = make_experiment(train="train:\n  epochs: 3\n  batch_size: 4\n  rollout_steps: 2\n")
    net, x = burgers_net(0), jnp.ones((3, 32))
    before = np.asarray(net(x))
    whole = train(load_experiment(path), progress=False, model=from_equinox(net))
    # Training donates the adapter's buffers, not those of the module passed in.
    np.testing.assert_array_equal(np.asarray(net(x)), before)
    part = train(
        load_experiment(path, ["train.epochs=2"]),
        progress=False,
        model=from_equinox(burgers_net(0)),
    )
    resume(part, progress=False, overrides=["train.epochs=3"], model=from_equinox(burgers_net(5)))
    losses = [[r["train_loss"] for r in read_jsonl(f / "metrics.jsonl")] for f in (whole, part)]
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    assert losses[0][-1] < losses[0][0]
    loaded = from_equinox(burgers_net(7))
    again = evaluate(whole, model=loaded)
    first, second = (read_results(f / "eval.nc")["nrmse"].values for f in (whole, again))
    np.testing.assert_array_equal(first, second)


def test_the_model_built_by_hand_holds_the_selected_weights_afterwards(
    make_experiment, burgers_file
):
    """`train` and `evaluate` put the selected checkpoint's weights into the model passed in
    (the steps donated its own buffers): the two agree, and differ from the start. The
    evaluation of `eval.other_files` after training uses that model too, not the config's."""
    path = make_experiment(
        train="train:\n  epochs: 2\n  batch_size: 4\n  select: last\n",
        eval=f"eval:\n  batch_size: 4\n  other_files: {{all: [{burgers_file}]}}\n",
    )
    trained, x = from_equinox(burgers_net(0)), jnp.ones((2, 32, 3))
    folder = train(load_experiment(path), progress=False, model=trained)
    loaded = from_equinox(burgers_net(9))
    again = evaluate(folder, data=[burgers_file], model=loaded)
    np.testing.assert_array_equal(np.asarray(trained(x)), np.asarray(loaded(x)))
    assert not np.allclose(np.asarray(trained(x)), np.asarray(from_equinox(burgers_net(0))(x)))
    other, own = (
        read_results(f / "eval.nc")["nrmse"].values for f in (folder / "evaluations" / "all", again)
    )
    np.testing.assert_array_equal(other, own)


def test_a_pdequinox_model_is_pdequinoxs_network_with_the_key_of_its_rngs():
    from pdequinox.arch import ConvNet

    context = ModelContext(
        in_channels=4, out_channels=2, spatial_shape=(16,), boundary=("periodic",)
    )
    ours = build_stack(
        "pdeqx_conv", {"hidden_channels": 4, "depth": 2}, [], context, rngs=nnx.Rngs(3)
    )
    theirs = ConvNet(1, 4, 2, hidden_channels=4, depth=2, key=nnx.Rngs(3).params())
    x = jax.random.normal(jax.random.key(0), (2, 16, 4))
    expected = np.moveaxis(np.asarray(jax.vmap(theirs)(jnp.moveaxis(x, -1, 1))), 1, -1)
    np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "arguments", "boundary", "message"),
    [
        ("pdeqx_conv", {}, ("open",), r"pdeqx_conv: PDEquinox takes one boundary .*open"),
        ("pdeqx_conv", {}, ("periodic", "wall"), r"the data's are periodic, wall"),
        ("pdeqx_resnet", {"activation": "relu6x"}, ("periodic",), r"'relu6x' is no function"),
        ("pdeqx_fno", {"dephth": 2}, ("periodic",), r"has no argument 'dephth'"),
    ],
)
def test_pdequinox_settings_that_cannot_work_stop_in_one_line(name, arguments, boundary, message):
    context = ModelContext(
        in_channels=2, out_channels=1, spatial_shape=(16,) * len(boundary), boundary=boundary
    )
    with pytest.raises(ModelError, match=message):
        build_stack(name, arguments, [], context, rngs=nnx.Rngs(0))


def test_grids_a_pdequinox_unet_or_fno_cannot_take_name_the_key(monkeypatch):
    context = ModelContext(
        in_channels=2, out_channels=1, spatial_shape=(12,), boundary=("periodic",)
    )
    unet = build_stack(
        "pdeqx_unet", {"num_levels": 3, "hidden_channels": 2}, [], context, rngs=nnx.Rngs(0)
    )
    with pytest.raises(ModelError, match=r"divisible by 8.*model\.num_levels"):
        check_grid(unet, (12,))
    fno = build_stack(
        "pdeqx_fno", {"num_modes": 8, "hidden_channels": 2}, [], context, rngs=nnx.Rngs(0)
    )
    with pytest.raises(ModelError, match=r"num_modes 8 exceeds the 7 modes.*model\.num_modes"):
        check_grid(fno, (12,))
    real_import = importlib.import_module

    def without_pdequinox(name: str, *args):
        if name == "pdequinox.arch":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_pdequinox)
    with pytest.raises(ModelError, match=r"pdeqx_conv: PDEquinox is not installed.*\[ape\]"):
        build_stack("pdeqx_conv", {}, [], context, rngs=nnx.Rngs(0))


def test_a_pdequinox_model_from_a_config_trains_and_re_evaluates(make_experiment):
    """`evaluate` rebuilds the model from the run's config and reproduces its errors."""
    model = "model: {name: pdeqx_conv, hidden_channels: 8, depth: 2}\n"
    path = make_experiment(model=model, train="train:\n  epochs: 2\n  batch_size: 4\n")
    folder = train(load_experiment(path), progress=False)
    losses = [r["train_loss"] for r in read_jsonl(folder / "metrics.jsonl")]
    assert losses[1] < losses[0]
    again = evaluate(folder)
    first, second = (read_results(f / "eval.nc")["nrmse"].values for f in (folder, again))
    np.testing.assert_array_equal(first, second)
