"""Benchmark suites: train and evaluate several experiments, then compare them in one table.

A suite is YAML:

    name: smoke
    overrides: ["train.epochs=2"]          # applied to every experiment (optional)
    seeds: [0, 1, 2]                       # every experiment once per train.seed (optional)
    experiments:
      - experiments/quickstart.yaml
      - path: experiments/pdebench/burgers_fno.yaml
        overrides: ["train.batch_size=16"]
        seeds: [0, 1]                      # this entry's own seeds (optional)

An experiment with `eval.other_files` (files of PDE parameters training never saw, say) gets
one more row per group of files, `<experiment> (<group>)`, scored on all their trajectories.

With `reuse` (`surrogates benchmark SUITE --reuse`), a run already in the experiment's run
folder with the same resolved settings (its `config.yaml`) and a finished evaluation is taken
instead of training again: an interrupted suite continues where it stopped, and adding a seed
trains only that seed.

Paths are relative to the working folder. The comparison (`comparison.md`, `comparison.csv`)
goes to a new `runs/suites/<name>/<timestamp>/` folder and lists each experiment's model and
its persistence baseline, with the parameter count and the training and evaluation wall times.
Without seeds each metric is one column; with seeds each row gives `<metric>_mean` and
`<metric>_std` over the seeds' runs (the split of the data stays the same; `train.seed` sets
the initial weights and the order of the batches).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import xarray as xr
from pydantic import Field, PrivateAttr
from rich.console import Console

from surrogates.atomic import write_text
from surrogates.config import Experiment, load_experiment
from surrogates.errors import ConfigError, Interrupted, SurrogatesError, TrainingError, warn
from surrogates.evaluation.results import comparison_rows, read_results, seed_rows
from surrogates.evaluation.tables import markdown_table, rich_table, write_csv
from surrogates.runs import new_folder
from surrogates.schema import StrictModel, load_yaml, validate
from surrogates.training import sharding
from surrogates.workflow import other_file_groups, train

Seeds = Annotated[list[int], Field(min_length=1)]


class SuiteEntry(StrictModel):
    """One experiment of a suite, with settings of its own."""

    path: str
    """The experiment's YAML file, relative to the working folder."""
    overrides: list[str] = Field(default_factory=list)
    """Dotted `key.path=value` overrides of this experiment, applied after the suite's."""
    seeds: Seeds | None = None
    """This experiment's own `train.seed` values, one run each, in place of the suite's
    `seeds`; None: the suite's."""


class Suite(StrictModel):
    """Experiments to train, evaluate and compare in one table."""

    name: str
    """The suite's name: the comparison goes to `<root>/suites/<name>/<timestamp>/`.
    `load_suite` defaults it to the YAML file's stem."""
    experiments: Annotated[list[str | SuiteEntry], Field(min_length=1)]
    """The experiments, each the path of its YAML file or a mapping with `path`, `overrides`
    and `seeds`; an experiment listed twice gets two rows."""
    overrides: list[str] = Field(default_factory=list)
    """Dotted `key.path=value` overrides applied to every experiment, before each entry's
    own; the command line's `-o` ones come last and win over both."""
    seeds: Seeds | None = None
    """Every experiment once per `train.seed` in the list, each metric then reported as its
    mean and standard deviation over the seeds (the split of the data stays the same); None:
    one run each."""
    root: str = "runs"
    """The folder under which the comparison goes; the experiments' runs go to their own
    `run.root`."""
    # The command line's `-o` overrides (`load_suite`): not a key of the file.
    _command_line: list[str] = PrivateAttr(default_factory=list)

    def entries(self) -> list[SuiteEntry]:
        return [e if isinstance(e, SuiteEntry) else SuiteEntry(path=e) for e in self.experiments]

    def seeded(self) -> bool:
        return self.seeds is not None or any(entry.seeds for entry in self.entries())


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """The suite of a YAML file, with the command line's `overrides` to apply last."""
    data = load_yaml(path, ConfigError)
    data.setdefault("name", Path(path).stem)
    suite = validate(Suite, data, str(path), ConfigError)
    suite._command_line = list(overrides or [])
    return suite


def suite_runs(suite: Suite) -> list[list[Experiment]]:
    """Every entry's experiments, one per seed (one if the entry has no seeds)."""
    runs = []
    for entry in suite.entries():
        seeds = entry.seeds or suite.seeds
        overrides = [*suite.overrides, *entry.overrides, *suite._command_line]
        per_seed = [[f"train.seed={seed}"] for seed in seeds] if seeds else [[]]
        runs.append([load_experiment(entry.path, [*overrides, *more]) for more in per_seed])
    return runs


