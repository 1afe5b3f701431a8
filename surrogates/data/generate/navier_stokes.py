"""2D incompressible Navier-Stokes in vorticity form, as in the FNO paper (Li et al. 2020).

    w_t + u . grad w = nu lap w + f,   u = (psi_y, -psi_x),   -lap psi = w

on the periodic unit square, with FNO's forcing `f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`
and initial vorticity from FNO's Gaussian random field (`sample_vorticity`).

The solver is pseudo-spectral (real FFTs, 2/3-rule dealiasing) with ETDRK4 time stepping (Cox
and Matthews 2002): viscosity is integrated exactly, advection and forcing by the
fourth-order exponential Runge-Kutta stages. So a flow whose nonlinear term vanishes
(Taylor-Green, any single Fourier shell, forced or not) is solved exactly up to rounding.
Frames are solved at `N x N` nodes and saved at `S x S` (S divides N; FNO solved at 256 and
saved 64) by striding or by a spectral low-pass (`downsample`).

Time steps are adaptive per sample: each save interval is cut into equal steps such that the
Courant number `dt max(|u| + |v|) / dx` is `cfl` for the velocity at the interval's start. The
Courant number of every step is measured from the velocity that step computes anyway; an
interval in which the flow sped up past `STABLE_COURANT` is redone with smaller steps. A
sample's trajectory therefore depends only on its own initial state, never on the chunk it is
solved in. The stability rule: ETDRK4 reduces to classical RK4 on advection, stable for
`dt |lambda| <= 2 sqrt 2` on the imaginary axis; the largest advective rate is at most
`max(|u| + |v|) k_max` with `k_max = 2 pi N / 3` after dealiasing, so RK4 needs Courant
numbers below `2 sqrt 2 / (2 pi / 3) = 1.35`; viscosity only helps.

`NavierStokesRecipe` is the recipe schema of `pde: ns2d_vorticity`; it writes PDEBench's
per-sample group layout (`0000/data` `(T, S, S, 1)`, `0000/grid/x|y|t`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import h5py
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from pydantic import Field, model_validator

from surrogates.atomic import atomic_path
from surrogates.data.generate.specs import (
    TimeSpec,
    check_file_name,
    parameter_sweep,
    solved_chunks,
    write_sample_groups,
)
from surrogates.schema import StrictModel

# Courant number above which a step is not trusted (RK4's limit is 1.35, see above).
STABLE_COURANT = 1.2
# More steps than this per save interval means the flow has blown up; its frames become NaN.
MAX_STEPS = 1 << 20
# ETDRK4 weights come from Taylor series where |dt L| is below this, with this many terms
# (the first left out is below 1e-9 there).
_SERIES_RADIUS = 2.0
_SERIES_TERMS = 18


@functools.cache
def spectral_grid(n: int) -> dict[str, np.ndarray]:
    """Angular wavenumbers of `rfft2` on an `n x n` grid of the unit square, float32.

    `kx` (n, 1) and `ky` (1, n // 2 + 1); `k2` = |k|^2 (n, n // 2 + 1); `inverse_k2` with 0 at
    k = 0; `dealias`, 1 on the modes the 2/3 rule keeps (`|kx|, |ky| <= n / 3` in integers),
    except the mean, which the nonlinear term never changes on the torus; `shear` and
    `stretch`, the dealiased symbols of `d_xx - d_yy` and `-d_xy` (see `advection`).
    """
    ix = np.fft.fftfreq(n, 1 / n)[:, None]
    iy = np.fft.rfftfreq(n, 1 / n)[None, :]
    kx, ky = 2 * np.pi * ix, 2 * np.pi * iy
    k2 = kx**2 + ky**2
    inverse = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    keep = (np.abs(ix) <= n / 3) & (np.abs(iy) <= n / 3) & (k2 > 0)
    as32 = functools.partial(np.asarray, dtype=np.float32)
    return {
        "kx": as32(kx),
        "ky": as32(ky),
        "k2": as32(k2),
        "inverse_k2": as32(inverse),
        "dealias": as32(keep),
        "shear": as32((ky**2 - kx**2) * keep),
        "stretch": as32(kx * ky * keep),
    }


def nodes(n: int) -> np.ndarray:
    """Grid points `i / n`, i = 0..n-1, of each axis (FNO's grid): (n,) float64."""
    return np.arange(n) / n


def fno_forcing(n: int, amplitude: float = 0.1) -> np.ndarray:
    """FNO's forcing `amplitude (sin 2 pi (x + y) + cos 2 pi (x + y))` at the nodes: (n, n)."""
    phase = 2 * np.pi * (nodes(n)[:, None] + nodes(n)[None, :])
    return (amplitude * (np.sin(phase) + np.cos(phase))).astype(np.float32)


@functools.cache
def mode_ranks(n: int) -> np.ndarray:
    """Where each Fourier mode of an `n x n` grid (`fft2` layout) takes its noise: (n, n) int.

    Modes are ranked by shell `max(|kx|, |ky|)`, then kx, then ky, an order in which a mode's
    rank does not depend on n. With counter-based random bits (JAX's partitionable
    threefry), a mode therefore gets the same noise at every resolution, and a finer solver
    grid refines the same flow rather than drawing another one.
    """
    half = n // 2
    a, b = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1), indexing="ij")
    shell = np.maximum(np.abs(a), np.abs(b))
    rank = np.empty(a.size, np.int64)
    rank[np.lexsort((b.ravel(), a.ravel(), shell.ravel()))] = np.arange(a.size)
    k = np.fft.fftfreq(n, 1 / n).astype(np.int64) + half
    return rank.reshape(a.shape)[k[:, None], k[None, :]]


