"""One training step: fit a trainer (with the clean validation set when it reads one), then score
it on the test set. The app's inline retraining and the background worker (both through
:meth:`fairal.projects.Project.train_step`, which calls :func:`fit_and_evaluate`) and offline
simulation (:mod:`fairal.research.simulate`) all train through :func:`fit` and :func:`evaluate`, so they
cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fairal import metrics
from fairal.trainers import TRAINERS, USES_POOL, USES_VALIDATION, make_trainer
from fairal.trainers.models import FittedModel

__all__ = ["Fitted", "fit", "evaluate", "fit_and_evaluate", "parity_params"]


@dataclass(frozen=True)
class Fitted:
    """A trained model and how long its fit took; from :func:`fit_and_evaluate`, also its test
    metrics and its state as bytes (what the store keeps)."""

    model: FittedModel
    seconds: float
    metrics: dict[str, float] | None = None
    state: bytes | None = None


def fit(trainer: str, train, *, validation=None, pool=None, params: dict | None = None) -> Fitted:
    """Train the trainer named ``trainer`` on ``train`` = (X, y, group).

    ``validation`` = (X, y, group) is the clean validation set; it reaches only the trainers that
    read one (FR-Train's robustness discriminator, FORML's exemplars; FR-Train refuses to train
    without it). ``pool`` = (X, group) is every pool item, labeled or not; it reaches only the
    trainers that read it (``pool_parity`` measures demographic parity there).
    """
    model = make_trainer(trainer, **(params or {}))
    extra = {"pool": pool} if trainer in USES_POOL else {}
    start = time.perf_counter()
    fitted = model.fit(train, validation=validation if trainer in USES_VALIDATION else None, **extra)
    return Fitted(fitted, time.perf_counter() - start)


def evaluate(model: FittedModel, test) -> dict[str, float]:
    """Every metric of :data:`fairal.metrics.METRICS` on ``test`` = (X, y, group)."""
    X, y, group = test
    return metrics.evaluate(y, model.predict(X), sensitive_features=group)


def fit_and_evaluate(trainer: str, train, test, *, validation=None, pool=None, params: dict | None = None) -> Fitted:
    """:func:`fit`, then :func:`evaluate` on ``test``: the fitted model with its ``metrics`` and ``state``."""
    fitted = fit(trainer, train, validation=validation, pool=pool, params=params)
    return Fitted(fitted.model, fitted.seconds, state=fitted.model.to_bytes(), metrics=evaluate(fitted.model, test))


def parity_params(trainer: str, metric: str, rho: float) -> dict:
    """The parameters that make a trainer which bounds demographic parity keep a project's
    constraint ``metric`` ≤ ``rho``; ``{}`` for other trainers and metrics (they keep their defaults).

    Such a trainer says so with ``parity_bound_share``: its ``difference_bound`` (DP *to overall*,
    every group's positive rate within the bound of the overall rate) is that share of the bound
    (fairlearn 1, pool_parity 0.75). For ``demographic_parity_to_overall`` the bound is ρ; for
    ``demographic_parity_difference`` (the largest gap between two groups) it is ρ/2, which is
    enough, since two groups each within ρ/2 of the overall rate are within ρ of each other.
    """
    share = getattr(TRAINERS.get(trainer), "parity_bound_share", None)
    bound = {"demographic_parity_to_overall": rho, "demographic_parity_difference": rho / 2}.get(metric)
    if share is None or bound is None:
        return {}
    return {"difference_bound": share * bound}
