"""How long a re-rank holds the store's write lock, before and after rankings became versioned objects.

A project of N pool items (N = a quarter of the rows, as in benchmarks/scale.py) gets a new ranking
of every pool item. "before": every pool item's rank rewritten (what ``set_ranking`` did until
2026-11-26); "after": :meth:`fairal.store.Store._replace_ranking`, the part of ``set_ranking`` that
runs under the write lock (the ranking's blob plus the ranks of its head, ``queue_chunk`` items).
Also the time for a lease that has to rank the next chunk (:meth:`extend_queue`).

    PYTHONPATH=. python benchmarks/ranking_lock.py [--pools 2500 25000 250000] [--repeats 5]
"""

from __future__ import annotations

import argparse
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


def measure(n: int, repeats: int, folder: Path) -> dict:
    with Store(folder / f"pool{n}.db") as store:
        pid = store.create_project(
            name="p", dataset="d", label_column="y", sensitive="s", split_seed=0, strategy="entropy",
            trainers=["erm"], budget=400, metric="demographic_parity_difference", threshold=0.1,
            label_values=[0, 1], config={}, items=[{"item_id": i, "role": "pool"} for i in range(n)])
        rng = np.random.default_rng(0)

        def before():
            order, scores = rng.permutation(n), rng.random(n)
            with store._write():
                store._db.conn.executemany("UPDATE items SET rank = ?, score = ? WHERE project_id = ? AND item_id = ?",
                                           [(r, s, pid, i) for r, (i, s) in enumerate(zip(order.tolist(), scores.tolist()))])

        checked = [store.check_ranking(pid, rng.permutation(n), rng.random(n)) for _ in range(repeats)]

        def after():
            store._replace_ranking(pid, *checked.pop())

        old = _timed(before, repeats)
        with store._write():  # clear the full ranks "before" left, as the first versioned re-rank of an old file does
            store._db.execute("UPDATE items SET rank = NULL, score = NULL WHERE project_id = ?", [pid])
        new = _timed(after, repeats)
        check = _timed(lambda: store.check_ranking(pid, rng.permutation(n), rng.random(n)), repeats)

        def extend():
            store._replace_ranking(pid, *store.check_ranking(pid, rng.permutation(n)))
            store.extend_queue(pid)
        store._replace_ranking(pid, *store.check_ranking(pid, rng.permutation(n)))
        ext = _timed(lambda: store.extend_queue(pid), min(repeats, max(1, n // store.queue_chunk - 1)))
    return {"pool": n, "before_wall": old[0], "before_cpu": old[1], "after_wall": new[0], "after_cpu": new[1],
            "check_wall": check[0], "check_cpu": check[1], "extend_wall": ext[0], "extend_cpu": ext[1]}


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
             f"--repeats {args.repeats}`; median of {args.repeats}; file store (WAL); "
             f"queue head = {Store.queue_chunk} items. Wall / CPU seconds.", "",
             "| pool items | before: every rank rewritten | after: blob + head (under the lock) "
             "| check, before the lock | lease that ranks the next chunk |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pool']:,} | {r['before_wall']:.3f} / {r['before_cpu']:.3f} | "
                     f"{r['after_wall']:.4f} / {r['after_cpu']:.4f} | {r['check_wall']:.3f} / {r['check_cpu']:.3f} | "
                     f"{r['extend_wall']:.4f} / {r['extend_cpu']:.4f} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
