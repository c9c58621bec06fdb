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
  the fitted classifier. The classifier's prior is cross-fitted: an item's
  own answers shape its posterior, the classifier's target, and would
  otherwise come back as its prior and be counted twice.
* :func:`fit_difficulty_learning_from_crowds`: the same ingredients, but
  workers may share their mistakes: an item's answers count for less where
  its features put it near the boundary (a GLAD-style clarity predicted
  from the features), by how much learned from the quiz items' known
  labels. On a crowd calibrated to FR-Train's Table 6 it beats the vote by
  0.036 (COMPAS) and 0.077 (Adult) where Raykar's model does not
  (``benchmarks/results/crowd_aggregation.md``).

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

__all__ = ["C_GRID", "CrowdModel", "CROWDKIT_AGGREGATORS", "FEATURE_MODELS", "MIN_GOLD", "crowdkit_aggregate",
           "difficulty_learning_from_crowds", "feature_aggregate", "fit_difficulty_learning_from_crowds",
           "fit_learning_from_crowds", "learning_from_crowds", "uncertain_items"]

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
    difficulty: dict[str, float] | None = None


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


def _fold_of(n: int, folds: int) -> np.ndarray:
    """Each row's fold (0 .. folds - 1), a fixed shuffle so refits across EM iterations use the same split."""
    return np.random.default_rng(0).permutation(n) % folds


#: The inverse regularisation strengths ``C="auto"`` chooses from.
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def _cross_entropy(target: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(target * np.log(p) + (1 - target) * np.log1p(-p)))


def _fit_classifier(classifier: Any, X: np.ndarray, posterior: np.ndarray, fold: np.ndarray | None) -> np.ndarray:
    """Fit P(y | x) to soft labels (each row twice, weighted by the posterior); its P(y = 1 | x).

    With ``fold``, each row's probability comes from the classifier fitted on
    the other folds (cross-fitting), so an item's own answers, which shaped
    its posterior, do not come back as its prior and get counted twice.
    ``classifier`` is left fitted on all rows.
    """
    def fit(rows: np.ndarray) -> Any:
        weights = np.r_[posterior[rows], 1 - posterior[rows]]
        ones, zeros = np.ones(len(rows)), np.zeros(len(rows))
        return classifier.fit(np.vstack([X[rows], X[rows]]), np.r_[ones, zeros], sample_weight=weights)

    if fold is None:
        return fit(np.arange(len(X))).predict_proba(X)[:, 1]
    prior = np.empty(len(X))
    for k in np.unique(fold):
        held_out = fold == k
        prior[held_out] = fit(np.flatnonzero(~held_out)).predict_proba(X[held_out])[:, 1]
    fit(np.arange(len(X)))
    return prior


