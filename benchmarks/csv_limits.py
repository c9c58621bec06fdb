"""How fast and how small the CSV limits refuse a file, and the bad-input corpus's outcomes.

    PYTHONPATH=. python benchmarks/csv_limits.py            # writes benchmarks/results/csv_limits.md

Each measurement runs in a fresh Python process (so its peak memory is its own): wall and CPU time
of the call, and the process's peak resident memory (ru_maxrss) minus what it held before.
``--tree DIR`` measures another checkout (e.g. main before the limits) with the same files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROW = "{age},State-gov,Bachelors,{hours},{sex},{income}\n"
HEADER = "age,workclass,education,hours,sex,income\n"

MEASURE = r"""
import io, json, resource, sys, time
sys.path.insert(0, {tree!r})
from fairal.datasets import load_csv
path, mode = {path!r}, {mode!r}
source = path if mode == "path" else io.BytesIO(open(path, "rb").read())  # an upload is in memory already
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
wall, cpu = time.perf_counter(), time.process_time()
try:
    rows = len(load_csv(source, label="income", sensitive="sex"))
    outcome = f"loaded {{rows:,}} rows"
except Exception as error:
    outcome = f"refused: {{error}}"
print(json.dumps({{"outcome": outcome, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}}))
"""


def write_rows(path: Path, n: int) -> Path:
    block = "".join(ROW.format(age=20 + i % 50, hours=30 + i % 30, sex="FM"[i % 2], income=i // 2 % 2)
                    for i in range(100_000))
    with open(path, "w") as out:
        out.write(HEADER)
        for _ in range(n // 100_000):
            out.write(block)
        out.write(block[: block.index("\n", 0) + 1] * (n % 100_000))
    return path


def measure(tree: str, path: Path, mode: str) -> dict:
    code = MEASURE.format(tree=tree, path=str(path), mode=mode)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def corpus(tree: str) -> list[tuple[str, str]]:
    code = rf"""
import io, os, sys
sys.path.insert(0, {tree!r}); sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "tests")!r})
os.environ["FAIRAL_MAX_CSV_BYTES"], os.environ["FAIRAL_MAX_CSV_ROWS"] = "6000", "300"
import fairal.datasets as d
for name in ("csv_limits", "read_csv_table"):  # a tree before the limits lacks them; the corpus does not use them
    setattr(d, name, getattr(d, name, None))
import test_csv_corpus as c
from fairal.datasets import load_csv
for case in c.CASES:
    try:
        n = len(load_csv(io.BytesIO(case.content), **{{"label": "y", "sensitive": "group", **case.options}}))
        got = f"loaded {{n}} rows"
    except Exception as error:
        got = f"refused: {{type(error).__name__}}: {{str(error)[:110]}}"
    want = "loads" if case.refused is None else "refused"
    print(case.name + "\t" + want + "\t" + got.replace("\n", " ").replace("|", "/"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [tuple(line.split("\t")) for line in done.stdout.splitlines() if "\t" in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--before", help="a checkout of main before the limits, measured beside it")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "csv_limits.md"))
    args = parser.parse_args()
    lines = ["# CSV limits and the bad-input corpus", "",
             "`PYTHONPATH=. python benchmarks/csv_limits.py" + (" --before DIR" if args.before else "") + "`",
             "(each call in a fresh process; peak = the process's peak resident memory above its start).", "",
             "| file | how | tree | outcome | wall s | CPU s | peak MiB |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        big = write_rows(Path(folder) / "big.csv", 4_000_000)
        rows = write_rows(Path(folder) / "rows.csv", 3_200_000)  # under the size limit, over the row limit
        many = write_rows(Path(folder) / "many.csv", 600_000)
        runs = [(big, "path", args.tree), (big, "upload", args.tree), (rows, "path", args.tree),
                (rows, "upload", args.tree), (many, "path", args.tree)]
        if args.before:
            runs += [(rows, "path", args.before), (many, "path", args.before)]
        for path, mode, tree in runs:
            result = measure(tree, path, mode)
            size = f"{path.name} ({path.stat().st_size / 2**20:.0f} MiB, {sum(1 for _ in open(path)) - 1:,} rows)"
            print(size, mode, result, flush=True)
            lines.append(f"| {size} | {mode} | {'before' if tree == args.before else 'this'} | "
                         f"{result['outcome'][:150]} | {result['wall']:.2f} | {result['cpu']:.2f} | "
                         f"{result['peak_mib']:.0f} |")
    for tree, title in [(args.tree, "this tree")] + ([(args.before, "before")] if args.before else []):
        table = corpus(tree)
        deserved = sum((want == "loads") == got.startswith("loaded") for _, want, got in table)
        lines += ["", f"## The corpus through load_csv ({title}): {deserved} of {len(table)} get the outcome they "
                  "deserve", "", "| file | deserves | outcome |", "|---|---|---|"]
        lines += [f"| {name} | {want} | {got} |" for name, want, got in table]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
