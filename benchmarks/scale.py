"""Scale: the cost of each step of a project as the data grows (issue 13's table).

Adult rows resampled (with replacement, seeded) to each size in ``--sizes``; the pool is a quarter
of the rows (PANDA's split). Each size runs in its own process, so its peak memory (ru_maxrss)
is its own. Steps, each with wall and CPU time (process CPU: user + system, all threads):

- **panda_rank**: PANDA ranks the pool with the shipped full-attention policy (``--context full``)
  and with the automatic choice (``auto``: full attention up to the policy's trained pool size,
  random context blocks above; see :mod:`fairal.panda.strategy`).
- **create**: CSV bytes → project (parse, encode, split, store items, first ERM model + entropy
  ranking), as the Setup page does.
- **open_cold**: :func:`fairal.projects.open_project` in a fresh process state (no parsed-CSV cache).
- **open_new_process**: the same in a new Python process that has imported fairal but opened
  nothing yet (what a worker or app process pays on its first look at the project: first uses of
  pyarrow's Parquet reader and the like included, imports not).
- **submit**: one label through :class:`fairal.labeling.LabelingSession` with inline retraining
  (ERM retrain + curve point + entropy re-rank of the pool); median of 3.
- **set_ranking**: the store rewrites every pool item's rank.
- **label_during_rerank**: an annotator's key press (submit the answer, then lease the next item:
  what the Label page does with a background worker) while ``python -m fairal worker`` (its own
  process, no debounce) retrains ERM and re-ranks the pool after the labels; p50 / p95 / max of
  wall and CPU time per key press over :data:`RERANK_LABELS` labels, and how many re-ranks the
  worker stored meanwhile. **label_alone**: the same presses just before, with no worker running
  (what the machine and the disk give without the worker).
- peak memory of the size's process (and up to the end of ``create``: creation's own peak when no
  panda_rank step ran before it in that process), database size (plus its array folder) after creation.

The growth exponent of a step is the slope of log(time) against log(rows) between the two largest
sizes measured, of wall time and of CPU time (on the shared machine, CPU time is the steadier one).

    PYTHONPATH=. nice -n 10 python benchmarks/scale.py --sizes 10000,100000 [--out FILE] [--steps panda_rank,...]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results" / "scale.md"
STEPS = ("panda_rank_full", "panda_rank_auto", "create", "open_cold", "open_new_process", "submit", "set_ranking",
         "label_during_rerank")
#: Rows of the table that a step adds besides its own (label_during_rerank times presses without a worker too).
EXTRA_ROWS = {"label_during_rerank": ("label_alone",)}
#: label_during_rerank: how many labels the annotator gives, and the pause between them (reading the item).
RERANK_LABELS, RERANK_PAUSE = 60, 0.2


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start) -> dict:
    wall, cpu = start
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def _adult_csv(n: int, seed: int = 0) -> bytes:
    from fairal.datasets._builtin import _adult_frame

    frame = _adult_frame()
    rows = np.random.default_rng(seed).integers(0, len(frame), size=n)
    return frame.iloc[rows].reset_index(drop=True).to_csv(index=False).encode()


def _panda_rank(n: int, context: str) -> dict:
    from fairal.datasets import load
    from fairal.panda.strategy import PandaSampling

    data = load("adult", sensitive="sex")
    rows = np.random.default_rng(1).integers(0, len(data), size=n)
    X, groups = data.X[rows], data.group[rows]
    pool = np.arange(0, n, 4)
    try:
        strategy = PandaSampling(random_state=0, context=context)
    except TypeError:  # a fairal from before the context option: full attention only
        strategy = PandaSampling(random_state=0)
    strategy.trained_policy()  # loading the file is not ranking
    start = _clock()
    strategy.rank(None, X, pool, groups=groups)
    describe = getattr(strategy, "describe", lambda n=None: "full attention")
    return {**_since(start), "scheme": describe(len(pool))}


def _project_steps(n: int, steps: set[str]) -> dict:
    from fairal import projects
    from fairal.labeling import LabelingSession
    from fairal.projects import CsvSource, ProjectSettings, create_project, open_project
    from fairal.store import Store

    out: dict = {}
    data = _adult_csv(n)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "fairal.db"
        with Store(db) as store:
            start = _clock()
            pid = create_project(store, ProjectSettings(name="scale", strategy="entropy", trainers=("erm",),
                                                        budget=1000),
                                 csv=CsvSource(data=data, label="income", sensitive="sex",
                                               filename=f"adult{n}.csv"))
            out["create"] = _since(start)
            out["create_peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # so far in this process
        del data
        out["db_mb"] = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6
        projects._csv_dataset.cache_clear()
        try:
            from fairal.project_arrays import read_arrays

            read_arrays.cache_clear()
        except ImportError:  # a fairal from before kept arrays
            pass
        with Store(db) as store:
            start = _clock()
            project = open_project(store, pid)
            out["open_cold"] = _since(start)
            if "open_new_process" in steps:
                out["open_new_process"] = _open_in_new_process(db, pid)
            if "submit" in steps:
                session = LabelingSession(store, pid, "bench", project=project)
                times = []
                for _ in range(3):
                    item = session.next_item()
                    truth = int(project.dataset.y[project.dataset.positions([item.item_id])[0]])
                    start = _clock()
                    session.submit(item.item_id, truth)
                    times.append(_since(start))
                out["submit"] = sorted(times, key=lambda t: t["wall"])[1]
            if "label_during_rerank" in steps:
                out.update(_label_during_rerank(db, store, pid, project))
            if "set_ranking" in steps:
                pool = store.item_ids(pid, "pool")[::-1]
                new_api = "scores" in inspect.signature(store.set_ranking).parameters  # (ids, scores): rankings.py
                ranking = (pool, -np.arange(len(pool), dtype=float)) if new_api else (
                    [(item, rank, float(-rank)) for rank, item in enumerate(pool)],)
                start = _clock()
                store.set_ranking(pid, *ranking)
                out["set_ranking"] = _since(start)
    return out


_OPEN = """
import json, sys, time
from fairal.projects import open_project
from fairal.store import Store
with Store(sys.argv[1]) as store:
    wall, cpu = time.perf_counter(), time.process_time()
    open_project(store, int(sys.argv[2]))
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


