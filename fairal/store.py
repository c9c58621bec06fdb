"""The one module that speaks SQL: projects, items, annotators, labels,
model versions and curve points, kept in SQLite through sqlite-utils.

A :class:`Store` wraps one connection. It may be handed from thread to thread
(Streamlit runs a button's callback in the next script run's thread) and its
calls are serialised by a lock, but for concurrent work open one ``Store`` per
thread or process on the same file: they then write in turn. File stores
run in WAL mode with a 30 s busy timeout, and every write is one transaction
opened with ``BEGIN IMMEDIATE``, so writers from several processes queue for
the write lock instead of failing with "database is locked" halfway through.

Rows come back as plain dicts, JSON columns decoded; timestamps are UTC
ISO-8601 strings with microseconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import numbers
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlite_utils import Database
from sqlite_utils.db import Table

from fairal.errors import DuplicateError, NotFoundError, StoreError  # noqa: F401 (defined there, named here too)
from fairal.metrics import METRICS

__all__ = [
    "DuplicateError",
    "ITEM_ROLES",
    "METRIC_COLUMNS",
    "NotFoundError",
    "Store",
    "StoreError",
]

logger = logging.getLogger(__name__)

#: One REAL column per metric of ``fairal.metrics.METRICS`` (the list is kept there).
METRIC_COLUMNS = tuple(METRICS)
ITEM_ROLES = ("seed", "pool", "test", "validation")
LABELABLE_ROLES = ("pool", "validation")
ANNOTATOR_ROLES = ("admin", "annotator")
BUSY_TIMEOUT_MS = 30_000
# Every statement of _SCHEMA is "IF NOT EXISTS": raising the version makes
# stores opened later add what is new (2: dataset_files; 3: credentials,
# memberships, leases, gold, crowd answers, validation labels, training claims, item
# scores, review requests; 4: sign-in sessions; 5: policy_jobs).
SCHEMA_VERSION = 5

_CURVE_COLUMNS = (
    "id",
    "project_id",
    "budget",
    "trainer",
    "strategy",
    "model_version_id",
    "created_at",
    *METRIC_COLUMNS,
)
_MODEL_COLUMNS = "id, project_id, trainer, version, n_labels, created_at, info"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL,
    label_column TEXT NOT NULL,
    sensitive TEXT NOT NULL,
    split_seed INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    trainers TEXT NOT NULL,
    budget INTEGER NOT NULL,
    metric TEXT NOT NULL,
    threshold REAL NOT NULL,
    label_values TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL,
    archived_at TEXT
);
CREATE TABLE IF NOT EXISTS items (
    project_id INTEGER NOT NULL REFERENCES projects (id),
    item_id INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN {ITEM_ROLES}),
    rank INTEGER,
    score REAL,
    PRIMARY KEY (project_id, item_id)
);
CREATE INDEX IF NOT EXISTS items_role_rank ON items (project_id, role, rank);
CREATE TABLE IF NOT EXISTS annotators (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN {ANNOTATOR_ROLES}),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    value INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (project_id, item_id, annotator_id),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE INDEX IF NOT EXISTS labels_annotator ON labels (project_id, annotator_id);
CREATE TABLE IF NOT EXISTS label_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    item_id INTEGER NOT NULL,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    action TEXT NOT NULL CHECK (action IN ('submit', 'edit', 'undo')),
    old_value INTEGER,
    new_value INTEGER,
    undoes INTEGER REFERENCES label_history (id),
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS label_history_annotator
    ON label_history (project_id, annotator_id, id);
CREATE INDEX IF NOT EXISTS label_history_item ON label_history (project_id, item_id);
CREATE INDEX IF NOT EXISTS label_history_undoes ON label_history (undoes);
CREATE TABLE IF NOT EXISTS skips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    at TEXT NOT NULL,
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE INDEX IF NOT EXISTS skips_annotator ON skips (project_id, annotator_id, item_id);
CREATE TABLE IF NOT EXISTS model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    trainer TEXT NOT NULL,
    version INTEGER NOT NULL,
    n_labels INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    info TEXT NOT NULL,
    state BLOB,
    UNIQUE (project_id, trainer, version)
);
CREATE TABLE IF NOT EXISTS curve_points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    budget INTEGER NOT NULL,
    trainer TEXT NOT NULL,
    strategy TEXT NOT NULL,
    model_version_id INTEGER REFERENCES model_versions (id),
    created_at TEXT NOT NULL,
    {", ".join(f"{name} REAL" for name in METRIC_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS curve_points_project ON curve_points (project_id, id);
CREATE INDEX IF NOT EXISTS curve_points_model_version ON curve_points (model_version_id);
CREATE TABLE IF NOT EXISTS dataset_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    annotator_id INTEGER PRIMARY KEY REFERENCES annotators (id),
    password_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_sessions (
    token_hash TEXT PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    project_id INTEGER NOT NULL REFERENCES projects (id),
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, annotator_id)
);
CREATE TABLE IF NOT EXISTS leases (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    expires_at TEXT NOT NULL,
    PRIMARY KEY (project_id, item_id, annotator_id),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE INDEX IF NOT EXISTS leases_annotator ON leases (project_id, annotator_id);
CREATE TABLE IF NOT EXISTS gold (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (project_id, item_id),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE TABLE IF NOT EXISTS gold_answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    value INTEGER NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (project_id, item_id, annotator_id),
    FOREIGN KEY (project_id, item_id) REFERENCES gold (project_id, item_id)
);
CREATE TABLE IF NOT EXISTS crowd_answers (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    worker TEXT NOT NULL,
    answer INTEGER NOT NULL,
    position INTEGER NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (project_id, item_id, worker),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE TABLE IF NOT EXISTS validation_labels (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    value INTEGER NOT NULL,
    method TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, item_id),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE TABLE IF NOT EXISTS item_scores (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    trainer TEXT NOT NULL,
    model_version_id INTEGER NOT NULL REFERENCES model_versions (id),
    score REAL NOT NULL,
    PRIMARY KEY (project_id, trainer, item_id),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE TABLE IF NOT EXISTS review_requests (
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    requested_by INTEGER REFERENCES annotators (id),
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, item_id),
    FOREIGN KEY (project_id, item_id) REFERENCES items (project_id, item_id)
);
CREATE TABLE IF NOT EXISTS training_claims (
    project_id INTEGER NOT NULL REFERENCES projects (id),
    trainer TEXT NOT NULL,
    owner TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    PRIMARY KEY (project_id, trainer)
);
CREATE TABLE IF NOT EXISTS policy_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    iteration INTEGER NOT NULL DEFAULT 0,
    iterations INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    policy_path TEXT,
    owner TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS policy_jobs_status ON policy_jobs (status, id);
"""

#: Columns added to a table after it first shipped: ``(table, column, SQL type)``. A store opened
#: on an older file adds the missing ones (ALTER TABLE), since CREATE TABLE IF NOT EXISTS does not.
#: Every metric column is listed, so a metric added to ``fairal.metrics.METRICS`` reaches old files.
_ADDED_COLUMNS = (("projects", "archived_at", "TEXT"),
                  *(("curve_points", name, "REAL") for name in METRIC_COLUMNS))

# Children first, so that no foreign key is ever left dangling.
_PROJECT_TABLES = (
    "policy_jobs",
    "review_requests",
    "item_scores",
    "training_claims",
    "validation_labels",
    "crowd_answers",
    "gold_answers",
    "gold",
    "leases",
    "memberships",
    "curve_points",
    "model_versions",
    "skips",
    "label_history",
    "labels",
    "items",
)


_PROCESS_WRITE_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_WRITE_LOCKS_GUARD = threading.Lock()


def _process_write_lock(path: Path | None) -> threading.Lock | contextlib.nullcontext:
    if path is None:  # an in-memory store has one connection: nothing to share
        return contextlib.nullcontext()
    key = str(path.resolve())
    with _PROCESS_WRITE_LOCKS_GUARD:
        return _PROCESS_WRITE_LOCKS.setdefault(key, threading.Lock())


def _now() -> str:
    # timespec keeps the microseconds even when they happen to be zero
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return int(value)


