"""Learning-rate schedules in epochs and torch-compatible Adam weight decay."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from surrogates.training.optimizers import learning_rate_schedule, make_optimizer


def test_step_schedule_is_steplr_per_epoch():
    schedule = learning_rate_schedule(
        "step", 1e-3, steps_per_epoch=10, epochs=500, step_epochs=100, gamma=0.5
    )
    for epoch, expected in ((0, 1e-3), (99, 1e-3), (100, 5e-4), (250, 2.5e-4)):
        for step in (epoch * 10, epoch * 10 + 9):
            assert float(schedule(step)) == pytest.approx(expected)


def test_cosine_schedule_warms_up_then_decays_to_the_final_fraction():
    schedule = learning_rate_schedule(
        "cosine", 2e-3, steps_per_epoch=4, epochs=10, warmup_epochs=1, final_fraction=0.1
    )
    assert float(schedule(0)) == 0.0
    assert float(schedule(2)) == pytest.approx(1e-3)
    assert float(schedule(4)) == pytest.approx(2e-3)
    assert float(schedule(40)) == pytest.approx(2e-4)
    # Halfway through the decay: the cosine is at its midpoint.
    assert float(schedule(22)) == pytest.approx(2e-4 + 0.5 * (2e-3 - 2e-4), rel=1e-5)
    constant = learning_rate_schedule("cosine", 2e-3, steps_per_epoch=4, epochs=10)
    assert float(constant(0)) == pytest.approx(2e-3)


def test_adam_weight_decay_is_added_to_the_gradient_like_torch():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    tx = make_optimizer("adam", optax.constant_schedule(0.1), weight_decay=0.01)
    updates, _ = tx.update(grads, tx.init(params), params)
    # torch Adam, first step: g' = g + wd p; m = (1-b1) g', v = (1-b2) g'^2, bias-corrected
    # update = -lr g' / (|g'| + eps) = -lr sign(g') (to eps).
    g = np.array([0.5, 0.25]) + 0.01 * np.array([1.0, -2.0])
    np.testing.assert_allclose(updates["w"], -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-5)


def test_gradients_are_clipped_before_adam_sees_them():
    tx = make_optimizer("adamw", optax.constant_schedule(1.0), clip_norm=1.0)
    params = {"w": jnp.zeros(2)}
    _, state = tx.update({"w": jnp.array([30.0, 40.0])}, tx.init(params), params)
    # Global norm 50 clipped to 1: Adam's second moment holds (1 - b2) (g / 50)^2.
    (adam_state,) = [s for s in state[1] if isinstance(s, optax.ScaleByAdamState)]
    np.testing.assert_allclose(adam_state.nu["w"], 0.001 * np.array([0.6, 0.8]) ** 2, rtol=1e-5)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", optax.constant_schedule(1.0))
    with pytest.raises(ValueError, match="unknown schedule 'poly'"):
        learning_rate_schedule("poly", 1.0, steps_per_epoch=1, epochs=1)
