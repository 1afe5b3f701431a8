"""Multi-grid domain decomposition (MG-TFNO patching), channels last, periodic domains.

neuraloperator's `MultigridPatching2D` (`neuralop/training/patching.py`) for fields
`(B, *X, C)` with one or two spatial axes; every axis is treated the same way.

With `n = 2**levels`, each sample is cut into `n` patches per axis (`P = n**d` in all), each
patch is padded circularly by `round(padding_fraction * X)` cells, where `X` is the *full*
size of that axis (neuraloperator's rule), and for every level `l = 1..levels` the whole field,
subsampled by `2**l`, is cut into windows of the padded patch size centred on each patch: a
coarser view with `2**l` times the context. Level 0 (the padded patch) and the coarse views
are concatenated on channels in that order, so the operator sees `C * (levels + 1)` channels.

Patches are stacked on the batch axis **batch-major**, as neuraloperator does: row
`b * P + i` is patch `i` of sample `b`, and `i` runs row-major over the patch grid (the last
spatial axis fastest). A batch sharded over devices therefore keeps every sample's patches on
the device that holds the sample.

```python
model = Multigrid(FNO(..., in_channels=in_channels_for(c, 2), ...), levels=2, padding=0.1)
y = model(x)                      # (B, *X, C) -> (B, *X, Cout), always stitched
```

In configs it is the wrapper `model.wrappers: [{multigrid: {levels: 2, padding: 0.1}}]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from surrogates.errors import ModelError
from surrogates.models.contract import ModelContext
from surrogates.models.registry import register_wrapper

PaddingFraction = float | Sequence[float]


def in_channels_for(data_channels: int, levels: int) -> int:
    """Channels the wrapped operator receives: the data's once per level, level 0 included."""
    return data_channels * (levels + 1)


def patch_count(levels: int, ndim: int) -> int:
    """Patches per sample, `(2**levels)**ndim` for `ndim` spatial axes."""
    return (2**levels) ** ndim


def padding_cells(shape: Sequence[int], padding_fraction: PaddingFraction) -> tuple[int, ...]:
    """Cells of circular padding on each side of a patch, per spatial axis.

    `round(padding_fraction * X)` with Python's rounding (half to even) and the full size `X`
    of the axis, not the patch size, as neuraloperator computes it. `padding_fraction` is one
    number for all axes or one per axis.
    """
    fractions = _fractions(padding_fraction, len(shape))
    return tuple(round(size * fraction) for size, fraction in zip(shape, fractions, strict=True))


