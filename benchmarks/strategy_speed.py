"""Speed of the query strategies, in one run on one machine (PANDA issue's speed benchmark).

1. Wall time of one full simulated B = 400 run per method on Adult (PANDA's split, seed 0,
   the shipped policy's representation, evaluation every 25 labels), as a ratio to random.
2. PANDA's selection time for B = 400 from the 11,305-item pool (policy forward + Gumbel draw).
3. PANDA meta-training time per iteration with the default configuration.
4. FAL exact versus fast (runs benchmarks/fal_speed.py last: it pins torch to one thread).

    PYTHONPATH=. python benchmarks/strategy_speed.py   # writes benchmarks/results/strategy_speed.md
"""

import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fairal.datasets import load_adult, panda_split
from fairal.panda.strategy import DEFAULT_POLICY
from fairal.panda.train import MetaConfig, load_trained_policy, meta_train
from fairal.research.simulate import default_budgets, simulate
from fairal.strategies import make_strategy

#: The inducing-point (ISAB, 32 points) policy: an extension, O(N·m) instead of O(N²) attention.
ISAB_POLICY = DEFAULT_POLICY.parent / "alternatives" / "panda-adult-sex-isab32.pt"

REPEATS = 3
METHODS = ["random", "margin", "entropy", "group_random", "fal", "fairlearn", "fairlearn_al", "panda"]


def main() -> None:
    adult = load_adult()
    split = panda_split(len(adult), seed=0)
    trained = load_trained_policy(DEFAULT_POLICY)
    rows = []
    # Warm-up: the first run in a process pays torch's and the policy file's start-up costs.
    simulate(adult, ["random", "panda"], seeds=[0], budgets=[0, 25], representation=trained.representation)
    def timed_run(method, **kwargs):
        """Median wall time of REPEATS runs (single runs swing by ±50 % on a shared 2-core machine)."""
        times, selection, training = [], [], []
        for _ in range(REPEATS):
            start = time.perf_counter()
            frame = simulate(adult, [method], seeds=[0], budgets=default_budgets(400, 25),
                             representation=trained.representation, learner="erm", **kwargs)
            times.append(time.perf_counter() - start)
            selection.append(frame.iloc[-1]["select_seconds"])
            training.append(frame.iloc[-1]["fit_seconds"])
        return {"run seconds": float(np.median(times)), "selection seconds": float(np.median(selection)),
                "training seconds": float(np.median(training))}

    for method in METHODS:
        rows.append({"method": method, **timed_run(method)})
    rows.append({"method": "panda (ISAB-32 extension)",
                 **timed_run("panda", strategy_params={"panda": {"policy_path": ISAB_POLICY}})})
    table = pd.DataFrame(rows)
    table["× random (run)"] = table["run seconds"] / table.loc[table["method"] == "random", "run seconds"].item()

    strategy = make_strategy("panda", random_state=0)
    strategy.query(None, adult.X, split.pool, n=400, groups=adult.group)  # warm-up (loads the file)
    make_strategy("panda", policy_path=ISAB_POLICY).query(None, adult.X, split.pool, n=400, groups=adult.group)
    selection, selection_isab = [], []
    for seed in range(5):
        for times, path in ((selection, DEFAULT_POLICY), (selection_isab, ISAB_POLICY)):
            start = time.perf_counter()
            make_strategy("panda", policy_path=path, random_state=seed).query(
                None, adult.X, split.pool, n=400, groups=adult.group)
            times.append(time.perf_counter() - start)

    D0 = split.meta_train
    features = trained.representation.transform(adult.X[D0])
    config = replace(MetaConfig(), iterations=10, eval_every=10)
    result = meta_train(features, adult.y[D0], adult.group_codes[D0], 2, config=config)
    per_iteration = result.seconds / config.iterations

    report = (
        "# Strategy speed (Adult, PANDA split seed 0, B = 400)\n\n"
        f"Command: `PYTHONPATH=. python benchmarks/strategy_speed.py` on {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; no GPU in this run.\n\n"
        "## One full simulated run per method (oracle labels, evaluation every 25 labels, converged LR; median of 3 runs)\n\n"
        + table.to_markdown(index=False, floatfmt=".2f") + "\n\n"
        f"## PANDA selection of B = 400 from the {len(split.pool):,}-item pool\n\n"
        f"median {1e3 * np.median(selection):.0f} ms over 5 draws (representation + policy forward + Gumbel "
        "noise + sort); the ranking is fixed per draw, so this is the whole selection cost of a run. "
        "Almost all of it is the full self-attention over 11,305 items (PyTorch's CPU flash-attention kernel; "
        "the math kernel and bf16/fp16 were slower on this machine). The inducing-point policy (ISAB, 32 points, "
        f"an extension) selects in {1e3 * np.median(selection_isab):.0f} ms.\n\n"
        "## PANDA meta-training\n\n"
        f"{per_iteration:.2f} s per iteration with the default configuration (pool {config.pool_size}, "
        f"validation {config.validation_size}, {config.layers} layers of width {config.width}, "
        f"{config.inner_steps} unrolled steps, {config.prox_steps} proximal steps, evaluation every "
        f"{config.eval_every}); the default {MetaConfig().iterations} iterations ≈ "
        f"{per_iteration * MetaConfig().iterations / 60:.0f} min. The shipped policy's own training time: "
        f"{trained.metadata.get('training_seconds', float('nan')):.0f} s.\n"
    )
    out = Path(__file__).parent / "results" / "strategy_speed.md"
    out.write_text(report)
    print(report)

    import fal_speed  # FAL exact vs fast; pins torch to one thread, so it runs last

    fal_speed.main()


if __name__ == "__main__":
    main()
