"""A clean validation set from many noisy crowd answers (FR-Train, §4.4).

FR-Train (Roh et al., ICML 2020, §4.4, Tables 6-7) builds its clean
validation set on Amazon Mechanical Turk: every item is answered by several
workers on a 1-4 confidence scale, poor performers are filtered out with
quiz (gold) questions, and the mean of at most N answers is compared with
2.5. This module does the same steps on a file of answers, with the checks
a real upload needs:

1. :func:`read_answers` reads a long or wide CSV of answers into one tidy
   frame (``item_id``, ``worker_id``, ``answer``, ``position``) and rejects
   malformed input with a :class:`CrowdDataError` that names the problem:
   empty, binary or non-UTF-8 input; input larger than ``max_bytes``; a
   malformed CSV; missing columns; ``answer_k`` without ``worker_id_k`` (or
   the reverse, for a column or a cell); blank ids or answers in long files;
   non-integer answers; answers outside the scale; a worker answering an
   item twice; no answers.
2. :func:`gold_accuracy` and :func:`exclude_workers` measure workers on gold
   items and drop those who are clearly below a threshold.
3. :func:`majority_vote`, :func:`mean_score` (the paper's rule) and
   :func:`dawid_skene` turn the answers into one 0/1 label per item;
   :func:`aggregate` picks one by name, including those of
   :mod:`fairal.crowd_models` (crowd-kit's GLAD, MACE, M-MSR, one-coin and
   four-class Dawid-Skene; learning from crowds with the item features). Their ``max_answers=N`` keeps the
   answers whose ``position`` is below N, i.e. the first N answers
   collected, as in the paper.
4. :func:`agreement` reports Fleiss' kappa, Krippendorff's alpha and the mean
   pairwise Cohen's kappa, so that a user sees how much the crowd agrees
   before trusting its labels.
5. :func:`export_table` writes any of these frames as CSV or JSON with
   spreadsheet formula injection neutralised.
6. :func:`simulate_crowd` (independent errors) and
   :func:`fairal.crowd_simulation.simulate_feature_crowd` (shared mistakes on
   ambiguous items, calibrated to FR-Train's Table 6) with
   :func:`compare_aggregations` measure the aggregators against known truth
   (tests and ``benchmarks/crowd_aggregation.py``).

Library choices: Krippendorff's alpha comes from ``krippendorff``, Fleiss'
kappa and Wilson intervals from ``statsmodels``, Cohen's kappa from
scikit-learn and Dawid-Skene from ``crowd-kit`` (1.4.2 installed next to
pandas 3.1.1, numpy 2.4.6 and scikit-learn 1.9.1 without changing them:
``pip install --dry-run crowd-kit`` reported "Requirement already satisfied"
for all three). crowd-kit is imported only when Dawid-Skene runs, because
its import takes about a second (it loads nltk).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from fairal.errors import CrowdDataError  # noqa: F401 (defined there, named here too)

__all__ = [
    "AGGREGATORS",
    "ANSWER_COLUMNS",
    "COLUMN_ROLES",
    "CONFIDENCE4_AGGREGATORS",
    "FEATURE_AGGREGATORS",
    "QUICK_AGGREGATORS",
    "applicable_aggregators",
    "SCALES",
    "CrowdDataError",
    "agreement",
    "aggregate",
    "cohen_kappa",
    "compare_aggregations",
    "dawid_skene",
    "exclude_workers",
    "export_table",
    "gold_accuracy",
    "majority_vote",
    "mean_score",
    "read_answers",
    "simulate_crowd",
    "to_binary",
    "to_wide",
]

logger = logging.getLogger(__name__)

#: The answer values each scale allows. ``confidence4`` is FR-Train's scale:
#: 1 = surely negative, 2 = probably negative, 3 = probably positive,
#: 4 = surely positive.
SCALES: dict[str, tuple[int, ...]] = {"binary": (0, 1), "confidence4": (1, 2, 3, 4)}

#: Columns of the tidy answers frame returned by :func:`read_answers` and
#: :func:`simulate_crowd`.
ANSWER_COLUMNS = ("item_id", "worker_id", "answer", "position")

#: Names accepted by :func:`aggregate`.
AGGREGATORS = ("majority_vote", "mean_score", "dawid_skene", "one_coin_dawid_skene", "dawid_skene_4", "glad", "mace",
               "mmsr", "learning_from_crowds", "learning_from_crowds_difficulty")
#: Aggregators that need answers on the confidence4 scale.
CONFIDENCE4_AGGREGATORS = ("mean_score", "dawid_skene_4")
#: Aggregators that also read the items' features (``features=`` in :func:`aggregate`).
FEATURE_AGGREGATORS = ("learning_from_crowds", "learning_from_crowds_difficulty")
#: Quick aggregators (well under a second on 10,000 answers); crowd-kit's GLAD, MACE and M-MSR take seconds.
QUICK_AGGREGATORS = ("majority_vote", "mean_score", "dawid_skene", "one_coin_dawid_skene", "dawid_skene_4",
                     "learning_from_crowds", "learning_from_crowds_difficulty")

#: Default column names of a long file, matched case-insensitively, in
#: order of preference.
_LONG_COLUMN_NAMES = {
    "item": ("item_id", "item", "id", "task_id", "task", "question_id", "question", "example_id", "example_idx"),
    "worker": ("worker_id", "worker", "annotator_id", "annotator", "rater_id", "rater", "user_id"),
    "answer": ("answer", "label", "value", "response", "rating"),
}
#: Default stems of a wide file's numbered columns (``answer_1``, ``ans_1``; ``worker_id_1``, ``worker_1``),
#: in order of preference; FR-Train's published crowd files use ``ans_k``.
_WIDE_STEMS = {"answer": ("answer", "ans"), "worker": ("worker_id", "worker")}
#: Keys of the ``columns`` mapping :func:`read_answers` accepts.
COLUMN_ROLES = ("item", "worker", "answer")
_INTEGER = re.compile(r"^[+-]?\d+(?:\.0*)?$")
#: First bytes of binary files people upload by mistake instead of a CSV.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx/.ods workbook is one)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office (.xls) file",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
    b"\x89PNG": "a PNG image",
}
#: OWASP "CSV injection": cells starting with these are run as formulas by
#: spreadsheet programs.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: How many offending rows an error message lists before "...".
_SHOWN = 5


# --------------------------------------------------------------------------
# Scales
# --------------------------------------------------------------------------


def _scale_values(scale: str) -> tuple[int, ...]:
    if scale not in SCALES:
        raise CrowdDataError(f"scale must be one of {', '.join(map(repr, SCALES))}, got {scale!r}")
    return SCALES[scale]


def to_binary(answers: Iterable[int] | pd.Series | np.ndarray, scale: str) -> np.ndarray:
    """Answers as 0/1 decisions: ``confidence4`` 1, 2 → 0 and 3, 4 → 1; ``binary`` as is.

    Raises :class:`CrowdDataError` if a value is not on the scale, because a
    silent cut (say ``answer >= 3``) would turn a 0/1 file read with the
    wrong scale into all-negative labels.
    """
    allowed = _scale_values(scale)
    values = np.asarray(answers)
    outside = ~np.isin(values, allowed)
    if outside.any():
        shown = ", ".join(str(v) for v in np.unique(values[outside])[:_SHOWN])
        raise CrowdDataError(f"answers outside the {scale} scale {allowed}: {shown}")
    if scale == "binary":
        return values.astype(np.int64)
    return (values >= 3).astype(np.int64)


# --------------------------------------------------------------------------
# Reading answers
# --------------------------------------------------------------------------


def _source_bytes(source: str | os.PathLike | bytes | IO[Any], max_bytes: int,
                  given_name: str | None = None) -> tuple[bytes | str, str]:
    """The raw content (bytes, or str for a text-mode file) and a name for messages."""
    too_large = "{name} is larger than max_bytes={max:,} bytes ({size}); split it or raise max_bytes"
    if isinstance(source, (bytes, bytearray, memoryview)):
        content, name = bytes(source), given_name or "input"
        if len(content) > max_bytes:
            raise CrowdDataError(too_large.format(name=name, max=max_bytes, size=f"{len(content):,} bytes"))
        return content, name
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise CrowdDataError(f"answers file {path} not found")
        size = path.stat().st_size
        if size > max_bytes:
            raise CrowdDataError(too_large.format(name=path.name, max=max_bytes, size=f"{size:,} bytes"))
        return path.read_bytes(), path.name
    if hasattr(source, "read"):
        name = Path(str(getattr(source, "name", "") or "upload")).name or "upload"
        content = source.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise CrowdDataError(too_large.format(name=name, max=max_bytes, size=f"read {len(content):,}"))
        return content, name
    raise CrowdDataError(
        f"source must be a path, bytes or a file-like object, got {type(source).__name__}"
    )


def _decode(content: bytes | str, name: str) -> str:
    """UTF-8 text (a BOM is dropped); binary files and other encodings are refused.

    Latin-1 is deliberately not tried: every byte string decodes as latin-1,
    so a fallback would turn a UTF-16 or binary file into garbage ids instead
    of an error the user can act on.
    """
    if isinstance(content, str):
        return content.removeprefix("\ufeff")
    for signature, kind in _BINARY_SIGNATURES.items():
        if content.startswith(signature):
            raise CrowdDataError(f"{name} is {kind}, not a CSV text file; export it as 'CSV UTF-8'")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CrowdDataError(f"{name} is UTF-16 text; save it as 'CSV UTF-8' (UTF-8 encoding)")
    nul = content.find(b"\x00")
    if nul >= 0:
        raise CrowdDataError(
            f"{name} looks binary (NUL byte at offset {nul}), not a CSV text file"
        )
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = content[: err.start].count(b"\n") + 1
        raise CrowdDataError(
            f"{name} is not UTF-8 encoded: byte 0x{content[err.start]:02x} at offset {err.start} "
            f"(line {line}) cannot be decoded; save it as 'CSV UTF-8'"
        ) from None


def _delimiter(header_line: str) -> str:
    """Comma, unless the header has none and uses semicolons or tabs (European Excel)."""
    if "," in header_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in header_line:
            return candidate
    return ","


def _parse_csv(text: str, name: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows (padded to the header's width, cells stripped) and each row's line number."""
    if not text.strip():
        raise CrowdDataError(f"{name} is empty: expected a header line and rows of answers")
    header_line = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(header_line), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    previous_line = 0  # the physical line the last record ended on
    try:
        header: list[str] | None = None
        for row in reader:
            _check_one_line(row, previous_line, reader.line_num, name)
            previous_line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            cells = [cell.strip() for cell in row]
            if header is None:
                header = cells
                continue
            if len(cells) > len(header):
                if any(cells[len(header):]):
                    raise CrowdDataError(
                        f"{name} is not a well-formed CSV: line {reader.line_num} has {len(cells)} "
                        f"fields but the header has {len(header)}"
                    )
                cells = cells[: len(header)]
            rows.append(cells + [""] * (len(header) - len(cells)))
            lines.append(reader.line_num)
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            raise CrowdDataError(
                f"{name} is not a well-formed CSV: a quoted field opened on line {previous_line + 1} is never "
                f'closed (an unbalanced " quote), so the rest of the file would be read into it'
            ) from None
        raise CrowdDataError(
            f"{name} is not a well-formed CSV (line {reader.line_num}): {err}"
        ) from None
    assert header is not None  # text is not blank
    if any(not column for column in header):
        raise CrowdDataError(f"{name} has a blank column name in its header line: {header}")
    lowered = [column.lower() for column in header]
    duplicates = sorted({c for c in lowered if lowered.count(c) > 1})
    if duplicates:
        raise CrowdDataError(f"{name} has duplicate column names (case-insensitive): {duplicates}")
    return header, rows, lines


