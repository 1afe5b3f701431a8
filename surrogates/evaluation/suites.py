"""Benchmark suites: train and evaluate several experiments, then compare them in one table.

A suite is YAML:

    name: smoke
    overrides: ["train.epochs=2"]          # applied to every experiment (optional)
    experiments:
      - experiments/quickstart.yaml
      - path: experiments/pdebench/burgers_fno.yaml
        overrides: ["train.batch_size=16"]

Paths are relative to the working folder. The comparison (`comparison.md`, `comparison.csv`)
goes to a new `runs/suites/<name>/<timestamp>/` folder and lists each experiment's model and
its persistence baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from rich.console import Console

from surrogates.atomic import write_text
from surrogates.config import load_experiment
from surrogates.errors import ConfigError
from surrogates.evaluation.results import comparison_rows, read_results
from surrogates.evaluation.tables import markdown_table, rich_table, write_csv
from surrogates.runs import new_folder
from surrogates.validation import StrictModel, load_yaml, validate


class SuiteEntry(StrictModel):
    path: str
    overrides: list[str] = Field(default_factory=list)


class Suite(StrictModel):
    name: str
    experiments: Annotated[list[str | SuiteEntry], Field(min_length=1)]
    overrides: list[str] = Field(default_factory=list)
    root: str = "runs"

    def entries(self) -> list[SuiteEntry]:
        return [e if isinstance(e, SuiteEntry) else SuiteEntry(path=e) for e in self.experiments]


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    data = load_yaml(path, ConfigError)
    data.setdefault("name", Path(path).stem)
    suite = validate(Suite, data, str(path), ConfigError)
    extra = list(overrides or [])
    return suite.model_copy(update={"overrides": [*suite.overrides, *extra]})


def run_suite(
    path: str | Path, *, overrides: list[str] | None = None, progress: bool = True
) -> Path:
    """Train and evaluate every experiment of the suite; returns the comparison folder.

    Every experiment is validated before any training starts, so a typo in the last one does
    not cost the time of the first ones.
    """
    from surrogates.training.engine import train

    suite = load_suite(path, overrides)
    experiments = [
        load_experiment(entry.path, [*suite.overrides, *entry.overrides])
        for entry in suite.entries()
    ]
    console = Console(stderr=True)
    results = {}
    for experiment in experiments:
        console.print(f"[bold]{suite.name}[/bold]: {experiment.name}")
        folder = train(experiment, progress=progress)
        # The same experiment may be listed twice with other overrides: keep both rows.
        label, k = experiment.name, 1
        while label in results:
            k += 1
            label = f"{experiment.name} ({k})"
        results[label] = read_results(folder / "eval.nc")
    rows = comparison_rows(results)
    out = new_folder(Path(suite.root) / "suites" / suite.name)
    write_text(out / "comparison.md", f"# {suite.name}\n\n{markdown_table(rows)}\n")
    write_csv(rows, out / "comparison.csv")
    # The terminal shows the headline columns; the files hold every metric.
    shown = [c for c in ("experiment", "model", "nrmse", "nrmse_last", "params") if c in rows[0]]
    Console(stderr=True).print(rich_table(rows, f"suite {suite.name}", columns=shown))
    return out
