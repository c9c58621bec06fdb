"""FORML vs uniform weights: digits with 20% labels changed to 2, and Adult (sex).

Run: PYTHONPATH=. .venv/bin/python benchmarks/forml_digits_adult.py [--seeds 5] [--adult-seeds 3]
Writes benchmarks/results/forml.md. "Uniform" is the same training loop with
weight_lr=0 (identical optimiser, batches, early stopping), so the only
difference is the learned weights.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fairal.datasets import load_adult, load_digits
from fairal.metrics import max_false_negative_rate, true_positive_rate_difference
from fairal.research.poisoning import corrupt_labels_to_class
from fairal.trainers.forml import FORMLTrainer


def corrupt(y, fraction, target, seed):
    return corrupt_labels_to_class(y, fraction=fraction, target_class=target, random_state=seed)[0]


def digits_run(seed, methods):
    d = load_digits()
    perm = np.random.default_rng(seed).permutation(len(d.y))
    test, val, train = perm[:450], perm[450:720], perm[720:]
    y_train = corrupt(d.y[train], 0.2, 2, seed)
    out = {}
    for name, params in methods.items():
        model = FORMLTrainer(epochs=40, lr=0.1, batch_size=64, early_stopping=True, random_state=seed,
                             **params).fit((d.X[train], y_train, y_train), validation=(d.X[val], d.y[val], d.y[val]))
        pred, y = model.predict(d.X[test]), d.y[test]
        recall = np.array([(pred[y == c] == c).mean() for c in range(10)])
        out[name] = (100 * (pred == y).mean(), 100 * (recall.max() - recall.min()), 100 * (1 - recall.min()))
    return out


def adult_run(seed, methods, n=6000):
    a = load_adult()
    perm = np.random.default_rng(seed).permutation(len(a.y))[: 2 * n]
    train, val, test = perm[:n], perm[n:n + 1000], perm[n + 1000:]
    out = {}
    for name, params in methods.items():
        model = FORMLTrainer(epochs=10, lr=0.05, batch_size=128, early_stopping=True, random_state=seed,
                             **params).fit(a.subset(train), validation=a.subset(val))
        pred, y, g = model.predict(a.X[test]), a.y[test], a.group[test]
        out[name] = (100 * (pred == y).mean(),
                     100 * true_positive_rate_difference(y, pred, sensitive_features=g),
                     100 * max_false_negative_rate(y, pred, sensitive_features=g))
    return out


def table(title, runs, seconds):
    lines = [f"### {title} ({len(runs)} seeds, {seconds:.0f} s)", "",
             "| method | accuracy (%) ↑ | TPRD (%) ↓ | maxFNR (%) ↓ |", "|---|---|---|---|"]
    for name in runs[0]:
        values = np.array([r[name] for r in runs])
        mean, se = values.mean(0), values.std(0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0 * values[0]
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in zip(mean, se)) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--adult-seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = {"uniform (weight_lr=0)": dict(weight_lr=0.0),
               "FORML max_loss_d": dict(weight_lr=1.0),
               "FORML max_loss_d, reverse": dict(weight_lr=1.0, reverse=True)}
    parts = [f"# FORML benchmark\n\n`{' '.join(['PYTHONPATH=. .venv/bin/python'] + sys.argv)}`\n\n"
             "poisoning: `fairal.research.poisoning.corrupt_labels_to_class`\n"]
    start = time.time()
    runs = [digits_run(s, methods) for s in range(args.seeds)]
    parts.append(table("digits, 20% of training labels changed to 2, MLP (64, 64)", runs, time.time() - start))
    print(parts[-1], flush=True)
    if args.adult_seeds:
        start = time.time()
        adult_methods = {k: v for k, v in methods.items() if "reverse" not in k}
        runs = [adult_run(s, adult_methods) for s in range(args.adult_seeds)]
        parts.append(table("Adult, sex, 6,000 training rows, MLP (64, 64)", runs, time.time() - start))
        print(parts[-1], flush=True)
    Path(__file__).with_name("results").mkdir(exist_ok=True)
    (Path(__file__).with_name("results") / "forml.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
