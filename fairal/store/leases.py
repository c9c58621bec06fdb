"""Leases: which annotator works on which item, so concurrent annotators never get the same one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fairal.store._db import _int, _now
from fairal.store.rankings import RankingsArea


class LeasesArea(RankingsArea):
    """Handing out items under a time-limited lock (see :meth:`lease_next_item`)."""

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
        the strategy's rank order (the ranked head of the stored ranking, extended a chunk at a time
        when it is used up: :mod:`fairal.store.rankings`; unranked last); finally the items this
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
            own = self._own_lease(key)
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

    def live_lease(self, project_id: int, annotator_id: int) -> dict | None:
        """This annotator's live lease in the project, what :meth:`lease_next_item` would return first,
        read without taking the write lock: ``{item_id, rank, score, answers, expires_at}`` or None."""
        return self._own_lease({"p": project_id, "a": annotator_id, "now": _now()})

    def _own_lease(self, key: dict) -> dict | None:
        """The annotator's own live lease (a page reload shows the same item)."""
        return self._row(
            """
            SELECT i.item_id, i.rank, i.score, l.expires_at,
                   (SELECT COUNT(*) FROM labels AS x
                    WHERE x.project_id = :p AND x.item_id = i.item_id) AS answers
            FROM leases AS l JOIN items AS i ON i.project_id = l.project_id AND i.item_id = l.item_id
            WHERE l.project_id = :p AND l.annotator_id = :a AND l.expires_at > :now
            ORDER BY l.expires_at LIMIT 1
            """, key)

    # The three phases of lease_next_item; each SELECT stops at its first match.
    _TAKEN = """(SELECT COUNT(*) FROM labels AS x WHERE x.project_id = :p AND x.item_id = i.item_id)
              + (SELECT COUNT(*) FROM leases AS x WHERE x.project_id = :p AND x.item_id = i.item_id)"""
    _NOT_MINE = """NOT EXISTS (SELECT 1 FROM labels AS x
                               WHERE x.project_id = :p AND x.item_id = i.item_id AND x.annotator_id = :a)
               AND NOT EXISTS (SELECT 1 FROM skips AS x
                               WHERE x.project_id = :p AND x.item_id = i.item_id AND x.annotator_id = :a)"""

    def _next_started(self, key: dict) -> dict | None:
        """An item sent for review, or one with answers/leases but fewer than k (few: searched whole).

        CROSS JOIN keeps the few started items as the outer loop: SQLite 3.45 left to choose walked
        every pool item of the (project, role, item) index instead (3.40 did not)."""
        return self._row(
            f"""
            WITH started AS (
                SELECT item_id FROM review_requests WHERE project_id = :p
                UNION SELECT item_id FROM labels WHERE project_id = :p AND :k > 1
                UNION SELECT item_id FROM leases WHERE project_id = :p AND :k > 1)
            SELECT i.item_id, i.rank, i.score,
                   (SELECT COUNT(*) FROM labels AS x WHERE x.project_id = :p AND x.item_id = i.item_id) AS answers
            FROM started CROSS JOIN items AS i ON i.project_id = :p AND i.item_id = started.item_id
            LEFT JOIN review_requests AS r ON r.project_id = :p AND r.item_id = i.item_id
            WHERE i.role = 'pool' AND {self._NOT_MINE}
              AND {self._TAKEN} < :k + (r.item_id IS NOT NULL)
            ORDER BY r.item_id IS NULL, r.created_at, i.rank IS NULL, i.rank, i.item_id
            LIMIT 1
            """, key)

    def _next_fresh(self, key: dict, budget: int | None) -> dict | None:
        """The best-ranked item nobody has answered or leased, unless the budget is all started."""
        if budget is not None:
            # CROSS JOIN: SQLite walks the project's labels and looks each item up; left to choose, it
            # walked every pool item of the (project, role, item) index instead (30 ms at 250k items)
            started = self._value(
                """
                SELECT COUNT(*) FROM (
                    SELECT l.item_id FROM labels AS l CROSS JOIN items AS i
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
            sql = f"""
                SELECT i.item_id, i.rank, i.score, 0 AS answers FROM items AS i INDEXED BY items_role_rank
                WHERE i.project_id = :p AND i.role = 'pool' AND i.{where} AND {free}
                ORDER BY {by} LIMIT 1
                """
            row = self._row(sql, key)
            # past the ranked head of the queue: rank the next chunk of the stored order, then look again
            while row is None and where.startswith("rank IS NOT NULL") and self.extend_queue(key["p"]):
                row = self._row(sql, key)
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
