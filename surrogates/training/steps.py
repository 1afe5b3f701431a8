"""The compiled training step and rollout predictions.

One `jax.jit` step: gather the batch's windows from the training fields on the device,
unroll `rollout_steps` frames with `lax.scan`, and update the parameters. Which frames are fed
back from the model is decided by `n_ar`, a traced integer from the curriculum (step k feeds
back its prediction when `k < n_ar`, else the true frame, exactly as CAPE's training loop), so
a schedule never recompiles. The model state is split once into parameters, other variables
and a static graph, which keeps the step a pure function of arrays that can be donated and
sharded. Models that add loss terms of their own (`surrogates.models.contract.AuxiliaryLoss`)
have them added at every rollout step.

Two of CAPE's training devices apply to any model: Gaussian noise on the model's input
frames at every rollout step, and a penalty on the derivative of the prediction by the PDE
parameters at the first step. Their random numbers come from a key per sample, derived from
the run's seed and the trainer's `[epoch, step]` counter, so a resumed run draws what an
uninterrupted one does and micro-batches draw what the whole batch does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import PartitionSpec as P

from surrogates.models.contract import HasLossView, auxiliary_total, collecting_auxiliary
from surrogates.models.prepared import given, prepare_all
from surrogates.training.optimizers import apply_update
from surrogates.training.stepper import Stepper, rollout, shift_in


def step_loss(kind: str, stepper: Stepper, pred: jax.Array, target: jax.Array) -> jax.Array:
    """Loss of one predicted frame (B, *X, C), averaged over samples and channels:

    - `mse` of the normalised fields (channels weigh equally whatever their units);
    - `rel_l2`, `||pred - target|| / ||target||` over space per sample and channel;
    - `h1`, neuraloperator's relative H1 loss: the same ratio with the squared norms of the
      first derivatives along every axis added, central differences on a periodic grid of
      spacing `1 / X` per axis (a unit domain).

    A model with a loss view (`HasLossView`: multi-grid patching without stitching) is scored
    on its view of both fields.
    """
    if isinstance(stepper.model, HasLossView):
        pred, target = stepper.model.loss_view(pred), stepper.model.loss_view(target)
    if kind == "mse":
        return jnp.mean(jnp.square(stepper.normalise(pred) - stepper.normalise(target)))
    error, norm = _squared_norm(pred - target), _squared_norm(target)
    if kind == "h1":
        for axis in range(1, pred.ndim - 1):
            error = error + _squared_norm(periodic_derivative(pred - target, axis))
            norm = norm + _squared_norm(periodic_derivative(target, axis))
    return jnp.mean(jnp.sqrt(error) / (jnp.sqrt(norm) + 1e-8))


def _squared_norm(fields: jax.Array) -> jax.Array:
    """(B, *X, C) -> (B, C), the sum of squares over space."""
    return jnp.sum(jnp.square(fields), axis=tuple(range(1, fields.ndim - 1)))


def periodic_derivative(fields: jax.Array, axis: int) -> jax.Array:
    """Central difference of `fields` along `axis`, periodic, spacing 1 / size."""
    size = fields.shape[axis]
    return (jnp.roll(fields, -1, axis) - jnp.roll(fields, 1, axis)) * (size / 2.0)


def rollout_loss(
    stepper: Stepper,
    windows: jax.Array,
    n_ar: jax.Array,
    *,
    loss: str,
    pushforward: bool,
    remat: bool,
    pde_params: jax.Array | None = None,
    static: jax.Array | None = None,
    noise: float = 0.0,
    keys: jax.Array | None = None,
    penalty: tuple[float, float] | None = None,
) -> jax.Array:
    """Mean per-step loss over a curriculum rollout, each step's including the model's
    auxiliary terms. windows: (B, H + R, *X, C), static: (B, *X, Cs) or None, pde_params:
    (B, P) or None.

    With `noise` > 0 every step's input window gets N(0, noise^2) added (the fed-back frames
    stay clean); with `penalty = (coefficient, target)` the first step's gradient penalty
    (`gradient_penalty`) is added to the mean. Both draw from `keys` (B, 2), one per sample.
    """
    history = stepper.history
    context, targets = windows[:, :history], jnp.moveaxis(windows[:, history:], 1, 0)

    def noisy(window: jax.Array, k: jax.Array) -> jax.Array:
        return window + noise * _normal(keys, k, window) if noise else window

    def advance(window: jax.Array, step: tuple[jax.Array, jax.Array]):
        k, target = step
        with collecting_auxiliary() as records:
            pred = stepper(noisy(window, k), pde_params=pde_params, static=static)
        fed = jax.lax.stop_gradient(pred) if pushforward else pred
        frame = jnp.where(k < n_ar, fed, target)
        value = step_loss(loss, stepper, pred, target)
        if records:
            value = value + auxiliary_total(records, stepper.normalise(target))
        return shift_in(window, frame), value

    if remat:
        advance = jax.checkpoint(advance)
    if len(targets) == 1:
        # One-step training: no loop. Inside a loop XLA's CPU backend keeps convolutions
        # channels-first, which made an APEBench conv net's step 2x slower.
        value = advance(context, (jnp.asarray(0), targets[0]))[1]
    else:
        _, losses = jax.lax.scan(advance, context, (jnp.arange(len(targets)), targets))
        value = jnp.mean(losses)
    if penalty is not None:
        inputs = noisy(context, jnp.asarray(0))
        value = value + gradient_penalty(stepper, inputs, pde_params, static, keys, *penalty)
    return value


# Folded into a sample's key for the penalty's parameters, apart from the steps' noise.
_PENALTY_STREAM = 2**31 - 1


def _normal(keys: jax.Array, k: jax.Array, like: jax.Array) -> jax.Array:
    """N(0, 1) shaped like `like` (B, ...): sample b's from `keys[b]` folded with step k."""
    return jax.vmap(
        lambda key: jax.random.normal(jax.random.fold_in(key, k), like.shape[1:], like.dtype)
    )(keys)


