"""`open_dataset` on every layout: shapes, values, coordinates, parameters, laziness, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layout_files import write_cfd, write_darcy, write_groups, write_tensor, write_well

from surrogates.data import DatasetError, Trajectory, open_dataset


def test_tensor_layout_reads_channels_last_with_t_cut_to_data(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    tensor = write_tensor(path, n=5, t=7, x=16, beta=0.4)
    ds = open_dataset(path)
    assert ds.layout == "pdebench-tensor"
    assert ds.field_names == ("u",)
    assert ds.fields.shape == (5, 7, 16, 1) and len(ds) == 5
    np.testing.assert_array_equal(ds.fields[:], tensor[..., None])
    # PDEBench stores T+1 times; the dataset keeps the first T.
    np.testing.assert_allclose(ds.coords["t"], np.arange(7) * 0.01)
    np.testing.assert_allclose(ds.coords["x"], (np.arange(16) + 0.5) / 16)
    np.testing.assert_array_equal(ds.params["beta"], np.full(5, 0.4))
    assert ds.boundary == ("periodic",)
    assert ds.static is None


def test_parameters_come_from_attributes_not_file_names(tmp_path: Path):
    path = tmp_path / "1D_Burgers_Sols_Nu0.001.hdf5"
    write_tensor(path, Nu=0.25)
    assert open_dataset(path).params == {"Nu": pytest.approx(np.full(5, 0.25))}


def test_trajectory_item_and_sub_dataset(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    tensor = write_tensor(path, n=5, beta=0.4)
    ds = open_dataset(path)
    item = ds[-1]
    assert isinstance(item, Trajectory)
    np.testing.assert_array_equal(item.fields, tensor[4, ..., None])
    assert item.params == {"beta": pytest.approx(0.4)} and item.static is None
    sub = ds[[3, 1]]
    assert len(sub) == 2
    np.testing.assert_array_equal(sub.fields[:], tensor[[3, 1], ..., None])
    np.testing.assert_array_equal(ds.fields[1:4, 2, ..., 0], tensor[1:4, 2])
    np.testing.assert_array_equal(np.asarray(ds.fields), tensor[..., None])
    with pytest.raises(IndexError, match="out of range"):
        ds[5]


def test_strides_apply_to_fields_and_coordinates(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    tensor = write_tensor(path, n=4, t=9, x=18)
    ds = open_dataset(path, stride_t=2, stride_x=3)
    assert ds.fields.shape == (4, 5, 6, 1)
    np.testing.assert_array_equal(ds.fields[2], tensor[2, ::2, ::3, None])
    np.testing.assert_allclose(ds.coords["t"], (np.arange(9) * 0.01)[::2])
    np.testing.assert_allclose(ds.coords["x"], ((np.arange(18) + 0.5) / 18)[::3])


def test_a_file_given_twice_is_refused(tmp_path: Path, monkeypatch):
    # Twice, its trajectories would be split into training and test both.
    path = tmp_path / "adv.hdf5"
    write_tensor(path, n=4, t=9, x=16)
    with pytest.raises(DatasetError, match=r"adv.hdf5: given twice; each file may appear once"):
        open_dataset([path, path])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"adv.hdf5: given twice \(also as .*adv.hdf5\)"):
        open_dataset([path, Path("./adv.hdf5")])


def test_a_stride_leaving_one_point_is_refused(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    write_tensor(path, n=4, t=9, x=16)
    with pytest.raises(DatasetError, match=r"stride_x: 2000 leaves 1 point of the 16 .*axis 0"):
        open_dataset(path, stride_x=2000)
    assert open_dataset(path, stride_x=8).fields.shape[2] == 2


def test_a_stride_must_divide_a_periodic_grid_only(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    write_tensor(path, n=4, t=9, x=16)  # periodic, as PDEBench's 1D files
    with pytest.raises(DatasetError, match=r"stride_x: 3 does not divide the 16 points"):
        open_dataset(path, stride_x=3)
    with h5py.File(path, "a") as f:
        f.attrs["boundary"] = "dirichlet"
    assert open_dataset(path, stride_x=3).fields.shape[2] == 6


def test_reads_only_the_requested_trajectory_strided_at_read_time(tmp_path, monkeypatch):
    path = tmp_path / "adv.hdf5"
    write_tensor(path, n=6, t=9, x=16)
    ds = open_dataset(path, stride_t=2, stride_x=4)
    requests = []
    original = h5py.Dataset.__getitem__

    def spy(self, index):
        requests.append((self.name, index))
        return original(self, index)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ds.fields[3]
    assert requests == [("/tensor", (3, slice(None, None, 2), slice(None, None, 4)))]


def test_several_files_form_a_parameter_sweep(tmp_path: Path):
    paths = [tmp_path / f"b{k}.hdf5" for k in range(3)]
    tensors = [write_tensor(p, n=4, seed=k, beta=0.1 * (k + 1)) for k, p in enumerate(paths)]
    ds = open_dataset(paths)
    assert len(ds) == 12
    np.testing.assert_allclose(ds.params["beta"], np.repeat([0.1, 0.2, 0.3], 4))
    np.testing.assert_array_equal(ds.fields[5], tensors[1][1, ..., None])
    assert ds.source(5) == (paths[1], 1)
    capped = open_dataset(paths, samples=2)
    np.testing.assert_allclose(capped.params["beta"], [0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    picked = open_dataset(paths, samples=[11, 0])
    np.testing.assert_array_equal(picked.fields[0], tensors[2][3, ..., None])


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ({"x": 32}, "grid shape: expected (16,)"),
        ({"t": 5}, "frames: expected 7"),
        ({"Nu": 0.1}, "parameters: expected ['beta']"),
    ],
)
def test_inconsistent_files_name_the_culprit(tmp_path: Path, other: dict, message: str):
    first, second = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    write_tensor(first, beta=0.1)
    attrs = {"Nu": other.pop("Nu")} if "Nu" in other else {"beta": 0.2}
    write_tensor(second, **other, **attrs)
    with pytest.raises(DatasetError) as error:
        open_dataset([first, second])
    assert str(second) in str(error.value) and message in str(error.value)
    assert str(first) in str(error.value)


@pytest.mark.parametrize("spatial", [(8,), (6, 5), (4, 3, 2)])
def test_cfd_layout_fixed_channel_order(tmp_path: Path, spatial: tuple):
    path = tmp_path / "cfd.hdf5"
    fields = write_cfd(path, spatial=spatial, eta=1e-8, zeta=1e-8, M=0.1)
    ds = open_dataset(path)
    names = ("density", "pressure", "Vx", "Vy", "Vz")[: 2 + len(spatial)]
    assert ds.layout == "pdebench-cfd" and ds.field_names == names
    assert ds.fields.shape == (3, 4, *spatial, len(names))
    expected = np.stack([fields[k][1] for k in names], axis=-1)
    np.testing.assert_array_equal(ds.fields[1], expected)
    assert set(ds.params) == {"eta", "zeta", "M"}
    assert list(ds.coords) == ["t", *"xyz"[: len(spatial)]]


def test_cfd_mismatched_field_shapes(tmp_path: Path):
    path = tmp_path / "cfd.hdf5"
    write_cfd(path)
    with h5py.File(path, "a") as f:
        del f["Vx"]
        f["Vx"] = np.zeros((3, 4, 9), np.float32)
    with pytest.raises(
        DatasetError, match=r"key 'Vx': expected shape \(3, 4, 8\).*found \(3, 4, 9\)"
    ):
        open_dataset(path)


def test_darcy_layout_coefficient_is_static(tmp_path: Path):
    path = tmp_path / "darcy.hdf5"
    nu, tensor = write_darcy(path, beta=10.0)
    ds = open_dataset(path, stride_x=2)
    assert ds.layout == "pdebench-darcy"
    assert ds.fields.shape == (3, 1, 4, 4, 1) and ds.static.shape == (3, 4, 4, 1)
    assert ds.static_names == ("nu",)
    np.testing.assert_array_equal(ds[2].static, nu[2, ::2, ::2, None])
    np.testing.assert_array_equal(ds[2].fields, tensor[2, :, ::2, ::2, None])
    np.testing.assert_array_equal(ds.params["beta"], np.full(3, 10.0))
    assert ds.boundary == ("dirichlet", "dirichlet")
    np.testing.assert_array_equal(ds.coords["t"], [0.0])


@pytest.mark.parametrize(("spatial", "channels"), [((6, 6), 2), ((7,), 1)])
def test_groups_layout(tmp_path: Path, spatial: tuple, channels: int):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = write_groups(path, n=3, t=5, spatial=spatial, c=channels)
    ds = open_dataset(path, stride_t=2)
    assert ds.layout == "pdebench-groups"
    assert ds.field_names == (("u", "v") if channels == 2 else ("u",))
    assert ds.fields.shape == (3, 3, *spatial, channels)
    np.testing.assert_array_equal(ds.fields[1], data[1][::2])
    np.testing.assert_allclose(ds.coords["t"], np.linspace(0, 5, 5)[::2])
    np.testing.assert_allclose(ds.coords["x"], np.linspace(-1, 1, spatial[0]))


def test_groups_layout_inconsistent_group(tmp_path: Path):
    path = tmp_path / "swe.h5"
    write_groups(path)
    with h5py.File(path, "a") as f:
        del f["0002/data"]
        f["0002/data"] = np.zeros((5, 6, 7, 2), np.float32)
    with pytest.raises(DatasetError, match=r"key '0002/data': expected shape \(5, 6, 6, 2\)"):
        open_dataset(path)


def test_well_layout(tmp_path: Path):
    path = tmp_path / "well.hdf5"
    stored = write_well(path, b=3, t=4, nx=6, ny=5)
    ds = open_dataset(path)
    assert ds.layout == "well"
    assert ds.field_names == ("pressure", "height", "velocity_x", "velocity_y")
    assert ds.fields.shape == (3, 4, 6, 5, 4)
    got = ds.fields[2]
    np.testing.assert_allclose(got[..., 0], stored["pressure"][2], rtol=1e-6)
    # `height` does not vary along y: broadcast.
    np.testing.assert_allclose(
        got[..., 1], np.repeat(stored["height"][2][..., None], 5, -1), rtol=1e-6
    )
    np.testing.assert_allclose(got[..., 2:], stored["velocity"][2], rtol=1e-6)
    assert ds.static_names == ("mask",)
    np.testing.assert_allclose(ds.static[1][..., 0], stored["mask"], rtol=1e-6)
    np.testing.assert_allclose(ds.params["alpha"], [0.5] * 3)
    np.testing.assert_allclose(ds.params["Re"], stored["Re"])
    assert ds.boundary == ("periodic", "wall")
    np.testing.assert_allclose(ds.coords["y"], np.linspace(0, 2, 5))
    strided = open_dataset(path, stride_t=3, stride_x=2)
    assert strided.fields.shape == (3, 2, 3, 3, 4)
    np.testing.assert_allclose(strided.fields[0][..., 2:], stored["velocity"][0, ::3, ::2, ::2])


def test_well_shape_that_contradicts_flags(tmp_path: Path):
    path = tmp_path / "well.hdf5"
    write_well(path)
    with h5py.File(path, "a") as f:
        f["t0_fields/pressure"].attrs["sample_varying"] = False
    with pytest.raises(DatasetError, match=r"key 't0_fields/pressure': expected shape \(4, 6, 5\)"):
        open_dataset(path)


def test_missing_file():
    with pytest.raises(DatasetError, match=r"nowhere\.hdf5: no such file"):
        open_dataset("nowhere.hdf5")


def test_not_hdf5(tmp_path: Path):
    path = tmp_path / "notes.hdf5"
    path.write_text("not a dataset")
    with pytest.raises(DatasetError, match=r"notes\.hdf5: not an HDF5 file"):
        open_dataset(path)


def test_unknown_layout_lists_keys_and_layouts(tmp_path: Path):
    path = tmp_path / "odd.hdf5"
    with h5py.File(path, "w") as f:
        f["velocity"] = np.zeros(3)
    with pytest.raises(DatasetError) as error:
        open_dataset(path)
    message = str(error.value)
    assert "unknown layout" in message and "['velocity']" in message
    for layout in ("pdebench-tensor", "pdebench-cfd", "pdebench-darcy", "pdebench-groups", "well"):
        assert layout in message


def test_missing_coordinate(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    write_tensor(path)
    with h5py.File(path, "a") as f:
        del f["x-coordinate"]
    with pytest.raises(DatasetError, match="key 'x-coordinate' missing"):
        open_dataset(path)


def test_short_time_coordinate(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    write_tensor(path, t=7)
    with h5py.File(path, "a") as f:
        del f["t-coordinate"]
        f["t-coordinate"] = np.arange(5.0)
    with pytest.raises(DatasetError, match=r"t-coordinate': expected at least 7 times.*found 5"):
        open_dataset(path)


def test_nan_names_file_key_trajectory_and_channel(tmp_path: Path):
    path = tmp_path / "cfd.hdf5"
    write_cfd(path, n=4)
    with h5py.File(path, "a") as f:
        f["pressure"][2, 1, 3] = np.nan
    ds = open_dataset(path)
    ds[1]  # clean trajectories still read
    with pytest.raises(DatasetError) as error:
        ds[2]
    assert str(path) in str(error.value)
    assert "key 'pressure' trajectory 2 channel 'pressure'" in str(error.value)
    with pytest.raises(DatasetError, match="NaN/Inf"):
        ds.fields[1:3]


@pytest.mark.parametrize("kwargs", [{"stride_t": 0}, {"stride_x": -1}, {"samples": 0}])
def test_bad_arguments(tmp_path: Path, kwargs: dict):
    path = tmp_path / "adv.hdf5"
    write_tensor(path)
    with pytest.raises(DatasetError, match=next(iter(kwargs))):
        open_dataset(path, **kwargs)


def test_pickles_without_handles(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    tensor = write_tensor(path)
    ds = open_dataset(path)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone.fields[3], tensor[3, ..., None])
    ds.close()
    np.testing.assert_array_equal(ds.fields[4], tensor[4, ..., None])


@given(
    first=st.one_of(
        st.integers(-6, 5),
        st.builds(
            slice,
            st.none() | st.integers(-7, 7),
            st.none() | st.integers(-7, 7),
            st.none() | st.integers(1, 3) | st.integers(-3, -1),
        ),
        st.lists(st.integers(-6, 5), max_size=4),
    ),
    frame=st.none() | st.integers(-7, 6),
)
@settings(max_examples=60, deadline=None)
def test_lazy_indexing_matches_numpy(tmp_path_factory, first, frame):
    path = tmp_path_factory.getbasetemp() / "lazy.hdf5"
    if not path.exists():
        write_tensor(path, n=6, t=7, x=4)
    ds = open_dataset(path)
    expected = np.asarray(ds.fields)
    index = first if frame is None else (first, frame)
    if isinstance(first, list):
        first = np.asarray(first, dtype=int)
        index = first if frame is None else (first, frame)
    np.testing.assert_array_equal(ds.fields[index], expected[index])


@pytest.mark.parametrize("layout", ["tensor", "cfd", "groups", "well"])
def test_windows_read_only_their_frames(tmp_path: Path, monkeypatch, layout: str):
    path = tmp_path / f"{layout}.hdf5"
    writers = {
        "tensor": lambda: write_tensor(path, n=3, t=9, x=8),
        "cfd": lambda: write_cfd(path, n=3, t=9, spatial=(8, 6)),
        "groups": lambda: write_groups(path, n=3, t=9),
        "well": lambda: write_well(path, b=3, t=9),
    }
    writers[layout]()
    ds = open_dataset(path, stride_t=2, stride_x=2)
    frames = ds.fields.shape[1]
    for start, length in ((0, 2), (1, 3), (frames - 2, 2)):
        np.testing.assert_array_equal(
            ds.read_window(2, start, length), ds.fields[2][start : start + length]
        )
    requests = []
    original = h5py.Dataset.__getitem__

    def spy(self, index):
        requests.append(index)
        return original(self, index)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ds.read_window(1, 1, 2)
    time_slices = [
        part
        for index in requests
        for part in np.atleast_1d(index)
        if isinstance(part, slice) and part.step == 2 and part.start is not None
    ]
    assert time_slices and all((s.start, s.stop) == (2, 6) for s in time_slices)
    with pytest.raises(IndexError, match="window"):
        ds.read_window(0, frames - 1, 2)


@pytest.mark.parametrize("key", ["tensor", "density"])
def test_a_trailing_channel_axis_is_a_shape_error(tmp_path: Path, key: str):
    path = tmp_path / "data.hdf5"
    (write_tensor if key == "tensor" else write_cfd)(path)
    with h5py.File(path, "a") as f:
        shape = (*f[key].shape, 1)
        for name in ("tensor", "density", "pressure", "Vx"):
            if name in f:
                del f[name]
                f[name] = np.zeros(shape, np.float32)
    layout = "pdebench-tensor" if key == "tensor" else "pdebench-cfd"
    with pytest.raises(DatasetError) as error:
        open_dataset(path)
    assert str(error.value) == (
        f"{path}: key '{key}': found shape {shape} with no 'y-coordinate'; the {layout} layout "
        "expects (N, T, X) with 'x-coordinate' of length X for 1D data, (N, T, X, Y) with x- "
        "and y-coordinates for 2D, (N, T, X, Y, Z) with x-, y- and z-coordinates for 3D (one "
        "axis per coordinate, no channel axis)"
    )


def test_a_damaged_trajectory_is_named(tmp_path: Path):
    # Compressed chunks, one per trajectory: the second one's bytes overwritten on disk.
    path = tmp_path / "adv.hdf5"
    write_tensor(path, n=3, t=9, x=16)
    with h5py.File(path, "a") as f:
        tensor = f["tensor"][()]
        del f["tensor"]
        f.create_dataset("tensor", data=tensor, chunks=(1, 9, 16), compression="gzip")
    with h5py.File(path) as f:
        chunk = f["tensor"].id.get_chunk_info(1)
    with path.open("r+b") as f:
        f.seek(chunk.byte_offset)
        f.write(b"\xff" * chunk.size)
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds.fields[0], tensor[0, ..., None])
    with pytest.raises(
        DatasetError, match=r"adv.hdf5: trajectory 1 unreadable, the file is damaged"
    ):
        ds.fields[1]


def test_a_truncated_file_is_named_in_one_line(tmp_path: Path):
    # A copy cut short (an interrupted transfer): HDF5 cannot even open it.
    path = tmp_path / "adv.hdf5"
    write_tensor(path, n=3, t=9, x=16)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DatasetError) as error:
        open_dataset(path)
    assert str(error.value).startswith(f"{path}: unreadable HDF5 file (")
    assert "\n" not in str(error.value)
