"""Runs of several local processes (`surrogates train --processes N`, JAX's multi-process
runtime with gloo collectives on CPU) against the same run in one process: the same losses,
weights and results, and one copy of every output."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from tiny_runs import experiment_yaml

from surrogates.config import load_experiment
from surrogates.evaluation.results import read_results
from surrogates.launch import PROCESS_ID
from surrogates.runs import read_jsonl
from surrogates.training import OperatorTask
from surrogates.training.checkpoints import Checkpoints

TRAIN = (
    "train:\n  epochs: 8\n  batch_size: 4\n  rollout_steps: 2\n  optimizer: {lr: 0.003}\n"
    "  checkpoint_every: 1\n"
)


def environment(devices: int, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        **more,
    }


def command(*arguments: str, devices: int = 1, timeout: float = 300, **more: str) -> None:
    """`surrogates ARGUMENTS` in a fresh interpreter with `devices` CPU devices a process
    (and the environment variables `more`)."""
    done = subprocess.run(
        [sys.executable, "-m", "surrogates", *arguments],
        env=environment(devices, **more),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def only_run(root: Path) -> Path:
    (folder,) = [p for p in (root / "tiny").iterdir() if p.is_dir()]
    return folder


@pytest.fixture(scope="module")
def single(burgers_file, tmp_path_factory) -> Path:
    """The run in one process with one device."""
    root = tmp_path_factory.mktemp("single")
    path = root / "tiny.yaml"
    path.write_text(experiment_yaml(burgers_file, root / "runs", train=TRAIN))
    command("train", str(path), "-q")
    return only_run(root / "runs")


def losses(run: Path) -> list[float]:
    return [record["train_loss"] for record in read_jsonl(run / "metrics.jsonl")]


@functools.cache
def final_weights(run: Path) -> list[np.ndarray]:
    """The parameters of the run's last checkpoint (read once per run folder)."""
    # In this process alone, whatever the run was.
    experiment = load_experiment(run / "config.yaml", ["run.distributed=false"])
    task = OperatorTask.for_training(experiment)
    checkpoints = Checkpoints(run / "checkpoints")
    try:
        (params, _), _, _ = checkpoints.restore((task.model.params, task.model.rest))
    finally:
        checkpoints.close()
    return [np.asarray(leaf) for leaf in jax.tree.leaves(params)]


