"""SineNet: the published parameter counts, torch's bicubic upsampling, the wave structure,
periodic padding, the grid check, and (with torch installed) the published model's outputs."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import SineNet, build
from surrogates.models.contract import check_grid
from surrogates.models.convolution import avg_pool2x, torch_uniform, upsample_cubic2x
from surrogates.models.sinenet import sinusoidal_embedding


def parameters(model: nnx.Module) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def count(name: str, **arguments) -> int:
    """Parameters of a registered model, from shapes alone (nothing allocated)."""
    return parameters(nnx.eval_shape(lambda: build(name, rngs=nnx.Rngs(0), **arguments)))


def published_count(c_in, c_out, hidden, waves, mult, blocks=1, disentangle=True) -> int:
    """The published model's parameters, from its layer list: convolutions with bias,
    GroupNorm's scale and shift, the 1x1 residuals."""

    def conv_block(a: int, b: int) -> int:
        return a * b * 9 + b + b * b * 9 + b + 4 * b

    widths = [int(hidden * mult**k) for k in range(5)]
    total = c_in * hidden * 9 + hidden + hidden * c_out * 9 + c_out
    for _ in range(waves):
        for k in range(4):
            a, b = widths[k], widths[k + 1]
            total += conv_block(a + hidden * (disentangle and k > 0), b)
            total += (blocks - 1) * conv_block(b, b) + a * b + b
            total += conv_block(b + a, a) + (blocks - 1) * conv_block(a, a) + b * a + a
    return total


@pytest.mark.parametrize(
    ("name", "c_in", "c_out", "expected"),
    [
        ("sinenet8", 12, 3, 35_490_219),  # the registry comment of the published code
        ("sinenet2", 40, 4, None),
        ("sinenet6", 6, 3, None),
    ],
)
def test_parameter_counts_are_the_published_ones(name, c_in, c_out, expected):
    waves = int(name.removeprefix("sinenet"))
    mult = {2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}[waves]
    published = published_count(c_in, c_out, 64, waves, mult)
    assert count(name, in_channels=c_in, out_channels=c_out) == published
    if expected is not None:
        assert published == expected


def test_the_tangle_and_deeper_variants_count_as_published():
    # deeper_unet8: one wave of eight blocks per level; sinenet8-tangle: no disentangling.
    deeper = count("sinenet", in_channels=12, out_channels=3, num_waves=1, num_blocks=8)
    assert deeper == published_count(12, 3, 64, 1, 1.425, blocks=8) == 28_628_084
    tangle = count("sinenet", in_channels=12, out_channels=3, num_waves=2, disentangle=False)
    assert tangle == published_count(12, 3, 64, 2, 1.425, disentangle=False)


def torch_bicubic_reference(x: np.ndarray, circular: bool) -> np.ndarray:
    """torch's `interpolate(scale_factor=2, mode="bicubic", align_corners=False)` of the
    last axis of x, written out sample by sample (indices clamped, or wrapped)."""
    a = -0.75

    def weight(s: float) -> float:
        s = abs(s)
        if s <= 1:
            return ((a + 2) * s - (a + 3)) * s * s + 1
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a if s < 2 else 0.0

    n = x.shape[-1]
    out = np.zeros((*x.shape[:-1], 2 * n))
    for o in range(2 * n):
        source = (o + 0.5) / 2 - 0.5
        base = math.floor(source)
        for tap in range(base - 1, base + 3):
            index = tap % n if circular else min(max(tap, 0), n - 1)
            out[..., o] += weight(source - tap) * x[..., index]
    return out


@pytest.mark.parametrize("circular", [False, True])
def test_upsampling_is_torch_bicubic(circular):
    x = np.random.default_rng(0).normal(size=(2, 6, 10, 3))
    expected = torch_bicubic_reference(x.transpose(0, 3, 1, 2), circular)  # along W
    expected = torch_bicubic_reference(expected.swapaxes(-1, -2), circular).swapaxes(-1, -2)
    got = upsample_cubic2x(jnp.asarray(x, jnp.float32), (circular, circular))
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), expected, atol=1e-5)
    # The filter interpolates: a constant stays constant, a linear ramp inside stays linear.
    ones = upsample_cubic2x(jnp.ones((1, 8, 1)), (circular,))
    np.testing.assert_allclose(ones, 1.0, rtol=1e-6)


