"""`surrogates generate`: recipes, the files they write, atomic writes and recipe errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from surrogates.atomic import temporary_path
from surrogates.cli import main
from surrogates.data import open_dataset
from surrogates.data.generate import generator
from surrogates.data.generate.pdebench1d import PDEBench1DRecipe
from surrogates.data.generate.recipe import load_recipe
from surrogates.errors import RecipeError

RECIPES = Path(__file__).parents[2] / "datasets"

SMALL = """\
pde: {pde}
parameters: {parameters}
file_name: "{name}"
samples: 5
chunk: 2
grid: {{cells: 32, x_min: 0.0, x_max: 1.0}}
time: {{t_end: 0.2, frames: 5}}
"""


def write_recipe(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def small_recipe(folder: Path, pde: str = "burgers", **extra: str) -> Path:
    parameters, name = {
        "burgers": ("{Nu: [0.01, 0.1]}", "burgers_Nu{Nu}.hdf5"),
        "advection": ("{beta: [0.4]}", "advection_beta{beta}.hdf5"),
        "reaction_diffusion": ("{Nu: [0.5], rho: [1.0, 5.0]}", "rd_Nu{Nu}_Rho{rho}.hdf5"),
    }[pde]
    text = SMALL.format(pde=pde, parameters=parameters, name=name)
    text += "".join(f"{key}: {value}\n" for key, value in extra.items())
    return write_recipe(folder, text)


@pytest.mark.parametrize("pde", ["burgers", "advection", "reaction_diffusion"])
def test_generated_files_open_as_pdebench_tensor_files(tmp_path: Path, pde: str):
    recipe = load_recipe(small_recipe(tmp_path, pde))
    paths = generator.run_recipe(tmp_path / "recipe.yaml", out=tmp_path / "out", progress=False)
    assert [p.name for p in paths] == [recipe.file_name.format(**v) for v in recipe.sweep()]
    ds = open_dataset(paths)
    assert ds.layout == "pdebench-tensor" and ds.fields.shape == (5 * len(paths), 5, 32, 1)
    assert ds.boundary == ("periodic",)
    np.testing.assert_allclose(ds.coords["t"], [0.0, 0.05, 0.1, 0.15, 0.2], rtol=1e-6)
    np.testing.assert_allclose(ds.coords["x"], (np.arange(32) + 0.5) / 32, rtol=1e-6)
    for k, values in enumerate(recipe.sweep()):
        for name, value in values.items():
            np.testing.assert_array_equal(ds.params[name][5 * k : 5 * k + 5], value)
        # Contents are the solver's, in chunks of 2 (the last one padded, then cut).
        direct = [recipe.solve(values, np.arange(i, i + 2)) for i in (0, 2, 4)]
        expected = np.concatenate(direct)[:5]
        np.testing.assert_array_equal(ds.fields[5 * k : 5 * k + 5][..., 0], expected)
    with h5py.File(paths[0]) as f:
        assert f["t-coordinate"].shape == (6,)  # T + 1 times, as PDEBench writes them
        assert f.attrs["pde"] == pde
        settings = json.loads(f.attrs["generator"])
        assert settings["samples"] == 5 and settings["grid"]["cells"] == 32
        if pde == "burgers":
            assert f.attrs["viscosity"] == pytest.approx(f.attrs["Nu"] / np.pi)


def test_samples_do_not_depend_on_chunking_or_count(tmp_path: Path):
    small_recipe(tmp_path, "advection")
    many = generator.run_recipe(tmp_path / "recipe.yaml", out=tmp_path / "a", progress=False)
    few = generator.run_recipe(
        tmp_path / "recipe.yaml", samples=3, out=tmp_path / "b", progress=False
    )
    with h5py.File(many[0]) as a, h5py.File(few[0]) as b:
        np.testing.assert_array_equal(a["tensor"][:3], b["tensor"][:])


def test_reaction_diffusion_initial_states_span_the_unit_interval(tmp_path: Path):
    small_recipe(tmp_path, "reaction_diffusion")
    path = generator.run_recipe(tmp_path / "recipe.yaml", out=tmp_path, progress=False)[0]
    with h5py.File(path) as f:
        first = f["tensor"][:, 0]
    np.testing.assert_allclose(first.min(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(first.max(axis=1), 1.0, atol=1e-6)


def test_existing_files_are_kept_refused_or_forced(tmp_path: Path):
    recipe = small_recipe(tmp_path, "advection")
    out = tmp_path / "out"
    (path,) = generator.run_recipe(recipe, out=out, progress=False)
    stamp = path.stat().st_mtime_ns
    generator.run_recipe(recipe, out=out, progress=False)
    assert path.stat().st_mtime_ns == stamp  # same settings: kept as is
    with pytest.raises(RecipeError, match=r"advection_beta0\.4\.hdf5: exists with other settings"):
        generator.run_recipe(recipe, samples=4, out=out, progress=False)
    assert open_dataset(path).fields.shape[0] == 5
    generator.run_recipe(recipe, samples=4, out=out, force=True, progress=False)
    assert open_dataset(path).fields.shape[0] == 4
    assert sorted(p.name for p in out.iterdir()) == [path.name]


def test_an_interrupted_run_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    recipe = small_recipe(tmp_path)
    solve, calls = PDEBench1DRecipe.solve, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return solve(*args)

    monkeypatch.setattr(PDEBench1DRecipe, "solve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generator.run_recipe(recipe, out=tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(done.stdout)


def test_a_rerun_removes_temporaries_of_dead_writers_only(tmp_path: Path):
    recipe, out = small_recipe(tmp_path, "advection"), tmp_path / "out"
    out.mkdir()
    target = out / "advection_beta0.4.hdf5"
    stale = temporary_path(target, pid=dead_pid())
    live = temporary_path(target, pid=os.getpid())  # say, a concurrent run still writing
    elsewhere = out / f".{target.name}.{dead_pid()}@another-host.0123abcd.tmp"
    for temporary in (stale, live, elsewhere):
        temporary.write_bytes(b"partial")
    generator.run_recipe(recipe, samples=1, out=out, progress=False)
    assert not stale.exists()
    assert live.read_bytes() == b"partial" and elsewhere.read_bytes() == b"partial"
    assert open_dataset(target).fields.shape[0] == 1


def test_a_diverging_solver_is_reported_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    recipe = small_recipe(tmp_path)
    solve = PDEBench1DRecipe.solve

    def diverging(*args):
        block = solve(*args).copy()
        block[1, 3, 7] = np.nan
        return block

    monkeypatch.setattr(PDEBench1DRecipe, "solve", diverging)
    with pytest.raises(RecipeError, match=r"burgers_Nu0\.01\.hdf5: the burgers solver diverged"):
        generator.run_recipe(recipe, out=tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_output_folder_comes_from_the_environment(tmp_path: Path, monkeypatch):
    recipe = small_recipe(tmp_path, "advection")
    monkeypatch.setenv("SURROGATES_DATA", str(tmp_path / "env"))
    (path,) = generator.run_recipe(recipe, samples=1, progress=False)
    assert path.parent == tmp_path / "env" and path.exists()
    (path,) = generator.run_recipe(recipe, samples=1, out=tmp_path / "arg", progress=False)
    assert path.parent == tmp_path / "arg"
    monkeypatch.delenv("SURROGATES_DATA")
    assert generator.output_folder() == Path("datasets/data")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("solver: {cfll: 0.3}", r"solver\.cfll: unknown key \(did you mean 'cfl'\?\)"),
        ("sampels: 3", r"sampels: unknown key \(did you mean 'samples'\?\)"),
        ("solver: {cfl: 0.7}", r"solver\.cfl: Input should be less than or equal to 0\.5"),
        ("samples: many", r"samples: Input should be a valid integer.*found 'many'"),
        ("solver: {method: exact}", r"solver\.method: does not apply to burgers"),
        ("grid: {cells: 32, x_min: 1.0, x_max: 0.0}", r"grid: x_max \(0\.0\) must exceed x_min"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path: Path, extra: str, message: str):
    path = small_recipe(tmp_path)
    text = path.read_text()
    key = extra.split(":")[0]
    kept = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
    path.write_text("\n".join([*kept, extra]) + "\n")
    with pytest.raises(RecipeError, match=rf"recipe\.yaml: {message}"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "pde: heat\nparameters: {}\nfile_name: a.h5\n",
            r"pde: unknown PDE 'heat' \(one of advection",
        ),
        ("pde: burger\nparameters: {}\nfile_name: a.h5\n", r"pde: .*did you mean 'burgers'\?"),
        (
            "pde: burgers\nparameters: {beta: [1.0]}\nfile_name: a.h5\n",
            r"parameters: burgers needs values for Nu, found beta",
        ),
        (
            "pde: burgers\nparameters: {Nu: [1.0, 2.0]}\nfile_name: a.h5\n",
            r"file_name: needs \{Nu\}, which takes several values",
        ),
        (
            "pde: burgers\nparameters: {Nu: [1.0]}\nfile_name: a{rho}.h5\n",
            r"file_name: unknown placeholder \{rho\}",
        ),
        ("pde: burgers\nparameters: {Nu: [1.0]}\n", r"file_name: Field required"),
        ("pde: [burgers\n", r"not valid YAML at line 2"),
        ("- burgers\n", r"expected a mapping of keys at the top, found list"),
    ],
)
def test_recipe_file_errors(tmp_path: Path, text: str, message: str):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write_recipe(tmp_path, text))


def test_cli_generate_prints_files_and_reports_errors_in_one_line(tmp_path: Path, capsys):
    recipe = small_recipe(tmp_path, "advection")
    assert main(["generate", str(recipe), "--samples", "2", "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "o" / "advection_beta0.4.hdf5")
    assert main(["generate", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("surrogates generate: error: ") and "missing.yaml: file not found" in err
    assert main(["generate", str(recipe), "--samples", "0", "--out", str(tmp_path)]) == 2
    assert "--samples: expected a positive number, found 0" in capsys.readouterr().err


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("surrogates generate: error: ")
    return err.strip()


def test_cli_generate_into_a_file_is_one_line_and_keeps_the_file(tmp_path: Path, capsys):
    recipe, existing = small_recipe(tmp_path, "advection"), tmp_path / "notes.txt"
    existing.write_text("keep me")
    assert main(["generate", str(recipe), "--samples", "1", "--out", str(existing)]) == 2
    assert one_error_line(capsys).endswith(f"--out {existing}: not a directory")
    inside = existing / "data"
    assert main(["generate", str(recipe), "--samples", "1", "--out", str(inside)]) == 2
    assert one_error_line(capsys).endswith(f"--out {inside}: cannot create: Not a directory")
    assert existing.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_generate_into_a_read_only_folder_is_one_line(tmp_path: Path, capsys):
    recipe, folder = small_recipe(tmp_path, "advection"), tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["generate", str(recipe), "--samples", "1", "--out", str(folder)]) == 2
    finally:
        folder.chmod(0o755)
    assert one_error_line(capsys).endswith(f"--out {folder}: cannot write: Permission denied")
    assert list(folder.iterdir()) == []


def test_a_write_that_fails_midway_is_one_line(tmp_path: Path, capsys, monkeypatch):
    recipe, out = small_recipe(tmp_path, "advection"), tmp_path / "out"

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PDEBench1DRecipe, "write", disk_full)
    assert main(["generate", str(recipe), "--samples", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err  # after the progress bar, when stderr is not a terminal
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"surrogates generate: error: {out / 'advection_beta0.4.hdf5'}: cannot write: "
        "No space left on device"
    )


@pytest.mark.parametrize(
    ("name", "pde", "frames", "t_end", "files"),
    [
        ("advection1d.yaml", "advection", 201, 2.0, 8),
        ("burgers1d.yaml", "burgers", 201, 2.0, 12),
        ("reacdiff1d.yaml", "reaction_diffusion", 101, 1.0, 16),
    ],
)
def test_shipped_recipes_use_pdebench_grids(name, pde, frames, t_end, files):
    recipe = load_recipe(RECIPES / name)
    assert recipe.pde == pde and len(recipe.sweep()) == files
    assert (recipe.grid.cells, recipe.grid.x_min, recipe.grid.x_max) == (1024, 0.0, 1.0)
    assert (recipe.time.frames, recipe.time.t_end) == (frames, t_end)
    assert recipe.initial_condition.seed == 2022 and recipe.initial_condition.modes == 4
