"""Query strategies behind one small base (``query(...) -> pool positions``)."""

from fairal.strategies._base import EmptyPoolError, PoolExhaustedError, QueryStrategy, ScoreBasedStrategy
from fairal.strategies.uncertainty import EntropySampling, MarginSampling, RandomSampling

__all__ = [
    "QueryStrategy",
    "ScoreBasedStrategy",
    "EmptyPoolError",
    "PoolExhaustedError",
    "RandomSampling",
    "MarginSampling",
    "EntropySampling",
    "STRATEGIES",
    "make_strategy",
]

#: Strategies selectable by name in projects, the app and the command line.
STRATEGIES = {cls.name: cls for cls in (RandomSampling, MarginSampling, EntropySampling)}


def make_strategy(name: str, **params) -> QueryStrategy:
    """Build a strategy by its registered name."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}") from None
    return cls(**params)
