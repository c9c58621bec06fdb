"""Loading a user's CSV file (a path or an upload) into a validated Dataset.

How :func:`load_csv` turns columns into features and which rows it keeps:
columns whose pandas type is numeric (not boolean) are standardised; all
others are one-hot encoded, except non-numeric columns with more than
:data:`MAX_CATEGORIES` distinct values, which stay in ``display`` only
(logged). Missing feature values become 0 (the mean) for numeric columns
and a ``"(missing)"`` category otherwise. Columns that are entirely
empty are dropped (logged). Rows whose label or group is missing are
dropped (logged, with their count); the file is rejected if fewer than
two rows remain. Ids are checked before rows are dropped.

What it refuses, with a :class:`DatasetError` whose message names the
problem and the column: an empty, non-UTF-8 or malformed file; a missing
column (the message lists the available ones); an empty label or sensitive
column; a label with one value, or more than two without ``positive``; a
single sensitive group; missing, non-integer or duplicate ids.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from ._dataset import Dataset, DatasetError
from ._encode import encode_features

__all__ = ["load_csv", "suggest_columns", "MAX_CATEGORIES"]

logger = logging.getLogger(__name__)

#: A non-numeric feature column with more distinct values than this (names,
#: free text, ...) is shown in ``display`` but left out of ``X``.
MAX_CATEGORIES = 100


def _read_text(source: str | os.PathLike | IO[Any]) -> tuple[str, str]:
    """The file's text and a default data set name."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"CSV file {path} not found")
        content: bytes | str = path.read_bytes()
        name = path.stem
    elif hasattr(source, "read"):
        content = source.read()
        name = Path(str(getattr(source, "name", "") or "uploaded")).stem or "uploaded"
    else:
        raise DatasetError(
            f"source must be a path or a file-like object, got {type(source).__name__}"
        )
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise DatasetError(
                f"file is not UTF-8 text (byte 0x{err.object[err.start]:02x} at position "
                f"{err.start}); save it as CSV UTF-8 and upload it again"
            ) from None
    return content.removeprefix("\ufeff"), name


def _parse(text: str) -> pd.DataFrame:
    if not text.strip():
        raise DatasetError("file is empty: expected a header line and at least one row")
    try:
        frame = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DatasetError("file is empty: expected a header line and at least one row") from None
    except pd.errors.ParserError as err:
        raise DatasetError(f"file is not a well-formed CSV: {err}") from None
    if len(frame) == 0:
        raise DatasetError("file has a header but no rows")
    return frame


def _require_column(frame: pd.DataFrame, column: object, role: str) -> None:
    if column not in frame.columns:
        available = ", ".join(repr(c) for c in frame.columns)
        raise DatasetError(f"{role} column {column!r} not found; available columns: {available}", field=role)


def _as_text(values: pd.Series) -> pd.Series:
    """Values as str; floats that are whole numbers lose the ``.0`` (``1.0`` → ``"1"``, ``2.5`` stays)."""
    if pd.api.types.is_float_dtype(values):
        return values.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    return values.astype(str)


