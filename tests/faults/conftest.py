"""The command run as a user runs it, for the fault-injection tests (the tiny experiments are
`make_experiment` of the top-level conftest)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from surrogates.cli import main


@pytest.fixture
def command(capsys) -> Callable[..., tuple[int, str, str]]:
    """Run `surrogates ARGS` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
