"""How long a re-rank holds the store's write lock: every rank rewritten, one blob, or chunks.

A project of N pool items (N = a quarter of the rows, as in benchmarks/scale.py) gets a new ranking
of every pool item; each figure is the time from BEGIN IMMEDIATE to the end of COMMIT, the time
another writer (an annotator's key press) can wait.
- "every rank": every pool item's rank rewritten in one transaction (schema versions up to 6);
- "one blob": the whole order as one blob and 500 head ranks in one transaction that waits for the
  disk (versions 7-9; replayed here with the same statements into a scratch table);
- "chunks": :meth:`fairal.store.Store.set_ranking` now (version 10): the order in chunks of
  ``order_chunk`` items, one transaction each, then a swap that ranks ``queue_chunk`` items, then
  the old order deleted a chunk at a time, none waiting for the disk; the longest of these
  transactions, and the whole call (with the sync and checkpoint after them, outside the lock).
Also the time for a lease that has to rank the next chunk (:meth:`extend_queue`).

    PYTHONPATH=. python benchmarks/ranking_lock.py [--pools 2500 25000 250000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np

from fairal.store import Store


def _timed(action, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``action()``."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


def _transactions(store):
    """Wrap ``store._write`` so that each outermost transaction's wall time is appended to a list."""
    held: list[float] = []
    write = store._write

    @contextlib.contextmanager
    def timed(**kwargs):
        outer = store._db.conn.in_transaction
        start = time.perf_counter()
        with write(**kwargs):
            yield
        if not outer:
            held.append(time.perf_counter() - start)

    store._write = timed
    return held


def measure(n: int, repeats: int, folder: Path) -> dict:
    with Store(folder / f"pool{n}.db") as store:
        pid = store.create_project(
            name="p", dataset="d", label_column="y", sensitive="s", split_seed=0, strategy="entropy",
            trainers=["erm"], budget=400, metric="demographic_parity_difference", threshold=0.1,
            label_values=[0, 1], config={}, items=[{"item_id": i, "role": "pool"} for i in range(n)])
        rng = np.random.default_rng(0)

        def every_rank():
            order, scores = rng.permutation(n), rng.random(n)
            with store._write():
                store._db.conn.executemany("UPDATE items SET rank = ?, score = ? WHERE project_id = ? AND item_id = ?",
                                           [(r, s, pid, i) for r, (i, s) in enumerate(zip(order.tolist(), scores.tolist()))])

        store._db.execute("CREATE TABLE bench_blob (project_id INTEGER PRIMARY KEY, item_ids BLOB, scores BLOB)")
        store._db.conn.commit()

        def one_blob():  # the statements of versions 7-9's _replace_ranking, 500 head ranks
            ids, scores = rng.permutation(n).astype(np.int32), rng.random(n).astype(np.float32)
            with store._write():
                store._db.execute("UPDATE items SET rank = NULL, score = NULL WHERE project_id = ? AND role = 'pool' "
                                  "AND rank IS NOT NULL", [pid])
                store._db.conn.executemany(
                    "UPDATE items SET rank = ?, score = ? WHERE project_id = ? AND item_id = ?",
                    [(r, float(s), pid, int(i)) for r, (i, s) in enumerate(zip(ids[:500], scores[:500]))])
                store._db.execute("INSERT OR REPLACE INTO bench_blob VALUES (?, ?, ?)", [pid, ids.tobytes(), scores.tobytes()])

        checked = [store.check_ranking(pid, rng.permutation(n), rng.random(n)) for _ in range(repeats)]
        old = _timed(every_rank, repeats)
        with store._write():  # clear the full ranks "every rank" left
            store._db.execute("UPDATE items SET rank = NULL, score = NULL WHERE project_id = ?", [pid])
        blob = _timed(one_blob, repeats)
        with store._write():
            store._db.execute("UPDATE items SET rank = NULL, score = NULL WHERE project_id = ?", [pid])
        held = _transactions(store)
        longest, whole, count = [], [], []
        for ranking in checked:
            held.clear()
            start = time.perf_counter()
            store.set_ranking(pid, *ranking)
            whole.append(time.perf_counter() - start)
            longest.append(max(held))
            count.append(len(held))
        check = _timed(lambda: store.check_ranking(pid, rng.permutation(n), rng.random(n)), repeats)
        store.set_ranking(pid, rng.permutation(n))
        ext = _timed(lambda: store.extend_queue(pid), min(repeats, max(1, n // store.queue_chunk - 1)))
    return {"pool": n, "every_wall": old[0], "every_cpu": old[1], "blob_wall": blob[0], "blob_cpu": blob[1],
            "longest_wall": float(np.median(longest)), "whole_wall": float(np.median(whole)),
            "transactions": int(np.median(count)), "check_wall": check[0], "check_cpu": check[1], "extend_wall": ext[0],
            "extend_cpu": ext[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[2_500, 25_000, 250_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ranking_lock.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(n, args.repeats, Path(folder)) for n in args.pools]
    lines = ["# A re-rank's time under the write lock", "",
             f"`PYTHONPATH=. python benchmarks/ranking_lock.py --pools {' '.join(map(str, args.pools))} "
             f"--repeats {args.repeats}`; median of {args.repeats}; file store (WAL); queue head = "
             f"{Store.queue_chunk} items, order chunks of {Store.order_chunk:,} items. Seconds, wall / CPU "
             "where both are given; how these are measured: the script's docstring.", "",
             "| pool items | every rank (≤ v6) | one blob + 500 head ranks (v7-9) | chunks (v10): longest "
             "transaction | chunks: whole call, wall (transactions) | check, before the lock "
             "| lease that ranks the next chunk |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pool']:,} | {r['every_wall']:.3f} / {r['every_cpu']:.3f} | "
                     f"{r['blob_wall']:.4f} / {r['blob_cpu']:.4f} | {r['longest_wall']:.4f} | "
                     f"{r['whole_wall']:.4f} ({r['transactions']}) | {r['check_wall']:.3f} / {r['check_cpu']:.3f} | "
                     f"{r['extend_wall']:.4f} / {r['extend_cpu']:.4f} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
