"""Which linear-time PANDA scheme keeps the picks of full attention (issue 13, part 1)?

On Adult's 11,306-item pool (PANDA's split, split seed 0), B = 400, for each scheme and seed: the
test F1 and demographic parity (to overall) of the two PANDA methods ("panda": the few-step head the
policy was meta-trained through; "panda_lr": a converged logistic regression), through
:func:`fairal.research.simulate.simulate`, plus how many of the 400 picks are the same as full
attention's for the same seed (the Gumbel noise is the same per seed, so differences come from the
logits alone) and the share of women among the picks.

Schemes: the shipped policy (1 layer, trained on pools of 2,000) with full attention (the
reference), with attention within random blocks of 2,000 (its trained pool size) and of 500 items,
each also in bfloat16 (CPU autocast here: what the CUDA path runs), and the ISAB-32 alternative policy
(its own representation, so its learners see other features).

    PYTHONPATH=. nice -n 10 python benchmarks/panda_large_pool.py [--seeds 10]   # writes results/panda_large_pool.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fairal.datasets import load, panda_split  # noqa: E402
from fairal.panda.strategy import DEFAULT_POLICY, SHIPPED_POLICIES, PandaSampling  # noqa: E402
from fairal.panda.train import load_trained_policy  # noqa: E402
from fairal.research.simulate import simulate  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "panda_large_pool.md"
ISAB = SHIPPED_POLICIES / "alternatives" / "panda-adult-sex-isab32.pt"
SCHEMES = {
    "full attention (reference)": {"context": "full"},
    "blocks of 2,000 (trained pool size)": {"context": "blocks"},
    "blocks of 500": {"context": "blocks", "block_size": 500},
    "full attention, bf16": {"context": "full", "precision": "bf16"},
    "blocks of 2,000, bf16": {"context": "blocks", "precision": "bf16"},
    "ISAB-32 policy": {"policy_path": str(ISAB)},
}
B = 400


def picks(params: dict, dataset, features, pool, seed: int) -> np.ndarray:
    strategy = PandaSampling(random_state=seed, **params)
    return strategy.rank(None, features, pool, groups=dataset.group).order[:B]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    dataset = load("adult", sensitive="sex")
    pool = np.asarray(panda_split(len(dataset), seed=0).pool)
    seeds = list(range(args.seeds))
    rows, started = [], (time.perf_counter(), time.process_time())
    for label, params in SCHEMES.items():
        policy = params.get("policy_path", str(DEFAULT_POLICY))
        representation = load_trained_policy(policy).representation
        features = representation.transform(dataset.X)
        start = time.perf_counter()
        frame = simulate(dataset, ["panda", "panda_lr"], seeds=seeds, budgets=[B], representation=representation,
                         strategy_params={"panda": {"policy_path": policy, **params}})
        for seed in seeds:
            chosen = picks(params, dataset, features, pool, seed)
            reference = picks(SCHEMES["full attention (reference)"], dataset, features, pool, seed)
            for _, row in frame[frame["seed"] == seed].iterrows():
                rows.append({"scheme": label, "method": row["method"], "seed": seed, "f1": row["f1"],
                             "dp": row["demographic_parity_to_overall"],
                             "same_picks": len(np.intersect1d(chosen, reference)) / B,
                             "women": float(np.mean(dataset.group[chosen] == "Female"))})
        print(f"{label}: {time.perf_counter() - start:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    OUT.write_text(render(table, seeds, wall, cpu, " ".join(argv if argv is not None else sys.argv[1:])))
    print(OUT.read_text())


def render(table: pd.DataFrame, seeds, wall: float, cpu: float, argv: str) -> str:
    grouped = table.groupby(["method", "scheme"], sort=False)
    mean, se = grouped.mean(numeric_only=True), grouped.std(ddof=1, numeric_only=True) / np.sqrt(len(seeds))
    out = pd.DataFrame({"F1": mean["f1"].map("{:.3f}".format) + " ± " + se["f1"].map("{:.3f}".format),
                        "DP to overall": mean["dp"].map("{:.3f}".format) + " ± " + se["dp"].map("{:.3f}".format),
                        "same picks as full": mean["same_picks"].map("{:.1%}".format),
                        "women among picks": mean["women"].map("{:.1%}".format)})
    paired = []
    for (method, _scheme), part in table.groupby(["method", "scheme"], sort=False):
        ref = table[(table["method"] == method) & (table["scheme"] == "full attention (reference)")]
        diff_f1 = part["f1"].to_numpy() - ref["f1"].to_numpy()
        diff_dp = part["dp"].to_numpy() - ref["dp"].to_numpy()
        paired.append(f"{diff_f1.mean():+.3f} ± {diff_f1.std(ddof=1) / np.sqrt(len(diff_f1)):.3f} / "
                      f"{diff_dp.mean():+.3f} ± {diff_dp.std(ddof=1) / np.sqrt(len(diff_dp)):.3f}")
    out["paired Δ vs full (F1 / DP)"] = paired
    return ("# PANDA on large pools: which linear scheme keeps full attention's picks\n\n"
            f"Command: `PYTHONPATH=. nice -n 10 python benchmarks/panda_large_pool.py {argv}` "
            f"({wall:.0f} s wall, {cpu:.0f} s CPU; {platform.machine()}, Python {platform.python_version()}).\n\n"
            f"Adult, sensitive = sex, pool 11,306 items (split seed 0), B = {B}, seeds {seeds[0]}–{seeds[-1]} "
            "(seed = seed set + Gumbel noise + block partition). Mean ± standard error over seeds; the paired "
            "difference is per seed against full attention. bf16 is CPU autocast here (the CUDA path's number "
            "format; its speed on a GPU is not measured here).\n\n"
            + out.reset_index().to_markdown(index=False) + "\n")


if __name__ == "__main__":
    main()
