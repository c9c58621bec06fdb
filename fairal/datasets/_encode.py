"""Turning a display frame into the float32 model input ``X``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["encode_features", "MISSING_CATEGORY"]

#: Category given to missing values of a categorical column before one-hot encoding.
MISSING_CATEGORY = "(missing)"


def encode_features(
    frame: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Standardise ``numeric`` columns and one-hot encode ``categorical`` ones.

    Columns appear in ``X`` in the order of ``frame.columns``. A numeric column
    becomes ``(x - mean) / std`` over the rows of ``frame`` (population std;
    a constant column becomes all zeros; missing values become 0, the mean).
    A categorical column becomes one 0/1 column per distinct value, named
    ``"column=value"``, values in sorted order; missing values get their own
    ``"(missing)"`` category.

    Returns
    -------
    X : numpy.ndarray of float32, shape (len(frame), d)
    feature_names : list of str
    """
    numeric_set, categorical_set = set(numeric), set(categorical)
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for column in frame.columns:
        if column in numeric_set:
            values = pd.to_numeric(frame[column]).to_numpy(dtype=np.float64, na_value=np.nan)
            mean = np.nanmean(values) if np.isfinite(values).any() else 0.0
            std = np.nanstd(values) if np.isfinite(values).any() else 0.0
            z = (values - mean) / std if std > 0 else values - mean
            blocks.append(np.nan_to_num(z, nan=0.0)[:, None])
            names.append(str(column))
        elif column in categorical_set:
            text = frame[column].astype(object).where(frame[column].notna(), MISSING_CATEGORY).astype(str)
            categories = sorted(set(text))
            codes = pd.Categorical(text, categories=categories).codes
            blocks.append(np.eye(len(categories), dtype=np.float32)[codes])
            names.extend(f"{column}={c}" for c in categories)
    if not blocks:
        return np.zeros((len(frame), 0), dtype=np.float32), []
    return np.hstack(blocks).astype(np.float32), names
