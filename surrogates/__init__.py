"""surrogates: neural surrogates of PDEs in JAX and Flax NNX.

`surrogates.train(experiment)`, `surrogates.resume(folder)` and `surrogates.evaluate(folder)`
run experiments from the top (see `surrogates.workflow`); they are imported on first use, so
that `import surrogates.config` stays free of JAX. Importing the package sets the suite's
XLA options for the CPU backend (`surrogates.xla_options`).
"""

from typing import Any

from surrogates import xla_options
from surrogates.errors import DatasetError as DatasetError
from surrogates.errors import ModelError as ModelError
from surrogates.errors import RecipeError as RecipeError
from surrogates.errors import SurrogatesError as SurrogatesError

__version__ = "0.1.0"

xla_options.apply_defaults()

_WORKFLOW = ("train", "resume", "evaluate")


def __getattr__(name: str) -> Any:
    if name in _WORKFLOW:
        from surrogates import workflow

        return getattr(workflow, name)
    raise AttributeError(f"module 'surrogates' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WORKFLOW])
