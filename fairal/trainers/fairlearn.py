"""fairlearn's reductions approach: accuracy subject to a parity constraint.

PANDA's "Fairlearn" baselines (Sharaf, Daumé III & Ni, FAccT 2022, §4.1) train
with fairlearn's exponentiated-gradient reduction (Agarwal et al., 2018) under
a demographic-parity constraint ρ = 0.04. :class:`FairlearnTrainer` does that
with ``LogisticRegression(C=1)`` as the base learner and returns a
:class:`MixtureModel`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from fairal.trainers._base import as_arrays, check_positive_int
from fairal.trainers.models import FitDetails

__all__ = ["FairlearnTrainer", "MixtureModel"]

logger = logging.getLogger(__name__)

_CONSTRAINTS = {"demographic_parity": DemographicParity, "equalized_odds": EqualizedOdds}


class MixtureModel:
    """fairlearn's randomized classifier, a weighted mixture of logistic regressions.

    ``predict_proba`` is the mixture's probability of predicting 1 (fairlearn's
    ``_pmf_predict``: the weights of the member classifiers whose hard
    prediction is 1), so the rows sum to 1. ``predict`` is deterministic,
    ``P(y=1) > 0.5``; fairlearn's own ``predict`` draws from the mixture at
    random, which would make evaluations irreproducible. The randomized
    classifier is the one whose expected disparity fairlearn bounds; the
    thresholded one usually keeps it close (``tests/test_fairlearn_trainer.py``).

    ``to_bytes`` returns ``None``: the mixture holds scikit-learn estimators,
    which can only be saved with pickle, and a model file must never run code
    when it is opened (see :mod:`fairal.trainers.models`). Retrain from the labels instead.
    """

    n_classes = 2

    def __init__(self, mitigator: ExponentiatedGradient, *, architecture: dict, details: FitDetails | None = None,
                 info: dict | None = None):
        self.mitigator = mitigator
        self.architecture = dict(architecture)
        self.details = details or FitDetails()
        self.info = dict(info or {})

    def predict_proba(self, X) -> np.ndarray:
        """Probability of each class under the mixture, shape (n, 2), rows summing to 1."""
        X = np.asarray(X, dtype=np.float32)
        with threadpool_limits(1, user_api="blas"):
            positive = np.asarray(self.mitigator._pmf_predict(X), dtype=np.float64)[:, 1]
        positive = np.clip(positive, 0.0, 1.0)  # weights sum to 1 up to rounding
        return np.stack([1.0 - positive, positive], axis=1)

    def predict(self, X) -> np.ndarray:
        """1 where the mixture predicts 1 with probability above 0.5 (deterministic)."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)

    def to_bytes(self) -> None:
        """No safe serialisation (it would need pickle): always ``None``."""
        return None


