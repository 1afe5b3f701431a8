"""Physics-informed problems: PDEs on boxes, with their conditions and reference solutions.

`build_problem(name, **parameters)` makes a registered problem (`problems()` lists them);
`surrogates.physics.problem` states the contract, `surrogates.physics.derivatives` the
forward-mode derivatives residuals are written with, and `surrogates.physics.equations` the
PDE terms shared with the data generators. Importing this package registers every problem.
"""

from surrogates.physics.allen_cahn import AllenCahn
from surrogates.physics.burgers import Burgers
from surrogates.physics.convection import Convection, ConvectionDiffusion
from surrogates.physics.flow_mixing import FlowMixing
from surrogates.physics.helmholtz import Helmholtz
from surrogates.physics.klein_gordon import KleinGordon
from surrogates.physics.problem import Box, Condition, Problem, build_problem, problems
from surrogates.physics.reaction import Reaction
from surrogates.physics.wave import Wave

__all__ = [
    "AllenCahn",
    "Box",
    "Burgers",
    "Condition",
    "Convection",
    "ConvectionDiffusion",
    "FlowMixing",
    "Helmholtz",
    "KleinGordon",
    "Problem",
    "Reaction",
    "Wave",
    "build_problem",
    "problems",
]
