"""PDEquinox's architectures in the registry: `pdeqx_conv`, `pdeqx_resnet`,
`pdeqx_modern_resnet`, `pdeqx_dilated_resnet`, `pdeqx_unet`, `pdeqx_modern_unet`,
`pdeqx_fno`.

Each is the PDEquinox network (`pdequinox.arch`) built with its own defaults from the
arguments a config gives, the data's channels, spatial axes and boundary, and a key drawn
from the model's `rngs` (an argument left None takes PDEquinox's default), then held by the
Equinox adapter (`equinox_adapter`): it trains,
checkpoints, resumes and shards like any model of the suite. PDEquinox is in the `ape` extra
(`pip install -e ".[ape]"`); building one of these models without it stops in one line
saying so.

The boundary is PDEquinox's `boundary_mode`, one for every axis: the data's boundary when it
is periodic, Dirichlet or Neumann on every axis. `activation` names a function of `jax.nn`
(`relu`, `gelu`, `tanh`, ...); None keeps the architecture's default.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import jax
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.convolution import check_levels
from surrogates.models.equinox_adapter import EquinoxModel
from surrogates.models.registry import register

BOUNDARY_MODES = ("periodic", "dirichlet", "neumann")


class PDEquinoxNet(EquinoxModel):
    """A PDEquinox architecture `ARCHITECTURE` (a name in `pdequinox.arch`) behind the
    adapter; subclasses name their own arguments, which go to it unchanged."""

    ARCHITECTURE = ""
    NAME = ""

    def _build(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        rngs: nnx.Rngs,
        activation: str | None = None,
        **options: Any,
    ) -> None:
        """Build the network from a subclass's arguments (its `locals()`, see `_arguments`)."""
        self.spatial_dims = spatial_dims
        # None: the architecture's own default.
        options = {key: value for key, value in options.items() if value is not None}
        if activation is not None:
            options["activation"] = _activation(self.NAME, activation)
        network = getattr(_arch(self.NAME), self.ARCHITECTURE)(
            spatial_dims,
            in_channels,
            out_channels,
            boundary_mode=_boundary_mode(self.NAME, boundary),
            key=rngs.params(),
            **options,
        )
        super().__init__(network)


@register("pdeqx_conv")
class PDEquinoxConvNet(PDEquinoxNet):
    """PDEquinox's ConvNet: `depth` hidden convolutions, run through the Equinox adapter.

    Padding is periodic or bounded as the data's boundary."""

    ARCHITECTURE, NAME = "ConvNet", "pdeqx_conv"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        *,
        hidden_channels: int = 16,
        depth: int = 10,
        kernel_size: int = 3,
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        self._build(**_arguments(locals()))

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 2 hidden convolutions of 4 channels."""
        return {"hidden_channels": 4, "depth": 2}


class _ResNet(PDEquinoxNet):
    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        *,
        hidden_channels: int = 32,
        num_blocks: int = 6,
        use_norm: bool | None = None,
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        self._build(**_arguments(locals()))

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 1 block of 4 channels."""
        return {"hidden_channels": 4, "num_blocks": 1}


@register("pdeqx_resnet")
class PDEquinoxResNet(_ResNet):
    """PDEquinox's ClassicResNet: residual blocks of two convolutions, through the adapter.

    `use_norm` None: PDEquinox's default, without normalisation."""

    ARCHITECTURE, NAME = "ClassicResNet", "pdeqx_resnet"


@register("pdeqx_modern_resnet")
class PDEquinoxModernResNet(_ResNet):
    """PDEquinox's ModernResNet: pre-activation residual blocks, through the adapter.

    `use_norm` None: PDEquinox's default, with group normalisation."""

    ARCHITECTURE, NAME = "ModernResNet", "pdeqx_modern_resnet"


