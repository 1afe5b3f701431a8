"""U-Nets: the references' parameter counts, shapes, grid checks, periodic padding as
translation equivariance, the transposed convolution on periodic axes, and (with torch
installed) the outputs of torch models of the same structure with the same weights."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models import ModernUNet, UNet, build
from surrogates.models.convolution import Conv, ConvTranspose

# One compilation per model structure and input shape, instead of one per operation.
apply = nnx.jit(lambda model, x: model(x))


def param_count(build_model) -> int:
    """Parameters of the model `build_model()` makes, counted without allocating them."""
    model = nnx.eval_shape(build_model)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


def pdebench_unet_parameters(
    cin: int, cout: int, f: int, dims: int, norm: bool = True, levels: int = 4
) -> int:
    """PDEBench's `UNet{dims}d(cin, cout, f)`, layer by layer, its BatchNorms counted as 2 x C
    (without a norm, a bias per convolution instead: C); `levels` other than its 4 repeat or
    drop the middle levels."""

    def block(a: int, b: int) -> int:  # conv3 (no bias), norm, tanh; twice
        return 3**dims * (a * b + b * b) + (4 * b if norm else 2 * b)

    def upconv(a: int, b: int) -> int:  # ConvTranspose(a, b, kernel_size=2, stride=2)
        return a * b * 2**dims + b

    widths = [f * 2**k for k in range(levels + 1)]  # levels, then the bottleneck
    encoders = block(cin, f) + sum(block(w, 2 * w) for w in widths[:-2])
    bottleneck = block(widths[-2], widths[-1])
    decoders = sum(upconv(2 * w, w) + block(2 * w, w) for w in widths[:-1])
    return encoders + bottleneck + decoders + f * cout + cout


def pdearena_unet_parameters(
    cin: int,
    cout: int,
    hidden: int = 64,
    ch_mults: tuple[int, ...] = (1, 2, 2, 4),
    n_blocks: int = 2,
    norm: bool = True,
    mid_attn: bool = False,
    use1x1: bool = False,
    dims: int = 2,
) -> int:
    """PDEArena's `twod_unet.Unet`, following its constructor's loops (the 2D layers made
    `dims`-dimensional); its attention block's GroupNorm is counted, as torch counts it."""

    def conv(a: int, b: int, k: int) -> int:
        return a * b * k**dims + b

    def residual(a: int, b: int) -> int:
        shortcut = conv(a, b, 1) if a != b else 0
        return conv(a, b, 3) + conv(b, b, 3) + shortcut + (2 * a + 2 * b if norm else 0)

    def attention(c: int) -> int:  # GroupNorm, Linear(c, 3c), Linear(c, c)
        return 2 * c + c * 3 * c + 3 * c + c * c + c

    outer = 1 if use1x1 else 3
    total = conv(cin, hidden, outer)
    width = hidden
    for i, mult in enumerate(ch_mults):  # DownBlocks, Downsample
        out = width * mult
        for _ in range(n_blocks):
            total += residual(width, out)
            width = out
        if i < len(ch_mults) - 1:
            total += conv(width, width, 3)
    total += 2 * residual(width, width) + (attention(width) if mid_attn else 0)
    for i in reversed(range(len(ch_mults))):  # UpBlock(a, b) is ResidualBlock(a + b, b)
        total += n_blocks * residual(2 * width, width)
        out = width // ch_mults[i]
        total += residual(width + out, out)
        width = out
        if i > 0:
            total += conv(width, width, 4)  # Upsample: ConvTranspose(n, n, 4, 2, 1)
    return total + (2 * hidden if norm else 0) + conv(width, cout, outer)


def test_pdebench_count_is_the_known_unet_count():
    # mateuszbuda's brain-segmentation U-Net, which PDEBench's is: 7,763,041 parameters.
    assert pdebench_unet_parameters(3, 1, 32, 2) == 7_763_041
    assert param_count(lambda: UNet(3, 1, rngs=nnx.Rngs(0))) == 7_763_041


