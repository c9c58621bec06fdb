"""Rankings: a pool's queue order as one versioned object, with only its head in ``items.rank``.

A strategy ranks every unlabeled pool item after each retrain. Writing every item's rank into
``items`` took the write lock for as long as the pool is large (2.0 s for a 250,000-item pool), and
every annotator's submit waited for it. Now :meth:`RankingsArea.set_ranking` stores the whole order
as one row of ``ranking_orders`` (item ids and scores as two arrays; ``rankings`` holds its version)
and writes ranks only for its first :attr:`~RankingsArea.queue_chunk` items: the part of the queue
that leases can reach before the next re-rank. Both happen in one transaction, so readers see the old ranking or
the new one, never a mix. When the annotators get past the ranked head (many skips, or a long
wait for the next re-rank), :meth:`RankingsArea.extend_queue` ranks the next chunk from the stored
order, inside the lease's own transaction (see :mod:`fairal.store.leases`).
"""

from __future__ import annotations

import numpy as np

from fairal.errors import NotFoundError
from fairal.store._db import Connection, _now


class RankingsArea(Connection):
    """The strategy's order of a project's pool, versioned; the queue's head as ``items.rank``."""

    #: How many items of a ranking get an ``items.rank`` at a time (the lock holds for this many).
    queue_chunk = 500

    def set_ranking(self, project_id: int, item_ids, scores=None) -> int:
        """Replace the project's ranking: ``item_ids`` best first (the rank is the position), with
        their ``scores`` (None: no scores). Returns the new version (1, 2, ...).

        Items ranked before and not in the new head lose their rank, except items that already
        have answers (partly labeled items keep the rank they were picked at). An item that is not
        a pool item of the project raises NotFoundError and changes nothing (:meth:`check_ranking`,
        before the write lock is taken).
        """
        ids, values = self.check_ranking(project_id, item_ids, scores)
        return self._replace_ranking(project_id, ids, values)

    def __init__(self, *args, **kwargs) -> None:
        #: Each project's pool item ids (sorted), read once per connection: a project's items never
        #: change after the transaction that created it committed (see :meth:`_pool_item_ids`).
        self._pool_item_ids_cache: dict[int, np.ndarray] = {}
        super().__init__(*args, **kwargs)

    def check_ranking(self, project_id: int, item_ids, scores=None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(item_ids, scores)`` as int64 and float64 arrays, when every id is a distinct pool item of
        the project (NotFoundError / ValueError otherwise). It reads the pool without the write lock:
        a project's items never change, so a writer can check first and hold the lock only to write."""
        ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        values = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if values is not None and len(values) != len(ids):
            raise ValueError(f"{len(ids)} item ids but {len(values)} scores")
        try:
            self._require_project(project_id)
        except NotFoundError:
            self._pool_item_ids_cache.pop(project_id, None)
            raise
        unknown = ids[~np.isin(ids, self._pool_item_ids(project_id))]
        if len(unknown):
            missing = sorted(set(unknown.tolist()))[:10]
            raise NotFoundError(f"items {missing} are not pool items of project {project_id}")
        ordered = np.sort(ids)  # a sort and a neighbour test: np.unique hashes, 10x slower on 250k ids
        if np.any(ordered[1:] == ordered[:-1]):
            raise ValueError(f"a ranking of project {project_id} names an item twice")
        return ids, values

    def _pool_item_ids(self, project_id: int) -> np.ndarray:
        """The project's pool item ids, sorted; kept for the connection's life once read outside a
        transaction (inside one, a project created in it could still be rolled back and its id
        given to another project)."""
        cached = self._pool_item_ids_cache.get(project_id)
        if cached is not None:
            return cached
        with self._lock:
            committed = not self._db.conn.in_transaction
            rows = self._db.conn.execute(
                "SELECT item_id FROM items WHERE project_id = ? AND role = 'pool' ORDER BY item_id", [project_id])
            pool = np.fromiter((r[0] for r in rows), dtype=np.int64)
        if committed:
            self._pool_item_ids_cache[project_id] = pool
        return pool

    def _replace_ranking(self, project_id: int, ids: np.ndarray, values: np.ndarray | None) -> int:
        """:meth:`set_ranking`'s write, for arrays from :meth:`check_ranking`."""
        with self._write():
            self._db.execute(
                "UPDATE items SET rank = NULL, score = NULL WHERE project_id = ? AND role = 'pool' "
                "AND rank IS NOT NULL AND NOT EXISTS (SELECT 1 FROM labels AS l "
                "WHERE l.project_id = items.project_id AND l.item_id = items.item_id)", [project_id])
            version = 1 + (self._value("SELECT version FROM rankings WHERE project_id = ?", [project_id]) or 0)
            scores = None if values is None else values.astype(np.float32)
            depth = self._rank_items(project_id, ids, scores, 0)
            self._db.execute(
                "INSERT OR REPLACE INTO ranking_orders (project_id, version, item_ids, scores) VALUES (?, ?, ?, ?)",
                [project_id, version, _id_bytes(ids), None if scores is None else scores.tobytes()])
            self._db.execute(
                "INSERT OR REPLACE INTO rankings (project_id, version, size, queue_depth, created_at) "
                "VALUES (?, ?, ?, ?, ?)", [project_id, version, len(ids), depth, _now()])
            return version

    def ranking(self, project_id: int) -> dict | None:
        """The current ranking: ``{version, size, queue_depth, created_at, item_ids, scores}`` (arrays:
        int64 ids best first, float32 scores or None), or None before the first one."""
        row = self._row("SELECT * FROM rankings WHERE project_id = ?", [project_id])
        if row is None:
            return None
        ids, scores = self._order_slice(project_id, row["size"], 0, row["size"])
        return {**row, "item_ids": ids, "scores": scores}

    def extend_queue(self, project_id: int) -> int:
        """Rank the next :attr:`queue_chunk` items of the current ranking; returns how many were ranked
        (0: the ranking is used up, or the project has none). Reads only that slice of the order."""
        with self._write():
            row = self._row("SELECT size, queue_depth FROM rankings WHERE project_id = ?", [project_id])
            if row is None or row["queue_depth"] >= row["size"]:
                return 0
            start = int(row["queue_depth"])
            stop = min(int(row["size"]), start + int(self.queue_chunk))
            ids, scores = self._order_slice(project_id, int(row["size"]), start, stop)
            self._rank_items(project_id, ids, scores, start)
            self._db.execute("UPDATE rankings SET queue_depth = ? WHERE project_id = ?", [stop, project_id])
            return stop - start

    def _order_slice(self, project_id: int, size: int, start: int,
                     stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Items ``start:stop`` of the stored order of ``size`` items and their scores, read from the
        blobs directly."""
        has_scores = self._value("SELECT scores IS NOT NULL FROM ranking_orders WHERE project_id = ?", [project_id])
        with self._lock:
            with self._db.conn.blobopen("ranking_orders", "item_ids", project_id, readonly=True) as blob:
                dtype = np.dtype(np.int32) if len(blob) == 4 * size else np.dtype(np.int64)
                blob.seek(dtype.itemsize * start)
                ids = np.frombuffer(blob.read(dtype.itemsize * (stop - start)), dtype=dtype).astype(np.int64)
            if not has_scores:
                return ids, None
            with self._db.conn.blobopen("ranking_orders", "scores", project_id, readonly=True) as blob:
                blob.seek(4 * start)
                return ids, np.frombuffer(blob.read(4 * (stop - start)), dtype=np.float32)

    def _rank_items(self, project_id: int, ids: np.ndarray, scores: np.ndarray | None, start: int) -> int:
        """``items.rank`` = position and the score for the first :attr:`queue_chunk` of ``ids`` (which
        begin at position ``start``); returns the depth reached."""
        head = ids[:int(self.queue_chunk)].tolist()
        values = [None] * len(head) if scores is None else [
            None if np.isnan(v) else v for v in scores[:len(head)].tolist()]
        self._db.conn.executemany(
            "UPDATE items SET rank = ?, score = ? WHERE project_id = ? AND item_id = ?",
            [(start + n, score, project_id, item) for n, (item, score) in enumerate(zip(head, values))])
        return start + len(head)


def _id_bytes(ids: np.ndarray) -> bytes:
    """The ids as stored: int32 when every id fits (a third less to write under the lock), else
    int64; readers tell the two apart by the blob's length against the ranking's size."""
    if len(ids) == 0 or (ids.min() >= np.iinfo(np.int32).min and ids.max() <= np.iinfo(np.int32).max):
        return ids.astype(np.int32).tobytes()
    return ids.tobytes()