def _check_one_line(row: list[str], previous_line: int, line: int, name: str) -> None:
    """Refuse a record whose quoted field runs over several lines: ids and answers never hold line breaks,
    and such a field is nearly always an unbalanced quote that swallowed the rows after it."""
    if any("\n" in cell or "\r" in cell for cell in row):
        raise CrowdDataError(
            f"{name} is not a well-formed CSV: a quoted field opened on line {previous_line + 1} runs on to line "
            f'{line} (an unbalanced " quote?); ids and answers cannot contain line breaks'
        )


def _find_column(header: Sequence[str], requested: str | None, role: str, name: str) -> int:
    """Index of the ``role`` column: the one requested, else the first default name present."""
    lowered = [column.lower() for column in header]
    candidates = (requested,) if requested is not None else _LONG_COLUMN_NAMES[role]
    for candidate in candidates:
        if candidate.lower() in lowered:
            return lowered.index(candidate.lower())
    expected = repr(requested) if requested is not None else "one of " + ", ".join(candidates)
    raise CrowdDataError(
        f"{name}: missing {role} column: expected {expected}; found columns {list(header)}"
    )


def _long_records(
    header: list[str],
    rows: list[list[str]],
    lines: list[int],
    name: str,
    item_column: str | None,
    worker_column: str | None,
    answer_column: str | None,
) -> pd.DataFrame:
    """One record per row: item, worker, the answer as typed, its line and column."""
    item = _find_column(header, item_column, "item", name)
    worker = _find_column(header, worker_column, "worker", name)
    answer = _find_column(header, answer_column, "answer", name)
    if len({item, worker, answer}) < 3:
        raise CrowdDataError(
            f"{name}: item, worker and answer must be three different columns, got "
            f"{header[item]!r}, {header[worker]!r}, {header[answer]!r}"
        )
    return pd.DataFrame(
        {
            "item_id": [row[item] for row in rows],
            "worker_id": [row[worker] for row in rows],
            "raw": [row[answer] for row in rows],
            "line": lines,
            "column": header[answer],
        }
    )


def _numbered_columns(header: Sequence[str], stem: str) -> dict[int, int]:
    """``{k: column index}`` of the columns named ``<stem>_<k>`` (case-insensitive; ``stem`` may end in ``_``)."""
    pattern = re.compile(rf"^{re.escape(stem.lower().removesuffix('_'))}_(\d+)$")
    return {int(m[1]): i for i, c in enumerate(header) if (m := pattern.match(c.lower()))}


def _wide_stem(header: Sequence[str], requested: str | None, role: str) -> str:
    """The stem of the numbered ``role`` columns: the one requested, else the first default stem present."""
    candidates = (requested,) if requested is not None else _WIDE_STEMS[role]
    return next((stem for stem in candidates if _numbered_columns(header, stem)), candidates[0])