@register("pdeqx_dilated_resnet")
class PDEquinoxDilatedResNet(PDEquinoxNet):
    """PDEquinox's DilatedResNet: blocks of dilated convolutions, through the adapter.

    Each of the `num_blocks` blocks runs one convolution per rate of `dilation_rates`."""

    ARCHITECTURE, NAME = "DilatedResNet", "pdeqx_dilated_resnet"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        *,
        hidden_channels: int = 32,
        num_blocks: int = 2,
        dilation_rates: tuple[int, ...] = (1, 2, 4, 8, 4, 2, 1),
        use_norm: bool = True,
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        self._build(**_arguments(locals()))

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 1 block of 4 channels, dilations 1 and 2."""
        return {"hidden_channels": 4, "num_blocks": 1, "dilation_rates": (1, 2)}


class _UNet(PDEquinoxNet):
    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """One axis per `spatial_dims`, each halving `num_levels` times."""
        check_levels(self.NAME, self.spatial_dims, self.num_levels, spatial_shape, "num_levels")

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 1 level from 4 channels."""
        return {"hidden_channels": 4, "num_levels": 1}


@register("pdeqx_unet")
class PDEquinoxUNet(_UNet):
    """PDEquinox's ClassicUNet: `num_levels` halvings, widths doubling, through the adapter."""

    ARCHITECTURE, NAME = "ClassicUNet", "pdeqx_unet"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        *,
        hidden_channels: int = 16,
        num_levels: int = 4,
        use_norm: bool = True,
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_levels = num_levels
        self._build(**_arguments(locals()))


@register("pdeqx_modern_unet")
class PDEquinoxModernUNet(_UNet):
    """PDEquinox's ModernUNet: residual blocks on `num_levels` levels, through the adapter.

    `num_blocks` blocks per level, widths `hidden_channels` times `channel_multipliers`
    (PDEquinox's default when None)."""

    ARCHITECTURE, NAME = "ModernUNet", "pdeqx_modern_unet"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        *,
        hidden_channels: int = 16,
        num_levels: int = 4,
        num_blocks: int = 2,
        channel_multipliers: tuple[int, ...] | None = None,
        use_norm: bool = True,
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_levels = num_levels
        self._build(**_arguments(locals()))

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 1 level from 4 channels, one block."""
        return {"hidden_channels": 4, "num_levels": 1, "num_blocks": 1}


@register("pdeqx_fno")
class PDEquinoxFNO(PDEquinoxNet):
    """PDEquinox's ClassicFNO: spectral blocks, `num_modes` per axis, through the adapter."""

    ARCHITECTURE, NAME = "ClassicFNO", "pdeqx_fno"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        boundary: tuple[str, ...],
        *,
        hidden_channels: int = 32,
        num_modes: int = 12,
        num_blocks: int = 4,
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_modes = num_modes
        self._build(**_arguments(locals()))

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """`num_modes` at most `N // 2 + 1` on every axis (the real FFT's modes)."""
        for axis, size in enumerate(spatial_shape):
            if self.num_modes > size // 2 + 1:
                raise ModelError(
                    f"pdeqx_fno: num_modes {self.num_modes} exceeds the {size // 2 + 1} modes "
                    f"of spatial axis {axis} ({size} points); lower model.num_modes"
                )

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """A small instance: 1 block of 4 channels, 4 modes."""
        return {"hidden_channels": 4, "num_modes": 4, "num_blocks": 1}


def _arguments(given: dict[str, Any]) -> dict[str, Any]:
    """A constructor's `locals()` as `_build`'s arguments: all but `self` (and the
    `__class__` cell); tuples given as YAML lists made tuples again."""
    return {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in given.items()
        if key not in ("self", "__class__")
    }


def _arch(name: str) -> ModuleType:
    try:
        return importlib.import_module("pdequinox.arch")
    except ImportError:
        raise ModelError(
            f'{name}: PDEquinox is not installed; install the ape extra (pip install -e ".[ape]")'
        ) from None


def _boundary_mode(name: str, boundary: tuple[str, ...]) -> str:
    kinds = set(boundary)
    if len(kinds) != 1 or boundary[0] not in BOUNDARY_MODES:
        raise ModelError(
            f"{name}: PDEquinox takes one boundary for every axis, one of "
            f"{', '.join(BOUNDARY_MODES)}; the data's are {', '.join(boundary)}"
        )
    return boundary[0]


def _activation(name: str, activation: str) -> Any:
    function = getattr(jax.nn, activation, None)
    if not callable(function):
        raise ModelError(
            f"{name}: model.activation {activation!r} is no function of jax.nn "
            "(relu, gelu, tanh, silu, ...)"
        )
    return function
