"""A reduced Adult sweep through ``python -m fairal simulate``, serial and ``--backend ray``: same numbers?

The issue's sweep (5 methods × 6 trainers × 5 seeds, B = 400) is too heavy for the shared 2-core
machine twice over; this runs the same command line with fewer seeds and a smaller budget
(``--seeds``, ``--budget``), once serially and once on a local Ray (2 CPUs), each into a fresh output
folder, and compares every metric of every (method, trainer, seed, budget) row.

    PYTHONPATH=. nice -n 10 python benchmarks/ray_sweep.py [--seeds 2 --budget 50]   # writes results/ray_sweep.md
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ray_sweep.md"
METHODS = "random,entropy,margin,group_random,fairlearn"
LEARNERS = "erm,forml,irw,cvar,irwo,frtrain"
TIMES = ["select_seconds", "fit_seconds"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args, backend: str, out: Path) -> tuple[list[str], float, float]:
    command = [sys.executable, "-m", "fairal", "simulate", "--dataset", "adult", "--methods", METHODS,
               "--learner", LEARNERS, "--seeds", str(args.seeds), "--budget", str(args.budget), "--step",
               str(args.step), "--query-batch", str(args.step), "--backend", backend, "--out", str(out)]
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return command, time.perf_counter() - start, _children_cpu() - cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--step", type=int, default=25)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        lines, frames = [], {}
        for backend in ("serial", "ray"):
            command, wall, cpu = run(args, backend, Path(folder) / backend)
            frames[backend] = pd.read_csv(Path(folder) / backend / "simulation.csv")
            shown = " ".join(command[1:]).replace(folder + "/", "")
            lines.append(f"- `{shown}`: {wall:.0f} s wall, {cpu:.0f} s CPU (this process's children; Ray's "
                         "workers are counted only when they exit)")
    serial, ray = (frames[b].drop(columns=TIMES) for b in ("serial", "ray"))
    same = serial.equals(ray)
    runs = serial.groupby(["method", "trainer", "seed"]).ngroups
    text = ("# A reduced Adult sweep, serial and on Ray\n\n"
            f"Command: `PYTHONPATH=. nice -n 10 python benchmarks/ray_sweep.py {' '.join(argv or sys.argv[1:])}`\n\n"
            + "\n".join(lines) + "\n\n"
            f"{runs} runs ({METHODS} × {LEARNERS}; fairlearn has its own trainer), {args.seeds} seeds, budgets "
            f"0–{args.budget} every {args.step}: {len(serial)} rows. Every metric of every row identical "
            f"between the two backends: **{same}**.\n")
    if not same:
        diff = (serial.select_dtypes("number") - ray.select_dtypes("number")).abs().max()
        text += "\nLargest differences:\n\n" + diff[diff > 0].to_frame("max |Δ|").to_markdown() + "\n"
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