def _wide_records(
    header: list[str], rows: list[list[str]], lines: list[int], name: str, item_column: str | None,
    answer_stem: str | None = None, worker_stem: str | None = None,
) -> pd.DataFrame:
    """One record per filled answer_k/worker_id_k pair, row by row and k by k (file order)."""
    answer_stem, worker_stem = _wide_stem(header, answer_stem, "answer"), _wide_stem(header, worker_stem, "worker")
    answers, workers = _numbered_columns(header, answer_stem), _numbered_columns(header, worker_stem)
    unmatched = sorted(set(answers) ^ set(workers))
    if unmatched:
        k = unmatched[0]
        a_name, w_name = f"{answer_stem.removesuffix('_')}_{k}", f"{worker_stem.removesuffix('_')}_{k}"
        present, missing = (a_name, w_name) if k in answers else (w_name, a_name)
        raise CrowdDataError(f"{name}: column {present} has no matching {missing} column")
    if not answers:
        raise CrowdDataError(f"{name}: missing answer columns: a wide file needs {answer_stem}_1, "
                             f"{worker_stem}_1, ... (found columns {list(header)})")
    item = _find_column(header, item_column, "item", name)
    records: list[tuple[str, str, str, int, str]] = []
    for row, line in zip(rows, lines):
        for k in sorted(answers):
            raw, worker = row[answers[k]], row[workers[k]]
            if not raw and not worker:
                continue  # no k-th answer for this item
            if not worker or not raw:
                answer_name, worker_name = header[answers[k]], header[workers[k]]
                filled, blank = (answer_name, worker_name) if raw else (worker_name, answer_name)
                raise CrowdDataError(
                    f"{name}: line {line}: {filled} is filled but {blank} is blank; "
                    "an answer needs its worker id and vice versa"
                )
            records.append((row[item], worker, raw, line, header[answers[k]]))
    return pd.DataFrame(records, columns=["item_id", "worker_id", "raw", "line", "column"])


def _at_lines(frame: pd.DataFrame, mask: pd.Series, describe: Callable[[Any], str]) -> str:
    """The first few offending records, described, for an error message."""
    bad = frame[mask]
    shown = "; ".join(describe(row) for row in bad.head(_SHOWN).itertuples())
    more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
    return shown + more


def _validate(records: pd.DataFrame, name: str, scale: str) -> pd.DataFrame:
    """The tidy answers frame, or a CrowdDataError naming the first kind of problem found."""
    allowed = _scale_values(scale)
    if records.empty:
        raise CrowdDataError(f"{name} has no answers: the header is there but no row holds an answer")
    for column, role in (("item_id", "item"), ("worker_id", "worker")):
        blank = records[column] == ""
        if blank.any():
            lines = _at_lines(records, blank, lambda r: f"line {r.line}")
            raise CrowdDataError(f"{name}: blank {role} id on {lines}")
    blank = records["raw"] == ""
    if blank.any():
        raise CrowdDataError(
            f"{name}: blank answer on {_at_lines(records, blank, lambda r: f'line {r.line}')}"
        )
    integer = records["raw"].str.match(_INTEGER)
    if not integer.all():
        shown = _at_lines(records, ~integer, lambda r: f"{r.raw!r} (line {r.line}, {r.column})")
        raise CrowdDataError(f"{name}: non-integer answers: {shown}")
    values = records["raw"].astype(float).astype(np.int64)
    outside = ~values.isin(allowed)
    if outside.any():
        shown = _at_lines(records, outside, lambda r: f"{r.raw} (line {r.line}, {r.column})")
        raise CrowdDataError(f"{name}: answers outside the {scale} scale {allowed}: {shown}")
    repeated = records.duplicated(["item_id", "worker_id"], keep=False)
    if repeated.any():
        first = records[repeated].iloc[0]
        same = records[repeated & (records.item_id == first.item_id) & (records.worker_id == first.worker_id)]
        raise CrowdDataError(
            f"{name}: worker {first.worker_id!r} answered item {first.item_id!r} more than once "
            f"(lines {', '.join(map(str, same.line))}); keep one answer per worker and item"
        )
    answers = pd.DataFrame(
        {
            "item_id": records["item_id"].astype(str),
            "worker_id": records["worker_id"].astype(str),
            "answer": values.to_numpy(),
        }
    )
    answers["position"] = answers.groupby("item_id", sort=False).cumcount().astype(np.int64)
    return answers.reset_index(drop=True)


def read_answers(
    source: str | os.PathLike | bytes | IO[Any],
    *,
    format: Literal["auto", "long", "wide"] = "auto",
    scale: str = "binary",
    item_column: str | None = None,
    worker_column: str | None = None,
    answer_column: str | None = None,
    columns: Mapping[str, str] | None = None,
    name: str | None = None,
    max_bytes: int = 20_000_000,
) -> pd.DataFrame:
    """Crowd answers from a CSV file as one tidy frame, one row per answer.

    Parameters
    ----------
    source : path, bytes or file-like
        A path (a ``str`` is always a path), bytes, or an open file (a
        Streamlit upload); UTF-8 (BOM accepted, see :func:`_decode`); commas,
        or ``;``/tab when the header line holds no comma.
    format : {"auto", "long", "wide"}, default="auto"
        ``long``: one row per answer (item id, worker id, answer). ``wide``:
        one row per item, an item id column and numbered pairs
        ``answer_k``/``worker_id_k`` (also ``ans_k``, ``worker_k``); a blank
        k-th pair means no k-th answer. ``auto``: wide when numbered columns exist.
    scale : {"binary", "confidence4"}, default="binary"
        Allowed answers: 0/1, or FR-Train's 1-4 confidence scale.
    item_column, worker_column, answer_column : str, optional
        Column names, matched case-insensitively; by default the first present
        of common spellings (``item_id``, ``task``, ``example_idx``...;
        ``worker_id``, ``annotator``...; ``answer``, ``label``...). In a wide
        file worker and answer name the *stems*: ``ans`` reads ``ans_1``, ...
    columns : mapping, optional
        The same as ``{"item": ..., "worker": ..., "answer": ...}`` (any
        subset), e.g. ``{"item": "example_idx", "answer": "ans"}``; not
        together with the ``*_column`` arguments.
    name : str, optional
        The file's name in messages (default: the path's or upload's; "input").
    max_bytes : int, default=20_000_000
        Larger input is refused before it is parsed.

    Returns ``item_id`` and ``worker_id`` (str, stripped, otherwise verbatim:
    ``"007"``, ``"=1+1"``), ``answer`` (int) and ``position`` (0-based order
    among the item's answers, in file order; ``max_answers`` counts it).

    Bad input raises :class:`CrowdDataError` naming the file, the line (the
    header is line 1) and column; the module docstring lists what is refused.
    """
    _check_read_options(format, scale)
    item_column, worker_column, answer_column = _column_options(columns, item_column, worker_column, answer_column)
    content, source_name = _source_bytes(source, max_bytes, name)
    name = name or source_name
    header, rows, lines = _parse_csv(_decode(content, name), name)
    records, is_wide = _records(header, rows, lines, name, format, item_column, worker_column, answer_column)
    answers = _validate(records, name, scale)
    logger.info("read %d answers on %d items by %d workers from %s (%s format)", len(answers),
                answers.item_id.nunique(), answers.worker_id.nunique(), name, "wide" if is_wide else "long")
    return answers