def gradient_penalty(
    stepper: Stepper,
    window: jax.Array,
    pde_params: jax.Array,
    static: jax.Array | None,
    keys: jax.Array,
    coefficient: float,
    target: float,
) -> jax.Array:
    """CAPE's `gradient_penalty`: `coefficient * mean_b (|g_b| - target)^2` with `g_b` the
    derivative of the summed prediction of sample b by its PDE parameters (B, P), taken at
    parameters drawn as CAPE draws them: `low + (z + 1) / 2 (high - low)`, z ~ N(0, 1), with
    high twice the largest parameter of the (micro-)batch and low half the smallest, floored
    at 0. Reverse mode over reverse mode (the FNO's custom gradients have no forward mode).
    """
    high = 2 * jnp.max(pde_params)
    low = jax.nn.relu(0.5 * jnp.min(pde_params))
    draws = jax.vmap(
        lambda key: jax.random.normal(
            jax.random.fold_in(key, _PENALTY_STREAM), pde_params.shape[1:], pde_params.dtype
        )
    )(keys)
    sampled = low + (draws + 1) * 0.5 * (high - low)

    def summed(params: jax.Array) -> jax.Array:
        return jnp.sum(stepper(window, pde_params=params, static=static))

    grads = jax.grad(summed)(sampled)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=1) + 1e-12)
    return coefficient * jnp.mean(jnp.square(norms - target))