def fit_learning_from_crowds(answers: pd.DataFrame, features: pd.DataFrame | Mapping[Any, Any], *, scale: str,
                             max_answers: int | None = None, n_iter: int = 50, tol: float = 1e-3,
                             C: float = 1.0, smoothing: float = 1.0, evidence_weight: float = 1.0,
                             folds: int = 5) -> CrowdModel:
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
    ``tol`` on average. The prior is cross-fitted over ``folds`` (each
    item's from the classifier fitted on the other folds; 0 or 1: in-sample,
    as before, when an item's own answers came back through its prior).
    ``labels["classifier"]`` is that out-of-fold P(y = 1 | x).

    ``evidence_weight`` < 1 tempers the answers' log-likelihood (a power
    likelihood): Raykar's model takes the answers as independent given the
    label, and a crowd that shares its mistakes is then counted as more
    evidence than it is (``benchmarks/results/crowd_aggregation.md``).
    """
    if not 0 < evidence_weight <= 1:
        raise CrowdDataError(f"evidence_weight must be in (0, 1], got {evidence_weight}")
    from sklearn.linear_model import LogisticRegression

    data = _CrowdArrays.build(answers, features, scale, max_answers)
    posterior = data.vote_share()
    classifier = LogisticRegression(C=C, max_iter=200, warm_start=True)
    fold = _fold_of(len(data.items), folds) if folds > 1 and len(data.items) >= 2 * folds else None
    done = 0
    for iteration in range(1, n_iter + 1):
        done = iteration
        confusion = data.confusions(posterior, smoothing)
        prior = np.clip(_fit_classifier(classifier, data.X, posterior, fold), 1e-6, 1 - 1e-6)
        total = evidence_weight * data.evidence(confusion)
        updated = 1 / (1 + np.exp(-(_logit(prior) + total)))
        change, posterior = float(np.abs(updated - posterior).mean()), updated
        if change < tol:
            break
    logger.info("learning from crowds: %d items, %d workers, %d EM iterations", len(data.items),
                len(data.workers), done)
    labels = _result(data.n_answers, pd.Series(posterior, index=data.items), float(posterior.mean()))
    labels["classifier"] = pd.Series(prior, index=data.items).reindex(labels.index).to_numpy()
    return CrowdModel(labels=labels, workers=data.worker_frame(confusion), classifier=classifier, n_iter=done)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@dataclass
class _CrowdArrays:
    """The answers as index arrays (item, worker, answer value) beside the items' feature matrix."""

    items: pd.Index
    workers: pd.Index
    values: np.ndarray
    scale: str
    X: np.ndarray
    item: np.ndarray
    worker: np.ndarray
    answer: np.ndarray
    vote: np.ndarray
    n_answers: pd.Series

    @classmethod
    def build(cls, answers: pd.DataFrame, features: pd.DataFrame | Mapping[Any, Any], scale: str,
              max_answers: int | None) -> _CrowdArrays:
        values = np.asarray(_scale_values(scale))
        votes = _binary_answers(_first_answers(answers, max_answers), scale)
        items = pd.Index(pd.unique(votes["item_id"]))
        workers = pd.Index(pd.unique(votes["worker_id"]))
        return cls(items=items, workers=workers, values=values, scale=scale, X=_feature_matrix(features, items),
                   item=items.get_indexer(votes["item_id"]), worker=workers.get_indexer(votes["worker_id"]),
                   answer=np.searchsorted(values, votes["answer"].to_numpy()),
                   vote=votes["vote"].to_numpy(float), n_answers=votes.groupby("item_id", sort=False).size())

    def vote_share(self) -> np.ndarray:
        """The share of positive decisions per item (the soft majority vote)."""
        positives = np.bincount(self.item, weights=self.vote, minlength=len(self.items))
        return positives / np.bincount(self.item, minlength=len(self.items))

    def confusions(self, posterior: np.ndarray, smoothing: float) -> np.ndarray:
        return _confusions(posterior, self.item, self.worker, self.answer, len(self.workers), len(self.values),
                           smoothing)

    def evidence(self, confusion: np.ndarray) -> np.ndarray:
        """Per item, the log-likelihood ratio of its answers, log P(answers | y = 1) / P(answers | y = 0)."""
        ratio = np.log(confusion[self.worker, 1, self.answer]) - np.log(confusion[self.worker, 0, self.answer])
        return np.bincount(self.item, weights=ratio, minlength=len(self.items))

    def worker_frame(self, confusion: np.ndarray) -> pd.DataFrame:
        return _worker_frame(confusion, self.workers, self.worker, self.values, self.scale)


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


#: Quiz items (known labels, both classes, with answers) needed to fit the item difficulty; with fewer,
#: :func:`fit_difficulty_learning_from_crowds` counts each item's answers as one.
MIN_GOLD = 10


def _fit_delta(log_odds: np.ndarray, evidence: np.ndarray, margin: np.ndarray, truth: np.ndarray,
               penalty: float, start: np.ndarray) -> np.ndarray:
    """(delta_0, delta_1, log gamma) that best predict the known labels ``truth``.

    gamma scales the classifier's log-odds: it is fitted to the crowd's
    vote share, which is less sure than the truth, so without gamma the
    quiz items would ask for more of the answers' evidence only to sharpen
    the prior. The L2 ``penalty`` pulls the three towards ``start`` (the
    one-answer-per-item clarity, gamma = 1), so a few quiz items move them
    only as far as they show.
    """
    from scipy.optimize import minimize

    def loss(delta: np.ndarray) -> float:
        clarity = 1 / (1 + np.exp(-(delta[0] + delta[1] * margin)))
        z = np.exp(delta[2]) * log_odds + clarity * evidence
        shift = delta - start
        return float(np.logaddexp(0, -np.where(truth == 1, z, -z)).sum() + penalty / 2 * shift @ shift)

    return minimize(loss, start, method="L-BFGS-B", bounds=[(-10, 10), (-10, 10), (-3, 3)]).x


