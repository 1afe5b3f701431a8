"""Flax NNX models and the registry that builds them by name.

Importing this package registers every model, so `build("fno", ...)` works after
`import surrogates.models`.
"""

from surrogates.models.fno import FNO as FNO
from surrogates.models.fno import TFNO as TFNO
from surrogates.models.persistence import Persistence as Persistence
from surrogates.models.registry import available as available
from surrogates.models.registry import build as build
from surrogates.models.registry import get as get
from surrogates.models.registry import register as register
from surrogates.models.registry import summary as summary
from surrogates.models.spectral import SpectralConv as SpectralConv
