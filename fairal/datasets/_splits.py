"""Seeded, disjoint row splits returned as positional index arrays."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from ._dataset import DatasetError

__all__ = ["PandaSplit", "TrainValidationTestSplit", "panda_split", "train_validation_test_split"]


class PandaSplit(NamedTuple):
    """Positions of PANDA's three parts; see :func:`panda_split`."""

    meta_train: np.ndarray
    pool: np.ndarray
    test: np.ndarray


class TrainValidationTestSplit(NamedTuple):
    """Positions of the three parts; see :func:`train_validation_test_split`."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _row_count(n_or_dataset: Any) -> int:
    if isinstance(n_or_dataset, numbers.Integral) and not isinstance(n_or_dataset, bool):
        n = int(n_or_dataset)
    elif hasattr(n_or_dataset, "__len__") and not isinstance(n_or_dataset, (str, bytes)):
        n = len(n_or_dataset)
    else:
        raise DatasetError(
            f"expected a row count or a Dataset, got {type(n_or_dataset).__name__}"
        )
    if n < 0:
        raise DatasetError(f"row count must not be negative, got {n}")
    return n


def _sorted_parts(permutation: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *sizes])
    return [np.sort(permutation[a:b]).astype(np.int64) for a, b in zip(bounds[:-1], bounds[1:])]


def panda_split(n_or_dataset: Any, *, seed: int = 0) -> PandaSplit:
    """PANDA's split (Sharaf, Daumé III & Ni, FAccT 2022, §4): 50/50, then 50/50 again.

    A random half of the rows is meta-train (pre-training and policy
    learning); the other half, meta-test, is split 50/50 into the "unlabeled"
    pool and the test set. With odd counts the extra row goes to the later
    part (meta-test, then test).

    Parameters
    ----------
    n_or_dataset : int or Dataset
        Number of rows, or anything with a length.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    PandaSplit
        ``(meta_train, pool, test)``: disjoint int64 positions covering
        ``range(n)``, each sorted ascending (so a subset keeps the data's
        row order).
    """
    n = _row_count(n_or_dataset)
    permutation = np.random.default_rng(seed).permutation(n)
    n_meta_train = n // 2
    n_pool = (n - n_meta_train) // 2
    return PandaSplit(*_sorted_parts(permutation, [n_meta_train, n_pool, n - n_meta_train - n_pool]))


def _check_fraction(name: str, value: Any) -> float:
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not 0 < float(value) < 1
    ):
        raise DatasetError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")
    return float(value)


def _stratified_order(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation in which every prefix holds each stratum in proportion (±1 row).

    Rows are shuffled, then each gets its within-stratum rank scaled to
    (0, 1); sorting by that key interleaves the strata evenly.
    """
    shuffled = rng.permutation(len(strata))
    _, codes = np.unique(strata[shuffled], return_inverse=True)
    rank = np.empty(len(strata))
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    return shuffled[np.argsort(rank, kind="stable")]


def train_validation_test_split(
    n_or_dataset: Any,
    *,
    validation: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    stratify: Any = None,
) -> TrainValidationTestSplit:
    """A seeded train / validation / test split.

    Sizes are ``round(test * n)`` and ``round(validation * n)`` (at least one
    row each); training gets the rest, which must not be empty.

    Parameters
    ----------
    n_or_dataset : int or Dataset
        Number of rows, or anything with a length.
    validation, test : float, default=0.1, 0.2
        Fractions of the rows, each strictly between 0 and 1, summing to less
        than 1.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.
    stratify : array-like of shape (n,), optional
        Labels (e.g. ``ds.y`` or ``ds.group``) to keep in the same proportion
        in each part, up to one row per label and part.

    Returns
    -------
    TrainValidationTestSplit
        ``(train, validation, test)``: disjoint int64 positions covering
        ``range(n)``, each sorted ascending.
    """
    n = _row_count(n_or_dataset)
    validation = _check_fraction("validation", validation)
    test = _check_fraction("test", test)
    if validation + test >= 1:
        raise DatasetError(
            f"validation + test must be below 1 so that rows remain for training, "
            f"got {validation} + {test} = {validation + test:g}"
        )
    n_test = max(1, round(test * n))
    n_validation = max(1, round(validation * n))
    if n - n_test - n_validation < 1:
        raise DatasetError(
            f"{n} rows are too few to split into train, validation ({n_validation}) and test ({n_test})"
        )
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
    else:
        strata = np.asarray(stratify)
        if strata.shape != (n,):
            raise DatasetError(f"stratify must have shape ({n},), one label per row, got {strata.shape}")
        order = _stratified_order(strata, rng)
    test_part, validation_part, train_part = _sorted_parts(
        order, [n_test, n_validation, n - n_test - n_validation]
    )
    return TrainValidationTestSplit(train_part, validation_part, test_part)
