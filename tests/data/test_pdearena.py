"""`open_dataset` on PDEArena's Navier–Stokes layout: values channels last, strides, coordinates,
the buoyancy parameter, the open boundary, detection, one-line errors, `inspect` and a run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from layout_files import write_pdearena

from surrogates.cli import main
from surrogates.config import load_experiment
from surrogates.data import DatasetError, open_dataset
from surrogates.data.dataset import LAYOUTS
from surrogates.training import OperatorTask
from surrogates.workflow import train


def channels_last(stored: dict[str, np.ndarray]) -> np.ndarray:
    """`(N, T, X, Y, 3)` float32 from the stored `(N, T, X, Y)` fields, in the order u, vx, vy."""
    return np.stack([stored[key] for key in ("u", "vx", "vy")], axis=-1).astype(np.float32)


def test_reads_the_fields_channels_last_with_coordinates_and_buoyancy(tmp_path: Path):
    path = tmp_path / "NavierStokes2D_train_1_0.50000_3.h5"
    stored = write_pdearena(path, n=3, nt=5, nx=8, ny=6)
    ds = open_dataset(path)
    assert ds.layout == "pdearena"
    assert ds.field_names == ("u", "vx", "vy")
    assert ds.fields.shape == (3, 5, 8, 6, 3) and ds.fields.dtype == np.float32
    np.testing.assert_array_equal(ds.fields[:], channels_last(stored))
    np.testing.assert_array_equal(ds[1].fields, channels_last(stored)[1])
    np.testing.assert_allclose(ds.coords["t"], stored["t"])
    np.testing.assert_allclose(ds.coords["x"], stored["x"])
    np.testing.assert_allclose(ds.coords["y"], stored["y"])
    np.testing.assert_array_equal(ds.params["buo_y"], stored["buo_y"])
    assert ds[2].params == {"buo_y": pytest.approx(stored["buo_y"][2])}
    assert ds.boundary == ("open", "open")
    assert ds.static is None


@pytest.mark.parametrize("mode", ["valid", "test"])
def test_the_split_group_is_whichever_the_file_holds(tmp_path: Path, mode: str):
    path = tmp_path / f"NavierStokes2D_{mode}_1_0.50000.h5"
    stored = write_pdearena(path, mode=mode, n=2)
    ds = open_dataset(path)
    assert ds.layout == "pdearena"
    np.testing.assert_array_equal(ds.fields[:], channels_last(stored))
    assert ds.locate(1, 2) == f"{path}: key '{mode}/vy' trajectory 1 channel 'vy'"


def test_strides_in_space_and_time_read_only_what_is_needed(tmp_path: Path, monkeypatch):
    path = tmp_path / "ns.h5"
    stored = write_pdearena(path, n=3, nt=9, nx=12, ny=10)
    # Not periodic, so a stride that does not divide the grid is allowed.
    ds = open_dataset(path, stride_t=2, stride_x=3)
    expected = channels_last(stored)[:, ::2, ::3, ::3]
    assert ds.fields.shape == (3, 5, 4, 4, 3)
    np.testing.assert_allclose(ds.coords["t"], stored["t"][::2])
    np.testing.assert_allclose(ds.coords["x"], stored["x"][::3])
    np.testing.assert_allclose(ds.coords["y"], stored["y"][::3])

    requests = []
    original = h5py.Dataset.__getitem__

    def spy(self, index):
        requests.append((self.name, index))
        return original(self, index)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    np.testing.assert_array_equal(ds.fields[2], expected[2])
    every = (slice(None, None, 3),) * 2
    assert requests == [
        (f"/train/{key}", (2, slice(None, None, 2), *every)) for key in ("u", "vx", "vy")
    ]
    requests.clear()
    np.testing.assert_array_equal(ds.read_window(1, start=1, length=2), expected[1, 1:3])
    assert requests[0] == ("/train/u", (1, slice(2, 6, 2), *every))


def test_a_boundary_attribute_overrides_the_open_default(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path)
    with h5py.File(path, "a") as f:
        f.attrs["boundary"] = ["wall", "periodic"]
    assert open_dataset(path).boundary == ("wall", "periodic")


def test_files_of_a_buoyancy_sweep_keep_their_own_values(tmp_path: Path):
    paths = [tmp_path / f"NavierStokes2D_train_{k}_{b:.5f}_2.h5" for k, b in enumerate((0.2, 0.5))]
    stored = [
        write_pdearena(p, n=2, seed=k, buoyancy=b)
        for k, (p, b) in enumerate(zip(paths, (0.2, 0.5), strict=True))
    ]
    ds = open_dataset(paths)
    np.testing.assert_allclose(ds.params["buo_y"], [0.2, 0.2, 0.5, 0.5])
    np.testing.assert_array_equal(ds.fields[3], channels_last(stored[1])[1])


def test_detection_picks_pdearena_not_another_layout(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path)
    with h5py.File(path, "r") as f:
        matching = [layout.name for layout in LAYOUTS if layout.matches(f)]
    assert matching == ["pdearena"]
    assert open_dataset(path).layout == "pdearena"

    # A split group without the velocity is not this layout: the error lists it among those known.
    partial = tmp_path / "partial.h5"
    with h5py.File(partial, "w") as f:
        f["train/u"] = np.zeros((1, 2, 4, 4))
    with pytest.raises(DatasetError, match=r"unknown layout: found keys \['train'\]") as error:
        open_dataset(partial)
    assert "pdearena (train|valid|test/u + vx + vy)" in str(error.value)


def one_line_error(path: Path) -> str:
    with pytest.raises(DatasetError) as error:
        open_dataset(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_a_file_with_two_split_groups_is_refused(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path, mode="train")
    other = tmp_path / "other.h5"
    write_pdearena(other, mode="valid")
    with h5py.File(path, "a") as f, h5py.File(other, "r") as g:
        g.copy("valid", f)
    message = one_line_error(path)
    assert "found split groups ['train', 'valid'], expected one" in message


def test_fields_of_mismatched_shapes_are_named(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path, n=3, nt=5, nx=8, ny=8)
    with h5py.File(path, "a") as f:
        del f["train/vx"]
        f["train/vx"] = np.zeros((3, 5, 8, 7))
    message = one_line_error(path)
    assert "key 'train/vx': expected shape (3, 5, 8, 8) (as 'train/u'), found (3, 5, 8, 7)" in (
        message
    )


def test_fields_without_four_axes_are_named(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path)
    with h5py.File(path, "a") as f:
        for key in ("u", "vx", "vy"):
            del f[f"train/{key}"]
            f[f"train/{key}"] = np.zeros((3, 5, 8))
    assert "key 'train/u': expected shape (N, T, X, Y), found (3, 5, 8)" in one_line_error(path)


@pytest.mark.parametrize("key", ["t", "x", "y"])
def test_missing_coordinates_are_named(tmp_path: Path, key: str):
    path = tmp_path / "ns.h5"
    write_pdearena(path)
    with h5py.File(path, "a") as f:
        del f[f"train/{key}"]
    assert f"key 'train/{key}' missing" in one_line_error(path)


def test_coordinates_of_the_wrong_length_or_per_trajectory_grids_are_named(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path, n=3, nx=8)
    with h5py.File(path, "a") as f:
        del f["train/x"]
        f["train/x"] = np.zeros((3, 7))
    assert "key 'train/x': expected shape (3, 8), found (3, 7)" in one_line_error(path)

    write_pdearena(path, n=3, nt=5)
    with h5py.File(path, "a") as f:
        f["train/t"][2] = np.arange(5.0)
    assert "key 'train/t': trajectory 2 has times other than trajectory 0's" in (
        one_line_error(path)
    )


def test_a_buoyancy_of_the_wrong_shape_is_named(tmp_path: Path):
    path = tmp_path / "ns.h5"
    write_pdearena(path, n=3)
    with h5py.File(path, "a") as f:
        del f["train/buo_y"]
        f["train/buo_y"] = np.zeros(2)
    assert "key 'train/buo_y': expected shape (3,)" in one_line_error(path)


def test_inspect_reports_the_layout(tmp_path: Path, capsys):
    path = tmp_path / "ns.h5"
    write_pdearena(path, n=2, nt=4, nx=8, ny=8)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("pdearena", "(2, 4, 8, 8, 3)", "vx", "vy", "buo_y", "open"):
        assert text in out


def test_a_tiny_run_trains_on_such_a_file_with_the_buoyancy_as_parameter(tmp_path: Path):
    path = tmp_path / "NavierStokes2D_train_1_0.50000_8.h5"
    stored = write_pdearena(path, n=8, nt=6, nx=8, ny=8)
    experiment = tmp_path / "ns.yaml"
    experiment.write_text(
        textwrap.dedent(f"""\
        name: ns
        data:
          files: [{path}]
          history: 2
          params: [buo_y]
          split: {{val: 0.25, test: 0.25}}
        model: {{name: fno, n_modes: [4, 4], hidden_channels: 4, n_layers: 1}}
        train:
          epochs: 1
          batch_size: 4
          rollout_steps: 1
          curriculum: {{name: teacher_forcing}}
        eval: {{batch_size: 4, rollout_steps: 2}}
        run: {{root: {tmp_path / "runs"}}}
        """)
    )
    task = OperatorTask.for_training(load_experiment(experiment))
    assert task.data.param_names == ("buo_y",)
    train_rows = task.data.splits.train
    np.testing.assert_allclose(
        task.data.param_mean, [stored["buo_y"][train_rows].mean()], rtol=1e-5
    )
    folder = train(load_experiment(experiment), progress=False)
    assert (folder / "eval.nc").exists()
    assert load_experiment(folder / "config.yaml").data.params == ["buo_y"]
