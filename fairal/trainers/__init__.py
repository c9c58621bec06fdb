"""Trainers: ``fit(data, *, sample_weight=None, validation=None) -> FittedModel``."""

from fairal.trainers._base import Trainer, as_arrays
from fairal.trainers.erm import ERMTrainer
from fairal.trainers.fairlearn import FairlearnTrainer, MixtureModel
from fairal.trainers.head import HeadTrainer

__all__ = ["Trainer", "ERMTrainer", "FairlearnTrainer", "MixtureModel", "HeadTrainer", "as_arrays", "TRAINERS", "make_trainer"]

#: Trainers selectable by name in projects, the app and the command line.
TRAINERS = {"erm": ERMTrainer, "fairlearn": FairlearnTrainer, "head": HeadTrainer}


def make_trainer(name: str, **params) -> Trainer:
    """Build a trainer by its registered name."""
    try:
        cls = TRAINERS[name]
    except KeyError:
        raise ValueError(f"trainer must be one of {sorted(TRAINERS)}, got {name!r}") from None
    return cls(**params)
