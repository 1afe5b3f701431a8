"""Physics-Informed Gaussians (`pig`; Kang, Oh, Hong and Park, ICLR 2025, arXiv 2412.05994).

A mixture of trainable Gaussians embeds the coordinates, a small MLP maps the embedding to
the solution. The Gaussians move, stretch and (with a full covariance) turn during
training, so the embedding's resolution goes where the solution needs it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.custom_derivatives import SymbolicZero

from surrogates.errors import ModelError
from surrogates.models.pinn import check_box, check_coords, glorot_normal, to_unit_box
from surrogates.models.registry import register

COVARIANCES = ("diagonal", "full")


@register("pig", kind="pointwise")
class PIG(nnx.Module):
    """Physics-Informed Gaussians: a trainable Gaussian mixture embedding, then a small MLP.

    `coords (..., in_dims) -> (..., out_dims)`. With z the coordinates mapped affinely from
    `[lower, upper]` onto `[-1, 1]^d`, feature channel c = 1..k of the embedding is

        FE_c(z) = sum_i w_ci exp(-1/2 (z - mu_ci)^T Sigma_ci^-1 (z - mu_ci)),

    each channel with its own `gaussians` Gaussians (as the reference code does for k > 1),
    and the output is `MLP(FE(z))`: `layers` tanh layers of `hidden` units, then linear;
    Glorot-normal weights, zero biases. Means start uniformly inside the box, mixture
    weights `w ~ N(0, 0.01^2)`, every width at `sigma` and every rotation at the identity.

    **Staying inside the domain.** The means are not trained directly: a raw parameter
    `r` maps to `mu = (1 + margin) tanh(r)` in the unit box, so whatever a gradient step
    does to `r`, a Gaussian's centre stays within the box enlarged by `margin` times its
    half-width on each side (a Gaussian centred just outside still shapes the solution at
    the boundary). Near that wall tanh saturates and the centre slows down smoothly instead
    of being clipped.

    **Widths.** `sigma` is a standard deviation in the unit-box coordinates z (the domain
    mapped onto [-1, 1] along every axis; the reference's Helmholtz code samples means in
    [-1, 1] too), so 0.1 is 5% of the box's width along each axis whatever its units and
    aspect. The trained parameter is `log sigma`: the reference uses sigma raw, where a
    step can push it through zero (sigma enters squared, so the Gaussian collapses to a
    spike with gradients ~ 1/sigma^3); in log space sigma stays positive and a step changes
    wide and narrow Gaussians by the same factor.

    **Covariance.** `"diagonal"`: `Sigma = diag(sigma^2)` (per axis). `"full"`:
    `Sigma^-1 = L L^T`, `L = R diag(1/sigma)`, R a rotation: none for d = 1, an angle for
    d = 2, a unit quaternion (normalised from 4 free numbers, starting at (1, 0, 0, 0)) for
    d = 3; more coordinates are not supported.

    **Arguments** (`in_dims`, `out_dims`, `lower`, `upper`, `rngs` are given by the engine):

    - `gaussians`: Gaussians per channel N (the paper: 100 to 4000).
    - `channels`: feature channels k (the reference code: 4).
    - `sigma`: initial standard deviation in unit-box coordinates (reference: 0.1 to 0.5).
    - `covariance`: `"diagonal"` or `"full"`.
    - `margin`: how far beyond the box a centre may go, in half-widths (> 0).
    - `hidden`, `layers`: the MLP's width and number of hidden layers (reference: 16, 1).
    - `rngs`: random streams for the initial parameters.

    Evaluation costs memory for (points x channels x gaussians) values: 4096 points with 4
    channels of 800 Gaussians is about 50 MB per such array in float32. A physics-informed
    training step (nested JVPs at every point, then the gradient) keeps a few dozen such
    arrays; `embed` forms none with a trailing coordinate axis and has its own derivative
    rule for the Gaussians (see `_whiten` and `_weighted_gaussians`), about four times
    faster than the direct formulation on Helmholtz (`experiments/perf/pig_step.py`).
    """

    def __init__(
        self,
        in_dims: int,
        out_dims: int,
        lower: Sequence[float],
        upper: Sequence[float],
        *,
        gaussians: int = 100,
        channels: int = 4,
        sigma: float = 0.1,
        covariance: str = "diagonal",
        margin: float = 0.1,
        hidden: int = 16,
        layers: int = 1,
        rngs: nnx.Rngs,
    ):
        self.lower, self.upper = check_box("pig", in_dims, lower, upper)
        _check_options(in_dims, gaussians, channels, sigma, covariance, margin, hidden, layers)
        self.in_dims, self.out_dims = in_dims, out_dims
        self.covariance, self.margin = covariance, float(margin)

        shape = (channels, gaussians, in_dims)
        # Strictly inside (-1, 1) before the inverse tanh, as margin > 0.
        unit = jax.random.uniform(rngs.params(), shape, minval=-1.0, maxval=1.0)
        self.mean_raw = nnx.Param(jnp.arctanh(unit / (1 + self.margin)))
        self.log_sigma = nnx.Param(jnp.full(shape, math.log(sigma)))
        self.weight = nnx.Param(0.01 * jax.random.normal(rngs.params(), (channels, gaussians)))
        self.rotation = _identity_rotation(in_dims, channels, gaussians, covariance)

        widths = [channels] + [hidden] * layers
        self.hidden = nnx.List(
            [
                nnx.Linear(n_in, n_out, kernel_init=glorot_normal, rngs=rngs)
                for n_in, n_out in itertools.pairwise(widths)
            ]
        )
        self.output = nnx.Linear(hidden, out_dims, kernel_init=glorot_normal, rngs=rngs)

    @classmethod
    def example(cls) -> dict[str, Any]:
        """A small instance: 2 channels of 8 Gaussians."""
        return {"gaussians": 8, "channels": 2}

    def unit_centres(self) -> jax.Array:
        """The means in unit-box coordinates: (channels, gaussians, in_dims)."""
        return (1 + self.margin) * jnp.tanh(self.mean_raw[...])

    def rotations(self) -> jax.Array:
        """Each Gaussian's rotation R: (channels, gaussians, in_dims, in_dims)."""
        if self.rotation is None:
            d = self.in_dims
            return jnp.broadcast_to(jnp.eye(d), (*self.weight.shape, d, d))
        raw = self.rotation[...]
        return _rotation_2d(raw) if self.in_dims == 2 else _rotation_3d(raw)

    def centres(self) -> jax.Array:
        """The means in domain coordinates: (channels, gaussians, in_dims)."""
        lo, hi = jnp.asarray(self.lower), jnp.asarray(self.upper)
        return (lo + hi) / 2 + (hi - lo) / 2 * self.unit_centres()

    def covariances(self) -> jax.Array:
        """Each Gaussian's covariance in domain coordinates: (channels, gaussians, d, d)."""
        half = (jnp.asarray(self.upper) - jnp.asarray(self.lower)) / 2
        # Sigma = D R diag(sigma^2) R^T D with D = diag(half-widths): the unit box's
        # covariance carried to the domain.
        scaled = half[:, None] * self.rotations() * jnp.exp(self.log_sigma[...])[..., None, :]
        return scaled @ jnp.swapaxes(scaled, -1, -2)

    def widths(self) -> jax.Array:
        """Each Gaussian's standard deviation along each domain axis (its marginal's, for a
        rotated one): (channels, gaussians, in_dims)."""
        return jnp.sqrt(jnp.diagonal(self.covariances(), axis1=-2, axis2=-1))

    def embed(self, coords: jax.Array) -> jax.Array:
        """The Gaussian feature embedding FE: coords (..., in_dims) -> (..., channels)."""
        z = to_unit_box(coords, self.lower, self.upper)
        inverse_sigma = jnp.exp(-self.log_sigma[...])
        if self.rotation is None:
            transform = inverse_sigma
        else:
            transform = self.rotations() * inverse_sigma[..., None, :]  # L: (C, N, d, d)
        whitened = _whiten(z, self.unit_centres(), transform)
        return jnp.sum(_weighted_gaussians(whitened, self.weight[...]), axis=-1)

    def __call__(self, coords: jax.Array) -> jax.Array:
        """coords: (..., in_dims) -> (..., out_dims)."""
        check_coords("pig", coords, self.in_dims)
        h = self.embed(coords)
        for layer in self.hidden:
            h = jnp.tanh(layer(h))
        return self.output(h)


