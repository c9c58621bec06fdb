"""Imported crowd answers, the clean validation set built from them, and the review of suspicious labels."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from fairal.errors import DuplicateError, NotFoundError
from fairal.store._db import _int, _now, _str
from fairal.store.projects import ProjectsArea


class CrowdArea(ProjectsArea):
    """Crowd answers, validation labels, item scores and review requests."""

    def add_crowd_answers(self, project_id: int, answers: Iterable[dict], *, source: str) -> int:
        """Import answers ``{item_id, worker_id, answer, position}`` from one file, all or nothing.

        Unknown items and answers already imported for the same (item, worker)
        are refused with the offending ids named; nothing is written then.
        """
        source = _str(source, "source")
        rows = [(project_id, _int(a["item_id"], "item_id"), _str(str(a["worker_id"]), "worker_id"),
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

    def crowd_answers(self, project_id: int) -> list[dict]:
        """``{item_id, worker_id, answer, position, source}`` of every imported answer."""
        return self._rows("SELECT item_id, worker AS worker_id, answer, position, source FROM crowd_answers "
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
