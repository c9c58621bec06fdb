"""Time from a submitted label to an updated curve point, on the default Adult project.

Uses a file store (as the app does), the library's LabelingSession and oracle labels.
Each timing covers: commit the label, retrain every trainer of the default project (``pool_parity``,
a converged L-BFGS logistic regression shifted so that demographic parity holds on the 11k pool, and
``erm``, the same regression without the shift, on the policy's representation of seed + labels),
evaluate all metrics on the 11,306-row test set for each, record model versions + curve points.
(Group-aware random ranks the pool once per draw, so there is no re-ranking; an entropy project
re-ranks the 11k pool after each label, which adds about 30 ms.)

    python benchmarks/label_latency.py [N_LABELS]   # writes benchmarks/results/label_latency.md
"""

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fairal.labeling import LabelingSession
from fairal.projects import ensure_default_project
from fairal.store import Store


def main(n_labels: int = 100) -> None:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "fairal.db") as store:
        start = time.perf_counter()
        project_id = ensure_default_project(store)
        create_seconds = time.perf_counter() - start
        session = LabelingSession(store, project_id, "benchmark")
        data = session.project.dataset
        seconds, cpu = [], []
        for _ in range(n_labels):
            item = session.next_item()
            truth = int(data.y[data.positions([item.item_id])[0]])
            before = len(store.curve_points(project_id))
            start, start_cpu = time.perf_counter(), time.process_time()
            session.submit(item.item_id, truth)
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert len(store.curve_points(project_id)) == before + len(session.project.trainer_names)
        frame = store.curve_frame(project_id)
        strategy = session.project.strategy_name
        last = frame.groupby("trainer").last()
    ms, cpu_ms = np.array(seconds) * 1000, np.array(cpu) * 1000
    report = (
        "# Label → curve point latency (default Adult project)\n\n"
        f"Command: `python benchmarks/label_latency.py {n_labels}` on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}; "
        f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after (2 shared cores)\n\n"
        f"- project creation (load Adult, split, first model, rank 11k pool, store 22.7k items): {create_seconds:.2f} s\n"
        f"- {n_labels} labels: median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, "
        f"max {ms.max():.0f} ms (first label {ms[0]:.0f} ms); CPU time (this process, all threads): median "
        f"{np.median(cpu_ms):.0f} ms, p95 {np.percentile(cpu_ms, 95):.0f} ms\n"
        f"- after {n_labels} oracle labels picked by {strategy}, on the test set:\n"
        + "".join(f"  - {trainer}: F1 {row['f1']:.3f}, accuracy {row['accuracy']:.3f}, DP to overall "
                  f"{row['demographic_parity_to_overall']:.3f}\n" for trainer, row in last.iterrows())
    )
    out = Path(__file__).parent / "results" / "label_latency.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