def run_suite(
    path: str | Path,
    *,
    overrides: list[str] | None = None,
    progress: bool = True,
    reuse: bool = False,
) -> Path:
    """Train and evaluate every experiment of the suite; returns the comparison folder.

    Every experiment is validated before any training starts, so a typo in the last one does
    not cost the time of the first ones. A run that fails while training (a diverging loss, a
    setting the data refutes) is warned of and listed in `comparison.md`; the others go on,
    and the suite then ends with a `TrainingError` naming the failures.
    """
    suite = load_suite(path, overrides)
    planned = suite_runs(suite)
    # With several processes every one trains each run; process 0 alone reads the results
    # (it wrote them) and writes the comparison.
    writer = sharding.is_writer()
    console = Console(stderr=True, quiet=not writer)
    results: dict[str, list[xr.Dataset]] = {}
    failed: list[tuple[str, str]] = []
    for experiments in planned:
        # The same experiment may be listed twice with other overrides: keep both rows.
        name, k = experiments[0].name, 1
        label = name
        while label in results:
            k += 1
            label = f"{name} ({k})"
        results[label] = []
        for experiment in experiments:
            seed = f" (seed {experiment.train.seed})" if suite.seeded() else ""
            console.print(f"[bold]{suite.name}[/bold]: {experiment.name}{seed}")
            folder = finished_run(experiment) if reuse else None
            if folder is not None:
                console.print(f"reusing {folder}")
            try:
                folder = folder or train(experiment, progress=progress)
            except Interrupted:
                raise
            except SurrogatesError as error:
                # A diverging run costs its own row, not the runs before and after it.
                warn(f"{label}{seed}: {error}")
                failed.append((f"{label}{seed}", str(error)))
                continue
            if not writer:
                continue
            results[label].append(read_results(folder / "eval.nc"))
            # `eval.other_files`: a row per group, after the experiment's own.
            for name in other_file_groups(experiment):
                evaluation = folder / "evaluations" / name / "eval.nc"
                results.setdefault(f"{label} ({name})", []).append(read_results(evaluation))
    if not writer:
        return Path(suite.root) / "suites" / suite.name
    results = {label: runs for label, runs in results.items() if runs}
    if not results:
        raise TrainingError(f"{path}: every run of the suite failed (first: {failed[0][1]})")
    out = _write_comparison(suite, results, failed, console)
    if failed:
        raise TrainingError(
            f"{len(failed)} run(s) of the suite failed, the comparison of the others is in "
            f"{out} (first: {failed[0][0]}: {failed[0][1]})"
        )
    return out


def finished_run(experiment: Experiment) -> Path | None:
    """The newest run of `experiment` with the same settings and a finished evaluation (its
    own and that of each `eval.other_files` group), or None."""
    planned = experiment.model_dump(mode="json")
    folder = Path(experiment.run.root) / experiment.name
    candidates = sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []
    for run in candidates:
        outputs = [run / "eval.nc"]
        outputs += [run / "evaluations" / g / "eval.nc" for g in other_file_groups(experiment)]
        if not all(p.exists() for p in outputs) or not (run / "config.yaml").exists():
            continue
        try:
            recorded = load_experiment(run / "config.yaml").model_dump(mode="json")
        except SurrogatesError:
            continue
        if _same_settings(planned, recorded):
            return run
    return None


def _same_settings(planned: object, recorded: object) -> bool:
    """Whether a run recorded with `recorded` ran the `planned` settings: equal everywhere
    except where the plan leaves a value to the data (None), which the record fills in."""
    if planned is None:
        return True
    if isinstance(planned, dict) and isinstance(recorded, dict):
        return planned.keys() == recorded.keys() and all(
            _same_settings(value, recorded[key]) for key, value in planned.items()
        )
    return planned == recorded


def _write_comparison(
    suite: Suite,
    results: dict[str, list[xr.Dataset]],
    failed: list[tuple[str, str]],
    console: Console,
) -> Path:
    """`comparison.md` (with the failed runs listed under the table) and `comparison.csv` in
    a new folder; the headline columns in the terminal."""
    rows = _rows(results, suite.seeded())
    out = new_folder(Path(suite.root) / "suites" / suite.name)
    text = f"# {suite.name}\n\n{markdown_table(rows)}\n"
    if failed:
        listed = "".join(f"- {label}: {error}\n" for label, error in failed)
        text += f"\n## Failed runs (not in the table)\n\n{listed}"
    write_text(out / "comparison.md", text)
    write_csv(rows, out / "comparison.csv")
    # The terminal shows the headline columns; the files hold every metric.
    # Operators are compared by nRMSE; physics runs (no rollouts) by relative L2.
    metric = "nrmse" if any(key.startswith("nrmse") for key in rows[0]) else "rel_l2"
    headline = ("experiment", "model", metric, f"{metric}_last", "params", "train_seconds")
    if suite.seeded():
        headline = ("experiment", "model", "seeds", f"{metric}_mean", f"{metric}_std", "params")
        headline += ("train_seconds",) if metric == "rel_l2" else ()
    shown = [c for c in headline if c in rows[0]]
    console.print(rich_table(rows, f"suite {suite.name}", columns=shown))
    return out


def _rows(results: dict[str, list[xr.Dataset]], seeded: bool) -> list[dict[str, object]]:
    if seeded:
        return seed_rows(results)
    single = {label: runs[0] for label, runs in results.items()}
    rows = comparison_rows(single)
    for row in rows:
        attrs = single[row["experiment"]].attrs
        trained = row["params"] is not None
        for key in ("train_seconds", "eval_seconds"):
            row[key] = float(attrs[key]) if trained and key in attrs else None
    return rows
