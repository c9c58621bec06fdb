"""A CSV project's encoded data kept beside the database, so opening it does not re-parse the CSV.

``<database folder>/arrays/<key>/`` holds ``X.npy``, ``y.npy``, ``group_codes.npy``, ``ids.npy``
(plain arrays, read with ``allow_pickle=False``) and ``display.parquet`` (the annotators' columns).
The project's config in the database records the folder's key, each file's size and CRC-32, and
the data set's small fields (names, classes, groups), so the files are checked against the database,
not against themselves. :func:`read_arrays` raises :class:`fairal.errors.DatasetError` for a missing,
truncated or changed file; :func:`fairal.projects.open_project` then re-parses the stored CSV
(never wrong data). X is memory-mapped (read-only), so opening a 1M-row project reads it once, for
the checksum, from the page cache. An in-memory store (tests) has no folder and always parses.
:func:`fairal.projects.delete_project` removes a folder (:func:`remove_arrays`) once no project reads it.

The key is a digest of the CSV bytes and the reading options, so projects made from one upload
share one folder. CRC-32 (zlib) guards against damage and mix-ups, not against someone who can
write the database folder (they could change the database too).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from fairal.datasets import Dataset
from fairal.errors import DatasetError

__all__ = ["arrays_folder", "arrays_key", "write_arrays", "read_arrays", "remove_arrays", "FILES"]

logger = logging.getLogger(__name__)

FILES = ("X.npy", "y.npy", "group_codes.npy", "ids.npy", "display.parquet")
_FORMAT = 1


def arrays_folder(store) -> Path | None:
    """``<database folder>/arrays``; None for an in-memory store."""
    return None if store.path is None else Path(store.path).resolve().parent / "arrays"


def arrays_key(csv_digest: str, options: dict) -> str:
    """The folder name for an upload (its SHA-256) read with ``options``."""
    text = json.dumps({"csv": csv_digest, "options": options, "format": _FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def remove_arrays(root: Path, key: str) -> bool:
    """Delete ``root/key`` (kept arrays no project uses any more); True when a folder was removed.

    A key that is not one :func:`arrays_key` makes is refused (ValueError) rather than followed out
    of ``root``. A folder that cannot be removed is logged, not raised: its project is gone from the
    database already, and what is left is disk space only. The process's cache of opened arrays is
    emptied, so that it holds no deleted project's data.
    """
    if not re.fullmatch(r"[0-9a-f]{32}", str(key)):
        raise ValueError(f"{key!r} is not the name of a kept arrays folder")
    folder = Path(root) / key
    _read_cached.cache_clear()
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        return False
    except OSError as error:
        logger.warning("could not remove the kept arrays %s (%s); delete the folder by hand", folder, error)
        return False
    logger.info("removed the kept arrays %s", folder)
    return True


def _checksum(path: Path, step: int = 1 << 22) -> list[int]:
    """[size, CRC-32] of a file, read 4 MiB at a time into one buffer (a memory map of the whole
    file would count its 400 MB, at 1M Adult rows, in the process's peak memory)."""
    buffer = bytearray(step)
    view, crc, size = memoryview(buffer), 0, 0
    with open(path, "rb", buffering=0) as handle:
        while read := handle.readinto(buffer):
            crc, size = zlib.crc32(view[:read], crc), size + read
    return [size, crc]


def _write_files(folder: Path, dataset: Dataset) -> None:
    folder.mkdir(parents=True)
    np.save(folder / "X.npy", np.ascontiguousarray(dataset.X, dtype=np.float32))
    np.save(folder / "y.npy", np.asarray(dataset.y, dtype=np.int64))
    np.save(folder / "group_codes.npy", np.asarray(dataset.group_codes, dtype=np.int64))
    np.save(folder / "ids.npy", np.asarray(dataset.ids, dtype=np.int64))
    dataset.display.to_parquet(folder / "display.parquet")


def _object_columns(display: pd.DataFrame) -> list[str]:
    return [str(c) for c in display.columns if display[c].dtype == object]


def _read_display(path: Path, object_columns: list[str]) -> pd.DataFrame:
    """The annotators' columns as kept; columns that were Python objects come back as such."""
    display = pd.read_parquet(path)
    for column in object_columns:
        display[column] = display[column].astype(object)
    return display


def _check_display(path: Path, display: pd.DataFrame) -> None:
    """DatasetError unless the kept display columns read back equal (one column at a time: little memory)."""
    objects = set(_object_columns(display))
    index = pd.read_parquet(path, columns=[]).index
    if not index.equals(display.index) or index.name != display.index.name:
        raise DatasetError("the display rows' ids do not survive a round trip through Parquet")
    for column in display.columns:
        back = pd.read_parquet(path, columns=[str(column)])[str(column)]
        original = display[column]
        if str(column) in objects:  # Python values: the same types too (1 is not shown as 1.0)
            back = back.astype(object)
            same_types = np.array_equal(back.map(type).to_numpy(), original.map(type).to_numpy())
        else:
            same_types = back.dtype == original.dtype
        if not same_types or not back.equals(original):
            raise DatasetError(f"the display column {column!r} does not survive a round trip through Parquet")


def write_arrays(folder: Path, dataset: Dataset) -> dict:
    """Write ``dataset``'s arrays into ``folder`` (whole or not at all) and return the record the
    project keeps: ``{"files": {name: [size, crc32]}, "meta": {...}}``. A folder already there
    with the same contents is kept."""
    folder = Path(folder)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write_files(partial, dataset)
        _check_display(partial / "display.parquet", dataset.display)
        files = {name: _checksum(partial / name) for name in FILES}
        if folder.exists() and all(_checksum(folder / n) == files[n] for n in FILES if (folder / n).exists()) \
                and all((folder / n).exists() for n in FILES):
            shutil.rmtree(partial)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:  # Arrow's allocator keeps what the Parquet round trip used (0.1 GB at 1M rows) unless told
        pa.default_memory_pool().release_unused()
    meta = {"name": dataset.name, "feature_names": list(dataset.feature_names), "label_name": dataset.label_name,
            "classes": list(dataset.classes), "sensitive": dataset.sensitive, "description": dataset.description,
            "group_names": list(dataset.group_names), "rows": len(dataset), "features": int(dataset.X.shape[1]),
            "object_columns": _object_columns(dataset.display)}
    return {"format": _FORMAT, "files": files, "meta": meta}


def read_arrays(folder: Path, record: dict) -> Dataset:
    """The :class:`Dataset` kept in ``folder``, checked against ``record`` (what :func:`write_arrays`
    returned). DatasetError naming the file when one is missing or does not match."""
    return _read_cached(str(Path(folder).resolve()), json.dumps(record, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _read_cached(folder_name: str, record_json: str) -> Dataset:
    folder, record = Path(folder_name), json.loads(record_json)
    if record.get("format") != _FORMAT or set(record.get("files", {})) != set(FILES):
        raise DatasetError(f"the arrays record of {folder.name} is not one this fairal reads")
    for name, expected in record["files"].items():
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"{path} is missing")
        if _checksum(path) != list(expected):
            raise DatasetError(f"{path} does not match the checksum recorded in the database")
    meta = record["meta"]
    X = np.load(folder / "X.npy", mmap_mode="r", allow_pickle=False)
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ("y", "group_codes", "ids")}
    if X.shape != (meta["rows"], meta["features"]) or any(len(a) != meta["rows"] for a in arrays.values()):
        raise DatasetError(f"the arrays in {folder} do not have the recorded shape ({meta['rows']} rows)")
    display = _read_display(folder / "display.parquet", meta["object_columns"])
    group = np.asarray(meta["group_names"], dtype=object)[arrays["group_codes"]]
    return Dataset(name=meta["name"], display=display, X=X, y=arrays["y"], group=group, ids=arrays["ids"],
                   feature_names=meta["feature_names"], label_name=meta["label_name"], classes=tuple(meta["classes"]),
                   sensitive=meta["sensitive"], description=meta["description"])


read_arrays.cache_clear = _read_cached.cache_clear  # type: ignore[attr-defined]
