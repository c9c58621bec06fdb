"""FR-Train Table 1 (Roh et al., ICML 2020) on the synthetic data of §4.1.

Per seed s: one ``make_synthetic(3000, seed=s, include_sensitive=True)`` draw
(X = [x1, x2, z], as the paper's classifier reads z), split by a seeded
permutation into 1,800 train / 200 clean validation / 1,000 test rows.
Poisoned setting: 10% of the *training* labels (180) flipped, all within z=1,
with ``flip_labels(..., method="greedy")``; validation and test stay clean.

Methods: LR (``ERMTrainer`` logistic regression), fairness-only FR-Train
(λr = 0) and FR-Train; accuracy and disparate impact on the clean test set.

Usage::

    python benchmarks/frtrain_tables.py --seeds 0 1 2 [--out benchmarks/results/frtrain.csv]
    python benchmarks/frtrain_tables.py --sweep --seeds 0 --epochs 2000   # short lr / λr sweep
    python benchmarks/frtrain_tables.py --seeds 0 1 2 3 4 --authors-conventions   # + authors' D_r / R conventions

``--epochs`` scales the paper's schedules (4,000 clean / 10,000 poisoned) down
proportionally when given (warm-up stays 500 unless ``--warmup``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairal.datasets import make_synthetic
from fairal.metrics import accuracy, disparate_impact_ratio
from fairal.research.poisoning import flip_labels
from fairal.trainers import ERMTrainer
from fairal.trainers.frtrain import FRTrainTrainer

N_TRAIN, N_VAL, N_TEST = 1800, 200, 1000
PAPER_AUTHORS = "FR-Train (paper, authors' conventions)"
# The authors' code: raw logit as ŷ and ±1 labels in D_r's input, total generator loss as L_c in R.
AUTHORS_CONVENTIONS = dict(robust_input="logit", label_coding="pm1", reweight_loss="generator")

# The authors' settings (ALGORITHMS.md "FR-Train"); "our" overrides are applied below.
PAPER = {
    "clean": dict(epochs=4000, lr_classifier=0.005, lr_fair=0.01, lr_robust=0.001, lambda_r=0.1, lambda_f=0.85, d_steps=3),
    "poisoned": dict(epochs=10000, lr_classifier=0.001, lr_fair=0.001, lr_robust=0.001, lambda_r=0.4, lambda_f=0.52, d_steps=5),
}


def split(seed: int):
    ds = make_synthetic(N_TRAIN + N_VAL + N_TEST, seed=seed, include_sensitive=True)
    X, y, g = np.asarray(ds.X, dtype=np.float32), np.asarray(ds.y), np.asarray(ds.group)
    perm = np.random.default_rng(seed).permutation(len(y))
    tr, va, te = perm[:N_TRAIN], perm[N_TRAIN:N_TRAIN + N_VAL], perm[N_TRAIN + N_VAL:]
    return poisoned_split(X, y, g, tr, va, te, target_group="z=1", fraction=0.1, seed=seed)


def poisoned_split(X, y, g, tr, va, te, *, target_group, fraction: float, seed: int) -> dict:
    """Clean and poisoned (greedy flips within ``target_group``) training data, clean validation and test."""
    y_pois, flipped = flip_labels(X[tr], y[tr], g[tr], fraction=fraction, target_group=target_group,
                                  method="greedy", random_state=seed)
    return {
        "clean": (X[tr], y[tr], g[tr]),
        "poisoned": (X[tr], np.asarray(y_pois), g[tr]),
        "flipped": np.asarray(flipped),
        "val": (X[va], y[va], g[va]),
        "test": (X[te], y[te], g[te]),
    }


def evaluate(model, test) -> tuple[float, float]:
    X, y, g = test
    pred = model.predict(X)
    return accuracy(y, pred), disparate_impact_ratio(y, pred, sensitive_features=g)


def settings(setting: str, method: str, overrides: dict, epochs: int | None, warmup: int) -> dict:
    kw = dict(PAPER[setting])
    kw.update(overrides.get(setting, {}))
    if epochs is not None:
        kw["epochs"] = epochs
    kw["warmup"] = warmup
    if method == "fair-only":
        kw["lambda_r"] = 0.0
    if method in ("FR-Train (paper)", PAPER_AUTHORS):
        kw = dict(PAPER[setting], warmup=warmup, **({"epochs": epochs} if epochs is not None else {}))
    if method == PAPER_AUTHORS:
        kw.update(AUTHORS_CONVENTIONS)
    return kw


def methods(setting: str, overrides: dict, authors: bool = False) -> tuple[str, ...]:
    """LR, fairness-only, FR-Train; plus the paper's exact settings when FR-Train deviates from them,
    and (``authors``) the paper's settings with the authors' D_r / R conventions."""
    extra = ("FR-Train (paper)",) if overrides.get(setting) else ()
    return ("LR", "fair-only", "FR-Train") + extra + ((PAPER_AUTHORS,) if authors else ())


def run_method(data, setting: str, method: str, kw: dict, seed: int):
    train = data[setting]
    if method == "LR":
        return ERMTrainer().fit(train)
    trainer = FRTrainTrainer(random_state=seed, **kw)
    return trainer.fit(train, validation=data["val"] if kw["lambda_r"] > 0 else None)


def sweep(args) -> None:
    """Short sweep of poisoned FR-Train (λf = 0.52, d_steps 5) over lr_classifier × lr_robust × λr."""
    for seed in args.seeds:
        data = split(seed)
        lr = ERMTrainer().fit(data["poisoned"])
        print(f"seed {seed} LR poisoned: acc {evaluate(lr, data['test'])[0]:.3f} DI {evaluate(lr, data['test'])[1]:.3f}",
              flush=True)
        grid = itertools.product(args.lr_classifier, args.lr_robust, args.lambda_r)
        for lr_c, lr_r, lam_r in grid:
            kw = dict(PAPER["poisoned"], epochs=args.epochs, warmup=args.warmup, lr_classifier=lr_c,
                      lr_robust=lr_r, lambda_r=lam_r)
            if args.lambda_f is not None:
                kw["lambda_f"] = args.lambda_f
            t0 = time.perf_counter()
            model = FRTrainTrainer(random_state=seed, **kw).fit(data["poisoned"], validation=data["val"])
            acc, di = evaluate(model, data["test"])
            print(f"seed {seed} lr_c {lr_c:g} lr_r {lr_r:g} lam_r {lam_r:g} lam_f {kw['lambda_f']:g}: "
                  f"acc {acc:.3f} DI {di:.3f} R {model.info['reweight_R']:.2f} ({time.perf_counter() - t0:.0f}s)",
                  flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override both schedules' epoch count")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--out", default=None, help="CSV of per-seed rows")
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--lr-classifier", type=float, nargs="+", default=[0.001, 0.005])
    p.add_argument("--lr-robust", type=float, nargs="+", default=[0.001, 0.01, 0.05])
    p.add_argument("--lambda-r", type=float, nargs="+", default=[0.4])
    p.add_argument("--lambda-f", type=float, default=None)
    p.add_argument("--poisoned-lr-robust", type=float, default=None,
                   help="deviation from the paper for poisoned FR-Train (documented in the report)")
    p.add_argument("--poisoned-lr-classifier", type=float, default=None)
    p.add_argument("--poisoned-lambda-r", type=float, default=None)
    p.add_argument("--authors-conventions", action="store_true",
                   help="also run FR-Train with the paper's settings and the authors' conventions "
                        "(robust_input='logit', label_coding='pm1', reweight_loss='generator')")
    args = p.parse_args(argv)
    if args.sweep:
        sweep(args)
        return

    overrides = {"poisoned": {}}
    for name in ("lr_robust", "lr_classifier", "lambda_r"):
        value = getattr(args, f"poisoned_{name}")
        if value is not None:
            overrides["poisoned"][name] = value

    rows = []
    for seed in args.seeds:
        data = split(seed)
        for setting in ("clean", "poisoned"):
            for method in methods(setting, overrides, args.authors_conventions):
                kw = settings(setting, method, overrides, args.epochs, args.warmup)
                t0 = time.perf_counter()
                model = run_method(data, setting, method, kw, seed)
                acc, di = evaluate(model, data["test"])
                row = {"seed": seed, "setting": setting, "method": method, "accuracy": acc, "di": di,
                       "seconds": time.perf_counter() - t0}
                rows.append(row)
                print(f"seed {seed} {setting:8s} {method:9s} acc {acc:.3f} DI {di:.3f} ({row['seconds']:.0f}s)",
                      flush=True)

    print("\n| setting | method | accuracy | DI |\n|---|---|---|---|")
    for setting in ("clean", "poisoned"):
        for method in methods(setting, overrides, args.authors_conventions):
            sel = [r for r in rows if r["setting"] == setting and r["method"] == method]
            accs, dis = np.array([r["accuracy"] for r in sel]), np.array([r["di"] for r in sel])
            se = lambda a: a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")  # noqa: E731
            print(f"| {setting} | {method} | {accs.mean():.3f} ± {se(accs):.3f} | {dis.mean():.3f} ± {se(dis):.3f} |")
    if args.out:
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
