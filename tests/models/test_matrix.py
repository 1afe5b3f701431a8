"""One test matrix over the registry: every registered model x 1D and 2D x no wrapper or each
registered wrapper. A model joins by registering (with an `example(spatial_dims)` classmethod
giving a small instance's arguments, None for a dimension it does not support).

For each: the output shape, with PDE parameters accepted alongside the input; in the model's
lowest dimension, jit equal to eager (the model alone); in its highest, one compiled training
step, a short rollout and a checkpoint round trip. Wrappers pass the parameters on to the
model inside. Compiling is most of the cost and a model's code is the same in every
dimension, so each model gets the eager check once and the training checks once; the
wrappers get the training checks around one spectral and one convolutional model (and
MG-TFNO, multigrid around the TFNO), and every other pairing the output shape (evaluated
abstractly, without compiling).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from surrogates.models import ModelContext, available, build_stack, get, wrapper, wrappers
from surrogates.models.contract import check_grid
from surrogates.training.checkpoints import Checkpoints
from surrogates.training.optimizers import make_optimizer
from surrogates.training.stepper import Stepper, rollout
from surrogates.training.steps import make_train_step

HISTORY, CHANNELS, BATCH = 2, 2, 2
SIZES = {1: (16,), 2: (16, 16)}
FULLY_WRAPPED = {("fno", "multigrid"), ("fno", "cape"), ("unet", "multigrid"), ("unet", "cape")}
FULLY_WRAPPED.add(("tfno", "multigrid"))


def cases() -> list[tuple[str, int, str | None]]:
    stacks = [None, *wrappers()]
    return [
        (name, dims, kind)
        for name, dims, kind in itertools.product(available("operator"), (1, 2), stacks)
        if get(name).example(dims) is not None
    ]


def test_every_model_and_wrapper_gives_an_example():
    for name in available("operator"):
        assert callable(getattr(get(name), "example", None)), f"{name} has no example()"
    for kind in wrappers():
        assert callable(getattr(wrapper(kind), "example", None)), f"{kind} has no example()"


def context(dims: int) -> ModelContext:
    return ModelContext(
        in_channels=HISTORY * CHANNELS,
        out_channels=CHANNELS,
        spatial_shape=SIZES[dims],
        boundary=("periodic",) * dims,
        param_names=("nu",),
    )


def stack(name: str, dims: int, kind: str | None) -> nnx.Module:
    layers = [] if kind is None else [(kind, wrapper(kind).example(dims))]
    model = build_stack(name, get(name).example(dims), layers, context(dims), rngs=nnx.Rngs(0))
    check_grid(model, SIZES[dims])
    return model


@pytest.mark.parametrize(("name", "dims", "kind"), cases(), ids=lambda v: str(v))
def test_registry_matrix(name, dims, kind, tmp_path):
    rng = np.random.default_rng(dims)
    model = stack(name, dims, kind)
    x = jnp.asarray(rng.normal(size=(BATCH, *SIZES[dims], HISTORY * CHANNELS)), jnp.float32)
    pde_params = jnp.asarray(rng.normal(size=(BATCH, 1)), jnp.float32)

    # Output shape, with PDE parameters alongside; jit equal to eager for the model alone
    # (eager runs compile every operation apart: a wrapper's own are in its tests).
    graphdef, state = nnx.split(model)
    trains = dims == max(d for d in SIZES if get(name).example(d) is not None)
    if kind is not None and ((name, kind) not in FULLY_WRAPPED or not trains):
        shape = jax.eval_shape(
            lambda s, x, p: nnx.merge(graphdef, s)(x, pde_params=p), state, x, pde_params
        )
        assert shape.shape == (BATCH, *SIZES[dims], CHANNELS)
        return
    jitted = jax.jit(lambda s, x, p: nnx.merge(graphdef, s)(x, pde_params=p))(state, x, pde_params)
    assert jitted.shape == (BATCH, *SIZES[dims], CHANNELS)
    if kind is None and dims == min(d for d in SIZES if get(name).example(d) is not None):
        np.testing.assert_allclose(jitted, model(x, pde_params=pde_params), rtol=1e-5, atol=1e-5)
    if not trains:
        return

    # One compiled training step behind a stepper, then a short rollout.
    stepper = Stepper(model, history=HISTORY, channels=CHANNELS, pde_mean=[0.0], pde_std=[1.0])
    graphdef, params, rest = nnx.split(stepper, nnx.Param, ...)
    tx = make_optimizer("adam", optax.constant_schedule(1e-3))
    step = make_train_step(
        graphdef, tx, window=HISTORY + 1, loss="mse", pushforward=False, remat=False
    )
    fields = jnp.asarray(rng.normal(size=(3, 5, *SIZES[dims], CHANNELS)), jnp.float32)
    table = jnp.asarray(rng.normal(size=(3, 1)), jnp.float32)
    before = jax.tree.map(np.asarray, params)
    trained, _, loss = step(
        jax.tree.map(jnp.copy, params),
        tx.init(params),
        rest,
        np.zeros(2, np.int32),
        fields,
        table,
        None,
        jnp.array([0, 2]),
        jnp.array([1, 0]),
        jnp.asarray(0),
    )
    assert np.isfinite(float(loss))
    if jax.tree.leaves(before):
        assert any(
            not np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(trained), strict=True)
        )
    frames = rollout(
        nnx.merge(graphdef, trained, rest), fields[:2, :HISTORY], 3, pde_params=table[:2]
    )
    assert frames.shape == (2, 3, *SIZES[dims], CHANNELS) and np.all(np.isfinite(frames))

    # Checkpoint round trip of the model's state.
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    checkpoints.save((trained, rest), {"count": jnp.zeros(())}, {"epoch": 1}, best=False)
    zeros = jax.tree.map(jnp.zeros_like, (trained, rest))
    restored, _, meta = checkpoints.restore(zeros)
    checkpoints.close()
    assert meta["epoch"] == 1
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves((trained, rest)), strict=True):
        np.testing.assert_array_equal(a, b)


class Echo(nnx.Module):
    """Zeros, noting the PDE parameters that reached it: what a wrapper passed inside."""

    def __init__(self, out_channels: int, seen: list):
        self.out_channels = out_channels
        self.seen = seen

    def __call__(self, x, *, pde_params=None):
        self.seen.append(np.asarray(pde_params))
        return jnp.zeros((*x.shape[:-1], self.out_channels))


@pytest.mark.parametrize("kind", wrappers())
@pytest.mark.parametrize("dims", [1, 2])
def test_wrappers_pass_pde_params_to_the_model_inside(kind, dims):
    cls, options = wrapper(kind), wrapper(kind).example(dims)
    outer = ModelContext(CHANNELS, CHANNELS, SIZES[dims], ("periodic",) * dims, ("nu",))
    seen: list = []
    inner = Echo(cls.inner_context(outer, **options).out_channels, seen)
    model = cls(inner, **outer.constructor_arguments(cls, nnx.Rngs(0)), **options)
    pde_params = np.asarray([[0.5], [1.5], [2.0]], np.float32)
    out = model(jnp.ones((3, *SIZES[dims], CHANNELS)), pde_params=jnp.asarray(pde_params))
    assert out.shape == (3, *SIZES[dims], CHANNELS)
    # Each sample's parameters, once per sample or once per piece of it (multi-grid patches,
    # batch-major).
    (received,) = seen
    copies = received.shape[0] // 3
    np.testing.assert_allclose(received, np.repeat(pde_params, copies, axis=0))
