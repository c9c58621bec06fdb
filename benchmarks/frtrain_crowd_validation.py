"""FR-Train's Table 7 end to end: a validation set built by a simulated crowd against true labels.

Per data set and seed, the split and poisoning of ``benchmarks/frtrain_real.py``
(sex as the sensitive attribute, 10 % greedy flips inside one group, a clean
validation set of 5 % of D_tr, 25 % test). The validation items are then
answered by the feature-aware simulated crowd calibrated to Table 6
(``fairal.crowd_simulation.simulate_feature_crowd`` with ``TABLE6_CROWDS``: 11
answers per item on the 1-4 scale, 200 workers, 15 % spammers; the reference
scores come from a cross-fitted logistic regression on all rows of the data
set), and each aggregation turns the answers into the validation labels.
FR-Train (the paper's poisoned-data setting, ``frtrain_real.fr_settings``) is
trained on the poisoned D_tr with each validation set, and with the same items'
true labels ("ground truth"); accuracy and DI on the clean test set.

``learning_from_crowds_difficulty`` also reads quiz items, as on the Crowd
page: 30 items (``N_GOLD``, as in ``benchmarks/crowd_aggregation.py``) drawn
from the rows outside the test and validation sets, answered 11 times each by
the same simulated workers (a second ``simulate_feature_crowd`` call with the
same seed and worker count draws the same workers first, so the validation
items' answers, and every other aggregation, stay as they were), with their
true labels as the known labels; the quiz items are not in the validation set.

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 python benchmarks/frtrain_crowd_validation.py \\
        --datasets compas adult --seeds 0 1 2 3 4 --max-train-adult 5000 --out /tmp/table7.csv

writes ``benchmarks/results/frtrain_crowd_validation.md``.
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.frtrain_real import DATASETS, fr_settings, load, split  # noqa: E402
from benchmarks.frtrain_tables import evaluate  # noqa: E402
from fairal import crowd  # noqa: E402
from fairal.crowd_simulation import TABLE6_CROWDS, reference_scores, simulate_feature_crowd  # noqa: E402
from fairal.trainers.frtrain import FRTrainTrainer  # noqa: E402

RESULTS = Path(__file__).parent / "results"
METHODS = ("majority_vote", "mean_score", "dawid_skene", "one_coin_dawid_skene", "dawid_skene_4",
           "learning_from_crowds", "learning_from_crowds_difficulty")
#: Methods that also read the quiz items' answers and known labels; N_GOLD quiz items as in crowd_aggregation.py.
GOLD_METHODS = ("learning_from_crowds_difficulty",)
N_GOLD = 30
PAPER_TABLE7 = {"compas": {"crowd": (0.846, 0.670), "ground truth": (0.899, 0.674)},
                "adult": {"crowd": (0.847, 0.809), "ground truth": (0.864, 0.809)}}


def _crowd_answers(X: np.ndarray, y: np.ndarray, scores: np.ndarray, dataset: str, seed: int, prefix: str = ""):
    """The feature-aware crowd's 11 answers per item (ids ``prefix`` + row number) and the items' features."""
    ids = [f"{prefix}{i}" for i in range(len(y))]
    answers = simulate_feature_crowd(pd.Series(y, index=ids), pd.Series(scores, index=ids), n_workers=200,
                                     answers_per_item=11, scale="confidence4", spammer_share=0.15, seed=seed,
                                     **TABLE6_CROWDS[dataset.split("-")[0]])
    return answers, pd.DataFrame(X, index=ids)


def crowd_labels(val, scores: np.ndarray, dataset: str, seed: int, quiz=None) -> dict[str, np.ndarray]:
    """Each aggregation's validation labels (in the validation rows' order).

    ``quiz``: (X, y, reference scores) of the quiz items, read by :data:`GOLD_METHODS` only (skipped without).
    """
    X, y, _ = val
    answers, features = _crowd_answers(X, y, scores, dataset, seed)
    ids = list(features.index)
    with_quiz = None
    if quiz is not None:  # same seed and worker count: the same workers answer the quiz items
        quiz_answers, quiz_features = _crowd_answers(*quiz, dataset, seed, prefix="quiz")
        gold = pd.Series(quiz[1], index=quiz_features.index)
        with_quiz = (pd.concat([answers, quiz_answers], ignore_index=True), pd.concat([features, quiz_features]), gold)
    labels = {}
    for method in METHODS:
        seen, options = answers, {"features": features} if method in crowd.FEATURE_AGGREGATORS else {}
        if method in GOLD_METHODS:
            if with_quiz is None:
                continue
            seen, options = with_quiz[0], {"features": with_quiz[1], "gold": with_quiz[2]}
        result = crowd.aggregate(seen, method, scale="confidence4", **options)
        labels[method] = result["label"].reindex(ids).to_numpy()
    return labels


def run(args) -> list[dict]:
    base = fr_settings(args)
    rows: list[dict] = []
    for name in args.datasets:
        arrays = load(name)
        X, y, _ = arrays
        scores_all = reference_scores(X, y)
        max_train = args.max_train_adult if name == "adult" else DATASETS[name][3]
        for seed in args.seeds:
            data = split(name, seed, max_train, arrays)
            val_rows, other_rows = _val_rows(name, seed, max_train, len(y))
            assert np.array_equal(X[val_rows], data["val"][0])  # the same rows as frtrain_real.split
            quiz_rows = np.random.default_rng([seed, N_GOLD]).choice(other_rows, size=N_GOLD, replace=False)
            labels = crowd_labels(data["val"], scores_all[val_rows], name, seed,
                                  quiz=(X[quiz_rows], y[quiz_rows], scores_all[quiz_rows]))
            Xv, yv, gv = data["val"]
            sets = {"ground truth": yv, **labels}
            for label_source, yset in sets.items():
                if args.validation_sets and label_source not in args.validation_sets:
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                model = FRTrainTrainer(random_state=seed, **base).fit(data["poisoned"], validation=(Xv, yset, gv))
                acc, di = evaluate(model, data["test"])
                rows.append({"dataset": name, "seed": seed, "validation": label_source, "epochs": base["epochs"],
                             "val_accuracy": float((yset == yv).mean()), "accuracy": acc, "di": di,
                             "n_val": len(yv), "n_train": len(data["poisoned"][1]),
                             "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0})
                print(f"{name} seed {seed} {label_source:22s} val acc {rows[-1]['val_accuracy']:.3f} "
                      f"test acc {acc:.3f} DI {di:.3f} ({rows[-1]['seconds']:.0f} s)", flush=True)
                if args.out:
                    pd.DataFrame(rows).to_csv(args.out, index=False, quoting=csv.QUOTE_MINIMAL)
    return rows


def _val_rows(name: str, seed: int, max_train: int | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation rows of ``frtrain_real.split`` (same permutation and sizes), and the rows in neither the
    validation nor the test set (D_tr's and, where D_tr is capped, the unused ones): where quiz items come from."""
    from benchmarks.frtrain_real import TEST_FRACTION, VAL_FRACTION

    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(TEST_FRACTION * n))
    rest = perm[n_test:]
    n_val = int(round(len(rest) * VAL_FRACTION / (1 + VAL_FRACTION)))
    if max_train is not None and len(rest) - n_val > max_train:
        n_val = int(round(VAL_FRACTION * max_train))
    return rest[:n_val], rest[n_val:]


