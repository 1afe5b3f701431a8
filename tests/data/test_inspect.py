"""`surrogates inspect`: streamed statistics against NumPy, NaN flags, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from layout_files import write_cfd, write_darcy, write_tensor

from surrogates.cli import main
from surrogates.data import DatasetError, open_dataset
from surrogates.data.inspect import ChannelStats, inspect_files


def test_streamed_statistics_equal_numpy_over_all_files(tmp_path: Path):
    paths = [tmp_path / "a.hdf5", tmp_path / "b.hdf5"]
    fields = [
        write_cfd(p, n=3, spatial=(8,), seed=k, eta=0.1 * (k + 1)) for k, p in enumerate(paths)
    ]
    report = inspect_files(paths, stride_x=2)
    assert report.layout == "pdebench-cfd" and report.shape == (6, 4, 4, 3)
    for name in ("density", "pressure", "Vx"):
        values = np.concatenate([f[name][..., ::2] for f in fields]).astype(np.float64)
        stats = report.fields[name]
        assert stats.mean == pytest.approx(values.mean(), rel=1e-6)
        assert stats.std == pytest.approx(values.std(), rel=1e-6)
        assert (stats.minimum, stats.maximum) == pytest.approx((values.min(), values.max()))
        assert stats.non_finite == 0
    np.testing.assert_allclose(report.params["eta"], [0.1] * 3 + [0.2] * 3)
    assert report.coords["x"] == (4, pytest.approx(1 / 16), pytest.approx(13 / 16))


def test_channel_stats_merge_matches_one_pass():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(loc=1e3, size=size) for size in (1, 17, 400)]
    stats = ChannelStats()
    for chunk in chunks:
        stats.update(chunk)
    everything = np.concatenate(chunks)
    assert stats.mean == pytest.approx(everything.mean(), rel=1e-12)
    assert stats.std == pytest.approx(everything.std(), rel=1e-9)


def test_cli_prints_layout_shapes_parameters_and_static(tmp_path: Path, capsys):
    path = tmp_path / "darcy.hdf5"
    write_darcy(path, beta=100.0)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("pdebench-darcy", "(3, 1, 8, 8, 1)", "beta", "100", "nu", "dirichlet"):
        assert text in out


def test_cli_flags_nan_and_exits_2(tmp_path: Path, capsys):
    path = tmp_path / "adv.hdf5"
    write_tensor(path, beta=0.1)
    with h5py.File(path, "a") as f:
        f["tensor"][1, 2, 3] = np.inf
        f["tensor"][4, 0, 0] = np.nan
    assert main(["inspect", str(path)]) == 2
    captured = capsys.readouterr()
    assert "NaN/Inf" in captured.out  # the table still prints, with the count flagged
    assert captured.err.strip().count("\n") == 0
    assert captured.err.startswith(
        f"surrogates inspect: error: {path}: key 'tensor' trajectory 1 channel 'u': "
        "expected finite values, found NaN/Inf (the first of 2, by channel: 'u' (2))"
    )
    assert "first NaN/Inf" in captured.out  # the overview row naming the trajectory


def test_the_first_non_finite_is_named_as_training_names_it(tmp_path: Path):
    paths = [tmp_path / "a.hdf5", tmp_path / "b.hdf5"]
    for k, path in enumerate(paths):
        write_cfd(path, n=3, seed=k)
    with h5py.File(paths[1], "a") as f:
        f["pressure"][2, 1, 3] = np.nan
        f["Vx"][1, 0, 0] = np.inf
    report = inspect_files(paths)
    assert report.first_non_finite == f"{paths[1]}: key 'Vx' trajectory 1 channel 'Vx'"
    with pytest.raises(DatasetError) as error:
        open_dataset(paths)[4]
    assert str(error.value).startswith(f"{report.first_non_finite}: expected finite values")
    assert report.non_finite_summary().endswith(
        "(the first of 2, by channel: 'pressure' (1), 'Vx' (1))"
    )


def test_a_non_finite_static_input_is_named(tmp_path: Path):
    path = tmp_path / "darcy.hdf5"
    write_darcy(path)
    with h5py.File(path, "a") as f:
        f["nu"][2, 0, 0] = np.nan
    report = inspect_files([path])
    assert report.first_non_finite == f"{path}: key 'nu' trajectory 2 channel 'nu'"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("x"), "not an HDF5 file"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys, make, message):
    path = tmp_path / "data.hdf5"
    make(path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(path) in err


def test_console_script_is_installed(tmp_path: Path):
    path = tmp_path / "adv.hdf5"
    write_tensor(path, beta=0.7)
    script = Path(sys.executable).parent / "surrogates"
    done = subprocess.run([script, "inspect", path], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pdebench-tensor" in done.stdout and "0.7" in done.stdout
