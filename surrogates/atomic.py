"""Atomic file writes: a file is either absent, its old self, or complete.

Everything the suite writes (benchmark files, run outputs, figures, tables) goes through a
hidden temporary file beside the target that is renamed onto it only once complete, so an
interrupted process never leaves a partial file under the real name.

A process killed outright (SIGKILL, out of memory, power loss) cannot delete its temporary,
so the temporary's name records the writer's host and PID: `remove_stale_temporaries` can
then tell a dead writer's leftover from a file another process is still writing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path


def temporary_path(path: str | os.PathLike[str], pid: int | None = None) -> Path:
    """The hidden temporary beside `path` that process `pid` (default: this one) writes.

    Named `.NAME.PID@HOST.RANDOM.tmp`: hidden, unique, and traceable to its writer.
    """
    target = Path(path)
    writer = os.getpid() if pid is None else pid
    return target.with_name(
        f".{target.name}.{writer}@{socket.gethostname()}.{secrets.token_hex(4)}.tmp"
    )


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries of `path` left by dead writers on this host; returns them.

    A temporary whose writer is still running (another process writing the same file) is
    kept, and so is one written from another host (on a shared folder), whose writer this
    host cannot check. A dead writer's PID reused by a new process keeps its temporary too:
    the mistake errs on the side of keeping a file.
    """
    target = Path(path)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)@(.*)\.[0-9a-f]{{8}}\.tmp")
    host = socket.gethostname()
    removed = []
    for candidate in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        match = pattern.fullmatch(candidate.name)
        if match is None or match[2] != host or _is_alive(int(match[1])):
            continue
        try:
            candidate.unlink(missing_ok=True)
        except OSError:  # a read-only folder: the write that follows reports it
            continue
        removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A hidden temporary path beside `path`, moved onto `path` only if the block succeeds.

    The caller writes the whole file to the yielded path. Whatever happens short of the
    process being killed, no temporary is left behind (a killed writer's temporary is
    removed by `remove_stale_temporaries`), and `path` holds either its old content or the
    complete new file. Missing parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically. Returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)
