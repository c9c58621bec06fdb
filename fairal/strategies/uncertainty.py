"""Classical baselines: random, margin and entropy sampling."""

from __future__ import annotations

import numpy as np

from fairal.strategies._base import ScoreBasedStrategy

__all__ = ["RandomSampling", "MarginSampling", "EntropySampling"]


class RandomSampling(ScoreBasedStrategy):
    """Uniform at random: each example's score is a ``U(0, 1)`` draw from ``random_state``.

    The score carries no information about the example; it is the random
    priority that fixes the order, returned so the ranking is reproducible
    and shown like every other strategy's.
    """

    name = "random"
    needs_model = False
    adaptive = False

    def score(self, model, X_unlabeled):
        return np.random.default_rng(self.random_state).random(len(X_unlabeled))


class MarginSampling(ScoreBasedStrategy):
    """Closest to the decision boundary first.

    Score = −(p₁ − p₂), the negated gap between the two most probable
    classes (for binary: −|2·P(y=1|x) − 1|), so the smallest margin ranks first.
    """

    name = "margin"

    def score(self, model, X_unlabeled):
        proba = np.sort(model.predict_proba(X_unlabeled), axis=1)
        return -(proba[:, -1] - proba[:, -2])


class EntropySampling(ScoreBasedStrategy):
    """Highest predictive entropy −Σ p log p first (nats)."""

    name = "entropy"

    def score(self, model, X_unlabeled):
        proba = np.clip(model.predict_proba(X_unlabeled), 1e-12, 1.0)
        return -(proba * np.log(proba)).sum(axis=1)