@pytest.mark.parametrize("periodic", [(False,), (True,), (False, True), (True, False, False)])
def test_upsampling_gradient_is_the_transposed_linear_map(periodic):
    """The upsampling is linear: its gradient against a cotangent w is M^T w, with M the
    matrix of the torch reference applied along each axis (float64 NumPy, no autodiff)."""
    rng = np.random.default_rng(len(periodic))
    grid = (5, 6, 4)[: len(periodic)]
    x = rng.normal(size=(2, *grid, 3))
    w = rng.normal(size=(2, *(2 * n for n in grid), 3))
    expected = w
    for axis in reversed(range(1, len(grid) + 1)):
        n, wraps = grid[axis - 1], periodic[axis - 1]
        matrix = torch_bicubic_reference(np.eye(n), wraps).T  # (2n, n): column j = M e_j
        expected = np.moveaxis(np.tensordot(matrix.T, np.moveaxis(expected, axis, 0), 1), 0, axis)
    got = jax.grad(lambda x: jnp.sum(upsample_cubic2x(x, periodic) * jnp.asarray(w)))(
        jnp.asarray(x, jnp.float32)
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_avg_pool_means_each_block():
    x = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
    pooled = np.asarray(avg_pool2x(jnp.asarray(x)))
    np.testing.assert_allclose(pooled[0, 1, 2, 0], x[0, 2:4, 4:6, 0].mean())


def small(**arguments) -> SineNet:
    settings = {"hidden_channels": 4, "num_waves": 2, "num_layers": 2, "mult": 1.5}
    return SineNet(3, 2, **{**settings, **arguments}, rngs=nnx.Rngs(0))


def test_one_wave_without_disentangling_is_a_u_net():
    """The wave written out as a plain U-Net from its own layers: pool, block plus 1x1
    residual going down; upsample, skip first, block plus residual going up."""
    model = small(num_waves=1, disentangle=False, wave_residual=False, spatial_dims=1)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 16, 3)), jnp.float32)
    (wave,) = model.waves
    h0 = model.lifting(x)
    p1 = avg_pool2x(h0)
    h1 = wave.down[0].blocks[0](p1) + wave.down[0].shortcut(p1)
    p2 = avg_pool2x(h1)
    h2 = wave.down[1].blocks[0](p2) + wave.down[1].shortcut(p2)
    u1 = upsample_cubic2x(h2, (False,))
    g1 = wave.up[0].blocks[0](jnp.concatenate([h1, u1], -1)) + wave.up[0].shortcut(u1)
    u0 = upsample_cubic2x(g1, (False,))
    g0 = wave.up[1].blocks[0](jnp.concatenate([h0, u0], -1)) + wave.up[1].shortcut(u0)
    np.testing.assert_allclose(jax.jit(model)(x), model.projection(g0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dims", [1, 2])
def test_circular_padding_commutes_with_shifts_of_the_coarsest_cell(dims):
    rng = np.random.default_rng(dims)
    x = jnp.asarray(rng.normal(size=(1, *(16,) * dims, 3)), jnp.float32)
    axes = tuple(range(1, dims + 1))
    for padding, equivariant in (("circular", True), ("zeros", False)):
        run = jax.jit(small(spatial_dims=dims, padding=padding))
        shifted = run(jnp.roll(x, 4, axis=axes))  # 4 = 2**num_layers
        close = np.allclose(shifted, jnp.roll(run(x), 4, axis=axes), atol=1e-4)
        assert close == equivariant, padding


def test_auto_padding_follows_the_boundaries():
    model = small(padding="auto", boundary=("periodic", "neumann"))
    assert model.waves[0].up[0].periodic == (True, False)
    assert model.lifting.periodic == (True, False)
    with pytest.raises(ModelError, match="padding='auto' takes the data's boundary"):
        small(padding="auto")
    with pytest.raises(ModelError, match="padding: expected one of zeros, circular, auto"):
        small(padding="reflect")


def test_a_grid_that_does_not_halve_is_refused_naming_the_stride():
    model = nnx.eval_shape(lambda: SineNet(3, 2, hidden_channels=4, num_waves=1, rngs=nnx.Rngs(0)))
    check_grid(model, (32, 48))
    with pytest.raises(ModelError, match=r"divisible by 16; spatial axis 1 has 40 .*data.stride_x"):
        check_grid(model, (32, 40))
    with pytest.raises(ModelError, match="built for 2 spatial axes, the data has 1"):
        check_grid(model, (32,))


def test_the_variants_are_the_class_with_the_published_defaults():
    model = nnx.eval_shape(
        lambda: build(
            "sinenet4", in_channels=6, out_channels=3, hidden_channels=8, rngs=nnx.Rngs(0)
        )
    )
    assert isinstance(model, SineNet) and len(model.waves) == 4
    assert model.widths == tuple(int(8 * 1.611**k) for k in range(5))
    with pytest.raises(ModelError, match="has no argument 'num_wave'"):
        build("sinenet4", in_channels=6, out_channels=3, num_wave=2, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_outputs_equal_the_published_architecture_in_torch(padding):
    torch = pytest.importorskip("torch")  # the `compare` extra
    sys.path.insert(0, str(Path(__file__).parents[2] / "experiments" / "perf"))
    from torch_sinenet import TorchSineNet, copy_from_jax

    settings = {"hidden_channels": 8, "num_waves": 2, "mult": 1.5}
    model = SineNet(4, 2, padding=padding, **settings, rngs=nnx.Rngs(3))
    reference = TorchSineNet(4, 2, padding_mode=padding, **settings)
    assert parameters(model) == sum(p.numel() for p in reference.parameters())
    copy_from_jax(reference, model)
    x = np.random.default_rng(4).normal(size=(2, 32, 32, 4)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.tensor(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(model(jnp.asarray(x)), expected, rtol=1e-4, atol=1e-4)


def test_torch_initialisation_is_uniform_and_reproducible():
    init = torch_uniform(fan_in=36)
    first = np.asarray(init(jax.random.key(0), (64, 64)))
    assert np.array_equal(first, np.asarray(init(jax.random.key(0), (64, 64))))
    assert not np.array_equal(first, np.asarray(init(jax.random.key(1), (64, 64))))
    bound = 1 / 6
    assert first.dtype == np.float32 and np.abs(first).max() <= bound
    assert abs(first.std() - bound / math.sqrt(3)) < 0.01 * bound
    # Traced (as under nnx.eval_shape), JAX draws from the same distribution.
    traced = np.asarray(jax.jit(lambda key: init(key, (64, 64)))(jax.random.key(0)))
    assert np.abs(traced).max() <= bound and abs(traced.std() - first.std()) < 0.02 * bound


@pytest.mark.parametrize(
    ("conditioning", "published"), [("adagn", 40_242_811), ("add", 37_905_139)]
)
def test_conditioned_variants_count_as_published(conditioning, published):
    # The published sinenet8-adagn / -add (one frame of 3 fields, 3 out) embed the time step;
    # here one PDE parameter takes that embedding's place, with the same layers.
    arguments = {"in_channels": 3, "out_channels": 3, "n_params": 1}
    assert count("sinenet8", conditioning=conditioning, **arguments) == published


def test_sinusoidal_embedding_is_cosines_then_sines():
    values = np.array([0.0, 0.5, -2.0])
    got = np.asarray(sinusoidal_embedding(jnp.asarray(values), 7))
    frequencies = 1e4 ** (-np.arange(3) / 3)
    expected = np.concatenate(
        [np.cos(np.outer(values, frequencies)), np.sin(np.outer(values, frequencies))], 1
    )
    np.testing.assert_allclose(got[:, :6], expected, atol=1e-6)
    np.testing.assert_array_equal(got[:, 6], 0.0)


def test_conditioning_makes_the_output_depend_on_the_parameters():
    x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 16, 3)), jnp.float32)
    same = jnp.array([[0.3, 1.0], [0.3, 1.0]])
    other = jnp.array([[0.3, 1.0], [-0.7, 1.0]])
    for conditioning in ("add", "adagn"):
        run = jax.jit(small(spatial_dims=1, conditioning=conditioning, n_params=2))
        first, second = run(x, pde_params=same), run(x, pde_params=other)
        np.testing.assert_array_equal(first[0], second[0])  # each sample its own parameters
        assert not np.allclose(first[1], second[1], atol=1e-4)
    unconditioned = small(spatial_dims=1)
    np.testing.assert_array_equal(
        unconditioned(x, pde_params=same), unconditioned(x, pde_params=other)
    )
    with pytest.raises(ModelError, match="conditioning 'adagn' needs PDE parameters"):
        small(conditioning="adagn")
    with pytest.raises(ModelError, match="conditioning must be one of none, add, adagn"):
        small(conditioning="film", n_params=1)
