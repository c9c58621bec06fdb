"""The one dataset type every loader returns, and the error they raise."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from fairal.errors import DatasetError  # noqa: F401 (defined there, named here too)

__all__ = ["Dataset", "DatasetError"]


def _unique(ids: np.ndarray) -> bool:
    """Whether no id repeats: ids in increasing order (every loader's, and kept arrays') are checked in
    one pass; others are sorted first (a sort is several times faster than ``np.unique``'s hashing)."""
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return True
    ordered = np.sort(ids)
    return not bool((ordered[1:] == ordered[:-1]).any())


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Rows to label, their encoded features, labels and sensitive groups.

    Every loader in :mod:`fairal.datasets` returns one. Row ``i`` of every
    field describes the same person or example; ``ids[i]`` is its stable id
    (unchanged between loads and library versions), which is what a labeling
    project stores.

    Parameters
    ----------
    name : str
        Short name: ``"adult"``, ``"compas"``, ``"german"``, ``"synthetic"``,
        ``"digits"`` or the name of a CSV file.
    display : pandas.DataFrame
        The columns an annotator sees, decoded and with readable names. It
        includes the sensitive attribute and never the label. Its index holds
        the ids (index name ``"id"``). Treat it as read-only.
    X : numpy.ndarray of float32, shape (n, d)
        Model input. Loaders standardise numeric columns (z-score over the
        loaded rows) and one-hot encode categorical ones; the sensitive
        attribute is left out unless the loader is asked to include it.
    y : numpy.ndarray of int64, shape (n,)
        Class index per row; for binary data sets 1 is the positive class.
    group : numpy.ndarray of str (dtype object), shape (n,)
        Sensitive group per row.
    ids : numpy.ndarray of int64, shape (n,)
        Stable, unique row ids.
    feature_names : list of str
        Name of each column of ``X``.
    label_name : str
        What ``y`` is, e.g. ``"income"``.
    classes : tuple of str
        Human name of each value of ``y``, by index.
    sensitive : str
        Name of the sensitive attribute, e.g. ``"sex"``.
    description : str, default=""
        One line for listings.

    Notes
    -----
    The arrays are stored as read-only views so that a cached data set
    cannot be corrupted by a caller; copy them (``ds.X.copy()``) to modify.
    """

    name: str
    display: pd.DataFrame
    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    ids: np.ndarray
    feature_names: list[str]
    label_name: str
    classes: tuple[str, ...]
    sensitive: str
    description: str = ""

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float32)
        if X.ndim != 2:
            raise DatasetError(f"X must be 2-dimensional (rows, features), got shape {X.shape}")
        n = X.shape[0]
        y = np.asarray(self.y).astype(np.int64, copy=False)
        group = np.asarray(self.group, dtype=object)
        ids = np.asarray(self.ids).astype(np.int64, copy=False)
        for field, arr in (("y", y), ("group", group), ("ids", ids)):
            if arr.shape != (n,):
                raise DatasetError(f"{field} must have shape ({n},) like X's rows, got {arr.shape}")
        if len(self.display) != n:
            raise DatasetError(f"display must have {n} rows like X, got {len(self.display)}")
        feature_names = list(self.feature_names)
        if len(feature_names) != X.shape[1]:
            raise DatasetError(
                f"feature_names must name the {X.shape[1]} columns of X, got {len(feature_names)} names"
            )
        if not all(issubclass(kind, str) for kind in set(map(type, group))):  # one type() per row, in C
            raise DatasetError("group must hold str values")
        if not _unique(ids):
            raise DatasetError("ids must be unique")
        if self.label_name in self.display.columns:
            raise DatasetError(f"display must not contain the label column {self.label_name!r}")
        # Read-only views: the caller's own arrays keep their flags.
        X, y, group, ids = X.view(), y.view(), group.view(), ids.view()
        for arr in (X, y, group, ids):
            arr.setflags(write=False)
        set_ = object.__setattr__
        set_(self, "X", X)
        set_(self, "y", y)
        set_(self, "group", group)
        set_(self, "ids", ids)
        set_(self, "feature_names", feature_names)
        set_(self, "classes", tuple(str(c) for c in self.classes))

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, rows={len(self)}, features={self.X.shape[1]}, "
            f"label={self.label_name!r}, sensitive={self.sensitive!r}, groups={list(self.group_names)})"
        )

    @cached_property
    def group_names(self) -> tuple[str, ...]:
        """The distinct groups, sorted."""
        return tuple(sorted(set(self.group.tolist())))

    @cached_property
    def group_codes(self) -> np.ndarray:
        """Index of each row's group in :attr:`group_names` (int64, read-only)."""
        lookup = {g: i for i, g in enumerate(self.group_names)}
        codes = np.fromiter((lookup[g] for g in self.group), dtype=np.int64, count=len(self))
        codes.setflags(write=False)
        return codes

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The rows at the given positions (or where a boolean mask is true), in that order.

        ``X`` keeps the encoding of the full data set (it is not re-standardised
        on the subset), so subsets of one data set stay comparable.
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu":
            raise IndexError(f"indices must be integer positions or a boolean mask, got dtype {idx.dtype}")
        return dataclasses.replace(
            self,
            display=self.display.iloc[idx],
            X=self.X[idx],
            y=self.y[idx],
            group=self.group[idx],
            ids=self.ids[idx],
        )

    def positions(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Positions (int64) of the rows with the given ids, in the order given.

        Raises
        ------
        KeyError
            If an id is not in this data set; the message names it.
        """
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        pos = self._id_index.get_indexer(wanted)
        missing = wanted[pos < 0]
        if missing.size:
            raise KeyError(
                f"id {int(missing[0])} is not in data set {self.name!r}"
                + (f" ({missing.size} ids missing)" if missing.size > 1 else "")
            )
        return pos.astype(np.int64)

    @cached_property
    def _id_index(self) -> pd.Index:
        return pd.Index(self.ids)

    def base_rates(self) -> pd.DataFrame:
        """Rows, share of all rows, and rate of ``y == 1`` per group, plus an ``"overall"`` row."""
        frame = pd.DataFrame({"group": self.group, "positive": self.y == 1})
        per_group = frame.groupby("group", sort=True)["positive"].agg(rows="size", positive_rate="mean")
        per_group.loc["overall"] = [len(frame), frame["positive"].mean() if len(frame) else np.nan]
        per_group["rows"] = per_group["rows"].astype(np.int64)
        per_group["share"] = per_group["rows"] / max(len(frame), 1)
        return per_group[["rows", "share", "positive_rate"]]
