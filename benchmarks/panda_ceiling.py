"""How far can choosing WHICH 400 items get labeled move the parity of the model people deploy?

An upper-bound study for PANDA's goal (issue 9): an oracle that sees the true labels picks the
B = 400 pool items by their (group, label) cell, in every composition on a grid: share of women
among the picks, and the positive share within each group. Within a cell the items are random.
The deployed learner, the converged L2 logistic regression (C = 1, as the app's "erm" trainer and
``MetaConfig(inner_learner="erm")``), trains on the 50-item seed plus the picks, on the shipped
policy's representation; test F1 and DP to overall are averaged over 5 seeds (seed set, picks).

A policy cannot see labels, so a composition it cannot aim at is out of its reach; it can pick
by features within a cell, which this grid does not explore. So this is the frontier of
label-composition selection, evidence about rather than a bound on what any policy can reach.

    PYTHONPATH=. python benchmarks/panda_ceiling.py   # writes benchmarks/results/panda_ceiling.md/.csv
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from fairal import metrics
from fairal.datasets import load_adult, panda_split
from fairal.panda.strategy import DEFAULT_POLICY
from fairal.panda.train import load_trained_policy
from fairal.projects import draw_initial

OUT = Path(__file__).parent / "results"
B, RHO, SEEDS = 400, 0.04, range(5)
SHARES = np.round(np.arange(0.0, 1.01, 0.1), 2)


def picks(cells: dict, counts: dict, rng) -> np.ndarray | None:
    chosen = []
    for cell, count in counts.items():
        if count > len(cells[cell]):
            return None
        chosen.append(rng.choice(cells[cell], size=count, replace=False))
    return np.concatenate(chosen)


def main() -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    adult = load_adult()
    features = load_trained_policy(DEFAULT_POLICY, device="cpu").representation.transform(adult.X)
    split = panda_split(len(adult), seed=0)
    women = adult.group_codes == list(adult.group_names).index("Female")
    cells = {(w, y): split.pool[(women[split.pool] == w) & (adult.y[split.pool] == y)]
             for w in (True, False) for y in (0, 1)}
    test_groups = adult.group[split.test]
    rows = []
    for share_women, pos_women, pos_men in itertools.product(SHARES[1:-1], SHARES, SHARES):
        n_women = int(round(B * share_women))
        counts = {(True, 1): int(round(n_women * pos_women)), (True, 0): n_women - int(round(n_women * pos_women)),
                  (False, 1): int(round((B - n_women) * pos_men))}
        counts[(False, 0)] = B - n_women - counts[(False, 1)]
        scores = []
        for seed in SEEDS:
            chosen = picks(cells, counts, np.random.default_rng([seed, 7]))
            if chosen is None:
                break
            rows_used = np.concatenate([draw_initial(adult, split.meta_train, 50, seed), chosen])
            model = LogisticRegression(C=1.0, max_iter=1000).fit(features[rows_used], adult.y[rows_used])
            predicted = model.predict(features[split.test])
            scores.append((metrics.f1(adult.y[split.test], predicted),
                           metrics.demographic_parity_difference(adult.y[split.test], predicted,
                                                                 sensitive_features=test_groups,
                                                                 method="to_overall")))
        if len(scores) == len(SEEDS):
            f1, dp = np.mean(scores, axis=0)
            rows.append({"share_women": share_women, "positive_share_women": pos_women,
                         "positive_share_men": pos_men, "f1": f1, "dp_to_overall": dp,
                         "f1_std": np.std([s[0] for s in scores]), "dp_std": np.std([s[1] for s in scores])})
    frame = pd.DataFrame(rows)
    frame.to_csv(OUT / "panda_ceiling.csv", index=False)
    report(frame, cells, time.perf_counter() - wall, time.process_time() - cpu)


def frontier(frame: pd.DataFrame) -> pd.DataFrame:
    """Compositions no other beats on both F1 (higher) and DP (lower)."""
    ordered = frame.sort_values(["dp_to_overall", "f1"], ascending=[True, False])
    return ordered[ordered["f1"] > ordered["f1"].cummax().shift(fill_value=-1)]


def report(frame: pd.DataFrame, cells: dict, wall: float, cpu: float) -> None:
    pool_share = {f"{'women' if w else 'men'}, y={y}": len(v) for (w, y), v in cells.items()}
    best = {bound: frame[frame["dp_to_overall"] <= bound].nlargest(1, "f1") for bound in (0.04, 0.05)}
    lines = ["# What label-aware selection can do for the deployed learner (PANDA goal check)", "",
             "Command: `PYTHONPATH=. python benchmarks/panda_ceiling.py` "
             f"({wall:.0f} s wall, {cpu:.0f} s CPU on this machine)", "", (__doc__ or "").split("\n\n")[1], "",
             f"Pool cells: {pool_share}. Grid: {len(frame)} feasible compositions × 5 seeds.", ""]
    for bound, row in best.items():
        if row.empty:
            lines.append(f"- No composition reaches mean DP ≤ {bound}.")
        else:
            r = row.iloc[0]
            lines.append(f"- Best F1 with mean DP ≤ {bound}: **F1 {r.f1:.3f} ± {r.f1_std:.3f}, DP {r.dp_to_overall:.3f}"
                         f" ± {r.dp_std:.3f}** ({r.share_women:.0%} women; positives {r.positive_share_women:.0%}"
                         f" of the women, {r.positive_share_men:.0%} of the men).")
    near_random = frame.iloc[((frame["share_women"] - 0.3).abs() + (frame["positive_share_women"] - 0.1).abs()
                              + (frame["positive_share_men"] - 0.3).abs()).argsort()[:1]]
    r = near_random.iloc[0]
    lines += [f"- The composition nearest the pool's own (random picks): F1 {r.f1:.3f}, DP {r.dp_to_overall:.3f}.",
              "", "Pareto frontier (mean over seeds):", "",
              frontier(frame).to_markdown(index=False, floatfmt=".3f"), ""]
    (OUT / "panda_ceiling.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
