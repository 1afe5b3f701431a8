"""The stepper and the compiled step against hand-unrolled NumPy computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from surrogates.models import FNO, Persistence
from surrogates.models.contract import record_auxiliary
from surrogates.training.stepper import Stepper, rollout
from surrogates.training.steps import (
    gather_windows,
    make_train_step,
    micro_batched_value_and_grad,
    rollout_loss,
    step_loss,
)


class Scale(nnx.Module):
    """Next frame = a * last frame: one parameter, easy to differentiate by hand."""

    def __init__(self, channels: int, a: float = 0.9):
        self.channels = channels
        self.a = nnx.Param(jnp.asarray(a))

    def __call__(self, x, *, pde_params=None):
        return self.a[...] * x[..., -self.channels :]


class Channels(nnx.Module):
    """Returns the input channels `indices` (to see how the history is stacked)."""

    def __init__(self, *indices: int):
        self.indices = indices

    def __call__(self, x, *, pde_params=None):
        return x[..., list(self.indices)]


# The trainer's [epoch, step]: keys only the noise and the gradient penalty.
COUNTER = np.zeros(2, np.int32)


def windows(batch=2, frames=6, space=5, channels=1, seed=0) -> np.ndarray:
    return (
        np.random.default_rng(seed).normal(size=(batch, frames, space, channels)).astype(np.float32)
    )


def steps_in_parts(stepper, tx, batch, n_ar, parts, *, window, loss="mse"):
    """The compiled step's `(params, opt_state, loss)` for `stepper`'s parameters (copied each
    time) on `batch = (fields, rows, starts)`, for each number of micro-batches in `parts`."""
    graphdef, params, rest = nnx.split(stepper, nnx.Param, ...)
    fields, rows, starts = batch
    results = []
    for m in parts:
        step = make_train_step(
            graphdef, tx, window=window, loss=loss, pushforward=False, remat=False, micro_batches=m
        )
        copy = jax.tree.map(jnp.copy, params)
        results.append(
            step(copy, tx.init(copy), rest, COUNTER, fields, None, None, rows, starts, n_ar)
        )
    return results


def unrolled(a: float, w: np.ndarray, history: int, n_ar: int) -> tuple[float, float]:
    """CAPE's loop by hand for the Scale model: the mean MSE and, treating fed-back frames as
    constants (pushforward), its derivative in a.
    """
    window, losses, grads = w[:, :history], [], []
    for k in range(w.shape[1] - history):
        target = w[:, history + k]
        pred = a * window[:, -1]
        losses.append(np.mean((pred - target) ** 2))
        grads.append(np.mean(2 * (pred - target) * window[:, -1]))
        frame = pred if k < n_ar else target
        window = np.concatenate([window[:, 1:], frame[:, None]], axis=1)
    return float(np.mean(losses)), float(np.mean(grads))


@pytest.mark.parametrize("n_ar", [0, 1, 3, 4])
def test_rollout_loss_feeds_back_the_first_n_ar_predictions(n_ar):
    w = windows()
    stepper = Stepper(Scale(1), history=2, channels=1)
    loss = rollout_loss(
        stepper, jnp.asarray(w), jnp.asarray(n_ar), loss="mse", pushforward=False, remat=False
    )
    assert float(loss) == pytest.approx(unrolled(0.9, w, 2, n_ar)[0], rel=1e-5)


def loss_and_grad(w: np.ndarray, n_ar: int, **options):
    graphdef, params, rest = nnx.split(Stepper(Scale(1), history=2, channels=1), nnx.Param, ...)

    def loss(p):
        stepper = nnx.merge(graphdef, p, rest)
        return rollout_loss(stepper, jnp.asarray(w), jnp.asarray(n_ar), loss="mse", **options)

    value, grads = jax.value_and_grad(loss)(params)
    return float(value), float(grads["model"]["a"][...])


def test_pushforward_stops_gradients_through_fed_back_frames():
    w = windows(seed=1)
    value, grad = loss_and_grad(w, 4, pushforward=True, remat=False)
    expected_value, expected_grad = unrolled(0.9, w, 2, 4)
    assert value == pytest.approx(expected_value, rel=1e-5)
    assert grad == pytest.approx(expected_grad, rel=1e-4)
    # Without pushforward the gradient also flows through the fed-back predictions: it is
    # the derivative of the whole rollout loss (checked by central differences).
    _, full = loss_and_grad(w, 4, pushforward=False, remat=False)
    h = 1e-3
    numeric = (unrolled(0.9 + h, w, 2, 4)[0] - unrolled(0.9 - h, w, 2, 4)[0]) / (2 * h)
    assert full == pytest.approx(numeric, rel=1e-3)
    assert abs(full - grad) > 1e-3


@pytest.mark.parametrize("remat", [False, True])
def test_a_one_step_rollout_loss_and_its_gradient_follow_the_formula(remat):
    """One target frame (one-step training) takes the path without a loop."""
    w = windows(seed=3)[:, :3]
    value, grad = loss_and_grad(w, 1, pushforward=False, remat=remat)
    expected_value, expected_grad = unrolled(0.9, w, 2, 1)
    assert value == pytest.approx(expected_value, rel=1e-5)
    assert grad == pytest.approx(expected_grad, rel=1e-4)


def test_remat_changes_nothing_but_memory():
    w = windows(seed=2)
    assert loss_and_grad(w, 2, pushforward=False, remat=True) == pytest.approx(
        loss_and_grad(w, 2, pushforward=False, remat=False), rel=1e-6
    )


def test_losses_match_their_formulas():
    rng = np.random.default_rng(3)
    pred, target = rng.normal(size=(2, 2, 4, 3, 2)).astype(np.float32)
    stepper = Stepper(
        Scale(2), history=1, channels=2, mean=np.array([1.0, -2.0]), std=np.array([2.0, 0.5])
    )
    scaled = ((pred - [1.0, -2.0]) / [2.0, 0.5]) - ((target - [1.0, -2.0]) / [2.0, 0.5])
    assert float(step_loss("mse", stepper, pred, target)) == pytest.approx(
        np.mean(scaled**2), rel=1e-5
    )
    error = np.sqrt(((pred - target) ** 2).sum(axis=(1, 2)))
    norm = np.sqrt((target**2).sum(axis=(1, 2)))
    assert float(step_loss("rel_l2", stepper, pred, target)) == pytest.approx(
        np.mean(error / norm), rel=1e-5
    )


def test_stepper_stacks_history_time_major_and_normalises():
    w = windows(batch=1, frames=3, channels=2)
    mean, std = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    # Stacked channel h * C + c is frame h, field c: 3 is (frame 1, field 1), 0 is (0, 0).
    stepper = Stepper(Channels(3, 0), history=2, channels=2, mean=mean, std=std)
    out = np.asarray(stepper(jnp.asarray(w[:, :2])))
    normalised = (w - mean) / std
    np.testing.assert_allclose(out[..., 0], normalised[:, 1, :, 1] * std[0] + mean[0], rtol=1e-5)
    np.testing.assert_allclose(out[..., 1], normalised[:, 0, :, 0] * std[1] + mean[1], rtol=1e-5)
    last = Stepper(Persistence(4, 2), history=2, channels=2, mean=mean, std=std)(
        jnp.asarray(w[:, :2])
    )
    np.testing.assert_allclose(last, w[:, 1], rtol=1e-5, atol=1e-6)
    residual = Stepper(Scale(2, a=0.0), history=2, channels=2, residual=True)(jnp.asarray(w[:, :2]))
    np.testing.assert_allclose(residual, w[:, 1], rtol=1e-6)


def test_rollout_repeats_the_model():
    w = windows(batch=2, frames=2)
    frames = rollout(Stepper(Scale(1, a=0.5), history=2, channels=1), jnp.asarray(w), 3)
    expected = np.stack([w[:, 1] * 0.5**k for k in (1, 2, 3)], axis=1)
    np.testing.assert_allclose(frames, expected, rtol=1e-6)


def test_gather_windows_and_donated_step():
    fields = jnp.asarray(windows(batch=4, frames=8, seed=5))
    rows, starts = jnp.array([3, 0, 3]), jnp.array([1, 4, 0])
    got = gather_windows(fields, rows, starts, 4)
    np.testing.assert_array_equal(got, np.stack([fields[3, 1:5], fields[0, 4:8], fields[3, 0:4]]))
    graphdef, params, rest = nnx.split(Stepper(Scale(1), history=2, channels=1), nnx.Param, ...)
    tx = optax.sgd(0.1)
    step = make_train_step(graphdef, tx, window=4, loss="mse", pushforward=False, remat=False)
    new_params, _, loss = step(
        params, tx.init(params), rest, COUNTER, fields, None, None, rows, starts, jnp.asarray(1)
    )
    assert float(loss) == pytest.approx(unrolled(0.9, np.asarray(got), 2, 1)[0], rel=1e-5)
    # The parameters were donated: the old buffers are gone, the new ones moved by SGD.
    assert jax.tree.leaves(params)[0].is_deleted()
    assert float(new_params["model"]["a"][...]) != pytest.approx(0.9)


def test_micro_batches_see_interleaved_parts_and_average_to_the_whole_batch():
    seen = []

    def fun(params, batch, scale):
        x, nothing = batch
        assert nothing is None
        seen.append(x.shape)
        return scale * jnp.mean(jnp.sin(params["w"] * x[:, 0]) + x[:, 1] ** 2)

    params = {"w": jnp.asarray(0.7)}
    x = jnp.asarray(np.random.default_rng(2).normal(size=(12, 2)), jnp.float32)
    whole = jax.value_and_grad(fun)(params, (x, None), 3.0)
    for m in (2, 3, 12):
        got = jax.jit(micro_batched_value_and_grad(fun, m))(params, (x, None), 3.0)
        assert seen[-1] == (12 // m, 2)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(whole), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5)

    # Part j holds entries j, j + m, ...: a function of the part's first entry tells.
    def first(params, batch):
        return params["w"] * batch[0, 0]

    value, _ = micro_batched_value_and_grad(first, 3)(params, x)
    assert float(value) == pytest.approx(0.7 * float(jnp.mean(x[:3, 0])), rel=1e-5)


def test_prepared_once_gives_the_gradient_of_preparing_in_every_part():
    # fun uses prepare(params) = (w^2 * s, tanh(w)) when given it, else computes it itself.
    def prepare(params, s):
        return {"square": params["w"] ** 2 * s, "tanh": jnp.tanh(params["w"])}

    def fun(params, batch, s, *, prepared=None):
        prepared = prepare(params, s) if prepared is None else prepared
        w2, t = prepared["square"], prepared["tanh"]
        return jnp.mean(jnp.sin(batch @ w2) * t[0] + params["b"] * batch[:, 1] ** 2)

    params = {"w": jnp.asarray([0.3, -0.8, 1.1]), "b": jnp.asarray(0.5)}
    x = jnp.asarray(np.random.default_rng(3).normal(size=(8, 3)), jnp.float32)
    whole = jax.value_and_grad(fun)(params, x, 1.5)
    for m in (2, 4):
        got = jax.jit(micro_batched_value_and_grad(fun, m, prepare))(params, x, 1.5)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(whole), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("loss", "factorization"), [("rel_l2", None), ("h1", None), ("rel_l2", "tucker")]
)
def test_micro_batched_step_makes_the_whole_batch_update(loss, factorization):
    # Three blocks: a scanned run of two and the last; the weights are prepared once per step.
    fields = jnp.asarray(np.random.default_rng(7).normal(size=(5, 7, 8, 2)), jnp.float32)
    rows, starts = jnp.array([0, 4, 2, 1]), jnp.array([0, 2, 3, 1])
    model = FNO((4,), 4, 2, 8, n_layers=3, factorization=factorization, rank=0.5, rngs=nnx.Rngs(0))
    stepper = Stepper(model, history=2, channels=2)
    batch = (fields, rows, starts)
    results = steps_in_parts(stepper, optax.adam(1e-2), batch, 1, (1, 2, 4), window=4, loss=loss)
    (whole_params, _, whole_loss), *parts = results
    for new_params, _, value in parts:
        assert float(value) == pytest.approx(float(whole_loss), rel=1e-5)
        for a, b in zip(jax.tree.leaves(new_params), jax.tree.leaves(whole_params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_micro_batched_step_of_a_model_without_prepared_weights():
    # Nothing to prepare: the pulled-back part of the gradient is empty.
    fields = jnp.asarray(np.random.default_rng(8).normal(size=(5, 7, 8, 2)), jnp.float32)
    rows, starts = jnp.array([0, 4, 2, 1]), jnp.array([0, 2, 3, 1])
    stepper = Stepper(Scale(2), history=2, channels=2)
    batch = (fields, rows, starts)
    results = steps_in_parts(stepper, optax.sgd(0.1), batch, 1, (1, 4), window=4)
    (whole, _, whole_loss), (parts, _, parts_loss) = results
    assert float(parts_loss) == pytest.approx(float(whole_loss), rel=1e-6)
    np.testing.assert_allclose(parts["model"]["a"][...], whole["model"]["a"][...], rtol=1e-6)
    assert float(whole["model"]["a"][...]) != pytest.approx(0.9)


def test_h1_loss_matches_the_discrete_derivatives_of_sines():
    # target sin(2 pi x), error eps sin(6 pi x): sums of squares over a periodic grid of N are
    # N / 2 for both the sines and the cosines the central differences give, whose amplitudes
    # are N sin(2 pi k / N) for wavenumber k. Constant along y, so d/dy adds nothing.
    n, eps = 16, 0.1
    x = np.arange(n) / n
    target = np.broadcast_to(np.sin(2 * np.pi * x)[:, None], (n, 8))
    error = eps * np.broadcast_to(np.sin(6 * np.pi * x)[:, None], (n, 8))
    as_batch = lambda a: jnp.asarray(a[None, :, :, None], jnp.float32)  # noqa: E731
    stepper = Stepper(Scale(1), history=1, channels=1)
    got = step_loss("h1", stepper, as_batch(target + error), as_batch(target))
    slope = lambda k: n * np.sin(2 * np.pi * k / n)  # noqa: E731
    expected = eps * np.sqrt(1 + slope(3) ** 2) / np.sqrt(1 + slope(1) ** 2)
    assert float(got) == pytest.approx(expected, rel=1e-4)
    # Relative L2 ignores the derivatives: the rougher error weighs less there.
    assert float(step_loss("rel_l2", stepper, as_batch(target + error), as_batch(target))) == (
        pytest.approx(eps, rel=1e-4)
    )


def test_h1_loss_is_per_sample_and_channel_against_numpy():
    rng = np.random.default_rng(4)
    pred, target = rng.normal(size=(2, 3, 5, 6, 2)).astype(np.float32)

    def squared(a):
        total = (a**2).sum(axis=(1, 2))
        for axis in (1, 2):
            size = a.shape[axis]
            derivative = (np.roll(a, -1, axis) - np.roll(a, 1, axis)) * size / 2
            total = total + (derivative**2).sum(axis=(1, 2))
        return total

    expected = np.mean(np.sqrt(squared(pred - target)) / np.sqrt(squared(target)))
    stepper = Stepper(Scale(2), history=1, channels=2)
    assert float(step_loss("h1", stepper, pred, target)) == pytest.approx(expected, rel=1e-5)


def test_static_inputs_come_first_and_are_normalised():
    rng = np.random.default_rng(6)
    w = rng.normal(size=(2, 2, 5, 1)).astype(np.float32)
    static = rng.normal(size=(2, 5, 1)).astype(np.float32)
    # Channels: 0 the static input, 1 and 2 the frames oldest first.
    stepper = Stepper(
        Channels(0, 2),
        history=2,
        channels=1,
        static_channels=1,
        static_mean=[2.0],
        static_std=[4.0],
    )
    with pytest.raises(ValueError, match="expected static inputs with 1 channels"):
        stepper(jnp.asarray(w))
    out = np.asarray(stepper(jnp.asarray(w[:, :, :, :1]), static=jnp.asarray(static)))
    # Output channel 0 is denormalised with the field statistics (0 and 1 here).
    np.testing.assert_allclose(out[..., 0], (static[..., 0] - 2.0) / 4.0, rtol=1e-6)


def test_a_steady_stepper_maps_static_inputs_and_rolls_out_the_same_frame():
    rng = np.random.default_rng(7)
    static = rng.normal(size=(3, 6, 1)).astype(np.float32)
    stepper = Stepper(
        Scale(1, a=2.0), history=0, channels=1, mean=[1.0], std=[3.0], static_channels=1
    )
    context = jnp.zeros((3, 0, 6, 1))
    frames = np.asarray(rollout(stepper, context, 2, static=jnp.asarray(static)))
    expected = 2.0 * static * 3.0 + 1.0
    np.testing.assert_allclose(frames, np.stack([expected, expected], axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="without history needs static inputs"):
        Stepper(Scale(1), history=0, channels=1)
    # The loss of a one-step window compares the prediction with the window's only frame.
    target = rng.normal(size=(3, 1, 6, 1)).astype(np.float32)
    loss = rollout_loss(
        stepper,
        jnp.asarray(target),
        jnp.asarray(0),
        loss="mse",
        pushforward=False,
        remat=False,
        static=jnp.asarray(static),
    )
    assert float(loss) == pytest.approx(np.mean(((expected - target[:, 0]) / 3.0) ** 2), rel=1e-5)


def test_unstitched_multigrid_losses_compare_patches():
    from surrogates.models.multigrid import Multigrid

    rng = np.random.default_rng(8)
    pred, target = rng.normal(size=(2, 2, 8, 8, 1)).astype(np.float32)
    losses = {}
    for stitching in (True, False):
        model = Multigrid(Channels(0), levels=1, padding=0.0, stitching=stitching)
        stepper = Stepper(model, history=1, channels=1)
        losses[stitching] = float(step_loss("rel_l2", stepper, pred, target))
    whole = np.sqrt(((pred - target) ** 2).sum(axis=(1, 2))) / np.sqrt((target**2).sum(axis=(1, 2)))
    assert losses[True] == pytest.approx(np.mean(whole), rel=1e-5)
    per_patch = [
        np.sqrt(((pred - target)[:, i : i + 4, j : j + 4] ** 2).sum(axis=(1, 2)))
        / np.sqrt((target[:, i : i + 4, j : j + 4] ** 2).sum(axis=(1, 2)))
        for i in (0, 4)
        for j in (0, 4)
    ]
    assert losses[False] == pytest.approx(np.mean(per_patch), rel=1e-5)


class Guessing(nnx.Module):
    """Scale's prediction `a * last`, and an auxiliary term of its own: `c` times the MSE of a
    guess `g * last` against the next frame (as CAPE scores its own prediction)."""

    def __init__(self, a: float = 0.9, g: float = 0.5, c: float = 0.1):
        self.a, self.g, self.c = nnx.Param(jnp.asarray(a)), nnx.Param(jnp.asarray(g)), c

    def __call__(self, x, *, pde_params=None):
        last = x[..., -1:]
        record_auxiliary(self, self.g[...] * last)
        return self.a[...] * last

    def auxiliary_loss(self, guess, target):
        return self.c * jnp.mean(jnp.square(guess - target))


def test_auxiliary_losses_are_added_at_every_rollout_step_and_trained():
    w = windows(batch=4, frames=6, seed=9)
    # Teacher forcing: each step's input ends with the true previous frame.
    last, targets = w[:, 1:-1], w[:, 2:]
    expected = np.mean((0.9 * last - targets) ** 2) + 0.1 * np.mean((0.5 * last - targets) ** 2)
    stepper = Stepper(Guessing(), history=2, channels=1)
    for remat in (False, True):
        loss = rollout_loss(
            stepper, jnp.asarray(w), jnp.asarray(0), loss="mse", pushforward=False, remat=remat
        )
        assert float(loss) == pytest.approx(expected, rel=1e-5)
    # Outside a training loss nothing is collected: a rollout just predicts.
    frames = rollout(stepper, jnp.asarray(w[:, :2]), 2)
    np.testing.assert_allclose(frames[:, 0], 0.9 * w[:, 1], rtol=1e-6)

    # The term trains `g`, and micro-batches give the whole batch's update.
    batch = (jnp.asarray(w), jnp.arange(4), jnp.zeros(4, jnp.int32))
    results = steps_in_parts(stepper, optax.sgd(0.1), batch, 0, (1, 2), window=6)
    (whole, _, whole_loss), (parts, _, parts_loss) = results
    assert float(whole_loss) == pytest.approx(expected, rel=1e-5)
    assert float(parts_loss) == pytest.approx(expected, rel=1e-5)
    # d/dg of 0.1 * mean((g last - target)^2), by hand.
    grad_g = 0.1 * np.mean(2 * (0.5 * last - targets) * last)
    assert float(whole["model"]["g"][...]) == pytest.approx(0.5 - 0.1 * grad_g, rel=1e-5)
    np.testing.assert_allclose(parts["model"]["g"][...], whole["model"]["g"][...], rtol=1e-6)


def sample_keys(batch: int, seed: int = 0, epoch: int = 0, step: int = 0) -> jax.Array:
    """The keys `make_train_step` derives for a batch from the seed and [epoch, step]."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), epoch), step)
    return jax.random.split(key, batch)