def patch_shape(
    shape: Sequence[int], levels: int, padding_fraction: PaddingFraction
) -> tuple[int, ...]:
    """The padded patch grid `X // 2**levels + 2 * pad` the operator sees (unchecked)."""
    padding = padding_cells(shape, padding_fraction)
    return tuple(size // 2**levels + 2 * pad for size, pad in zip(shape, padding, strict=True))


def check_patching(shape: Sequence[int], levels: int, padding_fraction: PaddingFraction) -> None:
    """Raise `ModelError` unless a field of spatial shape `shape` can be patched.

    Requires 1 or 2 spatial axes, `levels >= 1`, a non-negative padding and every size
    divisible by `4**levels`: `2**levels` equal patches whose size is itself divisible by
    `2**levels`, so each coarse view is centred on its patch. neuraloperator asserts only the
    first divisibility; its coarse views then drift off their patches (size 40, levels 2) or
    fail to reshape (size 24, levels 2). It also fails at exactly `4**levels` (16 for levels
    2), which is accepted here with the same centring rule as every other size.
    """
    where = f"multigrid patching (levels={levels}, padding={padding_fraction})"
    if not isinstance(levels, int) or levels < 1:
        raise ModelError(f"{where}: levels must be an integer >= 1; levels=0 means no patching")
    if len(shape) not in (1, 2):
        raise ModelError(f"{where}: needs 1 or 2 spatial axes, got spatial shape {tuple(shape)}")
    fractions = _fractions(padding_fraction, len(shape), where)
    if any(not fraction >= 0 for fraction in fractions):
        raise ModelError(f"{where}: padding fractions must be >= 0")
    multiple = 4**levels
    for axis, size in enumerate(shape):
        if size % multiple:
            raise ModelError(
                f"{where}: spatial size {size} (axis {axis + 1} of spatial shape {tuple(shape)}) "
                f"is not divisible by 4**levels = {multiple} ({2**levels} patches per axis, "
                f"each divisible by {2**levels} for the coarsest view)"
            )


def make_patches(x: jax.Array, levels: int, padding_fraction: PaddingFraction) -> jax.Array:
    """Multi-grid patches of a periodic field.

    x: (B, *X, C) -> (B * P, *(X // 2**levels + 2 * pad), C * (levels + 1)), batch-major,
    with `P = patch_count(levels, len(X))` and `pad = padding_cells(X, padding_fraction)`.
    Channels `l * C : (l + 1) * C` hold level `l`: the padded patch for `l = 0`, the field
    subsampled by `2**l` around it otherwise.
    """
    shape = x.shape[1:-1]
    check_patching(shape, levels, padding_fraction)
    padding = padding_cells(shape, padding_fraction)
    views = []
    for level in range(levels + 1):
        step = 2**level
        coarse = x[(slice(None), *(slice(None, None, step) for _ in shape))]
        for axis, (size, pad) in enumerate(zip(shape, padding, strict=True)):
            # Each take turns one spatial axis into (patch index, window cell).
            windows = _window_indices(size, levels, level, pad)
            coarse = jnp.take(coarse, windows, axis=1 + 2 * axis, mode="clip")
        views.append(_patches_to_batch(coarse, len(shape)))
    return jnp.concatenate(views, axis=-1)


def split_patches(y: jax.Array, levels: int) -> jax.Array:
    """Cut a field into unpadded patches, without coarse views: `stitch`'s inverse.

    y: (B, *X, C) -> (B * P, *(X // 2**levels), C), batch-major as in `make_patches`; the
    targets neuraloperator compares unstitched outputs with (`make_patches(y, n, p=0)`).
    """
    shape = y.shape[1:-1]
    check_patching(shape, levels, 0.0)
    n = 2**levels
    d = len(shape)
    split = y.reshape(y.shape[0], *(s for size in shape for s in (n, size // n)), y.shape[-1])
    # (B, n, k1, n, k2, C) -> (B, n, n, k1, k2, C)
    order = (0, *range(1, 2 * d, 2), *range(2, 2 * d + 1, 2), 2 * d + 1)
    split = split.transpose(order)
    return split.reshape(-1, *(size // n for size in shape), y.shape[-1])


def unpad(y: jax.Array, padding: Sequence[int]) -> jax.Array:
    """Remove `padding[a]` cells from both ends of spatial axis `a`: (N, *Xp, C) -> (N, *X, C)."""
    if y.ndim != len(padding) + 2:
        raise ModelError(f"unpad: {len(padding)} paddings for a field of shape {y.shape}")
    spatial = zip(padding, y.shape[1:-1], strict=True)
    return y[(slice(None), *(slice(pad, size - pad) for pad, size in spatial))]


def stitch(y: jax.Array, batch: int, levels: int) -> jax.Array:
    """Put unpadded batch-major patches back together.

    y: (B * P, *K, C) -> (B, *(K * 2**levels), C); the inverse of `split_patches`.
    """
    d = y.ndim - 2
    if d not in (1, 2):
        raise ModelError(f"stitch (levels={levels}): needs 1 or 2 spatial axes, got {y.shape}")
    if y.shape[0] != batch * patch_count(levels, d):
        raise ModelError(
            f"stitch (levels={levels}): expected {batch} x {patch_count(levels, d)} patches "
            f"on the batch axis, got shape {y.shape}"
        )
    n = 2**levels
    patch = y.shape[1:-1]
    grid = y.reshape(batch, *(n for _ in patch), *patch, y.shape[-1])
    # (B, n, n, k1, k2, C) -> (B, n, k1, n, k2, C)
    order = (0, *(a for axis in range(1, d + 1) for a in (axis, axis + d)), 2 * d + 1)
    return grid.transpose(order).reshape(batch, *(n * k for k in patch), y.shape[-1])


def unpatch(y: jax.Array, batch: int, levels: int, padding: Sequence[int]) -> jax.Array:
    """Unpad padded patches and stitch them: (B * P, *Xp, C) -> (B, *X, C).

    `padding` is `padding_cells(X, padding_fraction)` of the full field; the inverse of
    `make_patches` on its level-0 channels.
    """
    return stitch(unpad(y, padding), batch, levels)


@register_wrapper("multigrid")
class Multigrid(nnx.Module):
    """MG-TFNO's multi-grid patching around any operator model (neuraloperator's
    `MultigridPatching2D` with `MGPatchingDataProcessor`), 1D or 2D, periodic.

    `__call__` cuts `x` into padded patches with coarse context (`make_patches`), runs the
    operator on all of them as one batch and stitches the unpadded outputs back, so it maps
    `(B, *X, Cin) -> (B, *X, Cout)` like any operator model.

    **Arguments:**

    - `operator`: model `(N, *Xp, in_channels_for(Cin, levels)) -> (N, *Xp, Cout)`, called
      with `pde_params` repeated once per patch.
    - `levels`: `2**levels` patches per axis and `levels` coarse views; at least 1.
    - `padding`: padding fraction of the full size per side of a patch, one number or one per
      axis (`padding_cells`).
    - `stitching`: neuraloperator's training switch, read by `training_pair`. With `True` the
      training loss compares stitched fields; with `False` it compares each unpadded patch
      output with the same patch of the target, which neither gathers patches nor lets the
      loss see across patch borders. Evaluation always stitches: `__call__` never reads it.
    """

    def __init__(
        self,
        operator: nnx.Module,
        *,
        levels: int,
        padding: PaddingFraction = 0.0,
        stitching: bool = True,
    ) -> None:
        if not isinstance(levels, int) or levels < 1:
            raise ModelError(
                f"Multigrid: levels must be an integer >= 1, got {levels!r}; "
                "levels=0 means no patching, use the operator itself"
            )
        fractions = padding if isinstance(padding, Sequence) else (padding,)
        if not all(0 <= fraction < 0.5 for fraction in fractions):
            raise ModelError(f"Multigrid: padding must be in [0, 0.5), got {padding!r}")
        self.operator = operator
        self.levels = levels
        self.padding = tuple(padding) if isinstance(padding, Sequence) else float(padding)
        self.stitching = bool(stitching)

    @classmethod
    def example(cls, spatial_dims: int) -> dict[str, Any]:
        """Options of a small stack on `spatial_dims` axes (the registry's test matrix)."""
        del spatial_dims
        return {"levels": 1, "padding": 0.125}

    @property
    def inner(self) -> nnx.Module:
        return self.operator

    @classmethod
    def inner_context(
        cls,
        context: ModelContext,
        *,
        levels: int,
        padding: PaddingFraction = 0.0,
        stitching: bool = True,
    ) -> ModelContext:
        """The operator sees every view's channels, on padded patches."""
        return replace(
            context,
            in_channels=in_channels_for(context.in_channels, levels),
            spatial_shape=patch_shape(context.spatial_shape, levels, padding),
        )

    def inner_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        return patch_shape(spatial_shape, self.levels, self.padding)

    def check_grid(self, spatial_shape: tuple[int, ...]) -> None:
        """The grid cuts into patches whose coarsest views centre on them (`check_patching`)."""
        try:
            check_patching(spatial_shape, self.levels, self.padding)
        except ModelError as error:
            raise ModelError(
                f"model.wrappers: {error} (change data.stride_x or the patching)"
            ) from None

    def __call__(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, Cin), pde_params: (B, P) or None -> (B, *X, Cout), stitched whatever
        `stitching` says."""
        return self.stitch(self.patch_outputs(x, pde_params=pde_params), x.shape[1:-1])

    def patches(self, x: jax.Array) -> jax.Array:
        """x: (B, *X, Cin) -> (B * P, *Xp, Cin * (levels + 1)), the operator's input."""
        return make_patches(x, self.levels, self.padding)

    def target_patches(self, y: jax.Array) -> jax.Array:
        """y: (B, *X, C) -> (B * P, *(X // 2**levels), C), cut like `unpad`ded patch outputs."""
        return split_patches(y, self.levels)

    def patch_outputs(self, x: jax.Array, *, pde_params: jax.Array | None = None) -> jax.Array:
        """x: (B, *X, Cin) -> (B * P, *Xp, Cout): the operator on every padded patch, each with
        its sample's PDE parameters (batch-major, like the patches)."""
        if pde_params is not None:
            pde_params = jnp.repeat(pde_params, patch_count(self.levels, x.ndim - 2), axis=0)
        return self.operator(self.patches(x), pde_params=pde_params)

    def unpad(self, patch_outputs: jax.Array, shape: Sequence[int]) -> jax.Array:
        """(B * P, *Xp, C) -> (B * P, *(X // 2**levels), C) for a field of spatial shape `shape`."""
        return unpad(patch_outputs, padding_cells(shape, self.padding))

    def stitch(self, patch_outputs: jax.Array, shape: Sequence[int]) -> jax.Array:
        """(B * P, *Xp, C) -> (B, *X, C) for a field of spatial shape `shape` (unpad, stitch)."""
        count = patch_count(self.levels, len(shape))
        batch = patch_outputs.shape[0] // count
        return unpatch(patch_outputs, batch, self.levels, padding_cells(shape, self.padding))

    def loss_view(self, y: jax.Array) -> jax.Array:
        """A field (B, *X, C) as the training loss sees it, following `stitching`: itself, or
        its unpadded patches (B * P, *(X // 2**levels), C).

        Cutting the stitched prediction gives exactly the unpadded patch outputs (stitching
        only moves values), so an engine that always stitches, to feed predictions back in a
        rollout, gets `training_pair`'s loss by comparing `loss_view`s.
        """
        return y if self.stitching else split_patches(y, self.levels)

    def training_pair(
        self, x: jax.Array, y: jax.Array, *, pde_params: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """(prediction, target) for the training loss, following `stitching`.

        x: (B, *X, Cin), y: (B, *X, Cout). Stitched: `(self(x), y)`, both (B, *X, Cout).
        Not stitched: both (B * P, *(X // 2**levels), Cout), unpadded patches.
        """
        shape = x.shape[1:-1]
        outputs = self.patch_outputs(x, pde_params=pde_params)
        if self.stitching:
            return self.stitch(outputs, shape), y
        return self.unpad(outputs, shape), self.target_patches(y)


def _fractions(
    padding_fraction: PaddingFraction, ndim: int, where: str = "multigrid patching"
) -> tuple[float, ...]:
    if isinstance(padding_fraction, Sequence):
        if len(padding_fraction) != ndim:
            raise ModelError(
                f"{where}: {len(padding_fraction)} padding fractions for {ndim} spatial axes"
            )
        return tuple(float(f) for f in padding_fraction)
    return (float(padding_fraction),) * ndim


def _window_indices(size: int, levels: int, level: int, pad: int) -> np.ndarray:
    """Indices into an axis of `size` cells subsampled by `2**level`: (2**levels, window).

    Window `i` is the padded patch `i` at level 0 and, at coarser levels, the same number of
    coarse cells centred on that patch (half a coarse cell to the left when the centre falls
    between cells), wrapped periodically. The offsets are neuraloperator's: windows `stride`
    apart after `ceil((patch + (n - 1) * stride - coarse) / 2) + pad` cells of left padding.
    """
    n = 2**levels
    patch = size // n
    coarse = size // 2**level
    stride = patch // 2**level
    left = math.ceil((patch + (n - 1) * stride - coarse) / 2) + pad
    starts = np.arange(n) * stride - left
    return (starts[:, None] + np.arange(patch + 2 * pad)[None, :]) % coarse


def _patches_to_batch(windows: jax.Array, d: int) -> jax.Array:
    """(B, n, w1, [n, w2,] C) -> (B * n**d, w1, [w2,] C), batch-major, patch grid row-major."""
    order = (0, *range(1, 2 * d, 2), *range(2, 2 * d + 1, 2), 2 * d + 1)
    windows = windows.transpose(order)
    return windows.reshape(-1, *windows.shape[1 + d :])
