"""Local multi-process runs: N worker processes on this machine, joined by JAX's runtime.

`launch(command, processes)` starts `command` N times, as `torchrun --nproc-per-node` does,
each with the coordinator's address (a free loopback port), the process count and its own
index in the environment (`worker_environment`); `join_from_environment` in the worker reads
them and calls `jax.distributed.initialize`. A worker that fails takes the others down at once
(otherwise they would wait for it in their next collective until a timeout), and the launcher
says which worker it was and how it ended. Ctrl-C stops every worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

from surrogates.errors import Interrupted, TrainingError

COORDINATOR = "SURROGATES_COORDINATOR"
PROCESSES = "SURROGATES_PROCESSES"
PROCESS_ID = "SURROGATES_PROCESS_ID"
GRACE_SECONDS = 5.0  # how long a stopped worker may take to exit before it is killed


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_environment(index: int, processes: int, port: int) -> dict[str, str]:
    """The variables that make a process worker `index` of `processes`."""
    return {
        COORDINATOR: f"127.0.0.1:{port}",
        PROCESSES: str(processes),
        PROCESS_ID: str(index),
    }


def launch(
    command: Sequence[str],
    processes: int,
    *,
    environ: Mapping[str, str] | None = None,
    poll_seconds: float = 0.1,
) -> None:
    """Run `command` as `processes` workers until all succeed. A worker that fails stops the
    others and raises `TrainingError` naming it; Ctrl-C stops them all (`Interrupted`)."""
    if processes < 1:
        raise TrainingError(f"--processes: {processes}; give at least 1")
    environ = os.environ if environ is None else environ
    port = free_port()
    workers = [
        subprocess.Popen(
            list(command), env={**environ, **worker_environment(index, processes, port)}
        )
        for index in range(processes)
    ]
    try:
        _wait(workers, poll_seconds)
    except KeyboardInterrupt:
        _stop(workers)
        raise Interrupted("interrupted; every worker was stopped") from None


def _wait(workers: list[subprocess.Popen], poll_seconds: float) -> None:
    while True:
        codes = [worker.poll() for worker in workers]
        for index, code in enumerate(codes):
            if code not in (None, 0):
                _stop(workers)
                raise TrainingError(
                    f"worker {index} of {len(workers)} {_how_it_ended(code)}; "
                    "the other workers were stopped"
                )
        if all(code == 0 for code in codes):
            return
        time.sleep(poll_seconds)


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _stop(workers: list[subprocess.Popen]) -> None:
    """Ask every worker still running to stop (SIGTERM), then kill those that do not."""
    running = [worker for worker in workers if worker.poll() is None]
    for worker in running:
        worker.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for worker in running:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def join_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """In a worker `launch` started, join the others (`jax.distributed.initialize`, with
    gloo collectives on CPU); True if it did, False outside such a worker. Must run before
    JAX's first computation."""
    environ = os.environ if environ is None else environ
    if COORDINATOR not in environ:
        return False
    import jax

    # The CPU backend has no collectives across processes unless one is chosen.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        environ[COORDINATOR],
        num_processes=int(environ[PROCESSES]),
        process_id=int(environ[PROCESS_ID]),
    )
    return True
