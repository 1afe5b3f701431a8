"""Error types. The CLI turns any `SurrogatesError` into one line on stderr and exit code 2."""


class SurrogatesError(Exception):
    """Base class for errors caused by bad input (files, configs, recipes), not by bugs."""


class DatasetError(SurrogatesError):
    """A benchmark file is missing, unreadable, of an unknown layout, inconsistent or non-finite.

    The message names the file, the key and what was expected versus found.
    """


class RecipeError(SurrogatesError):
    """A dataset recipe is missing, not YAML, or has an unknown key or a bad value."""
