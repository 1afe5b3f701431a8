"""Faults of the data commands as a user meets them: a `surrogates generate` killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py

from surrogates.cli import main
from surrogates.data import open_dataset

# Small, yet several chunks long, so the run is still writing when the temporary appears.
RECIPE = """\
pde: advection
parameters: {beta: [0.4]}
file_name: "advection_beta{beta}.hdf5"
samples: 4
chunk: 1
grid: {cells: 32, x_min: 0.0, x_max: 1.0}
time: {t_end: 0.2, frames: 5}
"""


def kill_once_writing(command: list[str], out: Path, timeout: float = 120.0) -> list[Path]:
    """Run `command`, SIGKILL it as soon as a hidden temporary shows in `out`; returns those."""
    # GLIBC_TUNABLES set: the command does not start itself again (see `surrogates.cli`).
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            temporaries = list(out.glob(".*.tmp"))
            if temporaries:
                process.send_signal(signal.SIGKILL)
                return temporaries
            time.sleep(0.01)
    finally:
        process.kill()
        process.wait()  # reaped: a zombie would still count as a live writer
    raise AssertionError(f"no temporary appeared in {out} while the command ran")


def test_a_killed_generate_leaves_a_temporary_that_the_rerun_removes(tmp_path: Path):
    recipe, out = tmp_path / "recipe.yaml", tmp_path / "out"
    recipe.write_text(textwrap.dedent(RECIPE))
    command = [sys.executable, "-m", "surrogates", "generate", str(recipe), "--out", str(out)]
    (temporary,) = kill_once_writing(command, out)
    target = out / "advection_beta0.4.hdf5"
    assert temporary.exists() and not target.exists()
    assert main(["generate", str(recipe), "--out", str(out)]) == 0
    assert sorted(out.iterdir()) == [target]
    assert open_dataset(target).fields.shape == (4, 5, 32, 1)
    with h5py.File(target) as f:
        assert "generator" in f.attrs
