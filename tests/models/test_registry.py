"""Registry: build by name, helpful errors for misspelt names and arguments; persistence."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError, SurrogatesError
from surrogates.models import (
    FNO,
    Persistence,
    available,
    build,
    get,
    register,
    registry,
    summary,
)


def test_available_lists_the_registered_models_sorted():
    names = available()
    assert {"fno", "persistence"} <= set(names)
    assert list(names) == sorted(names)


def test_get_and_summary():
    assert get("fno") is FNO
    assert get("persistence") is Persistence
    assert summary("fno") == FNO.__doc__.strip().splitlines()[0]
    assert summary("persistence").startswith("Baseline that predicts no change")


def test_a_summary_is_the_docstrings_whole_first_paragraph():
    from surrogates.models import wrapper_summary

    multigrid = wrapper_summary("multigrid")
    assert multigrid.startswith("MG-TFNO's multi-grid patching around any operator model")
    assert multigrid.endswith("1D or 2D, periodic.")
    assert "\n" not in multigrid


def test_build_by_name():
    fno = nnx.eval_shape(
        lambda: build(
            "fno", n_modes=(6,), in_channels=2, out_channels=1, hidden_channels=4, rngs=nnx.Rngs(0)
        )
    )
    assert isinstance(fno, FNO)
    assert fno.blocks[0].spectral.weight_tensor().shape == (4, 4, 4)
    assert isinstance(build("persistence", in_channels=4, out_channels=2), Persistence)


def test_unknown_model_suggests_a_close_name():
    with pytest.raises(ModelError) as error:
        build("fn0", in_channels=1)
    message = str(error.value)
    assert "unknown model 'fn0' (did you mean 'fno'?)" in message
    assert "known models: " + ", ".join(available()) in message
    assert "\n" not in message
    assert isinstance(error.value, SurrogatesError)


def test_unknown_model_without_a_close_name():
    with pytest.raises(ModelError, match="unknown model 'transformer'; known models: ") as error:
        get("transformer")
    assert "did you mean" not in str(error.value)


def test_unknown_argument_names_it_the_model_and_a_close_spelling():
    with pytest.raises(ModelError) as error:
        build(
            "fno",
            n_modes=(6,),
            in_channels=2,
            out_channels=1,
            hiden_channels=4,
            rngs=nnx.Rngs(0),
        )
    message = str(error.value)
    assert "model 'fno' has no argument 'hiden_channels' (did you mean 'hidden_channels'?)" in (
        message
    )
    assert "\n" not in message


def test_missing_argument_raises_model_error():
    with pytest.raises(ModelError, match=r"model 'fno'.*missing.*hidden_channels"):
        build("fno", n_modes=(6,), in_channels=2, out_channels=1, rngs=nnx.Rngs(0))


def test_register_adds_a_buildable_model(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    @register("toy")
    class Toy(nnx.Module):
        """A toy model."""

        def __init__(self, width: int) -> None:
            self.width = width

    assert "toy" in available()
    assert build("toy", width=3).width == 3
    assert summary("toy") == "A toy model."

    class Other(nnx.Module):
        pass

    with pytest.raises(ValueError, match="already taken"):
        register("toy")(Other)


def test_persistence_returns_the_last_frame():
    rng = np.random.default_rng(0)
    frames = [rng.normal(size=(2, 5, 7, 3)).astype(np.float32) for _ in range(4)]
    x = jnp.asarray(np.concatenate(frames, axis=-1))  # history stacked time-major
    model = build("persistence", in_channels=12, out_channels=3)
    np.testing.assert_array_equal(np.asarray(model(x, pde_params=jnp.ones((2, 1)))), frames[-1])
    assert nnx.state(model, nnx.Param) == nnx.State({})


def test_persistence_checks_its_channels():
    with pytest.raises(ModelError, match="out_channels"):
        Persistence(2, 3)
    with pytest.raises(ValueError, match="expected 4 input channels"):
        Persistence(4, 2)(jnp.ones((1, 8, 3)))
