"""FR-Train's synthetic data (Roh et al., ICML 2020, §4.1)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ._dataset import Dataset, DatasetError

__all__ = ["make_synthetic", "sensitive_probability"]

# FR-Train §4.1 (after Zafar et al., 2017): (x1, x2) | y ~ N(mean_y, cov_y).
#: Mean of (x1, x2) given y = 0.
MEAN_Y0 = np.array([-2.0, -2.0])
#: Covariance of (x1, x2) given y = 0.
COV_Y0 = np.array([[10.0, 1.0], [1.0, 3.0]])
#: Mean of (x1, x2) given y = 1.
MEAN_Y1 = np.array([2.0, 2.0])
#: Covariance of (x1, x2) given y = 1.
COV_Y1 = np.array([[5.0, 1.0], [1.0, 5.0]])
#: Angle by which (x1, x2) is rotated before z is drawn: x' = R(pi/4) x.
ROTATION = np.pi / 4


def _gaussian_log_density(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    diff = points - mean
    inverse = np.linalg.inv(cov)
    mahalanobis = np.einsum("ni,ij,nj->n", diff, inverse, diff)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (mahalanobis + logdet + points.shape[1] * np.log(2 * np.pi))


def sensitive_probability(features: np.ndarray) -> np.ndarray:
    """p(z = 1 | x1, x2) of FR-Train §4.1.

    ``p(x' | y=1) / (p(x' | y=0) + p(x' | y=1))``, where ``x'`` is ``(x1, x2)``
    rotated by pi/4, ``x1' = x1 cos - x2 sin``, ``x2' = x1 sin + x2 cos``,
    and ``p(. | y)`` are the two class-conditional Gaussians.
    """
    points = np.asarray(features, dtype=np.float64)
    c, s = np.cos(ROTATION), np.sin(ROTATION)
    rotated = points @ np.array([[c, s], [-s, c]])  # rows (x1 c - x2 s, x1 s + x2 c)
    log_p0 = _gaussian_log_density(rotated, MEAN_Y0, COV_Y0)
    log_p1 = _gaussian_log_density(rotated, MEAN_Y1, COV_Y1)
    return 1.0 / (1.0 + np.exp(log_p0 - log_p1))  # p1 / (p0 + p1), overflow-safe


def make_synthetic(n: int = 3000, *, seed: int = 0, include_sensitive: bool = False) -> Dataset:
    """FR-Train's synthetic fairness data (Roh et al., ICML 2020, §4.1).

    Labels are balanced as in Zafar et al.'s generator that the paper follows
    (the paper leaves this open): ``n // 2`` rows with ``y = 0`` and the rest
    with ``y = 1``, in shuffled order. ``(x1, x2) | y`` is drawn from the
    paper's Gaussians (:data:`MEAN_Y0`, :data:`COV_Y0`, :data:`MEAN_Y1`,
    :data:`COV_Y1`), then ``z ~ Bernoulli(p)`` with
    ``p = p(x'|y=1) / (p(x'|y=0) + p(x'|y=1))`` and ``x'`` the point rotated by
    pi/4 (:func:`sensitive_probability`), which makes z correlated with both
    the features and the label. The paper uses 2,000 training examples (its
    code 3,700 rows in all); ``n`` is free.

    ``X`` holds the raw ``(x1, x2)`` (not standardised, as in the paper); with
    ``include_sensitive=True`` a third column ``z`` (0/1), which is FR-Train's
    classifier input ``[x1, x2, z]``. The paper's y in {-1, 1} is mapped to
    {0, 1}. ``group`` is ``"z=0"`` / ``"z=1"``; ``ids`` are 0..n-1.

    Parameters
    ----------
    n : int, default=3000
        Number of rows (at least 2).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the same seed gives the same data.
    include_sensitive : bool, default=False
        Append ``z`` to ``X``.
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 2:
        raise DatasetError(f"n must be an integer of at least 2, got {n!r}")
    n = int(n)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.array([0, 1], dtype=np.int64), [n // 2, n - n // 2]))
    features = np.empty((n, 2))
    for label, mean, cov in ((0, MEAN_Y0, COV_Y0), (1, MEAN_Y1, COV_Y1)):
        rows = y == label
        features[rows] = rng.multivariate_normal(mean, cov, size=int(rows.sum()))
    z = (rng.random(n) < sensitive_probability(features)).astype(np.int64)

    display = pd.DataFrame(
        {"x1": features[:, 0], "x2": features[:, 1], "z": z},
        index=pd.RangeIndex(n, name="id"),
    )
    X = features if not include_sensitive else np.column_stack([features, z])
    return Dataset(
        name="synthetic",
        display=display,
        X=X,
        y=y,
        group=np.array([f"z={v}" for v in z], dtype=object),
        ids=np.arange(n, dtype=np.int64),
        feature_names=["x1", "x2", "z"] if include_sensitive else ["x1", "x2"],
        label_name="y",
        classes=("y=0", "y=1"),
        sensitive="z",
        description=f"FR-Train synthetic data (Roh et al. 2020, §4.1): {n:,} points, seed {seed}",
    )
