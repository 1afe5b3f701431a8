"""A run interrupted during training and resumed from its folder, for the resume tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from surrogates.errors import Interrupted
from surrogates.training import Trainer


def interrupted_then_resumed(
    make_task: Callable[[], Any],
    train: Any,
    folder: Path,
    *,
    stop_at_validation: int,
    message: str,
    resumed_from: int,
) -> Any:
    """A fresh task trained in `folder` until its `stop_at_validation`-th validation raises
    KeyboardInterrupt (the stop must say `message`), then another fresh task resumed from the
    folder (at epoch `resumed_from`) and trained to the end; returns that task."""
    interrupted = make_task()
    calls = []
    validate = interrupted.validate

    def validate_then_stop():
        calls.append(1)
        if len(calls) == stop_at_validation:
            raise KeyboardInterrupt
        return validate()

    interrupted.validate = validate_then_stop
    first = Trainer(interrupted, train, folder, progress=False)
    with pytest.raises(Interrupted, match=message):
        first.fit()
    first.close()
    resumed = make_task()
    second = Trainer(resumed, train, folder, progress=False)
    second.resume()
    assert second.start_epoch == resumed_from
    second.fit()
    second.close()
    return resumed
