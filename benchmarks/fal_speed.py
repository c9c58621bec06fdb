"""FAL: fast (Newton steps, one batched pass) versus exact (2·|U| refits) on Adult.

PANDA's split of Adult (seed 0); L = 100 random meta-train rows. The fast
method queries the full 11,305-row pool (reference set: 2,000 pool rows). The
exact method is timed on a 200-candidate subsample of the pool and its time
extrapolated linearly to 11,305 candidates (its cost is 2 refits per
candidate; predicting the larger reference set adds a few percent per refit). Agreement: 20
rounds on the 200-candidate pool, each round both pick one item and the exact
pick is labeled with its true label.

Both methods run single-threaded (torch threads = 1; the exact refits already
run with single-threaded BLAS), so the ratio compares like with like and does
not swing with other work on the machine.

    PYTHONPATH=. python benchmarks/fal_speed.py   # writes benchmarks/results/fal_speed.md
"""

from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from fairal.datasets import load_adult, panda_split
from fairal.strategies import FAL
from fairal.trainers import ERMTrainer

N_LABELED, N_SMALL, ROUNDS, REPEATS = 100, 200, 20, 5


def main() -> None:
    torch.set_num_threads(1)
    adult = load_adult()
    split = panda_split(adult, seed=0)
    rng = np.random.default_rng(0)
    labeled = np.sort(rng.choice(split.meta_train, size=N_LABELED, replace=False))
    small = np.sort(rng.choice(split.pool, size=N_SMALL, replace=False))
    X, y, groups = adult.X, adult.y, adult.group
    # FAL fits its own regression on L; the model is only its fallback when L holds one class.
    model = ERMTrainer().fit(adult.subset(labeled))

    def query(strategy, pool, labeled_now):
        start = perf_counter()
        pick = strategy.query(model, X, pool, labeled_now, y[labeled_now], 1, groups=groups)[0]
        return pick, perf_counter() - start

    query(FAL(random_state=0), split.pool, labeled)  # warm-up
    fast_full = [query(FAL(random_state=0), split.pool, labeled)[1] for _ in range(REPEATS)]
    fast_small = [query(FAL(random_state=0), small, labeled)[1] for _ in range(REPEATS)]

    agree, exact_small, rho = 0, [], []
    labeled_now, pool = labeled, small
    for _ in range(ROUNDS):
        exact, fast = FAL("exact", random_state=0), FAL("fast", random_state=0)
        exact_pick, seconds = query(exact, pool, labeled_now)
        exact_small.append(seconds)
        fast_pick, _ = query(fast, pool, labeled_now)
        agree += int(exact_pick == fast_pick)
        rho.append(spearmanr(exact.last_expected_disparity_, fast.last_expected_disparity_)[0])
        labeled_now, pool = np.append(labeled_now, exact_pick), pool[pool != exact_pick]

    per_candidate = np.median(exact_small) / N_SMALL
    exact_full = per_candidate * len(split.pool)
    fast_ms = 1e3 * np.median(fast_full)
    rows = [
        {"method": "fast (Newton, 3 steps)", "candidates": len(split.pool),
         "ms per query": f"{fast_ms:.0f}", "note": f"measured, median of {REPEATS}"},
        {"method": "fast (Newton, 3 steps)", "candidates": N_SMALL,
         "ms per query": f"{1e3 * np.median(fast_small):.0f}", "note": f"measured, median of {REPEATS}"},
        {"method": "exact (2 refits per candidate)", "candidates": N_SMALL,
         "ms per query": f"{1e3 * np.median(exact_small):.0f}", "note": f"measured, median of {ROUNDS}"},
        {"method": "exact (2 refits per candidate)", "candidates": len(split.pool),
         "ms per query": f"{1e3 * exact_full:.0f}",
         "note": f"extrapolated: {1e3 * per_candidate:.2f} ms per candidate × {len(split.pool)}"},
    ]
    table = pd.DataFrame(rows).to_markdown(index=False)
    ratio = exact_full / np.median(fast_full)
    summary = (
        f"- Speed ratio on the full pool (exact extrapolated / fast measured): **{ratio:.0f}×**\n"
        f"- Agreement over {ROUNDS} rounds on the {N_SMALL}-candidate pool (same pick): "
        f"**{agree}/{ROUNDS}**\n"
        f"- Spearman correlation of the expected disparity E over candidates, fast vs exact: "
        f"median {np.median(rho):.3f}, min {np.min(rho):.3f}\n"
    )
    out = Path(__file__).parent / "results" / "fal_speed.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        "# FAL: fast versus exact on Adult (PANDA split, seed 0)\n\n"
        "Command: `PYTHONPATH=. python benchmarks/fal_speed.py`\n\n"
        f"L = {N_LABELED} random meta-train rows; reference set = 2,000 pool rows (the whole pool when it is "
        f"smaller); torch and BLAS single-threaded. The exact time on {len(split.pool):,} candidates is "
        f"extrapolated linearly from {N_SMALL} candidates.\n\n" + table + "\n\n" + summary
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