def _for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as Python objects, whole numbers as ints: ``5.0`` (a float because of a
    gap, or as written) shows as ``5`` while ``17.5`` stays, and a row read on its own
    (``display.loc[id]``) keeps ``4`` an int instead of turning a numeric row into floats."""
    shown = frame.copy()
    for column in shown.columns:
        if _is_numeric(shown[column]):
            values = [int(v) if isinstance(v, float) and v.is_integer() else v
                      for v in shown[column].astype(object)]
            shown[column] = pd.Series(np.array(values, dtype=object), index=shown.index)
    return shown


def _value_text(value: object) -> str:
    """A value as the label column's text shows it: ``5.0`` and ``"5.0"`` read ``"5"``."""
    try:
        number = float(cast(Any, value))
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() and not isinstance(value, bool) else str(value)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _ids(frame: pd.DataFrame, id_column: str | None) -> np.ndarray:
    if id_column is None:
        return np.arange(len(frame), dtype=np.int64)
    values = frame[id_column]
    if values.isna().any():
        raise DatasetError(
            f"id column {id_column!r} has {int(values.isna().sum())} missing values; every row needs an id"
        )
    if not pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        example = values.iloc[0]
        example = example.item() if isinstance(example, np.generic) else example
        raise DatasetError(
            f"id column {id_column!r} must hold integers, got {values.dtype} values such as {example!r}"
        )
    duplicated = values[values.duplicated()]
    if len(duplicated):
        raise DatasetError(
            f"id column {id_column!r} has duplicate ids, e.g. {int(duplicated.iloc[0])} "
            f"({len(duplicated)} duplicate rows)"
        )
    return values.to_numpy(dtype=np.int64)


def _binary_labels(
    values: pd.Series, label: str, positive: object | None
) -> tuple[np.ndarray, tuple[str, str]]:
    """y (1 = positive) and the class names, following :func:`load_csv`'s rules."""
    text = _as_text(values)
    pairs = pd.DataFrame({"raw": values.to_numpy(), "text": text.to_numpy()})
    names = pairs.drop_duplicates("raw").sort_values("raw")["text"].tolist()  # sorted by value
    if len(names) < 2:
        raise DatasetError(
            f"label column {label!r} has only one value ({names[0]!r}); it needs two classes"
        )
    if positive is None:
        if len(names) > 2:
            shown = ", ".join(repr(v) for v in names[:10])
            raise DatasetError(
                f"label column {label!r} has {len(names)} values ({shown}"
                f"{', ...' if len(names) > 10 else ''}), not two; pass positive=<value> to "
                "treat one value as the positive class and all others as negative",
                field="positive", values=names,
            )
        negative_name, positive_name = names
    else:
        positive_name = str(positive) if str(positive) in names else _value_text(positive)
        if positive_name not in names:
            raise DatasetError(
                f"positive={positive!r} is not a value of label column {label!r}; "
                f"its values are {', '.join(repr(v) for v in names[:10])}",
                field="positive", values=names,
            )
        others = [v for v in names if v != positive_name]
        negative_name = others[0] if len(others) == 1 else f"not {positive_name}"
    y = (text == positive_name).to_numpy(dtype=np.int64)
    return y, (negative_name, positive_name)


def load_csv(
    source: str | os.PathLike | IO[Any],
    *,
    label: str,
    sensitive: str,
    display_columns: Sequence[str] | None = None,
    positive: object | None = None,
    id_column: str | None = None,
    include_sensitive: bool = False,
    name: str | None = None,
) -> Dataset:
    """A user's CSV file as a validated :class:`Dataset`.

    Parameters
    ----------
    source : path or file-like
        A path (``str`` or ``PathLike``; a ``str`` is always a path, never CSV
        text) or an open file in binary or text mode, such as a Streamlit
        upload (``BytesIO``). The text must be UTF-8 (a BOM is accepted), with
        a header line.
    label : str
        Column to predict.
    sensitive : str
        Column holding the sensitive group; its values become ``group`` as
        strings (``1.0`` → ``"1"``). It needs at least two groups.
    display_columns : sequence of str, optional
        Columns an annotator sees, in this order; the sensitive column is
        appended if missing. The label must not be among them. Default: every
        column but the label and the id column. ``X`` is built from all
        feature columns either way.
    positive : optional
        The positive class (y = 1), compared as a string with the label
        values. With exactly two label values and no ``positive``, the value
        that sorts second is positive (``1`` for 0/1, ``True`` for booleans,
        ``"yes"`` over ``"no"``). With more than two values ``positive`` is
        required and y = (label == positive), every other value being 0.
    id_column : str, optional
        Column of unique integer row ids; default ids are 0..n-1 (row order).
    include_sensitive : bool, default=False
        Keep the sensitive column in ``X``.
    name : str, optional
        Data set name; default the file name without extension.

    The module docstring says how columns are encoded, which columns and rows
    are dropped, and every problem refused with a :class:`DatasetError`.
    """
    frame, ids, default_name = _checked_frame(source, label, sensitive, display_columns, id_column)
    y, classes = _binary_labels(frame[label], label, positive)
    group = _groups(frame[sensitive], sensitive)
    numeric, categorical = _feature_columns(frame, label, sensitive, id_column, include_sensitive)
    X, feature_names = encode_features(frame, numeric=numeric, categorical=categorical)
    shown = _shown_columns(frame, label, sensitive, id_column, display_columns)
    display = _for_display(frame[shown]).set_axis(pd.Index(ids, name="id"), axis=0)
    name = name or default_name
    return Dataset(
        name=name, display=display, X=X, y=y, group=group, ids=ids,
        feature_names=[str(f) for f in feature_names], label_name=str(label), classes=classes,
        sensitive=str(sensitive),
        description=f"CSV file {name!r}: {len(frame):,} rows, label {label!r}, groups by {sensitive!r}",
    )


