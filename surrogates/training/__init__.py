"""Training: the compiled autoregressive step, curricula, optimisers, checkpoints, sharding."""

from surrogates.training.engine import Session as Session
from surrogates.training.engine import resume as resume
from surrogates.training.engine import train as train
from surrogates.training.stepper import Stepper as Stepper
from surrogates.training.stepper import rollout as rollout
