"""Benchmark suites with seeds: every experiment once per `train.seed`, rows of means and
sample standard deviations, with parameter counts and wall times."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from surrogates.cli import main
from surrogates.config import load_experiment
from surrogates.evaluation.results import read_results, summary_rows


def test_a_suite_with_seeds_reports_means_and_deviations(make_experiment, tmp_path, capsys):
    first = make_experiment("first")
    second = make_experiment("second", model="model:\n  name: persistence\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: seeded\nroot: {tmp_path / 'runs'}\noverrides: [train.epochs=1]\nseeds: [0, 1]\n"
        f"experiments:\n  - {first}\n  - path: {second}\n    seeds: [3]\n"
    )
    assert main(["benchmark", str(suite), "-q"]) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    with (out / "comparison.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["experiment"], r["model"], r["seeds"]) for r in rows] == [
        ("first", "fno", "2"),
        ("first", "persistence", "2"),
        ("second", "persistence", "1"),
    ]
    assert {"nrmse_mean", "nrmse_std", "params", "train_seconds", "eval_seconds"} <= set(rows[0])

    # The means and deviations are those of the runs, one per seed, with their seed.
    runs = sorted((tmp_path / "runs" / "first").iterdir())
    results = [read_results(run / "eval.nc") for run in runs]
    seeds = [load_experiment(run / "config.yaml").train.seed for run in runs]
    assert sorted(seeds) == [0, 1]
    nrmse = [summary_rows(ds)[0]["nrmse"] for ds in results]
    assert float(rows[0]["nrmse_mean"]) == pytest.approx(np.mean(nrmse), rel=1e-9)
    assert float(rows[0]["nrmse_std"]) == pytest.approx(np.std(nrmse, ddof=1), rel=1e-9)
    assert nrmse[0] != nrmse[1]  # the seeds trained differently
    assert int(rows[0]["params"]) == results[0].attrs["parameters"]
    mean_time = np.mean([ds.attrs["train_seconds"] for ds in results])
    assert float(rows[0]["train_seconds"]) == pytest.approx(mean_time)
    # Persistence scores the same test split whatever the seed; one run has no deviation.
    assert float(rows[1]["nrmse_std"]) == 0.0 and rows[2]["nrmse_std"] == ""


def test_a_failing_run_is_listed_and_the_others_go_on(make_experiment, tmp_path, capsys):
    good = make_experiment("good")
    bad = make_experiment("bad")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: mixed\nroot: {tmp_path / 'runs'}\noverrides: [train.epochs=1]\n"
        f"experiments:\n  - path: {bad}\n    overrides: [train.optimizer.lr=0.6]\n  - {good}\n"
    )
    assert main(["benchmark", str(suite), "-q"]) == 2
    err = capsys.readouterr().err
    assert "warning: bad: training diverged: val_nrmse is inf after epoch 1" in err
    (line,) = [line for line in err.splitlines() if line.startswith("surrogates benchmark:")]
    assert "error: 1 run(s) of the suite failed, the comparison of the others is in" in line
    (out,) = (tmp_path / "runs" / "suites" / "mixed").iterdir()
    with (out / "comparison.csv").open() as f:
        assert [r["experiment"] for r in csv.DictReader(f)] == ["good", "good"]
    text = (out / "comparison.md").read_text()
    assert "## Failed runs (not in the table)\n\n- bad: training diverged" in text


def test_reuse_takes_finished_runs_of_the_same_settings_only(make_experiment, tmp_path, capsys):
    """`--reuse` continues a suite: a seed already run is taken, a new seed or a changed
    setting is trained."""
    tiny = make_experiment("tiny")
    suite = tmp_path / "suite.yaml"

    def run(seeds: str, epochs: int) -> Path:
        suite.write_text(
            f"name: again\nroot: {tmp_path / 'runs'}\noverrides: [train.epochs={epochs}]\n"
            f"seeds: {seeds}\nexperiments:\n  - {tiny}\n"
        )
        assert main(["benchmark", str(suite), "-q", "--reuse"]) == 0
        return Path(capsys.readouterr().out.strip().splitlines()[-1])

    runs = tmp_path / "runs" / "tiny"
    first = run("[0]", 1)
    assert len(list(runs.iterdir())) == 1
    second = run("[0, 1]", 1)
    assert len(list(runs.iterdir())) == 2  # only seed 1 trained
    rows = [list(csv.DictReader((out / "comparison.csv").open())) for out in (first, second)]
    assert rows[1][0]["seeds"] == "2"
    run("[0, 1]", 2)  # other settings: both seeds train again
    assert len(list(runs.iterdir())) == 4


def test_a_suite_of_physics_runs_compares_their_relative_errors(tmp_path, capsys):
    experiment = tmp_path / "conv.yaml"
    experiment.write_text(
        "name: conv\ntask: physics\nproblem: {name: convection, beta: 1}\n"
        "model: {name: pinn, hidden: 8, layers: 2}\n"
        "train: {epochs: 1, steps_per_epoch: 5, "
        "points: {residual: 64, initial: 16, boundary: 16}}\n"
        f"run: {{root: {tmp_path / 'runs'}}}\n"
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: physics\nroot: {tmp_path / 'runs'}\nseeds: [0, 1]\nexperiments: [{experiment}]\n"
    )
    assert main(["benchmark", str(suite), "-q"]) == 0
    captured = capsys.readouterr()
    out = Path(captured.out.strip().splitlines()[-1])
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    errors = [
        float(read_results(run / "eval.nc")["rel_l2"].squeeze())
        for run in sorted((tmp_path / "runs" / "conv").iterdir())
    ]
    assert [(r["experiment"], r["model"], r["seeds"]) for r in rows] == [("conv", "pinn", "2")]
    assert float(rows[0]["rel_l2_mean"]) == pytest.approx(np.mean(errors), rel=1e-9)
    assert "rel_l2_mean" in captured.err  # the terminal's headline columns


def test_the_command_lines_overrides_win_over_the_suites_and_its_entries(make_experiment, tmp_path):
    from surrogates.suites import load_suite, suite_runs

    path = make_experiment()
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "overrides: [train.epochs=4, train.seed=7]\n"
        f"experiments:\n  - {path}\n  - {{path: {path}, overrides: [train.epochs=3]}}\n"
    )
    plain = [runs[0].train for runs in suite_runs(load_suite(suite))]
    assert [(t.epochs, t.seed) for t in plain] == [(4, 7), (3, 7)]
    given = [runs[0].train for runs in suite_runs(load_suite(suite, ["train.epochs=1"]))]
    assert [(t.epochs, t.seed) for t in given] == [(1, 7), (1, 7)]
