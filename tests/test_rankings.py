"""A pool's ranking is one versioned object; only its head is written into ``items.rank``."""

from __future__ import annotations

import shutil
import sqlite3
import time

import numpy as np
import pytest

from fairal.labeling import LabelingSession
from fairal.projects import ProjectSettings, create_project
from fairal.store import NotFoundError, Store


def _pool_project(store, n: int) -> int:
    pid = store.create_project(name="p", dataset="d", label_column="y", sensitive="s", split_seed=0,
                               strategy="random", trainers=["erm"], budget=n, metric="demographic_parity_difference", threshold=0.1,
                               label_values=[0, 1], config={},
                               items=[{"item_id": i, "role": "pool"} for i in range(n)])
    return pid


def _ranked(store, pid) -> dict[int, int]:
    return {r["item_id"]: r["rank"] for r in store.items(pid, role="pool") if r["rank"] is not None}


def test_a_ranking_is_stored_whole_and_versioned_with_only_its_head_ranked(store):
    pid = _pool_project(store, 50)
    store.queue_chunk = 10
    order = np.random.default_rng(0).permutation(50)
    assert store.set_ranking(pid, order, np.linspace(1, 0, 50)) == 1
    stored = store.ranking(pid)
    np.testing.assert_array_equal(stored["item_ids"], order)
    assert stored["version"] == 1 and stored["queue_depth"] == 10
    assert _ranked(store, pid) == {int(item): n for n, item in enumerate(order[:10])}
    # a re-rank replaces the head, scores optional; an order of up to order_chunk items is written,
    # made current and its predecessor deleted in one transaction
    transactions = _write_transactions(store, lambda: store.set_ranking(pid, order[::-1]))
    assert len(transactions) == 1 and store.ranking(pid)["version"] == 2
    assert _ranked(store, pid) == {int(item): n for n, item in enumerate(order[::-1][:10])}
    assert store.ranking(pid)["scores"] is None
    assert store._tuples("SELECT COUNT(*) FROM ranking_orders")[0][0] == 1


def test_leases_follow_the_whole_stored_order_past_the_ranked_head(store):
    """With a head of 3 items, one annotator taking all 20 items one by one gets exactly the stored
    order: each time the head is used up the lease ranks the next chunk."""
    pid = _pool_project(store, 20)
    ann = store.add_annotator("ann")
    store.queue_chunk = 3
    order = np.random.default_rng(1).permutation(20)
    store.set_ranking(pid, order)
    taken = []
    while (row := store.lease_next_item(pid, ann)) is not None:
        taken.append(row["item_id"])
        store.submit_label(pid, row["item_id"], ann, 1)
    assert taken == order.tolist()
    assert store.ranking(pid)["queue_depth"] == 20


def test_skipping_past_the_head_reaches_the_next_chunk_in_order(store):
    pid = _pool_project(store, 12)
    ann, other = store.add_annotator("ann"), store.add_annotator("other")
    store.queue_chunk = 4
    order = np.arange(12)[::-1]
    store.set_ranking(pid, order)
    for item in order[:4]:
        store.record_skip(pid, int(item), ann)
    assert store.lease_next_item(pid, ann)["item_id"] == order[4]  # the next chunk, in order
    assert store.lease_next_item(pid, other)["item_id"] == order[0]  # others still start at the top


def test_partly_labeled_items_keep_their_rank_and_a_bad_ranking_changes_nothing(store):
    pid = _pool_project(store, 6)
    ann = store.add_annotator("ann")
    store.set_ranking(pid, [5, 4, 3, 2, 1, 0])
    store.submit_label(pid, 5, ann, 1)
    store.set_ranking(pid, [0, 1, 2, 3, 4])
    assert _ranked(store, pid) == {5: 0, 0: 0, 1: 1, 2: 2, 3: 3, 4: 4}
    with pytest.raises(ValueError, match="names an item twice"):
        store.set_ranking(pid, [0, 0, 1])
    with pytest.raises(ValueError, match="2 item ids but 1 scores"):
        store.set_ranking(pid, [0, 1], [0.5])
    assert store.ranking(pid)["version"] == 2 and _ranked(store, pid)[4] == 4


def _write_transactions(store, action) -> list[list[str]]:
    """The write transactions ``action()`` commits on the store's connection, each as its statements."""
    transactions: list[list[str]] = []
    current: list[str] = []

    def trace(sql: str) -> None:
        if sql.startswith("BEGIN IMMEDIATE"):
            current.clear()
        elif sql == "COMMIT":
            transactions.append(list(current))
        else:
            current.append(sql[:120])

    store._db.conn.set_trace_callback(trace)
    try:
        action()
    finally:
        store._db.conn.set_trace_callback(None)
    return transactions


