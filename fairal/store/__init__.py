"""The one package that speaks SQL: projects, items, accounts, labels, crowd answers, model versions
and curve points, kept in SQLite through sqlite-utils.

A :class:`Store` wraps one connection. It may be handed from thread to thread
(Streamlit runs a button's callback in the next script run's thread) and its
calls are serialised by a lock, but for concurrent work open one ``Store`` per
thread or process on the same file: they then write in turn. File stores
run in WAL mode with a 30 s busy timeout, and every write is one transaction
opened with ``BEGIN IMMEDIATE``, so writers from several processes queue for
the write lock instead of failing with "database is locked" halfway through.

Rows come back as plain dicts, JSON columns decoded; timestamps are UTC
ISO-8601 strings with microseconds.

The package is split by concern, one area class per module, all over the connection and
transaction helper of ``_db`` (:class:`~fairal.store._db.Connection`):

- ``schema``: the tables, ``SCHEMA_VERSION`` (``PRAGMA user_version``) and the forward
  migrations, one transaction per step, that opening an older file runs (a newer file is
  refused); why not sqlite-utils' own ``Migrations`` is said there;
- ``projects``: projects, items, quiz (gold) sets, uploaded data files;
- ``rankings``: a pool's ranking as one versioned object, only its head in ``items.rank``;
- ``labeling``: labels with their history and undo, skips, answer counts, quiz answers;
- ``leases``: handing items to concurrent annotators;
- ``accounts``: accounts, password hashes, sign-in sessions, memberships;
- ``crowd``: imported crowd answers, validation sets, item scores and review requests;
- ``models``: model versions, training claims, policy jobs;
- ``curves``: curve points, their metrics long-form (a new metric needs no schema change).
"""

from __future__ import annotations

from fairal.errors import DuplicateError, NotFoundError, StoreError  # noqa: F401 (defined there, named here too)
from fairal.store._db import BUSY_TIMEOUT_MS, Connection
from fairal.store.accounts import AccountsArea
from fairal.store.crowd import CrowdArea
from fairal.store.curves import METRIC_COLUMNS, CurvesArea
from fairal.store.labeling import LABELABLE_ROLES, LabelingArea
from fairal.store.leases import LeasesArea
from fairal.store.schema import _PROJECT_TABLES as _PROJECT_TABLES  # named by tests of project deletion
from fairal.store.schema import ANNOTATOR_ROLES, ITEM_ROLES, SCHEMA_VERSION

__all__ = [
    "ANNOTATOR_ROLES",
    "BUSY_TIMEOUT_MS",
    "DuplicateError",
    "ITEM_ROLES",
    "LABELABLE_ROLES",
    "METRIC_COLUMNS",
    "NotFoundError",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
]


class Store(AccountsArea, LabelingArea, LeasesArea, CrowdArea, CurvesArea, Connection):
    """Projects, labels, model versions and curve points in one SQLite file.

    ``Store(path)`` opens the file, creating its folder and the schema when
    they are missing and migrating an older schema forward; ``Store(memory=True)``
    keeps everything in memory.
    """

    # One training step (fairal.projects.Project.train_step) enters the store twice: once to read
    # everything it trains on, once to write everything it learned.

    def training_inputs(self, project_id: int, *, validation: bool = False, latest: bool = False) -> dict:
        """What one training step reads: ``label_seq`` (read first, so a version never claims newer
        labels than it saw), the pool's labels and, with ``validation``, the clean validation set.

        The pool's labels: ``answers``, every current answer to a pool item in commit order
        (:meth:`answers` rows), or with ``latest`` (several classes) ``labels``, each pool item's
        majority label (:meth:`labeled_items`). ``validation_labels`` and ``validation_info`` are
        :meth:`validation_labels` and :meth:`validation_info` (None without ``validation``).
        """
        with self._lock:
            inputs: dict = {"label_seq": self.label_seq(project_id), "answers": None, "labels": None,
                            "validation_labels": None, "validation_info": None}
            if latest:
                inputs["labels"] = self.labeled_items(project_id, role="pool")
            else:
                pool = set(self.item_ids(project_id, "pool"))
                inputs["answers"] = [a for a in self.answers(project_id) if a["item_id"] in pool]
            if validation:
                inputs["validation_labels"] = self.validation_labels(project_id)
                inputs["validation_info"] = self.validation_info(project_id)
            return inputs

    def record_training_step(self, project_id: int, *, item_scores: dict[int, float] | None = None,
                             ranking: tuple | None = None,
                             **evaluation) -> dict:
        """What one training step writes, in one transaction: the model version and its curve point
        (:meth:`record_evaluation`, whose keyword arguments ``evaluation`` holds and whose record it
        returns), the trainer's per-label scores when there are any (:meth:`set_item_scores`) and the
        pool's new ranking when given, as ``(item_ids, scores)`` (:meth:`set_ranking`: checked and
        written in chunks before, made current inside, the transaction)."""
        with self._ranking_write(project_id, ranking):
            recorded = self.record_evaluation(project_id, **evaluation)
            if item_scores:
                self.set_item_scores(project_id, evaluation["trainer"], recorded["model_version_id"], item_scores)
        return recorded
