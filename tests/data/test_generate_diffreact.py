"""The 2D diffusion-reaction generator against a manufactured solution, a refined grid, exact
invariants, an independent ODE solver and its files.

Errors are the largest pointwise difference over the largest |value| of the reference;
orders are `log2(e(dx) / e(dx / 2))`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
from scipy.integrate import solve_ivp

from surrogates.data import open_dataset
from surrogates.data.generate import diffusion_reaction as dr
from surrogates.data.generate.generator import run_recipe
from surrogates.data.generate.recipe import load_recipe
from surrogates.errors import RecipeError

PDEBENCH = (1e-3, 5e-3, 5e-3)  # Du, Dv, k


def relative_error(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(found) - exact)) / np.max(np.abs(exact)))


def observed_orders(errors: list[float]) -> np.ndarray:
    """Orders between successive halvings of dx."""
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


def block_average(field: np.ndarray, factor: int) -> np.ndarray:
    """Means over `factor x factor` blocks of the last two axes (a coarser grid's cells)."""
    *lead, n, m = field.shape
    blocks = field.reshape(*lead, n // factor, factor, m // factor, factor)
    return blocks.mean(axis=(-3, -1))


# Manufactured solution: cosines whose x- and y-derivatives vanish at +-1 (no flux), decaying
# at different rates so that the reaction couples non-trivially.
#   u = exp(-t) cos(pi x) cos(2 pi y),  v = exp(-t / 2) cos(2 pi x) cos(pi y)
U_RATE, V_RATE = 1.0, 0.5
U_WAVES = np.pi**2 * (1 + 4)  # -lap u / u
V_WAVES = np.pi**2 * (4 + 1)


def exact_state(t: float | jax.Array, x, y, xp=np) -> tuple:
    """The manufactured (u, v) at time t on points x, y (broadcasting)."""
    u = xp.exp(-U_RATE * t) * xp.cos(np.pi * x) * xp.cos(2 * np.pi * y)
    v = xp.exp(-V_RATE * t) * xp.cos(2 * np.pi * x) * xp.cos(np.pi * y)
    return u, v


class ManufacturedSource:
    """`S = d/dt (u, v) - D lap (u, v) - R(u, v)` of the exact solution at the cell centres of
    an n x n grid, so that the forced PDE has exactly that solution.
    """

    def __init__(self, n: int, coefficients: tuple[float, float, float]):
        centres = dr.cell_centres(n)
        self.x, self.y = (
            np.asarray(a, np.float32) for a in np.meshgrid(centres, centres, indexing="ij")
        )
        self.coefficients = coefficients

    def __call__(self, t: jax.Array, state: jax.Array) -> jax.Array:
        du, dv, k = self.coefficients
        u, v = exact_state(t, self.x, self.y, xp=jnp)
        source_u = -U_RATE * u + du * U_WAVES * u - (u - u**3 - k - v)
        source_v = -V_RATE * v + dv * V_WAVES * v - (u - v)
        return jnp.stack([source_u, source_v])


@pytest.fixture(scope="module")
def manufactured_errors() -> list[float]:
    errors = []
    for n in (16, 32, 64):
        x, y = np.meshgrid(dr.cell_centres(n), dr.cell_centres(n), indexing="ij")
        state0 = np.stack(exact_state(0.0, x, y)).astype(np.float32)[None]
        source = ManufacturedSource(n, PDEBENCH)
        out = np.asarray(
            dr.solve(state0, PDEBENCH, frames=3, interval=0.5, steps=100, source=source)
        )
        exact = np.stack([np.stack(exact_state(t, x, y), axis=-1) for t in (0.0, 0.5, 1.0)])
        errors.append(relative_error(out[0], exact))
    return errors


def test_manufactured_solution_converges_at_second_order(manufactured_errors: list[float]):
    orders = observed_orders(manufactured_errors)
    print("manufactured errors", manufactured_errors, "orders", orders)
    # Far above float32 rounding, so the orders measure the Laplacian's truncation error.
    assert manufactured_errors[-1] > 1e-5
    assert np.all((orders > 1.9) & (orders < 2.1)), (manufactured_errors, orders)


def test_laplacian_has_the_cosine_eigenvalues_of_mirrored_ghosts():
    # With a mirrored ghost cell the stencil's eigenvectors are the cosine-transform (DCT-II)
    # modes cos(pi a (i + 1/2) / N), eigenvalue -(4 / dx^2) (sin^2(pi a / 2N) + sin^2(pi b / 2N)).
    n = 12
    dx = dr.cell_size(n)
    i = np.arange(n) + 0.5
    for a, b in [(0, 0), (1, 0), (3, 5), (11, 11)]:
        mode = np.cos(np.pi * a * i / n)[:, None] * np.cos(np.pi * b * i / n)[None, :]
        eigenvalue = (
            -4 / dx**2 * (np.sin(np.pi * a / (2 * n)) ** 2 + np.sin(np.pi * b / (2 * n)) ** 2)
        )
        found = np.asarray(dr.laplacian(jnp.asarray(mode, jnp.float32), dx))
        np.testing.assert_allclose(found, eigenvalue * mode, atol=2e-5 * max(1.0, abs(eigenvalue)))


def smooth_noise(n: int, modes: int, seed: int = 3) -> np.ndarray:
    """N(0, 1) cell noise for (u, v) kept to its lowest `modes` x `modes` cosine modes, which
    satisfy the no-flux condition and are resolved on coarse grids: (2, n, n) float64.
    """
    noise = np.asarray(dr.sample_noise(seed, [0], n=n)[0], np.float64)
    coefficients = scipy.fft.dctn(noise, axes=(-2, -1), norm="ortho")
    coefficients[:, modes:, :] = 0
    coefficients[:, :, modes:] = 0
    field = scipy.fft.idctn(coefficients, axes=(-2, -1), norm="ortho")
    return field / np.max(np.abs(field))


@pytest.fixture(scope="module")
def refinement_errors() -> list[float]:
    fine_n = 128
    state0 = smooth_noise(fine_n, modes=8)
    solutions = {}
    for factor in (4, 2, 1):
        coarse0 = block_average(state0, factor).astype(np.float32)[None]
        out = dr.solve(coarse0, PDEBENCH, frames=3, interval=0.5, steps=100)
        solutions[fine_n // factor] = np.asarray(out[0], np.float64)
    reference = np.moveaxis(solutions[fine_n], -1, -3)  # (T, 2, N, N) for block averaging
    errors = []
    for n in (32, 64):
        averaged = np.moveaxis(block_average(reference, fine_n // n), -3, -1)
        errors.append(relative_error(solutions[n][1:], averaged[1:]))
    return errors


def test_refined_grids_converge_to_the_finest(refinement_errors: list[float]):
    # Against the 128 grid: errors ~ C (dx^2 - dx_128^2), i.e. 15 : 3 for 32 : 64, an
    # observed order of log2(5) = 2.3 for a second-order scheme.
    (order,) = observed_orders(refinement_errors)
    print("refinement errors (32, 64 vs 128)", refinement_errors, "order", order)
    assert refinement_errors[0] > refinement_errors[1] > 1e-6
    assert 2.0 < order < 2.6, (refinement_errors, order)


def test_pure_diffusion_keeps_the_mean_and_smooths():
    n = 32
    state0 = dr.sample_noise(5, [0, 1], n=n)
    out = np.asarray(
        dr.solve(state0, PDEBENCH, frames=11, interval=0.5, steps=100, reacting=False), np.float64
    )
    means = out.mean(axis=(2, 3))  # (B, T, 2)
    np.testing.assert_allclose(means, np.broadcast_to(means[:, :1], means.shape), rtol=0, atol=2e-6)
    # Not vacuous: the noise's variance fell, v's (faster diffusion) more than u's.
    variance = out.var(axis=(2, 3))
    assert np.all(variance[:, -1] < 0.5 * variance[:, 0])
    assert np.all(variance[:, -1, 1] < variance[:, -1, 0])


def test_uniform_states_follow_the_reaction_ode():
    # Spatially uniform: the Laplacian vanishes and every cell follows the FitzHugh-Nagumo
    # ODE, solved here by scipy's DOP853 at tolerance 1e-12.
    k = PDEBENCH[2]
    starts = np.array([[0.8, -0.3], [-1.7, 0.4], [2.5, 2.0]])
    times = np.linspace(0.0, 5.0, 11)

    def kinetics(_, y: np.ndarray) -> list[float]:
        u, v = y
        return [u - u**3 - k - v, u - v]

    state0 = np.broadcast_to(starts[:, :, None, None], (3, 2, 8, 8)).astype(np.float32)
    out = np.asarray(dr.solve(state0, PDEBENCH, frames=11, interval=0.5, steps=100))
    for start, found in zip(starts, out, strict=True):
        exact = solve_ivp(
            kinetics, (0, 5), start, t_eval=times, method="DOP853", rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(
            found, np.broadcast_to(exact.y.T[:, None, None, :], found.shape), atol=2e-6
        )


RECIPE = """\
pde: diffreact2d
samples: 3
chunk: 2
resolution: 16
time: {t_end: 0.2, frames: 3}
initial_condition: {seed: 7}
solver: {dt: 0.01}
"""


def write_recipe(folder: Path, text: str = RECIPE) -> Path:
    path = folder / "diffreact.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("diffreact")
    recipe = write_recipe(folder)
    return recipe, run_recipe(recipe, out=folder / "out", progress=False)


def test_recipe_writes_pdebench_group_files(generated: tuple[Path, list[Path]]):
    recipe, files = generated
    assert [f.name for f in files] == ["2D_diff-react_NA_NA.h5"]
    ds = open_dataset(files)
    assert ds.layout == "pdebench-groups" and ds.fields.shape == (3, 3, 16, 16, 2)
    assert ds.field_names == ("u", "v") and ds.boundary == ("neumann", "neumann")
    centres = -1 + (np.arange(16) + 0.5) / 8
    np.testing.assert_allclose(ds.coords["x"], centres, atol=1e-7)
    np.testing.assert_allclose(ds.coords["y"], centres, atol=1e-7)
    np.testing.assert_allclose(ds.coords["t"], [0.0, 0.1, 0.2], atol=1e-7)
    fields = np.asarray(ds.fields)
    # Frame 0 is sample i's N(0, 1) draw from fold_in(key(seed), i), channels last.
    for i in range(3):
        noise = jax.random.normal(jax.random.fold_in(jax.random.key(7), i), (2, 16, 16))
        np.testing.assert_array_equal(fields[i, 0], np.moveaxis(np.asarray(noise), 0, -1))
    assert np.all(np.abs(fields[0] - fields[1]).max(axis=(1, 2, 3)) > 0.5)
    # Solved, not copied: the noise is smoothed (v diffuses faster than u).
    assert fields[:, -1].std() < 0.8 * fields[:, 0].std()
    # Chunking does not change a sample: sample 2, solved with sample 3 (the padded last
    # chunk) for the file, again beside sample 0.
    direct = load_recipe(recipe).solve({"Du": 1e-3, "Dv": 5e-3, "k": 5e-3}, np.array([2, 0]))
    np.testing.assert_allclose(fields[[2, 0]], direct, rtol=0, atol=1e-6)
    with h5py.File(files[0]) as f:
        assert sorted(f) == ["0000", "0001", "0002"]
        assert f["0001/data"].dtype == np.float32
        assert f.attrs["pde"] == "diffreact2d" and f.attrs["boundary"] == "neumann"
        assert (f.attrs["Du"], f.attrs["Dv"], f.attrs["k"]) == PDEBENCH
        settings = json.loads(f.attrs["generator"])
        assert settings["parameters"] == {"Du": 1e-3, "Dv": 5e-3, "k": 5e-3}
        assert settings["solver"] == {"dt": 0.01} and settings["resolution"] == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("resolution: 16", "resolution: 256"), r"solver.dt: 8 D dt / dx\^2 = 6.55 exceeds"),
        (("{dt: 0.01}", "{dtt: 0.01}"), "solver.dtt: unknown key"),
        (
            ("samples: 3\n", "samples: 3\nparameters: {Du: [1.0e-3, 2.0e-3]}\n"),
            r"file_name: needs \{Du\}",
        ),
        (("samples: 3\n", "samples: 3\nparameters: {Dv: [-1.0]}\n"), "parameters.Dv.0: "),
    ],
)
def test_recipe_errors_name_the_key(tmp_path: Path, change: tuple[str, str], message: str):
    text = RECIPE.replace(*change)
    assert text != RECIPE
    with pytest.raises(RecipeError, match=message):
        load_recipe(write_recipe(tmp_path, text))


def test_shipped_recipe_is_pdebench_s_setting():
    recipe = load_recipe(Path(__file__).parents[2] / "datasets" / "diffreact2d.yaml")
    assert isinstance(recipe, dr.DiffusionReactionRecipe)
    assert recipe.sweep() == [{"Du": 1e-3, "Dv": 5e-3, "k": 5e-3}]
    assert recipe.file_name == "2D_diff-react_NA_NA.h5" and recipe.resolution == 128
    assert (recipe.time.t_end, recipe.time.frames) == (5.0, 101)
    assert recipe.model_copy(update={"resolution": 64}).resolution == 64
