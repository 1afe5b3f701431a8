"""Run folders: `runs/<experiment>/<timestamp>/`, created exclusively, never overwritten.

A run folder holds `config.yaml` (the resolved experiment), `checkpoints/`, `metrics.jsonl`,
`eval.nc`, `summary.md` and `figures/`; re-evaluations go to `evaluations/<timestamp>/`.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path

from surrogates.errors import TrainingError, warn


def new_folder(parent: Path, setting: str | None = None) -> Path:
    """A new, empty `parent/<YYYYmmdd-HHMMSS>[-k]` folder; an existing one is never reused.
    A `parent` that cannot hold it is a `TrainingError` naming `setting` (the config key that
    chose it) if given."""
    where = f"{setting}: {parent}" if setting else str(parent)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for k in range(10_000):
            folder = parent / (stamp if k == 0 else f"{stamp}-{k}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return folder
    except FileExistsError:
        # `mkdir(exist_ok=True)` says this of a file standing where the folder should be.
        raise TrainingError(f"{where}: cannot create a folder there: Not a directory") from None
    except OSError as error:
        raise TrainingError(f"{where}: cannot create a folder there: {error.strerror}") from None
    raise TrainingError(f"{where}: no free folder name for {stamp}")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one line of strict JSON (a NaN or infinite number written as null) and flush
    it to disk, so a killed run keeps its log."""
    line = json.dumps(_finite(record), allow_nan=False)
    with path.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines log. A last line cut short (the process killed while
    writing it) is dropped with a warning; a damaged line before it is an error."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise TrainingError(f"{path}: line {number} is not JSON") from None
            warn(f"{path}: dropped the last line, cut short when it was written")
    return records


def _finite(record: dict) -> dict:
    """`record` with NaN and infinite floats as None."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in record.items()
    }