def _paired_gap(frame: pd.DataFrame) -> pd.Series:
    """Per (dataset, validation set): test accuracy minus the same seed's ground-truth run, mean ± sd over seeds."""
    truth = frame[frame["validation"] == "ground truth"].set_index(["dataset", "seed"])["accuracy"]
    crowd_rows = frame[frame["validation"] != "ground truth"]
    gap = crowd_rows["accuracy"].to_numpy() - truth.reindex(
        pd.MultiIndex.from_frame(crowd_rows[["dataset", "seed"]])).to_numpy()
    gaps = crowd_rows.assign(gap=gap).dropna(subset=["gap"])
    return gaps.groupby(["dataset", "validation"], sort=False)["gap"].agg(
        lambda v: f"{v.mean():+.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():+.4f}")


def report(rows: list[dict], args, wall: float, cpu: float) -> str:
    frame = pd.DataFrame(rows)

    def mean_sd(values: pd.Series) -> str:
        return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"

    table = frame.groupby(["dataset", "validation"], sort=False)[["val_accuracy", "accuracy", "di"]].agg(mean_sd)
    table.columns = ["validation-label accuracy", "test accuracy", "test DI"]
    paper = [f"{PAPER_TABLE7[d.split('-')[0]]['ground truth' if v == 'ground truth' else 'crowd'][1]:.3f} / "
             f"{PAPER_TABLE7[d.split('-')[0]]['ground truth' if v == 'ground truth' else 'crowd'][0]:.3f}"
             if v in ("ground truth", "mean_score") else "—" for d, v in table.index]
    table["paper acc / DI"] = paper
    table["test acc − ground truth (paired)"] = _paired_gap(frame).reindex(table.index).fillna("—").to_numpy()
    table["seeds"] = frame.groupby(["dataset", "validation"], sort=False)["seed"].nunique().to_numpy()
    table["epochs / |D_tr|"] = frame.groupby(["dataset", "validation"], sort=False).apply(
        lambda part: f"{int(part['epochs'].iloc[0]) if 'epochs' in part else '?'} / {int(part['n_train'].iloc[0])}",
        include_groups=False).to_numpy()
    means = frame[frame["validation"] != "ground truth"].groupby(["dataset", "validation"], sort=False)[
        ["val_accuracy", "accuracy"]].mean()
    corr = {d: means.loc[d].corr().iloc[0, 1] for d in means.index.get_level_values(0).unique()}
    settings = fr_settings(args)
    lines = [
        "# FR-Train's Table 7: crowd-built against ground-truth validation sets (simulated crowd)", "",
        "Command: `PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 python benchmarks/frtrain_crowd_validation.py "
        + " ".join(sys.argv[1:]) + "`", "",
        f"Wall {wall:.0f} s, CPU {cpu:.0f} s (2 shared cores, loaded by other work).", "",
        __doc__.split("\n\n")[1].replace("\n", " "), "",
        f"FR-Train settings: {settings}. Adult's D_tr is capped at {args.max_train_adult} rows "
        f"(validation {int(round(0.05 * args.max_train_adult))}) to bound the cost; COMPAS uses the full split.", "",
        "Mean ± sd over seeds " + ", ".join(map(str, args.seeds)) + ". The paper's crowd row used the mean score "
        "(N = 11), so its numbers stand beside `mean_score`.", "",
        table.to_markdown(), "",
        "Correlation over aggregations (means over seeds) between the validation labels' accuracy and FR-Train's "
        "test accuracy: " + ", ".join(f"{d} {c:.2f}" for d, c in corr.items()) + ".", "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["compas", "adult"], choices=["compas", "adult"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--max-train-adult", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=None, help="override the 10,000-epoch schedule")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--out", default=None, help="CSV of per-run rows (rewritten after every run)")
    p.add_argument("--validation-sets", nargs="+", default=None,
                   help="restrict to these validation sets ('ground truth' and aggregator names)")
    p.add_argument("--from-csv", nargs="+", default=None,
                   help="only write the report from these per-run CSVs (runs split over several processes)")
    p.add_argument("--report", type=Path, default=RESULTS / "frtrain_crowd_validation.md")
    args = p.parse_args(argv)
    # fr_settings reads the frtrain_real options: the paper's poisoned setting.
    from benchmarks.frtrain_tables import PAPER

    for key, value in (("lambda_f", PAPER["poisoned"]["lambda_f"]), ("lambda_r", PAPER["poisoned"]["lambda_r"]),
                       ("lr_robust", PAPER["poisoned"]["lr_robust"]),
                       ("lr_classifier", PAPER["poisoned"]["lr_classifier"]), ("hidden", 0), ("C", 3.0),
                       ("authors_conventions", False)):
        setattr(args, key, value)
    torch.set_num_threads(1)
    if args.from_csv:
        frame = pd.concat([pd.read_csv(path) for path in args.from_csv], ignore_index=True)
        text = report(frame.to_dict("records"), args, frame["seconds"].sum(), frame["cpu_seconds"].sum())
        args.report.write_text(text)
        print(text)
        return
    start, cpu0 = time.perf_counter(), time.process_time()
    rows = run(args)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = report(rows, args, time.perf_counter() - start, time.process_time() - cpu0 + usage.ru_utime)
    args.report.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