def test_input_noise_perturbs_every_steps_input_but_not_the_fed_back_frames():
    w = windows(batch=3, frames=5, seed=4)
    keys = sample_keys(3, seed=7, epoch=2, step=5)
    stepper = Stepper(Scale(1), history=2, channels=1)
    loss = rollout_loss(
        stepper,
        jnp.asarray(w),
        jnp.asarray(3),
        loss="mse",
        pushforward=False,
        remat=False,
        noise=0.1,
        keys=keys,
    )
    # By hand: step k's input is the clean window plus 0.1 N(0, 1) from fold_in(key_b, k).
    window, losses = w[:, :2], []
    for k in range(3):
        noise = np.stack(
            [np.asarray(jax.random.normal(jax.random.fold_in(key, k), (2, 5, 1))) for key in keys]
        )
        pred = 0.9 * (window + 0.1 * noise)[:, -1]
        losses.append(np.mean((pred - w[:, 2 + k]) ** 2))
        window = np.concatenate([window[:, 1:], pred[:, None]], axis=1)
    assert float(loss) == pytest.approx(np.mean(losses), rel=1e-5)


def test_the_steps_noise_follows_seed_epoch_and_step_and_not_the_micro_batches():
    stepper = Stepper(Scale(1), history=2, channels=1)
    graphdef, params, rest = nnx.split(stepper, nnx.Param, ...)
    fields = jnp.asarray(windows(batch=4, frames=6, seed=5))
    rows, starts = jnp.arange(4), jnp.zeros(4, jnp.int32)
    tx = optax.sgd(0.1)

    def loss(counter, seed=0, parts=1):
        step = make_train_step(
            graphdef,
            tx,
            window=4,
            loss="mse",
            pushforward=False,
            remat=False,
            micro_batches=parts,
            noise=0.05,
            seed=seed,
        )
        copy = jax.tree.map(jnp.copy, params)
        counter = np.asarray(counter, np.int32)
        return float(
            step(copy, tx.init(copy), rest, counter, fields, None, None, rows, starts, 1)[2]
        )

    first = loss([1, 2])
    assert loss([1, 2]) == first  # the same draws for the same run, epoch and step
    assert loss([1, 3]) != first and loss([2, 2]) != first and loss([1, 2], seed=1) != first
    assert loss([1, 2], parts=2) == pytest.approx(first, rel=1e-6)
    clean = rollout_loss(
        stepper, fields, jnp.asarray(1), loss="mse", pushforward=False, remat=False
    )
    assert float(clean) != pytest.approx(first, rel=1e-6)