@functools.partial(jax.jit, static_argnames=("n", "alpha", "tau", "sigma"))
def sample_vorticity(
    seed: int,
    indices: ArrayLike,
    *,
    n: int,
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float | None = None,
) -> jax.Array:
    """Initial vorticities of samples `indices` (B,) on the `n x n` nodes: (B, n, n) float32.

    FNO's `GaussianRF(2, n, alpha, tau)` as it generated the paper's data: complex white noise
    (real and imaginary parts standard normal) times `n^2 sqrt(2) sigma (4 pi^2 |k|^2 +
    tau^2)^(-alpha / 2)`, zero at k = 0, inverse FFT, real part. So the Fourier coefficients
    `w_k` of `w = sum_k w_k exp(2 pi i k . x)` have `E |w_k|^2 = 2 sigma^2 (4 pi^2 |k|^2 +
    tau^2)^(-alpha)`, the mean is zero, and `sigma` defaults to FNO's `tau^(alpha - 1)`
    (the paper's `7^(3/2)`). Sample i draws from `fold_in(key(seed), i)`, whatever the batch,
    and each mode's noise is the same at every n (`mode_ranks`).
    """
    if sigma is None:
        sigma = tau ** (alpha - 1)
    k = np.fft.fftfreq(n, 1 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    root = n * n * np.sqrt(2.0) * sigma * (4 * np.pi**2 * k2 + tau**2) ** (-alpha / 2)
    root[0, 0] = 0.0
    root = jnp.asarray(root, jnp.float32)
    ranks = mode_ranks(n)

    def one(i: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.key(seed), i)
        noise = jax.random.normal(key, ((n + 1) ** 2, 2))[ranks]
        return jnp.fft.ifft2(root * (noise[..., 0] + 1j * noise[..., 1])).real

    return jax.vmap(one)(jnp.asarray(indices))


def velocity(w_hat: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Velocity `(psi_y, -psi_x)` at the nodes from vorticity coefficients `(n, n // 2 + 1)`."""
    n = w_hat.shape[-2]
    grid = spectral_grid(n)
    psi_hat = w_hat * grid["inverse_k2"]
    u, v = jnp.fft.irfft2(
        jnp.stack([1j * grid["ky"] * psi_hat, -1j * grid["kx"] * psi_hat]), s=(n, n)
    )
    return u, v


def advection(w_hat: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`-u . grad w` in Fourier space, dealiased, and the speed `max(|u| + |v|)`.

    Basdevant's form `u . grad w = (d_xx - d_yy)(u v) + d_xy (v^2 - u^2)` (the curl of
    `div(u u)`) needs four FFTs where `u w_x + v w_y` needs five. The products are formed
    from the modes the 2/3 rule keeps and cut back to them, so they are free of aliasing;
    the other modes only decay by viscosity.
    """
    n = w_hat.shape[-2]
    grid = spectral_grid(n)
    u, v = velocity(w_hat * grid["dealias"])
    products = jnp.fft.rfft2(jnp.stack([u * v, u * u - v * v]))
    transport = grid["shear"] * products[0] + grid["stretch"] * products[1]
    return -transport, jnp.max(jnp.abs(u) + jnp.abs(v))


def etdrk4_coefficients(z: jax.Array) -> tuple[jax.Array, ...]:
    """ETDRK4's weights for the linear rates times the step, `z = dt L` (real, <= 0).

    Returns `(e, e_half, q, f1, f2, f3)`: `e = exp(z)`, `e_half = exp(z/2)` and the stage
    weights divided by dt, `q = (e^(z/2) - 1) / z`, `f1 = phi1 - 3 phi2 + 4 phi3`,
    `f2 = phi2 - 2 phi3`, `f3 = 4 phi3 - phi2` (Cox and Matthews 2002). Their closed forms
    cancel catastrophically near z = 0, and so, in float32, does Kassam and Trefethen's
    contour mean near |z| = 1; so Taylor series below `_SERIES_RADIUS`, closed forms above,
    which keeps every weight within a few 1e-8 of its value.
    """
    small = jnp.abs(z) < _SERIES_RADIUS
    e, e_half = jnp.exp(z), jnp.exp(z / 2)
    zs = jnp.where(small, z, 0.0)
    zb = jnp.where(small, -_SERIES_RADIUS, z)
    inverse = 1 / zb
    inverse_cube = inverse**3
    closed = (
        jnp.expm1(zb / 2) * inverse,
        (-4 - zb + jnp.exp(zb) * (4 - 3 * zb + zb**2)) * inverse_cube,
        (2 + zb + jnp.exp(zb) * (zb - 2)) * inverse_cube,
        (-4 - 3 * zb - zb**2 + jnp.exp(zb) * (4 - zb)) * inverse_cube,
    )
    weights = []
    for coefficients, value in zip(_series_coefficients(), closed, strict=True):
        series = jnp.zeros_like(z)
        for c in coefficients[::-1]:
            series = series * zs + jnp.asarray(c, z.dtype)
        weights.append(jnp.where(small, series, value))
    return (e, e_half, *weights)


@functools.cache
def _series_coefficients() -> tuple[np.ndarray, ...]:
    """Taylor coefficients of q, f1, f2, f3 (from `phi_k(z) = sum_j z^j / (j + k)!`)."""
    j = np.arange(_SERIES_TERMS)
    factorial = np.array([math.factorial(k) for k in range(_SERIES_TERMS + 3)], np.float64)
    return (
        1 / (2 ** (j + 1) * factorial[j + 1]),
        (j + 1) ** 2 / factorial[j + 3],
        (j + 1) / factorial[j + 3],
        (1 - j) / factorial[j + 3],
    )


def advance(
    w_hat: jax.Array,
    nu: ArrayLike,
    forcing_hat: jax.Array,
    duration: ArrayLike,
    steps: ArrayLike,
) -> tuple[jax.Array, jax.Array]:
    """`steps` equal ETDRK4 steps over `duration` of one sample (`steps` may be traced).

    w_hat, forcing_hat: `rfft2` coefficients `(n, n // 2 + 1)`. Returns the coefficients at
    the end and the largest Courant number `dt max(|u| + |v|) n` met at a step's start.
    """
    n = w_hat.shape[-2]
    real = jnp.finfo(w_hat.dtype).dtype
    dt = (jnp.asarray(duration, real) / steps).astype(real)
    rates = -jnp.asarray(nu, real) * spectral_grid(n)["k2"]
    e, e_half, q, f1, f2, f3 = etdrk4_coefficients(dt * rates)
    q, f1, f2, f3 = (dt * c for c in (q, f1, f2, f3))

    def rhs(w: jax.Array) -> tuple[jax.Array, jax.Array]:
        transport, speed = advection(w)
        return transport + forcing_hat, speed

    def step(_, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        w, fastest = carry
        n_w, speed = rhs(w)
        a = e_half * w + q * n_w
        n_a, _ = rhs(a)
        b = e_half * w + q * n_a
        n_b, _ = rhs(b)
        c = e_half * a + q * (2 * n_b - n_w)
        n_c, _ = rhs(c)
        w = e * w + f1 * n_w + 2 * f2 * (n_a + n_b) + f3 * n_c
        return w, jnp.maximum(fastest, speed)

    w_hat, fastest = jax.lax.fori_loop(0, steps, step, (w_hat, jnp.zeros((), real)))
    return w_hat, fastest * dt * n


def advance_adaptive(
    w_hat: jax.Array, nu: ArrayLike, forcing_hat: jax.Array, duration: float, cfl: float
) -> jax.Array:
    """One sample over `duration` in equal steps at Courant number `cfl` (see the module
    docstring), redone with smaller steps if it exceeded `STABLE_COURANT` on the way.
    """
    n = w_hat.shape[-2]
    _, speed = advection(w_hat)

    def steps_for(courant_steps: jax.Array) -> jax.Array:
        needed = jnp.ceil(courant_steps / cfl)
        needed = jnp.where(jnp.isfinite(needed), needed, 1.0)
        return jnp.clip(needed, 1, MAX_STEPS + 1).astype(jnp.int32)

    def unresolved(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        steps, _, courant = state
        return (courant > STABLE_COURANT) & (steps <= MAX_STEPS)

    def attempt(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple:
        steps, _, _ = state
        w, courant = advance(w_hat, nu, forcing_hat, duration, steps)
        retry = jnp.maximum(steps_for(steps * courant), steps + 1)
        return jnp.where(courant > STABLE_COURANT, retry, steps), w, courant

    first = steps_for(duration * speed * n)
    state = (first, w_hat, jnp.asarray(jnp.inf, speed.dtype))
    _, w, courant = jax.lax.while_loop(unresolved, attempt, state)
    return jnp.where(courant > STABLE_COURANT, jnp.nan, w)


def downsample(w_hat: jax.Array, size: int, method: str) -> jax.Array:
    """Vorticity at `size x size` nodes from coefficients on a finer grid: (size, size).

    `stride` samples every r-th node (FNO's saved data); `spectral` keeps the modes below the
    coarse grid's Nyquist frequency, the trigonometric interpolant's low-pass.
    """
    n = w_hat.shape[-2]
    if method == "stride" or size == n:
        return jnp.fft.irfft2(w_hat, s=(n, n))[:: n // size, :: n // size]
    half = size // 2
    low = jnp.concatenate([w_hat[:half, :half], w_hat[n - half + 1 :, :half]], axis=0)
    low = jnp.pad(low, ((0, 0), (0, 1)))
    low = jnp.concatenate([low[:half], jnp.zeros_like(low[:1]), low[half:]], axis=0)
    return jnp.fft.irfft2(low * (size / n) ** 2, s=(size, size))


@functools.partial(
    jax.jit, static_argnames=("frames", "interval", "cfl", "resolution", "downsampling")
)
def solve(
    w0: jax.Array,
    nu: ArrayLike,
    forcing: jax.Array,
    *,
    frames: int,
    interval: float,
    cfl: float = 0.8,
    resolution: int | None = None,
    downsampling: Literal["stride", "spectral"] = "stride",
) -> jax.Array:
    """Trajectories from initial vorticities: w0 (B, N, N) -> (B, T, S, S), frame 0 = w0.

    nu: scalar or (B,); forcing: (N, N) at the nodes. Frames are `interval` apart; they are
    saved at `resolution` S (a divisor of N, default N) by `downsample`.
    """
    n = w0.shape[-1]
    size = resolution or n
    nu = jnp.broadcast_to(jnp.asarray(nu, w0.dtype), w0.shape[:1])
    forcing_hat = jnp.fft.rfft2(jnp.asarray(forcing, w0.dtype))

    def one(w: jax.Array, viscosity: jax.Array) -> jax.Array:
        def save(w_hat: jax.Array, _) -> tuple[jax.Array, jax.Array]:
            w_hat = advance_adaptive(w_hat, viscosity, forcing_hat, interval, cfl)
            return w_hat, downsample(w_hat, size, downsampling)

        w_hat = jnp.fft.rfft2(w)
        _, later = jax.lax.scan(save, w_hat, None, length=frames - 1)
        first = downsample(w_hat, size, downsampling)
        return jnp.concatenate([first[None], later])

    return jax.vmap(one)(w0, nu)


class NuValues(StrictModel):
    """The viscosities of the sweep, one file each."""

    nu: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
    """The viscosity `nu` of `w_t + u . grad w = nu lap w + f`, one file per value."""


class GaussianFieldSpec(StrictModel):
    """FNO's initial vorticity distribution (see `sample_vorticity`): zero-mean Fourier
    coefficients with `E |w_k|^2 = 2 sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha)`."""

    seed: int = 0
    """Sample `i` draws from `fold_in(key(seed), i)`, whatever the batch."""
    alpha: Annotated[float, Field(gt=1)] = 2.5
    """The spectrum's decay exponent: larger is smoother."""
    tau: Annotated[float, Field(gt=0)] = 7.0
    """The spectrum's inverse length scale: modes with `2 pi |k|` well below `tau` have about
    the same variance."""
    sigma: Annotated[float, Field(gt=0)] | None = None
    """The amplitude; None: FNO's `tau^(alpha - 1)`."""


class VorticitySolverSpec(StrictModel):
    """The pseudo-spectral ETDRK4 solver's grid and time steps."""

    resolution: Annotated[int, Field(ge=8)] | None = None
    """Nodes per axis of the grid the PDE is solved on, a multiple of the saved `resolution`;
    None: the saved one."""
    cfl: Annotated[float, Field(gt=0, le=1)] = 0.8
    """The Courant number `dt max(|u| + |v|) / dx` of the adaptive steps at each save
    interval's start."""
    downsample: Literal["stride", "spectral"] = "stride"
    """From the solver's grid to the saved one: `stride` (every r-th node, FNO's saved data)
    or `spectral` (the modes below the coarse grid's Nyquist frequency); see `downsample`."""


class NavierStokesRecipe(StrictModel):
    """Recipe of `pde: ns2d_vorticity`: one `.h5` file of per-sample groups per viscosity."""

    pde: Literal["ns2d_vorticity"]
    """Selects this recipe kind."""
    parameters: NuValues
    """The viscosities to sweep, one file each."""
    file_name: str = "ns2d_vorticity_nu{nu}.h5"
    """The files' name pattern, with `{nu}` for the viscosity (needed when it takes several
    values)."""
    samples: Annotated[int, Field(ge=1)] = 100
    """Trajectories per file."""
    chunk: Annotated[int, Field(ge=1)] = 16
    """Samples solved together; each keeps its own time steps, so files do not depend on
    it."""
    resolution: Annotated[int, Field(ge=8)] = 64
    """Nodes `S` per axis of the saved vorticity on the periodic unit square (even)."""
    time: TimeSpec = TimeSpec(t_end=50.0, frames=51)
    """The saved frames."""
    forcing: float = 0.1
    """Amplitude `A` of FNO's forcing `f = A (sin 2 pi (x + y) + cos 2 pi (x + y))` (FNO's
    0.1); 0 for none."""
    initial_condition: GaussianFieldSpec = GaussianFieldSpec()
    """The random initial vorticity."""
    solver: VorticitySolverSpec = VorticitySolverSpec()
    """The solver's grid and time steps."""

    @model_validator(mode="after")
    def _consistent(self) -> NavierStokesRecipe:
        if self.resolution % 2:
            raise ValueError(f"resolution: must be even, found {self.resolution}")
        fine = self.solver_resolution
        if fine % self.resolution:
            raise ValueError(
                f"solver.resolution: must be a multiple of resolution ({self.resolution}), "
                f"found {fine}"
            )
        check_file_name(self.file_name, self.parameters.model_dump())
        return self

    @property
    def solver_resolution(self) -> int:
        return self.solver.resolution or self.resolution

    def sweep(self) -> list[dict[str, float]]:
        """One combination per viscosity, in the recipe's order."""
        return parameter_sweep(self.parameters.model_dump())

    def file_settings(self, values: dict[str, float]) -> str:
        """Everything that determines one file's contents, as canonical JSON (not `chunk`)."""
        settings = self.model_dump(exclude={"parameters", "file_name", "chunk"})
        settings.update(parameters=values)
        settings["solver"]["resolution"] = self.solver_resolution
        return json.dumps(settings, sort_keys=True)

    def solve(self, values: dict[str, float], indices: np.ndarray) -> np.ndarray:
        """Trajectories of samples `indices` (B,): (B, T, S, S) float32."""
        ic, n = self.initial_condition, self.solver_resolution
        w0 = sample_vorticity(ic.seed, indices, n=n, alpha=ic.alpha, tau=ic.tau, sigma=ic.sigma)
        out = solve(
            w0,
            values["nu"],
            fno_forcing(n, self.forcing),
            frames=self.time.frames,
            interval=self.time.t_end / (self.time.frames - 1),
            cfl=self.solver.cfl,
            resolution=self.resolution,
            downsampling=self.solver.downsample,
        )
        return np.asarray(out, dtype=np.float32)

    def write(self, target: Path, values: dict[str, float], advance: Callable[[int], None]) -> None:
        """Solve the viscosity `values["nu"]` into `target` atomically, in PDEBench's groups.

        Groups `0000`, `0001`, ... hold `data` (T, S, S, 1) float32 and `grid/x`, `grid/y`
        (the nodes i / S) and `grid/t` (T,); file attributes `nu`, `boundary`, `pde`,
        `forcing` and `generator` (the settings). `advance(k)` is told of every k samples.

        Raises:
            RecipeError: a sample whose trajectory has NaN/Inf; nothing is written then.
        """
        size = self.resolution
        times = np.linspace(0.0, self.time.t_end, self.time.frames)
        with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
            f.attrs.update(values)
            f.attrs.update(boundary="periodic", pde=self.pde)
            f.attrs["forcing"] = f"{self.forcing} (sin(2 pi (x + y)) + cos(2 pi (x + y)))"
            blocks = solved_chunks(
                self.solve,
                values,
                samples=self.samples,
                chunk=self.chunk,
                target=target,
                pde=self.pde,
                remedy="a finer solver.resolution",
            )
            grid = {"x": nodes(size).astype(np.float32)}
            grid.update(y=grid["x"], t=times.astype(np.float32))
            fields = ((first, block[..., None]) for first, block in blocks)  # one channel
            write_sample_groups(f, fields, grid, advance)
            f.attrs["generator"] = self.file_settings(values)