def same_run(run: Path, single: Path) -> None:
    """`run` has the losses, final weights, results and files of `single`, each output once."""
    # One log line per epoch (not one per process), the same losses.
    np.testing.assert_allclose(losses(run), losses(single), rtol=1e-5)
    for ours, theirs in zip(final_weights(run), final_weights(single), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    expected = read_results(single / "eval.nc")["nrmse"].values
    np.testing.assert_allclose(read_results(run / "eval.nc")["nrmse"].values, expected, rtol=1e-4)
    names = sorted(p.name for p in run.iterdir())
    assert names == sorted(p.name for p in single.iterdir())
    assert json.loads((run / "data.json").read_text()) == json.loads(
        (single / "data.json").read_text()
    )
    assert not [p for p in run.rglob(".*.tmp")]


def worker_pid(launcher: int, index: int) -> int | None:
    """The pid of worker `index` among the children of process `launcher`, if started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            variables = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if parent == launcher and f"{PROCESS_ID}={index}".encode() in variables:
            return int(entry.name)
    return None


def test_a_killed_worker_stops_the_run_which_resumes_with_one_or_two_processes(
    single, burgers_file, tmp_path
):
    """Two processes of one device; worker 1 killed after the first epoch: the launcher stops
    worker 0 and names worker 1 in one line; the run then resumes exactly, with 1 process or
    with 2."""
    path = tmp_path / "tiny.yaml"
    path.write_text(experiment_yaml(burgers_file, tmp_path / "runs", train=TRAIN))
    launcher = subprocess.Popen(
        [sys.executable, "-m", "surrogates", "train", str(path), "-q", "--processes", "2"],
        env=environment(1),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((tmp_path / "runs").glob("tiny/*/metrics.jsonl"))
        if logs and logs[0].read_text().strip():
            break
        time.sleep(0.01)
    os.kill(worker_pid(launcher.pid, 1), signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == 2
    lines = [line for line in stderr.splitlines() if line.startswith("surrogates train:")]
    assert lines == [
        "surrogates train: error: worker 1 of 2 was killed by SIGKILL; the other workers "
        "were stopped"
    ]
    run = only_run(tmp_path / "runs")
    assert len(losses(run)) < 8
    again = tmp_path / "again"
    shutil.copytree(run, again)
    command("train", "--resume", str(run), "-q")
    command("train", "--resume", str(again), "-q", "--processes", "2")
    same_run(run, single)
    same_run(again, single)


# Loaded by every worker's interpreter at start-up (`sitecustomize` on PYTHONPATH): logs the
# windows the process reads to `reads-<its SLURM rank>.json` when it exits.
COUNT_READS = """
import atexit, json, os
from surrogates.data.dataset import TrajectoryDataset
reads, read_window = [], TrajectoryDataset.read_window
def counted(self, i, start, length):
    reads.append([i, start, length])
    return read_window(self, i, start, length)
TrajectoryDataset.read_window = counted
name = f"reads-{os.environ['SLURM_PROCID']}.json"
atexit.register(lambda: open(os.path.join(os.path.dirname(__file__), name), "w").write(
    json.dumps(reads)))
"""


def test_two_processes_of_two_devices_run_a_suite_as_one_process_and_write_once(
    single, burgers_file, tmp_path
):
    """`benchmark --processes 2`, each process with two devices: the run is the single
    process's (losses, weights, results), each output written once, one comparison."""
    path = tmp_path / "tiny.yaml"
    path.write_text(experiment_yaml(burgers_file, tmp_path / "runs", train=TRAIN))
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: pair\nroot: {tmp_path / 'runs'}\nexperiments:\n  - {path}\n")
    command("benchmark", str(suite), "-q", "--processes", "2", devices=2)
    same_run(only_run(tmp_path / "runs"), single)
    (comparison,) = (tmp_path / "runs" / "suites" / "pair").iterdir()
    assert sorted(p.name for p in comparison.iterdir()) == ["comparison.csv", "comparison.md"]


def slurm_job_id() -> str:
    """A job id for which JAX's SLURM port (61440 + id mod 4096) is free here."""
    for port in range(61440, 65536):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return str(port - 61440)
    raise RuntimeError("no free port in 61440..65535")


def test_run_distributed_joins_a_cluster_as_srun_starts_it_each_reading_its_windows(
    single, burgers_file, tmp_path
):
    """`run.distributed: true` in two processes given SLURM's variables, as `srun` starts
    them on a node, on the lazy path (a tiny `data.memory_gb`): JAX finds the cluster
    itself, each process reads exactly the windows of its half of every batch, and the run is
    the single process's (on the device path)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(COUNT_READS)
    path = tmp_path / "tiny.yaml"
    text = experiment_yaml(burgers_file, tmp_path / "runs", train=TRAIN)
    path.write_text(text.replace("  history: 3\n", "  history: 3\n  memory_gb: 1.0e-9\n"))
    pythonpath = os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))
    job = slurm_job_id()
    train = [sys.executable, "-m", "surrogates", "train", str(path), "-q"]
    tasks = [
        subprocess.Popen(
            [*train, "-o", "run.distributed=true"],
            env=environment(
                1,
                SLURM_JOB_ID=job,
                SLURM_STEP_NODELIST="localhost",
                SLURM_NTASKS="2",
                SLURM_PROCID=str(rank),
                SLURM_LOCALID="0",
                JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
                PYTHONPATH=pythonpath,
            ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        errors = [task.communicate(timeout=240)[1] for task in tasks]
    finally:
        for task in tasks:
            task.kill()
    assert [task.returncode for task in tasks] == [0, 0], errors
    same_run(only_run(tmp_path / "runs"), single)
    # The windows the sampler draws, rows 0-1 of each batch for process 0, rows 2-3 for 1.
    task = OperatorTask.for_training(load_experiment(path))
    train, window = task.data.splits.train, task.sampler.window
    for k in (0, 1):
        expected = [
            [int(train[r]), int(s), window]
            for epoch in range(8)
            for rows, starts in zip(*task.sampler.epoch(epoch), strict=True)
            for r, s in zip(rows[2 * k : 2 * k + 2], starts[2 * k : 2 * k + 2], strict=True)
        ]
        assert json.loads((hooks / f"reads-{k}.json").read_text()) == expected
