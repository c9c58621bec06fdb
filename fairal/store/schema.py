"""The store's tables, its schema version and the forward migrations between versions.

The version is SQLite's ``PRAGMA user_version``. :data:`MIGRATIONS` holds one function per step:
``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1``; a new file (version 0) is built by
running them all, so a new file and an upgraded one go through the same code. Each step runs in
its own write transaction (``BEGIN IMMEDIATE``), together with raising the version, and the version
is read again under the write lock, so two processes opening an old file migrate it once. A file
at a version newer than :data:`SCHEMA_VERSION` is refused (:func:`check_version`), never opened.

Steps 1-5 are the history before migrations existed: each created its tables with ``IF NOT
EXISTS`` (files already at a version have them). Step 6 keeps curve metrics long-form, one row per
(curve point, metric) in ``curve_metrics``, so that a metric added to ``fairal.metrics.METRICS``
needs no schema change; it moves the old one-column-per-metric values there and drops the columns.

Why not sqlite-utils' ``Migrations`` (what sqlite-migrate 0.2 now re-exports)? It records
applied migrations by name in a ``_sqlite_migrations`` table, while files in use already carry
their version in ``user_version`` (5), so it would need a bridge and keep two records of one
fact; it applies a file's pending steps without noticing a file written by a newer release, which
must be refused; and it wraps each step in ``db.atomic()``, a deferred ``BEGIN`` that fails with
"database is locked" instead of waiting when two processes upgrade one file. The runner here is
about 30 lines over ``user_version`` and the store's own ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from fairal.errors import StoreError

logger = logging.getLogger(__name__)

ITEM_ROLES = ("seed", "pool", "test", "validation")
ANNOTATOR_ROLES = ("admin", "annotator")

#: The columns of ``curve_points``; a curve point's metrics are rows of ``curve_metrics``.
CURVE_POINT_COLUMNS = ("id", "project_id", "budget", "trainer", "strategy", "model_version_id", "created_at")

# Version 1: projects, items, annotators, labels and their history, skips, models and curves.
_V1 = f"""
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
    created_at TEXT NOT NULL
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
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS curve_points_project ON curve_points (project_id, id);
CREATE INDEX IF NOT EXISTS curve_points_model_version ON curve_points (model_version_id);
"""

# Version 2: uploaded data files.
_V2 = """
CREATE TABLE IF NOT EXISTS dataset_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data BLOB NOT NULL
);
"""

# Version 3: passwords, memberships, leases, quiz, crowd answers, validation sets, review, claims.
_V3 = """
CREATE TABLE IF NOT EXISTS credentials (
    annotator_id INTEGER PRIMARY KEY REFERENCES annotators (id),
    password_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
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
"""

# Version 4: sign-in sessions.
_V4 = """
CREATE TABLE IF NOT EXISTS auth_sessions (
    token_hash TEXT PRIMARY KEY,
    annotator_id INTEGER NOT NULL REFERENCES annotators (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""

# Version 5: PANDA policy jobs.
_V5 = """
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

# Version 6: curve metrics long-form (ON DELETE CASCADE: a deleted curve point takes its metrics).
_V6 = """
CREATE TABLE IF NOT EXISTS curve_metrics (
    point_id INTEGER NOT NULL REFERENCES curve_points (id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (point_id, metric)
) WITHOUT ROWID;
"""

# Version 7: a pool's ranking as one versioned object: every unlabeled pool item in the strategy's
# order (item ids as int32 when they fit, else int64; float32 scores) in ``ranking_orders``,
# replaced whole, never updated.
# ``items.rank`` holds only the head of it that leases can reach; ``rankings`` says which version
# is current and how deep its head goes (a small row, updated when a lease ranks the next chunk).
_V7 = """
CREATE TABLE IF NOT EXISTS ranking_orders (
    project_id INTEGER PRIMARY KEY REFERENCES projects (id),
    version INTEGER NOT NULL,
    item_ids BLOB NOT NULL,
    scores BLOB
);
CREATE TABLE IF NOT EXISTS rankings (
    project_id INTEGER PRIMARY KEY REFERENCES projects (id),
    version INTEGER NOT NULL,
    size INTEGER NOT NULL,
    queue_depth INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
"""

# Version 8: sign-in throttling that survives restarts (failed attempts per account name and per
# client address, and until when each is blocked), and the one-time setup codes that let the
# operator create the first admin (only their SHA-256 is kept).
_V8 = """
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    blocked_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS setup_codes (
    code_hash TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""

# Version 9: a project's items of one role, in item order, read from an index that holds them all
# (opening a project reads its seed, pool and test ids; without it each read walked all its items).
_V9 = """
CREATE INDEX IF NOT EXISTS items_role_item ON items (project_id, role, item_id);
"""

# Version 10: an order is written in chunks, each in its own short transaction, before it becomes the
# ranking (one 250,000-item blob held the write lock 25-50 ms): ``ranking_orders`` has a row per
# stored order (the current one, or one being written: ``complete`` = 0), ``ranking_chunks`` its
# items ``start:stop`` (ids as int32 when they fit, else int64; float32 scores), and
# ``rankings.order_id`` names the current one. A version-9 order becomes one chunk.
_V10 = """
ALTER TABLE ranking_orders RENAME TO ranking_orders_v9;
CREATE TABLE ranking_orders (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    size INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ranking_orders_project ON ranking_orders (project_id, id);
CREATE TABLE ranking_chunks (
    order_id INTEGER NOT NULL REFERENCES ranking_orders (id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL,
    item_ids BLOB NOT NULL,
    scores BLOB,
    PRIMARY KEY (order_id, start)
);
ALTER TABLE rankings ADD COLUMN order_id INTEGER REFERENCES ranking_orders (id);
INSERT INTO ranking_orders (id, project_id, size, complete, created_at)
    SELECT r.project_id, r.project_id, r.size, 1, r.created_at
    FROM rankings AS r JOIN ranking_orders_v9 USING (project_id);
INSERT INTO ranking_chunks (order_id, start, stop, item_ids, scores)
    SELECT r.project_id, 0, r.size, o.item_ids, o.scores
    FROM rankings AS r JOIN ranking_orders_v9 AS o USING (project_id);
UPDATE rankings SET order_id = project_id WHERE project_id IN (SELECT project_id FROM ranking_orders_v9);
DROP TABLE ranking_orders_v9;
"""


def _columns(db: Database, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _to_version_6(db: Database) -> None:
    """Curve metrics long-form, and the columns the store used to add by ALTER TABLE."""
    # Before migrations, the store created any missing table or index only below version 5, and
    # added projects.archived_at and each metric's column on open: complete such a file first.
    db.executescript(_V1 + _V2 + _V3 + _V4 + _V5 + _V6)
    if "archived_at" not in _columns(db, "projects"):
        db.execute("ALTER TABLE projects ADD COLUMN archived_at TEXT")
    for column in _columns(db, "curve_points"):
        if column in CURVE_POINT_COLUMNS:
            continue
        moved = db.execute(
            f"INSERT INTO curve_metrics (point_id, metric, value) SELECT id, ?, {_quote(column)} "
            f"FROM curve_points WHERE {_quote(column)} IS NOT NULL", [column]).rowcount
        db.execute(f"ALTER TABLE curve_points DROP COLUMN {_quote(column)}")  # SQLite >= 3.35
        logger.info("moved %d values of curve_points.%s to curve_metrics", moved, column)


def _ddl(sql: str) -> Callable[[Database], None]:
    def step(db: Database) -> None:
        db.executescript(sql)
    return step


#: ``MIGRATIONS[n]`` takes a file from schema version ``n`` to ``n + 1``; append, never edit.
MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _ddl(_V1), _ddl(_V2), _ddl(_V3), _ddl(_V4), _ddl(_V5), _to_version_6, _ddl(_V7), _ddl(_V8), _ddl(_V9), _ddl(_V10),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Children first, so that no foreign key is ever left dangling (curve_metrics go with their points).
_PROJECT_TABLES = (
    "rankings",
    "ranking_orders",
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


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def check_version(conn: sqlite3.Connection, path: Path | None) -> int:
    """The file's schema version; a version newer than this code knows raises StoreError."""
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema version {version}, but this fairal knows versions up to "
                         f"{SCHEMA_VERSION}: it was written by a newer fairal; upgrade fairal to open it")
    return version


def migrate(db: Database, write: Callable[[], contextlib.AbstractContextManager], path: Path | None) -> None:
    """Run the migrations from the file's version up to :data:`SCHEMA_VERSION`, one transaction each.

    ``write`` opens the store's write transaction; the version is read again inside it, since
    another process may have migrated the file while this one waited.
    """
    while check_version(db.conn, path) < SCHEMA_VERSION:
        with write():
            version = check_version(db.conn, path)
            if version >= SCHEMA_VERSION:
                break
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
        logger.debug("store %s migrated to schema version %d", path or ":memory:", version + 1)
