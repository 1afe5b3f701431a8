"""The quickstart, shortened (8 epochs instead of 20), beats persistence at least 5x.

It generates its own 256 Burgers trajectories with the quickstart's recipe settings, trains
the quickstart's FNO with its curriculum, and compares the test-split rollout nRMSE of the
model with that of the persistence baseline on the same trajectories.
"""

from __future__ import annotations

from pathlib import Path

from surrogates import train
from surrogates.config import load_experiment
from surrogates.evaluation.results import read_results

QUICKSTART = Path(__file__).parents[1] / "experiments" / "quickstart.yaml"


def test_shortened_quickstart_beats_persistence_five_times(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(QUICKSTART.parents[1])  # the config names its recipe relative to the repo
    experiment = load_experiment(
        QUICKSTART,
        [
            "train.epochs=8",
            f"data.files=[{tmp_path / 'data' / '1D_Burgers_Sols_Nu0.01.hdf5'}]",
            f"run.root={tmp_path / 'runs'}",
        ],
    )
    results = read_results(train(experiment, progress=False) / "eval.nc")
    model = float(results["nrmse"].sel(model="fno").mean())
    persistence = float(results["nrmse"].sel(model="persistence").mean())
    assert results["nrmse"].sizes["step"] == 30
    assert model * 5 <= persistence, (model, persistence)
