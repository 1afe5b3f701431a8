"""Error types. The CLI turns any `SurrogatesError` into one line on stderr and exit code 2."""

import sys


class SurrogatesError(Exception):
    """Base class for errors caused by bad input (files, configs, recipes), not by bugs."""


class DatasetError(SurrogatesError):
    """A benchmark file is missing, unreadable, of an unknown layout, inconsistent or non-finite.

    The message names the file, the key and what was expected versus found.
    """


class RecipeError(SurrogatesError):
    """A dataset recipe is missing, not YAML, or has an unknown key or a bad value."""


class ConfigError(SurrogatesError):
    """An experiment config is missing, not YAML, or has an unknown key or a bad value."""


class TrainingError(SurrogatesError):
    """A run cannot go on: a diverging loss, data too short for the windows asked for, or a
    run folder that cannot be resumed.
    """


class ResultsError(SurrogatesError):
    """A results file is missing, unreadable or not laid out as `metrics_dataset` writes it."""


class ModelError(SurrogatesError):
    """A model name, constructor argument or option value is unknown or invalid.

    The message names the model and, for a misspelling, suggests the closest known name.
    """


class Interrupted(SurrogatesError):
    """The user stopped a command (Ctrl-C); the message says what was kept. Exit code 130."""


def warn(message: str) -> None:
    """Tell the user, in one line on stderr, of something that went wrong but was worked
    around (a damaged checkpoint skipped, a partial log line dropped)."""
    print(f"surrogates: warning: {message}", file=sys.stderr)
