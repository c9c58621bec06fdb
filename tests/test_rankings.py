"""A pool's ranking is one versioned object; only its head is written into ``items.rank``."""

from __future__ import annotations

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
    assert store.set_ranking(pid, order[::-1]) == 2  # a re-rank replaces the head, scores optional
    assert _ranked(store, pid) == {int(item): n for n, item in enumerate(order[::-1][:10])}
    assert store.ranking(pid)["scores"] is None


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


def test_a_re_rank_of_a_large_pool_writes_only_the_head(tmp_path):
    """200,000 pool items: a re-rank holds the write lock for the head's rows and one blob, not for
    every item; the stored order is complete."""
    n = 200_000
    with Store(tmp_path / "big.db") as store:
        pid = _pool_project(store, n)
        order = np.random.default_rng(2).permutation(n)
        store.set_ranking(pid, order, np.linspace(1, 0, n))
        ids, scores = store.check_ranking(pid, order[::-1], np.linspace(0, 1, n))
        start = time.process_time()
        store._replace_ranking(pid, ids, scores)  # what runs under the write lock
        cpu = time.process_time() - start
        assert len(_ranked(store, pid)) == store.queue_chunk
        np.testing.assert_array_equal(store.ranking(pid)["item_ids"], order[::-1])
        assert cpu < 0.5  # the head only (rewriting 200,000 ranks took about 2.8 s of CPU here)


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
