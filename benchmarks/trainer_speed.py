"""Speed of the trainers on Adult, as ratios to ERM(mlp) (the FORML/IRW speed issue).

(a) Cost of ONE training step. The minibatch trainers (ERM mlp, FORML, IRW, IRWO, CVaR) all
    use batch size 128 here and are timed by differencing: ``fit`` with ``epochs=1`` on the
    first ``128·K1`` and on the first ``128·K2`` rows of the training subset (exactly K1 / K2
    full batches), step = (t(K2) − t(K1)) / (K2 − K1). Setup (model construction, tensor
    conversion, FittedModel) cancels out; what remains is everything a trainer does per batch
    (FORML: exemplar sampling + second-order meta-gradient + model step; IRW: vmap per-example
    gradients + weights + model step; IRWO: that plus DBSCAN; CVaR: an extra no-grad forward).
    FR-Train is full batch: its "step" is one epoch over all 10,000 rows (one D_r step, one D_f
    step, a classifier step every ``d_steps`` = 5 epochs), timed the same way by differencing
    ``epochs`` E1 / E2 after a 0-epoch warm-up (``warmup=0``, so every timed epoch is a full one).
    Median of ``--repeats`` repeats.
(b) One full fit on the 10,000-row subset with each trainer's own defaults (batch size, lr,
    optimiser, ...), except the epoch count, reduced to ``--epochs`` (3) for every minibatch
    trainer so the run stays short; "default-epochs estimate" scales that linearly to the
    trainer's default epoch count (ERM 30, FORML 20, IRW/IRWO/CVaR 20). FR-Train is fitted
    with ``epochs=--fr-epochs`` (300, ``warmup`` scaled from 500/10,000 to 15) and its
    estimate scales to the default 10,000 epochs.

FORML and FR-Train get ``validation=(X_val, y_val, group_val)``: 1,000 Adult rows disjoint
from the training subset. ERM/IRW/IRWO/CVaR get no validation (it would add a per-epoch
evaluation). Runs on the CPU with ``--threads`` torch threads (default 1: FR-Train pins
itself to 1 thread, so every trainer runs alike).

    PYTHONPATH=. python benchmarks/trainer_speed.py   # writes benchmarks/results/trainer_speed.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fairal.datasets import load_adult
from fairal.trainers import TRAINERS, CVaRTrainer, ERMTrainer, FORMLTrainer, FRTrainTrainer, IRWOTrainer, IRWTrainer

HIDDEN = (64, 64)
BATCH = 128
OUT = Path(__file__).parent / "results" / "trainer_speed.md"


def minibatch_trainers(epochs: int | None = None, batch_size: int | None = None) -> dict:
    """Name -> trainer; ``None`` keeps the trainer's default for that parameter."""
    kw = {}
    if epochs is not None:
        kw["epochs"] = epochs
    if batch_size is not None:
        kw["batch_size"] = batch_size
    return {
        "erm": ERMTrainer("mlp", hidden=HIDDEN, device="cpu", **kw),
        "forml": FORMLTrainer(hidden=HIDDEN, device="cpu", **kw),
        "irw": IRWTrainer(0.1, scheme="local", hidden=HIDDEN, device="cpu", **kw),
        "irwo": IRWOTrainer(0.1, scheme="local", hidden=HIDDEN, device="cpu", **kw),
        "cvar": CVaRTrainer(0.1, hidden=HIDDEN, device="cpu", **kw),
    }


NEEDS_VAL = {"forml", "frtrain"}
DEFAULT_EPOCHS = {"erm": 30, "forml": 20, "irw": 20, "irwo": 20, "cvar": 20, "frtrain": 10000}


def timed_fit(trainer, data, val) -> float:
    start = time.perf_counter()
    trainer.fit(data, validation=val)
    return time.perf_counter() - start


def subset(train, n):
    return tuple(a[:n] for a in train)


