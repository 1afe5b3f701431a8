"""The local launcher: N workers with their coordinates, and a failed worker taking the others
down with one line naming it (plain Python workers: no JAX needed to test the launcher)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from surrogates.errors import TrainingError
from surrogates.launch import COORDINATOR, PROCESS_ID, PROCESSES, join_from_environment, launch


def worker(tmp_path: Path, body: str) -> list[str]:
    """A worker that writes its pid and coordinates to `tmp_path/<index>.json`, then runs
    `body` (with `index` defined)."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, os, signal, sys, time\n"
        f"index = int(os.environ[{PROCESS_ID!r}])\n"
        "seen = {k: os.environ[k] for k in "
        f"({COORDINATOR!r}, {PROCESSES!r}, {PROCESS_ID!r})}}\n"
        "seen['pid'] = os.getpid()\n"
        f"open(os.path.join({str(tmp_path)!r}, f'{{index}}.json'), 'w').write(json.dumps(seen))\n"
        + body
    )
    return [sys.executable, str(script)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_worker_gets_its_index_the_count_and_one_coordinator(tmp_path):
    launch(worker(tmp_path, ""), 3)
    seen = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(3)]
    assert [s[PROCESS_ID] for s in seen] == ["0", "1", "2"]
    assert {s[PROCESSES] for s in seen} == {"3"}
    (address,) = {s[COORDINATOR] for s in seen}
    host, port = address.split(":")
    assert host == "127.0.0.1" and 0 < int(port) < 65536


@pytest.mark.parametrize(
    ("ending", "how"),
    [("sys.exit(3)", "exited with code 3"), ("os.kill(os.getpid(), 9)", "was killed by SIGKILL")],
)
def test_a_failed_worker_stops_the_others_and_is_named(tmp_path, ending, how):
    body = f"if index == 1:\n    time.sleep(0.5)\n    {ending}\ntime.sleep(60)\n"
    started = time.monotonic()
    with pytest.raises(TrainingError, match=rf"^worker 1 of 3 {how}; the other workers were"):
        launch(worker(tmp_path, body), 3)
    assert time.monotonic() - started < 30
    for index in (0, 2):
        pid = json.loads((tmp_path / f"{index}.json").read_text())["pid"]
        assert not alive(pid)


def test_outside_a_launched_worker_nothing_is_joined():
    assert join_from_environment({}) is False
