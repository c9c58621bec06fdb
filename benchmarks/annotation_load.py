"""Many annotators at once, and SIGKILL mid-session (the annotation app issue's load and kill tests).

1. **Load**: ``--annotators`` (50) simulated annotators label one Adult project
   for ``--seconds`` (60) while the background worker retrains (ERM + FORML).
   Annotators are threads spread over ``--processes`` (5) processes, each
   with its own store connection, as many app sessions would be. Each one:
   next item → think (uniform 0.2–1.0 s) → submit the true label, recording the
   latency of "submit + next item" (what an annotator waits for between two
   items). Afterwards: every acknowledged submit must be in the store (lost
   labels), no item may have more answers than the overlap k, and the live
   leases must not exceed k per item either.
2. **Kill**: a worker and 4 annotator processes run; once 20 answers are in,
   ``--kill-after`` seconds later, all of them and a running Streamlit server get SIGKILL. Then the
   store is reopened: every acknowledged label must be there; a new worker
   catches up; the Streamlit server starts again and answers its health check.

    PYTHONPATH=. python benchmarks/annotation_load.py          # writes benchmarks/results/annotation_load.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fairal import auth  # noqa: E402
from fairal.labeling import LabelingSession  # noqa: E402
from fairal.projects import ProjectSettings, create_project  # noqa: E402
from fairal.store import Store  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "annotation_load.md"


def make_project(db: Path, *, overlap: int, annotators: int, trainers=("erm", "forml")) -> list[int]:
    with Store(db) as store:
        admin = auth.create_account(store, "admin", "admin-password", role="admin")
        pid = create_project(store, ProjectSettings(name="load", dataset="adult", strategy="random", budget=10_000,
                                                    trainers=trainers, overlap=overlap))
        ids = []
        for i in range(annotators):
            user = auth.create_account(store, f"a{i:02d}", "annotator-password", by=admin)
            store.add_member(pid, user.id)
            ids.append(user.id)
    return ids


def annotate(db: str, user_ids: list[int], seconds: float, acks: str, seed: int) -> None:
    """One process: a thread per annotator; appends JSON lines of acknowledged submits and latencies."""
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    out = open(acks, "a", buffering=1)

    def run(user_id: int) -> None:
        rng = np.random.default_rng([seed, user_id])
        with Store(db) as store:
            user = auth.user(store, user_id)
            session = LabelingSession(store, 1, user, retrain=False)
            data = session.project.dataset
            item = session.next_item()
            while item is not None and time.monotonic() < stop_at:
                time.sleep(rng.uniform(0.2, 1.0))  # reading the item
                value = int(data.y[data.positions([item.item_id])[0]])
                start, cpu = time.perf_counter(), time.thread_time()
                session.submit(item.item_id, value)
                acked = time.perf_counter()
                with lock:
                    out.write(json.dumps({"user": user_id, "item": item.item_id, "value": value}) + "\n")
                item = session.next_item()
                with lock:
                    out.write(json.dumps({"latency": time.perf_counter() - start, "submit": acked - start,
                                          "cpu": time.thread_time() - cpu}) + "\n")

    threads = [threading.Thread(target=run, args=(u,)) for u in user_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def read_acks(path: Path):
    acks, latencies, submits, cpus = [], [], [], []
    lines = path.read_text().splitlines() if path.exists() else []  # killed before the first answer
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a process killed mid-line
            continue
        if "item" in row:
            acks.append((row["user"], row["item"], row["value"]))
        else:
            latencies.append(row["latency"])
            submits.append(row["submit"])
            cpus.append(row.get("cpu", np.nan))
    return acks, np.array(latencies), np.array(submits), np.array(cpus)


def start_worker(db: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "fairal", "worker", "--db", str(db), "--debounce", "1",
                             "--max-wait", "5"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT)


def check_store(db: Path, acks, overlap: int) -> dict:
    with Store(db) as store:
        stored = {(r["annotator_id"], r["item_id"]): r["answer"] for r in store.answers(1)}
        lost = sum(1 for user, item, value in acks if stored.get((user, item)) != value)
        counts = store.answer_counts(1)
        leases = store.leases(1)
        live = {}
        for lease in leases:
            live[lease["item_id"]] = live.get(lease["item_id"], 0) + 1
        beyond = sum(1 for item, n in counts.items() if n > overlap)
        beyond_with_leases = sum(1 for item in set(counts) | set(live)
                                 if counts.get(item, 0) + live.get(item, 0) > overlap)
        versions = len(store.model_versions(1))
    return {"acknowledged": len(acks), "stored": len(stored), "lost": lost, "beyond_overlap": beyond,
            "beyond_overlap_with_leases": beyond_with_leases, "model_versions": versions}


def load_test(args, overlap: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "load.db"
        users = make_project(db, overlap=overlap, annotators=args.annotators)
        worker = start_worker(db)
        acks_path = Path(tmp) / "acks.jsonl"
        chunks = np.array_split(np.array(users), args.processes)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=annotate, args=(str(db), chunk.tolist(), args.seconds, str(acks_path), i))
                 for i, chunk in enumerate(chunks)]
        start = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - start
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        acks, latencies, submits, cpus = read_acks(acks_path)
        result = check_store(db, acks, overlap)
    return {"overlap": overlap, "annotators": args.annotators, "seconds": round(wall, 1), **result,
            "labels_per_second": round(len(acks) / wall, 1),
            "p50_ms": round(float(1e3 * np.percentile(latencies, 50)), 1),
            "p95_ms": round(float(1e3 * np.percentile(latencies, 95)), 1),
            "p99_ms": round(float(1e3 * np.percentile(latencies, 99)), 1),
            "submit_p95_ms": round(float(1e3 * np.percentile(submits, 95)), 1),
            # the annotator thread's own CPU time for the same request: the code's cost, without the
            # waits for a core or for the write lock that a loaded machine adds to the wall time
            "cpu_p50_ms": round(float(1e3 * np.nanpercentile(cpus, 50)), 1),
            "cpu_p95_ms": round(float(1e3 * np.nanpercentile(cpus, 95)), 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(db: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "FAIRAL_DB": str(db), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.port",
                             str(port), "--server.headless", "true"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def healthy(port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def kill_test(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "kill.db"
        users = make_project(db, overlap=1, annotators=8, trainers=("erm",))
        port = free_port()
        app = start_app(db, port)
        app_up = healthy(port)
        worker = start_worker(db)
        acks_path = Path(tmp) / "acks.jsonl"
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=annotate, args=(str(db), chunk.tolist(), 3600, str(acks_path), i))
                 for i, chunk in enumerate(np.array_split(np.array(users), 4))]
        for p in procs:
            p.start()
        deadline = time.monotonic() + 120  # let them get going (spawned processes import torch first)
        while time.monotonic() < deadline and len(read_acks(acks_path)[0]) < 20:
            time.sleep(0.5)
        time.sleep(args.kill_after)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        worker.send_signal(signal.SIGKILL)
        app.send_signal(signal.SIGKILL)
        for p in procs:
            p.join()
        worker.wait(10)
        app.wait(10)
        acks, _, _, _ = read_acks(acks_path)
        after = check_store(db, acks, 1)
        # restart: a new worker catches up, the app serves again
        worker = start_worker(db)
        caught_up, deadline = False, time.monotonic() + 60
        with Store(db) as store:
            while time.monotonic() < deadline and not caught_up:
                latest = store.latest_model_version(1, "erm")
                caught_up = latest["info"].get("label_seq") == store.label_seq(1)
                time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        app = start_app(db, port)
        app_back = healthy(port)
        app.send_signal(signal.SIGTERM)
        app.wait(30)
    return {**after, "app_served_before": app_up, "worker_caught_up_after_restart": caught_up,
            "app_served_after_restart": app_back}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-after", type=float, default=10)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    rows = [load_test(args, overlap) for overlap in (1, 3)]
    for row in rows:
        print(row, flush=True)
    kill = kill_test(args)
    print(kill, flush=True)
    import pandas as pd

    report = (
        "# Annotation load and kill tests\n\n"
        f"Command: `PYTHONPATH=. python benchmarks/annotation_load.py --annotators {args.annotators} "
        f"--seconds {args.seconds:g}` on {platform.machine()} ({os.cpu_count()} CPUs), file store, "
        "background worker retraining ERM + FORML on the Adult project throughout.\n\n"
        "## Load\n\n" + pd.DataFrame(rows).to_markdown(index=False) + "\n\n"
        "* latency = submit (commit the label) + next item (lease the next one), as an annotator waits "
        "between two items; think time 0.2–1.0 s per item. cpu = the annotator thread's own CPU time for "
        "that request (thread_time): the code's cost, apart from waiting for a core or the write lock.\n"
        "* lost = acknowledged submits missing from the store or with another value; beyond_overlap = items "
        "with more answers than k; with_leases adds live leases.\n\n"
        "## SIGKILL mid-session (annotators, worker and Streamlit server killed together)\n\n"
        + pd.DataFrame([kill]).to_markdown(index=False) + "\n"
    )
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
