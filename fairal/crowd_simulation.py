"""A crowd that errs like a real one: shared mistakes on hard items, spammers, partial answering.

:func:`fairal.crowd.simulate_crowd` draws independent errors given the true
label, so more answers always converge to the truth (0.85-0.89 at N = 11
where FR-Train's Amazon Mechanical Turk workers reached 0.667 / 0.743,
Table 6). Real workers see the same features and misjudge the same
ambiguous items. :func:`simulate_feature_crowd` models that with a latent
judgement per answer (a Thurstone-style model)::

    s_ij = r_i + shared_noise * xi_i + truth_signal * (2 y_i - 1) + sigma_w * eps_ij

* ``r_i``: the item's *reference score*, a reference model's logit on the
  item's features, standardised (:func:`reference_scores`: a cross-fitted
  logistic regression on the true labels). Items near r = 0 are ambiguous
  (hard) and workers lean the way the features point, right or wrong.
* ``xi_i ~ N(0, 1)``: a misperception of the item that every worker shares.
* ``truth_signal``: what workers know beyond the reference model (can be 0).
* ``eps_ij ~ N(0, 1)``: the worker's own noise, ``sigma_w`` drawn per worker
  from the ``worker_noise`` range.

The 0/1 decision is ``s_ij > 0``; on the 1-4 scale it is "sure" (1 or 4)
when ``|s_ij| > sure_threshold * sigma_w``. Spammers (``spammer_share``)
answer uniformly at random. Each worker answers only part of the items:
worker w has an activity ``a_w`` (log-normal, ``activity_spread``), and each
item draws its workers without replacement with probabilities ∝ ``a_w``, so
a few workers answer many items and most answer few, as on crowd platforms.

:data:`TABLE6_CROWDS` holds parameters calibrated to FR-Train's Table 6 with
``benchmarks/crowd_calibration.py`` (the table beside Table 6 is in
``benchmarks/results/crowd_aggregation.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairal.crowd import CrowdDataError, _answer_counts, _binary_mapping, _scale_values, _simulated_answers, _worker_ids

__all__ = ["TABLE6_CROWDS", "reference_scores", "simulate_feature_crowd"]

#: Crowd parameters that reproduce FR-Train's Table 6 (mean score of N answers vs 2.5) within ±0.02 at
#: N = 1, 5, 11 on Adult (sex) and COMPAS (race), with 200 workers, 15 % spammers and the reference
#: scores of :func:`reference_scores`; found by ``benchmarks/crowd_calibration.py``.
TABLE6_CROWDS: dict[str, dict[str, Any]] = {
    "adult": {"shared_noise": 0.5, "truth_signal": 0.0, "worker_noise": (1.125, 1.875)},
    "compas": {"shared_noise": 1.5, "truth_signal": 0.5, "worker_noise": (1.875, 3.125)},
}


def reference_scores(X: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """A reference model's logit per row, divided by its standard deviation: logistic regression, cross-fitted.

    Each row's score comes from the model fitted on the other folds, so a
    row's own label does not leak into how ambiguous it looks. Each fit is
    solved to convergence (Newton, tol 1e-7), so the scores are the same on
    any machine and thread count to about 1e-5; lbfgs stopped early on Adult,
    where one and two BLAS threads gave scores 0.06 apart.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = LogisticRegression(solver="newton-cholesky", tol=1e-7, max_iter=100)
    logit = cross_val_predict(model, X, y, cv=cv, method="decision_function")
    return logit / logit.std()  # scaled, not centred: 0 stays the model's decision boundary


