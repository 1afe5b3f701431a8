"""The 2D vorticity Navier-Stokes generator against exact solutions, refinements and its files.

Errors are relative to the largest |w| of the reference; orders are `log2(e(dt) / e(dt / 2))`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import h5py
import jax.numpy as jnp
import numpy as np
import pytest

from surrogates.data import open_dataset
from surrogates.data.generate import navier_stokes as ns
from surrogates.data.generate.generator import run_recipe
from surrogates.data.generate.recipe import load_recipe
from surrogates.errors import RecipeError


def relative_error(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(found) - exact)) / np.max(np.abs(exact)))


def mesh(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(ns.nodes(n), ns.nodes(n), indexing="ij")


def shell_field(n: int, modes: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """A random combination of the Fourier modes `modes` (one |k| shell): (n, n) float32."""
    rng = np.random.default_rng(seed)
    x, y = mesh(n)
    field = np.zeros((n, n))
    for a, b in modes:
        phase = 2 * np.pi * (a * x + b * y)
        field += rng.normal() * np.cos(phase) + rng.normal() * np.sin(phase)
    return field.astype(np.float32)


def enstrophy_and_energy(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of w^2 / 2 and of |u|^2 / 2 per frame, from fields (..., n, n)."""
    n = w.shape[-1]
    w_hat = np.fft.rfft2(w) / n**2
    weight = np.ones(w_hat.shape[-1])
    weight[1:-1] = 2  # the rfft half spectrum counts the other half twice
    k2 = ns.spectral_grid(n)["k2"]
    inverse = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    power = np.abs(w_hat) ** 2 * weight
    return 0.5 * power.sum((-2, -1)), 0.5 * (power * inverse).sum((-2, -1))


def test_advection_is_u_dot_grad_w():
    # A field on modes |kx|, |ky| <= 3 of a 32 grid: the products stay below the 2/3 cut,
    # so the dealiased term is exact. Reference: numpy derivatives, u = psi_y, v = -psi_x.
    n = 32
    w = shell_field(n, [(1, 0), (0, 1)]) + shell_field(n, [(2, 1), (1, -2), (3, 3)], seed=1)
    k = 2 * np.pi * np.fft.fftfreq(n, 1 / n)
    kx, ky = k[:, None], k[None, :]
    w_hat = np.fft.fft2(w)
    psi_hat = w_hat / np.where(kx**2 + ky**2 > 0, kx**2 + ky**2, np.inf)

    def derivative(f_hat: np.ndarray, factor: np.ndarray) -> np.ndarray:
        return np.fft.ifft2(1j * factor * f_hat).real

    u, v = derivative(psi_hat, ky), -derivative(psi_hat, kx)
    exact = u * derivative(w_hat, kx) + v * derivative(w_hat, ky)
    transport, speed = ns.advection(jnp.fft.rfft2(jnp.asarray(w)))
    assert relative_error(-np.fft.irfft2(np.asarray(transport), s=(n, n)), exact) < 1e-5
    assert float(speed) == pytest.approx(np.max(np.abs(u) + np.abs(v)), rel=1e-5)


@pytest.mark.parametrize(
    "modes",
    [[(2, 0), (0, 2)], [(3, 4), (4, 3), (5, 0), (0, 5), (4, -3), (3, -4)]],
    ids=["taylor-green", "shell-25"],
)
def test_single_shell_flows_decay_exactly(modes: list[tuple[int, int]]):
    # On one |k| shell psi is proportional to w, so u . grad w = 0 and w decays as
    # exp(-nu |k|^2 t); the first case is Taylor-Green's 2k cos(kx) cos(ky) and sines.
    n, nu, interval = 32, 0.01, 0.2
    w0 = 5 * shell_field(n, modes)
    k2 = (2 * np.pi) ** 2 * (modes[0][0] ** 2 + modes[0][1] ** 2)
    out = ns.solve(jnp.asarray(w0)[None], nu, np.zeros((n, n), np.float32), frames=6, interval=0.2)
    times = interval * np.arange(6)
    exact = w0 * np.exp(-nu * k2 * times)[:, None, None]
    assert relative_error(out[0], exact) < 1e-5


def test_forced_single_shell_grows_to_the_linear_response():
    # FNO's forcing is one shell |k|^2 = 2 (2 pi)^2; from rest the nonlinear term stays zero
    # and w = f (1 - exp(-nu |k|^2 t)) / (nu |k|^2), towards a steady Kolmogorov-type flow.
    n, nu = 32, 0.01
    forcing = ns.fno_forcing(n)
    rate = nu * 2 * (2 * np.pi) ** 2
    out = ns.solve(jnp.zeros((1, n, n)), nu, forcing, frames=6, interval=1.0)
    times = np.arange(6.0)
    exact = forcing * (-np.expm1(-rate * times) / rate)[:, None, None]
    assert relative_error(out[0], exact) < 1e-5