@pytest.mark.parametrize(
    ("cin", "cout", "kwargs"),
    [
        (1, 1, {}),
        (10, 4, {"init_features": 16}),
        (2, 1, {"spatial_dims": 1}),
        (3, 2, {"spatial_dims": 1, "init_features": 8, "norm": "instance"}),
        (3, 2, {"spatial_dims": 1, "init_features": 8, "norm": None}),
        (4, 3, {"init_features": 8, "norm": None, "padding": "circular"}),
        (2, 2, {"spatial_dims": 3, "init_features": 8}),
        (5, 1, {"init_features": 8, "num_layers": 2}),
        (5, 1, {"spatial_dims": 1, "init_features": 8, "num_layers": 6, "norm": None}),
    ],
)
def test_unet_parameter_count_is_pdebenchs(cin, cout, kwargs):
    dims = kwargs.get("spatial_dims", 2)
    expected = pdebench_unet_parameters(
        cin,
        cout,
        kwargs.get("init_features", 32),
        dims,
        norm=kwargs.get("norm", "group") is not None,
        levels=kwargs.get("num_layers", 4),
    )
    assert param_count(lambda: UNet(cin, cout, rngs=nnx.Rngs(0), **kwargs)) == expected


def test_unetmod_64_has_pdearenas_144m_parameters():
    # Navier-Stokes 2D: 4 history frames of 3 fields in, 1 frame out.
    expected = pdearena_unet_parameters(12, 3)
    assert expected == 144_263_683
    assert round(expected / 1e6) == 144  # PDEArena's model zoo: "Unetmod-64 144M"
    assert param_count(lambda: ModernUNet(12, 3, rngs=nnx.Rngs(0))) == expected


@pytest.mark.parametrize(
    ("cin", "cout", "kwargs"),
    [
        (4, 2, {"hidden_channels": 32}),
        (12, 3, {"hidden_channels": 16, "use1x1": True}),
        (3, 1, {"hidden_channels": 16, "ch_mults": (1, 2, 2), "n_blocks": 1, "norm": False}),
        (2, 1, {"spatial_dims": 1, "hidden_channels": 16, "ch_mults": (2, 2, 3)}),
        (2, 1, {"spatial_dims": 1, "hidden_channels": 8, "n_blocks": 3, "padding": "circular"}),
    ],
)
def test_modern_unet_parameter_count_is_pdearenas(cin, cout, kwargs):
    options = {"hidden": kwargs.get("hidden_channels", 64), "dims": kwargs.get("spatial_dims", 2)}
    options |= {k: kwargs[k] for k in ("ch_mults", "n_blocks", "norm", "use1x1") if k in kwargs}
    expected = pdearena_unet_parameters(cin, cout, **options)
    assert param_count(lambda: ModernUNet(cin, cout, rngs=nnx.Rngs(0), **kwargs)) == expected


def test_modern_unet_attention_leaves_out_the_references_unused_norm():
    middle = 64 * 16  # the bottom width of Unetmodattn-64
    expected = pdearena_unet_parameters(12, 3, mid_attn=True) - 2 * middle
    assert param_count(lambda: ModernUNet(12, 3, mid_attn=True, rngs=nnx.Rngs(0))) == expected


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("unet", {"init_features": 4, "spatial_dims": 1}, (2, 48, 3)),
        ("unet", {"init_features": 2}, (2, 16, 32, 3)),
        ("unet", {"init_features": 2, "num_layers": 2, "spatial_dims": 3}, (1, 8, 4, 4, 3)),
        ("unet_mod", {"hidden_channels": 8, "ch_mults": (1, 2, 2), "spatial_dims": 1}, (2, 12, 3)),
        ("unet_mod", {"hidden_channels": 8, "ch_mults": (1, 2), "mid_attn": True}, (2, 8, 6, 3)),
        (
            "unet_mod",
            {"hidden_channels": 8, "ch_mults": (1, 2), "spatial_dims": 3},
            (1, 4, 4, 4, 3),
        ),
    ],
)
def test_output_shape(name, kwargs, shape):
    model = build(name, in_channels=3, out_channels=5, rngs=nnx.Rngs(0), **kwargs)
    model.check_grid(shape[1:-1])
    pde_params = jnp.ones((shape[0], 2))
    out = nnx.jit(lambda model, x: model(x, pde_params=pde_params))(model, jnp.ones(shape))
    assert out.shape == (*shape[:-1], 5)
    with pytest.raises(ValueError, match="expected input"):
        model(jnp.ones((*shape[:-1], 4)))


