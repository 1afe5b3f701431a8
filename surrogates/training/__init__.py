"""Training: the generic `Trainer`, the tasks it drives, compiled steps, curricula, optimisers,
checkpoints and sharding."""

from surrogates.training.operator_task import OperatorTask as OperatorTask
from surrogates.training.stepper import Stepper as Stepper
from surrogates.training.stepper import rollout as rollout
from surrogates.training.task import Model as Model
from surrogates.training.task import Task as Task
from surrogates.training.trainer import Trainer as Trainer
