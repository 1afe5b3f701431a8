"""Prepared weights given from outside: found in wrapped models, used instead of the model's own."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import FNO
from surrogates.models.multigrid import Multigrid
from surrogates.models.prepared import given, given_weights, prepare_all
from surrogates.training.stepper import Stepper


def fno(seed: int = 0, **kwargs) -> FNO:
    # Three blocks: a run of two alike blocks, then the last one alone.
    return FNO((6, 6), 3, 2, 8, n_layers=3, rngs=nnx.Rngs(seed), **kwargs)


def test_prepared_weights_are_found_by_path_in_wrapped_models():
    model = fno()
    assert set(prepare_all(model)) == {""}
    assert set(prepare_all(Multigrid(model, levels=1, padding=0.0))) == {"operator"}
    stepper = Stepper(Multigrid(model, levels=1, padding=0.0), history=1, channels=3)
    assert set(prepare_all(stepper)) == {"model/operator"}
    # One entry per block: its complex weight, modes first.
    blocks = prepare_all(model)[""]
    assert [b.shape for b in blocks] == [(6, 4, 8, 8)] * 3
    assert prepare_all(nnx.Linear(2, 2, rngs=nnx.Rngs(0))) == {}


@pytest.mark.parametrize("factorization", [None, "tucker"])
def test_a_model_computes_with_the_weights_it_is_given(factorization):
    model, twin = fno(factorization=factorization), fno(factorization=factorization)
    # The twin differs only in its spectral weights (not their bias, which is not prepared).
    weights = nnx.All(nnx.PathContains("spectral"), nnx.Not(nnx.PathContains("bias")))
    for block, other in zip(
        twin.blocks, fno(seed=1, factorization=factorization).blocks, strict=True
    ):
        nnx.update(block, nnx.state(other, weights))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 12, 10, 3)), jnp.float32)

    @nnx.jit
    def outputs(model, twin, x):
        with given(model, prepare_all(twin)):
            swapped = model(x)
        return swapped, twin(x), model(x)

    swapped, expected, own = outputs(model, twin, x)
    np.testing.assert_allclose(np.asarray(swapped), np.asarray(expected), rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(own) - np.asarray(expected)).max() > 1e-3


def test_given_weights_last_only_within_the_block():
    model = fno()
    prepared = prepare_all(model)
    with given(model, None):
        assert given_weights(model) is None
    with given(model, prepared):
        assert given_weights(model) is prepared[""]
    assert given_weights(model) is None


def test_prepared_weights_of_another_structure_are_a_clear_error():
    wrapped = Multigrid(fno(), levels=1, padding=0.0)
    with (
        pytest.raises(ModelError, match=r"prepared weights are for modules \['operator'\]"),
        given(fno(), prepare_all(wrapped)),
    ):
        pass


def test_the_gradient_through_given_weights_is_the_models_own():
    model = fno(factorization="tucker")
    graphdef, params = nnx.split(model)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 12, 10, 3)), jnp.float32)

    def own(params):
        return jnp.sum(jnp.sin(nnx.merge(graphdef, params)(x)))

    def through_given(params):
        prepared, pull_back = jax.vjp(lambda p: prepare_all(nnx.merge(graphdef, p)), params)

        def loss(params, prepared):
            model = nnx.merge(graphdef, params)
            with given(model, prepared):
                return jnp.sum(jnp.sin(model(x)))

        direct, through = jax.grad(loss, argnums=(0, 1))(params, prepared)
        return jax.tree.map(jnp.add, direct, pull_back(through)[0])

    got = jax.jit(through_given)(params)
    want = jax.jit(jax.grad(own))(params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=0, atol=1e-5 * np.abs(b).max()
        )
