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
problem and the column: a file over the size limit (checked before anything
is parsed) or the row limit (counted while the rows are parsed; see
:func:`csv_limits`); an empty, non-UTF-8 or malformed file; two columns of
the same name; a missing column (the message lists the available ones); an
empty label or sensitive column; a label with one value, or more than two
without ``positive``; a single sensitive group; missing, non-integer or
duplicate ids.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from ._dataset import Dataset, DatasetError
from ._encode import encode_features

__all__ = ["load_csv", "read_csv_table", "suggest_columns", "suggest_id_column", "csv_limits", "CsvLimits",
           "MAX_CATEGORIES", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_ROWS"]

logger = logging.getLogger(__name__)

#: A non-numeric feature column with more distinct values than this (names,
#: free text, ...) is shown in ``display`` but left out of ``X``.
MAX_CATEGORIES = 100

#: The limits a CSV must stay within unless the operator sets others: 100 MiB (Adult's two files
#: are 5.3 MB) and 500,000 rows (a project keeps its data set in memory in every app process and
#: the worker; a 7.6-million-row file took 6.2 GB and 338 s to become a project).
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_ROWS = 500_000
#: The environment variables that set them (a positive whole number).
MAX_BYTES_VARIABLE, MAX_ROWS_VARIABLE = "FAIRAL_MAX_CSV_BYTES", "FAIRAL_MAX_CSV_ROWS"


@dataclass(frozen=True)
class CsvLimits:
    """The largest CSV :func:`load_csv` reads: ``max_bytes`` of file, ``max_rows`` data rows."""

    max_bytes: int
    max_rows: int


def _limit(given: int | None, variable: str, default: int) -> int:
    if given is None:
        text = os.environ.get(variable, "").strip().replace("_", "")
        if not text:
            return default
        try:
            given = int(text)
        except ValueError:
            raise DatasetError(f"{variable} must be a whole number, got {os.environ[variable]!r}") from None
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise DatasetError(f"the CSV limit {variable} must be a positive whole number, got {given!r}")
    return given


def csv_limits(max_bytes: int | None = None, max_rows: int | None = None) -> CsvLimits:
    """The limits in force: the arguments where given, else the environment variables
    ``FAIRAL_MAX_CSV_BYTES`` and ``FAIRAL_MAX_CSV_ROWS``, else :data:`DEFAULT_MAX_BYTES` and
    :data:`DEFAULT_MAX_ROWS`."""
    return CsvLimits(_limit(max_bytes, MAX_BYTES_VARIABLE, DEFAULT_MAX_BYTES),
                     _limit(max_rows, MAX_ROWS_VARIABLE, DEFAULT_MAX_ROWS))


def _size(n: int) -> str:
    """``1,234 bytes``, ``4.5 MiB``."""
    if n < 1024:
        return f"{n:,} bytes"
    power = min(3, (n.bit_length() - 1) // 10)
    return f"{n / 1024 ** power:,.1f} {('KiB', 'MiB', 'GiB')[power - 1]}"


def _too_large(size: int | None, max_bytes: int) -> DatasetError:
    """The refusal of a file of ``size`` bytes (None: an upload known only to be larger)."""
    what = "larger than" if size is None else f"{_size(size)}, over"
    return DatasetError(f"file is {what} the limit of {_size(max_bytes)} ({max_bytes:,} bytes); use a sample "
                        f"of it, or ask the operator to raise {MAX_BYTES_VARIABLE} (--max-csv-bytes on the "
                        "command line)", field="file")


def _read_bytes(source: str | os.PathLike | IO[Any], max_bytes: int) -> tuple[bytes | str, str]:
    """The file's content, never more than ``max_bytes`` + 1 read (a path's size is checked before
    it is opened), and a default data set name."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"CSV file {path} not found")
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        return path.read_bytes(), path.stem
    if hasattr(source, "read"):
        content = source.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise _too_large(None, max_bytes)
        return content, Path(str(getattr(source, "name", "") or "uploaded")).stem or "uploaded"
    raise DatasetError(f"source must be a path or a file-like object, got {type(source).__name__}")


_BOM = b"\xef\xbb\xbf"


def _read_utf8(source: str | os.PathLike | IO[Any], max_bytes: int) -> tuple[bytes, str]:
    """The file's bytes, checked to be UTF-8 text (decoded a megabyte at a time, never held as one
    string: a str and pandas' copy of it would cost several times the file), and a default name."""
    content, name = _read_bytes(source, max_bytes)
    if isinstance(content, str):  # a file opened in text mode
        return content.encode("utf-8"), name
    decoder, step = codecs.getincrementaldecoder("utf-8")(), 1 << 20
    for start in range(0, len(content), step):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(content[start:start + step], final=start + step >= len(content))
        except UnicodeDecodeError as err:
            utf16 = " (it looks like UTF-16)" if content[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
            position = start - pending + err.start
            raise DatasetError(
                f"file is not UTF-8 text{utf16} (byte 0x{content[position]:02x} at position "
                f"{position}); save it as CSV UTF-8 and upload it again"
            ) from None
    nul = content.find(b"\x00")
    if nul >= 0:
        raise DatasetError(f"file holds a NUL character (position {nul}): it is not a text CSV "
                           "(a spreadsheet or another binary file?); save it as CSV UTF-8")
    return content, name


def _check_header(content: bytes) -> None:
    """Refuse two columns of the same name (pandas would rename the second ``age.1``)."""
    lines = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    try:
        header = next(csv.reader(lines, skipinitialspace=True), [])
    except csv.Error as err:
        raise DatasetError(f"file is not a well-formed CSV: its header line cannot be read ({err})") from None
    seen: dict[str, int] = {}
    for name in header:
        seen[name] = seen.get(name, 0) + 1
    repeated = [f"{name!r} ({count} times)" for name, count in seen.items() if count > 1 and name.strip()]
    if repeated:
        raise DatasetError(f"the header names a column more than once: {', '.join(repeated)}; "
                           "every column needs its own name", field="file")


def _parser_message(err: Exception) -> str:
    """pandas' tokenizer error in words: ``Expected 3 fields in line 4, saw 5``."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if found:
        expected, line, saw = found.groups()
        return (f"file is not a well-formed CSV: line {line} has {saw} fields where the header has {expected} "
                "(a stray comma, or a value with a comma that is not in quotes?)")
    found = re.search(r"EOF inside string starting at row (\d+)", str(err))
    if found:
        return (f"file is not a well-formed CSV: a quoted value that starts in data row {found.group(1)} "
                "is never closed (a missing \")")
    return f"file is not a well-formed CSV: {err}"


def _parse(content: bytes, max_rows: int) -> pd.DataFrame:
    body = content[len(_BOM):] if content.startswith(_BOM) else content  # (a copy only after a BOM)
    if not body or body.isspace():
        raise DatasetError("file is empty: expected a header line and at least one row")
    _check_header(content)
    try:  # pandas reads the bytes in chunks and stops one row past the limit
        frame = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", skipinitialspace=True, nrows=max_rows + 1)
    except pd.errors.EmptyDataError:
        raise DatasetError("file is empty: expected a header line and at least one row") from None
    except (pd.errors.ParserError, csv.Error) as err:
        raise DatasetError(_parser_message(err)) from None
    if len(frame) == 0:
        raise DatasetError("file has a header but no rows")
    if len(frame.columns) == 1:
        separator = next((sep for sep in (";", "\t", "|") if sep in str(frame.columns[0])), None)
        if separator is not None:
            raise DatasetError(f"file has one column, {frame.columns[0]!r}: its values seem separated by "
                               f"{separator!r}, not commas; save it as CSV (comma-separated)", field="file")
    if len(frame) > max_rows:
        raise DatasetError(f"file has more than {max_rows:,} rows, the limit; use a sample of it, or ask the "
                           f"operator to raise {MAX_ROWS_VARIABLE} (--max-csv-rows on the command line)",
                           field="file")
    return frame


def read_csv_table(source: str | os.PathLike | IO[Any], *, max_bytes: int | None = None,
                   max_rows: int | None = None) -> tuple[pd.DataFrame, str]:
    """The file's rows as read, before any column is chosen, and a default data set name.

    It refuses what :func:`load_csv` refuses about the file itself (over the limits of
    :func:`csv_limits`, empty, not UTF-8, malformed, a column name twice), with the same messages:
    what a form shows before the columns are chosen.
    """
    limits = csv_limits(max_bytes, max_rows)
    content, name = _read_utf8(source, limits.max_bytes)
    return _parse(content, limits.max_rows), name


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
    source: str | os.PathLike | IO[Any], *, label: str, sensitive: str,
    display_columns: Sequence[str] | None = None, positive: object | None = None, id_column: str | None = None,
    include_sensitive: bool = False, name: str | None = None, max_bytes: int | None = None,
    max_rows: int | None = None,
) -> Dataset:
    """A user's CSV file as a validated :class:`Dataset`.

    Parameters
    ----------
    source : path or file-like
        A path (``str`` or ``PathLike``; a ``str`` is always a path, never CSV text) or an open
        file in binary or text mode, such as a Streamlit upload (``BytesIO``). The text must be
        UTF-8 (a BOM is accepted), with a header line naming each column once.
    label : str
        Column to predict.
    sensitive : str
        Column holding the sensitive group; its values become ``group`` as
        strings (``1.0`` → ``"1"``). It needs at least two groups.
    display_columns : sequence of str, optional
        Columns an annotator sees, in this order; the sensitive column is appended if missing. The
        label must not be among them. Default: every column but the label and the id column. ``X``
        is built from all feature columns either way.
    positive : optional
        The positive class (y = 1), compared as a string with the label
        values. With exactly two label values and no ``positive``, the value
        that sorts second is positive (``1`` for 0/1, ``True`` for booleans,
        ``"yes"`` over ``"no"``). With more than two values ``positive`` is
        required and y = (label == positive), every other value being 0.
    id_column : str, optional
        Column of unique integer row ids (neither shown nor a feature); default ids 0..n-1.
    include_sensitive : bool, default=False
        Keep the sensitive column in ``X``.
    name : str, optional
        Data set name; default the file name without extension.
    max_bytes, max_rows : int, optional
        Refuse a larger file (checked before parsing) or more data rows (counted while parsing);
        default :func:`csv_limits` (``FAIRAL_MAX_CSV_BYTES`` / ``FAIRAL_MAX_CSV_ROWS``, else
        100 MiB and 500,000 rows).

    The module docstring says how columns are encoded, which columns and rows
    are dropped, and every problem refused with a :class:`DatasetError`.
    """
    frame, default_name = read_csv_table(source, max_bytes=max_bytes, max_rows=max_rows)
    frame, ids = _checked_frame(frame, label, sensitive, display_columns, id_column)
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


def _checked_frame(frame: pd.DataFrame, label: str, sensitive: str, display_columns: Sequence[str] | None,
                   id_column: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The file's rows that have a label and a group, and their ids.

    Checks the columns and the ids, and drops empty columns and incomplete rows (both logged).
    """
    _check_columns(frame, label, sensitive, display_columns, id_column)
    if id_column is None and suggest_id_column(frame) not in (None, label, sensitive):
        logger.warning("column %r looks like a row id but is used as a feature; name it as the id column "
                       "(id_column=, --id-column, Setup's \"Id column\") if it is one", suggest_id_column(frame))
    frame = _drop_empty_columns(frame, id_column)
    return _complete_rows(frame, _ids(frame, id_column), label, sensitive)


def _check_columns(frame: pd.DataFrame, label: str, sensitive: str, display_columns: Sequence[str] | None,
                   id_column: str | None) -> None:
    """Every named column exists, the label is neither shown nor the sensitive column, neither is empty."""
    for column, role in ((label, "label"), (sensitive, "sensitive")):
        _require_column(frame, column, role)
    if id_column is not None:
        _require_column(frame, id_column, "id")
        if id_column in (label, sensitive):
            raise DatasetError(f"the id column {id_column!r} cannot also be the label or sensitive column",
                               field="id")
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


#: Column names that usually hold a row id (compared like :data:`LABEL_NAMES`).
ID_NAMES = ("id", "row_id", "item_id", "record_id", "example_id", "person_id", "uid")


def suggest_id_column(frame: pd.DataFrame) -> object | None:
    """A column named like :data:`ID_NAMES` (``id``, ``row_id``, ...), else None: the first choice
    for the id column, so that a file whose ``id`` column has duplicates is refused rather than
    loaded with its ids as a feature."""
    by_key = {_key(c): c for c in reversed(list(frame.columns))}
    return next((by_key[n] for n in ID_NAMES if n in by_key), None)
