"""Run folders: `runs/<experiment>/<timestamp>/`, created exclusively, never overwritten.

A run folder holds `config.yaml` (the resolved experiment), `checkpoints/`, `metrics.jsonl`,
`eval.nc`, `summary.md` and `figures/`; re-evaluations go to `evaluations/<timestamp>/`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path


def new_folder(parent: Path) -> Path:
    """A new, empty `parent/<YYYYmmdd-HHMMSS>[-k]` folder; an existing one is never reused."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(10_000):
        folder = parent / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{parent}: no free folder name for {stamp}")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line and flush it to disk, so a killed run keeps its log."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