def _item_workers(counts: np.ndarray, activity: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Item index, position and worker of every answer: distinct workers per item, drawn ∝ activity."""
    n_items, n_workers = len(counts), len(activity)
    keys = np.log(activity)[None, :] + rng.gumbel(size=(n_items, n_workers))  # Gumbel top-k = draws w/o replacement
    order = np.argsort(-keys, axis=1)
    item_index, position = np.nonzero(np.arange(n_workers) < counts[:, None])
    return item_index, position, order[item_index, position]


def simulate_feature_crowd(
    truth: Mapping[Any, int] | pd.Series,
    reference_score: Mapping[Any, float] | pd.Series | Sequence[float] | np.ndarray,
    *,
    n_workers: int,
    answers_per_item: int | Sequence[int] | np.ndarray,
    scale: str,
    shared_noise: float = 1.0,
    truth_signal: float = 0.0,
    worker_noise: tuple[float, float] = (1.5, 2.5),
    sure_threshold: float = 1.0,
    spammer_share: float = 0.15,
    activity_spread: float = 1.0,
    seed: int | None = None,
    return_workers: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Answers of a crowd whose mistakes follow the items' features (see the module docstring).

    ``truth``: item id → 0/1; ``reference_score``: the items' reference
    scores, a mapping/Series by item id or a sequence in ``truth``'s order.
    Returns the long answers frame (:data:`fairal.crowd.ANSWER_COLUMNS`)
    and, with ``return_workers=True``, a frame by ``worker_id`` with
    ``noise`` (sigma_w), ``activity`` and ``spammer``.
    """
    allowed = np.asarray(_scale_values(scale))
    labels = _binary_mapping(truth, "truth")
    score = _aligned_scores(reference_score, labels.index)
    counts = _answer_counts(answers_per_item, len(labels), n_workers, spammer_share)
    low, high = worker_noise
    if not 0 < low <= high or shared_noise < 0 or sure_threshold < 0 or activity_spread < 0:
        raise CrowdDataError("need 0 < worker_noise low <= high and non-negative shared_noise, sure_threshold "
                             "and activity_spread")
    rng = np.random.default_rng(seed)
    noise = rng.uniform(low, high, size=n_workers)
    activity = rng.lognormal(0.0, activity_spread, size=n_workers)
    spammer = np.zeros(n_workers, dtype=bool)
    spammer[rng.choice(n_workers, size=round(spammer_share * n_workers), replace=False)] = True
    y = labels.to_numpy()
    item_mean = score + shared_noise * rng.standard_normal(len(y)) + truth_signal * (2 * y - 1)
    item_index, position, worker = _item_workers(counts, activity, rng)
    judgement = item_mean[item_index] + noise[worker] * rng.standard_normal(item_index.size)
    decision = (judgement > 0).astype(np.int64)
    if scale == "binary":
        answer = decision
    else:
        sure = np.abs(judgement) > sure_threshold * noise[worker]
        answer = np.where(decision == 1, np.where(sure, 4, 3), np.where(sure, 1, 2))
    answer = np.where(spammer[worker], rng.choice(allowed, size=worker.size), answer)
    worker_ids = _worker_ids(n_workers)
    answers = _simulated_answers(labels.index.to_numpy()[item_index], worker_ids[worker], answer, position)
    if not return_workers:
        return answers
    workers = pd.DataFrame({"noise": noise, "activity": activity, "spammer": spammer},
                           index=pd.Index(worker_ids.astype(str), name="worker_id"))
    return answers, workers


def _aligned_scores(reference_score, items: pd.Index) -> np.ndarray:
    """The reference scores in the order of ``items`` (item ids as str)."""
    if isinstance(reference_score, (pd.Series, Mapping)):
        series = pd.Series(reference_score) if not isinstance(reference_score, pd.Series) else reference_score
        series = series.set_axis(series.index.astype(str))
        missing = items.difference(series.index)
        if len(missing):
            raise CrowdDataError(f"reference_score has no score for {len(missing)} items, e.g. {missing[0]!r}")
        values = series.loc[items].to_numpy(dtype=float)
    else:
        values = np.asarray(reference_score, dtype=float)
        if values.shape != (len(items),):
            raise CrowdDataError(f"reference_score needs one score per truth item ({len(items)}), "
                                 f"got shape {values.shape}")
    if not np.isfinite(values).all():
        raise CrowdDataError("reference_score holds NaN or infinite values")
    return values
