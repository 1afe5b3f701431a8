"""Steady Darcy flow `-div(a grad u) = beta` on the unit square, written in PDEBench's layout.

The solver is cell-centred finite volumes on an `S x S` grid of cells (centres at
`(i + 1/2) / S`, as PDEBench's coordinates): the flux through a face between two cells uses the
harmonic mean of their coefficients, the boundary condition `u = 0` is imposed through a ghost
value half a cell beyond the wall, and the resulting symmetric M-matrix is factorised by SuperLU.
Every solve is checked: the relative residual `||A u - f|| / ||f||` must stay below `1e-8`.

The coefficient is piecewise constant with two values. By default it is PDEBench's: `high` (1)
where a sum of 5 random Gaussians exceeds its mean over the sample, else `low` (0.1). The FNO
paper's alternative, a Gaussian random field with covariance `(-Laplacian + tau^2)^(-alpha)`
thresholded at zero (12 / 3), is `coefficient: {kind: grf}`. Sample `i` of a file draws from
`numpy.random.default_rng([seed, i])`, so it never depends on how many samples are written or
how they are grouped, and every beta of a sweep shares the same coefficients (as in PDEBench).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import h5py
import numpy as np
from pydantic import Field, model_validator
from scipy import fft, sparse
from scipy.sparse.linalg import splu

from surrogates.atomic import atomic_path
from surrogates.data.generate.specs import check_file_name, parameter_sweep
from surrogates.errors import RecipeError
from surrogates.schema import StrictModel

RESIDUAL_TOLERANCE = 1e-8

_Finite = Annotated[float, Field(allow_inf_nan=False)]


def cell_centres(resolution: int) -> np.ndarray:
    """The `resolution` cell centres `(i + 1/2) / resolution` of the unit interval, float64."""
    return (np.arange(resolution) + 0.5) / resolution


def darcy_matrix(a: np.ndarray) -> sparse.csc_array:
    """The finite-volume operator of `-div(a grad u)` with `u = 0` on the walls.

    a: (S, S) positive coefficient per cell, indexed `[x, y]`. Returns the `(S*S, S*S)`
    symmetric positive definite matrix acting on `u.ravel()` (C order, `y` fastest), scaled so
    that `A u` approximates `-div(a grad u)` at the cell centres.
    """
    s = a.shape[0]
    index = np.arange(s * s).reshape(s, s)
    # Face transmissibilities: harmonic means between neighbours, 2a at the walls because the
    # ghost value sits half a cell beyond them.
    tx = 2 * a[:-1] * a[1:] / (a[:-1] + a[1:])
    ty = 2 * a[:, :-1] * a[:, 1:] / (a[:, :-1] + a[:, 1:])
    diagonal = np.zeros_like(a)
    diagonal[:-1] += tx
    diagonal[1:] += tx
    diagonal[:, :-1] += ty
    diagonal[:, 1:] += ty
    diagonal[0] += 2 * a[0]
    diagonal[-1] += 2 * a[-1]
    diagonal[:, 0] += 2 * a[:, 0]
    diagonal[:, -1] += 2 * a[:, -1]
    rows = [index, index[:-1], index[1:], index[:, :-1], index[:, 1:]]
    cols = [index, index[1:], index[:-1], index[:, 1:], index[:, :-1]]
    values = [diagonal, -tx, -tx, -ty, -ty]
    return sparse.csc_array(
        (
            np.concatenate([v.ravel() for v in values]) * s * s,
            (np.concatenate([r.ravel() for r in rows]), np.concatenate([c.ravel() for c in cols])),
        ),
        shape=(s * s, s * s),
    )


def solve_darcy(a: np.ndarray, f: np.ndarray | float = 1.0) -> np.ndarray:
    """`u` (S, S) float64 solving `-div(a grad u) = f` on the unit square, `u = 0` on the walls.

    a: (S, S) coefficient per cell, positive and finite, indexed `[x, y]`.
    f: (S, S) right-hand side at the cell centres, or one number for all cells.

    Raises:
        ValueError: `a` or `f` of the wrong shape, `a` not positive, or non-finite input.
        RecipeError: the relative residual `||A u - f|| / ||f||` is not below 1e-8.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(f"a: expected a square (S, S) array with S >= 2, found shape {a.shape}")
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError("a: expected positive, finite values")
    rhs = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape).ravel()
    if not np.isfinite(rhs).all():
        raise ValueError("f: expected finite values")
    matrix = darcy_matrix(a)
    # The symmetric pattern makes a minimum-degree ordering on A + A^T the cheapest for SuperLU.
    u = splu(matrix, permc_spec="MMD_AT_PLUS_A").solve(rhs)
    residual = np.linalg.norm(matrix @ u - rhs)
    scale = np.linalg.norm(rhs)
    if not residual <= RESIDUAL_TOLERANCE * scale:
        relative = residual / scale if scale > 0 else residual
        raise RecipeError(
            f"the Darcy solve missed its tolerance: relative residual {relative:.2e} "
            f"(expected below {RESIDUAL_TOLERANCE:.0e})"
        )
    return u.reshape(a.shape)