def _gold_positions(gold: Mapping[Any, int] | pd.Series | None, items: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``items`` of the answered quiz items and their 0/1 labels."""
    if gold is None:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    series = pd.Series(gold) if not isinstance(gold, pd.Series) else gold
    series = series.set_axis(series.index.astype(str))
    if not series.isin([0, 1]).all():
        raise CrowdDataError("gold labels must be 0 or 1")
    where = items.get_indexer(series.index)
    answered = where >= 0
    return where[answered], series.to_numpy(dtype=int)[answered]


def _difficulty_em(data: _CrowdArrays, posterior: np.ndarray, log_odds: np.ndarray,
                   gold: tuple[np.ndarray, np.ndarray] | None, *, smoothing: float, penalty: float, n_iter: int,
                   tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """EM of :func:`fit_difficulty_learning_from_crowds`: posterior, clarity, delta, confusions, iterations.

    ``gold``: positions and labels of the quiz items that fit delta (None:
    clarity 1 / n_i, delta NaN).
    """
    margin = np.abs(log_odds) / max(float(np.abs(log_odds).std()), 1e-9)
    delta, clarity = np.full(3, np.nan), 1 / data.n_answers.reindex(data.items).to_numpy(float)
    mean_answers = float(data.n_answers.mean())
    start = np.array([np.log(1 / (mean_answers - 1)) if mean_answers > 1 else 0.0, 0.0, 0.0])  # clarity 1 / n
    scaled, done = log_odds, 0
    for iteration in range(1, max(n_iter, 1) + 1):
        done = iteration
        confusion = data.confusions(posterior, smoothing)
        evidence = data.evidence(confusion)
        if gold is not None:
            at, known = gold
            delta = _fit_delta(log_odds[at], evidence[at], margin[at], known, penalty, start)
            clarity = 1 / (1 + np.exp(-(delta[0] + delta[1] * margin)))
            scaled = np.exp(delta[2]) * log_odds
        updated = 1 / (1 + np.exp(-(scaled + clarity * evidence)))
        change, posterior = float(np.abs(updated - posterior).mean()), updated
        if change < tol:
            break
    return posterior, clarity, delta, confusion, done


def _prior_classifier(X: np.ndarray, target: np.ndarray, fold: np.ndarray | None,
                      C: float | str) -> tuple[Any, np.ndarray]:
    """The logistic regression p(x) fitted on all rows, and its cross-fitted prior (clipped off 0 and 1).

    ``C="auto"``: the C of :data:`C_GRID` whose cross-fitted prior best predicts ``target`` (cross-entropy).
    """
    from sklearn.linear_model import LogisticRegression

    fitted = {}  # C -> (classifier fitted on all rows, cross-fitted prior)
    for c in C_GRID if C == "auto" else (float(C),):
        classifier = LogisticRegression(C=c, max_iter=500)
        fitted[c] = classifier, _fit_classifier(classifier, X, target, fold)
    classifier, prior = fitted[min(fitted, key=lambda c: _cross_entropy(target, fitted[c][1]))]
    return classifier, np.clip(prior, 1e-6, 1 - 1e-6)


def fit_difficulty_learning_from_crowds(
        answers: pd.DataFrame, features: pd.DataFrame | Mapping[Any, Any], *, scale: str,
        gold: Mapping[Any, int] | pd.Series | None = None, max_answers: int | None = None, n_iter: int = 50,
        tol: float = 1e-3, C: float | str = "auto", smoothing: float = 1.0, folds: int = 5,
        penalty: float = 1.0) -> CrowdModel:
    """Learning from crowds whose workers share their mistakes on hard items.

    Raykar's model counts an item's n answers as n independent pieces of
    evidence. Workers who read the same features misjudge the same
    ambiguous items, so there 11 answers say little more than one. Here
    each item has a *clarity* beta_i in (0, 1), predicted from how far its
    features put it from the decision boundary::

        logit P(y_i = 1 | x_i, answers) = logit p(x_i) + beta_i * sum_j log P(a_ij | y = 1) / P(a_ij | y = 0)
        beta_i = sigmoid(delta_0 + delta_1 * |logit p(x_i)| / sd)

    ``p(x)``: a logistic regression on the features fitted to the
    share of positive decisions per item (quiz items: their known label),
    cross-fitted over ``folds`` so an item's own answers are not its prior.
    ``C="auto"`` picks its inverse regularisation from :data:`C_GRID` by the
    cross-fitted cross-entropy of those same targets (no known label is
    used): with a few hundred items and a hundred one-hot columns, C = 1
    overfits the crowd's shared mistakes (Adult: 0.805 against 0.818).
    ``P(a | y)``: one confusion matrix per worker, as in Raykar's EM,
    re-estimated against the posterior (the quiz items' known labels are
    kept out of it, or they would make their own answers look right).
    ``delta`` and a scale gamma on the classifier's log-odds (it is fitted
    to vote shares, less sure than the truth): maximum likelihood of the quiz items' known labels
    (``gold``: item id -> 0/1; their answers must be in ``answers`` and
    their rows in ``features``), L2 ``penalty``. How much the crowd's
    agreement is worth beyond the features cannot be learned from the
    answers alone (shared mistakes look like agreement on the truth), so
    with fewer than :data:`MIN_GOLD` answered quiz items of both classes
    beta_i = 1 / n_i: an item's answers count as one answer.

    Returns a :class:`CrowdModel` whose ``labels`` add ``classifier``
    (p(x)) and ``clarity`` (beta_i) and whose ``difficulty`` holds delta
    (NaN when not fitted) and the number of quiz items used.
    """
    data = _CrowdArrays.build(answers, features, scale, max_answers)
    gold_at, gold_y = _gold_positions(gold, data.items)
    target = data.vote_share()
    target[gold_at] = gold_y
    fold = _fold_of(len(data.items), folds) if folds > 1 and len(data.items) >= 2 * folds else None
    classifier, prior = _prior_classifier(data.X, target, fold, C)
    log_odds = _logit(prior)
    gold_known = (gold_at, gold_y) if len(gold_at) >= MIN_GOLD and 0 < gold_y.sum() < len(gold_y) else None
    posterior, clarity, delta, confusion, done = _difficulty_em(data, target, log_odds, gold_known, smoothing=smoothing,
                                                                penalty=penalty, n_iter=n_iter, tol=tol)
    logger.info("learning from crowds with item difficulty: %d items, %d quiz items, delta %s, %d EM iterations",
                len(data.items), len(gold_at), delta, done)
    labels = _result(data.n_answers, pd.Series(posterior, index=data.items), float(posterior.mean()))
    for name, column in (("classifier", prior), ("clarity", clarity)):
        labels[name] = pd.Series(column, index=data.items).reindex(labels.index).to_numpy()
    return CrowdModel(labels=labels, workers=data.worker_frame(confusion), classifier=classifier, n_iter=done,
                      difficulty={"delta_0": float(delta[0]), "delta_1": float(delta[1]),
                                  "prior_scale": float(np.exp(delta[2])), "n_gold": len(gold_at),
                                  "C": float(classifier.C)})


def difficulty_learning_from_crowds(answers: pd.DataFrame, *, features: pd.DataFrame | Mapping[Any, Any],
                                    scale: str, gold: Mapping[Any, int] | pd.Series | None = None,
                                    max_answers: int | None = None, **options: Any) -> pd.DataFrame:
    """The aggregator frame of :func:`fit_difficulty_learning_from_crowds`."""
    return fit_difficulty_learning_from_crowds(answers, features, scale=scale, gold=gold, max_answers=max_answers,
                                               **options).labels


#: The aggregators of this module that read the items' features (and, optionally, quiz items' known labels).
FEATURE_MODELS = {"learning_from_crowds": learning_from_crowds,
                  "learning_from_crowds_difficulty": difficulty_learning_from_crowds}


def feature_aggregate(answers: pd.DataFrame, method: str, *, features: pd.DataFrame | Mapping[Any, Any],
                      gold: Mapping[Any, int] | pd.Series | None = None, **options: Any) -> pd.DataFrame:
    """Labels from one of :data:`FEATURE_MODELS`; ``gold`` (quiz item id -> 0/1) reaches the difficulty model only."""
    if method not in FEATURE_MODELS:
        raise CrowdDataError(f"method must be one of {', '.join(FEATURE_MODELS)}, got {method!r}")
    if method == "learning_from_crowds_difficulty":
        options["gold"] = gold
    return FEATURE_MODELS[method](answers, features=features, **options)


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
