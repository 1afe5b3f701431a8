"""Tiny experiments on a small generated Burgers file, for the engine tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

RECIPE = """\
pde: burgers
parameters: {Nu: [0.05]}
file_name: "burgers.hdf5"
samples: 24
chunk: 24
grid: {cells: 32}
time: {t_end: 0.5, frames: 11}
"""


def experiment_yaml(data_file: Path, root: Path, **sections: str) -> str:
    """A tiny FNO experiment on `data_file`; `sections` replace whole top-level sections."""
    parts = {
        "data": f"data:\n  files: [{data_file}]\n  history: 3\n  split: {{val: 0.2, test: 0.2}}\n",
        "model": "model:\n  name: fno\n  n_modes: [8]\n  hidden_channels: 8\n  n_layers: 2\n",
        "train": (
            "train:\n  epochs: 3\n  batch_size: 4\n  rollout_steps: 3\n"
            "  optimizer: {lr: 0.003}\n  curriculum: {name: linear, end_epoch: 2}\n"
        ),
        "eval": "eval:\n  rollout_steps: 6\n  batch_size: 4\n",
        "run": f"run:\n  root: {root}\n",
    }
    parts.update({key: textwrap.dedent(value) for key, value in sections.items()})
    return "".join(parts.values())
