"""Query strategies behind one small base (``rank(...) -> Ranking``, ``query(...) -> pool positions``).

PANDA's strategy lives with PANDA's other pieces, in :mod:`fairal.panda.strategy`; it subclasses
this package's base, so it registers itself (:func:`register`) and this package imports it last:
either module may be imported first.
"""

from fairal.strategies._base import EmptyPoolError, PoolExhaustedError, QueryStrategy, Ranking, ScoreBasedStrategy
from fairal.strategies.fal import FAL, ExactFAL
from fairal.strategies.group_random import GroupAwareRandomSampling
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
    "STRATEGIES",
    "OFFLINE_ONLY",
    "make_strategy",
    "register",
]

#: Strategies selectable by name in projects, the app and the command line.
STRATEGIES: dict[str, type[QueryStrategy]] = {
    cls.name: cls
    for cls in (RandomSampling, MarginSampling, EntropySampling, GroupAwareRandomSampling, FAL, ExactFAL)
}

#: Names of the strategies with ``offline_only`` set (too slow for projects and the app).
OFFLINE_ONLY = frozenset(name for name, cls in STRATEGIES.items() if cls.offline_only)


def register(cls: type[QueryStrategy]) -> type[QueryStrategy]:
    """Add a strategy kept outside this package under ``cls.name`` (PANDA's, from :mod:`fairal.panda.strategy`).

    It must not be ``offline_only``: :data:`OFFLINE_ONLY` is fixed when this package is imported.
    """
    if cls.offline_only:
        raise ValueError(f"{cls.__name__} is offline_only; list it in fairal.strategies instead")
    STRATEGIES[cls.name] = cls
    return cls


def make_strategy(name: str, **params) -> QueryStrategy:
    """Build a strategy by its registered name."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}") from None
    return cls(**params)


import fairal.panda.strategy  # noqa: E402, F401 (registers "panda"; see the module docstring)
