"""Query strategies behind one small base (``rank(...) -> Ranking``, ``query(...) -> pool positions``)."""

from fairal.strategies._base import EmptyPoolError, PoolExhaustedError, QueryStrategy, Ranking, ScoreBasedStrategy
from fairal.strategies.fal import FAL, ExactFAL
from fairal.strategies.group_random import GroupAwareRandomSampling
from fairal.strategies.panda import PandaSampling
from fairal.strategies.uncertainty import EntropySampling, MarginSampling, RandomSampling

__all__ = [
    "QueryStrategy",
    "ScoreBasedStrategy",
    "Ranking",
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

#: Names of the strategies with ``offline_only`` set (too slow for projects and the app).
OFFLINE_ONLY = frozenset(name for name, cls in STRATEGIES.items() if cls.offline_only)


def make_strategy(name: str, **params) -> QueryStrategy:
    """Build a strategy by its registered name."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}") from None
    return cls(**params)
