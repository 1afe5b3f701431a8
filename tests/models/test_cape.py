"""CAPE: the block against its published formula recomposed from its layers, the layer norm at
any grid, the wrapper's channels, errors and auxiliary loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import ModelContext, build_stack
from surrogates.models.cape import CAPE, CAPEBlock, SpatialLayerNorm
from surrogates.models.contract import check_grid, collecting_auxiliary, takes_raw_pde_params

SHAPES = {1: (32,), 2: (16, 12)}


def block(dims: int, in_channels: int = 3, channels: int = 2, frames: int = 1) -> CAPEBlock:
    return CAPEBlock(
        in_channels,
        channels,
        2,
        SHAPES[dims],
        (True,) * dims,
        width=8,
        kernel=3,
        modes=3,
        frames=frames,
        rngs=nnx.Rngs(dims),
    )


def randomise(module: nnx.Module, seed: int) -> None:
    """Every parameter of `module` drawn afresh (the layer norm's ones and zeros too)."""
    rng = np.random.default_rng(seed)
    for _, param in nnx.iter_graph(module):
        if isinstance(param, nnx.Param):
            param.set_value(jnp.asarray(rng.normal(size=param.shape) * 0.5, param.dtype))


def layer_norm(y: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """torch's LayerNorm over the grid of (B, *X, C) with per-cell scale and shift."""
    axes = tuple(range(1, y.ndim - 1))
    mean = y.mean(axis=axes, keepdims=True)
    variance = y.var(axis=axes, keepdims=True)
    return (y - mean) / np.sqrt(variance + 1e-5) * scale[None, ..., None] + shift[None, ..., None]


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("frames", [1, 2])
def test_block_is_the_published_formula_of_its_layers(dims, frames):
    model = block(dims, frames=frames)
    randomise(model, dims)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, *SHAPES[dims], 3)).astype(np.float32)
    p = rng.uniform(0.1, 3.0, size=(2, 2)).astype(np.float32)

    def gelu(v):
        return np.asarray(jax.nn.gelu(jnp.asarray(v), approximate=False))

    fed = p if dims == 1 else p / (1 + p)  # the reference's sigmoid(log p) in 2D
    gains = [np.asarray(g(jnp.asarray(fed))).reshape(2, *(1,) * dims, 8) for g in model.gains]
    h = gelu(np.asarray(model.lift(jnp.asarray(x))))
    pooled = h.reshape(2, *[n for size in SHAPES[dims] for n in (size // 4, 4)], 4)
    pooled = pooled.mean(axis=tuple(range(2, 2 * dims + 1, 2)))
    y0 = np.asarray(model.spectral(jnp.asarray(pooled))) * gains[0]
    for axis in range(1, dims + 1):
        y0 = np.repeat(y0, 4, axis=axis)
    y1 = np.asarray(model.pointwise(jnp.asarray(h))) * gains[1]
    y2 = np.asarray(model.depthwise(jnp.asarray(h))) * gains[2]
    y = gelu(y0 + y1 + y2 + np.asarray(model.skip(jnp.asarray(h))))
    y = layer_norm(
        np.asarray(model.out(jnp.asarray(y))), model.norm.scale[...], model.norm.shift[...]
    )
    latest = np.tile(x[..., -2:], frames)
    expected = latest + y if dims == 1 else latest * (1 + y)
    got = model(jnp.asarray(x), jnp.asarray(p))
    assert got.shape == (2, *SHAPES[dims], 2 * frames)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_depthwise_path_gives_each_channel_two_outputs_as_torch_groups_do():
    """torch's Conv(W/2 -> W, groups=W/2): output o convolves input channel o // 2 alone."""
    model = block(1)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(1, 32, 4)).astype(np.float32)
    kernel = np.asarray(model.depthwise.kernel[...])  # (3, 1, 8)
    padded = np.pad(h, ((0, 0), (1, 1), (0, 0)))
    expected = np.stack(
        [sum(kernel[t, 0, o] * padded[:, t : t + 32, o // 2] for t in range(3)) for o in range(8)],
        axis=-1,
    )
    np.testing.assert_allclose(model.depthwise(jnp.asarray(h)), expected, rtol=1e-5, atol=1e-6)


def test_layer_norm_runs_on_any_grid_reading_strided_grids_exactly():
    norm = SpatialLayerNorm((8, 6), (True, False))
    rng = np.random.default_rng(1)
    norm.scale.set_value(jnp.asarray(rng.normal(size=(8, 6)), jnp.float32))
    norm.shift.set_value(jnp.asarray(rng.normal(size=(8, 6)), jnp.float32))
    scale, shift = np.asarray(norm.scale[...]), np.asarray(norm.shift[...])
    y = rng.normal(size=(2, 8, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(norm(jnp.asarray(y)), layer_norm(y, scale, shift), atol=1e-5)
    # Strided by 2 on both axes: every other cell's scale and shift.
    coarse = y[:, ::2, ::2]
    np.testing.assert_allclose(
        norm(jnp.asarray(coarse)),
        layer_norm(coarse, scale[::2, ::2], shift[::2, ::2]),
        atol=1e-5,
    )
    # Finer: midpoints average their neighbours, wrapping on the periodic axis only.
    fine = norm.resampled(jnp.asarray(scale), (16, 12))
    np.testing.assert_allclose(fine[::2, ::2], scale, atol=1e-6)
    np.testing.assert_allclose(fine[1, 0], (scale[0, 0] + scale[1, 0]) / 2, atol=1e-6)
    np.testing.assert_allclose(fine[15, 0], (scale[7, 0] + scale[0, 0]) / 2, atol=1e-6)
    np.testing.assert_allclose(fine[0, 11], scale[0, 5], atol=1e-6)  # clamped


def context(dims: int, params: tuple[str, ...] = ("beta",)) -> ModelContext:
    return ModelContext(
        in_channels=2,
        out_channels=1,
        spatial_shape=SHAPES[dims],
        boundary=("periodic",) * dims,
        param_names=params,
    )


def cape_fno(dims: int, **options) -> CAPE:
    fno = {"n_modes": (4,) * dims, "hidden_channels": 8, "n_layers": 2}
    options = {"width": 8, "kernel": 3, "modes": 3, **options}
    return build_stack("fno", fno, [("cape", options)], context(dims), rngs=nnx.Rngs(0))


@pytest.mark.parametrize("dims", [1, 2])
def test_wrapper_widens_the_operator_and_follows_the_parameters(dims):
    model = cape_fno(dims, frames=2)
    # The operator reads the input and two guessed frames, and gives three frames' channels.
    assert model.operator.in_channels == 2 + 2 and model.operator.out_channels == 3
    assert takes_raw_pde_params(model)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *SHAPES[dims], 2)), jnp.float32)
    low = model(x, pde_params=jnp.full((2, 1), 0.2))
    high = model(x, pde_params=jnp.full((2, 1), 4.0))
    assert low.shape == (2, *SHAPES[dims], 1)
    assert float(jnp.max(jnp.abs(low - high))) > 1e-4


def test_wrapper_refuses_data_and_calls_without_parameters():
    with pytest.raises(ModelError, match="cape: the data has no PDE parameters"):
        build_stack(
            "fno",
            {"n_modes": (4,), "hidden_channels": 8},
            [("cape", {})],
            context(1, params=()),
            rngs=nnx.Rngs(0),
        )
    model = cape_fno(1)
    with pytest.raises(ModelError, match=r"cape: the model needs PDE parameters \(pde_params\)"):
        model(jnp.ones((1, 32, 2)))
    with pytest.raises(ModelError, match=r"multiple of 4 on every axis \(change data.stride_x\)"):
        check_grid(model, (30,))


def test_auxiliary_loss_is_the_scaled_relative_error_of_the_first_guessed_frame():
    model = cape_fno(1, frames=2, coefficient=0.5)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(3, 32, 2)), jnp.float32)
    target = rng.normal(size=(3, 32, 1))
    p = jnp.asarray([[0.2], [0.7], [2.0]])
    with collecting_auxiliary() as records:
        model(x, pde_params=p)
    ((module, guess),) = records
    assert module is model and guess.shape == (3, 32, 2)
    np.testing.assert_allclose(guess, model.block(x, p), rtol=1e-6)
    first = np.asarray(guess)[..., :1]
    relative = np.linalg.norm((first - target).reshape(3, -1), axis=1) / np.linalg.norm(
        target.reshape(3, -1), axis=1
    )
    value = model.auxiliary_loss(guess, jnp.asarray(target, jnp.float32))
    assert float(value) == pytest.approx(0.5 * relative.mean(), rel=1e-5)
    # Outside a training loss nothing is recorded.
    with collecting_auxiliary() as records:
        pass
    model(x, pde_params=p)
    assert records == []


def test_cape_goes_around_mg_tfno_through_the_stack():
    context = ModelContext(1, 1, (16, 16), ("periodic", "periodic"), ("nu",))
    tfno = {"n_modes": (4, 4), "hidden_channels": 8, "n_layers": 1, "factorization": "tucker"}
    stack = [("cape", {"width": 8, "kernel": 3, "modes": 2}), ("multigrid", {"levels": 1})]
    model = build_stack("tfno", tfno, stack, context, rngs=nnx.Rngs(0))
    check_grid(model, (16, 16))
    # CAPE adds its guess to the input; the patching then triples the channels it sees.
    assert model.operator.operator.in_channels == 2 * 2
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 16, 16, 1)), jnp.float32)
    out = model(x, pde_params=jnp.asarray([[0.5], [2.0]]))
    assert out.shape == (2, 16, 16, 1) and bool(jnp.all(jnp.isfinite(out)))


def test_models_command_prints_what_cape_adds(capsys):
    from surrogates.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    (first, second) = [line for line in out.splitlines() if "adds" in line]
    block = CAPEBlock(1, 1, 1, (128,), (True,), rngs=nnx.Rngs(0))
    count = sum(np.size(leaf) for leaf in jax.tree.leaves(nnx.state(block, nnx.Param)))
    assert f"adds {count + 3:,} parameters on 128 cells" in first  # + the 1x1 mix, 2 -> 1
    assert "on 64x64 cells" in second
