"""The labeling loop: next item for an annotator, submit, skip, undo.

Every label is committed to the store before anything else happens; the
retraining that follows (inline in this first slice: ERM on a few hundred
examples takes milliseconds) only appends a curve point and re-ranks the
pool, so a failed retrain never loses a label.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd

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


@dataclass(frozen=True)
class Progress:
    labeled_by_me: int
    labeled: int
    budget: int

    @property
    def done(self) -> bool:
        return self.labeled >= self.budget


class LabelingSession:
    """One annotator working on one project.

    ``retrain=True`` retrains and records a curve point after every submit
    and undo (this slice's inline retraining); the background worker of a
    later issue turns it off.
    """

    def __init__(self, store, project_id: int, annotator: str | int, *, retrain: bool = True,
                 project: Project | None = None):
        self.store = store
        self.project = project or open_project(store, project_id)
        self.annotator_id = (annotator if isinstance(annotator, int)
                             else store.get_or_create_annotator(annotator))
        self.retrain_after_label = retrain
        self.last_retrain_seconds: float | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.project.dataset.classes

    def progress(self) -> Progress:
        pid = self.project.id
        return Progress(labeled_by_me=self.store.label_count(pid, annotator_id=self.annotator_id),
                        labeled=self.store.label_count(pid), budget=self.project.budget)

    def next_item(self) -> QueuedItem | None:
        """The next pool item in strategy order, or None when the budget or pool is used up."""
        if self.progress().done:
            return None
        rows = self.store.next_items(self.project.id, self.annotator_id, limit=1)
        if not rows:
            return None
        row = rows[0]
        display = self.project.dataset.display.loc[int(row["item_id"])]
        return QueuedItem(item_id=int(row["item_id"]), rank=row.get("rank"), score=row.get("score"),
                          display=display)

    def submit(self, item_id: int, value: int) -> list[dict]:
        """Commit the label, then (if enabled) retrain; returns the curve points recorded."""
        if self.progress().done and item_id not in self.store.labeled_items(self.project.id):
            raise ValueError(f"the budget of {self.project.budget} labels is used up")
        self.store.submit_label(self.project.id, int(item_id), self.annotator_id, int(value))
        return self._retrain()

    def skip(self, item_id: int) -> None:
        """Put the item at the back of this annotator's queue."""
        self.store.record_skip(self.project.id, int(item_id), self.annotator_id)

    def undo(self) -> int | None:
        """Revert this annotator's last label; returns its item id (None if nothing to undo)."""
        undone = self.store.undo_last_label(self.project.id, self.annotator_id)
        if undone is None:
            return None
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
