"""One training step: fit a trainer (with the clean validation set when it reads one), then score
it on the test set. The app's inline retraining, the background worker (both through
:meth:`fairal.projects.Project.train_step`) and offline simulation (:mod:`fairal.simulate`) all
train through :func:`fit` and :func:`evaluate`, so they cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fairal import metrics
from fairal.models import FittedModel
from fairal.trainers import USES_VALIDATION, make_trainer

__all__ = ["Fitted", "fit", "evaluate"]


@dataclass(frozen=True)
class Fitted:
    """A trained model and how long its fit took."""

    model: FittedModel
    seconds: float


def fit(trainer: str, train, *, validation=None, params: dict | None = None) -> Fitted:
    """Train the trainer named ``trainer`` on ``train`` = (X, y, group).

    ``validation`` = (X, y, group) is the clean validation set; it reaches only the trainers that
    read one (FR-Train's robustness discriminator, FORML's exemplars; FR-Train refuses to train
    without it).
    """
    model = make_trainer(trainer, **(params or {}))
    start = time.perf_counter()
    fitted = model.fit(train, validation=validation if trainer in USES_VALIDATION else None)
    return Fitted(fitted, time.perf_counter() - start)


def evaluate(model: FittedModel, test) -> dict[str, float]:
    """Every metric of :data:`fairal.metrics.METRICS` on ``test`` = (X, y, group)."""
    X, y, group = test
    return metrics.evaluate(y, model.predict(X), sensitive_features=group)
