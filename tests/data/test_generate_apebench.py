"""Recipe `pde: apebench`: the files hold APEBench's own trajectories, read back by the suite's
data layer, and bad recipes stop in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from apebench.scenarios import scenario_dict

from surrogates.data.dataset import open_dataset
from surrogates.data.generate.generator import run_recipe
from surrogates.data.generate.recipe import load_recipe
from surrogates.errors import RecipeError

RECIPES = Path(__file__).parents[2] / "datasets"

# Gray-Scott in 2D: two channels on a 2D grid, so the axes and channels are both checked.
SETTINGS = {
    "num_spatial_dims": 2,
    "num_points": 16,
    "num_train_samples": 2,
    "train_temporal_horizon": 3,
    "num_test_samples": 2,
    "test_temporal_horizon": 4,
}


def write_recipe(folder: Path, text: str) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def gray_scott(tmp_path_factory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("apebench")
    settings = ", ".join(f"{key}: {value}" for key, value in SETTINGS.items())
    recipe = write_recipe(folder, f"pde: apebench\nscenario: phy_gs\nsettings: {{{settings}}}\n")
    return recipe, run_recipe(recipe, out=folder, progress=False)


def test_the_files_hold_apebenchs_trajectories_for_its_seeds(gray_scott):
    _, files = gray_scott
    assert [f.name for f in files] == ["apebench_phy_gs_train.h5", "apebench_phy_gs_test.h5"]
    scenario = scenario_dict["phy_gs"](**SETTINGS)
    stepper = scenario.get_ref_stepper()
    splits = (scenario.get_train_data(), scenario.get_test_data())
    for path, expected in zip(files, splits, strict=True):
        dataset = open_dataset([path])
        assert len(dataset) == 2 and dataset.boundary == ("periodic", "periodic")
        for i in range(2):
            # APEBench's (T, C, X, Y) as the suite's (T, X, Y, C).
            found = dataset[i].fields
            np.testing.assert_array_equal(found, np.moveaxis(np.asarray(expected[i]), 1, -1))
        coords = dataset.coords
        extent = float(stepper.domain_extent)
        np.testing.assert_allclose(coords["x"], np.arange(16) * extent / 16, rtol=1e-6)
        np.testing.assert_allclose(coords["y"], coords["x"])
        frames = expected.shape[1]
        np.testing.assert_allclose(coords["t"], np.arange(frames) * float(stepper.dt), rtol=1e-6)
        with h5py.File(path) as f:
            assert f.attrs["scenario"] == "phy_gs" and f.attrs["split"] in ("train", "test")
            assert '"num_points": 16' in f.attrs["settings"]


def test_a_second_run_keeps_the_files(gray_scott):
    recipe, files = gray_scott
    stamps = [f.stat().st_mtime_ns for f in files]
    assert run_recipe(recipe, out=files[0].parent, progress=False) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scenario: diff_avd\n",
            r"scenario: APEBench has no scenario 'diff_avd' \(did you mean 'diff_adv'\?\)",
        ),
        (
            "scenario: diff_adv\nsettings: {num_pionts: 8}\n",
            r"settings\.num_pionts: no setting of diff_adv \(did you mean 'num_points'\?\)",
        ),
        ("scenario: diff_adv\nfile_name: apebench.h5\n", r"file_name: needs \{split\}"),
        (
            "scenario: diff_adv\nsamples: 0\n",
            r"samples: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_recipes_name_the_key(tmp_path, text, message):
    path = write_recipe(tmp_path, "pde: apebench\n" + text)
    with pytest.raises(RecipeError, match=message):
        run_recipe(path, out=tmp_path, progress=False)


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("apebench_*.yaml")))
def test_shipped_apebench_recipes_build_their_scenarios(name):
    recipe = load_recipe(RECIPES / name)
    scenario = recipe.scenario_object()
    assert scenario.num_points in (64, 160)
    names = [recipe.file_name.format(**values) for values in recipe.sweep()]
    assert len(set(names)) == 2 and all(n.endswith(("_train.h5", "_test.h5")) for n in names)