def _open_in_new_process(db: Path, pid: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _OPEN, str(db), str(pid)], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worker_reranks(store, pid: int, after: int, timeout: float) -> int:
    """The ranking's version once it is past ``after`` (the worker re-ranked), waiting up to ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        version = (store.ranking(pid) or {}).get("version", 0)
        if version > after:
            return version
        time.sleep(0.05)
    raise RuntimeError(f"the worker did not re-rank within {timeout:.0f} s")


def _presses(store, pid: int, session, truth: dict, item):
    """:data:`RERANK_LABELS` key presses (answer ``item``, lease the next), each timed, with whether a
    new ranking was stored during it; returns (timings, the item left in front of the annotator)."""
    times = []
    for _ in range(RERANK_LABELS):
        time.sleep(RERANK_PAUSE)
        before = (store.ranking(pid) or {}).get("version", 0)  # (outside the timing)
        start = _clock()
        session.submit(item.item_id, truth[item.item_id])
        item = session.next_item()
        times.append({**_since(start), "rerank": (store.ranking(pid) or {}).get("version", 0) > before})
    return times, item


def _press_stats(times: list[dict]) -> dict:
    wall, cpu = (np.array([t[k] for t in times]) for k in ("wall", "cpu"))
    slow = [t for t in times if t["wall"] > 0.020]
    return {"wall": float(np.percentile(wall, 95)), "cpu": float(np.percentile(cpu, 95)),
            "p50_wall": float(np.median(wall)), "p50_cpu": float(np.median(cpu)), "max_wall": float(wall.max()),
            "max_cpu": float(cpu.max()), "labels": len(times), "over_20ms": len(slow),
            "over_20ms_during_rerank_commit": sum(t["rerank"] for t in slow)}


def _label_during_rerank(db: Path, store, pid: int, project) -> dict:
    """Key presses (submit + next item) timed with no worker (``label_alone``), then while a worker
    process re-ranks after the labels (``label_during_rerank``)."""
    from fairal.labeling import LabelingSession

    session = LabelingSession(store, pid, "annotator", retrain=False, project=project)
    truth = {int(i): int(y) for i, y in zip(project.dataset.ids[project.pool], project.dataset.y[project.pool])}
    alone, item = _presses(store, pid, session, truth, session.next_item())
    worker = subprocess.Popen([sys.executable, "-m", "fairal", "worker", "--db", str(db), "--debounce", "0",
                               "--poll", "0.05"], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        first = _worker_reranks(store, pid, (store.ranking(pid) or {}).get("version", 0), 600)  # project opened
        during, item = _presses(store, pid, session, truth, item)
        reranks = (store.ranking(pid) or {}).get("version", 0) - first
    finally:
        worker.terminate()
        worker.wait(60)
    return {"label_alone": {**_press_stats(alone), "reranks": 0},
            "label_during_rerank": {**_press_stats(during), "reranks": int(reranks)}}


def one_size(n: int, steps: set[str]) -> dict:
    out: dict = {"rows": n}
    for context in ("full", "auto"):
        if f"panda_rank_{context}" in steps:
            out[f"panda_rank_{context}"] = _panda_rank(n, context)
    if steps - {"panda_rank_full", "panda_rank_auto"}:
        out.update(_project_steps(n, steps))
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    return out


def growth(sizes: list[int], walls: list[float]) -> tuple[float, float]:
    """(slope between the two largest sizes, least-squares slope over all) of log wall vs log rows."""
    x, y = np.log(sizes), np.log(np.maximum(walls, 1e-6))
    last = float((y[-1] - y[-2]) / (x[-1] - x[-2])) if len(x) > 1 else float("nan")
    fit = float(np.polyfit(x, y, 1)[0]) if len(x) > 1 else float("nan")
    return last, fit


def _fmt(t: dict | None) -> str:
    if not t:
        return "–"
    wall, cpu = t["wall"], t["cpu"]
    unit = (lambda s: f"{s * 1000:.0f} ms") if wall < 1 else (lambda s: f"{s:.2f} s")
    return f"{unit(wall)} ({unit(cpu)} CPU)"


def _press_note(step: str, n: int, c: dict) -> str:
    worker = (f"{c['reranks']} re-ranks stored by the worker meanwhile" if step == "label_during_rerank"
              else "no worker running")
    ms = {k: f"{c[k] * 1000:.1f} ms" for k in ("p50_wall", "p50_cpu", "wall", "cpu", "max_wall", "max_cpu")}
    return (f"- {step} at {n:,} rows: {c['labels']} key presses, {worker}; p50 {ms['p50_wall']} "
            f"({ms['p50_cpu']} CPU), p95 {ms['wall']} ({ms['cpu']} CPU), max {ms['max_wall']} ({ms['max_cpu']} CPU); "
            f"{c['over_20ms']} over 20 ms, {c['over_20ms_during_rerank_commit']} of them while a new ranking was stored")


def report(results: list[dict], command: str) -> str:
    sizes = [r["rows"] for r in results]
    head = "| step | " + " | ".join(f"{n:,} rows" for n in sizes) + " | growth, wall / CPU (two largest sizes) |"
    lines = [head, "|" + "---|" * (len(sizes) + 2)]
    notes: list[str] = []
    for step in [row for own in STEPS for row in (*EXTRA_ROWS.get(own, ()), own)]:
        cells = [r.get(step) for r in results]
        if not any(cells):
            continue
        name = step
        if step.startswith("panda_rank"):
            notes += [f"- {step} at {n:,} rows: {c['scheme']}" for n, c in zip(sizes, cells) if c]
        if step.startswith("label_"):
            name = f"{step} (p95)"
            notes += [_press_note(step, n, c) for n, c in zip(sizes, cells) if c]
        have = [(n, c["wall"], c["cpu"]) for n, c in zip(sizes, cells) if c]
        wall, cpu = (growth([h[0] for h in have], [h[i] for h in have])[0] for i in (1, 2))
        lines.append(f"| {name} | " + " | ".join(_fmt(c) for c in cells) + f" | n^{wall:.2f} / n^{cpu:.2f} |")
    for key, label in (("create_peak_gb", "peak memory at the end of create (GB)"), ("peak_gb", "peak memory (GB)"),
                       ("db_mb", "database + arrays after creation (MB)")):
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:.2f}" if key in r else "–" for r in results) + " | |")
    return (f"Command: `{command}` on {platform.machine()}, Python {platform.python_version()}; "
            "wall time with process CPU time (user + system, all threads) in brackets.\n\n" + "\n".join(lines) + "\n\n"
            + "\n".join(notes) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--out", default=str(OUT), help="markdown file to append the table to ('-': print only)")
    parser.add_argument("--title", default="", help="heading of this run in the output file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, JSON to stdout
    args = parser.parse_args(argv)
    owner = {extra: own for own, extras in EXTRA_ROWS.items() for extra in extras}  # label_alone: its step's row
    steps = {owner.get(step, step) for step in args.steps.split(",")}
    if unknown := steps - set(STEPS):
        parser.error(f"unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)} (or {', '.join(owner)})")
    args.steps = ",".join(step for step in STEPS if step in steps)
    if args.one:
        # An operator's limits on uploads (fairal.datasets) would refuse the 1M-row file; this is the operator.
        os.environ.setdefault("FAIRAL_MAX_CSV_BYTES", str(1 << 34))
        os.environ.setdefault("FAIRAL_MAX_CSV_ROWS", str(10**8))
        print("RESULT " + json.dumps(one_size(args.one, steps)))
        return
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--steps", args.steps],
                              capture_output=True, text=True, cwd=ROOT)
        line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode or not line:
            sys.exit(f"size {n} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(line[0][7:]))
        print(f"{n:,} rows: {json.dumps(results[-1])}", flush=True)
    text = report(results, "PYTHONPATH=. nice -n 10 python benchmarks/scale.py " + " ".join(argv or sys.argv[1:]))
    print(text)
    if args.out != "-":
        with open(args.out, "a") as out:
            out.write(f"\n## {args.title or time.strftime('%Y-%m-%d %H:%M')}\n\n{text}")


if __name__ == "__main__":
    main()
