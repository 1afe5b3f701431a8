"""surrogates: neural surrogates of PDEs in JAX and Flax NNX."""

from surrogates.errors import DatasetError as DatasetError
from surrogates.errors import ModelError as ModelError
from surrogates.errors import RecipeError as RecipeError
from surrogates.errors import SurrogatesError as SurrogatesError

__version__ = "0.1.0"