def _column_options(columns: Mapping[str, str] | None, item: str | None, worker: str | None,
                    answer: str | None) -> tuple[str | None, str | None, str | None]:
    """(item, worker, answer) column names from ``columns`` or the three ``*_column`` arguments."""
    if columns is None:
        return item, worker, answer
    if not isinstance(columns, Mapping):
        raise CrowdDataError(f"columns must be a mapping like {{'item': 'example_idx'}}, got {type(columns).__name__}")
    unknown = sorted(set(columns) - set(COLUMN_ROLES))
    if unknown:
        raise CrowdDataError(f"columns has unknown keys {unknown}; use {', '.join(COLUMN_ROLES)}")
    if any(value is not None for value in (item, worker, answer)):
        raise CrowdDataError("give column names either as columns={...} or as item_column/worker_column/"
                             "answer_column, not both")
    blank = [role for role, value in columns.items() if not str(value).strip()]
    if blank:
        raise CrowdDataError(f"columns names a blank column for {blank}")
    return (*(str(columns[r]).strip() if r in columns else None for r in COLUMN_ROLES),)  # type: ignore[return-value]


def _check_read_options(format: str, scale: str) -> None:
    if format not in ("auto", "long", "wide"):
        raise CrowdDataError(f"format must be 'auto', 'long' or 'wide', got {format!r}")
    _scale_values(scale)


def _records(header: list[str], rows: list[list[str]], lines: list[int], name: str, format: str,
             item_column: str | None, worker_column: str | None,
             answer_column: str | None) -> tuple[pd.DataFrame, bool]:
    """The raw answer records of a long or wide file, and whether it was read as wide."""
    stems = [answer_column] if answer_column is not None else list(_WIDE_STEMS["answer"])
    stems += [worker_column] if worker_column is not None else list(_WIDE_STEMS["worker"])
    is_wide = format == "wide" or (format == "auto" and any(_numbered_columns(header, stem) for stem in stems))
    if not is_wide:
        return _long_records(header, rows, lines, name, item_column, worker_column, answer_column), False
    return _wide_records(header, rows, lines, name, item_column, answer_column, worker_column), True


