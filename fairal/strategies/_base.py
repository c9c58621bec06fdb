"""The query-strategy base: ``rank`` scores the whole pool, ``query`` takes its top ``n``.

Modelled on small-text / scikit-activeml: a strategy receives everything it
needs as arguments and keeps no per-call state. Every strategy implements one
method, ``_pool_scores`` (one score per unlabeled position, higher first); the
base sorts, and ``rank`` returns the order together with the scores
(:class:`Ranking`) so the app can show annotators why an item was picked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np

from fairal.errors import EmptyPoolError, PoolExhaustedError  # noqa: F401 (defined there, named here too)

__all__ = [
    "QueryStrategy",
    "ScoreBasedStrategy",
    "Ranking",
    "EmptyPoolError",
    "PoolExhaustedError",
]


class Ranking(NamedTuple):
    """The whole pool in query order.

    ``order``: pool positions (into ``X``), best first; ``scores``: float64,
    ``scores[i]`` is the score of ``order[i]``, so non-increasing. Ties keep
    the order the pool was given in.
    """

    order: np.ndarray
    scores: np.ndarray


class QueryStrategy(ABC):
    """Pick the next examples to label.

    ``rank(model, X, unlabeled, labeled, y)`` returns the :class:`Ranking` of
    every position of ``unlabeled`` (positions into ``X``);
    ``query(..., n)`` returns its first ``n`` positions. ``model`` is the
    current :class:`fairal.trainers.models.FittedModel` (``None`` before any training;
    strategies that need it raise then). ``labeled``/``y`` are the labeled
    positions and their labels, ``groups`` the sensitive group of every row of
    ``X`` (group-aware strategies use it).
    """

    name: str = "base"
    #: Whether ``query`` uses the current model (random does not).
    needs_model: bool = True
    #: Whether the ranking changes when the model is retrained; a non-adaptive
    #: strategy (random, group-aware random, PANDA) ranks the pool once.
    adaptive: bool = True
    #: Too slow to re-rank a large pool after every label (minutes per query):
    #: for simulate and tests only, not offered in projects or the app.
    offline_only: bool = False

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def rank(self, model, X, unlabeled, labeled=None, y=None, *, groups=None) -> Ranking:
        """Every position of ``unlabeled``, best first, with its score."""
        unlabeled = np.asarray(unlabeled, dtype=np.int64)
        if len(unlabeled) == 0:
            raise EmptyPoolError(EmptyPoolError.__doc__)
        if self.needs_model and model is None:
            raise ValueError(f"the {self.name!r} strategy needs a trained model; train one first")
        scores = np.asarray(self._pool_scores(model, np.asarray(X), unlabeled,
                                              None if labeled is None else np.asarray(labeled, dtype=np.int64),
                                              None if y is None else np.asarray(y), groups), dtype=np.float64)
        if scores.shape != unlabeled.shape:
            raise RuntimeError(f"{type(self).__name__} returned {scores.shape} scores for {len(unlabeled)} items")
        # Stable sort on -score: ties keep their pool order (deterministic).
        by_score = np.argsort(-scores, kind="stable")
        return Ranking(unlabeled[by_score], scores[by_score])

    def query(self, model, X, unlabeled, labeled=None, y=None, n: int = 1, *, groups=None) -> np.ndarray:
        """The ``n`` best positions of ``unlabeled`` (the first ``n`` of :meth:`rank`'s order)."""
        available = len(unlabeled)
        if available and n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if available and n > available:
            raise PoolExhaustedError(available, n)
        return self.rank(model, X, unlabeled, labeled, y, groups=groups).order[:n]

    @abstractmethod
    def _pool_scores(self, model, X, unlabeled, labeled, y, groups) -> np.ndarray:
        """One score per position of ``unlabeled`` (same order); higher means query first."""


class ScoreBasedStrategy(QueryStrategy):
    """A strategy whose score depends on each example's features alone."""

    @abstractmethod
    def score(self, model, X_unlabeled: np.ndarray) -> np.ndarray:
        """One score per unlabeled example; higher means query first."""

    def _pool_scores(self, model, X, unlabeled, labeled, y, groups) -> np.ndarray:
        return self.score(model, X[unlabeled])
