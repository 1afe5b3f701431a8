"""The compiled training step and rollout predictions.

One `jax.jit` step: gather the batch's windows from the training fields on the device,
unroll `rollout_steps` frames with `lax.scan`, and update the parameters. Which frames are fed
back from the model is decided by `n_ar`, a traced integer from the curriculum (step k feeds
back its prediction when `k < n_ar`, else the true frame, exactly as CAPE's training loop), so
a schedule never recompiles. The model state is split once into parameters, other variables
and a static graph, which keeps the step a pure function of arrays that can be donated and
sharded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from surrogates.training.stepper import Stepper, rollout


def step_loss(kind: str, stepper: Stepper, pred: jax.Array, target: jax.Array) -> jax.Array:
    """Loss of one predicted frame (B, *X, C): `mse` of the normalised fields (channels weigh
    equally whatever their units) or `rel_l2`, `||pred - target|| / ||target||` over space
    per sample and channel, averaged.
    """
    if kind == "mse":
        return jnp.mean(jnp.square(stepper.normalise(pred) - stepper.normalise(target)))
    space = tuple(range(1, pred.ndim - 1))
    error = jnp.sqrt(jnp.sum(jnp.square(pred - target), axis=space))
    norm = jnp.sqrt(jnp.sum(jnp.square(target), axis=space))
    return jnp.mean(error / (norm + 1e-8))


def rollout_loss(
    stepper: Stepper,
    windows: jax.Array,
    n_ar: jax.Array,
    *,
    loss: str,
    pushforward: bool,
    remat: bool,
    params: jax.Array | None = None,
) -> jax.Array:
    """Mean per-step loss over a curriculum rollout. windows: (B, H + R, *X, C)."""
    history = stepper.history
    context, targets = windows[:, :history], jnp.moveaxis(windows[:, history:], 1, 0)

    def advance(window: jax.Array, step: tuple[jax.Array, jax.Array]):
        k, target = step
        pred = stepper(window, params=params)
        fed = jax.lax.stop_gradient(pred) if pushforward else pred
        frame = jnp.where(k < n_ar, fed, target)
        return jnp.concatenate([window[:, 1:], frame[:, None]], axis=1), step_loss(
            loss, stepper, pred, target
        )

    if remat:
        advance = jax.checkpoint(advance)
    _, losses = jax.lax.scan(advance, context, (jnp.arange(len(targets)), targets))
    return jnp.mean(losses)


def gather_windows(
    fields: jax.Array, trajectory: jax.Array, start: jax.Array, length: int
) -> jax.Array:
    """Windows of `length` frames: fields (N, T, *X, C), trajectory/start (B,) -> (B, L, *X, C)."""

    def one(i: jax.Array, s: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice_in_dim(fields[i], s, length, axis=0)

    return jax.vmap(one)(trajectory, start)


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    *,
    window: int,
    loss: str,
    pushforward: bool,
    remat: bool,
    batch_sharding: jax.sharding.Sharding | None = None,
) -> Callable:
    """`step(params, opt_state, rest, fields, param_table, trajectory, start, n_ar)` ->
    `(params, opt_state, loss)`, compiled once; `params` and `opt_state` are donated.

    fields: (N, T, *X, C) training trajectories on the device; param_table: (N, P) or None;
    trajectory, start: (B,) int32 window indices, sharded over the batch.
    """

    def loss_of(params, rest, windows, n_ar, pde_params):
        stepper = nnx.merge(graphdef, params, rest)
        return rollout_loss(
            stepper,
            windows,
            n_ar,
            loss=loss,
            pushforward=pushforward,
            remat=remat,
            params=pde_params,
        )

    @partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, rest, fields, param_table, trajectory, start, n_ar):
        windows = gather_windows(fields, trajectory, start, window)
        if batch_sharding is not None:
            windows = jax.lax.with_sharding_constraint(windows, batch_sharding)
        pde_params = None if param_table is None else param_table[trajectory]
        value, grads = jax.value_and_grad(loss_of)(params, rest, windows, n_ar, pde_params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def make_predict(graphdef: nnx.GraphDef) -> Callable:
    """`predict(params, rest, context, pde_params, steps)` -> (B, steps, *X, C), compiled per
    (shape, steps). context: (B, H, *X, C).
    """

    @partial(jax.jit, static_argnums=(4,))
    def predict(params, rest, context, pde_params, steps):
        return rollout(nnx.merge(graphdef, params, rest), context, steps, params=pde_params)

    return predict
