"""Curricula against their formulas, CAPE's sigmoid against a transcription of its code."""

from __future__ import annotations

import math

import pytest

from surrogates.training import curriculum


def cape_reference(epoch: int, epochs: int, warmup: int, history: int, steps: int) -> int:
    """CAPE's training loop, step by step: which rollout steps feed back the prediction."""
    t_train = history + steps
    ep_norm = (epoch - warmup) / (epochs - warmup)
    t_norm = 0.5 * (1.0 + math.tanh((ep_norm - 0.5) / 0.2))
    t_ar = min(t_train, max(1, int(t_train * t_norm)))
    # `for t in range(initial_step, t_train): ... im if t < t_ar else y_true`
    return sum(1 for t in range(history, t_train) if t < t_ar)


@pytest.mark.parametrize(
    ("history", "steps", "epochs", "warmup"), [(1, 40, 100, 3), (10, 31, 50, 0), (4, 8, 7, 2)]
)
def test_cape_sigmoid_matches_capes_loop(history, steps, epochs, warmup):
    schedule = curriculum.cape_sigmoid(steps, history, epochs, warmup)
    values = [schedule(e) for e in range(epochs)]
    assert values == [cape_reference(e, epochs, warmup, history, steps) for e in range(epochs)]
    assert values == sorted(values)  # never goes back to teacher forcing


def test_cape_sigmoid_runs_from_teacher_forcing_to_nearly_autoregressive():
    schedule = curriculum.cape_sigmoid(40, 1, 100, 3)
    assert schedule(0) == 0 and schedule(3) == 0
    # At the midpoint tanh(0) = 0: t_ar = int(41 / 2) = 20, so 19 fed-back steps.
    assert schedule(3 + 97 // 2) == pytest.approx(19, abs=1)
    # At the end t_norm = (1 + tanh(2.5)) / 2 = 0.9933: t_ar = int(41 * 0.9933) = 40.
    assert schedule(100) == 39


def test_linear_formula():
    schedule = curriculum.linear(10, start_epoch=2, end_epoch=7)
    assert [schedule(e) for e in range(9)] == [0, 0, 0, 2, 4, 6, 8, 10, 10]
    with pytest.raises(ValueError, match="end_epoch"):
        curriculum.linear(10, 5, 5)


def test_fixed_and_staged():
    assert curriculum.teacher_forcing()(17) == 0
    assert curriculum.autoregressive(6)(0) == 6
    schedule = curriculum.staged(5, [(4, 2), (0, 0), (8, 9)])
    assert [schedule(e) for e in (0, 3, 4, 7, 8, 20)] == [0, 0, 2, 2, 5, 5]
    with pytest.raises(ValueError, match="n_ar >= 0"):
        curriculum.staged(5, [(0, -1)])
