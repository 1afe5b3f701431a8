"""What a command prints, for the tests that run it as a user does."""

from __future__ import annotations


def one_error_line(stderr: str, command: str) -> str:
    """The one line a failed command printed (any warnings before it aside), asserting there
    is exactly one error line and no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"surrogates {command}:")]
    assert len(errors) == 1, stderr
    return errors[0]
