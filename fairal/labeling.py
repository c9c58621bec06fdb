"""The labeling loop: next item for an annotator, submit, skip, undo.

Every label is committed to the store before anything else happens. Items
are handed out with **leases** (:meth:`fairal.store.Store.lease_next_item`):
an item given to an annotator is locked for the project's lease time, so two
annotators never receive the same item beyond the project's overlap k, and an
abandoned item returns to the queue when its lease expires. With the background
worker and no quiz, the next item's lease is taken in the transaction that
commits the answer (one commit per key press). Quiz (gold) items
are mixed in at the project's rate; their answers never become training labels.

Retraining either runs inline after each label (``retrain=True``, the
single-user default: ERM on a few hundred examples takes milliseconds) or is
left to the background worker (:mod:`fairal.retrainer`), so the next item never
waits for training. Every write checks the user's access to the project again: an answer in the
transaction that commits it (:meth:`fairal.store.Store.submit_answer`), skip and undo through
:func:`fairal.auth.require_project_access`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairal.auth import AccessDenied, User, require_project_access
from fairal.projects import Project, open_project

__all__ = ["LabelingSession", "QueuedItem", "Progress"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedItem:
    """An item handed to an annotator, with the strategy's reason for it."""

    item_id: int
    rank: int | None
    score: float | None
    display: pd.Series  # the human-readable row, as the annotator sees it
    gold: bool = False  # a quiz item (known answer)
    answers: int = 0  # answers it already has from other annotators
    expires_at: str | None = None  # end of this annotator's lease


@dataclass(frozen=True)
class Progress:
    labeled_by_me: int
    labeled: int
    budget: int

    @property
    def done(self) -> bool:
        return self.labeled >= self.budget


def _require_active(store, project_id: int) -> None:
    """An archived project takes no answers (its labels are kept until it is restored)."""
    row = store.project(project_id)
    if row.get("archived_at"):
        raise AccessDenied(f"project {row['name']!r} is archived; an admin can restore it on the Setup page")