def _checked_frame(source: str | os.PathLike | IO[Any], label: str, sensitive: str,
                   display_columns: Sequence[str] | None,
                   id_column: str | None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The file's rows that have a label and a group, their ids, and the default data set name.

    Checks the columns and the ids, and drops empty columns and incomplete rows (both logged).
    """
    text, default_name = _read_text(source)
    frame = _parse(text)
    _check_columns(frame, label, sensitive, display_columns, id_column)
    frame = _drop_empty_columns(frame, id_column)
    frame, ids = _complete_rows(frame, _ids(frame, id_column), label, sensitive)
    return frame, ids, default_name


def _check_columns(frame: pd.DataFrame, label: str, sensitive: str, display_columns: Sequence[str] | None,
                   id_column: str | None) -> None:
    """Every named column exists, the label is neither shown nor the sensitive column, neither is empty."""
    for column, role in ((label, "label"), (sensitive, "sensitive")):
        _require_column(frame, column, role)
    if id_column is not None:
        _require_column(frame, id_column, "id")
    if display_columns is not None:
        for column in display_columns:
            _require_column(frame, column, "display")
        if label in display_columns:
            raise DatasetError(
                f"display_columns must not include the label column {label!r}: annotators would see the answer"
            )
    if label == sensitive:
        raise DatasetError(f"label and sensitive must be different columns, got {label!r} for both")
    for column, role in ((label, "label"), (sensitive, "sensitive")):
        if frame[column].isna().all():
            raise DatasetError(f"{role} column {column!r} is empty (every value is missing)")


def _drop_empty_columns(frame: pd.DataFrame, id_column: str | None) -> pd.DataFrame:
    """The frame without its entirely empty columns (logged); the id column is kept for :func:`_ids` to refuse."""
    empty = [c for c in frame.columns if frame[c].isna().all() and c != id_column]
    if empty:
        logger.warning("dropping %d empty column(s): %s", len(empty), ", ".join(map(str, empty)))
        frame = frame.drop(columns=empty)
    return frame


def _complete_rows(frame: pd.DataFrame, ids: np.ndarray, label: str,
                   sensitive: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows (and their ids) that have both a label and a group; at least two of them."""
    complete = frame[label].notna() & frame[sensitive].notna()
    if not complete.all():
        logger.warning(
            "dropping %d row(s) with a missing %r or %r value",
            int((~complete).sum()), label, sensitive,
        )
        frame, ids = frame[complete], ids[complete.to_numpy()]
    if len(frame) < 2:
        raise DatasetError(
            f"only {len(frame)} row(s) have both a label ({label!r}) and a group ({sensitive!r}); need at least 2"
        )
    return frame, ids


def _groups(values: pd.Series, sensitive: str) -> np.ndarray:
    """The sensitive column as strings (``1.0`` → ``"1"``); it needs at least two groups."""
    group = _as_text(values).to_numpy(dtype=object)
    groups = sorted(set(group))
    if len(groups) < 2:
        raise DatasetError(
            f"sensitive column {sensitive!r} has only one group ({groups[0]!r}); "
            "fairness needs at least two groups"
        )
    return group


def _feature_columns(frame: pd.DataFrame, label: str, sensitive: str, id_column: str | None,
                     include_sensitive: bool) -> tuple[list, list]:
    """The numeric and the categorical feature columns; too many categories leave a column out (logged)."""
    features = [c for c in frame.columns if c not in (label, id_column)]
    if not include_sensitive:
        features.remove(sensitive)
    numeric = [c for c in features if _is_numeric(frame[c])]
    categorical = []
    for column in features:
        if column in numeric:
            continue
        if frame[column].nunique() > MAX_CATEGORIES:
            logger.warning(
                "column %r has %d distinct non-numeric values; it is shown but not used as a feature",
                column, frame[column].nunique(),
            )
        else:
            categorical.append(column)
    return numeric, categorical


def _shown_columns(frame: pd.DataFrame, label: str, sensitive: str, id_column: str | None,
                   display_columns: Sequence[str] | None) -> list:
    """The columns an annotator sees: the given ones that remain, plus the sensitive column."""
    if display_columns is None:
        return [c for c in frame.columns if c not in (label, id_column)]
    shown = [c for c in display_columns if c in frame.columns]
    if sensitive not in shown:
        shown.append(sensitive)
    return shown


#: Column names that usually hold what to predict, and the sensitive attribute (compared
#: lower-case, with spaces, dashes and dots read as underscores).
LABEL_NAMES = ("label", "target", "class", "y", "outcome", "income", "default", "churn", "approved",
               "decision", "result", "response", "survived", "two_year_recid", "is_recid", "credit")
SENSITIVE_NAMES = ("sex", "gender", "race", "ethnicity", "ethnic_group", "age_group", "age_cat", "age",
                   "religion", "nationality", "disability", "marital_status")
#: A sensitive column found by its values (not its name) has this many groups at most.
MAX_SUGGESTED_GROUPS = 10


def _key(column: object) -> str:
    return str(column).strip().lower().replace(" ", "_").replace("-", "_").replace(".", "_")


def suggest_columns(frame: pd.DataFrame) -> tuple[object | None, object | None]:
    """``(label, sensitive)``: good first choices among a CSV's columns (None where none fits).

    Sensitive: a column named like :data:`SENSITIVE_NAMES` (``sex``, ``race``, ...) with 2 to 20
    distinct values. Label: a column other than that with exactly two distinct values, one named
    like :data:`LABEL_NAMES` first, else the *last* such column (targets usually come last); a
    file without two-valued columns gets a column named like a label, else its last column. A
    sensitive column not found by name is then the first column other than the label with 2 to
    :data:`MAX_SUGGESTED_GROUPS` distinct values.
    """
    counts = frame.nunique()
    columns = list(frame.columns)

    def named(names, candidates):
        by_key = {_key(c): c for c in reversed(candidates)}  # the first column wins a tie
        return next((by_key[n] for n in names if n in by_key), None)

    sensitive = named(SENSITIVE_NAMES, [c for c in columns if 2 <= counts[c] <= 20])
    others = [c for c in columns if c != sensitive]
    binary = [c for c in others if counts[c] == 2]
    label = (named(LABEL_NAMES, binary) or (binary[-1] if binary else None)
             or named(LABEL_NAMES, others) or (others[-1] if others else None))
    if sensitive is None:
        sensitive = next((c for c in columns if c != label and 2 <= counts[c] <= MAX_SUGGESTED_GROUPS), None)
    return label, sensitive
