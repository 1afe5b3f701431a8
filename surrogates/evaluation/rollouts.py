"""Autoregressive rollouts on whole trajectories, scored with the benchmark metrics.

Each trajectory is rolled out from its first `history` frames for `steps` frames and compared
with the truth; the persistence baseline (the last context frame repeated) is scored on the
same frames. Metrics are computed once over all trajectories, so every sample counts once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from surrogates.evaluation.metrics import compute_metrics

PERSISTENCE = "persistence"


def predict_all(
    predict: Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray],
    fields: np.ndarray,
    params: np.ndarray | None,
    static: np.ndarray | None = None,
    *,
    history: int,
    batch_size: int,
) -> np.ndarray:
    """Rollouts of every trajectory: fields (N, T, *X, C) -> (N, S, *X, C).

    `predict(context, params, static)` maps (B, H, *X, C), (B, P) or None and (B, *X, Cs) or
    None to (B, S, *X, C). Batches are padded to `batch_size` so the rollout compiles once.
    """
    outputs = []
    for first in range(0, len(fields), batch_size):
        rows = np.arange(first, first + batch_size) % len(fields)
        context = fields[rows, :history]
        row_params, row_static = (None if a is None else a[rows] for a in (params, static))
        prediction = predict(context, row_params, row_static)
        outputs.append(np.asarray(prediction)[: len(fields) - first])
    return np.concatenate(outputs)


def score_rollouts(
    prediction: np.ndarray,
    fields: np.ndarray,
    *,
    history: int,
    metrics: list[str],
    label: str,
    baseline: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
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


def _metrics(prediction: np.ndarray, truth: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    values = compute_metrics(prediction, truth, names)
    return {name: np.asarray(value, np.float64) for name, value in values.items()}