def gaussian_bumps(
    rng: np.random.Generator, resolution: int, count: int, high: float, low: float
) -> np.ndarray:
    """PDEBench's coefficient (S, S): `high` where a sum of random Gaussians exceeds its mean.

    Centres are uniform on the square and the Gaussians are `exp(-|x - m|^2 / w)` with
    `w ~ U(0, 0.5)`, as PDEBench draws them; the threshold is this sample's mean (PDEBench
    takes the mean over its whole batch, which would tie a sample to the others).
    """
    centres = rng.uniform(0.0, 1.0, size=(count, 2))
    widths = 0.5 * rng.uniform(0.0, 1.0, size=count)
    x = cell_centres(resolution)
    field = np.zeros((resolution, resolution))
    for (mx, my), w in zip(centres, widths, strict=True):
        field += np.exp(-((x[:, None] - mx) ** 2 + (x[None, :] - my) ** 2) / w)
    return np.where(field > field.mean(), high, low)


def thresholded_grf(
    rng: np.random.Generator, resolution: int, alpha: float, tau: float, high: float, low: float
) -> np.ndarray:
    """The FNO paper's coefficient (S, S): `high` where a Gaussian random field is >= 0.

    The field has covariance `(-Laplacian + tau^2)^(-alpha)` with zero-flux walls, drawn as a
    cosine series on the cell centres (FNO's `GRF.m`, whose `idct2` is this orthonormal DCT).
    """
    k = np.arange(resolution)
    eigen = np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2
    spectrum = resolution * tau ** (alpha - 1) * eigen ** (-alpha / 2)
    coefficients = spectrum * rng.standard_normal((resolution, resolution))
    coefficients[0, 0] = 0.0
    field = fft.idctn(coefficients, type=2, norm="ortho")
    return np.where(field >= 0, high, low)


class DarcyParameters(StrictModel):
    """The source values to sweep, one file each."""

    beta: Annotated[list[_Finite], Field(min_length=1)]
    """The constant source `beta` of `-div(a grad u) = beta`, one file per value."""


_COEFFICIENT_OPTIONS: dict[str, dict[str, float]] = {
    "gaussians": {"count": 5, "high": 1.0, "low": 0.1},
    "grf": {"alpha": 2.0, "tau": 3.0, "high": 12.0, "low": 3.0},
}


class CoefficientSpec(StrictModel):
    """The two-valued coefficient `a`; each option applies to some kinds only, and one left
    out takes the kind's default."""

    kind: Literal["gaussians", "grf"] = "gaussians"
    """`gaussians` (PDEBench, default: `high` where a sum of random Gaussians exceeds its
    mean) or `grf` (the FNO paper's field: `high` where a Gaussian random field is >= 0)."""
    high: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """The higher value (default 1 for `gaussians`, 12 for `grf`)."""
    low: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """The lower value (default 0.1 for `gaussians`, 3 for `grf`)."""
    count: Annotated[int, Field(ge=1)] | None = None
    """`gaussians` only: the number of Gaussians summed (5)."""
    alpha: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """`grf` only: the exponent of the covariance `(-Laplacian + tau^2)^(-alpha)` (2)."""
    tau: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """`grf` only: `tau` of the covariance `(-Laplacian + tau^2)^(-alpha)` (3)."""

    def options(self) -> dict[str, object]:
        """The kind and its options with defaults filled in."""
        chosen = self.model_dump(exclude_none=True)
        return {**_COEFFICIENT_OPTIONS[self.kind], **chosen}


