"""FNO: shapes on any grid, neuraloperator's parameter count and layer order, gradients, jit."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import FNO
from surrogates.models.fno import ACTIVATIONS, apply_blocks, grid_embedding

# One compilation per model structure and input shape, instead of one per operation.
apply = nnx.jit(lambda model, x: model(x))


def param_count(model: nnx.Module) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


def filled_fno(*args, seed: int = 0, **kwargs) -> FNO:
    """An FNO with random N(0, 0.3^2) parameters, built abstractly and then filled.

    Shape tests do not depend on the initialiser, and skipping it saves compiling a random
    draw for every parameter shape; `model` below is a really initialised FNO.
    """
    abstract = nnx.eval_shape(lambda: FNO(*args, rngs=nnx.Rngs(0), **kwargs))
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)
    state = jax.tree.map(
        lambda leaf: jnp.asarray(0.3 * rng.normal(size=leaf.shape), leaf.dtype), state
    )
    return nnx.merge(graphdef, state)


def test_gelu_is_torchs_erf_form_and_matches_jax_exact_gelu():
    gelu = jax.jit(ACTIVATIONS["gelu"])
    x = np.linspace(-16.0, 16.0, 200_001, dtype=np.float32)
    y = np.asarray(gelu(jnp.asarray(x)))
    x64 = x.astype(np.float64)
    expected = 0.5 * x64 * (1 + np.asarray([math.erf(v) for v in x64 / math.sqrt(2)]))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1.5e-6)
    jax_exact = np.asarray(jax.nn.gelu(jnp.asarray(x), approximate=False))
    np.testing.assert_allclose(y, jax_exact, rtol=0, atol=1e-6)
    assert gelu(jnp.ones(3, jnp.bfloat16)).dtype == jnp.bfloat16


@pytest.fixture(scope="module")
def model() -> FNO:
    return FNO((6, 6), 3, 2, 8, n_layers=2, domain_padding=0.2, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    ("n_modes", "x_shape", "out_channels", "kwargs"),
    [
        ((8,), (2, 33, 2), 3, {}),
        ((6, 6), (2, 15, 17, 3), 1, {}),
        ((4, 4, 4), (1, 7, 9, 6, 2), 2, {}),
        ((6, 6), (2, 15, 17, 3), 1, {"domain_padding": 0.25}),
        ((6, 5), (1, 13, 11, 3), 1, {"domain_padding": (0.1, 0.3)}),
        ((8,), (2, 33, 2), 1, {"positional_embedding": None}),
        ((6,), (2, 31, 2), 1, {"fno_skip": "identity", "channel_mlp_skip": None}),
        ((6,), (2, 31, 2), 1, {"lifting_channel_ratio": 0, "projection_channel_ratio": 4}),
    ],
)
def test_output_shape(n_modes, x_shape, out_channels, kwargs):
    fno = filled_fno(n_modes, x_shape[-1], out_channels, 6, n_layers=2, **kwargs)
    x = np.random.default_rng(0).normal(size=x_shape).astype(np.float32)
    y = apply(fno, jnp.asarray(x))
    assert y.shape == (*x_shape[:-1], out_channels)
    assert y.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(y)))


def test_grid_embedding_appends_coordinates_without_the_endpoint():
    x = jnp.zeros((2, 4, 5, 1))
    y = np.asarray(grid_embedding(x))
    assert y.shape == (2, 4, 5, 3)
    np.testing.assert_allclose(y[0, :, 0, 1], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(y[1, 0, :, 2], [0, 0.2, 0.4, 0.6, 0.8])
    np.testing.assert_array_equal(y[..., 0], 0)


@pytest.mark.parametrize(("embedding", "width"), [("grid", 3 + 2), (None, 3)])
def test_lifting_reads_input_and_grid_channels(embedding, width):
    fno = nnx.eval_shape(
        lambda: FNO((6, 6), 3, 1, 8, positional_embedding=embedding, rngs=nnx.Rngs(0))
    )
    assert fno.lifting.layers[0].kernel.shape == (width, 16)


def neuraloperator_param_count(
    n_modes,
    in_channels,
    out_channels,
    hidden,
    n_layers=4,
    lifting_channel_ratio=2,
    projection_channel_ratio=2,
    channel_mlp_expansion=0.5,
    positional_embedding="grid",
    fno_skip="linear",
    channel_mlp_skip="soft-gating",
):
    """Parameters of neuraloperator's FNO, a complex number counting as two (its
    `count_model_params`). 1x1 convolutions have bias except linear skips."""

    def conv1x1(a, b, bias=True):
        return a * b + (b if bias else 0)

    def mlp(a, hidden_width, b):
        return (
            conv1x1(a, hidden_width) + conv1x1(hidden_width, b) if hidden_width else conv1x1(a, b)
        )

    skips = {"linear": hidden * hidden, "soft-gating": hidden, "identity": 0, None: 0}
    lifted_in = in_channels + (len(n_modes) if positional_embedding else 0)
    lifting = mlp(lifted_in, lifting_channel_ratio * hidden, hidden)
    # Complex weight (hidden, hidden, *n_modes[:-1], n_modes[-1] // 2 + 1) plus a real bias.
    weight_modes = math.prod(n_modes[:-1]) * (n_modes[-1] // 2 + 1)
    spectral = 2 * hidden * hidden * weight_modes + hidden
    channel_mlp = mlp(hidden, round(channel_mlp_expansion * hidden), hidden)
    block = spectral + skips[fno_skip] + channel_mlp + skips[channel_mlp_skip]
    projection = mlp(hidden, projection_channel_ratio * hidden, out_channels)
    return lifting + n_layers * block + projection


def test_parameter_count_of_the_default_2d_fno():
    fno = nnx.eval_shape(lambda: FNO((16, 16), 3, 1, 32, rngs=nnx.Rngs(0)))
    # lifting (3 + 2) -> 64 -> 32:              5*64 + 64 + 64*32 + 32 =     2_464
    # per block: spectral 2 * 32*32*16*9 + 32 = 294_944; linear skip 32*32 = 1_024;
    #   channel MLP 32 -> 16 -> 32: 528 + 544 = 1_072; soft gating 32    = 297_072
    # projection 32 -> 64 -> 1:                 32*64 + 64 + 64*1 + 1 =     2_177
    assert param_count(fno) == 2_464 + 4 * 297_072 + 2_177 == 1_192_929
    assert neuraloperator_param_count((16, 16), 3, 1, 32) == 1_192_929


@pytest.mark.parametrize(
    ("n_modes", "kwargs"),
    [
        ((12,), {}),
        ((5, 7), {"n_layers": 3, "channel_mlp_expansion": 0.75}),
        ((4, 6, 5), {"n_layers": 2}),
        ((9, 8), {"fno_skip": "soft-gating", "channel_mlp_skip": "linear"}),
        ((8,), {"fno_skip": "identity", "channel_mlp_skip": None, "positional_embedding": None}),
        ((8, 8), {"lifting_channel_ratio": 0, "projection_channel_ratio": 4}),
    ],
)
def test_parameter_count_matches_neuraloperator(n_modes, kwargs):
    fno = nnx.eval_shape(lambda: FNO(n_modes, 2, 3, 10, rngs=nnx.Rngs(0), **kwargs))
    assert param_count(fno) == neuraloperator_param_count(n_modes, 2, 3, 10, **kwargs)


def exact_gelu(x):
    return 0.5 * x * (1 + jax.scipy.special.erf(x / np.sqrt(2)))


def reference_forward(fno: FNO, x: jax.Array) -> jax.Array:
    """neuraloperator's FNO.forward spelled out with the model's own layers."""
    h = fno.lifting.layers[1](exact_gelu(fno.lifting.layers[0](grid_embedding(x))))
    pads = [round(0.2 * n) for n in h.shape[1:-1]]
    h = jnp.pad(h, [(0, 0), *((p, p) for p in pads), (0, 0)])
    for i, block in enumerate(fno.blocks):
        last = i == len(fno.blocks) - 1
        y = block.spectral(h) + h @ block.fno_skip.kernel[...]
        y = y if last else exact_gelu(y)
        mlp = block.channel_mlp.layers
        y = mlp[1](exact_gelu(mlp[0](y))) + h * block.channel_mlp_skip.weight[...]
        h = y if last else exact_gelu(y)
    h = h[:, pads[0] : h.shape[1] - pads[0], pads[1] : h.shape[2] - pads[1]]
    return fno.projection.layers[1](exact_gelu(fno.projection.layers[0](h)))


def test_forward_follows_neuraloperator_order(model):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 15, 11, 3)), jnp.float32)
    expected = nnx.jit(reference_forward)(model, x)
    np.testing.assert_allclose(np.asarray(apply(model, x)), np.asarray(expected), atol=1e-5)


def test_initialisation_follows_torch_defaults(model):
    lifting = model.lifting.layers[0]
    bound = 1 / np.sqrt(5)
    for leaf in (lifting.kernel[...], lifting.bias[...]):
        assert np.all(np.abs(np.asarray(leaf)) <= bound)
        assert np.abs(np.asarray(leaf)).max() > 0.8 * bound
    np.testing.assert_array_equal(np.asarray(model.blocks[0].channel_mlp_skip.weight[...]), 1)
    assert model.blocks[0].fno_skip.bias is None


def test_same_weights_run_at_twice_the_resolution(model):
    for grid in [(12, 10), (24, 20)]:
        y = apply(model, jnp.ones((1, *grid, 3)))
        assert y.shape == (1, *grid, 2)
        assert np.all(np.isfinite(np.asarray(y)))


def test_every_parameter_gets_a_gradient(model):
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 12, 10, 3)), jnp.float32)

    def loss(fno: FNO) -> jax.Array:
        return jnp.mean(fno(x) ** 2)

    grads = nnx.jit(nnx.grad(loss))(model)
    for path, grad in nnx.to_flat_state(grads):
        assert np.any(np.asarray(grad[...]) != 0), path


def unrolled(blocks, x):
    for block in blocks:
        x = block(x)
    return x


@pytest.mark.parametrize("different_block", [None, 0, 1, 2])
def test_scanned_blocks_match_unrolled_ones_in_values_and_gradients(different_block):
    fno = filled_fno((6, 6), 3, 2, 8, n_layers=4, max_n_modes=(6, 6), seed=7)
    if different_block is not None:
        # A block with other static data splits the run of alike blocks around it.
        fno.blocks[different_block].spectral.set_n_modes((4, 4))
    blocks = list(fno.blocks)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 12, 10, 8)), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(jax.jit(apply_blocks)(blocks, x)),
        np.asarray(jax.jit(unrolled)(blocks, x)),
        rtol=1e-5,
        atol=1e-5,
    )

    def loss(run, params):
        return jnp.sum(jnp.sin(run(nnx.merge(graphdef, params), x)))

    graphdef, params = nnx.split(fno.blocks)
    scanned = jax.jit(jax.grad(lambda p: loss(lambda b, h: apply_blocks(list(b), h), p)))(params)
    expected = jax.jit(jax.grad(lambda p: loss(lambda b, h: unrolled(list(b), h), p)))(params)
    for got, want in zip(jax.tree.leaves(scanned), jax.tree.leaves(expected), strict=True):
        # Float32 sums in another order: compare against each gradient's own scale.
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=0, atol=1e-4 * np.abs(want).max()
        )


def primitives(jaxpr: jax.extend.core.ClosedJaxpr) -> set[str]:
    """Names of the primitives in `jaxpr` and every jaxpr nested in it."""
    names = set()
    for eqn in jaxpr.jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            names |= primitives(jax.extend.core.ClosedJaxpr(sub, ()))
    return names


def test_blocks_are_scanned_for_values_and_unrolled_for_gradients():
    fno = filled_fno((6, 6), 3, 2, 8, n_layers=4, seed=7)
    graphdef, params = nnx.split(fno.blocks)
    x = jnp.ones((2, 12, 10, 8))

    def run(p, h):
        return apply_blocks(list(nnx.merge(graphdef, p)), h)

    assert "scan" in primitives(jax.make_jaxpr(run)(params, x))
    gradient = jax.make_jaxpr(jax.grad(lambda p: jnp.sum(run(p, x))))(params)
    assert "scan" not in primitives(gradient)
    # The three alike blocks rematerialised one by one; the last (alone) is not.
    remat = jax.make_jaxpr(jax.checkpoint(jnp.sin))(1.0).jaxpr.eqns[0].primitive.name
    assert sum(eqn.primitive.name == remat for eqn in gradient.jaxpr.eqns) == 3


def test_jit_matches_eager_and_params_are_ignored(model):
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 9, 8, 3)), jnp.float32)
    eager = np.asarray(model(x, pde_params=jnp.ones((2, 1))))
    np.testing.assert_allclose(eager, np.asarray(apply(model, x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_modes": 16}, "n_modes"),
        ({"n_modes": (4, 4, 4, 4)}, "n_modes"),
        ({"positional_embedding": "sincos"}, "positional_embedding"),
        ({"fno_skip": "lin"}, "fno_skip"),
        ({"channel_mlp_skip": "gating"}, "channel_mlp_skip"),
        ({"non_linearity": "gleu"}, "non_linearity"),
        ({"norm": "group_norm"}, "norm"),
        ({"domain_padding": (0.1, 0.2, 0.3)}, "domain_padding"),
        ({"domain_padding": -0.1}, "domain_padding"),
    ],
)
def test_bad_options_raise_model_error(kwargs, message):
    arguments = {"n_modes": (8, 8), "in_channels": 1, "out_channels": 1, "hidden_channels": 4}
    arguments.update(kwargs)
    with pytest.raises(ModelError, match=message):
        nnx.eval_shape(lambda: FNO(**arguments, rngs=nnx.Rngs(0)))
