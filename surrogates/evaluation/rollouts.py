"""Autoregressive rollouts on whole trajectories, scored with the benchmark metrics.

Each trajectory was rolled out from its first `history` frames for `steps` frames; it is
compared with the truth, and the persistence baseline (the last context frame repeated) is
scored on the same frames. Metrics are computed once over all trajectories, so every sample
counts once; `score_cases` scores the trajectories of each PDE-parameter value apart.
"""

from __future__ import annotations

import numpy as np

from surrogates.evaluation.results import Cases
from surrogates.metrics import compute_metrics

PERSISTENCE = "persistence"

Scores = dict[str, dict[str, np.ndarray]]


def score_rollouts(
    prediction: np.ndarray,
    fields: np.ndarray,
    *,
    history: int,
    metrics: list[str],
    label: str,
    baseline: bool = True,
) -> Scores:
    """Metrics of `prediction` (N, S, *X, C) against frames `history..history+S-1` of `fields`
    (N, T, *X, C), and of persistence if `baseline` and `history > 0`:
    `{label: {metric: (S, C)}}`.
    """
    steps = prediction.shape[1]
    truth = fields[:, history : history + steps]
    scores = {label: _metrics(prediction, truth, metrics)}
    # Without history frames (a steady problem) there is no last frame to persist.
    if baseline and history > 0:
        repeated = np.repeat(fields[:, history - 1 : history], steps, axis=1)
        scores[PERSISTENCE] = _metrics(repeated, truth, metrics)
    return scores


def score_cases(
    prediction: np.ndarray,
    fields: np.ndarray,
    table: np.ndarray,
    names: tuple[str, ...],
    seen: np.ndarray,
    **scoring,
) -> Cases:
    """`score_rollouts` over the trajectories of each distinct row of `table` (N, P), the
    PDE parameters `names` of each trajectory. `seen` (K', P) are the values of the training
    data; a case is seen when its row is among them (to float32 rounding)."""
    values, which = np.unique(table, axis=0, return_inverse=True)
    which = which.reshape(-1)
    metrics = [
        score_rollouts(prediction[which == k], fields[which == k], **scoring)
        for k in range(len(values))
    ]
    return Cases(
        names=names,
        values=values,
        seen=np.array([_among(row, seen) for row in values], bool),
        trajectories=np.bincount(which, minlength=len(values)),
        metrics=metrics,
    )


def _among(row: np.ndarray, rows: np.ndarray) -> bool:
    return bool(len(rows)) and bool(np.any(np.all(np.isclose(rows, row, rtol=1e-6), axis=1)))


def _metrics(prediction: np.ndarray, truth: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    values = compute_metrics(prediction, truth, names)
    return {name: np.asarray(value, np.float64) for name, value in values.items()}