@pytest.mark.parametrize(
    ("cls", "kwargs", "grid", "factor"),
    [
        (UNet, {"init_features": 2}, (32, 40), 16),
        (UNet, {"init_features": 2, "spatial_dims": 1}, (24,), 16),
        (UNet, {"init_features": 2, "num_layers": 2}, (8, 6), 4),
        (ModernUNet, {"hidden_channels": 8}, (64, 20), 8),
    ],
)
def test_grid_check_names_the_stride(cls, kwargs, grid, factor):
    model = nnx.eval_shape(lambda: cls(1, 1, rngs=nnx.Rngs(0), **kwargs))
    with pytest.raises(ModelError, match=rf"divisible by {factor}.*data\.stride_x"):
        model.check_grid(grid)
    with pytest.raises(ModelError, match="spatial axes"):
        model.check_grid((64,) * (3 - len(grid)))


def test_bad_options_fail_in_one_line():
    with pytest.raises(ModelError, match="unet: padding='auto' takes the data's boundary"):
        UNet(1, 1, padding="auto", rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match="unet: padding: expected one of"):
        UNet(1, 1, padding="reflect", rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match="unet: norm must be one of"):
        UNet(1, 1, norm="batch", rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match=r"unet_mod: hidden_channels must be .* a multiple of 8"):
        ModernUNet(1, 1, hidden_channels=12, rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match="unet_mod: ch_mults must be positive integers"):
        ModernUNet(1, 1, ch_mults=(1, 1.5), rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match="unet_mod: activation: unknown 'swish'"):
        ModernUNet(1, 1, activation="swish", rngs=nnx.Rngs(0))


def equivariance_gaps(model: nnx.Module, x: np.ndarray, shift: int) -> list[float]:
    """Per spatial axis, the largest difference between the model's output on `x` rolled by
    `shift` along that axis and its output on `x`, rolled."""
    y = np.asarray(apply(model, jnp.asarray(x)))
    gaps = []
    for axis in range(1, x.ndim - 1):
        rolled = np.asarray(apply(model, jnp.asarray(np.roll(x, shift, axis=axis))))
        gaps.append(float(np.max(np.abs(rolled - np.roll(y, shift, axis=axis)))))
    return gaps


UNET = {"init_features": 4}
UNET_MOD = {"hidden_channels": 8, "ch_mults": (1, 2, 2), "n_blocks": 1, "mid_attn": True}


@pytest.mark.parametrize(
    ("cls", "kwargs", "shape", "shift"),
    [
        (UNet, UNET, (2, 32, 32, 3), 16),
        (UNet, {**UNET, "num_layers": 3}, (2, 32, 3), 8),
        (ModernUNet, UNET_MOD, (2, 16, 16, 3), 4),
        (ModernUNet, UNET_MOD, (2, 32, 3), 4),
    ],
)
def test_circular_padding_commutes_with_rolls_by_whole_coarse_cells(cls, kwargs, shape, shift):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    dims = len(shape) - 2
    circular = cls(3, 2, padding="circular", spatial_dims=dims, rngs=nnx.Rngs(1), **kwargs)
    assert max(equivariance_gaps(circular, x, shift)) < 1e-4
    zeros = cls(3, 2, padding="zeros", spatial_dims=dims, rngs=nnx.Rngs(1), **kwargs)
    assert min(equivariance_gaps(zeros, x, shift)) > 1e-2


@pytest.mark.parametrize(("cls", "kwargs", "shift"), [(UNet, UNET, 16), (ModernUNet, UNET_MOD, 4)])
def test_auto_padding_wraps_the_periodic_axes_only(cls, kwargs, shift):
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    boundary = ("periodic", "dirichlet")
    model = cls(3, 2, padding="auto", boundary=boundary, rngs=nnx.Rngs(1), **kwargs)
    along_periodic, along_wall = equivariance_gaps(model, x, shift)
    assert along_periodic < 1e-4 and along_wall > 1e-2


def copy_weights(source: nnx.Module, target: nnx.Module) -> None:
    """`target`'s parameters set to `source`'s (same structure, another random draw)."""
    nnx.update(target, nnx.state(source, nnx.Param))


def tiled(x: np.ndarray, dims: int) -> np.ndarray:
    """`x (B, *X, C)` repeated 3 times along every spatial axis."""
    return np.tile(x, (1, *(3,) * dims, 1))


