"""Figures: the PNG files written and the data the Axes hold."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from surrogates.evaluation.plots import (
    DPI,
    error_vs_step_figure,
    plot_error_vs_step,
    plot_snapshots,
    snapshots_figure,
)
from surrogates.evaluation.results import metrics_dataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def results(values: dict[str, np.ndarray], times: np.ndarray | None = None):
    """A results dataset with one metric, nrmse, from (S, C) arrays per model."""
    return metrics_dataset(
        {label: {"nrmse": array} for label, array in values.items()},
        channels=["u", "v"],
        times=times,
    )


def fields(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=shape).astype(np.float32)
    return truth + 0.1 * rng.normal(size=shape).astype(np.float32), truth


def image_axes(figure: Figure):
    """The axes that show an image, in reading order; colour bars come after and hold none."""
    return [axes for axes in figure.axes if axes.images]


def assert_png_of(path, figure: Figure):
    """`path` is a PNG whose pixel size is that of `figure` at the plots' DPI."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    width, height = figure.get_size_inches() * DPI
    assert matplotlib.image.imread(path).shape == (round(height), round(width), 4)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_error_vs_step_lines_hold_channel_means(tmp_path):
    rng = np.random.default_rng(0)
    values = {"fno": rng.uniform(0.1, 1, (5, 2)), "unet": rng.uniform(0.1, 1, (5, 2))}
    ds = results(values)
    axes = error_vs_step_figure(ds).axes[0]
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["fno", "unet"]
    for line, array in zip(lines, values.values(), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4, 5])
        np.testing.assert_allclose(line.get_ydata(), array.mean(axis=1))
    assert axes.get_yscale() == "log"
    assert axes.get_xlabel() == "rollout step"
    path = plot_error_vs_step(ds, tmp_path / "error.png")
    assert path == tmp_path / "error.png"
    assert_png_of(path, error_vs_step_figure(ds))


def test_error_vs_step_uses_time_and_a_linear_axis_for_non_positive_values():
    values = {"fno": np.array([[0.0, 0.0], [0.1, 0.3], [0.2, 0.4]])}
    times = np.array([0.5, 1.0, 1.5])
    axes = error_vs_step_figure(results(values, times)).axes[0]
    (line,) = axes.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), times)
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.2, 0.3])
    assert axes.get_yscale() == "linear"
    assert axes.get_xlabel() == "time"


def test_error_vs_step_names_an_unknown_metric():
    with pytest.raises(ValueError, match=r"no metric 'vrmse'.*\['nrmse'\]"):
        error_vs_step_figure(results({"fno": np.ones((2, 2))}), "vrmse")


def test_snapshots_1d_show_space_time_images(tmp_path):
    prediction, truth = fields((6, 16, 2))
    x = np.linspace(0.0, 1.5, 16)
    figure = snapshots_figure(prediction, truth, channel_names=["u", "v"], coords={"x": x})
    panels = image_axes(figure)
    assert len(panels) == 6
    for c in range(2):
        images = [axes.images[0] for axes in panels[3 * c : 3 * c + 3]]
        expected = (prediction[..., c], truth[..., c], np.abs(prediction - truth)[..., c])
        for image, array in zip(images, expected, strict=True):
            np.testing.assert_array_equal(image.get_array(), array)
        both = np.concatenate([prediction[..., c], truth[..., c]])
        assert images[0].get_clim() == images[1].get_clim() == (both.min(), both.max())
        # Cell edges half a spacing beyond the centres; steps 1..6 centred on their rows.
        np.testing.assert_allclose(images[0].get_extent(), [-0.05, 1.55, 0.5, 6.5])
    assert [axes.get_title() for axes in panels[:3]] == ["u: prediction", "u: truth", "u: |error|"]
    assert len(figure.axes) == 6 + 4
    path = plot_snapshots(prediction, truth, tmp_path / "burgers.png", channel_names=["u", "v"])
    assert_png_of(path, figure)


def test_snapshots_2d_show_the_default_steps(tmp_path):
    prediction, truth = fields((5, 8, 6, 2))
    figure = snapshots_figure(prediction, truth, channel_names=["u", "v"])
    panels = image_axes(figure)
    assert len(panels) == 2 * 3 * 3
    steps = [0, 2, 4]
    for c in range(2):
        for r, field in enumerate((prediction, truth, np.abs(prediction - truth))):
            for s, step in enumerate(steps):
                image = panels[(3 * c + r) * 3 + s].images[0]
                np.testing.assert_array_equal(image.get_array(), field[step, ..., c].T)
    assert [axes.get_title() for axes in panels[:3]] == ["step 1", "step 3", "step 5"]
    shown = np.concatenate([prediction[steps, ..., 0], truth[steps, ..., 0]])
    assert panels[0].images[0].get_clim() == (shown.min(), shown.max())
    assert panels[3].images[0].get_clim() == panels[0].images[0].get_clim()
    # One channel keeps the rendering quick.
    one = {"channel_names": ["u"]}
    path = plot_snapshots(prediction[..., :1], truth[..., :1], tmp_path / "2d.png", **one)
    assert_png_of(path, snapshots_figure(prediction[..., :1], truth[..., :1], **one))


