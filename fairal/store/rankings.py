"""Rankings: a pool's queue order as one versioned object, with only its head in ``items.rank``.

A strategy ranks every unlabeled pool item after each retrain. Writing every item's rank into
``items`` took the write lock for as long as the pool is large (2.0 s for a 250,000-item pool), and
every annotator's submit waited for it. So a ranking is stored as an *order*: a ``ranking_orders``
row and its item ids and scores as arrays in ``ranking_chunks`` rows of :attr:`~RankingsArea.order_chunk`
items, and only the first :attr:`~RankingsArea.queue_chunk` items, the part of the queue that leases
can reach before the next re-rank, get an ``items.rank``.

- An order of up to :attr:`~RankingsArea.order_chunk` items is written, made current
  (:meth:`RankingsArea._swap_ranking`) and its predecessor deleted in one transaction.
- A larger one is written ahead (:meth:`RankingsArea._stage_order`), one chunk per short transaction
  that does not wait for the disk, with a pause between them; no reader sees it until the swap
  points ``rankings`` at it. The old order is then deleted a chunk at a time, and the log synced
  and checkpointed outside the lock (:meth:`RankingsArea._ranking_write`). Written as one
  transaction, a 250,000-item order held the write lock 45-60 ms, and an annotator's key press
  waited for it; now no transaction of it holds the lock more than a few ms.

Readers see the old ranking or the new one, never a mix. An order staged and never swapped in (its
writer stopped, or another writer's ranking went in first) is deleted once stale. When the
annotators get past the ranked head (many skips, or a long wait for the next re-rank),
:meth:`RankingsArea.extend_queue` ranks the next chunk from the stored order, inside the lease's own
transaction (see :mod:`fairal.store.leases`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np

from fairal.errors import NotFoundError
from fairal.store._db import Connection, _now

#: An order staged but never completed is deleted once it is this old (its writer stopped).
STALE_ORDER = timedelta(minutes=10)


@dataclass(frozen=True)
class StagedOrder:
    """An order on its way to becoming the project's ranking (:meth:`RankingsArea._stage_order`)."""

    #: Its ``ranking_orders`` row when it was written ahead in chunks (a large order: a bulk re-rank,
    #: whose transactions do not wait for the disk); None: the swap's transaction writes it.
    order_id: int | None
    item_ids: np.ndarray
    scores: np.ndarray | None  # float32

    @property
    def bulk(self) -> bool:
        return self.order_id is not None


