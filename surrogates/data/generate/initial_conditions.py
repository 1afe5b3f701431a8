"""PDEBench's random initial conditions for its 1D benchmarks: windowed sums of sines.

The distribution is PDEBench's (`init_multi` in its 1D generators): for each of `modes`
harmonics n = 1..modes an amplitude `A_n ~ U(0, 1)` and a phase `phi_n ~ U(0, 2 pi)`; `choices`
draws of n (with replacement) set how often each harmonic is picked, `m_n`, and the term is
`A_n sin(2 pi n m_n x / L + phi_n)`. So a harmonic drawn twice has twice the wavenumber, and an
unpicked one (`m_n = 0`) adds the constant `A_n sin(phi_n)`, exactly as in PDEBench. Then, with
probability `p_abs`, the absolute value; a random sign; with probability `p_window`, a tanh
window `(tanh((x - a) / w) - tanh((x - b) / w)) / 2` with `a ~ U(0.1, 0.45) L`,
`b ~ U(0.55, 0.9) L` from the left end.

One deliberate difference: wavenumbers use the period `L` of the domain, where PDEBench divides
by `x[-1] - x[0] = L - dx`, which makes its initial conditions jump slightly at the periodic
boundary.

Each sample's randomness comes from `fold_in(PRNGKey(seed), index)`, so sample `i` is the same
whichever chunk or file size it is generated in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class SumOfSines:
    """A batch of initial conditions as parameters; calling it evaluates them at points x.

    Fields are per sample: `amplitude`, `wavenumber`, `phase` (B, K); `absolute`, `window`
    (B,) booleans; `sign`, `left`, `right` (B,); `width` (B,) the window's transition width.
    """

    amplitude: jax.Array
    wavenumber: jax.Array
    phase: jax.Array
    absolute: jax.Array
    sign: jax.Array
    window: jax.Array
    left: jax.Array
    right: jax.Array
    width: jax.Array

    def __call__(self, x: ArrayLike) -> jax.Array:
        """Values of every sample at the points x, of any shape S: returns (B, *S)."""
        x = jnp.asarray(x)
        space = (None,) * x.ndim

        def per_sample(values: jax.Array) -> jax.Array:
            return values[(..., *space)]

        waves = per_sample(self.amplitude) * jnp.sin(
            per_sample(self.wavenumber) * x + per_sample(self.phase)
        )
        u = jnp.sum(waves, axis=1)
        u = jnp.where(per_sample(self.absolute), jnp.abs(u), u) * per_sample(self.sign)
        width = per_sample(self.width)
        mask = 0.5 * (
            jnp.tanh((x - per_sample(self.left)) / width)
            - jnp.tanh((x - per_sample(self.right)) / width)
        )
        return jnp.where(per_sample(self.window), u * mask, u)


@functools.partial(jax.jit, static_argnames=("modes", "choices"))
def sample_sum_of_sines(
    seed: int,
    indices: ArrayLike,
    *,
    x_min: float,
    length: float,
    modes: int = 4,
    choices: int = 2,
    p_abs: float = 0.1,
    p_window: float = 0.1,
    window_width: float = 0.01,
) -> SumOfSines:
    """Initial conditions of samples `indices` (B,) drawn from PDEBench's distribution.

    `x_min` and `length` place the domain `[x_min, x_min + length)`; `window_width` is
    PDEBench's 0.01 on its unit domain and scales with `length`.
    """
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.asarray(indices))

    def one(key: jax.Array) -> dict[str, jax.Array]:
        k = jax.random.split(key, 8)
        picked = jax.random.randint(k[0], (choices,), 0, modes)
        multiplicity = jnp.sum(jax.nn.one_hot(picked, modes), axis=0)
        return {
            "amplitude": jax.random.uniform(k[1], (modes,)),
            "wavenumber": 2 * jnp.pi * jnp.arange(1, modes + 1) * multiplicity / length,
            "phase": 2 * jnp.pi * jax.random.uniform(k[2], (modes,)),
            "absolute": jax.random.bernoulli(k[3], p_abs),
            "sign": jnp.where(jax.random.bernoulli(k[4]), 1.0, -1.0),
            "window": jax.random.bernoulli(k[5], p_window),
            "left": x_min + length * jax.random.uniform(k[6], minval=0.1, maxval=0.45),
            "right": x_min + length * jax.random.uniform(k[7], minval=0.55, maxval=0.9),
            "width": jnp.asarray(window_width * length),
        }

    return SumOfSines(**jax.vmap(one)(keys))


def normalise_unit_range(u: jax.Array) -> jax.Array:
    """Shift and scale each sample to [0, 1] over its grid values, as PDEBench does for
    reaction-diffusion. u: (B, N) -> (B, N); a constant sample becomes 0.
    """
    low = jnp.min(u, axis=-1, keepdims=True)
    span = jnp.max(u, axis=-1, keepdims=True) - low
    return (u - low) / jnp.where(span > 0, span, 1.0)
