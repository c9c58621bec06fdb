"""Time from a submitted label to an updated curve point, on the default Adult project.

Uses a file store (as the app does), the library's LabelingSession and oracle labels.
Each timing covers: commit the label, retrain every trainer of the default project (PANDA's
few-step head and a converged L-BFGS logistic regression, on the policy's representation of
seed + labels), evaluate all metrics on the 11,306-row test set for each, record model versions
+ curve points. (PANDA's ranking is fixed per draw, so there is no re-ranking; an entropy project
re-ranks the 11k pool after each label, which adds about 30 ms.)

    python benchmarks/label_latency.py [N_LABELS]   # writes benchmarks/results/label_latency.md
"""

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
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "fairal.db") as store:
        start = time.perf_counter()
        project_id = ensure_default_project(store)
        create_seconds = time.perf_counter() - start
        session = LabelingSession(store, project_id, "benchmark")
        data = session.project.dataset
        seconds = []
        for _ in range(n_labels):
            item = session.next_item()
            truth = int(data.y[data.positions([item.item_id])[0]])
            before = len(store.curve_points(project_id))
            start = time.perf_counter()
            session.submit(item.item_id, truth)
            seconds.append(time.perf_counter() - start)
            assert len(store.curve_points(project_id)) == before + len(session.project.trainer_names)
        last = store.curve_frame(project_id).iloc[-1]
    ms = np.array(seconds) * 1000
    report = (
        "# Label → curve point latency (default Adult project)\n\n"
        f"Command: `python benchmarks/label_latency.py {n_labels}` on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}\n\n"
        f"- project creation (load Adult, split, first model, rank 11k pool, store 22.7k items): {create_seconds:.2f} s\n"
        f"- {n_labels} labels: median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, "
        f"max {ms.max():.0f} ms (first label {ms[0]:.0f} ms)\n"
        f"- after {n_labels} oracle labels picked by PANDA: F1 {last['f1']:.3f}, accuracy {last['accuracy']:.3f}, "
        f"DP difference {last['demographic_parity_difference']:.3f} (trainer {last['trainer']})\n"
    )
    out = Path(__file__).parent / "results" / "label_latency.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
