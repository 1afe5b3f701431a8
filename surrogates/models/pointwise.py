"""Dense maps of the channel axis (1x1 convolutions), with a backward pass laid out for XLA.

A pointwise layer's weight gradient, `dW = x^T g` over every batch entry and grid point, is a
product whose contracted axis is the long leading one of both operands. XLA brings one
operand's contracted axis last with a transposed copy, and left to itself on CPU it may copy
the wide one: for neuraloperator's projection (64 channels to 1) it transposed the whole
64-channel activation to multiply it by a vector. The custom VJP here writes the product so
that the narrower of `x` and `g` is the one transposed, and takes the input gradient as the
plain product `g W^T` (the README's performance section has what it saved).

A custom VJP has no forward mode: `jax.jvp` and `jax.jacfwd` through these layers stop with
JAX's error; reverse mode, which training uses, is what they are for.
"""

from __future__ import annotations

import jax
from flax import nnx


@jax.custom_vjp
def channel_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x (..., I) @ kernel (I, O) -> (..., O), over the last axis of x."""
    return x @ kernel


def _forward(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return x @ kernel, (x, kernel)


def _backward(residuals: tuple[jax.Array, jax.Array], g: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    rows_x = x.reshape(-1, x.shape[-1])
    rows_g = g.reshape(-1, g.shape[-1])
    # XLA transposes the left factor: let that be the narrower one. The barrier keeps XLA
    # from folding the transpose of the (small) result back into the product, which would
    # swap the factors again.
    if rows_g.shape[1] <= rows_x.shape[1]:
        d_kernel = jax.lax.optimization_barrier(rows_g.T @ rows_x).T
    else:
        d_kernel = rows_x.T @ rows_g
    return g @ kernel.T, d_kernel.astype(kernel.dtype)


channel_matmul.defvjp(_forward, _backward)


class ChannelLinear(nnx.Linear):
    """`nnx.Linear` on the last axis, (..., in) -> (..., out), through `channel_matmul`.

    Same parameters (`kernel` (in, out), `bias` (out,)) and the same function as
    `nnx.Linear`; only the gradient's layout differs.
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (..., in) -> (..., out), in `dtype` if set, else x's and the kernel's promoted."""
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        y = channel_matmul(x, kernel)
        return y if bias is None else y + bias