def gather_windows(
    fields: jax.Array, trajectory: jax.Array, start: jax.Array, length: int
) -> jax.Array:
    """Windows of `length` frames: fields (N, T, *X, C), trajectory/start (B,) -> (B, L, *X, C)."""

    def one(i: jax.Array, s: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice_in_dim(fields[i], s, length, axis=0)

    return jax.vmap(one)(trajectory, start)


def micro_batched_value_and_grad(
    fun: Callable[..., jax.Array],
    micro_batches: int,
    prepare: Callable[..., Any] | None = None,
) -> Callable[..., tuple[jax.Array, Any]]:
    """`value_and_grad(fun)` over `micro_batches` equal parts of a batch, averaged.

    `fun(params, batch, *shared)` must be a mean over the leading axis of every array in
    `batch` (a pytree; None leaves allowed), so the mean of the parts' values and gradients
    is the whole batch's. The parts are scanned one after the other, so only one part's
    activations are alive at a time: with a few samples per part they stay in the CPU's
    cache (faster on CPU; see the README's performance section) and on any device the peak
    memory drops. Part j takes entries j, j + m, j + 2m, ..., so a batch sharded over devices
    in contiguous blocks gives every device its share of each part. With one micro-batch this
    is `jax.value_and_grad(fun)`.

    `prepare(params, *shared)`, if given, computes from the parameters a pytree that `fun`
    takes as `fun(params, batch, *shared, prepared=...)` and uses instead of computing it
    (prepared weights, see `surrogates.models.prepared`). It is computed once, each part is
    differentiated with respect to it besides the parameters, and the parts' summed gradient
    is pulled back through `prepare` once: the backward pass of the preparation runs once per
    step instead of once per part.
    """
    if micro_batches == 1:
        return jax.value_and_grad(fun)

    def split(a: jax.Array) -> jax.Array:
        """(B, ...) -> (m, B / m, ...), part j holding entries j, j + m, ..."""
        parts = a.reshape(a.shape[0] // micro_batches, micro_batches, *a.shape[1:])
        return jnp.swapaxes(parts, 0, 1)

    def summed(value_and_grad: Callable, args: Any, batch: Any, *shared: Any) -> tuple:
        """The sum over parts of `value_and_grad(args, part, *shared)`."""

        def add_part(total: tuple, part: Any) -> tuple[tuple, None]:
            return jax.tree.map(jnp.add, total, value_and_grad(args, part, *shared)), None

        zero = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, args))
        total, _ = jax.lax.scan(add_part, zero, jax.tree.map(split, batch))
        return total

    def accumulated(params: Any, batch: Any, *shared: Any) -> tuple[jax.Array, Any]:
        if prepare is None:
            value, grads = summed(jax.value_and_grad(fun), params, batch, *shared)
        else:
            prepared, pull_back = jax.vjp(lambda p: prepare(p, *shared), params)

            def with_prepared(both: tuple, part: Any, *shared: Any) -> jax.Array:
                params, prepared = both
                return fun(params, part, *shared, prepared=prepared)

            value, (direct, through) = summed(
                jax.value_and_grad(with_prepared), (params, prepared), batch, *shared
            )
            grads = jax.tree.map(jnp.add, direct, pull_back(through)[0])
        return jax.tree.map(lambda t: t / micro_batches, (value, grads))

    return accumulated


def model_value_and_grad(
    graphdef: nnx.GraphDef, loss: Callable[..., jax.Array], micro_batches: int
) -> Callable[..., tuple[jax.Array, Any]]:
    """`(params, batch, rest, *shared) -> (value, grads)` of `loss(model, batch, *shared)`
    for the model `nnx.merge(graphdef, params, rest)`, gradients by `params`.

    Over `micro_batches` parts (see `micro_batched_value_and_grad`), with the model's prepared
    weights (`surrogates.models.prepared`) prepared once per step and their gradient pulled
    back once.
    """

    def fun(params: Any, batch: Any, rest: Any, *shared: Any, prepared: Any = None) -> jax.Array:
        model = nnx.merge(graphdef, params, rest)
        with given(model, prepared):
            return loss(model, batch, *shared)

    def prepare(params: Any, rest: Any, *shared: Any) -> Any:
        return prepare_all(nnx.merge(graphdef, params, rest))

    return micro_batched_value_and_grad(fun, micro_batches, prepare)