@jax.checkpoint
def _whiten(z: jax.Array, centres: jax.Array, transform: jax.Array) -> tuple[jax.Array, ...]:
    """The whitened offsets `r = L^T (z - mu)` of the points z (..., d) from every Gaussian,
    as d arrays (..., C, N), one per coordinate, rather than one (..., C, N, d) array: with
    d = 2 or 3 as the minor axis, XLA (its YNNPACK reductions) sums over it slowly and keeps
    each such array and its tangents in memory, several times slower under the nested JVPs
    of a physics residual and their gradient. `transform` is `1/sigma` (C, N, d) for a
    diagonal covariance (L = diag(1/sigma)), else L (C, N, d, d); z - mu is formed first, so
    a narrow Gaussian loses no digits to cancellation. Recomputed for the gradient rather
    than kept (`jax.checkpoint`): a few products per Gaussian instead of d stored arrays."""
    d = z.shape[-1]
    offsets = [z[..., k, None, None] - centres[..., k] for k in range(d)]
    if transform.ndim == 3:
        return tuple(offsets[j] * transform[..., j] for j in range(d))
    return tuple(sum(offsets[k] * transform[..., k, j] for k in range(d)) for j in range(d))


@jax.custom_jvp
def _weighted_gaussians(whitened: tuple[jax.Array, ...], weight: jax.Array) -> jax.Array:
    """`w exp(-|r|^2 / 2)` per Gaussian from its whitened offsets `r = L^T (z - mu)`, one
    array (..., C, N) per coordinate, and its weights (C, N).

    Its own derivative rule, `d[w exp(-|r|^2/2)] = -w exp(-|r|^2/2) (r . dr) + dw exp(...)`,
    reuses the value and keeps the weight out of the tangents, where automatic
    differentiation would go through |r|^2 and multiply every tangent by w again: under the
    nested JVPs of a physics residual and their gradient that is one (points, C, N) array
    and one reduction over the points fewer per tangent. The rule is plain JAX, so it nests
    (higher derivatives) and transposes (gradients, also with respect to the points)."""
    return weight * jnp.exp(-0.5 * _squared_norm(whitened))


