"""Why learning from crowds (Raykar's EM) fell below majority vote on the Table 6 Adult crowd.

On the calibrated feature crowd (``TABLE6_CROWDS``; 500 items, 11 answers on
the 1-4 scale, 200 workers, 15 % spammers, as ``crowd_aggregation.py``), per
data set and seed, this scores against the true labels:

* the vote, Dawid-Skene, and learning from crowds with the classifier's prior
  fitted in-sample (the code before the fix, ``folds=0``) and cross-fitted
  (``folds=5``, the default now), its posterior label and its classifier's
  own prediction, at three regularisation strengths ``C``;
* the same EM started from the true labels instead of the vote (if it drifts
  to the same place, the trouble is the model, not the start);
* the share of positive labels each gives beside the truth's;
* a logistic regression fitted to the soft vote share (cross-fitted) and
  ``learning_from_crowds_difficulty`` without quiz items (clarity 1 / n).

    PYTHONPATH=. nice -n 10 python benchmarks/crowd_lfc_diagnosis.py   # writes results/crowd_lfc_diagnosis.md
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fairal import crowd
from fairal.crowd_models import (
    _CrowdArrays,
    _fit_classifier,
    _fold_of,
    _logit,
    fit_difficulty_learning_from_crowds,
    fit_learning_from_crowds,
)
from fairal.crowd_simulation import TABLE6_CROWDS, reference_scores, simulate_feature_crowd
from fairal.datasets import load_adult, load_compas

RESULTS = Path(__file__).parent / "results"
SCALE = "confidence4"


def em_from(answers: pd.DataFrame, features: pd.DataFrame, start: pd.Series, n_iter: int = 50,
            tol: float = 1e-3) -> tuple[pd.Series, int]:
    """Raykar's EM as fit_learning_from_crowds runs it (cross-fitted prior), started from the posterior ``start``
    (item id -> P(y = 1)) instead of the soft vote."""
    from sklearn.linear_model import LogisticRegression

    data = _CrowdArrays.build(answers, features, SCALE, None)
    posterior = start.reindex(data.items).to_numpy(dtype=float)
    classifier = LogisticRegression(max_iter=200, warm_start=True)
    fold = _fold_of(len(data.items), 5)
    done = 0
    for done in range(1, n_iter + 1):  # noqa: B007
        confusion = data.confusions(posterior, 1.0)
        prior = np.clip(_fit_classifier(classifier, data.X, posterior, fold), 1e-6, 1 - 1e-6)
        updated = 1 / (1 + np.exp(-(_logit(prior) + data.evidence(confusion))))
        change, posterior = float(np.abs(updated - posterior).mean()), updated
        if change < tol:
            break
    return pd.Series(posterior, index=data.items), done


def soft_vote_lr(answers: pd.DataFrame, features: pd.DataFrame) -> pd.Series:
    """A logistic regression on the share of positive decisions per item, cross-fitted (5 folds): P(y = 1 | x)."""
    from sklearn.linear_model import LogisticRegression

    data = _CrowdArrays.build(answers, features, SCALE, None)
    prior = _fit_classifier(LogisticRegression(max_iter=500), data.X, data.vote_share(), _fold_of(len(data.items), 5))
    return pd.Series(prior, index=data.items)


def run_seed(data, scores, dataset: str, seed: int, n_items: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data), size=n_items, replace=False)
    ids = data.ids[rows].astype(str)
    truth = pd.Series(data.y[rows], index=ids)
    features = pd.DataFrame(data.X[rows], index=ids)
    answers = simulate_feature_crowd(truth, scores[rows], n_workers=200, answers_per_item=11, scale=SCALE,
                                     spammer_share=0.15, seed=seed, **TABLE6_CROWDS[dataset])
    row: dict = {"data set": dataset, "seed": seed, "truth: positive share": truth.mean()}

    def score(name: str, labels: pd.Series) -> None:
        labels = labels.reindex(truth.index)
        row[name] = float((labels == truth).mean())
        row[f"{name}: positive share"] = float(labels.mean())

    score("majority vote", crowd.majority_vote(answers, scale=SCALE)["label"])
    score("Dawid-Skene", crowd.dawid_skene(answers, scale=SCALE)["label"])
    for folds, where in ((0, "in-sample"), (5, "cross-fitted")):
        for C in (0.1, 1.0, 10.0):
            model = fit_learning_from_crowds(answers, features, scale=SCALE, folds=folds, C=C)
            score(f"LfC {where} C={C:g}: posterior", model.labels["label"])
            score(f"LfC {where} C={C:g}: classifier", (model.labels["classifier"] > 0.5).astype(int))
            row[f"LfC {where} C={C:g}: EM iterations"] = model.n_iter
    from_truth, iterations = em_from(answers, features, truth.astype(float))
    score("LfC cross-fitted C=1, EM from the truth: posterior", (from_truth > 0.5).astype(int))
    row["LfC cross-fitted C=1, EM from the truth: EM iterations"] = iterations
    score("LR on the soft vote share (cross-fitted)", (soft_vote_lr(answers, features) > 0.5).astype(int))
    no_gold = fit_difficulty_learning_from_crowds(answers, features, scale=SCALE)
    score("LfC + item difficulty, no quiz items", no_gold.labels["label"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS / "crowd_lfc_diagnosis.md")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start, cpu0 = time.perf_counter(), time.process_time()
    rows = []
    for dataset in ("adult", "compas"):
        data = load_compas(sensitive="race") if dataset == "compas" else load_adult(sensitive="sex")
        scores = reference_scores(data.X, data.y)
        rows += [run_seed(data, scores, dataset, seed, args.items) for seed in range(args.seeds)]
        print(f"{dataset}: {time.perf_counter() - start:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    table = frame.drop(columns="seed").groupby("data set", sort=False).agg(
        lambda v: f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}").T
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lines = ["# Why learning from crowds fell below the vote on the Table 6 Adult crowd", "",
             f"Command: `PYTHONPATH=. nice -n 10 python benchmarks/crowd_lfc_diagnosis.py --seeds {args.seeds} "
             f"--items {args.items}` (wall {time.perf_counter() - start:.0f} s, CPU "
             f"{time.process_time() - cpu0:.0f} s; peak memory {usage.ru_maxrss / 1024:.0f} MB).", "",
             (__doc__ or "").split("\n\n", 1)[1].split("\n\n    PYTHONPATH")[0], "",
             f"Mean ± sd over {args.seeds} seeds:", "", table.to_markdown(), ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