class RankingsArea(Connection):
    """The strategy's order of a project's pool, versioned; the queue's head as ``items.rank``."""

    #: How many items of a ranking get an ``items.rank`` at a time (the swap writes this many ranks).
    #: 100 keeps the swap small: at 1M rows it held the lock 2-4 ms, against 35-43 ms for 500, whose
    #: scattered item pages overflow SQLite's page cache (benchmarks/results/scale.md).
    queue_chunk = 100
    #: How many items of an order one ``ranking_chunks`` row holds (one staging transaction each).
    order_chunk = 131_072
    #: Seconds between the bulk transactions of a re-rank (staging, deleting), so that an annotator's
    #: write waiting in SQLite's busy handler, which retries 1, 3, 8, 18, 33, 53 ms after it first
    #: met the lock, finds it free: back to back, 10 transactions of 1-3 ms kept such a write out for
    #: 54 ms at 1M rows.
    bulk_pause = 0.005

    def set_ranking(self, project_id: int, item_ids, scores=None) -> int:
        """Replace the project's ranking: ``item_ids`` best first (the rank is the position), with
        their ``scores`` (None: no scores). Returns the new version (1, 2, ...).

        Items ranked before and not in the new head lose their rank, except items that already
        have answers (partly labeled items keep the rank they were picked at). An item that is not
        a pool item of the project raises NotFoundError and changes nothing (:meth:`check_ranking`,
        before the write lock is taken).
        """
        with self._ranking_write(project_id, (item_ids, scores)) as swapped:
            pass
        return swapped["version"]

    @contextlib.contextmanager
    def _ranking_write(self, project_id: int, ranking: tuple | None) -> Iterator[dict]:
        """A write transaction that ends by making ``ranking`` (``(item_ids, scores)``, or None for
        none) the project's ranking; what the caller writes inside commits with it. The ranking is
        checked, and a large order written ahead in chunks, before the transaction; afterwards a
        bulk re-rank's old order is deleted and its writes made durable. Yields a dict that holds the
        new ranking's ``version`` once the transaction has committed."""
        staged = None if ranking is None else self._stage_order(project_id, *self.check_ranking(project_id, *ranking))
        swapped: dict = {}
        with self._write(sync=staged is None or not staged.bulk):
            yield swapped
            if staged is not None:
                swapped["version"] = self._swap_ranking(project_id, staged)
        if staged is not None and staged.bulk:
            self._drop_old_orders(project_id, separately=True)

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

    def _stage_order(self, project_id: int, ids: np.ndarray, values: np.ndarray | None) -> StagedOrder:
        """Get an order (arrays from :meth:`check_ranking`) ready for :meth:`_swap_ranking`. One of more
        than :attr:`order_chunk` items is written ahead, a chunk per transaction
        (:meth:`_write_order`), so no annotator's write waits for more than one chunk; a smaller one
        is left for the swap's own transaction to write (one transaction per re-rank, as cheap)."""
        scores = None if values is None else values.astype(np.float32)
        if len(ids) <= self.order_chunk:
            return StagedOrder(None, ids, scores)
        return StagedOrder(self._write_order(project_id, ids, scores, separately=True), ids, scores)

    def _write_order(self, project_id: int, ids: np.ndarray, scores: np.ndarray | None, *, separately: bool) -> int:
        """Store an order as its ``ranking_orders`` row and chunks of :attr:`order_chunk` items; returns
        the row's id. ``separately``: each chunk in its own transaction that does not wait for the
        disk (the row goes with the first), with a pause between them; else in the caller's."""
        size = int(self.order_chunk)
        chunks = [(start, min(start + size, len(ids))) for start in range(0, len(ids), size)]
        order_id = None
        for n, (start, stop) in enumerate(chunks or [(0, 0)], start=1):
            if separately and n > 1:
                self._let_others_write()
            with self._write(sync=False) if separately else contextlib.nullcontext():
                if order_id is None:
                    order_id = cast(int, self._db.execute(
                        "INSERT INTO ranking_orders (project_id, size, complete, created_at) VALUES (?, ?, 0, ?)",
                        [project_id, len(ids), _now()]).lastrowid)
                if stop > start:
                    self._db.execute(
                        "INSERT INTO ranking_chunks (order_id, start, stop, item_ids, scores) VALUES (?, ?, ?, ?, ?)",
                        [order_id, start, stop, _id_bytes(ids[start:stop]),
                         None if scores is None else scores[start:stop].tobytes()])
                if n == max(len(chunks), 1):
                    self._db.execute("UPDATE ranking_orders SET complete = 1 WHERE id = ?", [order_id])
        if separately:
            self._let_others_write()
        return cast(int, order_id)

    def _let_others_write(self) -> None:
        """Pause :attr:`bulk_pause` between a re-rank's transactions (not inside an outer one, nor for an
        in-memory store, which no other connection shares)."""
        if self.path is not None and not self._db.conn.in_transaction:
            time.sleep(self.bulk_pause)

    def _swap_ranking(self, project_id: int, staged: StagedOrder) -> int:
        """Make an order the project's ranking and rank its head; inside the caller's write
        transaction. Returns the new version. An order not written ahead is written here, and the
        project's old orders deleted with it; so is one that another writer deleted meanwhile (see
        :meth:`_drop_old_orders`)."""
        order_id = staged.order_id
        if order_id is None or not self._value("SELECT complete FROM ranking_orders WHERE id = ?", [order_id]):
            order_id = self._write_order(project_id, staged.item_ids, staged.scores, separately=False)
        self._db.execute(
            "UPDATE items SET rank = NULL, score = NULL WHERE project_id = ? AND role = 'pool' "
            "AND rank IS NOT NULL AND NOT EXISTS (SELECT 1 FROM labels AS l "
            "WHERE l.project_id = items.project_id AND l.item_id = items.item_id)", [project_id])
        version = 1 + (self._value("SELECT version FROM rankings WHERE project_id = ?", [project_id]) or 0)
        depth = self._rank_items(project_id, staged.item_ids, staged.scores, 0)
        self._db.execute(
            "INSERT OR REPLACE INTO rankings (project_id, version, size, queue_depth, created_at, order_id) "
            "VALUES (?, ?, ?, ?, ?, ?)", [project_id, version, len(staged.item_ids), depth, _now(), order_id])
        if not staged.bulk:
            self._drop_old_orders(project_id, separately=False)
        return version

    def _drop_old_orders(self, project_id: int, *, separately: bool) -> None:
        """Delete the project's orders older than its current one, except one that another writer is
        still staging (an unfinished order goes once it is stale) and any that became a ranking
        meanwhile. ``separately``: a chunk per transaction that does not wait for the disk, then every
        write of the re-rank made durable (:meth:`_flush`); else in the caller's transaction."""
        stale = (datetime.now(UTC) - STALE_ORDER).isoformat(timespec="microseconds")
        old = [order for (order,) in self._tuples(
            "SELECT id FROM ranking_orders WHERE project_id = :p AND (complete = 1 OR created_at < :stale) "
            "AND id < (SELECT order_id FROM rankings WHERE project_id = :p)", {"p": project_id, "stale": stale})]
        unused = "NOT IN (SELECT order_id FROM rankings WHERE order_id IS NOT NULL)"
        for order in old:
            if separately:
                for (start,) in self._tuples("SELECT start FROM ranking_chunks WHERE order_id = ?", [order]):
                    self._let_others_write()
                    with self._write(sync=False):
                        self._db.execute(
                            f"DELETE FROM ranking_chunks WHERE order_id = ? AND start = ? AND order_id {unused}",
                            [order, start])
            with self._write(sync=False) if separately else contextlib.nullcontext():
                self._db.execute(f"DELETE FROM ranking_orders WHERE id = ? AND id {unused}", [order])  # + chunks
        if separately:
            self._flush()

    def ranking(self, project_id: int) -> dict | None:
        """The current ranking: ``{version, size, queue_depth, created_at, order_id, item_ids, scores}``
        (arrays: int64 ids best first, float32 scores or None), or None before the first one."""
        row = self._row("SELECT * FROM rankings WHERE project_id = ?", [project_id])
        if row is None:
            return None
        ids, scores = self._order_slice(row["order_id"], 0, row["size"])
        return {**row, "item_ids": ids, "scores": scores}

    def extend_queue(self, project_id: int) -> int:
        """Rank the next :attr:`queue_chunk` items of the current ranking; returns how many were ranked
        (0: the ranking is used up, or the project has none). Reads only the chunks of that slice."""
        with self._write():
            row = self._row("SELECT size, queue_depth, order_id FROM rankings WHERE project_id = ?", [project_id])
            if row is None or row["queue_depth"] >= row["size"]:
                return 0
            start = int(row["queue_depth"])
            stop = min(int(row["size"]), start + int(self.queue_chunk))
            ids, scores = self._order_slice(row["order_id"], start, stop)
            self._rank_items(project_id, ids, scores, start)
            self._db.execute("UPDATE rankings SET queue_depth = ? WHERE project_id = ?", [stop, project_id])
            return stop - start

    def _order_slice(self, order_id: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Items ``start:stop`` of a stored order and their scores (None when it has none), read from
        the chunks that hold them."""
        ids, scores = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.float32)]
        has_scores = True
        for first, last, id_bytes, score_bytes in self._tuples(
                "SELECT start, stop, item_ids, scores FROM ranking_chunks WHERE order_id = ? AND stop > ? "
                "AND start < ? ORDER BY start", [order_id, start, stop]):
            dtype = np.int32 if len(id_bytes) == 4 * (last - first) else np.int64
            keep = slice(max(start, first) - first, min(stop, last) - first)
            ids.append(np.frombuffer(id_bytes, dtype=dtype)[keep].astype(np.int64))
            has_scores = has_scores and score_bytes is not None
            if has_scores:
                scores.append(np.frombuffer(score_bytes, dtype=np.float32)[keep])
        return np.concatenate(ids), (np.concatenate(scores) if has_scores else None)

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
