"""`surrogates inspect`: what a benchmark file holds, with statistics streamed per trajectory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.console import Group
from rich.progress import track
from rich.table import Table
from rich.text import Text

from surrogates.data.dataset import TrajectoryDataset, open_dataset


@dataclass
class ChannelStats:
    """Running statistics of one channel over finite values (Chan et al.'s merge of moments)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = np.inf
    maximum: float = -np.inf
    non_finite: int = 0

    def update(self, values: np.ndarray) -> None:
        """Merge in a batch of values `(M,)`; NaN/Inf are counted, not averaged."""
        finite = np.isfinite(values)
        self.non_finite += int(values.size - finite.sum())
        values = values[finite].astype(np.float64)
        if values.size == 0:
            return
        n, mean = values.size, float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else float("nan")


@dataclass
class Report:
    """Everything `surrogates inspect` prints."""

    files: tuple[str, ...]
    layout: str
    shape: tuple[int, ...]
    field_names: tuple[str, ...]
    static_names: tuple[str, ...]
    boundary: tuple[str, ...]
    coords: dict[str, tuple[int, float, float]]
    params: dict[str, np.ndarray]
    fields: dict[str, ChannelStats] = field(default_factory=dict)
    static: dict[str, ChannelStats] = field(default_factory=dict)
    # The first NaN/Inf met, as training's data loading names it (`TrajectoryDataset.locate`).
    first_non_finite: str | None = None

    @property
    def non_finite(self) -> int:
        return sum(s.non_finite for s in (*self.fields.values(), *self.static.values()))

    def non_finite_summary(self) -> str:
        """One line naming the first trajectory with NaN/Inf and the count in each channel."""
        bad = {**self.fields, **self.static}
        named = ", ".join(f"'{k}' ({s.non_finite})" for k, s in bad.items() if s.non_finite)
        return (
            f"{self.first_non_finite}: expected finite values, found NaN/Inf "
            f"(the first of {self.non_finite}, by channel: {named})"
        )


def _stream(ds: TrajectoryDataset, report: Report) -> None:
    report.fields = {name: ChannelStats() for name in ds.field_names}
    report.static = {name: ChannelStats() for name in ds.static_names}
    for i in track(range(len(ds)), description="statistics", transient=True):
        _add_trajectory(ds, i, report, static=False)
        if ds.static is not None:
            _add_trajectory(ds, i, report, static=True)


def _add_trajectory(ds: TrajectoryDataset, i: int, report: Report, static: bool) -> None:
    """Merge trajectory `i`'s fields `(T, *X, C)` (or static inputs `(*X, Cs)`) into the
    report, noting where the first NaN/Inf is."""
    values = ds.read_unchecked(i, static=static)
    stats = report.static if static else report.fields
    for c, channel in enumerate(stats.values()):
        before = channel.non_finite
        channel.update(values[..., c].ravel())
        if channel.non_finite > before and report.first_non_finite is None:
            report.first_non_finite = ds.locate(i, c, static=static)


def inspect_files(
    paths: Sequence[str | os.PathLike], stride_t: int = 1, stride_x: int = 1
) -> Report:
    """Open `paths` as one dataset and summarise it, reading one trajectory at a time."""
    with open_dataset(paths, stride_t=stride_t, stride_x=stride_x) as ds:
        report = Report(
            files=tuple(str(p) for p in ds.files),
            layout=ds.layout,
            shape=ds.fields.shape,
            field_names=ds.field_names,
            static_names=ds.static_names,
            boundary=ds.boundary,
            coords={k: (len(v), float(v.min()), float(v.max())) for k, v in ds.coords.items()},
            params=ds.params,
        )
        _stream(ds, report)
    return report


def _stats_table(title: str, stats: dict[str, ChannelStats]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("channel", "mean", "std", "min", "max", "NaN/Inf"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for name, s in stats.items():
        flag = f"[bold red]{s.non_finite}[/]" if s.non_finite else "0"
        table.add_row(name, *(f"{v:.6g}" for v in (s.mean, s.std, s.minimum, s.maximum)), flag)
    return table


def _params_table(params: dict[str, np.ndarray]) -> Table:
    table = Table(title="parameters", title_justify="left")
    for column in ("name", "values", "trajectories per value"):
        table.add_column(column)
    for name, values in params.items():
        unique, counts = np.unique(values, return_counts=True)
        if len(unique) <= 12:
            shown = ", ".join(f"{v:.6g}" for v in unique)
        else:
            shown = f"{len(unique)} values in [{unique[0]:.6g}, {unique[-1]:.6g}]"
        uniform = (counts == counts[0]).all()
        per_value = str(counts[0]) if uniform else f"{counts.min()}-{counts.max()}"
        table.add_row(name, shown, per_value)
    return table


def render_report(report: Report) -> Group:
    """The report as rich tables: overview, coordinates, parameters, channel statistics."""
    overview = Table(show_header=False, title="dataset", title_justify="left")
    overview.add_row("files", "\n".join(report.files))
    overview.add_row("layout", report.layout)
    overview.add_row("fields (N, T, *X, C)", str(report.shape))
    overview.add_row("channels", ", ".join(report.field_names))
    if report.static_names:
        overview.add_row("static inputs", ", ".join(report.static_names))
    overview.add_row("boundary", ", ".join(report.boundary))
    if report.first_non_finite is not None:
        overview.add_row("first NaN/Inf", Text(report.first_non_finite, style="bold red"))
    coords = Table(title="coordinates", title_justify="left")
    for column in ("axis", "points", "min", "max"):
        coords.add_column(column)
    for axis, (count, low, high) in report.coords.items():
        coords.add_row(axis, str(count), f"{low:.6g}", f"{high:.6g}")
    parts = [overview, coords]
    if report.params:
        parts.append(_params_table(report.params))
    parts.append(_stats_table("field statistics", report.fields))
    if report.static:
        parts.append(_stats_table("static input statistics", report.static))
    return Group(*parts)
