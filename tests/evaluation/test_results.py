"""Results datasets: layout, NetCDF round trip, atomic writes, read errors and summaries."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

from surrogates.errors import ResultsError, SurrogatesError
from surrogates.evaluation.results import (
    Cases,
    case_rows,
    comparison_rows,
    metrics_dataset,
    read_results,
    seed_rows,
    summary_rows,
    write_results,
)

CHANNELS = ["density", "pressure"]
TIMES = np.array([0.05, 0.1, 0.15, 0.2])
ATTRS = {"experiment": "cfd_2d", "seed": 7, "learning_rate": 1e-3}


def random_metrics(
    labels=("unet", "fno"), names=("rmse", "nrmse", "max_error"), steps=4, seed=0
) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    shape = (steps, len(CHANNELS))
    return {
        label: {name: rng.uniform(0.1, 2.0, shape).astype(np.float32) for name in names}
        for label in labels
    }


def test_dataset_layout_follows_the_inputs():
    metrics = random_metrics()
    ds = metrics_dataset(metrics, channels=CHANNELS, times=TIMES, attrs=ATTRS)
    assert list(ds.data_vars) == ["rmse", "nrmse", "max_error"]
    assert all(ds[name].dims == ("model", "step", "channel") for name in ds.data_vars)
    assert ds["model"].values.tolist() == ["unet", "fno"]
    assert ds["step"].values.tolist() == [1, 2, 3, 4]
    assert ds["channel"].values.tolist() == CHANNELS
    assert ds["time"].dims == ("step",)
    assert "time" not in ds.indexes
    np.testing.assert_array_equal(ds["time"].values, TIMES)
    for label, values in metrics.items():
        for name, array in values.items():
            np.testing.assert_array_equal(ds[name].sel(model=label).values, array)
            assert ds[name].dtype == np.float32
    assert ds.attrs == ATTRS


def test_dataset_without_times_has_no_time_coord():
    ds = metrics_dataset(random_metrics(), channels=CHANNELS)
    assert "time" not in ds.coords
    assert ds.attrs == {}


def test_round_trip_equals_the_input(tmp_path):
    ds = metrics_dataset(random_metrics(), channels=CHANNELS, times=TIMES, attrs=ATTRS)
    path = write_results(ds, tmp_path / "run" / "eval.nc")
    assert path == tmp_path / "run" / "eval.nc"
    back = read_results(path)
    xr.testing.assert_identical(back, ds)
    assert back["rmse"].dtype == np.float32
    assert back.attrs == ATTRS
    assert sorted(p.name for p in path.parent.iterdir()) == ["eval.nc"]


def test_read_loads_everything_and_closes_the_file(tmp_path):
    ds = metrics_dataset(random_metrics(), channels=CHANNELS)
    path = write_results(ds, tmp_path / "eval.nc")
    back = read_results(path)
    # HDF5 refuses to open a file for writing that this process still has open.
    with h5py.File(path, "r+"):
        pass
    path.unlink()
    np.testing.assert_array_equal(back["nrmse"].values, ds["nrmse"].values)


def test_nan_values_survive_the_round_trip(tmp_path):
    metrics = random_metrics()
    metrics["fno"]["nrmse"][2, 1] = np.nan
    ds = metrics_dataset(metrics, channels=CHANNELS)
    back = read_results(write_results(ds, tmp_path / "eval.nc"))
    np.testing.assert_array_equal(back["nrmse"].values, ds["nrmse"].values)


def _change(metrics, label, name, value):
    metrics[label][name] = value
    return metrics


def _drop(metrics, label, name):
    del metrics[label][name]
    return metrics


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: _change(m, "fno", "nrmse", np.zeros((3, 2))),
            r"model 'fno', metric 'nrmse'.*\(3, 2\)",
        ),
        (
            lambda m: _change(m, "fno", "rmse", np.zeros((4, 3))),
            r"model 'fno', metric 'rmse'.*\(4, 3\)",
        ),
        (lambda m: _change(m, "fno", "rmse", np.zeros(4)), r"model 'fno', metric 'rmse'"),
        (lambda m: _drop(m, "fno", "max_error"), r"model 'fno'.*missing \['max_error'\]"),
        (lambda m: _change(m, "fno", "vrmse", np.zeros((4, 2))), r"model 'fno'.*extra \['vrmse'\]"),
        (lambda m: _change(m, "unet", "rmse", np.zeros((4,))), r"model 'unet', metric 'rmse'"),
    ],
)
def test_mismatched_models_are_named(edit, message):
    with pytest.raises(ValueError, match=message):
        metrics_dataset(edit(random_metrics()), channels=CHANNELS)


def test_channel_count_must_match_the_names():
    with pytest.raises(ValueError, match=r"model 'unet', metric 'rmse'.*\(4, 3\).*\(4, 2\)"):
        metrics_dataset(random_metrics(), channels=["a", "b", "c"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": np.arange(3.0)}, r"times must have shape \(4,\)"),
        ({"attrs": {"config": {"lr": 1}}}, r"attribute 'config' must be a str, int or float"),
        ({"attrs": {"ok": "yes", "flag": True}}, r"attribute 'flag'"),
        ({"attrs": {"missing": None}}, r"attribute 'missing'"),
        ({"channels": ["u", "u"]}, r"channel names must be unique"),
    ],
)
def test_bad_times_attrs_and_channels_are_rejected(kwargs, message):
    arguments = {"channels": CHANNELS, **kwargs}
    with pytest.raises(ValueError, match=message):
        metrics_dataset(random_metrics(), **arguments)


def test_no_models_is_rejected():
    with pytest.raises(ValueError, match="at least one model"):
        metrics_dataset({}, channels=CHANNELS)


def test_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    ds = metrics_dataset(random_metrics(), channels=CHANNELS)

    def half_write(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_write)
    with pytest.raises(RuntimeError, match="disk full"):
        write_results(ds, tmp_path / "eval.nc")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_rewrite_keeps_the_old_file(tmp_path, monkeypatch):
    old = metrics_dataset(random_metrics(seed=1), channels=CHANNELS)
    path = write_results(old, tmp_path / "eval.nc")

    def failing(self, path, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", failing)
    with pytest.raises(RuntimeError):
        write_results(metrics_dataset(random_metrics(seed=2), channels=CHANNELS), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["eval.nc"]
    xr.testing.assert_identical(read_results(path), old)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.nc"
    with pytest.raises(ResultsError, match=r"nowhere\.nc: no such results file"):
        read_results(path)
    assert issubclass(ResultsError, SurrogatesError)


def test_corrupt_files_are_named(tmp_path):
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netcdf file" * 10)
    with pytest.raises(ResultsError, match=r"garbage\.nc: not a readable NetCDF file"):
        read_results(garbage)
    truncated = tmp_path / "truncated.nc"
    whole = write_results(metrics_dataset(random_metrics(), channels=CHANNELS), tmp_path / "w.nc")
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ResultsError, match=r"truncated\.nc"):
        read_results(truncated)


def test_a_netcdf_file_of_another_layout_is_rejected(tmp_path):
    path = tmp_path / "other.nc"
    xr.Dataset({"u": (("x",), np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ResultsError, match=r"other\.nc: not a results file.*missing"):
        read_results(path)


def test_summary_rows_are_numpy_means():
    metrics = random_metrics()
    rows = summary_rows(metrics_dataset(metrics, channels=CHANNELS))
    assert [row["model"] for row in rows] == ["unet", "fno"]
    for row in rows:
        values = metrics[row["model"]]
        assert list(row) == ["model", "rmse", "nrmse", "max_error", "nrmse_last"]
        for name in ("rmse", "nrmse", "max_error"):
            assert row[name] == pytest.approx(np.mean(values[name], dtype=np.float64), rel=1e-6)
        assert row["nrmse_last"] == pytest.approx(np.mean(values["nrmse"][-1], dtype=np.float64))
        assert all(type(row[key]) is float for key in row if key != "model")


def test_summary_rows_select_metrics():
    metrics = random_metrics()
    ds = metrics_dataset(metrics, channels=CHANNELS)
    rows = summary_rows(ds, ["max_error", "rmse"])
    assert [list(row) for row in rows] == [["model", "max_error", "rmse"]] * 2
    assert rows[1]["max_error"] == pytest.approx(np.mean(metrics["fno"]["max_error"]))
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['vrmse'\]"):
        summary_rows(ds, ["vrmse"])


def test_summary_keeps_nan():
    metrics = random_metrics()
    metrics["fno"]["nrmse"][-1, 0] = np.nan
    unet, fno = summary_rows(metrics_dataset(metrics, channels=CHANNELS))
    assert np.isnan(fno["nrmse"]) and np.isnan(fno["nrmse_last"])
    assert np.isfinite(unet["nrmse"]) and np.isfinite(fno["rmse"])


def test_comparison_rows_cover_every_experiment_and_model():
    first = random_metrics(labels=("fno", "tfno"), seed=1)
    second = random_metrics(labels=("unet",), names=("nrmse", "rmse", "vrmse"), seed=2)
    results = {
        "burgers": metrics_dataset(
            first, channels=CHANNELS, attrs={"model": "tfno", "parameters": 1234}
        ),
        "advection": metrics_dataset(second, channels=CHANNELS),
    }
    rows = comparison_rows(results)
    assert [(row["experiment"], row["model"]) for row in rows] == [
        ("burgers", "fno"),
        ("burgers", "tfno"),
        ("advection", "unet"),
    ]
    # By default only the metrics every experiment has, so that the rows share columns.
    columns = ["experiment", "model", "rmse", "nrmse", "nrmse_last", "params"]
    assert all(list(row) == columns for row in rows)
    # The trained model's size, from the results' attributes; unknown for the others.
    assert [row["params"] for row in rows] == [None, 1234, None]
    inputs = {"burgers": first, "advection": second}
    for row in rows:
        values = inputs[row["experiment"]][row["model"]]
        assert row["rmse"] == pytest.approx(np.mean(values["rmse"], dtype=np.float64))
        assert row["nrmse_last"] == pytest.approx(np.mean(values["nrmse"][-1], dtype=np.float64))


def test_comparison_rows_name_an_experiment_missing_a_metric():
    results = {
        "burgers": metrics_dataset(random_metrics(), channels=CHANNELS),
        "advection": metrics_dataset(random_metrics(names=("rmse",)), channels=CHANNELS),
    }
    with pytest.raises(ValueError, match=r"experiment 'advection' has no metric\(s\) \['nrmse'\]"):
        comparison_rows(results, ["rmse", "nrmse"])
    assert comparison_rows({}) == []


def cases_of(names=("beta",), values=((0.4,), (2.5,)), seen=(True, False)) -> Cases:
    return Cases(
        names=names,
        values=np.asarray(values),
        seen=np.asarray(seen),
        trajectories=np.asarray([3, 2]),
        metrics=[random_metrics(seed=10 + k) for k in range(len(values))],
    )


def test_per_case_metrics_round_trip_beside_the_pooled_ones(tmp_path):
    cases = cases_of()
    ds = metrics_dataset(random_metrics(), channels=CHANNELS, times=TIMES, cases=cases)
    again = read_results(write_results(ds, tmp_path / "eval.nc"))
    xr.testing.assert_identical(again, ds)
    assert again["nrmse_by_case"].dims == ("case", "model", "step", "channel")
    assert again["beta"].values.tolist() == [0.4, 2.5]
    assert again["seen"].dtype == bool and again["seen"].values.tolist() == [True, False]
    np.testing.assert_array_equal(
        again["rmse_by_case"].sel(model="fno").isel(case=1), cases.metrics[1]["fno"]["rmse"]
    )
    # Summaries of the pooled metrics ignore the per-case variables.
    assert list(summary_rows(again)[0]) == [
        "model",
        "rmse",
        "nrmse",
        "max_error",
        "nrmse_last",
    ]
    rows = case_rows(again)
    assert [(r["beta"], r["seen"], r["trajectories"]) for r in rows] == [
        (0.4, "yes", 3),
        (2.5, "no", 2),
    ]
    unseen = cases.metrics[1]["unet"]["nrmse"]
    assert rows[1]["unet nrmse"] == pytest.approx(np.mean(unseen, dtype=np.float64))
    assert rows[1]["unet nrmse_last"] == pytest.approx(np.mean(unseen[-1], dtype=np.float64))
    assert "unet nrmse_last" not in case_rows(again, last=False)[0]


def test_per_case_variables_of_another_shape_are_rejected(tmp_path):
    ds = metrics_dataset(random_metrics(), channels=CHANNELS)
    ds["nrmse_by_case"] = ds["nrmse"]
    ds.to_netcdf(tmp_path / "odd.nc", engine="h5netcdf")
    with pytest.raises(ResultsError, match="'nrmse_by_case' has dims"):
        read_results(tmp_path / "odd.nc")


def test_parameter_names_may_not_collide_with_coordinates():
    with pytest.raises(ValueError, match=r"collide with the results' coords"):
        metrics_dataset(random_metrics(), channels=CHANNELS, cases=cases_of(names=("step",)))


def test_seed_rows_give_means_and_sample_deviations():
    runs = [
        metrics_dataset(
            random_metrics(seed=s),
            channels=CHANNELS,
            attrs={
                "model": "fno",
                "parameters": 99,
                "train_seconds": 10.0 + s,
                "eval_seconds": 1.0,
            },
        )
        for s in (1, 2, 3)
    ]
    rows = seed_rows({"burgers": runs, "single": runs[:1]})
    assert [(r["experiment"], r["model"], r["seeds"]) for r in rows] == [
        ("burgers", "unet", 3),
        ("burgers", "fno", 3),
        ("single", "unet", 1),
        ("single", "fno", 1),
    ]
    fno = rows[1]
    per_run = [np.mean(random_metrics(seed=s)["fno"]["rmse"], dtype=np.float64) for s in (1, 2, 3)]
    assert fno["rmse_mean"] == pytest.approx(np.mean(per_run))
    assert fno["rmse_std"] == pytest.approx(np.std(per_run, ddof=1))
    assert "nrmse_last_mean" in fno and "nrmse_last_std" in fno
    assert fno["params"] == 99 and fno["train_seconds"] == pytest.approx(12.0)
    # The baseline row has no size or times of its own; one run has no deviation.
    assert rows[0]["params"] is None and rows[0]["train_seconds"] is None
    assert rows[3]["rmse_std"] is None
