"""The query-strategy base: one method that returns pool indices.

Modelled on small-text / scikit-activeml: ``query`` receives everything it
needs and returns positions into the pool; score-based strategies implement
only ``score`` and the base ranks; the last scores stay inspectable in
``last_scores_`` so the app can show annotators why an item was picked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = [
    "QueryStrategy",
    "ScoreBasedStrategy",
    "EmptyPoolError",
    "PoolExhaustedError",
]


class EmptyPoolError(ValueError):
    """There are no unlabeled examples left to query."""


class PoolExhaustedError(ValueError):
    """More examples were requested than the pool holds."""

    def __init__(self, available: int, requested: int):
        super().__init__(f"the pool is exhausted: {available} available / {requested} requested")
        self.available = available
        self.requested = requested


class QueryStrategy(ABC):
    """Pick the next examples to label.

    ``query(model, X, unlabeled, labeled, y, n)`` returns ``n`` positions
    taken from ``unlabeled`` (positions into ``X``), best first. ``model`` is
    the current :class:`fairal.models.FittedModel` (``None`` before any
    training; strategies that need it raise then). ``labeled``/``y`` are the
    labeled positions and their labels, ``groups`` the sensitive group of
    every row of ``X`` (group-aware strategies use it).
    """

    name: str = "base"
    #: Whether ``query`` uses the current model (random does not).
    needs_model: bool = True
    #: Whether the ranking changes when the model is retrained; a non-adaptive
    #: strategy (random, group-aware random, PANDA) ranks the pool once.
    adaptive: bool = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def query(self, model, X, unlabeled, labeled=None, y=None, n: int = 1, *, groups=None) -> np.ndarray:
        unlabeled = np.asarray(unlabeled, dtype=np.int64)
        if len(unlabeled) == 0:
            raise EmptyPoolError(EmptyPoolError.__doc__)
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if n > len(unlabeled):
            raise PoolExhaustedError(len(unlabeled), n)
        if self.needs_model and model is None:
            raise ValueError(f"the {self.name!r} strategy needs a trained model; train one first")
        chosen = self._query(model, np.asarray(X), unlabeled,
                             None if labeled is None else np.asarray(labeled, dtype=np.int64),
                             None if y is None else np.asarray(y), n, groups)
        return np.asarray(chosen, dtype=np.int64)

    def rank(self, model, X, unlabeled, labeled=None, y=None, *, groups=None) -> np.ndarray:
        """The whole pool in query order (``query`` with ``n = len(unlabeled)``)."""
        return self.query(model, X, unlabeled, labeled, y, len(unlabeled), groups=groups)

    @abstractmethod
    def _query(self, model, X, unlabeled, labeled, y, n, groups) -> np.ndarray: ...


class ScoreBasedStrategy(QueryStrategy):
    """Rank by a per-example score, higher first; ties keep pool order.

    After a call, ``last_scores_`` holds the score of each position in
    ``unlabeled`` (same order as passed in).
    """

    last_scores_: np.ndarray

    @abstractmethod
    def score(self, model, X_unlabeled: np.ndarray) -> np.ndarray:
        """One score per unlabeled example; higher means query first."""

    def _query(self, model, X, unlabeled, labeled, y, n, groups) -> np.ndarray:
        scores = np.asarray(self.score(model, X[unlabeled]), dtype=np.float64)
        self.last_scores_ = scores
        # Stable sort on -score: ties keep their pool order (deterministic).
        order = np.argsort(-scores, kind="stable")[:n]
        return unlabeled[order]
