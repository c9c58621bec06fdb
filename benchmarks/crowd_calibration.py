"""Calibrate the feature-aware simulated crowd to FR-Train's Table 6 (fairal.crowd_simulation).

For Adult (sex) and COMPAS (race): reference scores from a cross-fitted
logistic regression on all rows (``reference_scores``); 1,000 random items
per seed, 200 simulated workers (15 % spammers, log-normal activity), 11
answers per item on the 1-4 scale; the paper's rule (mean of the first N
answers vs 2.5) is scored against the true labels at N = 1, 5, 11. A grid
over ``shared_noise``, ``truth_signal`` and the worker-noise centre (range
± 25 %) picks, per data set, the setting with the smallest largest
deviation from Table 6 (mean over the calibration seeds); the chosen
settings are then checked on 5 fresh seeds.

    PYTHONPATH=. nice -n 10 python benchmarks/crowd_calibration.py   # writes results/crowd_calibration.md
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairal import crowd
from fairal.crowd_simulation import reference_scores, simulate_feature_crowd
from fairal.datasets import load_adult, load_compas

RESULTS = Path(__file__).parent / "results"
TABLE6 = {"adult": {1: 0.645, 5: 0.721, 11: 0.743}, "compas": {1: 0.609, 5: 0.656, 11: 0.667}}
NS = (1, 5, 11)
GRID = {"shared_noise": (0.5, 0.75, 1.0, 1.25, 1.5, 2.0), "truth_signal": (0.0, 0.25, 0.5, 0.75, 1.0),
        "noise_centre": (1.0, 1.5, 2.0, 2.5, 3.0)}
N_WORKERS, SPAMMER_SHARE, N_ITEMS = 200, 0.15, 1000


def load(dataset: str):
    return load_adult(sensitive="sex") if dataset == "adult" else load_compas(sensitive="race")


def sample(data, scores: np.ndarray, seed: int) -> tuple[pd.Series, pd.Series]:
    rows = np.random.default_rng(seed).choice(len(data), size=N_ITEMS, replace=False)
    ids = data.ids[rows].astype(str)
    return pd.Series(data.y[rows], index=ids), pd.Series(scores[rows], index=ids)


def crowd_params(shared_noise: float, truth_signal: float, noise_centre: float) -> dict:
    return {"shared_noise": float(shared_noise), "truth_signal": float(truth_signal),
            "worker_noise": (round(0.75 * float(noise_centre), 3), round(1.25 * float(noise_centre), 3))}


def accuracies(truth: pd.Series, scores: pd.Series, params: dict, seed: int) -> dict[int, float]:
    answers = simulate_feature_crowd(truth, scores, n_workers=N_WORKERS, answers_per_item=max(NS),
                                     scale="confidence4", spammer_share=SPAMMER_SHARE, seed=seed, **params)
    return {n: float((crowd.mean_score(answers, max_answers=n)["label"].reindex(truth.index) == truth).mean())
            for n in NS}


def calibrate(dataset: str, samples, seeds) -> tuple[dict, pd.DataFrame]:
    rows = []
    for values in itertools.product(*GRID.values()):
        params = crowd_params(*values)
        acc = pd.DataFrame([accuracies(*samples[s], params, s) for s in seeds]).mean()
        deviation = max(abs(acc[n] - TABLE6[dataset][n]) for n in NS)
        rows.append(dict(zip(GRID, values)) | {f"N={n}": acc[n] for n in NS} | {"max |dev|": deviation})
    grid = pd.DataFrame(rows).sort_values("max |dev|", kind="stable")
    best = grid.iloc[0]
    return crowd_params(best["shared_noise"], best["truth_signal"], best["noise_centre"]), grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration-seeds", type=int, nargs="+", default=list(range(100, 108)))
    parser.add_argument("--check-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=RESULTS / "crowd_calibration.md")
    args = parser.parse_args()
    start, cpu0 = time.perf_counter(), time.process_time()
    lines = ["# The feature-aware simulated crowd, calibrated to FR-Train's Table 6", "",
             "Command: `PYTHONPATH=. nice -n 10 python benchmarks/crowd_calibration.py`", "",
             __doc__.split("\n\n")[1].replace("\n", " "), ""]
    chosen, checks = {}, []
    for dataset in TABLE6:
        data = load(dataset)
        scores = reference_scores(data.X, data.y)
        ref_acc = float(((scores > 0) == data.y).mean())
        samples = {s: sample(data, scores, s) for s in args.calibration_seeds + args.check_seeds}
        params, grid = calibrate(dataset, samples, args.calibration_seeds)
        chosen[dataset] = params
        check = pd.DataFrame([accuracies(*samples[s], params, s) for s in args.check_seeds])
        checks.append((dataset, check, ref_acc))
        lines += [f"## {dataset}: best grid points (calibration seeds {args.calibration_seeds})", "",
                  grid.head(8).round(3).to_markdown(index=False), ""]
        print(dataset, params, check.mean().round(3).to_dict(), flush=True)
    table = []
    for dataset, check, ref_acc in checks:
        for n in NS:
            table.append({"data set": dataset, "N": n, "Table 6 (AMT)": TABLE6[dataset][n],
                          "simulated (5 fresh seeds)": f"{check[n].mean():.3f} ± {check[n].std(ddof=1):.3f}",
                          "deviation": round(check[n].mean() - TABLE6[dataset][n], 3),
                          "within ±0.02": abs(check[n].mean() - TABLE6[dataset][n]) <= 0.02})
        lines.insert(6, f"Reference model ({dataset}): cross-fitted logistic regression, accuracy {ref_acc:.3f} "
                        "on all rows.\n")
    lines[6:6] = ["## Calibration beside Table 6 (mean score of the first N answers vs 2.5)", "",
                  pd.DataFrame(table).to_markdown(index=False), "",
                  "Chosen parameters (`fairal.crowd_simulation.TABLE6_CROWDS`): "
                  + "; ".join(f"{d}: {p}" for d, p in chosen.items()), ""]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines += [f"Wall {wall:.0f} s, CPU {cpu + children.ru_utime + children.ru_stime:.0f} s (2 shared cores)."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