def _optional_float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number or None, got {value!r}")
    return float(value)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _decode_project(row: dict) -> dict:
    for key in ("trainers", "label_values", "config"):
        row[key] = json.loads(row[key])
    return row


def _decode_model(row: dict) -> dict:
    row["info"] = json.loads(row["info"])
    row["has_state"] = bool(row["has_state"])
    return row


class Store:
    """Projects, labels, model versions and curve points in one SQLite file.

    ``Store(path)`` opens the file, creating its folder and the schema when
    they are missing; ``Store(memory=True)`` keeps everything in memory.
    """

    def __init__(self, path: str | Path | None = None, *, memory: bool = False):
        if (path is None) == (not memory):
            raise ValueError("give either a path or memory=True, not both or neither")
        self.path: Path | None = None if memory else Path(cast("str | Path", path))  # path is set: checked above
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the lock, not the thread, guards the connection.
        conn = sqlite3.connect(
            ":memory:" if self.path is None else self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        self._db = Database(conn)
        self._lock = threading.RLock()
        # Writers of one process queue on a Python lock (first come, first served) rather than on
        # SQLite's busy handler, which sleeps in growing steps and gave seconds-long tails with 50
        # annotator threads; other processes still wait on SQLite's lock under the busy timeout.
        self._process_lock = _process_write_lock(self.path)
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        conn = self._db.conn
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self.path is not None:
            # Switching a new file to WAL can meet another process doing the
            # same, and that lock is not always waited for: retry it.
            deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    self._db.enable_wal()
                    break
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        if self._schema_version() < SCHEMA_VERSION:
            with self._write():
                # Checked again under the write lock: another process may
                # have created the schema while this one waited.
                if self._schema_version() < SCHEMA_VERSION:
                    self._db.executescript(_SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    logger.debug("created the store schema in %s", self.path or ":memory:")
        self._add_missing_columns()

    def _missing_columns(self) -> list[tuple[str, str, str]]:
        present = {table: set(self._db[table].columns_dict) for table in {t for t, _, _ in _ADDED_COLUMNS}
                   if self._db[table].exists()}
        return [(table, column, kind) for table, column, kind in _ADDED_COLUMNS
                if table in present and column not in present[table]]

    def _add_missing_columns(self) -> None:
        if not self._missing_columns():
            return
        with self._write():  # checked again under the write lock, like the schema
            for table, column, kind in self._missing_columns():
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                logger.info("added column %s.%s to %s", table, column, self.path or ":memory:")

    def _schema_version(self) -> int:
        return self._db.conn.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Store(memory=True)" if self.path is None else f"Store({str(self.path)!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taken with BEGIN IMMEDIATE.

        sqlite-utils' ``atomic()`` opens a plain (deferred) BEGIN, which takes
        the write lock only at the first write; if another connection writes
        first, the upgrade fails with "database is locked" without waiting.
        BEGIN IMMEDIATE takes the lock up front, under the busy timeout.
        sqlite-utils calls made inside nest as savepoints.
        """
        with self._lock:
            conn = self._db.conn
            if conn.in_transaction:
                with self._db.atomic():
                    yield
                return
            with self._process_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    def _table(self, name: str) -> Table:
        """``self._db[name]``, typed as the table it is (fairal defines no views)."""
        return cast(Table, self._db[name])

    def _rows(self, sql: str, params: list | tuple | dict = ()) -> list[dict]:
        with self._lock:
            return list(self._db.query(sql, params))

    def _tuples(self, sql: str, params: list | tuple | dict = ()) -> list[tuple]:
        with self._lock:
            return self._db.conn.execute(sql, params).fetchall()

    def _row(self, sql: str, params: list | tuple | dict = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _value(self, sql: str, params: list | tuple | dict = ()) -> Any:
        rows = self._tuples(sql, params)
        return rows[0][0] if rows else None

    # ------------------------------------------------------------ projects

    def create_project(
        self,
        *,
        name: str,
        dataset: str,
        label_column: str,
        sensitive: str,
        split_seed: int,
        strategy: str,
        trainers: Iterable[str],
        budget: int,
        metric: str,
        threshold: float,
        label_values: Iterable[int] = (0, 1),
        config: dict | None = None,
        items: Iterable[dict] = (),
        dataset_file: tuple[str, bytes] | None = None,
    ) -> int:
        """Create a project and its items in one transaction; return its id.

        ``items`` are dicts ``{item_id, role, rank?, score?}``. An invalid
        item raises ``ValueError`` and leaves no trace of the project.
        ``dataset_file`` = ``(name, data)`` keeps an uploaded data file in the
        same transaction; its id is stored as ``config["dataset_file_id"]``.
        """
        if isinstance(trainers, str):
            raise ValueError(f"trainers must be a list of names, got {trainers!r}")
        trainers = [_str(t, "trainer") for t in trainers]
        label_values = [_int(v, "label value") for v in label_values]
        if not label_values or len(set(label_values)) != len(label_values):
            raise ValueError(f"label_values must be distinct ints, got {label_values}")
        if metric not in METRIC_COLUMNS:
            raise ValueError(f"metric must be one of {list(METRIC_COLUMNS)}, got {metric!r}")
        budget = _int(budget, "budget")
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        threshold_value = _optional_float(threshold, "threshold")
        if threshold_value is None:
            raise ValueError("threshold must be a number, got None")
        row = {
            "name": _str(name, "name"),
            "dataset": _str(dataset, "dataset"),
            "label_column": _str(label_column, "label_column"),
            "sensitive": _str(sensitive, "sensitive"),
            "split_seed": _int(split_seed, "split_seed"),
            "strategy": _str(strategy, "strategy"),
            "trainers": json.dumps(trainers),
            "budget": budget,
            "metric": metric,
            "threshold": threshold_value,
            "label_values": json.dumps(label_values),
            "config": json.dumps(config or {}),
            "created_at": _now(),
        }
        with self._write():
            if self._value("SELECT 1 FROM projects WHERE name = ?", [name]):
                raise DuplicateError(f"a project named {name!r} already exists")
            if dataset_file is not None:
                file_id = self._insert_dataset_file(*dataset_file)
                row["config"] = json.dumps({**(config or {}), "dataset_file_id": file_id})
            project_id = cast(int, self._table("projects").insert(row).last_pk)
            self._table("items").insert_all(_item_rows(project_id, items), batch_size=1000)
        return project_id

    def project(self, project_id: int) -> dict:
        row = self._row("SELECT * FROM projects WHERE id = ?", [project_id])
        if row is None:
            raise NotFoundError(f"project {project_id} does not exist")
        return _decode_project(row)

    def project_by_name(self, name: str) -> dict | None:
        row = self._row("SELECT * FROM projects WHERE name = ?", [name])
        return None if row is None else _decode_project(row)

    def projects(self, *, include_archived: bool = False) -> list[dict]:
        """Every project, by id; archived ones only with ``include_archived``."""
        where = "" if include_archived else " WHERE archived_at IS NULL"
        return [_decode_project(r) for r in self._rows(f"SELECT * FROM projects{where} ORDER BY id")]

    def update_project(self, project_id: int, *, name: str | None = None, budget: int | None = None,
                       trainers: Iterable[str] | None = None, metric: str | None = None,
                       threshold: float | None = None, config: dict | None = None,
                       gold: dict[int, int] | None = None) -> None:
        """Change a project's settings in one transaction (None: unchanged); ``config`` replaces
        the stored config, ``gold`` (``{item_id: value}``) becomes its quiz set."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _str(name, "name")
        if budget is not None:
            changes["budget"] = _int(budget, "budget")
            if changes["budget"] < 0:
                raise ValueError(f"budget must be >= 0, got {budget}")
        if trainers is not None:
            if isinstance(trainers, str):
                raise ValueError(f"trainers must be a list of names, got {trainers!r}")
            changes["trainers"] = json.dumps([_str(t, "trainer") for t in trainers])
        if metric is not None:
            if metric not in METRIC_COLUMNS:
                raise ValueError(f"metric must be one of {list(METRIC_COLUMNS)}, got {metric!r}")
            changes["metric"] = metric
        if threshold is not None:
            changes["threshold"] = _optional_float(threshold, "threshold")
        if config is not None:
            changes["config"] = json.dumps(config)
        with self._write():
            self._require_project(project_id)
            if name is not None and self._value("SELECT 1 FROM projects WHERE name = ? AND id != ?",
                                                [name, project_id]):
                raise DuplicateError(f"a project named {name!r} already exists")
            if changes:
                self._db.execute(f"UPDATE projects SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                                 [*changes.values(), project_id])
            if gold is not None:
                self.set_gold(project_id, gold)  # nests in this transaction

    def set_archived(self, project_id: int, archived: bool) -> None:
        """Archive a project (out of :meth:`projects` and the annotators' lists; nothing is deleted)
        or restore it."""
        with self._write():
            self._require_project(project_id)
            self._db.execute("UPDATE projects SET archived_at = ? WHERE id = ?",
                             [_now() if archived else None, project_id])

    def delete_project(self, project_id: int) -> None:
        """Delete a project with its items, labels, history, skips, models, curves and data file."""
        with self._write():
            file_id = self.project(project_id)["config"].get("dataset_file_id")
            for table in _PROJECT_TABLES:
                self._db.execute(f"DELETE FROM {table} WHERE project_id = ?", [project_id])
            self._db.execute("DELETE FROM projects WHERE id = ?", [project_id])
            if file_id is not None:
                self._db.execute("DELETE FROM dataset_files WHERE id = ?", [file_id])

    def set_project_strategy(self, project_id: int, strategy: str, config: dict | None = None) -> None:
        """Change a project's query strategy, merging ``config`` into its config (e.g. a policy_path)."""
        with self._write():
            merged = {**self.project(project_id)["config"], **(config or {})}
            self._db.execute("UPDATE projects SET strategy = ?, config = ? WHERE id = ?",
                             [_str(strategy, "strategy"), json.dumps(merged), project_id])

    def _require_project(self, project_id: int) -> None:
        if not self._value("SELECT 1 FROM projects WHERE id = ?", [project_id]):
            raise NotFoundError(f"project {project_id} does not exist")

    # --------------------------------------------------------------- items

    def items(self, project_id: int, *, role: str | None = None) -> list[dict]:
        """Items as ``{item_id, role, rank, score}``, ordered by item_id."""
        self._require_project(project_id)
        sql = "SELECT item_id, role, rank, score FROM items WHERE project_id = ?"
        params: list = [project_id]
        if role is not None:
            sql += " AND role = ?"
            params.append(_check_role(role))
        return self._rows(sql + " ORDER BY item_id", params)

    def item_ids(self, project_id: int, role: str) -> list[int]:
        self._require_project(project_id)
        rows = self._tuples(
            "SELECT item_id FROM items WHERE project_id = ? AND role = ? ORDER BY item_id",
            [project_id, _check_role(role)],
        )
        return [r[0] for r in rows]

    def set_ranking(
        self, project_id: int, ranking: Iterable[tuple[int, int | None, float | None]]
    ) -> None:
        """Set ``(item_id, rank, score)`` for the items given; the others keep theirs.

        Raises NotFoundError, and changes nothing, when an item is not in the project.
        """
        params = [
            (
                None if rank is None else _int(rank, "rank"),
                _optional_float(score, "score"),
                project_id,
                _int(item_id, "item_id"),
            )
            for item_id, rank, score in ranking
        ]
        with self._write():
            self._require_project(project_id)
            cursor = self._db.conn.executemany(
                "UPDATE items SET rank = ?, score = ? WHERE project_id = ? AND item_id = ?",
                params,
            )
            if cursor.rowcount != len(params):  # some item_id matched no row
                known = {
                    r[0]
                    for r in self._tuples(
                        "SELECT item_id FROM items WHERE project_id = ?", [project_id]
                    )
                }
                missing = sorted({p[3] for p in params} - known)
                raise NotFoundError(f"items {missing[:10]} are not in project {project_id}")

    def next_items(self, project_id: int, annotator_id: int, *, limit: int = 1) -> list[dict]:
        """Pool items nobody has labeled yet, best first for this annotator.

        Items the annotator skipped come after the others (oldest skip first);
        then by rank, unranked last; then by item_id.
        """
        limit = _int(limit, "limit")
        self._require_project(project_id)
        self._require_annotator(annotator_id)
        return self._rows(
            """
            SELECT i.item_id, i.role, i.rank, i.score
            FROM items AS i
            LEFT JOIN (
                SELECT item_id, MAX(id) AS last_skip FROM skips
                WHERE project_id = :p AND annotator_id = :a GROUP BY item_id
            ) AS s ON s.item_id = i.item_id
            WHERE i.project_id = :p AND i.role = 'pool'
              AND NOT EXISTS (
                SELECT 1 FROM labels AS l
                WHERE l.project_id = i.project_id AND l.item_id = i.item_id
              )
            ORDER BY s.last_skip IS NOT NULL, s.last_skip,
                     i.rank IS NULL, i.rank, i.item_id
            LIMIT :limit
            """,
            {"p": project_id, "a": annotator_id, "limit": limit},
        )

    def _require_item(self, project_id: int, item_id: int) -> str:
        role = self._value(
            "SELECT role FROM items WHERE project_id = ? AND item_id = ?", [project_id, item_id]
        )
        if role is None:
            self._require_project(project_id)
            raise NotFoundError(f"item {item_id} is not in project {project_id}")
        return role

    # ------------------------------------------------------- dataset files

    def add_dataset_file(self, name: str, data: bytes) -> int:
        """Keep an uploaded file (e.g. a CSV data set) and return its id."""
        with self._write():
            return self._insert_dataset_file(name, data)

    def _insert_dataset_file(self, name: str, data: bytes) -> int:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        row = {"name": _str(name, "name"), "created_at": _now(), "data": bytes(data)}
        return cast(int, self._table("dataset_files").insert(row).last_pk)

    def dataset_file(self, file_id: int) -> bytes:
        rows = self._tuples("SELECT data FROM dataset_files WHERE id = ?", [file_id])
        if not rows:
            raise NotFoundError(f"dataset file {file_id} does not exist")
        return rows[0][0]

    # ---------------------------------------------------------- annotators

    def add_annotator(self, name: str, *, role: str = "annotator") -> int:
        row = _annotator_row(name, role)
        with self._write():
            if self._value("SELECT 1 FROM annotators WHERE name = ?", [name]):
                raise DuplicateError(f"an annotator named {name!r} already exists")
            return cast(int, self._table("annotators").insert(row).last_pk)

    def get_or_create_annotator(self, name: str, *, role: str = "annotator") -> int:
        """The id of the annotator with this name, created with ``role`` if new."""
        row = _annotator_row(name, role)
        existing = self._value("SELECT id FROM annotators WHERE name = ?", [name])
        if existing is not None:
            return existing
        with self._write():  # looked up again: another process may have added it
            existing = self._value("SELECT id FROM annotators WHERE name = ?", [name])
            if existing is not None:
                return existing
            return cast(int, self._table("annotators").insert(row).last_pk)

    def annotator(self, annotator_id: int) -> dict:
        row = self._row("SELECT * FROM annotators WHERE id = ?", [annotator_id])
        if row is None:
            raise NotFoundError(f"annotator {annotator_id} does not exist")
        return row

    def _require_annotator(self, annotator_id: int) -> None:
        if not self._value("SELECT 1 FROM annotators WHERE id = ?", [annotator_id]):
            raise NotFoundError(f"annotator {annotator_id} does not exist")

    # -------------------------------------------------------------- labels

    def submit_label(
        self, project_id: int, item_id: int, annotator_id: int, value: int, *,
        max_answers: int | None = None,
    ) -> dict:
        """Record this annotator's label for an item, or change it; return the label row.

        Only 'pool' and 'validation' items take labels, and only the project's
        label values. Re-submitting the current value changes nothing. With
        ``max_answers`` (the project's overlap k), a first answer to an item
        that already has k answers from others is refused. The annotator's
        lease on the item ends in the same transaction.
        """
        with self._write():
            allowed = self.project(project_id)["label_values"]
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
                int(value) not in allowed
            ):
                raise ValueError(f"label value must be one of {allowed}, got {value!r}")
            value = int(value)
            role = self._require_item(project_id, item_id)
            if role not in LABELABLE_ROLES:
                raise ValueError(
                    f"item {item_id} has role {role!r}; only 'pool' and 'validation' "
                    "items can be labeled"
                )
            self._require_annotator(annotator_id)
            key = {"p": project_id, "i": item_id, "a": annotator_id}
            current = self._current_label(key)
            self._db.execute(
                "DELETE FROM leases WHERE project_id = :p AND item_id = :i AND annotator_id = :a", key)
            if current is not None and current["value"] == value:
                return current
            if current is None and max_answers is not None:
                others = self._value(
                    "SELECT COUNT(*) FROM labels WHERE project_id = :p AND item_id = :i", key)
                if others >= max_answers:
                    raise StoreError(f"item {item_id} already has {others} answers "
                                     f"(the project's overlap is {max_answers})")
            now = _now()
            seq = self._history(
                key,
                "edit" if current else "submit",
                None if current is None else current["value"],
                value,
                now,
            )
            self._db.execute(
                """
                INSERT INTO labels
                    (project_id, item_id, annotator_id, value, created_at, updated_at, seq)
                VALUES (:p, :i, :a, :value, :now, :now, :seq)
                ON CONFLICT (project_id, item_id, annotator_id)
                DO UPDATE SET value = :value, updated_at = :now, seq = :seq
                """,
                {**key, "value": value, "now": now, "seq": seq},
            )
            return self._current_label(key)

    def undo_last_label(self, project_id: int, annotator_id: int) -> dict | None:
        """Revert this annotator's latest label action not yet undone.

        Undoing a first submit deletes the label; undoing an edit restores the
        old value. Returns ``{"item_id", "value"}`` (``value`` is None when the
        label is gone), or None when there is nothing to undo.
        """
        with self._write():
            self._require_project(project_id)
            self._require_annotator(annotator_id)
            last = self._row(
                """
                SELECT * FROM label_history AS h
                WHERE project_id = ? AND annotator_id = ?
                  AND action IN ('submit', 'edit')
                  AND NOT EXISTS (SELECT 1 FROM label_history AS u WHERE u.undoes = h.id)
                ORDER BY id DESC LIMIT 1
                """,
                [project_id, annotator_id],
            )
            if last is None:
                return None
            key = {"p": project_id, "i": last["item_id"], "a": annotator_id}
            current = self._current_label(key)
            if current is None or current["value"] != last["new_value"]:
                raise StoreError(
                    f"label history of item {last['item_id']} is out of step with its label"
                )
            restored = last["old_value"]
            now = _now()
            seq = self._history(key, "undo", current["value"], restored, now, undoes=last["id"])
            if restored is None:
                self._db.execute(
                    "DELETE FROM labels WHERE project_id = :p AND item_id = :i "
                    "AND annotator_id = :a",
                    key,
                )
            else:
                self._db.execute(
                    "UPDATE labels SET value = :value, updated_at = :now, seq = :seq "
                    "WHERE project_id = :p AND item_id = :i AND annotator_id = :a",
                    {**key, "value": restored, "now": now, "seq": seq},
                )
            return {"item_id": last["item_id"], "value": restored}

    def _current_label(self, key: dict) -> dict | None:
        return self._row(
            "SELECT * FROM labels WHERE project_id = :p AND item_id = :i AND annotator_id = :a",
            key,
        )

    def _history(
        self,
        key: dict,
        action: str,
        old_value: int | None,
        new_value: int | None,
        at: str,
        *,
        undoes: int | None = None,
    ) -> int:
        cursor = self._db.execute(
            """
            INSERT INTO label_history
                (project_id, item_id, annotator_id, action, old_value, new_value, undoes, at)
            VALUES (:p, :i, :a, :action, :old, :new, :undoes, :at)
            """,
            {**key, "action": action, "old": old_value, "new": new_value, "undoes": undoes,
             "at": at},
        )
        return cast(int, cursor.lastrowid)

    def record_skip(self, project_id: int, item_id: int, annotator_id: int) -> None:
        """Put the item at the back of this annotator's queue and end their lease on it."""
        with self._write():
            self._require_item(project_id, item_id)
            self._require_annotator(annotator_id)
            self._db.execute("DELETE FROM leases WHERE project_id = ? AND item_id = ? AND annotator_id = ?",
                             [project_id, item_id, annotator_id])
            self._db.execute(
                "INSERT INTO skips (project_id, item_id, annotator_id, at) VALUES (?, ?, ?, ?)",
                [project_id, item_id, annotator_id, _now()],
            )

    def labels(self, project_id: int) -> list[dict]:
        """Current labels, oldest change first."""
        self._require_project(project_id)
        return self._rows("SELECT * FROM labels WHERE project_id = ? ORDER BY seq", [project_id])

    def label_history(self, project_id: int, *, item_id: int | None = None) -> list[dict]:
        self._require_project(project_id)
        sql = "SELECT * FROM label_history WHERE project_id = ?"
        params: list = [project_id]
        if item_id is not None:
            sql += " AND item_id = ?"
            params.append(item_id)
        return self._rows(sql + " ORDER BY id", params)

    def label_count(
        self, project_id: int, *, annotator_id: int | None = None, role: str | None = None
    ) -> int:
        """Number of distinct items labeled (by ``annotator_id``; of ``role``)."""
        self._require_project(project_id)
        sql = (
            "SELECT COUNT(DISTINCT l.item_id) FROM labels AS l JOIN items AS i "
            "ON i.project_id = l.project_id AND i.item_id = l.item_id WHERE l.project_id = ?"
        )
        params: list = [project_id]
        if annotator_id is not None:
            sql += " AND l.annotator_id = ?"
            params.append(annotator_id)
        if role is not None:
            sql += " AND i.role = ?"
            params.append(_check_role(role))
        return self._value(sql, params)

    def labeled_items(self, project_id: int, *, role: str | None = None) -> dict[int, int]:
        """``{item_id: value}``: the majority label of each item, ties going
        to the value given most recently."""
        self._require_project(project_id)
        sql = (
            "SELECT l.item_id, l.value, l.seq FROM labels AS l JOIN items AS i "
            "ON i.project_id = l.project_id AND i.item_id = l.item_id WHERE l.project_id = ?"
        )
        params: list = [project_id]
        if role is not None:
            sql += " AND i.role = ?"
            params.append(_check_role(role))
        votes: dict[int, dict[int, tuple[int, int]]] = {}
        for item_id, value, seq in self._tuples(sql, params):
            count, last = votes.setdefault(item_id, {}).get(value, (0, 0))
            votes[item_id][value] = (count + 1, max(last, seq))
        return {
            item_id: max(tally, key=tally.__getitem__)
            for item_id, tally in sorted(votes.items())
        }

    # ------------------------------------------------- accounts and access

    def annotators(self) -> list[dict]:
        """Every account: ``{id, name, role, created_at, has_password}``, by name."""
        return self._rows(
            "SELECT a.*, c.annotator_id IS NOT NULL AS has_password FROM annotators AS a "
            "LEFT JOIN credentials AS c ON c.annotator_id = a.id ORDER BY a.name")

    def annotator_by_name(self, name: str) -> dict | None:
        return self._row("SELECT * FROM annotators WHERE name = ?", [name])

    def set_password_hash(self, annotator_id: int, password_hash: str) -> None:
        """Store a password *hash* (see :mod:`fairal.auth`; the store never sees a password)."""
        password_hash = _str(password_hash, "password_hash")
        with self._write():
            self._require_annotator(annotator_id)
            self._db.execute(
                "INSERT INTO credentials (annotator_id, password_hash, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (annotator_id) DO UPDATE SET password_hash = excluded.password_hash, "
                "updated_at = excluded.updated_at",
                [annotator_id, password_hash, _now()])

    def add_auth_session(self, annotator_id: int, token_hash: str, *, seconds: float) -> None:
        """Remember a sign-in (by the hash of its token) for ``seconds``; expired ones are dropped here."""
        now = datetime.now(UTC)
        with self._write():
            self._require_annotator(annotator_id)
            self._db.execute("DELETE FROM auth_sessions WHERE expires_at <= ?",
                             [now.isoformat(timespec="microseconds")])
            self._db.execute(
                "INSERT INTO auth_sessions (token_hash, annotator_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [_str(token_hash, "token_hash"), annotator_id, now.isoformat(timespec="microseconds"),
                 (now + timedelta(seconds=float(seconds))).isoformat(timespec="microseconds")])

    def auth_session_account(self, token_hash: str) -> int | None:
        """The account of a live sign-in, or None (unknown or expired)."""
        return self._value("SELECT annotator_id FROM auth_sessions WHERE token_hash = ? AND expires_at > ?",
                           [token_hash, _now()])

    def delete_auth_sessions(self, *, token_hash: str | None = None, annotator_id: int | None = None) -> None:
        """End one sign-in, or every sign-in of an account (after a password change)."""
        with self._write():
            if token_hash is not None:
                self._db.execute("DELETE FROM auth_sessions WHERE token_hash = ?", [token_hash])
            if annotator_id is not None:
                self._db.execute("DELETE FROM auth_sessions WHERE annotator_id = ?", [annotator_id])

    def password_hash(self, annotator_id: int) -> str | None:
        return self._value("SELECT password_hash FROM credentials WHERE annotator_id = ?", [annotator_id])

    def set_role(self, annotator_id: int, role: str) -> None:
        _annotator_row("x", role)  # validates the role
        with self._write():
            self._require_annotator(annotator_id)
            self._db.execute("UPDATE annotators SET role = ? WHERE id = ?", [role, annotator_id])

    def remove_annotator(self, annotator_id: int) -> bool:
        """Delete an account with its password, sign-ins, project memberships and leases.

        An account with labels (or skips, quiz answers, review requests) on record keeps its
        row as a password-less annotator, so its labels keep their author; returns whether
        the row went too.
        """
        with self._write():
            self._require_annotator(annotator_id)
            for table in ("credentials", "auth_sessions", "memberships", "leases"):
                self._db.execute(f"DELETE FROM {table} WHERE annotator_id = ?", [annotator_id])
            self._db.execute("UPDATE annotators SET role = 'annotator' WHERE id = ?", [annotator_id])
            try:
                self._db.execute("DELETE FROM annotators WHERE id = ?", [annotator_id])
            except sqlite3.IntegrityError:  # referenced by labels etc. (foreign keys are on)
                return False
            return True

    def add_member(self, project_id: int, annotator_id: int) -> None:
        """Assign an annotator to a project (idempotent)."""
        with self._write():
            self._require_project(project_id)
            self._require_annotator(annotator_id)
            self._db.execute(
                "INSERT OR IGNORE INTO memberships (project_id, annotator_id, created_at) VALUES (?, ?, ?)",
                [project_id, annotator_id, _now()])

    def remove_member(self, project_id: int, annotator_id: int) -> None:
        """Unassign; the annotator's labels stay, their leases end."""
        with self._write():
            self._db.execute("DELETE FROM memberships WHERE project_id = ? AND annotator_id = ?",
                             [project_id, annotator_id])
            self._db.execute("DELETE FROM leases WHERE project_id = ? AND annotator_id = ?",
                             [project_id, annotator_id])

    def members(self, project_id: int) -> list[dict]:
        self._require_project(project_id)
        return self._rows(
            "SELECT a.* FROM memberships AS m JOIN annotators AS a ON a.id = m.annotator_id "
            "WHERE m.project_id = ? ORDER BY a.name", [project_id])

    def is_member(self, project_id: int, annotator_id: int) -> bool:
        return bool(self._value("SELECT 1 FROM memberships WHERE project_id = ? AND annotator_id = ?",
                                [project_id, annotator_id]))

    def member_projects(self, annotator_id: int) -> list[dict]:
        """The projects this annotator is assigned to (not the archived ones)."""
        return [_decode_project(r) for r in self._rows(
            "SELECT p.* FROM projects AS p JOIN memberships AS m ON m.project_id = p.id "
            "WHERE m.annotator_id = ? AND p.archived_at IS NULL ORDER BY p.id", [annotator_id])]

    # -------------------------------------------------------------- leases

    def lease_next_item(
        self, project_id: int, annotator_id: int, *, overlap: int = 1, ttl_seconds: float = 600,
        budget: int | None = None,
    ) -> dict | None:
        """Hand this annotator the next pool item and lock it for ``ttl_seconds``.

        One write transaction, so concurrent annotators never receive the same
        item beyond the overlap: an item is offered while its answers plus the
        live leases of other annotators are fewer than ``overlap`` (one more for
        an item sent for review), and never to someone who answered it. The
        annotator's own live lease is returned again (a page reload does not
        skip an item). Order: items sent for review; items that already have
        answers or leases (partly labeled, when overlap > 1); fresh items in
        the strategy's rank order (unranked last); finally the items this
        annotator skipped, oldest skip first. With ``budget``, no fresh item
        is started once ``budget`` pool items have answers or live leases.
        Expired leases are deleted here, so they return to the queue. Returns
        ``{item_id, rank, score, answers, expires_at}`` or None.

        Each phase is an indexed lookup that stops at the first match (the
        fresh-item phase walks the rank index past the items already taken),
        because the whole search runs under the write lock that every other
        annotator's submit waits for.
        """
        overlap = _int(overlap, "overlap")
        if overlap < 1:
            raise ValueError(f"overlap must be at least 1, got {overlap}")
        with self._write():
            self._require_project(project_id)
            self._require_annotator(annotator_id)
            now = datetime.now(UTC)
            key = {"p": project_id, "a": annotator_id, "now": now.isoformat(timespec="microseconds"), "k": overlap}
            self._db.execute("DELETE FROM leases WHERE project_id = :p AND expires_at <= :now", key)
            own = self._row(
                """
                SELECT i.item_id, i.rank, i.score, l.expires_at,
                       (SELECT COUNT(*) FROM labels AS x
                        WHERE x.project_id = :p AND x.item_id = i.item_id) AS answers
                FROM leases AS l JOIN items AS i ON i.project_id = l.project_id AND i.item_id = l.item_id
                WHERE l.project_id = :p AND l.annotator_id = :a
                ORDER BY l.expires_at LIMIT 1
                """, key)
            if own is not None:
                return own
            row = self._next_started(key) or self._next_fresh(key, budget) or self._next_skipped(key)
            if row is None:
                return None
            expires = (now + timedelta(seconds=float(ttl_seconds))).isoformat(timespec="microseconds")
            self._db.execute(
                "INSERT INTO leases (project_id, item_id, annotator_id, expires_at) VALUES (?, ?, ?, ?)",
                [project_id, row["item_id"], annotator_id, expires])
            return {**row, "expires_at": expires}

    # The three phases of lease_next_item; each SELECT stops at its first match.
    _TAKEN = """(SELECT COUNT(*) FROM labels AS x WHERE x.project_id = :p AND x.item_id = i.item_id)
              + (SELECT COUNT(*) FROM leases AS x WHERE x.project_id = :p AND x.item_id = i.item_id)"""
    _NOT_MINE = """NOT EXISTS (SELECT 1 FROM labels AS x
                               WHERE x.project_id = :p AND x.item_id = i.item_id AND x.annotator_id = :a)
               AND NOT EXISTS (SELECT 1 FROM skips AS x
                               WHERE x.project_id = :p AND x.item_id = i.item_id AND x.annotator_id = :a)"""

    def _next_started(self, key: dict) -> dict | None:
        """An item sent for review, or one with answers/leases but fewer than k (few: searched whole)."""
        return self._row(
            f"""
            WITH started AS (
                SELECT item_id FROM review_requests WHERE project_id = :p
                UNION SELECT item_id FROM labels WHERE project_id = :p AND :k > 1
                UNION SELECT item_id FROM leases WHERE project_id = :p AND :k > 1)
            SELECT i.item_id, i.rank, i.score,
                   (SELECT COUNT(*) FROM labels AS x WHERE x.project_id = :p AND x.item_id = i.item_id) AS answers
            FROM started JOIN items AS i ON i.project_id = :p AND i.item_id = started.item_id
            LEFT JOIN review_requests AS r ON r.project_id = :p AND r.item_id = i.item_id
            WHERE i.role = 'pool' AND {self._NOT_MINE}
              AND {self._TAKEN} < :k + (r.item_id IS NOT NULL)
            ORDER BY r.item_id IS NULL, r.created_at, i.rank IS NULL, i.rank, i.item_id
            LIMIT 1
            """, key)

    def _next_fresh(self, key: dict, budget: int | None) -> dict | None:
        """The best-ranked item nobody has answered or leased, unless the budget is all started."""
        if budget is not None:
            started = self._value(
                """
                SELECT COUNT(*) FROM (
                    SELECT l.item_id FROM labels AS l JOIN items AS i
                      ON i.project_id = l.project_id AND i.item_id = l.item_id
                      WHERE l.project_id = :p AND i.role = 'pool'
                    UNION SELECT item_id FROM leases WHERE project_id = :p)
                """, key)
            if started >= budget:
                return None
        free = """NOT EXISTS (SELECT 1 FROM labels AS x WHERE x.project_id = :p AND x.item_id = i.item_id)
              AND NOT EXISTS (SELECT 1 FROM leases AS x WHERE x.project_id = :p AND x.item_id = i.item_id)
              AND NOT EXISTS (SELECT 1 FROM skips AS x
                              WHERE x.project_id = :p AND x.item_id = i.item_id AND x.annotator_id = :a)"""
        for order in ("rank IS NOT NULL ORDER BY i.rank", "rank IS NULL ORDER BY i.item_id"):
            where, by = order.split(" ORDER BY ")
            row = self._row(
                f"""
                SELECT i.item_id, i.rank, i.score, 0 AS answers FROM items AS i INDEXED BY items_role_rank
                WHERE i.project_id = :p AND i.role = 'pool' AND i.{where} AND {free}
                ORDER BY {by} LIMIT 1
                """, key)
            if row is not None:
                return row
        return None

    def _next_skipped(self, key: dict) -> dict | None:
        """Items this annotator skipped, oldest skip first, while still open."""
        return self._row(
            f"""
            SELECT i.item_id, i.rank, i.score,
                   (SELECT COUNT(*) FROM labels AS x WHERE x.project_id = :p AND x.item_id = i.item_id) AS answers
            FROM (SELECT item_id, MAX(id) AS last_skip FROM skips
                  WHERE project_id = :p AND annotator_id = :a GROUP BY item_id) AS s
            JOIN items AS i ON i.project_id = :p AND i.item_id = s.item_id
            LEFT JOIN review_requests AS r ON r.project_id = :p AND r.item_id = i.item_id
            WHERE i.role = 'pool'
              AND NOT EXISTS (SELECT 1 FROM labels AS x
                              WHERE x.project_id = :p AND x.item_id = i.item_id AND x.annotator_id = :a)
              AND {self._TAKEN} < :k + (r.item_id IS NOT NULL)
            ORDER BY s.last_skip LIMIT 1
            """, key)

    def lease_item(self, project_id: int, item_id: int, annotator_id: int, *, ttl_seconds: float = 600) -> None:
        """Lease one given item to this annotator, ending their other leases in the project
        (undo gives the item back to whoever undid it, and it is shown next)."""
        expires = (datetime.now(UTC) + timedelta(seconds=float(ttl_seconds))).isoformat(
            timespec="microseconds")
        with self._write():
            self._require_item(project_id, item_id)
            self._require_annotator(annotator_id)
            self._db.execute("DELETE FROM leases WHERE project_id = ? AND annotator_id = ?",
                             [project_id, annotator_id])
            self._db.execute(
                "INSERT INTO leases (project_id, item_id, annotator_id, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (project_id, item_id, annotator_id) DO UPDATE SET expires_at = excluded.expires_at",
                [project_id, item_id, annotator_id, expires])

    def release_lease(self, project_id: int, item_id: int, annotator_id: int) -> None:
        with self._write():
            self._db.execute("DELETE FROM leases WHERE project_id = ? AND item_id = ? AND annotator_id = ?",
                             [project_id, item_id, annotator_id])

    def leases(self, project_id: int, *, live_only: bool = True) -> list[dict]:
        sql = "SELECT * FROM leases WHERE project_id = ?"
        params: list = [project_id]
        if live_only:
            sql += " AND expires_at > ?"
            params.append(_now())
        return self._rows(sql + " ORDER BY item_id, annotator_id", params)

    def answer_count(self, project_id: int, item_id: int) -> int:
        return self._value("SELECT COUNT(*) FROM labels WHERE project_id = ? AND item_id = ?", [project_id, item_id])

    def answer_counts(self, project_id: int) -> dict[int, int]:
        """``{item_id: number of annotators who answered it}``."""
        return dict(self._tuples(
            "SELECT item_id, COUNT(*) FROM labels WHERE project_id = ? GROUP BY item_id", [project_id]))

    def answers(self, project_id: int) -> list[dict]:
        """Every current answer in long form: ``{item_id, annotator_id, worker, value, seq}``."""
        self._require_project(project_id)
        return self._rows(
            "SELECT l.item_id, l.annotator_id, a.name AS worker, l.value, l.seq FROM labels AS l "
            "JOIN annotators AS a ON a.id = l.annotator_id WHERE l.project_id = ? ORDER BY l.seq",
            [project_id])

    def last_label_at(self, project_id: int) -> str | None:
        """When the project's labels last changed (ISO time), or None."""
        return self._value("SELECT MAX(at) FROM label_history WHERE project_id = ?", [project_id])

    def label_seq(self, project_id: int) -> int:
        """A number that grows with every label change of the project (0 before the first)."""
        return self._value("SELECT COALESCE(MAX(id), 0) FROM label_history WHERE project_id = ?",
                           [project_id])

    # ---------------------------------------------------------------- gold

    def set_gold(self, project_id: int, answers: dict[int, int]) -> None:
        """Known answers of quiz (gold) items; replaces the project's gold set, keeps no stale answers."""
        rows = [(project_id, _int(i, "item_id"), _int(v, "value")) for i, v in answers.items()]
        with self._write():
            for _, item_id, _ in rows:
                self._require_item(project_id, item_id)
            self._db.execute("DELETE FROM gold_answers WHERE project_id = ?", [project_id])
            self._db.execute("DELETE FROM gold WHERE project_id = ?", [project_id])
            self._db.conn.executemany("INSERT INTO gold (project_id, item_id, value) VALUES (?, ?, ?)", rows)

    def gold(self, project_id: int) -> dict[int, int]:
        return dict(self._tuples("SELECT item_id, value FROM gold WHERE project_id = ? ORDER BY item_id",
                                 [project_id]))

    def next_gold_item(self, project_id: int, annotator_id: int, *, salt: int = 0) -> int | None:
        """A gold item this annotator has not answered (a fixed shuffled order per annotator), or None."""
        row = self._value(
            """
            SELECT g.item_id FROM gold AS g
            WHERE g.project_id = :p AND NOT EXISTS (
                SELECT 1 FROM gold_answers AS x
                WHERE x.project_id = :p AND x.item_id = g.item_id AND x.annotator_id = :a)
            ORDER BY (g.item_id * 2654435761 + :a * 40503 + :salt) % 1000003 LIMIT 1
            """, {"p": project_id, "a": annotator_id, "salt": int(salt)})
        return row

    def record_gold_answer(self, project_id: int, item_id: int, annotator_id: int, value: int) -> dict:
        """Store a quiz answer (it never becomes a training label); returns ``{value, gold}``."""
        with self._write():
            gold = self._value("SELECT value FROM gold WHERE project_id = ? AND item_id = ?", [project_id, item_id])
            if gold is None:
                raise NotFoundError(f"item {item_id} is not a gold item of project {project_id}")
            self._require_annotator(annotator_id)
            self._db.execute(
                "INSERT INTO gold_answers (project_id, item_id, annotator_id, value, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (project_id, item_id, annotator_id) DO UPDATE SET value = excluded.value, "
                "at = excluded.at", [project_id, item_id, annotator_id, _int(value, "value"), _now()])
            return {"value": int(value), "gold": int(gold)}

    def gold_answers(self, project_id: int) -> list[dict]:
        """``{item_id, annotator_id, worker, value, gold}`` for every quiz answer."""
        return self._rows(
            "SELECT x.item_id, x.annotator_id, a.name AS worker, x.value, g.value AS gold FROM gold_answers AS x "
            "JOIN gold AS g ON g.project_id = x.project_id AND g.item_id = x.item_id "
            "JOIN annotators AS a ON a.id = x.annotator_id WHERE x.project_id = ? ORDER BY x.id", [project_id])

    # --------------------------------------------------------------- crowd

    def add_crowd_answers(self, project_id: int, answers: Iterable[dict], *, source: str) -> int:
        """Import answers ``{item_id, worker, answer, position}`` from one file, all or nothing.

        Unknown items and answers already imported for the same (item, worker)
        are refused with the offending ids named; nothing is written then.
        """
        source = _str(source, "source")
        rows = [(project_id, _int(a["item_id"], "item_id"), _str(str(a["worker"]), "worker"),
                 _int(a["answer"], "answer"), _int(a.get("position", 0), "position"), source) for a in answers]
        if not rows:
            raise ValueError("no crowd answers to import")
        with self._write():
            self._require_project(project_id)
            known = set(self.item_ids_all(project_id))
            unknown = sorted({r[1] for r in rows} - known)
            if unknown:
                shown = ", ".join(map(str, unknown[:10])) + (" …" if len(unknown) > 10 else "")
                raise NotFoundError(f"{len(unknown)} item id(s) are not in this project: {shown}")
            try:
                self._db.conn.executemany(
                    "INSERT INTO crowd_answers (project_id, item_id, worker, answer, position, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError as error:
                raise DuplicateError(f"some (item, worker) answers are already imported: {error}") from None
        return len(rows)

    def item_ids_all(self, project_id: int) -> list[int]:
        return [r[0] for r in self._tuples("SELECT item_id FROM items WHERE project_id = ? ORDER BY item_id",
                                           [project_id])]

    def crowd_answers(self, project_id: int) -> list[dict]:
        return self._rows("SELECT item_id, worker, answer, position, source FROM crowd_answers "
                          "WHERE project_id = ? ORDER BY item_id, position", [project_id])

    def delete_crowd_answers(self, project_id: int, *, source: str | None = None) -> None:
        with self._write():
            if source is None:
                self._db.execute("DELETE FROM crowd_answers WHERE project_id = ?", [project_id])
            else:
                self._db.execute("DELETE FROM crowd_answers WHERE project_id = ? AND source = ?",
                                 [project_id, source])

    # ------------------------------------------------------ validation set

    def set_validation_labels(self, project_id: int, labels: dict[int, int], *, method: str) -> None:
        """Replace the project's clean validation set (item → binary label) in one transaction."""
        rows = [(project_id, _int(i, "item_id"), _int(v, "value"), _str(method, "method"), _now())
                for i, v in labels.items()]
        with self._write():
            for _, item_id, value, _, _ in rows:
                self._require_item(project_id, item_id)
                if value not in (0, 1):
                    raise ValueError(f"validation labels are 0 or 1, got {value} for item {item_id}")
            self._db.execute("DELETE FROM validation_labels WHERE project_id = ?", [project_id])
            self._db.conn.executemany(
                "INSERT INTO validation_labels (project_id, item_id, value, method, created_at) "
                "VALUES (?, ?, ?, ?, ?)", rows)

    def validation_labels(self, project_id: int) -> dict[int, int]:
        return dict(self._tuples("SELECT item_id, value FROM validation_labels WHERE project_id = ? "
                                 "ORDER BY item_id", [project_id]))

    def validation_info(self, project_id: int) -> dict | None:
        """``{size, method, created_at}`` of the validation set, or None."""
        row = self._row("SELECT COUNT(*) AS size, MAX(method) AS method, MAX(created_at) AS created_at "
                        "FROM validation_labels WHERE project_id = ?", [project_id])
        return row if row and row["size"] else None

    # ------------------------------------------- suspicious labels, review

    def set_item_scores(self, project_id: int, trainer: str, model_version_id: int, scores: dict[int, float]) -> None:
        """What a model version says of each labeled item (low = likely wrong label); replaces the trainer's."""
        rows = [(project_id, _int(i, "item_id"), trainer, model_version_id, float(v)) for i, v in scores.items()]
        with self._write():
            self._db.execute("DELETE FROM item_scores WHERE project_id = ? AND trainer = ?", [project_id, trainer])
            self._db.conn.executemany("INSERT INTO item_scores (project_id, item_id, trainer, model_version_id, score) "
                                      "VALUES (?, ?, ?, ?, ?)", rows)

    def suspicious_items(self, project_id: int, *, limit: int = 20) -> list[dict]:
        """Labeled items ranked by how suspicious the robust trainers find them (lowest score first).

        ``{item_id, trainer, score, percentile, value, answers, review}``; ``percentile`` is the
        item's rank among that trainer's scores (0 = most suspicious), so trainers with
        different score scales can be listed together. Items already sent for review are marked.
        """
        return self._rows(
            """
            WITH ranked AS (
                SELECT item_id, trainer, score,
                       PERCENT_RANK() OVER (PARTITION BY trainer ORDER BY score) AS percentile
                FROM item_scores WHERE project_id = :p)
            SELECT r.item_id, r.trainer, r.score, r.percentile,
                   (SELECT GROUP_CONCAT(value) FROM labels AS l WHERE l.project_id = :p AND l.item_id = r.item_id)
                       AS value,
                   (SELECT COUNT(*) FROM labels AS l WHERE l.project_id = :p AND l.item_id = r.item_id) AS answers,
                   EXISTS (SELECT 1 FROM review_requests AS q WHERE q.project_id = :p AND q.item_id = r.item_id)
                       AS review
            FROM ranked AS r ORDER BY r.percentile, r.score LIMIT :limit
            """, {"p": project_id, "limit": _int(limit, "limit")})

    def request_review(self, project_id: int, item_ids: Iterable[int], *, requested_by: int | None,
                       reason: str) -> int:
        """Send labeled items back to the queue for one more annotator (first in line); returns how many."""
        ids = [_int(i, "item_id") for i in item_ids]
        with self._write():
            for item_id in ids:
                self._require_item(project_id, item_id)
            self._db.conn.executemany(
                "INSERT OR IGNORE INTO review_requests (project_id, item_id, requested_by, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?)", [(project_id, i, requested_by, _str(reason, "reason"), _now()) for i in ids])
        return len(ids)

    def review_requests(self, project_id: int) -> list[dict]:
        return self._rows("SELECT * FROM review_requests WHERE project_id = ? ORDER BY created_at", [project_id])

    # ----------------------------------------------------- training claims

    def claim_training(self, project_id: int, trainer: str, owner: str, *, stale_seconds: float = 300) -> bool:
        """Take the right to train ``trainer`` for the project; False while someone else holds it.

        A claim whose holder has not refreshed it for ``stale_seconds`` (a
        killed worker) is taken over. So two versions of one trainer are
        never trained at once, whatever the number of workers.
        """
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=float(stale_seconds))).isoformat(timespec="microseconds")
        with self._write():
            self._require_project(project_id)
            holder = self._row("SELECT owner, heartbeat_at FROM training_claims WHERE project_id = ? AND trainer = ?",
                               [project_id, trainer])
            if holder is not None and holder["owner"] != owner and holder["heartbeat_at"] > stale:
                return False
            self._db.execute(
                "INSERT INTO training_claims (project_id, trainer, owner, heartbeat_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (project_id, trainer) DO UPDATE SET owner = excluded.owner, "
                "heartbeat_at = excluded.heartbeat_at",
                [project_id, trainer, owner, now.isoformat(timespec="microseconds")])
            return True

    def release_training(self, project_id: int, trainer: str, owner: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM training_claims WHERE project_id = ? AND trainer = ? AND owner = ?",
                             [project_id, trainer, owner])

    def training_claims(self, project_id: int) -> list[dict]:
        return self._rows("SELECT * FROM training_claims WHERE project_id = ? ORDER BY trainer", [project_id])

    # -------------------------------------------------------- policy jobs

    def add_policy_job(self, project_id: int, *, iterations: int) -> int:
        """Queue meta-training a PANDA policy on the project's data; returns the job id."""
        now = _now()
        with self._write():
            self._require_project(project_id)
            cursor = self._db.execute(
                "INSERT INTO policy_jobs (project_id, status, iterations, message, created_at, updated_at) "
                "VALUES (?, 'queued', ?, 'waiting for the background worker', ?, ?)",
                [project_id, _int(iterations, "iterations"), now, now])
            return int(cast(int, cursor.lastrowid))

    def policy_job(self, job_id: int) -> dict:
        row = self._row("SELECT * FROM policy_jobs WHERE id = ?", [job_id])
        if row is None:
            raise NotFoundError(f"policy job {job_id} does not exist")
        return row

    def policy_jobs(self, project_id: int | None = None) -> list[dict]:
        """Jobs, newest first (of one project, or all)."""
        if project_id is None:
            return self._rows("SELECT * FROM policy_jobs ORDER BY id DESC")
        return self._rows("SELECT * FROM policy_jobs WHERE project_id = ? ORDER BY id DESC", [project_id])

    def claim_policy_job(self, owner: str, *, stale_seconds: float = 300) -> dict | None:
        """Mark the oldest queued job running for ``owner`` and return it (None when none waits).

        A running job not updated for ``stale_seconds`` lost its worker: it is marked failed first
        (not re-queued, so a job that kills its worker cannot do so forever).
        """
        if not self._value("SELECT 1 FROM policy_jobs WHERE status IN ('queued', 'running') LIMIT 1"):
            return None  # the worker asks every poll: no write lock when there is nothing to do
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=float(stale_seconds))).isoformat(timespec="microseconds")
        with self._write():
            self._db.execute(
                "UPDATE policy_jobs SET status = 'failed', updated_at = ?, message = 'the background worker "
                "stopped while this job ran; start a new one' WHERE status = 'running' AND updated_at < ?",
                [_now(), stale])
            row = self._row("SELECT * FROM policy_jobs WHERE status = 'queued' ORDER BY id LIMIT 1")
            if row is None:
                return None
            self._db.execute("UPDATE policy_jobs SET status = 'running', owner = ?, message = 'starting', "
                             "updated_at = ? WHERE id = ?", [owner, _now(), row["id"]])
        return self.policy_job(row["id"])

    def update_policy_job(self, job_id: int, *, status: str | None = None, iteration: int | None = None,
                          message: str | None = None, policy_path: str | None = None) -> None:
        """Record a job's progress or outcome (also its heartbeat: ``updated_at``)."""
        if status is not None and status not in ("queued", "running", "done", "failed"):
            raise ValueError(f"unknown policy job status {status!r}")
        changes = {"status": status, "iteration": iteration, "message": message, "policy_path": policy_path}
        changes = {k: v for k, v in changes.items() if v is not None}
        changes["updated_at"] = _now()
        with self._write():
            self._db.execute(f"UPDATE policy_jobs SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                             [*changes.values(), job_id])

    # ---------------------------------------------------- models and curves

    def record_evaluation(
        self,
        project_id: int,
        *,
        trainer: str,
        strategy: str,
        budget: int,
        metrics: dict[str, float | None],
        n_labels: int,
        state: bytes | None = None,
        info: dict | None = None,
    ) -> dict:
        """Store a trained model version and its curve point in one transaction.

        ``metrics`` keys are names from ``METRIC_COLUMNS``; missing ones are stored
        as NULL. Returns ``{"model_version_id", "version", "curve_point_id"}``.
        """
        unknown = sorted(set(metrics) - set(METRIC_COLUMNS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: {list(METRIC_COLUMNS)}")
        values = {k: _optional_float(v, f"metric {k}") for k, v in metrics.items()}
        if state is not None and not isinstance(state, (bytes, bytearray, memoryview)):
            raise ValueError(f"state must be bytes or None, got {type(state).__name__}")
        trainer = _str(trainer, "trainer")
        strategy = _str(strategy, "strategy")
        budget = _int(budget, "budget")
        n_labels = _int(n_labels, "n_labels")
        info_json = json.dumps(info or {})
        now = _now()
        with self._write():
            self._require_project(project_id)
            version = 1 + self._value(
                "SELECT COALESCE(MAX(version), 0) FROM model_versions "
                "WHERE project_id = ? AND trainer = ?",
                [project_id, trainer],
            )
            model_version_id = self._table("model_versions").insert(
                {
                    "project_id": project_id,
                    "trainer": trainer,
                    "version": version,
                    "n_labels": n_labels,
                    "created_at": now,
                    "info": info_json,
                    "state": None if state is None else bytes(state),
                }
            ).last_pk
            curve_point_id = self._table("curve_points").insert(
                {
                    "project_id": project_id,
                    "budget": budget,
                    "trainer": trainer,
                    "strategy": strategy,
                    "model_version_id": model_version_id,
                    "created_at": now,
                    **values,
                }
            ).last_pk
        return {
            "model_version_id": model_version_id,
            "version": version,
            "curve_point_id": curve_point_id,
            "trainer": trainer,
            "budget": budget,
        }

    def model_versions(self, project_id: int, *, trainer: str | None = None) -> list[dict]:
        """Model versions without their state; ``has_state`` says whether one is stored."""
        self._require_project(project_id)
        sql = (
            f"SELECT {_MODEL_COLUMNS}, state IS NOT NULL AS has_state "
            "FROM model_versions WHERE project_id = ?"
        )
        params: list = [project_id]
        if trainer is not None:
            sql += " AND trainer = ?"
            params.append(trainer)
        return [_decode_model(r) for r in self._rows(sql + " ORDER BY id", params)]

    def model_state(self, model_version_id: int) -> bytes | None:
        rows = self._tuples("SELECT state FROM model_versions WHERE id = ?", [model_version_id])
        if not rows:
            raise NotFoundError(f"model version {model_version_id} does not exist")
        return rows[0][0]

    def latest_model_version(self, project_id: int, trainer: str) -> dict | None:
        self._require_project(project_id)
        row = self._row(
            f"SELECT {_MODEL_COLUMNS}, state IS NOT NULL AS has_state FROM model_versions "
            "WHERE project_id = ? AND trainer = ? ORDER BY version DESC LIMIT 1",
            [project_id, trainer],
        )
        return None if row is None else _decode_model(row)

    def curve_points(self, project_id: int) -> list[dict]:
        self._require_project(project_id)
        return self._rows(
            f"SELECT {', '.join(_CURVE_COLUMNS)} FROM curve_points "
            "WHERE project_id = ? ORDER BY id",
            [project_id],
        )

    def last_curve_point_id(self, project_id: int) -> int:
        """Grows with every recorded curve point of the project (0 before the first): a cheap
        "is there anything new to draw" check for a page that polls."""
        return self._value("SELECT COALESCE(MAX(id), 0) FROM curve_points WHERE project_id = ?", [project_id])

    def curve_frame(self, project_id: int) -> pd.DataFrame:
        """``curve_points`` as a DataFrame; it has the columns even when empty."""
        frame = pd.DataFrame(self.curve_points(project_id), columns=list(_CURVE_COLUMNS))
        return frame.astype({name: "float64" for name in METRIC_COLUMNS})


def _check_role(role: Any) -> str:
    if role not in ITEM_ROLES:
        raise ValueError(f"role must be one of {list(ITEM_ROLES)}, got {role!r}")
    return role


def _annotator_row(name: str, role: str) -> dict:
    if role not in ANNOTATOR_ROLES:
        raise ValueError(f"role must be one of {list(ANNOTATOR_ROLES)}, got {role!r}")
    return {"name": _str(name, "name"), "role": role, "created_at": _now()}


def _item_rows(project_id: int, items: Iterable[dict]) -> Iterator[tuple]:
    """Rows for ``insert_all`` (column names first), validated one by one so
    that a bad item fails the transaction it is inserted in."""
    yield ("project_id", "item_id", "role", "rank", "score")
    seen: set[int] = set()
    for item in items:
        item_id = _int(item.get("item_id"), "item_id")
        if item_id in seen:
            raise ValueError(f"item_id {item_id} appears twice in items")
        seen.add(item_id)
        rank = item.get("rank")
        yield (
            project_id,
            item_id,
            _check_role(item.get("role")),
            None if rank is None else _int(rank, "rank"),
            _optional_float(item.get("score"), "score"),
        )
