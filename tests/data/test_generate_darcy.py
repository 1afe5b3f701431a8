"""The Darcy generator: solver accuracy and checks, coefficients, recipes and the files written."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from surrogates.data import open_dataset
from surrogates.data.generate import darcy
from surrogates.data.generate.darcy import cell_centres, darcy_matrix, solve_darcy
from surrogates.data.generate.generator import run_recipe
from surrogates.data.generate.recipe import load_recipe
from surrogates.errors import RecipeError

RECIPES = Path(__file__).parents[2] / "datasets"

SMALL = """\
pde: darcy
parameters: {beta: [1.0, 10.0]}
file_name: "darcy_beta{beta}.hdf5"
samples: 6
resolution: 16
chunk: 4
"""


def write_recipe(folder: Path, text: str = SMALL, **extra: str) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(textwrap.dedent(text) + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def manufactured_error(s: int) -> float:
    """Max error at the cell centres for `u* = sin(pi x) sin(pi y)` with a smooth, varying `a`."""
    x, y = np.meshgrid(cell_centres(s), cell_centres(s), indexing="ij")
    pi = np.pi
    a = 1 + 0.5 * np.sin(2 * pi * x) * np.cos(2 * pi * y)
    a_x = pi * np.cos(2 * pi * x) * np.cos(2 * pi * y)
    a_y = -pi * np.sin(2 * pi * x) * np.sin(2 * pi * y)
    u = np.sin(pi * x) * np.sin(pi * y)
    u_x = pi * np.cos(pi * x) * np.sin(pi * y)
    u_y = pi * np.sin(pi * x) * np.cos(pi * y)
    # f = -div(a grad u) = -a_x u_x - a_y u_y - a (u_xx + u_yy), with u_xx + u_yy = -2 pi^2 u.
    f = -a_x * u_x - a_y * u_y + 2 * pi**2 * a * u
    return float(np.abs(solve_darcy(a, f) - u).max())


def test_manufactured_solution_converges_at_second_order():
    errors = np.array([manufactured_error(s) for s in (16, 32, 64)])
    orders = np.log2(errors[:-1] / errors[1:])
    assert (orders >= 1.8).all(), (errors, orders)
    assert errors[-1] < 1e-3


def poisson_series(x: np.ndarray, terms: int = 401) -> np.ndarray:
    """`-Laplacian u = 1` on the unit square, `u = 0` on the walls, by its sine series on x * x."""
    m = np.arange(1, terms + 1, 2)
    sines = np.sin(np.pi * np.outer(x, m))
    weights = 16 / (np.pi**4 * m[:, None] * m[None, :] * (m[:, None] ** 2 + m[None, :] ** 2))
    return sines @ weights @ sines.T


def test_constant_coefficient_matches_the_series_solution():
    errors = []
    for s in (32, 64):
        exact = poisson_series(cell_centres(s))
        errors.append(np.abs(solve_darcy(np.ones((s, s)), 1.0) - exact).max())
    assert errors[1] < 5e-5 and errors[1] < errors[0] / 3.5
    assert poisson_series(np.array([0.5]))[0, 0] == pytest.approx(0.07367, abs=1e-5)


def test_matrix_is_symmetric_and_solutions_positive(tmp_path: Path):
    recipe = load_recipe(write_recipe(tmp_path))
    a = recipe.sample_coefficient(0)
    matrix = darcy_matrix(a)
    assert matrix.shape == (256, 256)
    assert abs(matrix - matrix.T).max() == 0.0
    u = solve_darcy(a, 2.5)
    assert (u > 0).all()  # maximum principle: a > 0 and beta > 0
    residual = darcy_matrix(a) @ u.ravel() - 2.5
    assert np.linalg.norm(residual) < 1e-8 * np.linalg.norm(np.full(256, 2.5))


def test_a_missed_residual_tolerance_names_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    class Inexact:
        def __init__(self, matrix, **options):
            self.size = matrix.shape[0]

        def solve(self, rhs):
            return np.full(self.size, 0.01)

    monkeypatch.setattr(darcy, "splu", Inexact)
    with pytest.raises(RecipeError, match="relative residual"):
        solve_darcy(np.ones((8, 8)))
    recipe = write_recipe(tmp_path)
    with pytest.raises(RecipeError, match=r"darcy_beta1\.0\.hdf5: sample 0 with .*residual"):
        run_recipe(recipe, out=tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_solver_input_is_refused():
    with pytest.raises(ValueError, match="positive"):
        solve_darcy(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="square"):
        solve_darcy(np.ones((4, 5)))


def test_files_open_as_pdebench_darcy(tmp_path: Path):
    recipe = write_recipe(tmp_path)
    paths = run_recipe(recipe, out=tmp_path / "out", progress=False)
    assert [p.name for p in paths] == ["darcy_beta1.0.hdf5", "darcy_beta10.0.hdf5"]
    one, ten = (open_dataset(p) for p in paths)
    assert one.layout == "pdebench-darcy" and one.fields.shape == (6, 1, 16, 16, 1)
    assert one.boundary == ("dirichlet", "dirichlet")
    np.testing.assert_array_equal(one.params["beta"], 1.0)
    np.testing.assert_array_equal(ten.params["beta"], 10.0)
    np.testing.assert_allclose(one.coords["x"], (np.arange(16) + 0.5) / 16, rtol=1e-6)
    np.testing.assert_allclose(one.coords["y"], one.coords["x"])
    a = np.asarray(one.static[:])
    assert a.shape == (6, 16, 16, 1)
    assert set(np.unique(a)) == {np.float32(0.1), np.float32(1.0)}
    np.testing.assert_array_equal(a, ten.static[:])  # every beta shares the coefficients
    loaded = load_recipe(recipe)
    for i in range(6):
        np.testing.assert_array_equal(a[i, ..., 0], loaded.sample_coefficient(i).astype(np.float32))
    u_one, u_ten = np.asarray(one.fields[:]), np.asarray(ten.fields[:])
    np.testing.assert_allclose(u_ten, 10 * u_one, rtol=1e-5)
    direct = solve_darcy(loaded.sample_coefficient(3), 1.0)
    np.testing.assert_allclose(u_one[3, 0, ..., 0], direct, rtol=1e-6)
    with h5py.File(paths[0]) as f:
        assert f["tensor"].dtype == np.float32 and f["tensor"].chunks == (1, 1, 16, 16)
        assert f["nu"].shape == (6, 16, 16) and f["nu"].dtype == np.float32
        assert f.attrs["pde"] == "darcy" and f.attrs["boundary"] == "dirichlet"
        settings = json.loads(f.attrs["generator"])
        assert settings["parameters"] == {"beta": 1.0} and settings["resolution"] == 16
        assert settings["coefficient"] == {"kind": "gaussians", "count": 5, "high": 1.0, "low": 0.1}


def test_samples_do_not_depend_on_chunking_or_count(tmp_path: Path):
    recipe = write_recipe(tmp_path)
    (many, _) = run_recipe(recipe, out=tmp_path / "a", progress=False)
    write_recipe(tmp_path, SMALL.replace("chunk: 4", "chunk: 1"))
    (few, _) = run_recipe(recipe, samples=3, out=tmp_path / "b", progress=False)
    with h5py.File(many) as a, h5py.File(few) as b:
        np.testing.assert_array_equal(a["tensor"][:3], b["tensor"][:])
        np.testing.assert_array_equal(a["nu"][:3], b["nu"][:])
        assert not np.array_equal(a["nu"][0], a["nu"][1])


def test_existing_files_are_kept_refused_or_forced(tmp_path: Path):
    recipe = write_recipe(tmp_path, SMALL.replace("[1.0, 10.0]", "[1.0]"))
    out = tmp_path / "out"
    (path,) = run_recipe(recipe, out=out, progress=False)
    stamp = path.stat().st_mtime_ns
    write_recipe(tmp_path, SMALL.replace("[1.0, 10.0]", "[1.0]").replace("chunk: 4", "chunk: 2"))
    run_recipe(recipe, out=out, progress=False)
    assert path.stat().st_mtime_ns == stamp  # chunking does not change the contents: kept
    write_recipe(tmp_path, SMALL.replace("[1.0, 10.0]", "[1.0]"), seed="7")
    with pytest.raises(RecipeError, match=r"darcy_beta1\.0\.hdf5: exists with other settings"):
        run_recipe(recipe, out=out, progress=False)
    run_recipe(recipe, out=out, force=True, progress=False)
    with h5py.File(path) as f:
        assert json.loads(f.attrs["generator"])["seed"] == 7


def test_grf_coefficient_takes_the_fno_values(tmp_path: Path):
    recipe = load_recipe(write_recipe(tmp_path, coefficient="{kind: grf}"))
    a = recipe.sample_coefficient(0)
    assert set(np.unique(a)) == {3.0, 12.0}
    np.testing.assert_array_equal(a, recipe.sample_coefficient(0))
    assert not np.array_equal(a, recipe.sample_coefficient(1))
    assert json.loads(recipe.file_settings({"beta": 1.0}))["coefficient"]["tau"] == 3.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("sampels: 3", r"sampels: unknown key \(did you mean 'samples'\?\)"),
        ("resolutoin: 32", r"resolutoin: unknown key \(did you mean 'resolution'\?\)"),
        ("coefficient: {knd: grf}", r"coefficient\.knd: unknown key \(did you mean 'kind'\?\)"),
        ("coefficient: {kind: grf, count: 3}", r"coefficient\.count: does not apply to kind grf"),
        ("coefficient: {kind: lognormal}", r"coefficient\.kind: Input should be 'gaussians'"),
        ("resolution: 2", r"resolution: Input should be greater than or equal to 4"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path: Path, extra: str, message: str):
    path = write_recipe(tmp_path)
    path.write_text(path.read_text() + extra + "\n")
    with pytest.raises(RecipeError, match=rf"recipe\.yaml: {message}"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("parameters", "file_name", "message"),
    [
        ("{Beta: [1.0]}", "a.h5", r"parameters\.Beta: unknown key \(did you mean 'beta'\?\)"),
        ("{nu: [1.0]}", "a.h5", r"parameters\.nu: unknown key"),
        ("{beta: []}", "a.h5", r"parameters\.beta: List should have at least 1 item"),
        ("{beta: [1.0, 2.0]}", "a.h5", r"file_name: needs \{beta\}, which takes several values"),
        ("{beta: [1.0]}", "a{rho}.h5", r"file_name: unknown placeholder \{rho\}"),
    ],
)
def test_recipe_parameter_errors(tmp_path: Path, parameters: str, file_name: str, message: str):
    text = f"pde: darcy\nparameters: {parameters}\nfile_name: '{file_name}'\n"
    with pytest.raises(RecipeError, match=message):
        load_recipe(write_recipe(tmp_path, text))


def test_shipped_recipe_is_pdebench_sweep():
    recipe = load_recipe(RECIPES / "darcy2d.yaml")
    assert [v["beta"] for v in recipe.sweep()] == [0.01, 0.1, 1.0, 10.0, 100.0]
    assert recipe.resolution == 128 and recipe.samples == 1000 and recipe.seed == 2022
    names = [recipe.file_name.format(**v) for v in recipe.sweep()]
    assert names[0] == "2D_DarcyFlow_beta0.01_Train.hdf5"
    assert names[-1] == "2D_DarcyFlow_beta100.0_Train.hdf5"
