"""The `surrogates` command sets the huge-page tunable for itself (see `surrogates.cli`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from surrogates.cli import HUGE_PAGES, restart_with_huge_pages


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, path, arguments, environ):
        self.calls.append((path, arguments, environ))


def test_restarts_with_the_tunable_when_it_is_unset():
    execve = Recorder()
    restart_with_huge_pages(
        ["train", "x.yaml"], {"HOME": "/h"}, execve=execve, system="linux", libc="glibc"
    )
    ((path, arguments, environ),) = execve.calls
    assert path == sys.executable
    assert arguments == [sys.executable, "-m", "surrogates", "train", "x.yaml"]
    assert environ == {"HOME": "/h", "GLIBC_TUNABLES": HUGE_PAGES}


@pytest.mark.parametrize(
    ("environ", "system", "libc"),
    [
        ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "linux", "glibc"),  # the user's own
        ({}, "darwin", ""),
        ({}, "linux", ""),  # musl and other C libraries
    ],
)
def test_leaves_the_process_alone_otherwise(environ, system, libc):
    execve = Recorder()
    restart_with_huge_pages(["models"], environ, execve=execve, system=system, libc=libc)
    assert execve.calls == []


@pytest.mark.skipif(sys.platform != "linux", reason="glibc tunables are a Linux matter")
@pytest.mark.parametrize("user_value", [None, "glibc.malloc.hugetlb=0"])
def test_the_command_runs_with_the_tunable(tmp_path, user_value):
    # Every Python process of the command reports the variable it started with.
    (tmp_path / "sitecustomize.py").write_text(
        "import os, sys\nprint('started with', os.environ.get('GLIBC_TUNABLES'), file=sys.stderr)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    environ["PYTHONPATH"] = os.pathsep.join([str(tmp_path), environ.get("PYTHONPATH", "")])
    if user_value is not None:
        environ["GLIBC_TUNABLES"] = user_value
    result = subprocess.run(
        [sys.executable, "-m", "surrogates", "models"], env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "fno" in result.stdout
    started = [line for line in result.stderr.splitlines() if line.startswith("started with")]
    if user_value is None:
        assert started == ["started with None", f"started with {HUGE_PAGES}"]
    else:
        assert started == [f"started with {user_value}"]