class LabelingSession:
    """One annotator working on one project.

    ``annotator``: a signed-in :class:`fairal.auth.User` (the app), or a name /
    account id for trusted local callers (scripts and tests that hold the
    database file), whose account is created and assigned to the project if
    needed. ``retrain=True`` retrains after every submit and undo; with a
    background worker, pass ``retrain=False``.
    """

    def __init__(self, store, project_id: int, annotator: User | str | int, *, retrain: bool = True,
                 project: Project | None = None):
        self.store = store
        if isinstance(annotator, User):
            self.user = annotator
        else:
            account = (annotator if isinstance(annotator, int) else store.get_or_create_annotator(annotator))
            row = store.annotator(account)
            self.user = User(row["id"], row["name"], row["role"])
            if not self.user.is_admin:
                store.add_member(project_id, self.user.id)
        require_project_access(store, self.user, project_id)
        _require_active(store, project_id)
        self.project = project or open_project(store, project_id)
        # The settings the loop applies, read once (an edited project gets a new session in the app):
        # a key press then goes to the store and, for inline retraining, to the project once.
        project = self.project
        self.budget, self.overlap, self.gold_rate = project.budget, project.overlap, project.gold_rate
        self.scale, self.lease_seconds = project.scale, project.lease_seconds
        self.annotator_id = self.user.id
        self.retrain_after_label = retrain
        # The next item's lease is taken with the answer where the answer cannot change which item it is:
        # not with inline retraining (it re-ranks the pool after the answer), nor with quiz items (a quiz
        # item is drawn after the answer); see _submit_and_lease.
        self.lease_with_answer = not retrain and self.gold_rate <= 0
        self.last_retrain_seconds: float | None = None
        self._pending_gold: int | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        """What each answer key means: the classes (as named in Setup), or the 1–4 confidence scale."""
        if self.scale == "confidence4":
            negative, positive = self.project.class_names
            return (f"surely {negative}", f"maybe {negative}", f"maybe {positive}", f"surely {positive}")
        return self.project.class_names

    @property
    def label_values(self) -> list[int]:
        return list(self.project.row["label_values"])

    def _check_access(self) -> None:
        require_project_access(self.store, self.user, self.project.id)
        _require_active(self.store, self.project.id)

    def progress(self) -> Progress:
        pid = self.project.id
        return Progress(labeled_by_me=self.store.label_count(pid, annotator_id=self.annotator_id, role="pool"),
                        labeled=self.store.label_count(pid, role="pool"), budget=self.budget)

    def next_item(self) -> QueuedItem | None:
        """The next item for this annotator (a quiz item now and then), or None when nothing is left.

        Pool items come in strategy order under a lease (see the module
        docstring); asking again before answering returns the same item.
        """
        self._check_access()
        gold = self._maybe_gold()
        if gold is not None:
            return gold
        project = self.project
        # the lease taken with the last answer (read only, no write lock), else a new one
        row = self.store.live_lease(project.id, self.annotator_id) or self._lease_next()
        if row is None:
            return None
        display = project.dataset.display.loc[int(row["item_id"])]
        return QueuedItem(item_id=int(row["item_id"]), rank=row.get("rank"), score=row.get("score"),
                          display=display, answers=int(row.get("answers") or 0), expires_at=row.get("expires_at"))

    def _maybe_gold(self) -> QueuedItem | None:
        """A quiz item at the project's gold rate (a fixed pseudo-random schedule per annotator)."""
        rate = self.gold_rate
        if rate <= 0:
            return None
        if self._pending_gold is None:
            answered = sum(a["annotator_id"] == self.annotator_id for a in self.store.gold_answers(self.project.id))
            done = self.store.label_count(self.project.id, annotator_id=self.annotator_id, role="pool")
            draw = np.random.default_rng([self.annotator_id, done, answered]).random()
            if draw >= rate:
                return None
            self._pending_gold = self.store.next_gold_item(self.project.id, self.annotator_id)
            if self._pending_gold is None:
                return None
        item_id = self._pending_gold
        display = self.project.dataset.display.loc[int(item_id)]
        return QueuedItem(item_id=int(item_id), rank=None, score=None, display=display, gold=True)

    def submit(self, item_id: int, value: int) -> list[dict] | dict:
        """Commit the answer, then (if enabled) retrain; returns the curve points recorded.

        The store checks, in the transaction that commits the answer, that this account may still
        label the project (assigned, project not archived) and that a first answer fits the budget
        (:meth:`fairal.store.Store.submit_answer`). For a quiz item, the answer is stored as a quiz
        answer and ``{"value", "gold", "correct"}`` is returned instead.
        """
        if self.lease_with_answer:
            result = self._submit_and_lease(int(item_id), int(value))
        else:
            result = self.store.submit_answer(self.project.id, int(item_id), self.annotator_id, int(value),
                                              overlap=self.overlap, budget=self.budget)
        if result.pop("quiz", False):
            self._pending_gold = None
            return {**result, "correct": self._correct(int(value), result["gold"])}
        return self._retrain()

    def _lease_next(self) -> dict | None:
        return self.store.lease_next_item(self.project.id, self.annotator_id, overlap=self.overlap,
                                          ttl_seconds=self.lease_seconds, budget=self.budget)

    def _submit_and_lease(self, item_id: int, value: int) -> dict:
        """The answer and the lease of the next item in one transaction: one commit (one fsync, one turn
        at the write lock) per key press, and :meth:`next_item` then only reads the lease.

        The answer commits with the lease or not at all, before this returns. A failed lease is undone
        alone (it runs in a savepoint) and logged; the answer still commits and :meth:`next_item` leases
        as it would have. An error that ends the whole transaction (SQLite rolls it back) fails the
        commit, so the answer is never acknowledged without being stored.
        """
        store, project_id = self.store, self.project.id
        with store.transaction():
            result = store.submit_answer(project_id, item_id, self.annotator_id, value,
                                         overlap=self.overlap, budget=self.budget)
            try:
                self._lease_next()
            except Exception:  # the answer must not be lost to a failed lease
                logger.exception("leasing the next item of project %s with the answer failed", self.project.name)
        return result

    def _correct(self, value: int, gold: int) -> bool:
        if self.scale == "confidence4":
            return int(value >= 3) == int(gold)
        return int(value) == int(gold)

    def skip(self, item_id: int) -> None:
        """Put the item at the back of this annotator's queue (others may take it)."""
        self._check_access()
        if self._pending_gold is not None and int(item_id) == self._pending_gold:
            self._pending_gold = None
            return
        self.store.record_skip(self.project.id, int(item_id), self.annotator_id)

    def undo(self) -> int | None:
        """Revert this annotator's last answer; returns its item id (None if nothing to undo).

        The item is leased back to the annotator, so it is the next one shown
        and the answer can be given again; the history keeps both answers.
        """
        self._check_access()
        undone = self.store.undo_last_label(self.project.id, self.annotator_id)
        if undone is None:
            return None
        if undone["value"] is None:  # the answer is gone: this annotator gets the item back first
            self.store.lease_item(self.project.id, int(undone["item_id"]), self.annotator_id,
                                  ttl_seconds=self.lease_seconds)
        self._retrain()
        return int(undone["item_id"])

    def _retrain(self) -> list[dict]:
        if not self.retrain_after_label:
            return []
        start = time.perf_counter()
        try:
            recorded = self.project.retrain(self.store)
        except Exception:  # the label is already committed; a failed retrain must not hide it
            logger.exception("retraining project %s failed", self.project.name)
            return []
        self.last_retrain_seconds = time.perf_counter() - start
        return recorded