def test_etdrk4_converges_at_fourth_order_in_time():
    # Three shells up to |k| = 8.5 of the 10 the 2/3 rule keeps, so the time error is well
    # above float32 rounding (which grows with the number of steps: the reference is short).
    n, nu, duration = 32, 1e-3, 1.0
    shells = [[(1, 0), (0, 1)], [(5, 4), (4, -5)], [(8, 3), (3, -8)]]
    w0 = sum(shell_field(n, modes, seed=i) for i, modes in enumerate(shells))
    w_hat, forcing_hat = jnp.fft.rfft2(jnp.asarray(w0)), jnp.fft.rfft2(ns.fno_forcing(n))

    def run(steps: int) -> tuple[np.ndarray, float]:
        out, courant = ns.advance(w_hat, nu, forcing_hat, duration, steps)
        return np.fft.irfft2(np.asarray(out), s=(n, n)), float(courant)

    reference, _ = run(128)
    steps = np.array([8, 12, 16, 24])
    errors = []
    for count in steps:
        w, courant = run(int(count))
        assert courant < ns.STABLE_COURANT
        errors.append(relative_error(w, reference))
    errors = np.array(errors)
    orders = np.log(errors[:-1] / errors[1:]) / np.log(steps[1:] / steps[:-1])
    assert errors[0] > 1e-4 and np.all((orders > 3.8) & (orders < 4.6)), (errors, orders)


def test_grid_refinement_converges_spectrally():
    # The same Gaussian-random-field sample at 16, 32 and 64 points (its modes do not depend
    # on the grid), compared at the 16 common nodes.
    nu = 1e-2
    saved = {}
    for n in (16, 32, 64):
        w0 = 4 * ns.sample_vorticity(0, [0], n=n)
        out = ns.solve(w0, nu, ns.fno_forcing(n), frames=3, interval=0.5, resolution=16)
        saved[n] = np.asarray(out)[0, 1:]
    coarse, fine = (relative_error(saved[n], saved[64]) for n in (16, 32))
    assert coarse > 1e-5 and fine < coarse / 20, (coarse, fine)


def test_unforced_flow_loses_energy_and_enstrophy_and_keeps_zero_mean():
    n = 32
    w0 = 10 * ns.sample_vorticity(3, [0, 1], n=n)
    out = np.asarray(
        ns.solve(w0, 1e-3, np.zeros((n, n), np.float32), frames=11, interval=0.5)
    ).astype(np.float64)
    enstrophy, energy = enstrophy_and_energy(out)
    assert np.all(np.diff(enstrophy, axis=1) < 0) and np.all(np.diff(energy, axis=1) < 0)
    # d log Z / dt = -2 nu P / Z <= -2 nu Z / E = d log E / dt, as Z^2 <= E P: enstrophy
    # goes faster, as it cascades to small scales and energy to large ones.
    assert np.all(np.diff(np.log(enstrophy)) < np.diff(np.log(energy)))
    assert np.max(np.abs(out.mean(axis=(-2, -1)))) < 1e-6 * np.max(np.abs(out))