def to_wide(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per item: ``item_id``, then ``answer_k``/``worker_id_k`` pairs in position order.

    The layout :func:`read_answers` reads with ``format="wide"``; items with
    fewer answers than the widest have blanks (``<NA>``) at the end.
    """
    _check_answer_columns(answers)
    ordered = answers.sort_values(["item_id", "position"], kind="stable")
    rank = ordered.groupby("item_id", sort=False).cumcount() + 1
    wide = ordered.assign(k=rank).pivot(index="item_id", columns="k", values=["answer", "worker_id"])
    result = pd.DataFrame(index=wide.index)
    for k in range(1, int(rank.max()) + 1):
        result[f"answer_{k}"] = wide[("answer", k)].astype("Int64")
        result[f"worker_id_{k}"] = wide[("worker_id", k)]
    order = pd.unique(answers["item_id"])  # keep first-seen item order
    return result.loc[order].reset_index()


# --------------------------------------------------------------------------
# Worker quality
# --------------------------------------------------------------------------


def _check_answer_columns(answers: pd.DataFrame) -> None:
    if not isinstance(answers, pd.DataFrame):
        raise CrowdDataError(f"answers must be a DataFrame from read_answers, got {type(answers).__name__}")
    missing = [c for c in ANSWER_COLUMNS if c not in answers.columns]
    if missing:
        raise CrowdDataError(
            f"answers frame is missing columns {missing}; build it with read_answers or simulate_crowd"
        )


def _binary_answers(answers: pd.DataFrame, scale: str) -> pd.DataFrame:
    """A copy with a ``vote`` column (0/1 decision); validates columns and scale."""
    _check_answer_columns(answers)
    return answers.assign(vote=to_binary(answers["answer"].to_numpy(), scale))


def _binary_mapping(labels: Mapping[Any, int] | pd.Series, what: str) -> pd.Series:
    """``labels`` as a 0/1 Series indexed by item id (str)."""
    series = pd.Series(labels) if not isinstance(labels, pd.Series) else labels
    if series.empty:
        raise CrowdDataError(f"{what} is empty: expected a mapping item_id -> 0/1")
    bad = series[~series.isin([0, 1])]
    if len(bad):
        value = bad.iloc[0].item() if isinstance(bad.iloc[0], np.generic) else bad.iloc[0]
        raise CrowdDataError(f"{what} labels must be 0 or 1, got {value!r} for item {bad.index[0]!r}")
    index = series.index.astype(str)
    if index.has_duplicates:
        raise CrowdDataError(f"{what} lists item {index[index.duplicated()][0]!r} more than once")
    return pd.Series(series.to_numpy(dtype=np.int64), index=index, name=what)


def gold_accuracy(
    answers: pd.DataFrame,
    gold: Mapping[Any, int] | pd.Series,
    *,
    scale: str,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Each worker's accuracy on gold items, with a Wilson interval.

    ``gold`` maps item id (compared as str) to the true 0/1 label. Answers
    are turned into decisions with :func:`to_binary` first, so a 3 on a
    positive gold item is correct.

    Returns a frame indexed by ``worker_id`` with ``n_answers`` (all of the
    worker's answers), ``n_gold``, ``n_correct``, ``accuracy`` and the
    Wilson interval ``ci_low``/``ci_high`` (NaN where ``n_gold`` is 0). The
    Wilson interval (statsmodels' ``proportion_confint``) stays inside
    [0, 1] and is sensible for the 5-20 gold answers a worker typically has,
    where the normal approximation is not.

    Raises :class:`CrowdDataError` when no gold item has an answer: usually
    the ids do not match (e.g. ``"7"`` versus ``"007"``), and silently
    rating nobody would keep every spammer.
    """
    from statsmodels.stats.proportion import proportion_confint

    votes = _binary_answers(answers, scale)
    truth = _binary_mapping(gold, "gold")
    on_gold = votes[votes["item_id"].isin(truth.index)]
    if on_gold.empty:
        raise CrowdDataError(
            f"none of the {len(truth)} gold items has an answer; check that gold ids match "
            f"the answers' item ids (e.g. {truth.index[0]!r} versus {votes['item_id'].iloc[0]!r})"
        )
    correct = on_gold["vote"].to_numpy() == truth.loc[on_gold["item_id"]].to_numpy()
    per_worker = pd.DataFrame(
        {
            "n_answers": votes.groupby("worker_id").size(),
            "n_gold": on_gold.groupby("worker_id").size(),
            "n_correct": on_gold.assign(correct=correct).groupby("worker_id")["correct"].sum(),
        }
    ).fillna(0).astype(np.int64)
    per_worker["accuracy"] = per_worker["n_correct"] / per_worker["n_gold"].replace(0, np.nan)
    has_gold = per_worker["n_gold"] > 0
    low, high = proportion_confint(
        per_worker.loc[has_gold, "n_correct"].to_numpy(),
        per_worker.loc[has_gold, "n_gold"].to_numpy(),
        alpha=1 - confidence,
        method="wilson",
    )
    per_worker["ci_low"] = np.nan
    per_worker["ci_high"] = np.nan
    per_worker.loc[has_gold, "ci_low"] = low
    per_worker.loc[has_gold, "ci_high"] = high
    per_worker.index.name = "worker_id"
    return per_worker


def exclude_workers(
    answers: pd.DataFrame,
    quality: pd.DataFrame,
    *,
    min_accuracy: float,
    min_gold: int = 3,
    rule: Literal["ci_upper", "point"] = "ci_upper",
) -> tuple[pd.DataFrame, list[str]]:
    """The answers without those of workers who are clearly below ``min_accuracy``.

    ``quality`` is :func:`gold_accuracy`'s frame. A worker is excluded when
    they have at least ``min_gold`` gold answers and

    * ``rule="ci_upper"`` (default): the upper end of their Wilson interval
      is below ``min_accuracy``, i.e. the gold answers are strong evidence
      that the worker is worse than the threshold. With the point estimate
      a good worker who misses 1 of 2 gold questions (50 %) would be
      dropped; the upper bound (0.91 for 1/2) keeps them until more gold
      answers show a pattern (0/5 → 0.43, 2/10 → 0.51).
    * ``rule="point"``: their observed accuracy is below ``min_accuracy``
      (more aggressive; rely on ``min_gold`` to avoid tiny samples).

    Workers missing from ``quality`` or with fewer gold answers are kept.
    Returns ``(kept answers, sorted excluded worker ids)``.
    """
    _check_answer_columns(answers)
    if not 0 <= min_accuracy <= 1:
        raise CrowdDataError(f"min_accuracy must be in [0, 1], got {min_accuracy}")
    if rule not in ("ci_upper", "point"):
        raise CrowdDataError(f"rule must be 'ci_upper' or 'point', got {rule!r}")
    needed = {"n_gold", "accuracy", "ci_high"}
    if not needed <= set(quality.columns):
        raise CrowdDataError(
            f"quality is missing columns {sorted(needed - set(quality.columns))}; pass gold_accuracy's result"
        )
    measured = quality[quality["n_gold"] >= min_gold]
    score = measured["ci_high"] if rule == "ci_upper" else measured["accuracy"]
    excluded = sorted(str(w) for w in measured.index[score < min_accuracy])
    kept = answers[~answers["worker_id"].isin(excluded)].reset_index(drop=True)
    logger.info("excluded %d workers (%d answers)", len(excluded), len(answers) - len(kept))
    return kept, excluded


# --------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------


def _first_answers(answers: pd.DataFrame, max_answers: int | None) -> pd.DataFrame:
    """Each item's answers with ``position < max_answers`` (all when None), by position."""
    _check_answer_columns(answers)
    if max_answers is not None and (not isinstance(max_answers, (int, np.integer)) or max_answers < 1):
        raise CrowdDataError(f"max_answers must be a positive integer or None, got {max_answers!r}")
    if answers.empty:
        raise CrowdDataError("answers frame is empty: there is nothing to aggregate")
    ordered = answers.sort_values(["item_id", "position"], kind="stable")
    if max_answers is None:
        return ordered
    return ordered[ordered.groupby("item_id", sort=False).cumcount() < max_answers]


def majority_vote(
    answers: pd.DataFrame, *, scale: str, max_answers: int | None = None
) -> pd.DataFrame:
    """The label most of an item's (first ``max_answers``) workers chose.

    Answers become 0/1 decisions with :func:`to_binary`. Ties (as many
    positive as negative decisions) are broken, in order, by

    1. on ``confidence4``, the mean answer versus 2.5: two 4s and two 2s
       lean positive, which is the information the 1-4 scale adds;
    2. otherwise the label most answers in the whole input chose (the
       crowd's positive rate; negative if that is exactly one half).

    Ties are not left undecided because a validation set needs a label for
    every item; the ``tied`` column marks them so a caller can drop them.

    Returns a frame indexed by ``item_id`` with ``label``, ``n_answers``,
    ``positive_share`` (share of positive decisions), ``confidence`` (share
    of decisions that agree with the label) and ``tied``.
    """
    votes = _binary_answers(_first_answers(answers, max_answers), scale)
    grouped = votes.groupby("item_id", sort=False)
    result = pd.DataFrame({"n_answers": grouped.size(), "positive_share": grouped["vote"].mean()})
    tied = np.isclose(result["positive_share"], 0.5)
    label = (result["positive_share"] > 0.5).astype(np.int64)
    prior = int(votes["vote"].mean() > 0.5)
    fallback = pd.Series(prior, index=result.index)
    if scale == "confidence4":
        mean = grouped["answer"].mean()
        fallback = fallback.where(np.isclose(mean, 2.5), (mean > 2.5).astype(np.int64))
    result["label"] = label.where(~tied, fallback).astype(np.int64)
    result["confidence"] = np.where(result["label"] == 1, result["positive_share"], 1 - result["positive_share"])
    result["tied"] = tied
    return result[["label", "n_answers", "positive_share", "confidence", "tied"]]


def mean_score(
    answers: pd.DataFrame,
    *,
    scale: str = "confidence4",
    max_answers: int | None = None,
    threshold: float = 2.5,
) -> pd.DataFrame:
    """FR-Train's rule: the mean of an item's first ``max_answers`` 1-4 answers, positive above 2.5.

    Only defined on the ``confidence4`` scale (on 0/1 answers it would be a
    majority vote with a meaningless 2.5 threshold). A mean exactly equal to
    ``threshold`` is negative, as in the paper's "compare with 2.5"; with
    the default threshold this can only happen for an even number of
    answers, and ``tied`` marks it.

    Returns a frame indexed by ``item_id`` with ``label``, ``n_answers``,
    ``mean`` and ``tied``.
    """
    if scale != "confidence4":
        raise CrowdDataError(
            f"mean_score needs answers on the confidence4 scale (1-4), got scale={scale!r}; "
            "use majority_vote or dawid_skene for binary answers"
        )
    first = _first_answers(answers, max_answers)
    to_binary(first["answer"].to_numpy(), scale)  # only to reject values off the scale
    grouped = first.groupby("item_id", sort=False)["answer"]
    result = pd.DataFrame({"n_answers": grouped.size(), "mean": grouped.mean()})
    result["label"] = (result["mean"] > threshold).astype(np.int64)
    result["tied"] = np.isclose(result["mean"], threshold)
    return result[["label", "n_answers", "mean", "tied"]]


def dawid_skene(
    answers: pd.DataFrame,
    *,
    scale: str,
    max_answers: int | None = None,
    n_iter: int = 100,
    tol: float = 1e-5,
) -> pd.DataFrame:
    """Labels from Dawid and Skene's (1979) EM model, via crowd-kit.

    Each worker gets a 2x2 confusion matrix estimated jointly with the item
    labels, so a worker who is right 90 % of the time outweighs several who
    guess; majority vote weighs them all the same. Answers become 0/1
    decisions first (:func:`to_binary`); EM starts from the majority vote,
    which keeps the labels from flipping when most workers are better than
    chance. An exact 0.5 posterior is broken by the estimated class prior
    and marked ``tied``.

    Returns a frame indexed by ``item_id`` with ``label``, ``n_answers``,
    ``posterior`` (P(label = 1)), ``confidence`` (posterior of the chosen
    label) and ``tied``.
    """
    from crowdkit.aggregation import DawidSkene

    votes = _binary_answers(_first_answers(answers, max_answers), scale)
    data = pd.DataFrame(
        {
            "task": votes["item_id"].to_numpy(),
            "worker": votes["worker_id"].to_numpy(),
            "label": votes["vote"].to_numpy(),
        }
    )
    with warnings.catch_warnings():
        # crowd-kit 1.4.2 passes copy=False to DataFrame.rename, deprecated in pandas 3.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        model = DawidSkene(n_iter=n_iter, tol=tol).fit(data)
    probas = model.probas_
    assert probas is not None and model.priors_ is not None  # set by fit
    posterior = probas[1] if 1 in probas.columns else pd.Series(0.0, index=probas.index)
    result = pd.DataFrame({"n_answers": votes.groupby("item_id", sort=False).size()})
    result["posterior"] = posterior.reindex(result.index).to_numpy()
    tied = np.isclose(result["posterior"], 0.5)
    prior = int(model.priors_.get(1, 0.0) > 0.5)
    result["label"] = np.where(tied, prior, result["posterior"] > 0.5).astype(np.int64)
    result["confidence"] = np.where(result["label"] == 1, result["posterior"], 1 - result["posterior"])
    result["tied"] = tied
    return result[["label", "n_answers", "posterior", "confidence", "tied"]]


_AGGREGATOR_FUNCTIONS = {"majority_vote": majority_vote, "mean_score": mean_score, "dawid_skene": dawid_skene}


def applicable_aggregators(scale: str, *, features: bool = False, quick: bool = False) -> list[str]:
    """The aggregators that apply to answers on ``scale`` (with item features or not), in :data:`AGGREGATORS` order."""
    _scale_values(scale)
    return [m for m in AGGREGATORS if (scale == "confidence4" or m not in CONFIDENCE4_AGGREGATORS)
            and (features or m not in FEATURE_AGGREGATORS) and (not quick or m in QUICK_AGGREGATORS)]


def aggregate(answers: pd.DataFrame, method: str, **kwargs: Any) -> pd.DataFrame:
    """One label per item with the aggregator named ``method`` (see :data:`AGGREGATORS`).

    crowd-kit's models and learning from crowds live in
    :mod:`fairal.crowd_models`; the :data:`FEATURE_AGGREGATORS` need
    ``features=`` (item id → feature row), the others ignore it.
    ``learning_from_crowds_difficulty`` also reads ``gold=`` (quiz item id
    → known 0/1 label, their answers among ``answers``); the others ignore it.
    """
    if method not in AGGREGATORS:
        raise CrowdDataError(f"method must be one of {', '.join(AGGREGATORS)}, got {method!r}")
    features = kwargs.pop("features", None)
    gold = kwargs.pop("gold", None)
    if method in _AGGREGATOR_FUNCTIONS:
        return _AGGREGATOR_FUNCTIONS[method](answers, **kwargs)
    from fairal import crowd_models

    if method in FEATURE_AGGREGATORS:
        if features is None:
            raise CrowdDataError(f"{method} needs the items' features (features=...)")
        return crowd_models.feature_aggregate(answers, method, features=features, gold=gold, **kwargs)
    return crowd_models.crowdkit_aggregate(answers, method, **kwargs)


# --------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------


def cohen_kappa(answers: pd.DataFrame, worker_a: str, worker_b: str, *, scale: str) -> float:
    """Cohen's kappa (scikit-learn) between two workers' 0/1 decisions on the items both answered.

    NaN when both gave one and the same label on every shared item (kappa
    is 0/0 then).
    """
    from sklearn.metrics import cohen_kappa_score

    votes = _binary_answers(answers, scale)
    pair = votes[votes["worker_id"].isin([worker_a, worker_b])].pivot(
        index="item_id", columns="worker_id", values="vote"
    )
    for worker in (worker_a, worker_b):
        if worker not in pair.columns:
            raise CrowdDataError(f"worker {worker!r} has no answers")
    shared = pair[[worker_a, worker_b]].dropna()
    if shared.empty:
        raise CrowdDataError(f"workers {worker_a!r} and {worker_b!r} answered no item in common")
    a, b = shared[worker_a].to_numpy(int), shared[worker_b].to_numpy(int)
    if len(np.unique(np.concatenate([a, b]))) < 2:
        return float("nan")
    return float(cohen_kappa_score(a, b))


def _fleiss(votes: pd.DataFrame) -> tuple[float, int, int]:
    """Fleiss' kappa on the largest equal-count block of items; (kappa, items, raters per item).

    Fleiss' kappa needs the same number of raters per item. With unequal
    counts we pick the count m that keeps the most answers, m × (items with
    at least m answers), and use those items' first m answers (by
    position); items with fewer than m answers are left out.
    """
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    counts = votes.groupby("item_id").size()
    candidates = np.arange(2, int(counts.max()) + 1)
    if candidates.size == 0:
        return float("nan"), 0, 0
    kept_answers = [m * int((counts >= m).sum()) for m in candidates]
    m = int(candidates[len(kept_answers) - 1 - int(np.argmax(kept_answers[::-1]))])  # largest m on ties
    items = counts.index[counts >= m]
    block = votes[votes["item_id"].isin(items)].sort_values(["item_id", "position"], kind="stable")
    block = block[block.groupby("item_id").cumcount() < m]
    matrix = block["vote"].to_numpy().reshape(len(items), m)
    table, _ = aggregate_raters(matrix, n_cat=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(fleiss_kappa(table, method="fleiss")), len(items), m


def _krippendorff(answers: pd.DataFrame, scale: str) -> float:
    import krippendorff

    matrix = answers.pivot(index="worker_id", columns="item_id", values="answer").to_numpy(dtype=float)
    if not ((~np.isnan(matrix)).sum(axis=0) >= 2).any():  # no item with two answers: α is undefined
        return float("nan")
    level: Literal["nominal", "ordinal"] = "nominal" if scale == "binary" else "ordinal"
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(
            krippendorff.alpha(reliability_data=matrix, level_of_measurement=level, value_domain=list(SCALES[scale]))
        )


def _mean_pairwise_cohen(votes: pd.DataFrame, min_shared: int) -> tuple[float, int]:
    """Mean Cohen's kappa over worker pairs with at least ``min_shared`` shared items; (mean, pairs).

    Vectorised over all pairs (a loop over scikit-learn's cohen_kappa_score
    took 6 s for 100 workers); the formula is scikit-learn's unweighted one,
    and the tests check the two agree. Pairs where both workers gave one and
    the same label on every shared item (kappa 0/0) are skipped.
    """
    matrix = votes.pivot(index="worker_id", columns="item_id", values="vote").to_numpy(dtype=float)
    positive = (matrix == 1).astype(np.int64)
    negative = (matrix == 0).astype(np.int64)
    both_positive, both_negative = positive @ positive.T, negative @ negative.T
    a_positive_only, b_positive_only = positive @ negative.T, negative @ positive.T
    shared = both_positive + both_negative + a_positive_only + b_positive_only
    a, b = np.nonzero(np.triu(shared >= max(min_shared, 1), k=1))
    n = shared[a, b]
    observed = (both_positive[a, b] + both_negative[a, b]) / n
    rate_a = (both_positive[a, b] + a_positive_only[a, b]) / n
    rate_b = (both_positive[a, b] + b_positive_only[a, b]) / n
    expected = rate_a * rate_b + (1 - rate_a) * (1 - rate_b)
    defined = ~np.isclose(expected, 1)
    kappas = (observed[defined] - expected[defined]) / (1 - expected[defined])
    return (float(kappas.mean()) if kappas.size else float("nan")), int(kappas.size)


def agreement(answers: pd.DataFrame, *, scale: str, min_shared: int = 10) -> dict[str, Any]:
    """How much the workers agree beyond chance: Fleiss, Krippendorff, pairwise Cohen.

    * ``fleiss_kappa``: on 0/1 decisions (the label is binary, and nominal
      kappa on the 1-4 scale would count 3 versus 4 as full disagreement);
      unequal answer counts are handled as in :func:`_fleiss`, and
      ``fleiss_items``/``fleiss_raters`` say which block was used.
    * ``krippendorff_alpha``: on the raw answers, nominal for ``binary`` and
      ordinal for ``confidence4``; it handles missing answers natively, so
      every item with two or more answers counts.
    * ``cohen_kappa_mean``: mean Cohen's kappa on 0/1 decisions over worker
      pairs sharing at least ``min_shared`` items (``cohen_pairs`` of them;
      pairs whose kappa is undefined are skipped).

    Values near 0 mean chance-level agreement, 1 perfect; NaN where a
    statistic is undefined (e.g. no item has two answers).
    """
    votes = _binary_answers(answers, scale)
    fleiss, fleiss_items, fleiss_raters = _fleiss(votes)
    cohen, pairs = _mean_pairwise_cohen(votes, min_shared)
    return {
        "n_items": int(votes["item_id"].nunique()),
        "n_workers": int(votes["worker_id"].nunique()),
        "n_answers": len(votes),
        "fleiss_kappa": fleiss,
        "fleiss_items": fleiss_items,
        "fleiss_raters": fleiss_raters,
        "krippendorff_alpha": _krippendorff(answers, scale),
        "krippendorff_level": "nominal" if scale == "binary" else "ordinal",
        "cohen_kappa_mean": cohen,
        "cohen_pairs": pairs,
        "min_shared": min_shared,
    }


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


_LINE_START = re.compile(r"([\r\n])(?=[=+\-@\t\r])")
#: A quoted CSV field, or a record terminator outside one.
_CSV_TOKEN = re.compile(r'"(?:[^"]|"")*"|\r\n')


def _neutralise(value: Any) -> Any:
    """``'`` before a formula start, at the start of the cell and after every line break inside it."""
    if not isinstance(value, str):
        return value
    if "\r" in value or "\n" in value:
        value = _LINE_START.sub(r"\1'", value)
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def _csv_text(table: pd.DataFrame) -> str:
    """CSV with ``\n`` between records and every field that holds a CR or LF quoted.

    Python's csv writer quotes a field only for the characters of its line
    terminator, so with ``\n`` a lone ``\r`` went out unquoted and a
    spreadsheet split the record there. Writing with ``\r\n`` quotes both;
    the terminators outside quoted fields then become ``\n`` again.
    """
    text = table.to_csv(index=False, lineterminator="\r\n")
    return _CSV_TOKEN.sub(lambda m: "\n" if m.group() == "\r\n" else m.group(), text)


def export_table(
    frame: pd.DataFrame,
    path_or_buffer: str | os.PathLike | IO[str],
    *,
    format: Literal["csv", "json"] = "csv",
) -> None:
    """Write answers, labels or worker quality as CSV or JSON, safe to open in a spreadsheet.

    Ids come from user files, and a cell such as ``=HYPERLINK(...)`` runs as
    a formula when the CSV is opened in Excel or LibreOffice. Following
    OWASP's CSV-injection advice, every *string* cell (and column name)
    starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
    leading ``'``; numbers (``-2``) stay numbers. A cell holding a line
    break (CR or LF) is quoted and every line inside it that starts like a
    formula gets the ``'`` too, so ``w\r=1+1`` cannot become a live
    ``=1+1`` cell in a program that splits records at a bare CR. JSON gets the same
    treatment because it is often converted to a sheet. A named index
    (``item_id``, ``worker_id``) is written as the first column. JSON is a
    list of records; missing values are empty cells / ``null``.
    """
    if format not in ("csv", "json"):
        raise CrowdDataError(f"format must be 'csv' or 'json', got {format!r}")
    if not isinstance(frame, pd.DataFrame):
        raise CrowdDataError(f"frame must be a DataFrame, got {type(frame).__name__}")
    table = frame.reset_index() if frame.index.name is not None else frame.reset_index(drop=True)
    table = table.rename(columns=lambda c: _neutralise(str(c)))
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            table[column] = values.map(_neutralise).astype(object)
    if format == "csv":
        text = _csv_text(table)
        if isinstance(path_or_buffer, (str, os.PathLike)):
            Path(path_or_buffer).write_text(text, encoding="utf-8", newline="")
        else:
            path_or_buffer.write(text)
    else:
        table.to_json(path_or_buffer, orient="records", force_ascii=False)


# --------------------------------------------------------------------------
# Simulation and evaluation against known truth
# --------------------------------------------------------------------------

#: In :func:`simulate_crowd`, the chance that a worker on the 1-4 scale
#: picks the sure end (1 or 4) of the side they chose, when their decision
#: is right and when it is wrong. Assumed, not measured: confident answers
#: are more often right (a "sure" answer is 5/3 times likelier from a right
#: decision), which is what makes the paper's mean of 1-4 answers better
#: than a plain vote; the size of that gain follows from these two numbers.
STRONG_WHEN_CORRECT = 0.5
STRONG_WHEN_WRONG = 0.3


def simulate_crowd(
    truth: Mapping[Any, int] | pd.Series | Sequence[int] | np.ndarray,
    *,
    n_workers: int,
    answers_per_item: int | Sequence[int] | np.ndarray,
    scale: str,
    worker_accuracy: tuple[float, float] | Sequence[float] | np.ndarray = (0.55, 0.75),
    spammer_share: float = 0.0,
    seed: int | None = None,
    return_workers: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """A reproducible synthetic crowd answering items whose true labels are known.

    Generative model (for tests and benchmarks; not a claim about real
    crowds, whose errors are correlated through shared hard items):

    * Worker w has accuracy a_w: drawn uniformly from ``worker_accuracy =
      (low, high)`` (a tuple), or given per worker as a list or array of
      length ``n_workers``. Then ``round(spammer_share * n_workers)`` workers,
      chosen at random, become spammers: they ignore the item and answer
      uniformly at random over the scale (binary accuracy 0.5).
    * Item i is answered by ``answers_per_item`` (an int, or one count per
      item) distinct workers drawn uniformly at random; their draw order is
      the answer's ``position``.
    * A non-spammer's 0/1 decision is right with probability a_w,
      independently of the item, its class and the other workers
      (symmetric class-independent noise).
    * On ``confidence4`` a positive decision is 4 ("sure") with probability
      :data:`STRONG_WHEN_CORRECT` when it is right and
      :data:`STRONG_WHEN_WRONG` when it is wrong, else 3; negative
      decisions are 1 or 2 the same way.

    ``truth`` is a mapping or Series item id → 0/1, or a sequence (item ids
    ``"0"``, ``"1"``, ...). Returns the long answers frame (columns
    :data:`ANSWER_COLUMNS`, rows by item then position) and, with
    ``return_workers=True``, also a frame indexed by ``worker_id`` with
    ``accuracy`` and ``spammer``.
    """
    allowed = _scale_values(scale)
    labels = truth if isinstance(truth, (pd.Series, Mapping)) else pd.Series(np.asarray(truth))
    labels = _binary_mapping(labels, "truth")
    counts = _answer_counts(answers_per_item, len(labels), n_workers, spammer_share)
    rng = np.random.default_rng(seed)
    accuracy, spammer = _draw_workers(worker_accuracy, n_workers, spammer_share, rng)
    item_index, position, worker, answer = _draw_answers(labels.to_numpy(), counts, accuracy, spammer, scale,
                                                         allowed, rng)
    worker_ids = _worker_ids(n_workers)
    answers = _simulated_answers(labels.index.to_numpy()[item_index], worker_ids[worker], answer, position)
    if not return_workers:
        return answers
    workers = pd.DataFrame({"accuracy": accuracy, "spammer": spammer},
                           index=pd.Index(worker_ids.astype(str), name="worker_id"))
    return answers, workers


def _simulated_answers(item_ids: np.ndarray, worker_ids: np.ndarray, answer: np.ndarray,
                       position: np.ndarray) -> pd.DataFrame:
    """A simulated crowd's answers in the one answer vocabulary (:data:`ANSWER_COLUMNS`)."""
    return pd.DataFrame({"item_id": item_ids.astype(str), "worker_id": worker_ids.astype(str),
                         "answer": answer.astype(np.int64), "position": position.astype(np.int64)})


def _worker_ids(n_workers: int) -> np.ndarray:
    """``w0`` … ``w{n-1}``, zero-padded to one width so that they sort in number order."""
    width = len(str(n_workers - 1))
    return np.array([f"w{w:0{width}d}" for w in range(n_workers)], dtype=object)


def _answer_counts(answers_per_item, n_items: int, n_workers: int, spammer_share: float) -> np.ndarray:
    """Answers per item, one count per item, after checking :func:`simulate_crowd`'s sizes."""
    if n_workers < 1:
        raise CrowdDataError(f"n_workers must be at least 1, got {n_workers}")
    counts = np.broadcast_to(np.asarray(answers_per_item, dtype=np.int64), (n_items,))
    if counts.min() < 1 or counts.max() > n_workers:
        raise CrowdDataError(
            f"answers_per_item must be between 1 and n_workers={n_workers} (one answer per worker "
            f"and item), got values from {counts.min()} to {counts.max()}"
        )
    if not 0 <= spammer_share <= 1:
        raise CrowdDataError(f"spammer_share must be in [0, 1], got {spammer_share}")
    return counts


def _draw_workers(worker_accuracy, n_workers: int, spammer_share: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each worker's accuracy (0.5 for spammers) and whether they are a spammer."""
    accuracy = _worker_accuracies(worker_accuracy, n_workers, rng)
    spammer = np.zeros(n_workers, dtype=bool)
    spammer[rng.choice(n_workers, size=round(spammer_share * n_workers), replace=False)] = True
    return np.where(spammer, 0.5, accuracy), spammer


def _draw_answers(true_labels: np.ndarray, counts: np.ndarray, accuracy: np.ndarray, spammer: np.ndarray,
                  scale: str, allowed, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Item, position, worker and answer of every answer, drawn as :func:`simulate_crowd` describes."""
    n_items, n_workers = len(true_labels), len(accuracy)
    # Each item's workers: the first counts[i] of a random permutation of all workers.
    order = np.argsort(rng.random((n_items, n_workers)), axis=1)
    item_index, position = np.nonzero(np.arange(n_workers) < counts[:, None])
    worker = order[item_index, position]
    true = true_labels[item_index]
    correct = rng.random(worker.size) < accuracy[worker]
    decision = np.where(correct, true, 1 - true)
    strong = rng.random(worker.size) < np.where(correct, STRONG_WHEN_CORRECT, STRONG_WHEN_WRONG)
    if scale == "binary":
        answer = decision
    else:
        answer = np.where(decision == 1, np.where(strong, 4, 3), np.where(strong, 1, 2))
    random_answer = rng.choice(np.asarray(allowed), size=worker.size)
    answer = np.where(spammer[worker], random_answer, answer)
    return item_index, position, worker, answer


def _worker_accuracies(worker_accuracy, n_workers: int, rng: np.random.Generator) -> np.ndarray:
    """Per-worker accuracies: a tuple is a (low, high) range, anything else one value per worker."""
    values = np.asarray(worker_accuracy, dtype=float)
    if isinstance(worker_accuracy, tuple):
        if len(worker_accuracy) != 2:
            raise CrowdDataError(
                f"worker_accuracy as a tuple is a (low, high) range, got {worker_accuracy}; "
                "pass a list or array for one accuracy per worker"
            )
        low, high = values
        if not 0 <= low <= high <= 1:
            raise CrowdDataError(f"worker_accuracy=(low, high) needs 0 <= low <= high <= 1, got {worker_accuracy}")
        return rng.uniform(low, high, size=n_workers)
    if values.shape != (n_workers,):
        raise CrowdDataError(
            f"worker_accuracy must be (low, high) or one accuracy per worker ({n_workers}), "
            f"got shape {values.shape}"
        )
    if values.min() < 0 or values.max() > 1:
        raise CrowdDataError("worker_accuracy values must lie in [0, 1]")
    return values


def compare_aggregations(
    answers: pd.DataFrame,
    truth: Mapping[Any, int] | pd.Series,
    *,
    scale: str,
    groups: Mapping[Any, str] | pd.Series | None = None,
    methods: Sequence[str] | None = None,
    max_answers: int | None = None,
    features: pd.DataFrame | Mapping[Any, Any] | None = None,
    gold: Mapping[Any, int] | pd.Series | None = None,
) -> pd.DataFrame:
    """Accuracy of each aggregator against known labels, overall and per group.

    Only items in ``truth`` are scored (answers on other items, such as gold
    quiz items, still inform Dawid-Skene's worker estimates). ``methods``
    defaults to every aggregator that applies (:func:`applicable_aggregators`:
    ``mean_score`` and ``dawid_skene_4`` need ``confidence4``,
    ``learning_from_crowds`` needs ``features``, item id → feature row).
    ``gold`` (quiz item id → 0/1) goes to ``learning_from_crowds_difficulty``.
    ``groups`` maps item id → sensitive group; every scored item needs one.

    Returns one row per method and group (``"(all)"`` first) with
    ``n_items`` (truth items), ``coverage`` (share that got a label, i.e.
    had an answer), ``accuracy`` (on covered items) and ``tied_share``.
    """
    _scale_values(scale)
    if methods is None:
        methods = applicable_aggregators(scale, features=features is not None)
    labels = _binary_mapping(truth, "truth")
    group_of = pd.Series("(all)", index=labels.index)
    if groups is not None:
        group_series = pd.Series(groups) if not isinstance(groups, pd.Series) else groups
        group_series.index = group_series.index.astype(str)
        missing = labels.index.difference(group_series.index)
        if len(missing):
            raise CrowdDataError(f"groups has no group for {len(missing)} truth items, e.g. {missing[0]!r}")
        group_of = group_series.loc[labels.index].astype(str)
    rows = []
    for method in methods:
        options: dict[str, Any] = {"max_answers": max_answers, "features": features, "gold": gold}
        if method != "mean_score":
            options["scale"] = scale
        predicted = aggregate(answers, method, **options)
        scored = pd.DataFrame({"truth": labels, "group": group_of}).join(predicted[["label", "tied"]])
        parts = [("(all)", scored)]
        if groups is not None:
            parts += list(scored.groupby("group", sort=True))
        for group, part in parts:
            covered = part.dropna(subset=["label"])
            rows.append(
                {
                    "method": method,
                    "group": group,
                    "n_items": len(part),
                    "coverage": len(covered) / len(part),
                    "accuracy": float((covered["label"] == covered["truth"]).mean()) if len(covered) else np.nan,
                    "tied_share": float(covered["tied"].astype(bool).mean()) if len(covered) else np.nan,
                }
            )
    return pd.DataFrame(rows)
