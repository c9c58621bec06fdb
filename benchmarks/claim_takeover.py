"""A worker SIGKILLed while it trains: how soon does the next worker catch up? (issue 12, item 6)

1. A German project with trainers erm and forml in a temporary database; labels by the library.
2. ``python -m fairal worker`` (started as the app starts it, ``ensure_worker``); once it holds the
   claim of a trainer (mid-fit), it is SIGKILLed: the claim stays, with a fresh heartbeat.
3. One more label, a new worker; the clock runs from the kill until every trainer has a version
   trained on the newest label.

Before issue 12 the claim was taken over only once stale (120 s); now the new worker sees the
claim's process is gone and takes it at once.   PYTHONPATH=. python benchmarks/claim_takeover.py
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fairal.labeling import LabelingSession
from fairal.projects import ProjectSettings, create_project
from fairal.retrainer import ensure_worker, lock_path, stop_worker, worker_running
from fairal.store import Store

OUT = Path(__file__).resolve().parent / "results" / "claim_takeover.md"
TRAINERS = ("erm", "forml")


def label(store, n: int) -> None:
    session = LabelingSession(store, 1, "ann", retrain=False)
    data = session.project.dataset
    for _ in range(n):
        item = session.next_item()
        session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))


def caught_up(store) -> bool:
    seq = store.label_seq(1)
    for trainer in TRAINERS:
        latest = store.latest_model_version(1, trainer)
        if latest is None or (latest["info"] or {}).get("label_seq", -1) < seq:
            return False
    return True


def run_once(folder: Path, victim: str) -> float:
    db = folder / f"{victim}.db"
    with Store(db) as store:
        create_project(store, ProjectSettings(name="german", dataset="german", budget=200, n_initial=20,
                                              trainers=TRAINERS))
    ensure_worker(db)
    pid = int(lock_path(db).read_text())
    with Store(db) as store:
        for _ in range(200):  # label until the worker is caught mid-fit of the victim trainer
            label(store, 1)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(c["trainer"] == victim for c in store.training_claims(1)):
                    break
                time.sleep(0.005)
            else:
                continue
            break
        os.kill(pid, signal.SIGKILL)
        killed = time.perf_counter()
        while worker_running(db):  # the OS releases the dead worker's lock
            time.sleep(0.01)
        assert any(c["trainer"] == victim for c in store.training_claims(1)), "the claim was not left behind"
        label(store, 1)
        ensure_worker(db)
        while not caught_up(store):
            time.sleep(0.05)
        wall = time.perf_counter() - killed
    stop_worker(db)
    return wall


def main() -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    cpu0, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for victim in TRAINERS:
            wall = run_once(Path(tmp), victim)
            rows.append(f"| {victim} | {wall:.1f} s |")
            print(rows[-1], file=sys.stderr)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    lines = ["# A SIGKILLed worker's claim (issue 12, item 6)", "",
             f"Command: `PYTHONPATH=. python benchmarks/claim_takeover.py` at commit {head}; 2 shared CPU cores. "
             "Kill during the named trainer's fit → every trainer (erm, forml) trained on the newest label by the "
             "next worker. Wall includes the new worker's start (Python, torch imports) and both fits.", "",
             "| killed while training | kill → caught up (wall) |", "|---|---|", *rows, "",
             f"Whole script: {time.perf_counter() - start:.0f} s wall, {cpu:.0f} s CPU in this process (project "
             "creation, labels; the workers are separate processes).", "",
             "Before: the claim was taken over only once stale (`STALE_CLAIM_SECONDS` = 120 s): the issue's probe "
             "measured 133 s for FORML, 9 s for ERM; this script on 7d4970b (the code before the change; FORML "
             "only) measured 129.9 s."]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
