"""Complex weight tensors in factorized form: dense, CP, Tucker and tensor train (TT).

The weight of a spectral convolution is a complex tensor `W` of shape `(Cin, Cout, *M)`, or
`(C, *M)` when it is separable: channel axes first, then one axis per Fourier mode axis. As
neuraloperator (through tensorly-torch) it is stored as one of:

- dense: `W` itself;
- CP: `W[j_0, ..., j_n] = sum_r w[r] A_0[j_0, r] ... A_n[j_n, r]`, weights `w (R,)` and one
  factor `A_a (size_a, R)` per axis;
- Tucker: `W[j_0, ..., j_n] = sum_r G[r_0, ..., r_n] A_0[j_0, r_0] ... A_n[j_n, r_n]`, a core
  `G (R_0, ..., R_n)` and one factor `A_a (size_a, R_a)` per axis;
- TT: `W[j_0, ..., j_n] = G_0[:, j_0, :] @ G_1[:, j_1, :] @ ... @ G_n[:, j_n, :]`, one core
  `G_a (R_a, size_a, R_{a+1})` per axis with `R_0 = R_{n+1} = 1`.

Every complex array is two real `nnx.Param`s (`real`, `imag`), so optimisers and checkpoints
only ever see real arrays. A window of modes (one slice per mode axis) slices the mode factors
(CP, Tucker) or mode cores (TT) and nothing else, so a smaller set of modes is a sub-block of
the same parameters; that is how incremental modes grow without re-initialising.

`rank` follows tensorly: a float is the fraction of the dense parameter count to keep (solved
exactly as tensorly does, so parameter counts equal neuraloperator's), an int the rank of every
mode (CP: the rank), a sequence the ranks themselves (Tucker: one per axis; TT: `order + 1`
with ones at both ends).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import EllipsisType
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from scipy.optimize import brentq

from surrogates.errors import ModelError

FACTORIZATIONS = ("dense", "cp", "tucker", "tt")
Rank = float | int | Sequence[int]
# One slice per mode axis of a weight tensor.
Window = tuple[slice, ...]
# A tensor's `prepare()` result: a pytree of complex arrays.
Prepared = Any

# einsum letters: channels `i` (in) and `o` (out), modes `k l m n`, batch `b`, ranks upper case.
_MODE_LETTERS = "klmn"
_RANK_LETTERS = "ABCDEFGHIJ"


def factorization_name(factorization: str | None) -> str:
    """neuraloperator's spelling ("Tucker", "CP", "TT", "Dense", None) -> one of FACTORIZATIONS."""
    name = "dense" if factorization is None else str(factorization).lower()
    if name not in FACTORIZATIONS:
        raise ModelError(
            f"factorization must be None or one of {FACTORIZATIONS} (any case), "
            f"got {factorization!r}"
        )
    return name


def fixed_modes(fixed_rank_modes: bool | Sequence[int], order: int) -> tuple[int, ...]:
    """Axes a Tucker factorization keeps at full rank; True means (0,) as in neuraloperator."""
    if isinstance(fixed_rank_modes, bool):
        return (0,) if fixed_rank_modes else ()
    modes = tuple(fixed_rank_modes)
    if not all(isinstance(m, int) and 0 <= m < order for m in modes) or len(set(modes)) != len(
        modes
    ):
        raise ModelError(
            f"fixed_rank_modes must be a bool or distinct axes in 0..{order - 1}, "
            f"got {fixed_rank_modes!r}"
        )
    return modes


def _check_rank(rank: Rank) -> None:
    if isinstance(rank, bool) or not (
        (isinstance(rank, float) and rank > 0)
        or (isinstance(rank, int) and rank >= 1)
        or (
            isinstance(rank, Sequence)
            and all(isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in rank)
        )
    ):
        raise ModelError(
            f"rank must be a fraction > 0, an int >= 1 or a sequence of them, got {rank!r}"
        )


def cp_rank(shape: Sequence[int], rank: Rank) -> int:
    """CP rank of a tensor of `shape`: a float keeps that fraction of `prod(shape)` parameters.

    A rank-R CP tensor has `R * sum(shape)` parameters (the R weights are not counted, as in
    tensorly).
    """
    _check_rank(rank)
    if isinstance(rank, float):
        resolved = round(math.prod(shape) * rank / sum(shape))
    elif isinstance(rank, int):
        resolved = rank
    else:
        raise ModelError(f"rank of a CP factorization must be one number, got {rank!r}")
    if resolved < 1:
        raise ModelError(f"rank {rank!r} gives CP rank 0 for a weight of shape {tuple(shape)}")
    return resolved


