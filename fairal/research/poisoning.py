"""Label poisoning for robustness experiments (FR-Train, FORML).

* :func:`flip_labels` — FR-Train's setting (Roh et al., ICML 2020): flip a
  fraction of the binary training labels, optionally all inside one sensitive
  group, choosing flips that hurt a logistic regression the most.
* :func:`corrupt_labels_to_class` — FORML's corruption (Yan et al., ICML 2022):
  relabel a fraction of the rows to one class (MNIST: "2").

Both return a poisoned *copy* of the labels and the sorted indices changed;
the inputs are never modified. Randomness comes from
``numpy.random.default_rng(random_state)`` only.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

__all__ = ["corrupt_labels_to_class", "flip_labels"]

logger = logging.getLogger(__name__)

_METHODS = ("greedy", "random")


def flip_labels(
    X,
    y,
    group=None,
    *,
    fraction: float = 0.1,
    target_group=None,
    method: Literal["greedy", "random"] = "greedy",
    random_state: int | None = 0,
    n_rounds: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(fraction · len(y))`` binary labels; return ``(y_poisoned, flipped)``.

    Candidates are all rows, or the rows with ``group == target_group`` when a
    target group is given (an error names both counts if it has too few).

    ``method="greedy"`` (a cheap influence-style attack on logistic regression):
    the flips are made in ``n_rounds`` equal batches. In each round
    ``sklearn.linear_model.LogisticRegression()`` (C = 1) is fitted on the
    current (partly poisoned) labels and the not-yet-flipped candidates whose
    *flipped* label has the largest log-loss under that model are flipped —
    the most confidently correctly classified points. A flipped label with a
    large loss has a large gradient ``(p − y')·x`` pointing against the clean
    solution, so these flips move the refitted boundary furthest per flip
    (first-order influence of the flip on the parameters); refitting between
    rounds accounts for the boundary having already moved. Ties are broken by
    a seeded random permutation. ``method="random"`` flips a uniform random
    subset of the candidates. Cost: ``n_rounds`` logistic-regression fits.

    Parameters
    ----------
    X : array of shape (n, d)
        Features seen by the logistic regression (greedy only).
    y : array of shape (n,)
        Binary labels 0/1.
    group : array of shape (n,), optional
        Sensitive group per row; required when ``target_group`` is given.
    fraction : float in [0, 1]
        Share of all rows (not of the target group) to flip.
    target_group : optional
        Restrict the flips to ``group == target_group``.
    method : {"greedy", "random"}
    random_state : int or None
    n_rounds : int
        Refits in the greedy attack (1 = score once on the clean model).
    """
    y = _checked_labels(y)
    _check_flip_params(method, fraction, n_rounds)
    n = len(y)
    n_flip = int(round(fraction * n))
    candidates = _candidates(group, target_group, n, n_flip, fraction)
    rng = np.random.default_rng(random_state)
    poisoned = y.copy()
    if n_flip == 0:
        return poisoned, np.array([], dtype=np.int64)
    flipped = _choose_flips(X, y, candidates, n_flip, method, n_rounds, rng)
    poisoned[flipped] = 1 - poisoned[flipped]
    logger.debug("flipped %d labels (%s)", n_flip, method)
    return poisoned, flipped


def _choose_flips(X, y, candidates, n_flip, method, n_rounds, rng) -> np.ndarray:
    """The sorted rows to flip: a uniform random subset of the candidates, or the greedy attack's picks."""
    if method == "random":
        flipped = rng.choice(candidates, size=n_flip, replace=False)
    else:
        flipped = _greedy_flips(np.asarray(X, dtype=np.float64), y, candidates, n_flip, n_rounds, rng)
    return np.sort(flipped).astype(np.int64)


def _checked_labels(y) -> np.ndarray:
    """``y`` as an array, refused unless it is one-dimensional and binary 0/1."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y must contain only the binary labels 0 and 1, got {np.unique(y)[:5].tolist()}")
    return y


def _check_flip_params(method: str, fraction: float, n_rounds: int) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of 'greedy' or 'random', got {method!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if not isinstance(n_rounds, int) or n_rounds < 1:
        raise ValueError(f"n_rounds must be a positive integer, got {n_rounds!r}")


def _candidates(group, target_group, n: int, n_flip: int, fraction: float) -> np.ndarray:
    """Rows that may be flipped: all of them, or those of ``target_group`` (which needs ``n_flip`` rows)."""
    if target_group is None:
        return np.arange(n)
    if group is None:
        raise ValueError("target_group was given but group is None; pass the group of every row")
    group = np.asarray(group)
    if group.shape != (n,):
        raise ValueError(f"group must have shape ({n},), got {group.shape}")
    candidates = np.flatnonzero(group == target_group)
    if len(candidates) < n_flip:
        raise ValueError(
            f"cannot flip {n_flip} labels (fraction {fraction} of {n} rows) inside group "
            f"{target_group!r}, which has only {len(candidates)} rows"
        )
    return candidates


def _greedy_flips(X, y, candidates, n_flip, n_rounds, rng) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {len(y)}")
    current = y.copy()
    remaining = rng.permutation(candidates)  # the permutation breaks ties reproducibly
    chosen: list[np.ndarray] = []
    sizes = np.diff(np.linspace(0, n_flip, min(n_rounds, n_flip) + 1).round().astype(int))
    for size in sizes:
        if len(np.unique(current)) < 2:  # one class left: nothing to fit, take the next rows
            pick = np.arange(size)
        else:
            model = LogisticRegression(max_iter=1000).fit(X, current)
            p1 = model.predict_proba(X[remaining])[:, 1]
            flipped_label = 1 - current[remaining]
            loss = -np.log(np.clip(np.where(flipped_label == 1, p1, 1 - p1), 1e-15, 1))
            pick = np.argsort(-loss, kind="stable")[:size]
        rows = remaining[pick]
        current[rows] = 1 - current[rows]
        chosen.append(rows)
        remaining = np.delete(remaining, pick)
    return np.concatenate(chosen)


def corrupt_labels_to_class(
    y, *, fraction: float = 0.2, target_class: int = 2, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """FORML's corruption: set ``round(fraction · n)`` labels to ``target_class``.

    The rows are drawn uniformly without replacement among those whose label
    is not already ``target_class`` (so exactly that many labels change).
    Returns ``(y_corrupted, changed)`` with ``changed`` sorted.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    n_change = int(round(fraction * len(y)))
    candidates = np.flatnonzero(y != target_class)
    if len(candidates) < n_change:
        raise ValueError(
            f"cannot change {n_change} labels (fraction {fraction} of {len(y)} rows) to class "
            f"{target_class!r}: only {len(candidates)} rows have another label"
        )
    rng = np.random.default_rng(random_state)
    changed = np.sort(rng.choice(candidates, size=n_change, replace=False)).astype(np.int64)
    corrupted = y.copy()
    corrupted[changed] = target_class
    return corrupted, changed