def step_times(train, val, k1: int, k2: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per minibatch of 128, by differencing epochs=1 fits on k1 and k2 batches."""
    small, large = subset(train, BATCH * k1), subset(train, BATCH * k2)
    out: dict[str, list[float]] = {}
    trainers = minibatch_trainers(epochs=1, batch_size=BATCH)
    for name, trainer in trainers.items():  # warm-up: imports (sklearn for IRWO), torch.func tracing
        timed_fit(trainer, small, val if name in NEEDS_VAL else None)
    for _ in range(repeats):  # trainers interleaved so a burst of load on the shared machine hits all
        for name, trainer in trainers.items():
            v = val if name in NEEDS_VAL else None
            t1, t2 = timed_fit(trainer, small, v), timed_fit(trainer, large, v)
            out.setdefault(name, []).append((t2 - t1) / (k2 - k1))
    return out


def frtrain_epoch_times(train, val, e1: int, e2: int, repeats: int) -> list[float]:
    times = []
    make = lambda e: FRTrainTrainer(hidden=64, epochs=e, warmup=0, device="cpu")  # noqa: E731
    timed_fit(make(e1), train, val)
    for _ in range(repeats):
        t1, t2 = timed_fit(make(e1), train, val), timed_fit(make(e2), train, val)
        times.append((t2 - t1) / (e2 - e1))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-val", type=int, default=1_000)
    parser.add_argument("--k1", type=int, default=4, help="batches in the small step-timing fit")
    parser.add_argument("--k2", type=int, default=64, help="batches in the large step-timing fit")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the (b) fits, all minibatch trainers")
    parser.add_argument("--fr-epochs", type=int, default=300, help="epochs of the (b) FR-Train fit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()

    adult = load_adult()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(adult.X))
    tr, va = perm[:args.n_train], perm[args.n_train:args.n_train + args.n_val]
    train = (adult.X[tr], adult.y[tr], adult.group[tr])
    val = (adult.X[va], adult.y[va], adult.group[va])

    covered = {"erm", "forml", "irw", "irwo", "cvar", "frtrain"}
    skipped = sorted(set(TRAINERS) - covered)

    t0 = time.perf_counter()
    steps = step_times(train, val, args.k1, args.k2, args.repeats)
    fr_steps = frtrain_epoch_times(train, val, 10, 60, args.repeats)
    t_steps = time.perf_counter() - t0

    fits = {}
    for name, trainer in minibatch_trainers(epochs=args.epochs).items():
        fits[name] = timed_fit(trainer, train, val if name in NEEDS_VAL else None)
    fr_warmup = max(1, round(args.fr_epochs * 500 / 10_000))
    fits["frtrain"] = timed_fit(FRTrainTrainer(hidden=64, epochs=args.fr_epochs, warmup=fr_warmup, device="cpu"),
                                train, val)
    t_total = time.perf_counter() - t0

    step_med = {k: statistics.median(v) for k, v in steps.items()}
    step_med["frtrain"] = statistics.median(fr_steps)
    spread = {k: (min(v), max(v)) for k, v in steps.items()}
    spread["frtrain"] = (min(fr_steps), max(fr_steps))
    fit_epochs = {k: args.epochs for k in steps} | {"frtrain": args.fr_epochs}
    labels = {"erm": "ERM (mlp 64-64)", "forml": "FORML", "irw": "IRW (local)", "irwo": "IRWO (local)",
              "cvar": "CVaR", "frtrain": "FR-Train (hidden 64) †"}
    defaults_bs = {"erm": 256, "forml": 128, "irw": 32, "irwo": 32, "cvar": 32, "frtrain": "full"}
    rows = []
    for k in ["erm", "forml", "irw", "irwo", "cvar", "frtrain"]:
        est = fits[k] * DEFAULT_EPOCHS[k] / fit_epochs[k]
        rows.append({
            "trainer": labels[k],
            "step ms (median)": 1e3 * step_med[k],
            "step ms (min–max)": f"{1e3 * spread[k][0]:.2f}–{1e3 * spread[k][1]:.2f}",
            "step × ERM": step_med[k] / step_med["erm"],
            "step × ERM (median of per-repeat ratios)": (
                statistics.median(a / b for a, b in zip(steps[k], steps["erm"])) if k in steps else float("nan")),
            "fit: epochs × batch": f"{fit_epochs[k]} × {defaults_bs[k]}",
            "fit s": fits[k],
            "fit × ERM": fits[k] / fits["erm"],
            "default-epochs estimate s": est,
            "estimate × ERM": est / (fits["erm"] * DEFAULT_EPOCHS["erm"] / fit_epochs["erm"]),
        })
    table = pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f")
    target = {k: step_med[k] / step_med["erm"] <= 3 for k in ("forml", "irw")}

    command = "PYTHONPATH=. python benchmarks/trainer_speed.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if k != "out" and v != parser.get_default(k))
    text = f"""# Trainer speed (Adult, {args.n_train:,}-row training subset, {args.n_val:,}-row validation set)

Command: `{command}` on {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}; \
{"GPU available (but every trainer was run with device='cpu')" if cuda else "no GPU in this run"}. \
**The machine (2 CPU cores) was shared with other jobs during the run**, so absolute times are noisy; \
ratios come from interleaved repeats. Benchmark wall time {t_total:.0f} s.

{table}

* **step** = one training step: for the minibatch trainers one batch of {BATCH} rows (batch size set to {BATCH} \
for all of them), measured as (t(fit, epochs=1, {BATCH}·{args.k2} rows) − t(fit, epochs=1, {BATCH}·{args.k1} rows)) \
/ {args.k2 - args.k1}, median of {args.repeats} repeats (setup cancels); \
"step × ERM" is the ratio of the medians, the next column the median of the ratios within each repeat \
(trainers are interleaved within a repeat, so that one is less sensitive to load from the other jobs). FORML and FR-Train get the validation \
set; the others none.
* † **FR-Train is full batch**: its "step" is one epoch over all {args.n_train:,} rows (D_r step + D_f step; \
the classifier steps every 5th epoch), `warmup=0`, differencing 60 − 10 epochs; it is not comparable to a 128-row \
minibatch step (it processes {args.n_train // BATCH}× more rows per step).
* **fit** = one `fit` on the {args.n_train:,} rows with each trainer's default batch size / lr / optimiser but a \
reduced epoch count ({args.epochs} epochs for every minibatch trainer; FR-Train {args.fr_epochs} epochs with \
warmup {fr_warmup}); the estimate scales linearly to the default epochs (ERM 30, FORML/IRW/IRWO/CVaR 20, \
FR-Train 10,000 with warmup 500). IRW/IRWO/CVaR default to batch 32, so their fits take 4–8× as many steps \
as FORML's / ERM's.
* Targets from the issue, step ≤ 3× ERM: FORML {"met" if target["forml"] else "**not met**"} \
({step_med["forml"] / step_med["erm"]:.1f}×), IRW {"met" if target["irw"] else "**not met**"} \
({step_med["irw"] / step_med["erm"]:.1f}×).
* Not timed (no minibatch step): {", ".join(skipped)}.
"""
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} (step timing {t_steps:.0f} s, total {t_total:.0f} s)")


if __name__ == "__main__":
    main()