class DarcyRecipe(StrictModel):
    """A sweep of steady Darcy flow `-div(a grad u) = beta`, one file per beta.

    Files follow PDEBench's Darcy layout: `tensor (N, 1, S, S)` the solution, `nu (N, S, S)`
    the coefficient, `x-`/`y-coordinate (S,)` cell centres, `t-coordinate` `[0.0]`, attributes
    `beta`, `boundary` ("dirichlet"), `pde` and `generator` (the settings, JSON).
    """

    pde: Literal["darcy"]
    """Selects this recipe kind."""
    parameters: DarcyParameters
    """The values to sweep, one file each."""
    file_name: str
    """The files' name pattern, with `{beta}` for the source value (needed when it takes
    several values)."""
    samples: Annotated[int, Field(ge=1)] = 1000
    """Solutions per file."""
    resolution: Annotated[int, Field(ge=4)] = 128
    """Cells `S` per axis of the unit square."""
    seed: int = 2022
    """Sample `i`'s coefficient draws from `numpy.random.default_rng([seed, i])`, so every
    beta of a sweep shares the same coefficients."""
    coefficient: CoefficientSpec = CoefficientSpec()
    """The coefficient `a`."""
    chunk: Annotated[int, Field(ge=1)] = 50
    """Samples solved between two writes (and progress updates); results never depend on
    it."""

    @model_validator(mode="before")
    @classmethod
    def _known_parameters(cls, data: object) -> object:
        # Before field validation, so a misspelt name is reported rather than a missing beta.
        parameters = data.get("parameters") if isinstance(data, dict) else None
        if isinstance(parameters, dict):
            for name in parameters:
                if name not in DarcyParameters.model_fields:
                    close = difflib.get_close_matches(str(name), ["beta"], n=1)
                    hint = f"did you mean '{close[0]}'?" if close else "darcy takes beta"
                    raise ValueError(f"parameters.{name}: unknown key ({hint})")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DarcyRecipe:
        kind = self.coefficient.kind
        chosen = self.coefficient.model_fields_set - {"kind"}
        stray = sorted(chosen - set(_COEFFICIENT_OPTIONS[kind]))
        if stray:
            raise ValueError(f"coefficient.{stray[0]}: does not apply to kind {kind}")
        check_file_name(self.file_name, self.parameters.model_dump())
        return self

    def sweep(self) -> list[dict[str, float]]:
        """One `{"beta": value}` per file, in the recipe's order."""
        return parameter_sweep(self.parameters.model_dump())

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines one file's contents, as canonical JSON (not `chunk`)."""
        settings = self.model_dump(exclude={"parameters", "file_name", "chunk", "coefficient"})
        settings.update(parameters=values, coefficient=self.coefficient.options())
        return json.dumps(settings, sort_keys=True)

    def sample_coefficient(self, index: int) -> np.ndarray:
        """The coefficient of sample `index`: (S, S) float64, indexed `[x, y]`."""
        options = self.coefficient.options()
        kind = options.pop("kind")
        rng = np.random.default_rng([self.seed, index])
        if kind == "grf":
            return thresholded_grf(rng, self.resolution, **options)
        return gaussian_bumps(rng, self.resolution, **options)

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve every sample for `values` into the file `target`, atomically.

        Raises:
            RecipeError: a sample whose solve missed its tolerance or does not fit float32,
                naming the sample; nothing is written then.
        """
        s, n, beta = self.resolution, self.samples, values["beta"]
        x = cell_centres(s).astype(np.float32)
        with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
            tensor = f.create_dataset("tensor", (n, 1, s, s), np.float32, chunks=(1, 1, s, s))
            nu = f.create_dataset("nu", (n, s, s), np.float32, chunks=(1, s, s))
            f["x-coordinate"] = x
            f["y-coordinate"] = x
            f["t-coordinate"] = np.zeros(1, np.float32)
            f.attrs.update(beta=beta, boundary="dirichlet", pde="darcy")
            for start in range(0, n, self.chunk):
                stop = min(start + self.chunk, n)
                a = np.stack([self.sample_coefficient(i) for i in range(start, stop)])
                u = np.stack(
                    [self._solve(target, values, i, a[i - start]) for i in range(start, stop)]
                )
                tensor[start:stop, 0] = u
                nu[start:stop] = a
                advance(stop - start)
            f.attrs["generator"] = self.file_settings(values)

    def _solve(self, target: Path, values: dict[str, float], i: int, a: np.ndarray) -> np.ndarray:
        where = f"{target}: sample {i} with {json.dumps(values)}"
        try:
            u = solve_darcy(a, values["beta"]).astype(np.float32)
        except RecipeError as exc:
            raise RecipeError(f"{where}: {exc}; nothing was written") from None
        if not np.isfinite(u).all():
            raise RecipeError(
                f"{where}: the solution is not finite in float32; nothing was written"
            )
        return u