def data_parallel(
    value_and_grad: Callable[..., tuple[jax.Array, Any]], mesh: jax.sharding.Mesh
) -> Callable[..., tuple[jax.Array, Any]]:
    """`value_and_grad(params, batch, rest, *shared)` computed by every device on its own rows
    of the batch (`batch` split over the mesh's axis, the rest replicated), then averaged over
    the devices in one all-reduce. Left to the compiler, the sharded step reduces the partial
    gradients inside the rollout loop, at every rollout step: several collectives per step,
    each a round trip between processes in a multi-process run. `value_and_grad` must be a
    mean over the batch's rows (as for micro-batches), so the devices' mean is the batch's."""
    axis = mesh.axis_names[0]

    def local(params: Any, batch: Any, rest: Any, *shared: Any) -> tuple[jax.Array, Any]:
        return jax.lax.pmean(value_and_grad(params, batch, rest, *shared), axis)

    def run(params: Any, batch: Any, rest: Any, *shared: Any) -> tuple[jax.Array, Any]:
        specs = (P(), P(axis), P(), *(P() for _ in shared))
        # No replication checks: custom VJPs in the models do not declare how outputs vary.
        mapped = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P(), check_vma=False)
        return mapped(params, batch, rest, *shared)

    return run


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    *,
    window: int,
    loss: str,
    pushforward: bool,
    remat: bool,
    batch_sharding: jax.sharding.Sharding | None = None,
    micro_batches: int = 1,
    noise: float = 0.0,
    penalty: tuple[float, float] | None = None,
    seed: int = 0,
) -> Callable:
    """`step(params, opt_state, rest, counter, fields, param_table, static, trajectory, start,
    n_ar)` -> `(params, opt_state, loss)`, compiled once; `params` and `opt_state` are donated.
    `counter`, the trainer's `[epoch, step]`, and `seed` key the random numbers of `noise`
    and `penalty` (see `rollout_loss`); the sampler drew the windows.

    fields: (N, T, *X, C) training trajectories on the device; param_table: (N, P) or None;
    static: (N, *X, Cs) or None; trajectory, start: (B,) int32 window indices, sharded over
    the batch. With `micro_batches` > 1 the gradient is accumulated over that many parts of
    the batch (see `micro_batched_value_and_grad`).
    """

    def loss_of(stepper, batch, n_ar):
        windows, pde_params, static, keys = batch
        return rollout_loss(
            stepper,
            windows,
            n_ar,
            loss=loss,
            pushforward=pushforward,
            remat=remat,
            pde_params=pde_params,
            static=static,
            noise=noise,
            keys=keys,
            penalty=penalty,
        )

    value_and_grad = model_value_and_grad(graphdef, loss_of, micro_batches)
    if batch_sharding is not None and batch_sharding.mesh.size > 1:
        value_and_grad = data_parallel(value_and_grad, batch_sharding.mesh)

    @partial(jax.jit, donate_argnums=(0, 1))
    def step(
        params, opt_state, rest, counter, fields, param_table, static, trajectory, start, n_ar
    ):
        windows = gather_windows(fields, trajectory, start, window)
        if batch_sharding is not None:
            windows = jax.lax.with_sharding_constraint(windows, batch_sharding)
        pde_params = None if param_table is None else param_table[trajectory]
        static = None if static is None else static[trajectory]
        keys = None
        if noise or penalty is not None:
            key = jax.random.fold_in(jax.random.PRNGKey(seed), counter[0])
            keys = jax.random.split(jax.random.fold_in(key, counter[1]), len(trajectory))
        batch = (windows, pde_params, static, keys)
        value, grads = value_and_grad(params, batch, rest, n_ar)

        def value_fn(candidate):
            return loss_of(nnx.merge(graphdef, candidate, rest), batch, n_ar)

        params, opt_state = apply_update(tx, params, opt_state, value, grads, value_fn)
        return params, opt_state, value

    return step


def make_predict(graphdef: nnx.GraphDef) -> Callable:
    """`predict(params, rest, context, pde_params, static, steps)` -> (B, steps, *X, C),
    compiled per (shape, steps). context: (B, H, *X, C); pde_params: (B, P) or None; static:
    (B, *X, Cs) or None.
    """

    @partial(jax.jit, static_argnums=(5,))
    def predict(params, rest, context, pde_params, static, steps):
        stepper = nnx.merge(graphdef, params, rest)
        return rollout(stepper, context, steps, pde_params=pde_params, static=static)

    return predict
