"""Trainers: ``fit(data, *, sample_weight=None, validation=None) -> FittedModel``.

PANDA's few-step linear head lives with PANDA's other pieces, in :mod:`fairal.panda.head`; it uses
this package's helpers, so it registers itself (:func:`register`) and this package imports it last:
either module may be imported first.
"""

from typing import Any

from fairal.trainers._base import Trainer, as_arrays
from fairal.trainers.erm import ERMTrainer
from fairal.trainers.fairlearn import FairlearnTrainer, MixtureModel
from fairal.trainers.forml import FORMLTrainer
from fairal.trainers.frtrain import FRTrainTrainer
from fairal.trainers.irw import CVaRTrainer, IRWOTrainer, IRWTrainer
from fairal.trainers.pool_parity import PoolParityTrainer

__all__ = ["Trainer", "ERMTrainer", "FairlearnTrainer", "MixtureModel", "FORMLTrainer",
           "FRTrainTrainer", "IRWTrainer", "IRWOTrainer", "CVaRTrainer", "PoolParityTrainer", "as_arrays",
           "TRAINERS", "NEEDS_VALIDATION", "USES_VALIDATION", "USES_POOL", "make_trainer", "register"]

#: Trainers selectable by name in projects, the app and the command line. (``type[Any]``, not
#: ``type[Trainer]``: FairlearnTrainer.fit returns a MixtureModel, which duck-types FittedModel.)
TRAINERS: dict[str, type[Any]] = {
    "erm": ERMTrainer, "fairlearn": FairlearnTrainer, "forml": FORMLTrainer,
    "frtrain": FRTrainTrainer, "irw": IRWTrainer, "irwo": IRWOTrainer, "cvar": CVaRTrainer,
    "pool_parity": PoolParityTrainer}

#: Trainers that need the project's clean validation / exemplar set (``needs_validation``); the app
#: offers them once projects have one (the crowd issue builds it), and they are too slow to
#: retrain after every label inline.
NEEDS_VALIDATION = frozenset(name for name, cls in TRAINERS.items() if cls.needs_validation)

#: Trainers that read ``validation=`` as a clean set (``uses_validation``: FR-Train's robustness
#: discriminator, FORML's exemplars); projects pass them their validation set (the seed set
#: until a crowd set is built).
USES_VALIDATION = frozenset(name for name, cls in TRAINERS.items() if cls.uses_validation)

#: Trainers that read ``pool=(X, group)``, the project's whole pool, labeled or not (``uses_pool``:
#: ``pool_parity`` measures demographic parity there rather than on the picked labels).
USES_POOL = frozenset(name for name, cls in TRAINERS.items() if getattr(cls, "uses_pool", False))


def make_trainer(name: str, **params) -> Trainer:
    """Build a trainer by its registered name."""
    try:
        cls = TRAINERS[name]
    except KeyError:
        raise ValueError(f"trainer must be one of {sorted(TRAINERS)}, got {name!r}") from None
    return cls(**params)


def register(name: str, cls: type[Any]) -> type[Any]:
    """Add a trainer kept outside this package (PANDA's head, from :mod:`fairal.panda.head`).

    It must not read a validation set or the pool: :data:`NEEDS_VALIDATION`, :data:`USES_VALIDATION`
    and :data:`USES_POOL` are fixed when this package is imported.
    """
    if cls.needs_validation or cls.uses_validation or getattr(cls, "uses_pool", False):
        raise ValueError(f"{cls.__name__} reads a validation set or the pool; list it in fairal.trainers instead")
    TRAINERS[name] = cls
    return cls


import fairal.panda.head  # noqa: E402, F401 (registers "head"; see the module docstring)