class FairlearnTrainer:
    """``ExponentiatedGradient(LogisticRegression(C), DemographicParity(difference_bound))``.

    Parameters
    ----------
    constraint : {"demographic_parity", "equalized_odds"}, default="demographic_parity"
        fairlearn's ``DemographicParity`` or ``EqualizedOdds`` moment.
    difference_bound : float, default=0.04
        ρ, the allowed violation (PANDA's 0.04).
    C : float, default=1.0
        Inverse L2 strength of the base logistic regression.
    eps, max_iter : float, int
        ``ExponentiatedGradient``'s duality-gap tolerance and iteration limit
        (fairlearn's defaults).

    Notes
    -----
    The sensitive features are the data's groups (``Dataset.group`` or the
    third element of an ``(X, y, group)`` tuple); without them ``fit`` raises.
    ``validation`` is ignored, and ``sample_weight`` is refused because
    fairlearn's reduction has no per-example weights. Labels must be 0/1.

    Degenerate training sets are left to fairlearn, whose answers are the
    sensible ones: with a single group the constraint is vacuous and the result
    is plain (unconstrained) logistic regression; with a single class every
    member is a constant classifier, so the model predicts that class. Both
    are logged as warnings and recorded in ``info["degenerate"]``.

    ``model.details.mixture_weights`` holds the weights of the mixture's
    members with non-zero weight (summing to 1).

    BLAS runs single-threaded during ``fit``: the base learner is refit some
    25 times on small data, and OpenBLAS threads competing with other
    processes (or torch's threads) made a 4,000-row fit take 12 s instead of 0.6 s.
    """

    name = "fairlearn"
    uses_validation = False
    needs_validation = False
    #: A project's demographic-parity bound is this trainer's ``difference_bound`` as it is
    #: (:func:`fairal.trainers.training.parity_params`).
    parity_bound_share = 1.0

    def __init__(
        self,
        constraint: Literal["demographic_parity", "equalized_odds"] = "demographic_parity",
        *,
        difference_bound: float = 0.04,
        C: float = 1.0,
        eps: float = 0.01,
        max_iter: int = 50,
    ):
        self.constraint = constraint
        self.difference_bound = difference_bound
        self.C = C
        self.eps = eps
        self.max_iter = max_iter

    def _check_params(self) -> None:
        if self.constraint not in _CONSTRAINTS:
            raise ValueError(
                f"constraint must be one of 'demographic_parity' or 'equalized_odds', got {self.constraint!r}"
            )
        if not self.difference_bound >= 0:
            raise ValueError(f"difference_bound must be non-negative, got {self.difference_bound!r}")
        if not self.C > 0:
            raise ValueError(f"C must be positive, got {self.C!r}")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps!r}")
        check_positive_int("max_iter", self.max_iter)

    def fit(self, data, *, sample_weight=None, validation=None) -> MixtureModel:
        self._check_params()
        X, y, group = as_arrays(data)
        if group is None:
            raise ValueError(
                "the fairlearn trainer needs the sensitive group of every training row: "
                "pass a Dataset or an (X, y, group) tuple"
            )
        if len(group) != len(X):
            raise ValueError(f"group must have one entry per row of X ({len(X)}), got {len(group)}")
        if sample_weight is not None:
            raise ValueError("the fairlearn trainer does not support sample_weight "
                             "(fairlearn's ExponentiatedGradient has no per-example weights)")
        if y.max() > 1:
            raise ValueError(f"the fairlearn trainer needs binary labels 0/1, got classes {np.unique(y).tolist()}")

        group = np.asarray(group).astype(str)
        degenerate = []
        if len(np.unique(group)) < 2:
            degenerate.append("single group")
        if len(np.unique(y)) < 2:
            degenerate.append("single class")
        for reason in degenerate:
            logger.warning("fairlearn trainer: the training set has a %s", reason)

        mitigator = ExponentiatedGradient(
            LogisticRegression(C=self.C),
            _CONSTRAINTS[self.constraint](difference_bound=self.difference_bound),
            eps=self.eps,
            max_iter=self.max_iter,
        )
        with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
            # fairlearn 0.15's internals trip pandas 3 deprecations; the base
            # learner's lbfgs may stop at max_iter on reweighted data.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            mitigator.fit(X, y, sensitive_features=group)

        weights = mitigator.weights_
        architecture = {"kind": "fairlearn_mixture", "base": "logistic", "n_features": int(X.shape[1]),
                        "n_classes": 2, "constraint": self.constraint,
                        "difference_bound": float(self.difference_bound), "C": float(self.C)}
        info = {"n_predictors": int((weights > 0).sum()), "n_oracle_calls": int(mitigator.n_oracle_calls_),
                "last_iter": int(mitigator.last_iter_),
                "best_gap": float(mitigator.best_gap_), "degenerate": degenerate}
        details = FitDetails(mixture_weights=np.asarray(weights[weights > 0], dtype=np.float64))
        return MixtureModel(mitigator, architecture=architecture, details=details, info=info)
