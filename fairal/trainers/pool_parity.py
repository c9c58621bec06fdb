"""Parity measured on the pool: a logistic regression whose groups get positives at rates within
ρ of each other on the data it will be used on, not on the labels active learning picked.

Why. A query strategy picks unrepresentative examples (PANDA's picks are mostly negatives), so a
parity constraint measured on the labeled rows does not carry over: fairlearn's
``ExponentiatedGradient`` on PANDA's 450 labels is already fair on them (DP 0.02) and still gives
DP 0.11 on the test set (``benchmarks/results/frontier.md``). Demographic parity needs no labels,
so it can be measured where it matters: on the pool, every item the project could label, which
is drawn like the data the model will meet.

How. :class:`PoolParityTrainer` fits the ``erm`` logistic regression on the labels, then moves
its decision boundary along the direction that tells the groups apart (a logistic regression of
the group on the features, fitted on the pool: the group need not be a feature, and the result
stays one linear model that predicts from the features alone, saves and loads like ``erm``'s and
serves every strategy). Along that direction it takes the smallest shift, and then the threshold,
that makes every group's positive rate on the pool lie within ``difference_bound`` of the overall
rate (DP *to overall*, PANDA's Δ^DP and fairlearn's ``DemographicParity``) while maximising the
plug-in estimate of F1 (or accuracy) on the pool, computed from the fitted model's own
probabilities: no label is needed.

fairlearn's ``ThresholdOptimizer`` post-processes in the same spirit but measures parity on the
labeled rows it is fitted on and needs the group at prediction time, so it cannot be used here.

Measured (Adult, PANDA split, B = 400, 5 seeds, test set; ``benchmarks/frontier.py``): PANDA's
picks give F1 0.612 ± 0.005 at DP 0.023 with this trainer, against 0.653 / 0.111 with ``erm``
and 0.652 / 0.110 with ``fairlearn``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Literal

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression as GroupClassifier

from fairal.metrics import demographic_parity_difference
from fairal.trainers._base import as_arrays, check_positive_int
from fairal.trainers.erm import ERMTrainer
from fairal.trainers.models import FittedModel, LogisticRegression

__all__ = ["PoolParityTrainer", "parity_on_pool"]

logger = logging.getLogger(__name__)

_OBJECTIVES = ("f1", "accuracy")
#: The group directions of the last pools seen (:func:`_group_directions`), most recent last.
_DIRECTIONS: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_DIRECTIONS_LOCK = threading.Lock()
#: Multiples of the equalising shift tried along the group direction (0 = the plain model).
_SHIFTS = np.linspace(0.0, 1.5, 31)


class PoolParityTrainer:
    """``erm``'s logistic regression, shifted so that demographic parity holds on the pool.

    Parameters
    ----------
    difference_bound : float, default=0.03
        The largest allowed gap between a group's positive rate on the pool and the overall rate.
        It is a little below the ρ = 0.04 projects measure on the test set, which is another
        sample: on Adult the test-set DP was 0.023 ± 0.002 at 0.03 (5 seeds).
    objective : {"f1", "accuracy"}, default="f1"
        What the threshold maximises, estimated on the pool from the model's probabilities.
    C : float, default=1.0
        Inverse L2 strength of the logistic regression (``erm``'s ``C``).
    max_pool_rows : int, default=20000
        The pool is subsampled (seeded) to this many rows: the rates it estimates are then exact
        to about ±0.005, and a retrain stays well under a second on a million-item pool.
    random_state : int or None, default=0
        Seeds the subsample and the logistic regression.

    Notes
    -----
    ``fit(data, *, pool=(X, group))``: projects and ``simulate`` pass the whole pool, labeled or
    not. Without a pool the training rows themselves are the reference, which is what
    fairlearn does, and inherits its problem; ``model.info["reference"]`` says which was used.
    Labels must be 0/1. ``model.info`` also holds the pool's DP before and after, the positive
    rate chosen and the shift.
    """

    name = "pool_parity"
    uses_validation = False
    needs_validation = False
    uses_pool = True
    #: The share of a project's demographic-parity bound aimed for on the pool
    #: (:func:`fairal.trainers.training.parity_params`): the rest absorbs the difference between the
    #: pool and the data the model meets (on Adult's test set, DP came out up to 0.01 above the pool's).
    parity_bound_share = 0.75

    def __init__(self, difference_bound: float = 0.03, *, objective: Literal["f1", "accuracy"] = "f1",
                 C: float = 1.0, max_pool_rows: int = 20_000, random_state: int | None = 0):
        self.difference_bound = difference_bound
        self.objective = objective
        self.C = C
        self.max_pool_rows = max_pool_rows
        self.random_state = random_state

    def _check_params(self) -> None:
        if not 0 <= self.difference_bound < 1:
            raise ValueError(f"difference_bound must be in [0, 1), got {self.difference_bound!r}")
        if self.objective not in _OBJECTIVES:
            raise ValueError(f"objective must be one of {_OBJECTIVES}, got {self.objective!r}")
        if not self.C > 0:
            raise ValueError(f"C must be positive, got {self.C!r}")
        check_positive_int("max_pool_rows", self.max_pool_rows)

    def fit(self, data, *, sample_weight=None, validation=None, pool=None) -> FittedModel:
        self._check_params()
        X, y, group = as_arrays(data)
        if y.max() > 1:
            raise ValueError(f"the pool_parity trainer needs binary labels 0/1, got classes {np.unique(y).tolist()}")
        base = ERMTrainer(C=self.C, random_state=self.random_state).fit((X, y), sample_weight=sample_weight)
        reference = "pool"
        if pool is None:
            if group is None:
                raise ValueError("the pool_parity trainer needs the pool's groups (pool=(X, group)) "
                                 "or the training rows' groups")
            pool, reference = (X, group), "training rows"
        pool_X, pool_group = _subsample(pool, self.max_pool_rows, self.random_state)
        if pool_X.shape[1] != X.shape[1]:
            raise ValueError(f"the pool has {pool_X.shape[1]} features, the training rows {X.shape[1]}")
        linear = base.module.linear
        assert isinstance(linear, torch.nn.Linear)
        weight = linear.weight.detach().cpu().double().numpy()[0]
        bias = float(linear.bias.detach().cpu().double().numpy()[0])
        shifted_weight, shifted_bias, info = parity_on_pool(
            weight, bias, pool_X, pool_group, difference_bound=self.difference_bound, objective=self.objective,
            random_state=self.random_state)
        module = LogisticRegression(X.shape[1]).to(linear.weight.device)
        with torch.no_grad():
            module.linear.weight.copy_(torch.as_tensor(shifted_weight[None, :], dtype=module.linear.weight.dtype))
            module.linear.bias.fill_(shifted_bias)
        info.update(reference=reference, pool_rows=len(pool_X), difference_bound=float(self.difference_bound))
        return FittedModel(module, architecture=base.architecture, info=info)


def _subsample(pool, max_rows: int, random_state: int | None) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(pool, tuple) and len(pool) == 2):
        raise TypeError(f"pool must be an (X, group) tuple, got {type(pool).__name__}")
    pool_X, pool_group = np.asarray(pool[0]), np.asarray(pool[1])
    if pool_X.ndim != 2 or len(pool_X) != len(pool_group) or len(pool_X) == 0:
        raise ValueError(f"pool must be a non-empty (X, group) with one group per row, got shapes "
                         f"{pool_X.shape} and {pool_group.shape}")
    if len(pool_X) > max_rows:  # before the float64 copy: a million-item pool is not copied whole
        keep = np.sort(np.random.default_rng(random_state).choice(len(pool_X), size=max_rows, replace=False))
        pool_X, pool_group = pool_X[keep], pool_group[keep]
    return pool_X.astype(np.float64), pool_group


def parity_on_pool(weight: np.ndarray, bias: float, pool_X: np.ndarray, pool_group: np.ndarray, *,
                   difference_bound: float, objective: str = "f1",
                   random_state: int | None = 0) -> tuple[np.ndarray, float, dict]:
    """``(weight, bias, info)`` of the linear model ``x·weight + bias`` moved along the groups'
    direction and thresholded so that every group's positive rate on ``pool_X`` is within
    ``difference_bound`` of the overall rate, with the best plug-in ``objective`` among such models.

    The plug-in objective counts each pool row as positive with the original model's probability.
    If no shift reaches the bound (a group the features cannot tell apart), the model with the
    smallest disparity is returned and ``info["reached"]`` is False.
    """
    codes = np.unique(pool_group, return_inverse=True)[1].reshape(-1)
    scores = pool_X @ weight + bias
    probability = 1.0 / (1.0 + np.exp(-scores))
    before = demographic_parity_difference(None, scores > 0, sensitive_features=codes, method="to_overall")
    if codes.max() == 0:  # one group: parity holds; only the threshold is chosen
        direction_w, direction_b = np.zeros((1, len(weight))), np.zeros(1)
    else:
        direction_w, direction_b = _group_directions(pool_X, codes, random_state)
    directions = pool_X @ direction_w.T + direction_b
    full = _equalising_shift(scores, directions, codes, probability, objective)
    best = None
    for multiple in _SHIFTS:
        shift = multiple * full
        shifted = scores + directions @ shift
        value, threshold, disparity, _ = _best_threshold(shifted, codes, probability, objective, difference_bound)
        candidate = (disparity <= difference_bound + 1e-12, value if disparity <= difference_bound + 1e-12
                     else -disparity, -multiple, shift, threshold, disparity)
        if best is None or candidate[:3] > best[:3]:
            best = candidate
    assert best is not None
    reached, _, _, shift, threshold, disparity = best
    if not reached:
        logger.warning("pool_parity: no shift brings the pool's disparity to %.3f (best %.3f)",
                       difference_bound, disparity)
    new_weight = weight + shift @ direction_w
    new_bias = bias + float(shift @ direction_b) - threshold
    rate = float((pool_X @ new_weight + new_bias > 0).mean())
    info = {"pool_dp_before": round(float(before), 4), "pool_dp_after": round(float(disparity), 4),
            "positive_rate": round(rate, 4), "shift": [round(float(s), 4) for s in shift],
            "reached": bool(reached), "objective": objective}
    return new_weight, new_bias, info


def _group_directions(pool_X: np.ndarray, codes: np.ndarray, random_state) -> tuple[np.ndarray, np.ndarray]:
    """The logistic regression of the group on the features: (coef (m, d), intercept (m,)), one
    row for two groups (towards group 1), one per group otherwise.

    It does not depend on the labels, so it is kept for the last few pools seen (a project
    retrains on the same pool after every label; the fit is most of this trainer's time).
    """
    key = hashlib.sha1(np.ascontiguousarray(pool_X).tobytes() + codes.astype(np.int64).tobytes()
                       + repr(random_state).encode()).hexdigest()
    with _DIRECTIONS_LOCK:
        if key in _DIRECTIONS:
            _DIRECTIONS.move_to_end(key)
            return _DIRECTIONS[key]
    scale = pool_X.std(axis=0)
    scale[scale == 0] = 1.0
    model = GroupClassifier(max_iter=1000, random_state=random_state).fit(pool_X / scale, codes)
    directions = (model.coef_ / scale, model.intercept_)
    with _DIRECTIONS_LOCK:
        _DIRECTIONS[key] = directions
        while len(_DIRECTIONS) > 8:
            _DIRECTIONS.popitem(last=False)
    return directions


def _equalising_shift(scores, directions, codes, probability, objective) -> np.ndarray:
    """The shift along each group direction that gives every group the same positive rate on the
    pool, at the rate the unshifted model's best threshold has (coordinate bisection)."""
    n_groups, m = codes.max() + 1, directions.shape[1]
    if n_groups == 1:
        return np.zeros(m)
    rate = max(1, int(_best_threshold(scores, codes, probability, objective, np.inf)[3])) / len(scores)
    targets = [1] if m == 1 else list(range(m))  # two groups: one direction, towards group 1
    spread = scores.std() / np.maximum(directions.std(axis=0), 1e-12)
    shift = np.zeros(m)
    for _ in range(3 if m > 1 else 1):
        for column, target in zip(range(m), targets):
            low, high = -20 * spread[column], 20 * spread[column]
            for _ in range(40):
                shift[column] = (low + high) / 2
                shifted = scores + directions @ shift
                positive = shifted > np.quantile(shifted, 1 - rate)
                if positive[codes == target].mean() > positive.mean():
                    high = shift[column]
                else:
                    low = shift[column]
    return shift


def _best_threshold(scores, codes, probability, objective, bound) -> tuple[float, float, float, int]:
    """Over every threshold of ``scores`` (top-k positive, k = 1..n): the best plug-in objective
    among those whose disparity is within ``bound`` (else the least disparity), as
    ``(objective, threshold, disparity, k)``."""
    order = np.argsort(-scores, kind="stable")
    n, n_groups = len(scores), codes.max() + 1
    counts = np.bincount(codes, minlength=n_groups)
    ranked_codes = codes[order]
    top = np.arange(1, n + 1, dtype=np.float64)
    disparity = np.zeros(n)
    for code in np.flatnonzero(counts):  # each group's positive rate when the top k are positive
        rate = np.cumsum(ranked_codes == code) / counts[code]
        np.maximum(disparity, np.abs(rate - top / n), out=disparity)
    expected_tp = np.cumsum(probability[order])
    if objective == "f1":
        value = 2 * expected_tp / (top + probability.sum())
    else:
        expected_tn = (1 - probability).sum() - np.cumsum(1 - probability[order])
        value = (expected_tp + expected_tn) / n
    feasible = disparity <= bound + 1e-12
    k = int(np.argmax(np.where(feasible, value, -np.inf))) if feasible.any() else int(np.argmin(disparity))
    ranked = scores[order]
    threshold = (ranked[k] + ranked[k + 1]) / 2 if k + 1 < n else ranked[k] - 1.0
    return float(value[k]), float(threshold), float(disparity[k]), k + 1
