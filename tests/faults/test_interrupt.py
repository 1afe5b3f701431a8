"""Ctrl-C during training, sent as a terminal sends it (SIGINT to the command's process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from surrogates.runs import read_jsonl


def test_ctrl_c_stops_with_one_line_and_the_run_resumes(make_experiment, tmp_path: Path):
    path = make_experiment()
    # GLIBC_TUNABLES set: the command does not start itself again (see `surrogates.cli`).
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    train = [sys.executable, "-m", "surrogates", "train"]
    process = subprocess.Popen(
        [*train, str(path), "-q", "-o", "train.epochs=1000", "-o", "train.checkpoint_every=1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "runs" / path.stem
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        logs = list(runs.glob("*/metrics.jsonl"))
        if logs and len(read_jsonl(logs[0])) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    (run,) = runs.iterdir()
    (line,) = err.strip().splitlines()
    assert line.startswith("surrogates train: interrupted ")
    assert f"resume with `surrogates train --resume {run}`" in line
    # No temporary checkpoint folder is left, the log is whole, a checkpoint per logged epoch.
    assert not [p for p in (run / "checkpoints").rglob("*") if "tmp" in p.name]
    epochs = [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")]
    assert epochs == list(range(1, len(epochs) + 1))
    saved = max(int(p.name) for p in (run / "checkpoints" / "latest").iterdir())
    assert saved in (epochs[-1], epochs[-1] - 1)

    resumed = subprocess.run(
        [*train, "--resume", str(run), "-q", "-o", f"train.epochs={saved + 1}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    epochs = [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")]
    assert epochs == list(range(1, saved + 2)) and (run / "eval.nc").exists()