def tucker_rank(shape: Sequence[int], rank: Rank, fixed: Sequence[int] = ()) -> tuple[int, ...]:
    """Tucker ranks of a tensor of `shape`, axes in `fixed` at full rank.

    For a float rank, tensorly looks for `c` with `R_a = round(c * shape[a])` on the free axes:
    `prod(shape) * c**n_free + (sum of free shape[a]**2 + sum of fixed shape[a]**2) * c =
    rank * prod(shape)` (core plus factors; tensorly scales the fixed factors by `c` too, which
    is kept so the counts match).
    """
    _check_rank(rank)
    if isinstance(rank, float):
        free = [s for a, s in enumerate(shape) if a not in fixed]
        if not free:
            return tuple(shape)
        n_param = math.prod(shape)
        free_squares = sum(s**2 for s in free)
        fixed_squares = sum(shape[a] ** 2 for a in fixed)

        # Term by term as tensorly writes it, so brentq lands on the same root.
        def excess(c: float) -> float:
            return n_param * c ** len(free) + free_squares * c + fixed_squares * c - rank * n_param

        c = brentq(excess, 0.0, max(rank, 1.0))
        return tuple(s if a in fixed else max(round(s * c), 1) for a, s in enumerate(shape))
    if isinstance(rank, int):
        return tuple(s if a in fixed else rank for a, s in enumerate(shape))
    if len(rank) != len(shape):
        raise ModelError(
            f"rank of a Tucker factorization needs {len(shape)} entries (one per axis of "
            f"{tuple(shape)}), got {rank!r}"
        )
    return tuple(rank)


def tt_rank(shape: Sequence[int], rank: Rank) -> tuple[int, ...]:
    """TT ranks `(1, R_1, ..., R_{n-1}, 1)` of a tensor of `shape` (length `order + 1`).

    For a float rank, tensorly takes `R_a = round(c * d_a)` with `d_a` the mean size of the two
    axes the rank joins, and solves `q c**2 + l c = rank * prod(shape)` for the parameter count
    of the cores: inner cores `d_{a-1} shape[a] d_a c**2`, the two end cores `shape[0] d_0 c`
    and `shape[-1] d_{-1} c` (for a matrix, which has no inner core, tensorly takes
    `q = d_0**2 shape[0]`).
    """
    _check_rank(rank)
    order = len(shape)
    if isinstance(rank, float):
        mean = [(shape[a] + shape[a + 1]) / 2 for a in range(order - 1)]
        if order > 2:
            quadratic = sum(mean[a - 1] * shape[a] * mean[a] for a in range(1, order - 1))
        else:
            quadratic = mean[0] ** 2 * shape[0]
        linear = shape[0] * mean[0] + shape[-1] * mean[-1]
        target = math.prod(shape) * rank
        c = (-linear + math.sqrt(linear**2 + 4 * quadratic * target)) / (2 * quadratic)
        return (1, *(max(round(d * c), 1) for d in mean), 1)
    if isinstance(rank, int):
        return (1, *(rank,) * (order - 1), 1)
    if len(rank) != order + 1 or rank[0] != 1 or rank[-1] != 1:
        raise ModelError(
            f"rank of a TT factorization needs {order + 1} entries starting and ending with 1, "
            f"got {rank!r}"
        )
    return tuple(rank)


class ComplexParam(nnx.Module):
    """A complex array stored as two real parameters `real` and `imag` of the same shape."""

    def __init__(self, real: nnx.Param, imag: nnx.Param) -> None:
        self.real = real
        self.imag = imag

    @classmethod
    def normal(cls, shape: Sequence[int], std: float, *, rngs: nnx.Rngs) -> ComplexParam:
        """Complex normal with `E|z|^2 = std^2`: each part normal with `std / sqrt(2)`."""
        real = nnx.Param(std / math.sqrt(2.0) * jax.random.normal(rngs.params(), shape))
        imag = nnx.Param(std / math.sqrt(2.0) * jax.random.normal(rngs.params(), shape))
        return cls(real, imag)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.real.shape)

    def __getitem__(self, index: tuple[slice, ...] | EllipsisType) -> jax.Array:
        return jax.lax.complex(self.real[index], self.imag[index])


