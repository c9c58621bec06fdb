"""More crowd aggregators: crowd-kit's models, and learning from crowds with the item features.

:mod:`fairal.crowd` has majority vote, FR-Train's mean score and
Dawid-Skene. This module adds, behind the same contract (answers frame in;
a frame indexed by ``item_id`` with ``label``, ``n_answers``, ``posterior``
= P(label = 1), ``confidence`` = the chosen label's probability and
``tied`` out):

* crowd-kit's GLAD (Whitehill et al., 2009: worker skill x item
  difficulty), MACE (Hovy et al., 2013: spammer/competent mixture), M-MSR
  (Ma & Olshevsky, 2020: worker skills from the answer covariance), the
  one-coin Dawid-Skene model (one accuracy per worker) and Dawid-Skene on
  the four answer classes of the 1-4 scale before binarising (P(positive) =
  P(3) + P(4)). They come from crowd-kit 1.4.2 as they are; nothing is
  re-implemented.
* :func:`learning_from_crowds`: Raykar et al. (JMLR 2010), "Learning from
  crowds". EM that fits, together, a logistic regression on the item
  features (P(y = 1 | x)) and one confusion matrix per worker (P(answer |
  y), 2 x K for K answer values, so a worker's "sure" and "probably"
  answers are weighed separately); the posterior of an item combines the
  classifier's prior with its answers. Where workers share their mistakes
  on items whose features mislead them, the classifier brings the
  information of the other items' features, which a vote cannot.
  :func:`fit_learning_from_crowds` also returns the per-worker matrices and
  the fitted classifier.

crowd-kit is imported only when one of its models runs (about a second,
it loads nltk).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairal.crowd import SCALES, CrowdDataError, _binary_answers, _first_answers, _scale_values

__all__ = ["CrowdModel", "CROWDKIT_AGGREGATORS", "crowdkit_aggregate", "fit_learning_from_crowds",
           "learning_from_crowds", "uncertain_items"]

logger = logging.getLogger(__name__)

#: Aggregators of this module backed by crowd-kit; ``dawid_skene_4`` needs the confidence4 scale.
CROWDKIT_AGGREGATORS = ("glad", "mace", "mmsr", "one_coin_dawid_skene", "dawid_skene_4")


def _result(n_answers: pd.Series, posterior: pd.Series, prior: float) -> pd.DataFrame:
    """The aggregator contract from a posterior P(label = 1) per item (ties broken by ``prior``)."""
    result = pd.DataFrame({"n_answers": n_answers})
    result["posterior"] = posterior.reindex(result.index).to_numpy(dtype=float)
    tied = np.isclose(result["posterior"], 0.5)
    result["label"] = np.where(tied, int(prior > 0.5), result["posterior"] > 0.5).astype(np.int64)
    result["confidence"] = np.where(result["label"] == 1, result["posterior"], 1 - result["posterior"])
    result["tied"] = tied
    return result[["label", "n_answers", "posterior", "confidence", "tied"]]


def _crowdkit_model(method: str, seed: int) -> Any:
    from crowdkit import aggregation

    models = {"glad": lambda: aggregation.GLAD(n_iter=100, tol=1e-5),
              "mace": lambda: aggregation.MACE(n_restarts=2, n_iter=50, random_state=seed),
              "mmsr": lambda: aggregation.MMSR(random_state=seed),
              "one_coin_dawid_skene": lambda: aggregation.OneCoinDawidSkene(n_iter=100, tol=1e-5),
              "dawid_skene_4": lambda: aggregation.DawidSkene(n_iter=100, tol=1e-5)}
    return models[method]()


def crowdkit_aggregate(answers: pd.DataFrame, method: str, *, scale: str, max_answers: int | None = None,
                       seed: int = 0) -> pd.DataFrame:
    """Labels from one of crowd-kit's models (:data:`CROWDKIT_AGGREGATORS`), on 0/1 decisions.

    ``dawid_skene_4`` fits Dawid-Skene on the raw 1-4 answers (4 x 4
    confusion matrices) and adds P(3) + P(4). M-MSR gives no probabilities:
    its ``posterior`` is the share of its positive vote score. ``seed``
    seeds MACE's restarts and M-MSR.
    """
    if method not in CROWDKIT_AGGREGATORS:
        raise CrowdDataError(f"method must be one of {', '.join(CROWDKIT_AGGREGATORS)}, got {method!r}")
    if method == "dawid_skene_4" and scale != "confidence4":
        raise CrowdDataError("dawid_skene_4 needs answers on the confidence4 scale (1-4); use dawid_skene")
    votes = _binary_answers(_first_answers(answers, max_answers), scale)
    labels = votes["answer"] if method == "dawid_skene_4" else votes["vote"]
    data = pd.DataFrame({"task": votes["item_id"].to_numpy(), "worker": votes["worker_id"].to_numpy(),
                         "label": labels.to_numpy()})
    model = _crowdkit_model(method, seed)
    with warnings.catch_warnings():  # crowd-kit 1.4.2 under pandas 3: copy=False deprecations
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        if method == "mmsr":
            scores = model.fit_predict_score(data).clip(lower=0)
            posterior = scores.get(1, 0.0) / scores.sum(axis=1).replace(0, np.nan)
            posterior = posterior.fillna(0.5)
        else:
            probas = model.fit(data).probas_
            positive = [c for c in probas.columns if c in ((3, 4) if method == "dawid_skene_4" else (1,))]
            posterior = probas[positive].sum(axis=1)
    n_answers = votes.groupby("item_id", sort=False).size()
    return _result(n_answers, posterior, float(votes["vote"].mean()))


# --------------------------------------------------------------------------
# Learning from crowds (Raykar et al., 2010)
# --------------------------------------------------------------------------


@dataclass
class CrowdModel:
    """What :func:`fit_learning_from_crowds` learned.

    ``labels``: the aggregator frame (plus ``classifier``: P(y = 1 | x)
    alone). ``workers``: per worker the confusion matrix P(answer = a | y)
    as columns ``p_<a>_given_<y>``, ``n_answers``, and ``accuracy`` (the
    balanced accuracy of the worker's 0/1 decisions). ``classifier``: the
    fitted scikit-learn model. ``n_iter``: EM iterations run.
    """

    labels: pd.DataFrame
    workers: pd.DataFrame
    classifier: Any
    n_iter: int


def _feature_matrix(features: pd.DataFrame | Mapping[Any, Any], items: pd.Index) -> np.ndarray:
    """The rows of ``features`` (indexed by item id, compared as str) for ``items``, in that order."""
    frame = features if isinstance(features, pd.DataFrame) else pd.DataFrame.from_dict(dict(features), orient="index")
    frame = frame.set_axis(frame.index.astype(str), axis=0)
    if frame.index.has_duplicates:
        raise CrowdDataError(f"features list item {frame.index[frame.index.duplicated()][0]!r} more than once")
    missing = items.difference(frame.index)
    if len(missing):
        raise CrowdDataError(f"features have no row for {len(missing)} answered items, e.g. {missing[0]!r}")
    matrix = frame.loc[items].to_numpy(dtype=float)
    if not np.isfinite(matrix).all():
        raise CrowdDataError("features hold NaN or infinite values")
    return matrix


def _confusions(posterior: np.ndarray, item: np.ndarray, worker: np.ndarray, answer: np.ndarray,
                n_workers: int, n_values: int, smoothing: float) -> np.ndarray:
    """M-step: P(answer | y) per worker, shape (workers, 2, values), with add-``smoothing`` counts."""
    counts = np.full((n_workers, 2, n_values), smoothing)
    np.add.at(counts[:, 1, :], (worker, answer), posterior[item])
    np.add.at(counts[:, 0, :], (worker, answer), 1 - posterior[item])
    return counts / counts.sum(axis=2, keepdims=True)


def _fit_classifier(classifier: Any, X: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    """Fit P(y | x) to soft labels (each row twice, weighted by the posterior); its P(y = 1 | x)."""
    n = len(X)
    weights = np.r_[posterior, 1 - posterior]
    classifier.fit(np.vstack([X, X]), np.r_[np.ones(n), np.zeros(n)], sample_weight=weights)
    return classifier.predict_proba(X)[:, 1]


def fit_learning_from_crowds(answers: pd.DataFrame, features: pd.DataFrame | Mapping[Any, Any], *, scale: str,
                             max_answers: int | None = None, n_iter: int = 50, tol: float = 1e-3,
                             C: float = 1.0, smoothing: float = 1.0, evidence_weight: float = 1.0) -> CrowdModel:
    """Raykar et al.'s EM: a logistic regression on ``features`` and a confusion matrix per worker.

    ``features``: a frame (or mapping) indexed by item id with one numeric
    row per answered item (e.g. the data set's ``X``, or the project's
    representation). The confusion matrices are over the raw answer values
    of ``scale`` (2 x 2 for binary, 2 x 4 for confidence4), with
    ``smoothing`` pseudo-counts per cell. EM starts from the share of
    positive decisions per item (the soft majority vote), then alternates
    the M-step (matrices; classifier: ``LogisticRegression(C=C)`` on the
    soft labels) and the E-step (posterior ∝ classifier prior x the
    likelihood of the item's answers) until the posteriors move less than
    ``tol`` on average.

    ``evidence_weight`` < 1 tempers the answers' log-likelihood (a power
    likelihood): Raykar's model takes the answers as independent given the
    label, and a crowd that shares its mistakes is then counted as more
    evidence than it is (``benchmarks/results/crowd_aggregation.md``).
    """
    if not 0 < evidence_weight <= 1:
        raise CrowdDataError(f"evidence_weight must be in (0, 1], got {evidence_weight}")
    from sklearn.linear_model import LogisticRegression

    values = np.asarray(_scale_values(scale))
    votes = _binary_answers(_first_answers(answers, max_answers), scale)
    items = pd.Index(pd.unique(votes["item_id"]))
    workers = pd.Index(pd.unique(votes["worker_id"]))
    X = _feature_matrix(features, items)
    item, worker = items.get_indexer(votes["item_id"]), workers.get_indexer(votes["worker_id"])
    answer = np.searchsorted(values, votes["answer"].to_numpy())
    positives = np.bincount(item, weights=votes["vote"].to_numpy(float), minlength=len(items))
    posterior: np.ndarray = positives / np.bincount(item, minlength=len(items))
    classifier = LogisticRegression(C=C, max_iter=200, warm_start=True)
    done = 0
    for iteration in range(1, n_iter + 1):
        done = iteration
        confusion = _confusions(posterior, item, worker, answer, len(workers), len(values), smoothing)
        prior = np.clip(_fit_classifier(classifier, X, posterior), 1e-6, 1 - 1e-6)
        log_odds = np.log(prior) - np.log1p(-prior)
        evidence = np.log(confusion[worker, 1, answer]) - np.log(confusion[worker, 0, answer])
        total = evidence_weight * np.bincount(item, weights=evidence, minlength=len(items))
        updated = 1 / (1 + np.exp(-(log_odds + total)))
        change, posterior = float(np.abs(updated - posterior).mean()), updated
        if change < tol:
            break
    logger.info("learning from crowds: %d items, %d workers, %d EM iterations", len(items), len(workers), done)
    n_answers = votes.groupby("item_id", sort=False).size()
    labels = _result(n_answers, pd.Series(posterior, index=items), float(posterior.mean()))
    labels["classifier"] = pd.Series(prior, index=items).reindex(labels.index).to_numpy()
    return CrowdModel(labels=labels, workers=_worker_frame(confusion, workers, worker, values, scale),
                      classifier=classifier, n_iter=done)


def _worker_frame(confusion: np.ndarray, workers: pd.Index, worker: np.ndarray, values: np.ndarray,
                  scale: str) -> pd.DataFrame:
    frame = pd.DataFrame({f"p_{a}_given_{y}": confusion[:, y, k] for y in (0, 1) for k, a in enumerate(values)},
                         index=pd.Index(workers, name="worker_id"))
    positive = values >= (3 if scale == "confidence4" else 1)
    frame["accuracy"] = (confusion[:, 1, positive].sum(axis=1) + confusion[:, 0, ~positive].sum(axis=1)) / 2
    frame.insert(0, "n_answers", np.bincount(worker, minlength=len(workers)))
    return frame


def learning_from_crowds(answers: pd.DataFrame, *, features: pd.DataFrame | Mapping[Any, Any], scale: str,
                         max_answers: int | None = None, **options: Any) -> pd.DataFrame:
    """The aggregator frame of :func:`fit_learning_from_crowds` (plus its ``classifier`` column)."""
    return fit_learning_from_crowds(answers, features, scale=scale, max_answers=max_answers, **options).labels


def uncertain_items(labels: pd.DataFrame, *, min_confidence: float = 0.8) -> pd.Index:
    """Items whose aggregated label is less sure than ``min_confidence``, least sure first.

    ``labels``: an aggregator's frame with a ``confidence`` column (every
    aggregator but the mean score has one). These are the items to ask
    more workers about.
    """
    if "confidence" not in labels.columns:
        raise CrowdDataError("these labels have no confidence column (mean_score gives none); "
                             "use an aggregator with a posterior")
    if not 0.5 <= min_confidence <= 1:
        raise CrowdDataError(f"min_confidence must be in [0.5, 1], got {min_confidence}")
    unsure = labels[labels["confidence"] < min_confidence]
    return unsure.sort_values("confidence", kind="stable").index


SCALE_VALUES = SCALES  # re-exported for callers that build features next to the scale