def test_a_re_rank_of_a_large_pool_holds_the_lock_for_one_chunk_at_a_time(tmp_path):
    """200,000 pool items: the order is written one chunk per transaction before it becomes the ranking,
    and the transaction that makes it current writes only the head's ranks; the stored order is
    complete, and the old order is deleted."""
    n = 200_000
    with Store(tmp_path / "big.db") as store:
        pid = _pool_project(store, n)
        order = np.random.default_rng(2).permutation(n)
        store.set_ranking(pid, order, np.linspace(1, 0, n))
        ids, scores = store.check_ranking(pid, order[::-1], np.linspace(0, 1, n))
        transactions = _write_transactions(store, lambda: store.set_ranking(pid, ids, scores))
        chunks = -(-n // store.order_chunk)
        # the new order's row with its first chunk, one per further chunk, the swap, then the old
        # order's delete, a chunk at a time
        assert len(transactions) == 2 * chunks + 2
        assert [sum("INSERT INTO ranking_chunks" in sql for sql in t) for t in transactions] == (
            [1] * chunks + [0] * (chunks + 2))
        assert [sum("DELETE FROM ranking_chunks" in sql for sql in t) for t in transactions] == (
            [0] * (chunks + 1) + [1] * chunks + [0])
        swap = transactions[chunks]
        assert sum(sql.startswith("UPDATE items SET rank") for sql in swap) == store.queue_chunk + 1  # clear + head
        assert not any("ranking_chunks" in sql for sql in swap)
        assert len(_ranked(store, pid)) == store.queue_chunk
        stored = store.ranking(pid)
        np.testing.assert_array_equal(stored["item_ids"], order[::-1])
        np.testing.assert_allclose(stored["scores"], np.linspace(0, 1, n).astype(np.float32))
        assert store._tuples("SELECT COUNT(*) FROM ranking_orders")[0][0] == 1
        assert store._tuples("SELECT COUNT(*) FROM ranking_chunks")[0][0] == chunks
        start = time.process_time()
        with store.transaction():  # what the swap itself costs, for an order staged already
            store._swap_ranking(pid, store._stage_order(pid, ids[:store.queue_chunk], None))
        assert time.process_time() - start < 0.5


def test_an_order_staged_but_never_made_current_is_invisible_and_cleaned_up(store, monkeypatch):
    """A writer that stops after writing part of an order (killed mid-way) changes nothing readers see;
    its rows are deleted once stale. An order deleted by another writer's clean-up before its swap is
    written again inside the swap."""
    from fairal.store import rankings

    pid = _pool_project(store, 30)
    store.order_chunk = 7
    store.set_ranking(pid, np.arange(30))

    store._stage_order(pid, np.arange(30)[::-1][:14], None)  # what a writer killed after two chunks leaves:
    store._db.execute("UPDATE ranking_orders SET complete = 0 WHERE id = (SELECT MAX(id) FROM ranking_orders)")
    store._db.conn.commit()  # its row, not complete, and two chunks
    np.testing.assert_array_equal(store.ranking(pid)["item_ids"], np.arange(30))
    store.set_ranking(pid, np.arange(30))  # a fresh (not stale) unfinished order is left alone...
    assert store._tuples("SELECT COUNT(*) FROM ranking_orders WHERE complete = 0")[0][0] == 1
    monkeypatch.setattr(rankings, "STALE_ORDER", rankings.timedelta(0))
    store.set_ranking(pid, np.arange(30)[::-1])  # ...until it is stale
    assert store._tuples("SELECT COUNT(*) FROM ranking_orders")[0][0] == 1
    np.testing.assert_array_equal(store.ranking(pid)["item_ids"], np.arange(30)[::-1])

    staged = store._stage_order(pid, *store.check_ranking(pid, np.arange(30), np.linspace(0, 1, 30)))
    store.set_ranking(pid, np.arange(30)[::-1])  # another writer's ranking goes in and cleans up...
    store._db.execute("DELETE FROM ranking_orders WHERE id = ?", [staged.order_id])  # ...this one too
    store._db.conn.commit()
    with store.transaction():
        version = store._swap_ranking(pid, staged)
    stored = store.ranking(pid)
    assert stored["version"] == version and stored["order_id"] != staged.order_id
    np.testing.assert_array_equal(stored["item_ids"], np.arange(30))
    np.testing.assert_allclose(stored["scores"], np.linspace(0, 1, 30))


def test_a_project_queues_in_its_strategys_order_across_retrains(store):
    pid = create_project(store, ProjectSettings(name="g", dataset="german", budget=30, n_initial=20))
    store.queue_chunk = 5
    session = LabelingSession(store, pid, "ann")
    for _ in range(3):
        item = session.next_item()
        stored = store.ranking(pid)
        assert item.item_id == stored["item_ids"][0] and item.rank == 0
        session.submit(item.item_id, 1)
        assert store.ranking(pid)["version"] == stored["version"] + 1  # entropy re-ranks after each label


def test_item_ids_beyond_int32_keep_their_order(store):
    """Ids that fit in int32 are stored in 4 bytes (less to write under the lock); larger ones in 8."""
    big = [2**40 + i for i in range(6)]
    pid = store.create_project(name="b", dataset="d", label_column="y", sensitive="s", split_seed=0,
                               strategy="random", trainers=["erm"], budget=6,
                               metric="demographic_parity_difference", threshold=0.1, label_values=[0, 1],
                               config={}, items=[{"item_id": i, "role": "pool"} for i in big])
    store.queue_chunk = 2
    ann = store.add_annotator("ann")
    store.set_ranking(pid, big[::-1])
    np.testing.assert_array_equal(store.ranking(pid)["item_ids"], big[::-1])
    taken = []
    while (row := store.lease_next_item(pid, ann)) is not None:
        taken.append(row["item_id"])
        store.submit_label(pid, row["item_id"], ann, 1)
    assert taken == big[::-1]


def _statements(store, action) -> list[str]:
    """The SQL statements ``action()`` sends to the store's connection."""
    sent: list[str] = []
    store._db.conn.set_trace_callback(sent.append)
    try:
        action()
    finally:
        store._db.conn.set_trace_callback(None)
    return sent


def test_a_ranking_is_checked_against_the_pool_read_once_per_connection(tmp_path):
    """Every check refuses ids outside the pool (another role, or no item) and repeated ids; the pool is
    read from the database at the first check only (a project's items never change)."""
    with Store(tmp_path / "f.db") as store:
        pid = store.create_project(name="p", dataset="d", label_column="y", sensitive="s", split_seed=0,
                                   strategy="random", trainers=["erm"], budget=5,
                                   metric="demographic_parity_difference", threshold=0.1, label_values=[0, 1],
                                   config={}, items=[{"item_id": i, "role": "pool" if i < 6 else "test"}
                                                     for i in range(9)])
        first = _statements(store, lambda: store.check_ranking(pid, [5, 4, 3, 2, 1, 0]))
        assert any("FROM items" in sql for sql in first)
        refused = []

        def check_bad_ones():
            for bad in ([0, 7], [0, 99], [3, 1, 3]):
                with pytest.raises((NotFoundError, ValueError)) as error:
                    store.check_ranking(pid, bad)
                refused.append(str(error.value))

        assert not any("FROM items" in sql for sql in _statements(store, check_bad_ones))
        assert refused == [f"items [7] are not pool items of project {pid}",
                           f"items [99] are not pool items of project {pid}",
                           f"a ranking of project {pid} names an item twice"]
        ids, _ = store.check_ranking(pid, np.array([2, 0, 1]))
        np.testing.assert_array_equal(ids, [2, 0, 1])
        with Store(tmp_path / "f.db") as other:  # another connection (another process) reads it afresh
            with pytest.raises(NotFoundError, match=r"items \[6\] are not pool items"):
                other.check_ranking(pid, [6])


def test_a_pool_read_inside_a_rolled_back_transaction_is_not_kept(store):
    """A project created and checked in a transaction that rolls back leaves no pool behind: its id
    goes to the next project, whose own pool is checked."""
    make = dict(dataset="d", label_column="y", sensitive="s", split_seed=0, strategy="random", trainers=["erm"],
                budget=3, metric="demographic_parity_difference", threshold=0.1, label_values=[0, 1], config={})
    with pytest.raises(RuntimeError, match="abandoned"):
        with store.transaction():
            pid = store.create_project(name="a", items=[{"item_id": i, "role": "pool"} for i in range(3)], **make)
            store.check_ranking(pid, [0, 1, 2])
            raise RuntimeError("abandoned")
    again = store.create_project(name="b", items=[{"item_id": i, "role": "pool"} for i in (10, 11, 12)], **make)
    assert again == pid
    with pytest.raises(NotFoundError, match=r"items \[0\] are not pool items"):
        store.check_ranking(again, [0])
    assert store.check_ranking(again, [12, 10])[0].tolist() == [12, 10]


def test_a_re_rank_is_on_disk_when_it_returns_and_leaves_every_other_commit_synchronous(tmp_path):
    """The ranking's transactions commit without waiting for the disk; set_ranking syncs and
    checkpoints the log after them, outside the lock; the connection's other commits (an annotator's
    label) still wait for the disk, also after a failed bulk write."""
    path = tmp_path / "f.db"
    with Store(path) as store:
        pid = _pool_project(store, 300)
        store.order_chunk = 64
        store.set_ranking(pid, np.arange(300)[::-1], np.linspace(0, 1, 300))

        def pragmas():
            return store._tuples("PRAGMA synchronous")[0][0], store._tuples("PRAGMA wal_autocheckpoint")[0][0]

        assert pragmas() == (2, 1000)  # FULL, SQLite's default threshold
        shutil.copy(path, tmp_path / "file-alone.db")  # the database file without its write-ahead log
        with sqlite3.connect(tmp_path / "file-alone.db") as alone:
            assert alone.execute("SELECT version FROM rankings").fetchall() == [(1,)]
            assert alone.execute("SELECT item_id FROM items WHERE rank = 0").fetchall() == [(299,)]
        with pytest.raises(RuntimeError, match="disk on fire"):
            with store._write(sync=False):
                store._db.execute("UPDATE items SET rank = 7 WHERE item_id = 0")
                raise RuntimeError("disk on fire")
        assert pragmas() == (2, 1000)
        assert _ranked(store, pid)[299] == 0 and 0 not in _ranked(store, pid)
