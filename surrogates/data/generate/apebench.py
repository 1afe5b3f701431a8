"""Recipe `pde: apebench`: an APEBench scenario's trajectories as benchmark files.

APEBench (Koehler et al., NeurIPS 2024) defines its scenarios as Exponax solvers with their
initial conditions, grids, horizons and seeds; `scenario.get_train_data()` and
`get_test_data()` give `(N, T + 1, C, *X)` arrays, channels first. The recipe writes the two
splits to two files (`split` is the file name's placeholder) in PDEBench's per-sample
groups, `0000/data` `(T + 1, *X, C)` with `grid/x|y|z` (the nodes `i L / N` of Exponax's
periodic grid on `[0, L)`) and `grid/t` (`k dt`), so the suite reads them like any file.
The scenario, its settings and the split are attributes; the boundary is periodic.

    pde: apebench
    scenario: diff_adv             # a name of apebench.scenarios.scenario_dict
    settings: {num_points: 160}    # the scenario's own keyword arguments; defaults otherwise
    samples: null                  # trajectories per file; null: the scenario's counts

APEBench is in the `ape` extra (`pip install -e ".[ape]"`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
from pydantic import Field, model_validator

from surrogates.atomic import atomic_path
from surrogates.data.generate.specs import check_file_name, write_sample_groups
from surrogates.errors import RecipeError
from surrogates.schema import StrictModel

SPLITS = ("train", "test")
AXES = ("x", "y", "z")


class APEBenchRecipe(StrictModel):
    """Recipe of `pde: apebench`: one file per split of an APEBench scenario."""

    pde: Literal["apebench"]
    """Selects this recipe kind."""
    scenario: str
    """A name of `apebench.scenarios.scenario_dict` (say `diff_adv`)."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """The scenario's own keyword arguments (checked against its fields, say
    `{num_points: 160}`); the scenario's defaults otherwise."""
    file_name: str = "apebench_{scenario}_{split}.h5"
    """The files' name pattern; `{split}` (`train` or `test`) is needed, `{scenario}`
    optional."""
    samples: int | None = Field(default=None, ge=1)
    """Trajectories per file (the scenario's `num_train_samples` and `num_test_samples`);
    None: the scenario's counts."""

    @model_validator(mode="after")
    def _known(self) -> APEBenchRecipe:
        check_file_name(self.file_name, {"scenario": [self.scenario], "split": list(SPLITS)})
        return self

    def sweep(self) -> list[dict[str, Any]]:
        """One file per split: `{"scenario": name, "split": "train" | "test"}`."""
        return [{"scenario": self.scenario, "split": split} for split in SPLITS]

    def scenario_object(self) -> Any:
        """The APEBench scenario with the recipe's settings (and `samples`, if given)."""
        scenarios = _apebench().scenario_dict
        if self.scenario not in scenarios:
            close = difflib.get_close_matches(self.scenario, list(scenarios), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"scenario: APEBench has no scenario {self.scenario!r}{hint}")
        cls = scenarios[self.scenario]
        names = [field.name for field in dataclasses.fields(cls)]
        for key in self.settings:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RecipeError(f"settings.{key}: no setting of {self.scenario}{hint}")
        settings = dict(self.settings)
        if self.samples is not None:
            settings.update(num_train_samples=self.samples, num_test_samples=self.samples)
        return cls(**settings)

    def file_settings(self, values: dict[str, Any]) -> str:
        """The scenario's resolved settings and the split, as canonical JSON."""
        return self._file_settings(values["split"], _settings(self.scenario_object()))

    def _file_settings(self, split: str, settings: dict[str, Any]) -> str:
        facts = {"pde": self.pde, "scenario": self.scenario, "split": split, "settings": settings}
        return json.dumps(facts, sort_keys=True)

    def write(self, target: Path, values: dict[str, Any], advance: Callable[[int], None]) -> None:
        """The split `values["split"]` of the scenario into `target`, atomically.

        Raises:
            RecipeError: trajectories with NaN/Inf; nothing is written then.
        """
        scenario = self.scenario_object()
        split = values["split"]
        data = scenario.get_train_data() if split == "train" else scenario.get_test_data()
        trajectories = np.moveaxis(np.asarray(data, dtype=np.float32), 2, -1)  # (N, T, *X, C)
        bad = ~np.isfinite(trajectories).reshape(len(trajectories), -1).all(axis=1)
        if bad.any():
            raise RecipeError(
                f"{target}: APEBench's {self.scenario} gave NaN/Inf in {split} trajectory "
                f"{int(np.argmax(bad))}; nothing was written"
            )
        stepper = scenario.get_ref_stepper()
        extent, dt = float(stepper.domain_extent), float(stepper.dt)
        spatial = trajectories.shape[2:-1]
        grid = {axis: np.arange(n) * extent / n for axis, n in zip(AXES, spatial, strict=False)}
        grid["t"] = np.arange(trajectories.shape[1]) * dt
        grid = {name: coordinates.astype(np.float32) for name, coordinates in grid.items()}
        settings = _settings(scenario)
        with atomic_path(target) as temporary, h5py.File(temporary, "w") as f:
            f.attrs.update(pde=self.pde, scenario=self.scenario, split=split)
            f.attrs.update(boundary="periodic", domain_extent=extent, dt=dt)
            f.attrs["settings"] = json.dumps(settings, sort_keys=True)
            write_sample_groups(f, [(0, trajectories)], grid, advance)
            f.attrs["generator"] = self._file_settings(split, settings)


def _settings(scenario: Any) -> dict[str, Any]:
    """The scenario's fields, JSON-ready (tuples as lists)."""
    fields = {field.name: getattr(scenario, field.name) for field in dataclasses.fields(scenario)}
    return json.loads(json.dumps(fields, default=list))


def _apebench() -> Any:
    try:
        return importlib.import_module("apebench.scenarios")
    except ImportError:
        raise RecipeError(
            'pde: apebench needs APEBench; install the ape extra (pip install -e ".[ape]")'
        ) from None