class FactorizedTensor(nnx.Module):
    """A complex tensor `(Cin, Cout, *M)` (or `(C, *M)` when `separable`) held as factors.

    Subclasses store their factors, return them as complex arrays from `_arrays` and slice
    them in `_operands`; reconstruction and the contraction with spectral modes are both single
    einsums over those operands.

    `prepare()` computes what the contraction needs from the parameters alone (the complex
    factors; for Tucker, the core expanded over the modes) and `contract` takes it back: an
    FNO prepares all of its blocks' weights at once before scanning over them, so inside a
    loop over micro-batches that work does not depend on the data and is done once per step.
    """

    shape: tuple[int, ...]
    separable: bool

    @property
    def channel_axes(self) -> int:
        """Leading channel axes: 1 (separable, `C`) or 2 (`Cin, Cout`)."""
        return 1 if self.separable else 2

    def _letters(self) -> str:
        """One einsum letter per axis of the tensor: channels `i` (`o`), modes `k l m n`."""
        modes = _MODE_LETTERS[: len(self.shape) - self.channel_axes]
        return ("i" if self.separable else "io") + modes

    def _slices(self, window: Window | None) -> tuple[slice, ...]:
        """One slice per axis: all channels, `window` (or everything) on the mode axes."""
        n_mode_axes = len(self.shape) - self.channel_axes
        window = window if window is not None else (slice(None),) * n_mode_axes
        if len(window) != n_mode_axes:
            raise ValueError(f"window needs {n_mode_axes} slices, got {window}")
        return (slice(None),) * self.channel_axes + tuple(window)

    def _arrays(self) -> list[jax.Array]:
        """The complex arrays of the factors, whole."""
        raise NotImplementedError

    def _operands(
        self, slices: tuple[slice, ...], arrays: list[jax.Array]
    ) -> tuple[list[str], list[jax.Array]]:
        """einsum subscripts (axes by `_letters`) and `arrays` (from `_arrays`) sliced."""
        raise NotImplementedError

    def prepare(self) -> Prepared:
        """What `contract` takes from the parameters, for all modes (see the class docstring)."""
        return self._arrays()

    def reconstruct(self, window: Window | None = None, *, modes_first: bool = False) -> jax.Array:
        """The complex tensor restricted to `window` of modes: (Cin, Cout, *K) or (C, *K).

        `modes_first` gives the mode axes first instead, (*K, Cin, Cout) or (*K, C), the
        layout `contract_dense` takes.
        """
        subscripts, operands = self._operands(self._slices(window), self._arrays())
        letters = self._letters()
        if modes_first:
            letters = letters[self.channel_axes :] + letters[: self.channel_axes]
        equation = f"{','.join(subscripts)}->{letters}"
        return jnp.einsum(equation, *operands, optimize="optimal")

    def contract(
        self, x_modes: jax.Array, window: Window | None = None, prepared: Prepared | None = None
    ) -> jax.Array:
        """Mix channels mode by mode with the factors, never forming the full tensor.

        x_modes: (B, *K, Cin) complex, `K` the sizes of `window` -> (B, *K, Cout) (separable:
        `x_modes * W` channel by channel, (B, *K, C)). `prepared` is `prepare()`'s result
        (computed here when None).
        """
        arrays = self.prepare() if prepared is None else prepared
        subscripts, operands = self._operands(self._slices(window), arrays)
        letters = self._letters()
        modes = letters[self.channel_axes :]
        out = "i" if self.separable else "o"
        equation = f"b{modes}i,{','.join(subscripts)}->b{modes}{out}"
        # opt_einsum's optimal order contracts x with the small factors first and never builds
        # an intermediate of the full weight's size (the operands are few, so it is cheap).
        return jnp.einsum(equation, x_modes, *operands, optimize="optimal")


class DenseTensor(FactorizedTensor):
    """No factorization: the complex tensor itself.

    `tensor` holds it as `(*shape)`, or with `modes_first` as `(*M, Cin, Cout)` (separable:
    `(*M, C)`), the layout the mode-by-mode channel products read as it lies; `shape` and
    `reconstruct` keep the channels-first convention either way.
    """

    def __init__(self, tensor: ComplexParam, *, separable: bool, modes_first: bool = False) -> None:
        self.tensor = tensor
        self.separable = separable
        self.modes_first = modes_first
        stored = tensor.shape
        channels = self.channel_axes
        self.shape = (*stored[-channels:], *stored[:-channels]) if modes_first else stored

    def reconstruct(self, window: Window | None = None, *, modes_first: bool = False) -> jax.Array:
        channels = self.channel_axes
        slices = self._slices(window)
        if self.modes_first:
            tensor = self.tensor[slices[channels:] + slices[:channels]]
            return tensor if modes_first else move_channels(tensor, channels, last=False)
        tensor = self.tensor[slices]
        return move_channels(tensor, channels, last=True) if modes_first else tensor

    def prepare(self) -> jax.Array:
        """The whole tensor, modes first (see `reconstruct`)."""
        return self.reconstruct(modes_first=True)

    def contract(
        self, x_modes: jax.Array, window: Window | None = None, prepared: Prepared | None = None
    ) -> jax.Array:
        prepared = self.prepare() if prepared is None else prepared
        weight = prepared[self._slices(window)[self.channel_axes :]]
        return contract_dense(x_modes, weight, separable=self.separable)


