"""The bundled benchmark data sets: Adult, COMPAS, German Credit and digits.

All of them load offline: Adult, COMPAS and German from the compressed
originals in the repository's ``data/`` folder (provenance and hashes in
``data/SOURCES.md``), digits from the copy bundled with scikit-learn. Parsed
results are cached per process, so a second load costs milliseconds.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ._dataset import Dataset, DatasetError
from ._encode import encode_features

__all__ = ["DATA_DIR", "load_adult", "load_compas", "load_german", "load_digits"]

logger = logging.getLogger(__name__)

#: The repository's ``data/`` folder, which holds the compressed originals.
DATA_DIR: Path = Path(__file__).resolve().parents[2] / "data"


def _data_path(*parts: str) -> Path:
    path = DATA_DIR.joinpath(*parts)
    if not path.is_file():
        raise DatasetError(
            f"data file {path} is missing; copy it from the project's shared data "
            "(see data/SOURCES.md)"
        )
    return path


def _check_option(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        options = " or ".join(repr(a) for a in allowed)
        raise DatasetError(f"{name} must be one of {options}, got {value!r}")


def _fresh(dataset: Dataset) -> Dataset:
    """A new Dataset sharing the cached one's read-only arrays.

    The display frame is a shallow copy: with pandas' copy-on-write, a caller
    who edits it changes only their copy, never the cache.
    """
    return dataclasses.replace(dataset, display=dataset.display.copy(deep=False))


def _build(
    *,
    name: str,
    display: pd.DataFrame,
    y: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    sensitive: str,
    sensitive_columns: tuple[str, ...],
    include_sensitive: bool,
    label_name: str,
    classes: tuple[str, ...],
    description: str,
) -> Dataset:
    """Encode ``display`` into X (leaving out ``sensitive_columns`` unless asked) and assemble."""
    excluded = () if include_sensitive else sensitive_columns
    X, feature_names = encode_features(
        display,
        numeric=[c for c in numeric if c not in excluded],
        categorical=[c for c in categorical if c not in excluded],
    )
    return Dataset(
        name=name,
        display=display,
        X=X,
        y=y,
        group=display[sensitive].astype(str).to_numpy(dtype=object),
        ids=display.index.to_numpy(dtype=np.int64),
        feature_names=feature_names,
        label_name=label_name,
        classes=classes,
        sensitive=sensitive,
        description=description,
    )


# --------------------------------------------------------------------------- Adult

_ADULT_RAW_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]  # fmt: skip
#: Raw column → display column (``fnlwgt`` is a census sampling weight, not a trait: dropped).
_ADULT_DISPLAY = {
    "age": "age",
    "workclass": "workclass",
    "education": "education",
    "education-num": "education years",
    "marital-status": "marital status",
    "occupation": "occupation",
    "relationship": "relationship",
    "race": "race",
    "sex": "sex",
    "capital-gain": "capital gain",
    "capital-loss": "capital loss",
    "hours-per-week": "hours per week",
    "native-country": "native country",
}
_ADULT_NUMERIC = ["age", "education years", "capital gain", "capital loss", "hours per week"]
_ADULT_TRAIN_ROWS = 32_561  # data rows in adult.data; adult.test ids start here


def _read_adult_part(path: Path, *, skiprows: int) -> pd.DataFrame:
    return pd.read_csv(
        path,
        header=None,
        names=_ADULT_RAW_COLUMNS,
        skiprows=skiprows,
        skipinitialspace=True,
        na_values=["?"],
        keep_default_na=False,
    )


@lru_cache(maxsize=1)
def _adult_frame() -> pd.DataFrame:
    """Adult train + test with ids, ``?`` rows dropped; raw column names."""
    train = _read_adult_part(_data_path("adult", "adult.data.gz"), skiprows=0)
    # adult.test's first line is "|1x3 Cross validator", not data.
    test = _read_adult_part(_data_path("adult", "adult.test.gz"), skiprows=1)
    if len(train) != _ADULT_TRAIN_ROWS:
        raise DatasetError(f"adult.data must have {_ADULT_TRAIN_ROWS} rows, got {len(train)}")
    train.index = np.arange(len(train), dtype=np.int64)
    test.index = np.arange(len(train), len(train) + len(test), dtype=np.int64)
    frame = pd.concat([train, test])
    frame.index.name = "id"
    frame["income"] = frame["income"].str.rstrip(".")  # test labels read ">50K."
    labels = set(frame["income"].dropna())
    if labels != {"<=50K", ">50K"}:
        raise DatasetError(f"adult income labels must be '<=50K' and '>50K', got {sorted(labels)}")
    dropped = int(frame.isna().any(axis=1).sum())
    frame = frame.dropna()
    logger.debug("adult: dropped %d rows with '?', kept %d", dropped, len(frame))
    return frame


@lru_cache(maxsize=4)
def _adult_dataset(sensitive: str, include_sensitive: bool) -> Dataset:
    frame = _adult_frame()
    display = frame[list(_ADULT_DISPLAY)].rename(columns=_ADULT_DISPLAY)
    categorical = [c for c in display.columns if c not in _ADULT_NUMERIC]
    return _build(
        name="adult",
        display=display,
        y=(frame["income"] == ">50K").to_numpy(dtype=np.int64),
        numeric=_ADULT_NUMERIC,
        categorical=categorical,
        sensitive=sensitive,
        sensitive_columns=(sensitive,),
        include_sensitive=include_sensitive,
        label_name="income",
        classes=("<=50K", ">50K"),
        description="UCI Adult census income (45,222 people): predict income >50K",
    )


def load_adult(
    *, sensitive: Literal["sex", "race"] = "sex", include_sensitive: bool = False
) -> Dataset:
    """UCI Adult (Census Income), train and test files together.

    Follows the usual preprocessing (data/SOURCES.md): whitespace stripped,
    the trailing ``.`` of the test labels removed, every row with a ``?``
    dropped and ``fnlwgt`` (a sampling weight) dropped, which leaves 45,222
    rows with a ``>50K`` base rate of 0.248 (0.312 men, 0.114 women).

    ``education years`` (``education-num``) is a numeric recoding of
    ``education``; both stay in the display and both stay in ``X`` (one
    standardised column plus the one-hot columns) because removing either
    would break comparability with published feature sets.

    Parameters
    ----------
    sensitive : {"sex", "race"}, default="sex"
        The sensitive attribute. ``"race"`` keeps all five recorded values
        as groups. The other one stays an ordinary feature.
    include_sensitive : bool, default=False
        Keep the sensitive attribute's one-hot columns in ``X``.

    Returns
    -------
    Dataset
        ``y`` = 1 for ``>50K``. ``ids`` are 0-based data-line numbers in
        ``adult.data`` followed by ``adult.test`` (test rows start at 32,561),
        counted before dropping rows.
    """
    _check_option("sensitive", sensitive, ("sex", "race"))
    return _fresh(_adult_dataset(sensitive, bool(include_sensitive)))


# --------------------------------------------------------------------------- COMPAS

#: Raw column → display column. COMPAS's own scores, ``is_recid``, the violent
#: recidivism columns and all dates are left out on purpose: they leak the label.
_COMPAS_DISPLAY = {
    "sex": "sex",
    "age": "age",
    "age_cat": "age category",
    "race": "race",
    "juv_fel_count": "juvenile felonies",
    "juv_misd_count": "juvenile misdemeanors",
    "juv_other_count": "other juvenile offenses",
    "priors_count": "prior offenses",
    "c_charge_degree": "charge degree",
    "c_charge_desc": "charge",
}
_COMPAS_NUMERIC = [
    "age", "juvenile felonies", "juvenile misdemeanors", "other juvenile offenses", "prior offenses",
]  # fmt: skip
#: Display-only: free-text charge description, not encoded into X.
_COMPAS_DISPLAY_ONLY = ["charge"]
_COMPAS_DEGREES = {"F": "felony", "M": "misdemeanor"}
_COMPAS_RACES = ("African-American", "Caucasian")


@lru_cache(maxsize=1)
def _compas_frame() -> pd.DataFrame:
    """ProPublica's filtered COMPAS rows (6,172), indexed by ``id``."""
    usecols = ["id", *_COMPAS_DISPLAY, "days_b_screening_arrest", "is_recid", "score_text",
               "two_year_recid"]  # fmt: skip
    raw = pd.read_csv(_data_path("compas", "compas-scores-two-years.csv.gz"), usecols=usecols)
    # ProPublica's filter (compas-analysis, Compas Analysis.ipynb): charge within
    # 30 days of screening, a known recidivism outcome, no ordinary traffic
    # offences, and a COMPAS score on file.
    keep = (
        (raw["days_b_screening_arrest"].abs() <= 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & raw["score_text"].notna()
        & (raw["score_text"] != "N/A")
    )
    frame = raw[keep].set_index("id")
    logger.debug("compas: ProPublica filter kept %d of %d rows", len(frame), len(raw))
    return frame


@lru_cache(maxsize=4)
def _compas_dataset(sensitive: str, include_sensitive: bool) -> Dataset:
    frame = _compas_frame()
    if sensitive == "race":
        frame = frame[frame["race"].isin(_COMPAS_RACES)]
    display = frame[list(_COMPAS_DISPLAY)].rename(columns=_COMPAS_DISPLAY)
    display["charge degree"] = display["charge degree"].map(_COMPAS_DEGREES)
    categorical = [c for c in display.columns if c not in _COMPAS_NUMERIC + _COMPAS_DISPLAY_ONLY]
    scope = "African-American and Caucasian defendants" if sensitive == "race" else "defendants"
    return _build(
        name="compas",
        display=display,
        y=frame["two_year_recid"].to_numpy(dtype=np.int64),
        numeric=_COMPAS_NUMERIC,
        categorical=categorical,
        sensitive=sensitive,
        sensitive_columns=(sensitive,),
        include_sensitive=include_sensitive,
        label_name="two-year recidivism",
        classes=("no recidivism", "recidivism"),
        description=f"ProPublica COMPAS, Broward County ({len(display):,} {scope}): "
        "predict re-arrest within two years",
    )


def load_compas(
    *, sensitive: Literal["race", "sex"] = "race", include_sensitive: bool = False
) -> Dataset:
    """ProPublica's COMPAS two-year recidivism data (Angwin et al., 2016).

    Rows are those of ProPublica's own analysis: ``|days_b_screening_arrest|
    <= 30``, ``is_recid != -1``, ``c_charge_degree != "O"`` and a score on
    file, which leaves 6,172 defendants.

    Features are the defendant's sex, age, age category, race, juvenile
    felony/misdemeanor/other counts, prior-offence count and charge degree.
    COMPAS's own decile scores, ``is_recid``, the violent-recidivism columns
    and all dates are not used: they leak the label. The free-text charge
    description is shown in ``display`` only.

    Parameters
    ----------
    sensitive : {"race", "sex"}, default="race"
        ``"race"`` keeps only African-American and Caucasian defendants (5,278
        rows), the binary comparison of ProPublica's analysis and most of the
        fairness literature. ``"sex"`` keeps all 6,172 rows (race is then an
        ordinary feature with all six recorded values).
    include_sensitive : bool, default=False
        Keep the sensitive attribute's one-hot columns in ``X``.

    Returns
    -------
    Dataset
        ``y`` = ``two_year_recid`` (1 = re-arrested within two years); ``ids`` =
        the file's ``id`` column.
    """
    _check_option("sensitive", sensitive, ("race", "sex"))
    return _fresh(_compas_dataset(sensitive, bool(include_sensitive)))


# --------------------------------------------------------------------------- German

#: The 20 attributes of german.data, in file order: (display name, code book or
#: None for a numeric attribute). Codes and wording from UCI's german.doc.
_GERMAN_ATTRIBUTES: list[tuple[str, dict[str, str] | None]] = [
    ("checking account", {
        "A11": "< 0 DM", "A12": "0 to < 200 DM",
        "A13": ">= 200 DM or salary assigned for at least 1 year", "A14": "no checking account",
    }),
    ("duration (months)", None),
    ("credit history", {
        "A30": "no credits taken / all credits paid back duly",
        "A31": "all credits at this bank paid back duly",
        "A32": "existing credits paid back duly till now",
        "A33": "delay in paying off in the past",
        "A34": "critical account / other credits existing (not at this bank)",
    }),
    ("purpose", {
        "A40": "car (new)", "A41": "car (used)", "A42": "furniture/equipment",
        "A43": "radio/television", "A44": "domestic appliances", "A45": "repairs",
        "A46": "education", "A47": "vacation", "A48": "retraining", "A49": "business",
        "A410": "others",
    }),
    ("credit amount (DM)", None),
    ("savings", {
        "A61": "< 100 DM", "A62": "100 to < 500 DM", "A63": "500 to < 1000 DM",
        "A64": ">= 1000 DM", "A65": "unknown / no savings account",
    }),
    ("employed since", {
        "A71": "unemployed", "A72": "< 1 year", "A73": "1 to < 4 years",
        "A74": "4 to < 7 years", "A75": ">= 7 years",
    }),
    ("installment rate (% of disposable income)", None),
    ("personal status and sex", {
        "A91": "male, divorced/separated", "A92": "female, divorced/separated/married",
        "A93": "male, single", "A94": "male, married/widowed", "A95": "female, single",
    }),
    ("other debtors / guarantors", {"A101": "none", "A102": "co-applicant", "A103": "guarantor"}),
    ("present residence since (years)", None),
    ("property", {
        "A121": "real estate",
        "A122": "building society savings agreement / life insurance",
        "A123": "car or other",
        "A124": "unknown / no property",
    }),
    ("age", None),
    ("other installment plans", {"A141": "bank", "A142": "stores", "A143": "none"}),
    ("housing", {"A151": "rent", "A152": "own", "A153": "for free"}),
    ("existing credits at this bank", None),
    ("job", {
        "A171": "unemployed / unskilled, non-resident",
        "A172": "unskilled, resident",
        "A173": "skilled employee / official",
        "A174": "management / self-employed / highly qualified employee / officer",
    }),
    ("people liable to provide maintenance for", None),
    ("telephone", {"A191": "none", "A192": "yes, registered under the customer's name"}),
    ("foreign worker", {"A201": "yes", "A202": "no"}),
]  # fmt: skip
_GERMAN_STATUS = "personal status and sex"
#: A91, A93, A94 are men; A92, A95 women (german.doc, attribute 9).
_GERMAN_SEX = {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}


@lru_cache(maxsize=1)
def _german_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Decoded German Credit display frame (with a derived ``sex`` column) and y."""
    names = [name for name, _ in _GERMAN_ATTRIBUTES] + ["credit risk"]
    raw = pd.read_csv(_data_path("german", "german.data.gz"), sep=" ", header=None, names=names)
    raw.index = pd.RangeIndex(len(raw), name="id")  # 0-based line number
    display = pd.DataFrame(index=raw.index)
    for name, codes in _GERMAN_ATTRIBUTES:
        if codes is None:
            display[name] = raw[name].astype(np.int64)
            continue
        unknown = sorted(set(raw[name]) - set(codes))
        if unknown:
            raise DatasetError(f"german.data column {name!r} has codes not in the code book: {unknown}")
        display[name] = raw[name].map(codes)
        if name == _GERMAN_STATUS:
            display["sex"] = raw[name].map(_GERMAN_SEX)
    labels = set(raw["credit risk"])
    if not labels <= {1, 2}:
        raise DatasetError(f"german.data labels must be 1 (good) or 2 (bad), got {sorted(labels)}")
    y = (raw["credit risk"] == 1).to_numpy(dtype=np.int64)
    return display, y


@lru_cache(maxsize=2)
def _german_dataset(include_sensitive: bool) -> Dataset:
    display, y = _german_frame()
    numeric = [name for name, codes in _GERMAN_ATTRIBUTES if codes is None]
    categorical = [c for c in display.columns if c not in numeric]
    return _build(
        name="german",
        display=display,
        y=y,
        numeric=numeric,
        categorical=categorical,
        sensitive="sex",
        sensitive_columns=("sex", _GERMAN_STATUS),
        include_sensitive=include_sensitive,
        label_name="credit risk",
        classes=("bad credit", "good credit"),
        description="Statlog German Credit (1,000 loan applicants): predict good credit risk",
    )


def load_german(*, sensitive: Literal["sex"] = "sex", include_sensitive: bool = False) -> Dataset:
    """Statlog German Credit: 1,000 applicants, 20 attributes decoded per UCI's german.doc.

    The A-codes are replaced by their code-book meaning (e.g. ``A93`` →
    ``"male, single"``) and the columns get readable names; the mapping is in
    this module and in ``data/SOURCES.md``. ``y`` = 1 for good credit (file
    label 1), 0 for bad (file label 2). ``ids`` are 0-based line numbers.

    The sensitive attribute ``sex`` is derived from attribute 9, "personal
    status and sex" (A91, A93, A94 male; A92, A95 female; the file has no
    A95 row). Because that attribute encodes sex, the whole column (marital
    part included) is left out of ``X`` by default, together with the derived
    ``sex`` column; ``include_sensitive=True`` puts both back. ``display``
    shows both.

    Parameters
    ----------
    sensitive : {"sex"}, default="sex"
        The only sensitive attribute offered.
    include_sensitive : bool, default=False
        Keep ``sex`` and ``personal status and sex`` one-hot columns in ``X``.
    """
    _check_option("sensitive", sensitive, ("sex",))
    return _fresh(_german_dataset(bool(include_sensitive)))


# --------------------------------------------------------------------------- digits


@lru_cache(maxsize=2)
def _digits_dataset(include_sensitive: bool) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits  # bundled with sklearn, no download

    bunch = sklearn_digits()
    pixels = bunch.data.astype(np.int64)
    digit = bunch.target.astype(np.int64)
    names = list(bunch.feature_names)  # "pixel_<row>_<column>"
    display = pd.DataFrame(pixels, columns=names, index=pd.RangeIndex(len(pixels), name="id"))
    X = (pixels / 16.0).astype(np.float32)
    if include_sensitive:
        X = np.hstack([X, np.eye(10, dtype=np.float32)[digit]])
        names = names + [f"digit={d}" for d in range(10)]
    return Dataset(
        name="digits",
        display=display,
        X=X,
        y=digit,
        group=np.array([str(d) for d in digit], dtype=object),
        ids=np.arange(len(digit), dtype=np.int64),
        feature_names=names,
        label_name="digit",
        classes=tuple(str(d) for d in range(10)),
        sensitive="digit",
        description="Handwritten digits, 8x8 pixels (1,797 images): the class is the group",
    )


def load_digits(*, include_sensitive: bool = False) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes).

    FORML's multi-class setting (Yan, Seto & Apostoloff, 2022, §3.2, there on
    CIFAR): there is no separate sensitive attribute, so the class itself is
    the group and fairness means equal performance across classes. ``X`` = pixel / 16
    (values in [0, 1], not standardised); ``display`` holds the raw 0–16
    pixel values in columns ``pixel_<row>_<column>``. ``display`` has no
    ``digit`` column, because here the sensitive attribute *is* the label
    and an annotator must not see it.

    Parameters
    ----------
    include_sensitive : bool, default=False
        Append the one-hot digit to ``X``. This hands the model the label;
        only useful as a sanity check.
    """
    return _fresh(_digits_dataset(bool(include_sensitive)))
