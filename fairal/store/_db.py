"""The one connection and transaction helper every area of the store works through.

:class:`Connection` opens the file (WAL, foreign keys, busy timeout), brings its schema up to date
(:func:`fairal.store.schema.migrate`) and gives the areas their only ways to reach SQLite:
:meth:`Connection._write` for a write transaction and ``_rows``/``_row``/``_tuples``/``_value``
for reads. The small validators and lookups that several areas share live here too.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, cast

from sqlite_utils import Database
from sqlite_utils.db import Table

from fairal.errors import MissingDatabaseError, NotFoundError
from fairal.store import schema

BUSY_TIMEOUT_MS = 30_000
#: SQLite's default: a commit that leaves this many pages in the write-ahead log copies them into the file.
WAL_AUTOCHECKPOINT = 1000

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


class Connection:
    """One SQLite connection, its locks and its transactions (the base of :class:`fairal.store.Store`)."""

    def __init__(self, path: str | Path | None = None, *, memory: bool = False, create: bool = True):
        """``create=False``: open an existing file only; a missing one raises :class:`MissingDatabaseError`
        naming it (the app, once it has a database, never makes a new empty one by a page view)."""
        if (path is None) == (not memory):
            raise ValueError("give either a path or memory=True, not both or neither")
        self.path: Path | None = None if memory else Path(cast("str | Path", path))  # path is set: checked above
        if self.path is not None and create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect(create)
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

    def _connect(self, create: bool) -> sqlite3.Connection:
        # check_same_thread=False: the lock, not the thread, guards the connection.
        if self.path is None or create:
            return sqlite3.connect(":memory:" if self.path is None else self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
        try:  # mode=rw: SQLite opens the file or fails, atomically; it never creates one
            return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        except sqlite3.OperationalError:
            if self.path.exists():
                raise  # there, but not readable: the caller's error boundary explains it
            raise MissingDatabaseError(
                f"the database {self.path} does not exist (deleted or moved?); fairal does not create a new, "
                "empty one while it runs: restore the file, or create a new one with `python -m fairal init` "
                f"(or by restarting the app)") from None

    def _open(self) -> None:
        conn = self._db.conn
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")  # every commit on disk before it returns (see _write)
        conn.execute("PRAGMA foreign_keys = ON")
        schema.check_version(conn, self.path)  # a file from a newer fairal is refused before any write
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
        schema.migrate(self._db, self._write, self.path)

    def _schema_version(self) -> int:
        return schema.user_version(self._db.conn)

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Store(memory=True)" if self.path is None else f"Store({str(self.path)!r})"

    @contextlib.contextmanager
    def _write(self, *, sync: bool = True) -> Iterator[None]:
        """One write transaction, taken with BEGIN IMMEDIATE.

        sqlite-utils' ``atomic()`` opens a plain (deferred) BEGIN, which takes
        the write lock only at the first write; if another connection writes
        first, the upgrade fails with "database is locked" without waiting.
        BEGIN IMMEDIATE takes the lock up front, under the busy timeout.
        sqlite-utils calls made inside nest as savepoints.

        ``sync=False``: the commit neither waits for the disk (``synchronous = NORMAL``) nor copies
        the log into the database (no auto-checkpoint), so the write lock is held only while the
        pages are written: for bulk writes of derived data (a ranking), whose caller makes them
        durable with :meth:`_flush` once it has let go of the lock. Every other commit waits for
        the disk; no other thread commits on this connection meanwhile (the connection's lock).
        """
        with self._lock:
            conn = self._db.conn
            if conn.in_transaction:
                with self._db.atomic():
                    yield
                return
            with self._process_lock:
                if not sync:  # no wait for the disk, and no copy into the database at this commit
                    conn.execute("PRAGMA synchronous = NORMAL")
                    conn.execute("PRAGMA wal_autocheckpoint = 0")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                finally:
                    if not sync:
                        conn.execute("PRAGMA synchronous = FULL")
                        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")

    def _flush(self) -> None:
        """Make the commits of ``_write(sync=False)`` durable, without holding any lock: sync the
        write-ahead log to disk, then copy it into the database file (a passive checkpoint, which
        other writers do not wait for), so that an annotator's small commit is not the one that
        crosses SQLite's auto-checkpoint threshold and has to copy these pages."""
        if self.path is None:
            return
        wal = Path(f"{self.path}-wal")
        try:
            fd = os.open(wal, os.O_RDONLY)
        except FileNotFoundError:  # checkpointed and removed by a closing connection: on disk already
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Several store calls as one write transaction: all of them are kept, or none (an error
        inside rolls every one back). Calls inside nest as savepoints."""
        with self._write():
            yield

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

    # Lookups every area needs before it writes.

    def _require_project(self, project_id: int) -> None:
        if not self._value("SELECT 1 FROM projects WHERE id = ?", [project_id]):
            raise NotFoundError(f"project {project_id} does not exist")

    def _require_item(self, project_id: int, item_id: int) -> str:
        role = self._value(
            "SELECT role FROM items WHERE project_id = ? AND item_id = ?", [project_id, item_id]
        )
        if role is None:
            self._require_project(project_id)
            raise NotFoundError(f"item {item_id} is not in project {project_id}")
        return role

    def _require_annotator(self, annotator_id: int) -> None:
        if not self._value("SELECT 1 FROM annotators WHERE id = ?", [annotator_id]):
            raise NotFoundError(f"annotator {annotator_id} does not exist")