@partial(_weighted_gaussians.defjvp, symbolic_zeros=True)
def _weighted_gaussians_jvp(primals, tangents):
    whitened, weight = primals
    d_whitened, d_weight = tangents
    value = _weighted_gaussians(whitened, weight)
    parts = []
    moving = [(r, dr) for r, dr in zip(whitened, d_whitened, strict=True) if not _zero(dr)]
    if moving:
        parts.append(-value * sum(r * dr for r, dr in moving))
    if not _zero(d_weight):
        parts.append(d_weight * jnp.exp(-0.5 * _squared_norm(whitened)))
    if not parts:
        return value, jnp.zeros_like(value)
    return value, sum(parts[1:], parts[0])


def _squared_norm(vectors: tuple[jax.Array, ...]) -> jax.Array:
    return sum(jnp.square(v) for v in vectors)


def _zero(tangent: Any) -> bool:
    return isinstance(tangent, SymbolicZero)


def _identity_rotation(
    in_dims: int, channels: int, gaussians: int, covariance: str
) -> nnx.Param | None:
    """The rotation parameters at the identity: an angle per Gaussian (d = 2) or a
    quaternion (d = 3); None for a diagonal covariance or d = 1 (nothing to turn)."""
    if covariance == "diagonal" or in_dims == 1:
        return None
    if in_dims == 2:
        return nnx.Param(jnp.zeros((channels, gaussians)))
    return nnx.Param(jnp.zeros((channels, gaussians, 4)).at[..., 0].set(1.0))


def _rotation_2d(angle: jax.Array) -> jax.Array:
    """angle (...) -> the rotations (..., 2, 2) by it."""
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)


def _rotation_3d(quaternion: jax.Array) -> jax.Array:
    """quaternion (..., 4) as (w, x, y, z), any nonzero norm -> rotations (..., 3, 3)."""
    q = quaternion / jnp.linalg.norm(quaternion, axis=-1, keepdims=True)
    w, x, y, z = (q[..., i] for i in range(4))
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return jnp.stack([jnp.stack(row, -1) for row in rows], -2)


def _check_options(
    in_dims: int,
    gaussians: int,
    channels: int,
    sigma: float,
    covariance: str,
    margin: float,
    hidden: int,
    layers: int,
) -> None:
    if covariance not in COVARIANCES:
        raise ModelError(
            f"pig: covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}"
        )
    if covariance == "full" and in_dims > 3:
        raise ModelError(f"pig: covariance 'full' supports 1 to 3 coordinates, not {in_dims}")
    for name, value in (
        ("gaussians", gaussians),
        ("channels", channels),
        ("hidden", hidden),
        ("layers", layers),
    ):
        if value < 1:
            raise ModelError(f"pig: {name} must be at least 1, got {value}")
    for name, value in (("sigma", sigma), ("margin", margin)):
        if value <= 0:
            raise ModelError(f"pig: {name} must be positive, got {value}")