def middle(y: np.ndarray, dims: int) -> np.ndarray:
    """The middle third of `y (B, *3X, C)` along every spatial axis."""
    index = tuple(slice(n // 3, 2 * n // 3) for n in y.shape[1:-1])
    return y[(slice(None), *index)]


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize(
    "make",
    [
        lambda periodic: ConvTranspose(3, 4, 4, periodic, stride=2, rngs=nnx.Rngs(0)),
        lambda periodic: ConvTranspose(3, 4, 2, periodic, stride=2, rngs=nnx.Rngs(0)),
        lambda periodic: ConvTranspose(3, 4, 5, periodic, stride=3, rngs=nnx.Rngs(0)),
        lambda periodic: Conv(3, 4, 3, periodic, stride=2, rngs=nnx.Rngs(0)),
    ],
)
def test_periodic_convolutions_see_a_periodically_repeated_input(make, dims):
    """On periodic axes a layer computes what its zero-padded twin computes on the input
    repeated on both sides, away from the borders."""
    x = np.random.default_rng(dims).normal(size=(2, *(6,) * dims, 3)).astype(np.float32)
    periodic, zeros = make((True,) * dims), make((False,) * dims)
    copy_weights(periodic, zeros)
    expected = middle(np.asarray(zeros(jnp.asarray(tiled(x, dims)))), dims)
    np.testing.assert_allclose(periodic(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)


def test_transposed_convolution_starts_from_torchs_distribution():
    layer = ConvTranspose(64, 32, 4, (False, False), stride=2, rngs=nnx.Rngs(0))
    bound = 1 / math.sqrt(32 * 4 * 4)  # torch's fan-in of a transposed weight: out x k^d
    for leaf in (layer.kernel[...], layer.bias[...]):
        assert 0.9 * bound < float(jnp.max(jnp.abs(leaf))) <= bound
    assert layer.kernel.shape == (4, 4, 64, 32)


# --- The same structures written in torch, from the reference sources. ---


def torch_layers(dims: int):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
    transposed = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims]
    return torch, nn, conv, transposed


def torch_unet(cin: int, cout: int, f: int, dims: int, padding_mode: str):
    """PDEBench's `UNet{dims}d`, BatchNorm replaced by GroupNorm(1, C)."""
    torch, nn, conv, transposed = torch_layers(dims)
    pool = {1: nn.MaxPool1d, 2: nn.MaxPool2d}[dims](kernel_size=2, stride=2)

    class DoubleConv(nn.Module):
        def __init__(self, a, b):
            super().__init__()
            options = {"padding": 1, "bias": False, "padding_mode": padding_mode}
            self.conv1, self.norm1 = conv(a, b, 3, **options), nn.GroupNorm(1, b)
            self.conv2, self.norm2 = conv(b, b, 3, **options), nn.GroupNorm(1, b)

        def forward(self, x):
            x = torch.tanh(self.norm1(self.conv1(x)))
            return torch.tanh(self.norm2(self.conv2(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleList(
                [
                    DoubleConv(a, b)
                    for a, b in [(cin, f), (f, 2 * f), (2 * f, 4 * f), (4 * f, 8 * f)]
                ]
            )
            self.bottleneck = DoubleConv(8 * f, 16 * f)
            widths = [8 * f, 4 * f, 2 * f, f]
            self.upsamples = nn.ModuleList([transposed(2 * w, w, 2, stride=2) for w in widths])
            self.decoders = nn.ModuleList([DoubleConv(2 * w, w) for w in widths])
            self.output = conv(f, cout, 1)

        def forward(self, x):
            skips = []
            for encoder in self.encoders:
                x = encoder(x)
                skips.append(x)
                x = pool(x)
            x = self.bottleneck(x)
            for upsample, decoder in zip(self.upsamples, self.decoders, strict=True):
                x = decoder(torch.cat((upsample(x), skips.pop()), dim=1))
            return self.output(x)

    return Net()


def torch_modern_unet(cin: int, cout: int, hidden: int, ch_mults, n_blocks: int, dims: int):
    """PDEArena's `twod_unet.Unet` with `norm=True, mid_attn=True`, zero padding; the
    attention's never-applied GroupNorm left out."""
    torch, nn, conv, transposed = torch_layers(dims)
    act = nn.GELU()

    class Residual(nn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.conv1, self.conv2 = conv(a, b, 3, padding=1), conv(b, b, 3, padding=1)
            self.norm1, self.norm2 = nn.GroupNorm(1, a), nn.GroupNorm(1, b)
            self.shortcut = conv(a, b, 1) if a != b else None

        def forward(self, x):
            h = self.conv1(act(self.norm1(x)))
            h = self.conv2(act(self.norm2(h)))
            return h + (x if self.shortcut is None else self.shortcut(x))

    class Attention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.projection, self.output = nn.Linear(c, 3 * c), nn.Linear(c, c)
            self.c = c

        def forward(self, x):
            shape = x.shape
            x = x.view(shape[0], self.c, -1).permute(0, 2, 1)
            qkv = self.projection(x).view(shape[0], -1, 1, 3 * self.c)
            q, k, v = torch.chunk(qkv, 3, dim=-1)
            attn = (torch.einsum("bihd,bjhd->bijh", q, k) * self.c**-0.5).softmax(dim=1)
            res = torch.einsum("bijh,bjhd->bihd", attn, v).reshape(shape[0], -1, self.c)
            res = self.output(res) + x
            return res.permute(0, 2, 1).reshape(shape)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lifting = conv(cin, hidden, 3, padding=1)
            down, width = [], hidden
            for i, mult in enumerate(ch_mults):
                out = width * mult
                for _ in range(n_blocks):
                    down.append(Residual(width, out))
                    width = out
                if i < len(ch_mults) - 1:
                    down.append(conv(width, width, 3, stride=2, padding=1))
            self.down = nn.ModuleList(down)
            self.middle = nn.ModuleList(
                [Residual(width, width), Attention(width), Residual(width, width)]
            )
            up = []
            for i in reversed(range(len(ch_mults))):
                up += [Residual(2 * width, width) for _ in range(n_blocks)]
                out = width // ch_mults[i]
                up.append(Residual(width + out, out))
                width = out
                if i > 0:
                    up.append(transposed(width, width, 4, 2, 1))
            self.up = nn.ModuleList(up)
            self.norm = nn.GroupNorm(8, hidden)
            self.projection = conv(hidden, cout, 3, padding=1)

        def forward(self, x):
            x = self.lifting(x)
            skips = [x]
            for module in self.down:
                x = module(x)
                skips.append(x)
            for module in self.middle:
                x = module(x)
            for module in self.up:
                x = (
                    module(x)
                    if isinstance(module, transposed)
                    else module(torch.cat((x, skips.pop()), dim=1))
                )
            return self.projection(act(self.norm(x)))

    return Net()


def load_into_torch(model: nnx.Module, net) -> None:
    """`net`'s parameters set to `model`'s, matched by path: the torch modules carry the names
    of the Flax ones (a Flax `Conv` wraps its `nnx.Conv` as `conv`)."""
    torch, nn = pytest.importorskip("torch"), pytest.importorskip("torch.nn")
    convs = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)
    loaded = set()
    for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        module = net
        for key in path[:-1]:
            if isinstance(module, convs):
                break
            module = module[key] if isinstance(key, int) else getattr(module, key)
        value = np.asarray(variable[...])
        if path[-1] == "kernel":
            target = module.weight
            if isinstance(module, nn.Linear):
                value = value.T
            elif isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d):
                value = np.moveaxis(value, (-2, -1), (0, 1))  # (*k, in, out) -> (in, out, *k)
            else:  # (*k, in, out) -> (out, in, *k); a 1x1 kernel is stored (in, out)
                value = np.moveaxis(value, (-1, -2), (0, 1)).reshape(target.shape)
        else:
            target = module.bias if path[-1] == "bias" else module.weight
        assert target.shape == value.shape, path
        target.data = torch.from_numpy(np.array(value))  # a writable copy
        loaded.add(id(target))
    assert loaded == {id(p) for p in net.parameters()}


def compare_with_torch(model: nnx.Module, net, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    load_into_torch(model, net)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()
    actual = np.asarray(apply(model, jnp.asarray(x)))
    np.testing.assert_allclose(actual, np.moveaxis(expected, 1, -1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "circular"])
@pytest.mark.parametrize(("dims", "shape"), [(2, (2, 32, 16, 3)), (1, (2, 48, 3))])
def test_unet_computes_what_the_torch_model_computes(dims, shape, padding):
    model = UNet(3, 2, spatial_dims=dims, init_features=4, padding=padding, rngs=nnx.Rngs(0))
    compare_with_torch(model, torch_unet(3, 2, 4, dims, padding), shape)


@pytest.mark.parametrize(("dims", "shape"), [(2, (2, 16, 8, 3)), (1, (2, 32, 3))])
def test_modern_unet_computes_what_the_torch_model_computes(dims, shape):
    options = {"hidden_channels": 8, "ch_mults": (1, 2, 2), "n_blocks": 2, "mid_attn": True}
    model = ModernUNet(3, 2, spatial_dims=dims, rngs=nnx.Rngs(0), **options)
    net = torch_modern_unet(3, 2, 8, (1, 2, 2), 2, dims)
    compare_with_torch(model, net, shape)