class Squares(nnx.Module):
    """Next frame = last frame + c p^2: d(sum of a prediction)/dp = 2 c p X per sample."""

    def __init__(self, c: float):
        self.c = nnx.Param(jnp.asarray(c))

    def __call__(self, x, *, pde_params=None):
        return x[..., -1:] + self.c[...] * jnp.square(pde_params[:, :1, None])


def test_gradient_penalty_is_capes_on_parameters_drawn_around_the_batch():
    w = windows(batch=3, frames=4, space=5, seed=6)
    p = np.asarray([[0.4], [1.0], [2.5]], np.float32)
    keys = sample_keys(3, seed=1)
    stepper = Stepper(Squares(0.3), history=2, channels=1)
    options = {"loss": "mse", "pushforward": False, "remat": False, "pde_params": jnp.asarray(p)}
    plain = rollout_loss(stepper, jnp.asarray(w), jnp.asarray(0), **options)
    penalised = rollout_loss(
        stepper, jnp.asarray(w), jnp.asarray(0), keys=keys, penalty=(0.01, 4.58), **options
    )
    # CAPE's draw: low + (z + 1) / 2 (high - low), high = 2 max p, low = max(0, min p / 2).
    z = np.stack(
        [np.asarray(jax.random.normal(jax.random.fold_in(key, 2**31 - 1), (1,))) for key in keys]
    )
    drawn = 0.2 + (z + 1) / 2 * (5.0 - 0.2)
    norms = np.abs(2 * 0.3 * drawn[:, 0] * 5)  # 5 cells, one channel
    expected = 0.01 * np.mean((norms - 4.58) ** 2)
    assert float(penalised - plain) == pytest.approx(expected, rel=1e-4)
