"""What a person reads of an evaluation: `summary.md` and the table printed in the terminal.

The summary holds the pooled metrics of every model (means over samples, steps and channels,
plus the last step's nRMSE) and, when the data has several PDE-parameter values, one row per
value with whether the model saw it in training.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr
from rich.console import Console

from surrogates.atomic import write_text
from surrogates.evaluation.results import case_rows, summary_rows
from surrogates.evaluation.tables import markdown_table, rich_table


def write_summary(path: Path, results: xr.Dataset, *, title: str, description: str) -> None:
    """`summary.md`: `description`, the pooled table, and the per-value table if any."""
    text = (
        f"# {title}\n\n{description} Metrics are averaged over samples, steps and channels; "
        "`nrmse_last` is the last step's nRMSE.\n\n"
        f"{markdown_table(summary_rows(results))}\n"
    )
    cases = case_rows(results)
    if cases:
        text += (
            "\n## Per PDE-parameter value\n\nnRMSE over the trajectories of each value; "
            "`seen`: whether the training data had it.\n\n"
            f"{markdown_table(cases)}\n"
        )
    write_text(path, text)


def print_summary(console: Console, results: xr.Dataset, title: str) -> None:
    """The pooled metrics, one row per metric (readable in an 80-column terminal), and the
    per-value nRMSE."""
    rows = summary_rows(results)
    by_metric = [
        {"metric": key, **{row["model"]: row[key] for row in rows}}
        for key in rows[0]
        if key != "model"
    ]
    console.print(rich_table(by_metric, title))
    cases = case_rows(results, last=False)
    if cases:
        console.print(rich_table(cases, "nRMSE per PDE-parameter value"))
