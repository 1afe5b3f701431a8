"""Flax NNX models, the wrappers that go around them, and the registry that builds both.

Importing this package registers every model and wrapper, so `build("fno", ...)` works after
`import surrogates.models`. The model contract (what the engine passes a model, what a model
may declare) is `surrogates.models.contract`.
"""

from surrogates.models.cape import CAPE as CAPE
from surrogates.models.contract import ModelContext as ModelContext
from surrogates.models.equinox_adapter import EquinoxModel as EquinoxModel
from surrogates.models.equinox_adapter import from_equinox as from_equinox
from surrogates.models.fno import FNO as FNO
from surrogates.models.fno import TFNO as TFNO
from surrogates.models.lpinn import LPINN as LPINN
from surrogates.models.multigrid import Multigrid as Multigrid
from surrogates.models.pdequinox_nets import PDEquinoxNet as PDEquinoxNet
from surrogates.models.persistence import Persistence as Persistence
from surrogates.models.pig import PIG as PIG
from surrogates.models.pinn import PINN as PINN
from surrogates.models.registry import available as available
from surrogates.models.registry import build as build
from surrogates.models.registry import get as get
from surrogates.models.registry import kind_of as kind_of
from surrogates.models.registry import register as register
from surrogates.models.registry import register_wrapper as register_wrapper
from surrogates.models.registry import summary as summary
from surrogates.models.registry import wrapper as wrapper
from surrogates.models.registry import wrapper_overhead as wrapper_overhead
from surrogates.models.registry import wrapper_summary as wrapper_summary
from surrogates.models.registry import wrappers as wrappers
from surrogates.models.sinenet import SineNet as SineNet
from surrogates.models.spectral import SpectralConv as SpectralConv
from surrogates.models.stack import build_stack as build_stack
from surrogates.models.unet import ModernUNet as ModernUNet
from surrogates.models.unet import UNet as UNet
