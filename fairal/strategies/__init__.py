"""Query strategies behind one small base (``query(...) -> pool positions``)."""

from fairal.strategies._base import EmptyPoolError, PoolExhaustedError, QueryStrategy, ScoreBasedStrategy
from fairal.strategies.fal import FAL, ExactFAL
from fairal.strategies.group_random import GroupAwareRandomSampling
from fairal.strategies.panda import PandaSampling
from fairal.strategies.uncertainty import EntropySampling, MarginSampling, RandomSampling

__all__ = [
    "QueryStrategy",
    "ScoreBasedStrategy",
    "EmptyPoolError",
    "PoolExhaustedError",
    "RandomSampling",
    "MarginSampling",
    "EntropySampling",
    "GroupAwareRandomSampling",
    "FAL",
    "ExactFAL",
    "PandaSampling",
    "STRATEGIES",
    "OFFLINE_ONLY",
    "make_strategy",
]

#: Strategies selectable by name in projects, the app and the command line.
STRATEGIES = {
    cls.name: cls
    for cls in (RandomSampling, MarginSampling, EntropySampling, GroupAwareRandomSampling, FAL, ExactFAL,
                PandaSampling)
}

#: Too slow to re-rank a large pool after every label (minutes per query); simulate and tests only.
OFFLINE_ONLY = frozenset({"fal_exact"})


def make_strategy(name: str, **params) -> QueryStrategy:
    """Build a strategy by its registered name."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}") from None
    return cls(**params)