def test_initial_vorticity_has_fno_spectrum_and_zero_mean():
    n, count = 32, 512
    w = np.asarray(ns.sample_vorticity(7, np.arange(count), n=n), np.float64)
    assert np.max(np.abs(w.mean(axis=(1, 2)))) < 1e-6 * np.max(np.abs(w))
    power = np.mean(np.abs(np.fft.fft2(w) / n**2) ** 2, axis=0)
    k = np.fft.fftfreq(n, 1 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    expected = 2 * 7.0**3 * (4 * np.pi**2 * k2 + 49) ** -2.5
    shell = np.maximum(np.abs(k)[:, None], np.abs(k)[None, :]).astype(int)
    for s in range(1, n // 2):
        ratio = power[shell == s].mean() / expected[shell == s].mean()
        # 512 samples and 8 s modes per shell: a few percent of sampling error.
        assert abs(ratio - 1) < 0.1, (s, ratio)


def test_samples_do_not_depend_on_chunk_or_grid():
    n = 32
    many = ns.sample_vorticity(0, np.arange(6), n=n)
    few = ns.sample_vorticity(0, np.array([4, 5]), n=n)
    np.testing.assert_array_equal(many[4:], few)
    fine = np.fft.fft2(np.asarray(ns.sample_vorticity(0, [5], n=2 * n)[0])) / (2 * n) ** 2
    coarse = np.fft.fft2(np.asarray(few[1])) / n**2
    low = np.r_[0 : n // 2, -n // 2 + 1 : 0]  # the modes both grids hold, Nyquist excepted
    np.testing.assert_allclose(coarse[np.ix_(low, low)], fine[np.ix_(low, low)], atol=1e-7)
    # Trajectories too: each sample chooses its own time steps.
    forcing = ns.fno_forcing(n)
    together = ns.solve(many[:3], 1e-3, forcing, frames=3, interval=1.0)
    alone = ns.solve(many[2:3], 1e-3, forcing, frames=3, interval=1.0)
    np.testing.assert_allclose(together[2:3], alone, rtol=0, atol=1e-6)


def test_spectral_and_strided_downsampling_agree_on_resolved_fields():
    fine = jnp.fft.rfft2(shell_field(64, [(3, 1), (-2, 5), (7, 0)]))
    strided = ns.downsample(fine, 16, "stride")
    spectral = ns.downsample(fine, 16, "spectral")
    np.testing.assert_allclose(spectral, strided, atol=1e-5)
    # Above the coarse Nyquist frequency the strided one aliases, the spectral one filters.
    aliased = jnp.fft.rfft2(shell_field(64, [(9, 0)]))
    assert np.max(np.abs(ns.downsample(aliased, 16, "spectral"))) < 1e-5


RECIPE = """\
pde: ns2d_vorticity
parameters: {{nu: [1.0e-3, 1.0e-2]}}
file_name: "ns_nu{{nu}}.h5"
samples: 3
chunk: 2
resolution: 16
time: {{t_end: 2.0, frames: 3}}
solver: {{resolution: 32, cfl: {cfl}}}
"""


def write_recipe(folder: Path, cfl: float = 0.5, text: str | None = None) -> Path:
    path = folder / "ns.yaml"
    path.write_text(textwrap.dedent(text or RECIPE.format(cfl=cfl)))
    return path


def test_recipe_writes_pdebench_group_files(tmp_path: Path):
    path = write_recipe(tmp_path)
    out = tmp_path / "out"
    files = run_recipe(path, out=out, progress=False)
    assert [f.name for f in files] == ["ns_nu0.001.h5", "ns_nu0.01.h5"]
    ds = open_dataset(files)
    assert ds.layout == "pdebench-groups" and ds.fields.shape == (6, 3, 16, 16, 1)
    assert ds.boundary == ("periodic", "periodic")
    np.testing.assert_array_equal(ds.params["nu"], [1e-3] * 3 + [1e-2] * 3)
    np.testing.assert_allclose(ds.coords["t"], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(ds.coords["x"], np.arange(16) / 16)
    np.testing.assert_allclose(ds.coords["y"], np.arange(16) / 16)
    recipe = load_recipe(path)
    direct = recipe.solve({"nu": 1e-2}, np.arange(3))
    np.testing.assert_array_equal(ds.fields[3:6][..., 0], direct)
    with h5py.File(files[0]) as f:
        assert sorted(f) == ["0000", "0001", "0002"]
        assert f["0001/data"].shape == (3, 16, 16, 1) and f["0001/data"].dtype == np.float32
        assert f.attrs["pde"] == "ns2d_vorticity" and f.attrs["boundary"] == "periodic"
        settings = json.loads(f.attrs["generator"])
        assert settings["solver"] == {"resolution": 32, "cfl": 0.5, "downsample": "stride"}
        assert settings["parameters"] == {"nu": 1e-3}

    # Up to date: kept (also with another chunk size, which does not change the contents).
    stamp = files[0].stat().st_mtime_ns
    write_recipe(tmp_path, text=RECIPE.format(cfl=0.5).replace("chunk: 2", "chunk: 3"))
    run_recipe(path, out=out, progress=False)
    assert files[0].stat().st_mtime_ns == stamp
    # Other settings: refused, then replaced with force.
    write_recipe(tmp_path, cfl=0.25)
    with pytest.raises(RecipeError, match="exists with other settings"):
        run_recipe(path, out=out, progress=False)
    run_recipe(path, out=out, progress=False, force=True)
    with h5py.File(files[0]) as f:
        assert json.loads(f.attrs["generator"])["solver"]["cfl"] == 0.25


def test_diverged_sample_is_named_and_nothing_written(tmp_path: Path, monkeypatch):
    def broken(self, values, indices):
        block = np.zeros((len(indices), 3, 16, 16), np.float32)
        block[indices == 1] = np.nan
        return block

    monkeypatch.setattr(ns.NavierStokesRecipe, "solve", broken)
    with pytest.raises(RecipeError, match=r"diverged .* sample 1 "):
        run_recipe(write_recipe(tmp_path), out=tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("cfl: 0.5", "cfll: 0.5"), "solver.cfll: unknown key"),
        (("cfl: 0.5", "cfl: 2.0"), "solver.cfl: "),
        (("resolution: 32", "resolution: 40"), "solver.resolution: must be a multiple"),
        (("resolution: 16\n", "resolution: 15\n"), "resolution: must be even"),
        (("1.0e-3", "-1.0e-3"), "parameters.nu.0: "),
        (("ns_nu{nu}", "ns_Re{Re}"), r"file_name: unknown placeholder \{Re\}"),
        (("ns_nu{nu}", "ns"), r"file_name: needs \{nu\}"),
        (("samples: 3", "samples: 3\nseed: 1"), "seed: unknown key"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path: Path, change: tuple[str, str], message: str):
    text = RECIPE.format(cfl=0.5).replace(*change)
    assert text != RECIPE.format(cfl=0.5)
    with pytest.raises(RecipeError, match=message):
        load_recipe(write_recipe(tmp_path, text=text))


def test_shipped_recipe_is_valid():
    recipe = load_recipe(Path(__file__).parents[2] / "datasets" / "ns2d_vorticity.yaml")
    assert isinstance(recipe, ns.NavierStokesRecipe)
    assert [values["nu"] for values in recipe.sweep()] == [1e-3, 1e-4]
    assert recipe.resolution == 64