class CPTensor(FactorizedTensor):
    """CP factorization: `weights (R,)` and `factors[a] (shape[a], R)`.

    Initialised as tensorly-torch: weights one, factors complex normal with standard deviation
    `(std / sqrt(R)) ** (1 / order)`, so the entries of the tensor (sums of R products of
    `order` factor entries) have standard deviation `std`.
    """

    def __init__(
        self, shape: Sequence[int], rank: Rank, *, separable: bool, std: float, rngs: nnx.Rngs
    ) -> None:
        self.shape = tuple(shape)
        self.separable = separable
        self.rank = cp_rank(shape, rank)
        self.weights = ComplexParam(
            nnx.Param(jnp.ones((self.rank,))), nnx.Param(jnp.zeros((self.rank,)))
        )
        factor_std = (std / math.sqrt(self.rank)) ** (1 / len(shape))
        self.factors = nnx.List(
            [ComplexParam.normal((s, self.rank), factor_std, rngs=rngs) for s in shape]
        )

    def _arrays(self) -> list[jax.Array]:
        return [self.weights[...], *(f[...] for f in self.factors)]

    def _operands(
        self, slices: tuple[slice, ...], arrays: list[jax.Array]
    ) -> tuple[list[str], list[jax.Array]]:
        r = _RANK_LETTERS[0]
        subscripts = [r, *(letter + r for letter in self._letters())]
        weights, *factors = arrays
        return subscripts, [weights, *(f[s] for f, s in zip(factors, slices, strict=True))]


class TuckerTensor(FactorizedTensor):
    """Tucker factorization: `core (*rank)` and `factors[a] (shape[a], rank[a])`.

    Initialised as tensorly-torch: core and factors complex normal with standard deviation
    `(std / sqrt(prod(rank))) ** (1 / (order + 1))`, so the tensor's entries have `std`.
    """

    def __init__(
        self,
        shape: Sequence[int],
        rank: Rank,
        *,
        separable: bool,
        fixed_rank_modes: bool | Sequence[int],
        std: float,
        rngs: nnx.Rngs,
    ) -> None:
        self.shape = tuple(shape)
        self.separable = separable
        self.rank = tucker_rank(shape, rank, fixed_modes(fixed_rank_modes, len(shape)))
        part_std = (std / math.sqrt(math.prod(self.rank))) ** (1 / (len(shape) + 1))
        self.core = ComplexParam.normal(self.rank, part_std, rngs=rngs)
        self.factors = nnx.List(
            [
                ComplexParam.normal((s, r), part_std, rngs=rngs)
                for s, r in zip(shape, self.rank, strict=True)
            ]
        )

    def _arrays(self) -> list[jax.Array]:
        return [self.core[...], *(f[...] for f in self.factors)]

    def _operands(
        self, slices: tuple[slice, ...], arrays: list[jax.Array]
    ) -> tuple[list[str], list[jax.Array]]:
        ranks = _RANK_LETTERS[: len(self.shape)]
        subscripts = [ranks, *(a + r for a, r in zip(self._letters(), ranks, strict=True))]
        core, *factors = arrays
        return subscripts, [core, *(f[s] for f, s in zip(factors, slices, strict=True))]

    def prepare(self) -> Prepared:
        """Channel mixing not separable: the input and output factors `(Cin, R_in)`,
        `(Cout, R_out)` and the core expanded over the modes, `(*M, R_in, R_out)` (smaller than
        the weight while the channel ranks are below the channel counts); separable: the
        factors, as every factorization.
        """
        if self.separable:
            return super().prepare()
        core, inputs, outputs, *modes = self._arrays()
        ranks = _RANK_LETTERS[: len(self.shape)]
        letters = _MODE_LETTERS[: len(modes)]
        factors = ",".join(m + r for m, r in zip(letters, ranks[2:], strict=True))
        per_mode = jnp.einsum(
            f"{ranks},{factors}->{letters}{ranks[:2]}", core, *modes, optimize="optimal"
        )
        return {"inputs": inputs, "outputs": outputs, "per_mode": per_mode}

    def contract(
        self, x_modes: jax.Array, window: Window | None = None, prepared: Prepared | None = None
    ) -> jax.Array:
        """As `FactorizedTensor.contract`; without separable channels in three steps, the input
        factor, the per-mode core of `prepare` (one small matrix per mode) and the output
        factor, each reading its operands as they lie.
        """
        if self.separable:
            return super().contract(x_modes, window, prepared)
        prepared = self.prepare() if prepared is None else prepared
        per_mode = prepared["per_mode"][self._slices(window)[self.channel_axes :]]
        y = jnp.einsum("...i,iA->...A", x_modes, prepared["inputs"])
        y = contract_dense(y, per_mode, separable=False)
        return jnp.einsum("...B,oB->...o", y, prepared["outputs"])


