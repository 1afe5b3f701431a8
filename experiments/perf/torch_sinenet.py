"""SineNet in PyTorch, written from the published architecture (the PDEArena fork's
`sinenet_dual.py`, as `surrogates/models/sinenet.py` describes it), channels first: the side
of the speed comparison that the published code would be, and an independent check of the
JAX model (`tests/models/test_sinenet.py` copies weights across and compares outputs).

Needs the `compare` extra (`pip install -e ".[compare]"`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional


class TorchConvBlock(nn.Module):
    def __init__(self, width_in: int, width_out: int, padding_mode: str, norm: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(width_in, width_out, 3, padding=1, padding_mode=padding_mode)
        self.conv2 = nn.Conv2d(width_out, width_out, 3, padding=1, padding_mode=padding_mode)
        self.norm1 = nn.GroupNorm(1, width_out) if norm else nn.Identity()
        self.norm2 = nn.GroupNorm(1, width_out) if norm else nn.Identity()
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(h)))


def upsample(x: torch.Tensor, circular: bool) -> torch.Tensor:
    """Bicubic x2; circularly: pad 2, interpolate, crop 4 (the published `circular_interpolate`)."""
    if not circular:
        return functional.interpolate(x, scale_factor=2, mode="bicubic")
    x = functional.pad(x, (2, 2, 2, 2), mode="circular")
    return functional.interpolate(x, scale_factor=2, mode="bicubic")[..., 4:-4, 4:-4]


class TorchSineNet(nn.Module):
    """`SineNet` with one ConvBlock per level and the residuals on, in 2D."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_waves: int = 8,
        mult: float = 1.425,
        num_layers: int = 4,
        padding_mode: str = "zeros",
        disentangle: bool = True,
    ):
        super().__init__()
        widths = [int(hidden_channels * mult**k) for k in range(num_layers + 1)]
        self.widths, self.disentangle = widths, disentangle
        self.circular = padding_mode == "circular"
        self.lifting = nn.Conv2d(
            in_channels, hidden_channels, 3, padding=1, padding_mode=padding_mode
        )
        self.down_blocks, self.down_shortcuts = nn.ModuleList(), nn.ModuleList()
        self.up_blocks, self.up_shortcuts = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_waves):
            blocks, shortcuts = nn.ModuleList(), nn.ModuleList()
            for k in range(num_layers):
                joins = disentangle and k > 0
                width_in = widths[k] + hidden_channels * joins
                blocks.append(TorchConvBlock(width_in, widths[k + 1], padding_mode, True))
                shortcuts.append(nn.Conv2d(widths[k], widths[k + 1], 1))
            self.down_blocks.append(blocks)
            self.down_shortcuts.append(shortcuts)
            blocks, shortcuts = nn.ModuleList(), nn.ModuleList()
            for k in reversed(range(num_layers)):
                blocks.append(
                    TorchConvBlock(widths[k + 1] + widths[k], widths[k], padding_mode, True)
                )
                shortcuts.append(nn.Conv2d(widths[k + 1], widths[k], 1))
            self.up_blocks.append(blocks)
            self.up_shortcuts.append(shortcuts)
        self.projection = nn.Conv2d(
            hidden_channels, out_channels, 3, padding=1, padding_mode=padding_mode
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H, W)."""
        x = self.lifting(x)
        for wave in range(len(self.down_blocks)):
            skips, dx = [x], x
            for block, shortcut in zip(
                self.down_blocks[wave], self.down_shortcuts[wave], strict=True
            ):
                dx = functional.avg_pool2d(dx, 2) if self.disentangle else dx
                h = functional.avg_pool2d(skips[-1], 2)
                joined = torch.cat([h, dx], 1) if block.conv1.in_channels > h.shape[1] else h
                skips.append(block(joined) + shortcut(h))
            h = skips.pop()
            for block, shortcut in zip(self.up_blocks[wave], self.up_shortcuts[wave], strict=True):
                up = upsample(h, self.circular)
                h = block(torch.cat([skips.pop(), up], 1)) + shortcut(up)
            x = x + h
        return self.projection(x)


def copy_from_jax(model: TorchSineNet, jax_model) -> None:
    """Copy the weights of a `surrogates.models.SineNet` of the same settings into `model`."""

    def conv(target: nn.Conv2d, source) -> None:
        kernel = np.asarray(source.conv.kernel[...])  # (kh, kw, in, out)
        target.weight.data = torch.tensor(kernel.transpose(3, 2, 0, 1).copy())
        target.bias.data = torch.tensor(np.asarray(source.conv.bias[...]))

    def dense(target: nn.Conv2d, source) -> None:
        kernel = np.asarray(source.kernel[...])  # (in, out)
        target.weight.data = torch.tensor(kernel.T.copy())[:, :, None, None]
        target.bias.data = torch.tensor(np.asarray(source.bias[...]))

    def norm(target: nn.GroupNorm, source) -> None:
        target.weight.data = torch.tensor(np.asarray(source.scale[...]))
        target.bias.data = torch.tensor(np.asarray(source.bias[...]))

    def block(target: TorchConvBlock, source) -> None:
        conv(target.conv1, source.conv1)
        conv(target.conv2, source.conv2)
        norm(target.norm1, source.norm1)
        norm(target.norm2, source.norm2)

    conv(model.lifting, jax_model.lifting)
    conv(model.projection, jax_model.projection)
    for wave, source in enumerate(jax_model.waves):
        for k, down in enumerate(source.down):
            block(model.down_blocks[wave][k], down.blocks[0])
            dense(model.down_shortcuts[wave][k], down.shortcut)
        for k, up in enumerate(source.up):
            block(model.up_blocks[wave][k], up.blocks[0])
            dense(model.up_shortcuts[wave][k], up.shortcut)
