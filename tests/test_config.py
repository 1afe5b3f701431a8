"""Experiment configs: defaults, overrides, and one-line errors naming the key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from surrogates.cli import main
from surrogates.config import apply_overrides, load_experiment, resolved_yaml
from surrogates.errors import ConfigError

EXPERIMENTS = Path(__file__).parents[1] / "experiments"

BASE = """\
data:
  files: [some.hdf5]
  history: 4
model:
  name: fno
  n_modes: [8]
  hidden_channels: 16
train:
  epochs: 3
  curriculum: {name: cape_sigmoid}
"""


def write(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_overrides_and_resolved_config(tmp_path: Path):
    path = write(tmp_path)
    experiment = load_experiment(
        path,
        [
            "train.epochs=7",
            "model.hidden_channels=32",
            "train.optimizer.lr=3e-4",
            "eval.metrics=[nrmse]",
        ],
    )
    assert experiment.name == "exp"
    assert experiment.train.epochs == 7 and experiment.train.optimizer.lr == 3e-4
    assert experiment.model.arguments() == {"n_modes": [8], "hidden_channels": 32}
    assert experiment.eval.metrics == ["nrmse"]
    assert experiment.data.split.method == "random" and experiment.train.batch_size == 32
    # The resolved YAML reloads to the same experiment.
    again = tmp_path / "again.yaml"
    again.write_text(resolved_yaml(experiment))
    assert load_experiment(again) == experiment


def test_overrides_create_sections_and_reject_bad_syntax():
    assert apply_overrides({"a": {"b": 1}}, ["a.c.d=[1, 2]", "e=x"]) == {
        "a": {"b": 1, "c": {"d": [1, 2]}},
        "e": "x",
    }
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ConfigError, match="a is not a section"):
        apply_overrides({"a": 3}, ["a.b=1"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.epocs=5"], r"train\.epocs: unknown key \(did you mean 'epochs'\?\)"),
        (["trian.epochs=5"], r"trian: unknown key \(did you mean 'train'\?\)"),
        (["train.epochs=many"], r"train\.epochs: Input should be a valid integer.*found 'many'"),
        (["train.epochs=0"], r"train\.epochs: Input should be greater than or equal to 1"),
        (["train.loss=l1"], r"train\.loss: Input should be 'mse', 'rel_l2' or 'h1'"),
        (["train.curriculum.name=linear"], r"train\.curriculum: linear needs end_epoch"),
        (["eval.metrics=[nrsme]"], r"eval\.metrics\.0: Input should be 'rmse'"),
        (["data.split.val=0.5", "data.split.test=0.5"], r"data\.split: val \+ test must leave"),
        (
            ["train.batch_size=6", "train.micro_batches=4"],
            r"train: micro_batches \(4\) must divide batch_size \(6\)",
        ),
        (
            ["model.n_mode=[8]"],
            r"model\.n_mode: unknown argument of fno \(did you mean 'n_modes'\?\)",
        ),
        (["model.in_channels=3"], r"model\.in_channels: set by the engine from the data"),
        (
            ["model.hidden_channels=wide"],
            r"model\.hidden_channels: Input should be a valid integer",
        ),
        (["model.name=fn0"], r"model\.name: unknown model 'fn0' \(did you mean 'fno'\?\)"),
        (
            ["train.curriculum.warmup_epochs=3"],
            r"train\.curriculum\.warmup_epochs must be below train\.epochs",
        ),
        (["task=operatr"], r"task: unknown task 'operatr' \(did you mean 'operator'\?\)"),
        (["train.select=worst"], r"train\.select: Input should be 'best' or 'last'"),
        (
            ["train.phases=[{epochs: 2}, {epochs: 2}]"],
            r"train: epochs: 3, but the phases add up to 4",
        ),
        (
            ["train.optimizer.name=lbfgs", "train.optimizer.lr=0.1"],
            r"train\.optimizer: lr: does not apply to lbfgs",
        ),
        (
            ["train.optimizer.name=adam", "train.optimizer.memory_size=5"],
            r"train\.optimizer: memory_size: applies to lbfgs only",
        ),
        (
            ["train.phases=[{epochs: 3, optimizer: {name: lbfgs}, schedule: {name: cosine}}]"],
            r"train\.phases\.0: schedule: does not apply to lbfgs",
        ),
        (
            ["train.optimizer.name=lbfgs", "train.schedule.name=cosine"],
            r"train: schedule: does not apply to lbfgs",
        ),
        (
            ["train.schedule.warmup_epochs=2"],
            r"train\.schedule: warmup_epochs: applies to cosine only, not constant",
        ),
        (
            ["train.schedule.name=cosine", "train.schedule.gamma=0.1"],
            r"train\.schedule: gamma: applies to step only, not cosine",
        ),
        (
            ["train.curriculum.end_epoch=3"],
            r"train\.curriculum: end_epoch: applies to linear only, not cape_sigmoid",
        ),
        (
            ["train.curriculum={name: linear, end_epoch: 3, warmup_epochs: 1}"],
            r"train\.curriculum: warmup_epochs: applies to cape_sigmoid only, not linear",
        ),
        (
            ["data.split={method: pdebench, seed: 3}"],
            r"data\.split: seed: applies to random only, not pdebench",
        ),
        (
            ["train.optimizer.name=lbfgs", "train.freeze={module: blocks, epochs: 1}"],
            r"train: freeze: an lbfgs phase cannot hold part of the model still",
        ),
        (
            ["train.freeze={module: blocks, epochs: 3}"],
            r"train: freeze\.epochs must be below train\.epochs",
        ),
        (
            ["model.wrappers=[{multigird: {levels: 1}}]"],
            r"model\.wrappers\.0: unknown wrapper 'multigird' \(did you mean 'multigrid'\?\)",
        ),
        (
            ["model.wrappers=[{multigrid: {levls: 1}}]"],
            r"model\.wrappers\.0\.multigrid\.levls: unknown argument of the multigrid wrapper "
            r"\(did you mean 'levels'\?\)",
        ),
        (
            ["model.wrappers=[{multigrid: {levels: many}}]"],
            r"model\.wrappers\.0\.multigrid\.levels: Input should be a valid integer",
        ),
        (
            ["model.wrappers=[{multigrid: {}, cape: {}}]"],
            r"model: wrappers: each entry is one `kind: \{options\}` mapping",
        ),
        (
            ["model.multigrid.levels=1", "model.wrappers=[{multigrid: {levels: 2}}]"],
            r"model: multigrid: give the patching as a wrappers entry, not both keys",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, overrides, message):
    with pytest.raises(ConfigError, match=rf"exp\.yaml: {message}"):
        load_experiment(write(tmp_path), overrides)


def test_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found"):
        load_experiment(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"data: Field required"):
        load_experiment(write(tmp_path, "model: {name: fno}\n"))


def test_cli_reports_config_errors_in_one_line(tmp_path: Path, capsys):
    assert main(["train", str(write(tmp_path)), "-o", "train.bach_size=4"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "train.bach_size: unknown key (did you mean 'batch_size'?)" in err
    )
    assert main(["train"]) == 2
    assert "give an experiment file or --resume RUN_DIR" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "benchmark"])
def test_a_bad_config_under_processes_is_told_once_before_any_worker_starts(
    tmp_path: Path, capsys, monkeypatch, command: str
):
    import surrogates.launch

    def no_workers(*args, **kwargs):
        raise AssertionError("workers started for a bad config")

    monkeypatch.setattr(surrogates.launch, "launch", no_workers)
    path = write(tmp_path)
    if command == "benchmark":
        path = tmp_path / "suite.yaml"
        path.write_text(f"experiments: [{write(tmp_path)}]\n")
    argv = [command, str(path), "-o", "train.bach_size=4", "--processes", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.bach_size: unknown key" in err


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_validate(path: Path):
    if path.parent.name == "suites":
        from surrogates.suites import load_suite

        suite = load_suite(path)
        for entry in suite.entries():
            load_experiment(Path(entry.path), [*suite.overrides, *entry.overrides])
    else:
        experiment = load_experiment(path)
        # The name defaults to the file's stem; experiments of one family in one folder name
        # themselves (darcy/fno.yaml is darcy_fno) so their runs do not mix.
        expected = yaml.safe_load(path.read_text()).get("name", path.stem)
        assert yaml.safe_load(resolved_yaml(experiment))["name"] == expected


def test_optimizer_phases_give_the_epochs_and_the_resolved_config_reloads(tmp_path: Path):
    phases = "[{epochs: 2, optimizer: {lr: 0.01}}, {epochs: 3, optimizer: {name: lbfgs}}]"
    text = BASE.replace("  epochs: 3\n", f"  phases: {phases}\n")
    experiment = load_experiment(write(tmp_path, text))
    assert experiment.train.epochs == 5
    assert [p.optimizer.name for p in experiment.train.phase_list()] == ["adam", "lbfgs"]
    again = tmp_path / "again.yaml"
    again.write_text(resolved_yaml(experiment))
    assert load_experiment(again) == experiment


def test_the_former_multigrid_key_is_a_one_wrapper_stack(tmp_path: Path):
    experiment = load_experiment(
        write(tmp_path), ["model.multigrid.levels=1", "model.multigrid.padding=0.125"]
    )
    assert experiment.model.wrapper_list() == [("multigrid", {"levels": 1, "padding": 0.125})]
    assert "multigrid" not in experiment.model.arguments()
    assert "wrappers" in yaml.safe_load(resolved_yaml(experiment))["model"]


def test_reading_a_config_does_not_import_jax():
    import subprocess
    import sys

    code = (
        "import sys; import surrogates.config as c; "
        "c.parse_experiment; print(sorted(m for m in sys.modules if m.split('.')[0] == 'jax'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
