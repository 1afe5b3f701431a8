"""Atomic file writes: a file is either absent, its old self, or complete.

Everything the suite writes (benchmark files, run outputs, figures, tables) goes through a
hidden temporary file beside the target that is renamed onto it only once complete, so an
interrupted process never leaves a partial file under the real name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A hidden temporary path beside `path`, moved onto `path` only if the block succeeds.

    The caller writes the whole file to the yielded path. Whatever happens, no temporary is
    left behind, and `path` holds either its old content or the complete new file. Missing
    parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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