class TTTensor(FactorizedTensor):
    """Tensor train: `cores[a] (rank[a], shape[a], rank[a + 1])`, `rank[0] = rank[-1] = 1`.

    Initialised so the tensor's entries have standard deviation `std`: each entry sums
    `prod(rank)` products of `order` core entries, so the cores get
    `(std / sqrt(prod(rank))) ** (1 / order)`. (tensorly-torch uses `std / prod(rank)`, which
    leaves the tensor `sqrt(prod(rank))` times smaller than asked.)
    """

    def __init__(
        self, shape: Sequence[int], rank: Rank, *, separable: bool, std: float, rngs: nnx.Rngs
    ) -> None:
        self.shape = tuple(shape)
        self.separable = separable
        self.rank = tt_rank(shape, rank)
        core_std = (std / math.sqrt(math.prod(self.rank))) ** (1 / len(shape))
        self.cores = nnx.List(
            [
                ComplexParam.normal((self.rank[a], s, self.rank[a + 1]), core_std, rngs=rngs)
                for a, s in enumerate(shape)
            ]
        )

    def _arrays(self) -> list[jax.Array]:
        return [c[...] for c in self.cores]

    def _operands(
        self, slices: tuple[slice, ...], arrays: list[jax.Array]
    ) -> tuple[list[str], list[jax.Array]]:
        ranks = _RANK_LETTERS[: len(self.shape) + 1]
        subscripts = [ranks[a] + letter + ranks[a + 1] for a, letter in enumerate(self._letters())]
        return subscripts, [c[:, s] for c, s in zip(arrays, slices, strict=True)]


def new_tensor(
    factorization: str | None,
    shape: Sequence[int],
    *,
    separable: bool = False,
    rank: Rank = 1.0,
    fixed_rank_modes: bool | Sequence[int] = False,
    std: float,
    rngs: nnx.Rngs,
) -> FactorizedTensor:
    """A complex tensor of `shape` whose entries have standard deviation `std`.

    `factorization` as neuraloperator (None or "dense", "cp", "tucker", "tt", any case);
    `rank` is ignored by dense tensors and `fixed_rank_modes` by all but Tucker, as there.
    """
    name = factorization_name(factorization)
    _check_rank(rank)
    fixed_modes(fixed_rank_modes, len(shape))
    if name == "dense":
        return DenseTensor(ComplexParam.normal(shape, std, rngs=rngs), separable=separable)
    if name == "cp":
        return CPTensor(shape, rank, separable=separable, std=std, rngs=rngs)
    if name == "tucker":
        return TuckerTensor(
            shape,
            rank,
            separable=separable,
            fixed_rank_modes=fixed_rank_modes,
            std=std,
            rngs=rngs,
        )
    return TTTensor(shape, rank, separable=separable, std=std, rngs=rngs)


def move_channels(tensor: jax.Array, channels: int, *, last: bool) -> jax.Array:
    """Move a weight's `channels` leading channel axes to the end (`last`), `(*C, *M) ->
    (*M, *C)`, or back from the end to the front, `(*M, *C) -> (*C, *M)`."""
    front, back = tuple(range(channels)), tuple(range(-channels, 0))
    return jnp.moveaxis(tensor, front, back) if last else jnp.moveaxis(tensor, back, front)


def contract_dense(x_modes: jax.Array, weight: jax.Array, *, separable: bool) -> jax.Array:
    """x_modes: (B, *K, Cin) with weight (*K, Cin, Cout) -> (B, *K, Cout), both complex.

    Separable: weight (*K, C), the product channel by channel -> (B, *K, C). The weight comes
    modes first because the product is one small matrix product per mode: any other layout
    is first transposed to this one, a copy of the whole weight in every call.
    """
    if separable:
        return x_modes * weight
    return jnp.einsum("b...i,...io->b...o", x_modes, weight)