def test_snapshots_2d_at_chosen_steps_with_times():
    prediction, truth = fields((4, 5, 7, 1))
    t = np.array([0.1, 0.2, 0.3, 0.4])
    figure = snapshots_figure(
        prediction, truth, channel_names=["h"], coords={"t": t}, steps=[-1, 1]
    )
    panels = image_axes(figure)
    assert len(panels) == 3 * 2
    assert [axes.get_title() for axes in panels[:2]] == ["t = 0.4", "t = 0.2"]
    np.testing.assert_array_equal(panels[0].images[0].get_array(), prediction[3, ..., 0].T)
    np.testing.assert_array_equal(panels[3].images[0].get_array(), truth[1, ..., 0].T)


def test_snapshots_3d_show_the_middle_slice(tmp_path):
    prediction, truth = fields((3, 6, 5, 7, 1))
    figure = snapshots_figure(prediction, truth, channel_names=["rho"])
    panels = image_axes(figure)
    assert len(panels) == 3 * 3
    for s in range(3):
        np.testing.assert_array_equal(panels[s].images[0].get_array(), prediction[s, :, :, 3, 0].T)
        np.testing.assert_array_equal(panels[3 + s].images[0].get_array(), truth[s, :, :, 3, 0].T)
    assert figure.get_suptitle() == "slice z index 3"
    z = np.linspace(0.0, 3.0, 7)
    path = plot_snapshots(
        prediction, truth, tmp_path / "3d.png", channel_names=["rho"], coords={"z": z}
    )
    assert_png_of(path, figure)


@pytest.mark.parametrize("shape", [(6, 16, 2), (5, 8, 6, 2), (3, 6, 5, 7, 2)])
def test_snapshots_name_the_trajectory_and_label_the_colour_bars(shape):
    prediction, truth = fields(shape)
    title = "burgers.hdf5 trajectory 3 (Nu = 0.05)"
    figure = snapshots_figure(prediction, truth, channel_names=["u", "v"], title=title)
    assert figure.get_suptitle().startswith(title)
    bars = [axes.get_ylabel() for axes in figure.axes if not axes.images]
    assert bars == ["u", "|error| of u", "v", "|error| of v"]


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((4, 2), {}, r"\(S, \*X, C\)"),
        ((2, 3, 3, 3, 3, 1), {}, r"\(S, \*X, C\)"),
        ((2, 0, 1), {}, r"non-empty"),
        ((2, 8, 1), {"channel_names": ["u", "v"]}, r"2 channel names"),
        ((2, 8, 1), {"coords": {"x": np.arange(7)}}, r"coords\['x'\] must have shape \(8,\)"),
        ((2, 8, 1), {"coords": {"y": np.arange(8)}}, r"coords \['y'\] do not apply"),
        ((2, 8, 1), {"steps": [0]}, r"steps select frames of 2D/3D"),
        ((3, 4, 4, 1), {"steps": [3]}, r"steps \[3\] are outside"),
        ((3, 4, 4, 1), {"steps": []}, r"at least one step"),
    ],
)
def test_bad_snapshot_inputs_raise(shape, kwargs, message):
    prediction, truth = fields(shape)
    arguments = {"channel_names": ["u"], **kwargs}
    with pytest.raises(ValueError, match=message):
        snapshots_figure(prediction, truth, **arguments)


def test_prediction_and_truth_shapes_must_agree():
    with pytest.raises(ValueError, match=r"same shape.*\(3, 8, 1\).*\(3, 9, 1\)"):
        snapshots_figure(np.zeros((3, 8, 1)), np.zeros((3, 9, 1)), channel_names=["u"])


def test_failed_saves_leave_no_file(tmp_path, monkeypatch):
    ds = results({"fno": np.ones((2, 2))})
    with pytest.raises(ValueError, match="Format 'nc' is not supported"):
        plot_error_vs_step(ds, tmp_path / "error.nc")
    assert list(tmp_path.iterdir()) == []

    def half_save(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(PNG_SIGNATURE)
        raise RuntimeError("interrupted")

    monkeypatch.setattr(Figure, "savefig", half_save)
    with pytest.raises(RuntimeError, match="interrupted"):
        plot_snapshots(*fields((2, 8, 1)), tmp_path / "s.png", channel_names=["u"])
    assert list(tmp_path.iterdir()) == []
