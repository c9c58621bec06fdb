"""Data sets for fair active labeling: one :class:`Dataset` type, loaders and splits.

Built-in benchmarks (Adult, COMPAS, German Credit) load offline from the
repository's ``data/`` folder (see ``data/SOURCES.md``); ``make_synthetic``
reproduces FR-Train's synthetic data, ``load_digits`` FORML's class-as-group
setting, and ``load_csv`` validates a user's upload.
"""

from ._builtin import DATA_DIR, load_adult, load_compas, load_digits, load_german
from ._csv import CsvLimits, csv_limits, load_csv, read_csv_table, suggest_columns, suggest_id_column
from ._dataset import Dataset, DatasetError
from ._registry import list_datasets, load
from ._splits import PandaSplit, TrainValidationTestSplit, panda_split, train_validation_test_split
from ._synthetic import make_synthetic

__all__ = [
    "CsvLimits",
    "DATA_DIR",
    "Dataset",
    "DatasetError",
    "PandaSplit",
    "TrainValidationTestSplit",
    "csv_limits",
    "list_datasets",
    "load",
    "load_adult",
    "load_compas",
    "load_csv",
    "load_digits",
    "load_german",
    "make_synthetic",
    "panda_split",
    "read_csv_table",
    "suggest_columns",
    "suggest_id_column",
    "train_validation_test_split",
]
