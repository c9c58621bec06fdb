"""Crowd label aggregation on COMPAS and Adult with two simulated 1-4 crowds (FR-Train §4.4, Table 6).

Two simulators, both calibrated to Table 6 at N = 1:

* ``feature`` (the main setting): ``fairal.crowd_simulation.simulate_feature_crowd``
  with ``TABLE6_CROWDS`` — workers share mistakes on items whose features
  mislead (a reference model's margin), 15 % spammers, 200 workers with
  log-normal activity (each answers part of the items); calibrated at
  N = 1, 5 and 11 (``benchmarks/crowd_calibration.py``).
* ``independent``: ``fairal.crowd.simulate_crowd`` — independent errors given
  the true label, 100 workers, 15 % spammers (below).

For each data set and seed: 1,000 items drawn at random are the items to
label and 30 more are gold quiz items; the crowd answers each item 11 times
and every gold item once per worker, on the 1-4 scale. For a budget of
N answers per item (the first N collected) we score majority vote, the
paper's mean score and Dawid-Skene against the data set's true labels,
with all answers and after gold-based exclusion (the excluded workers'
answers are dropped from the N, so items keep at most N answers, as in the
paper). Accuracy is overall and per sensitive group (COMPAS: race, Adult:
sex); agreement (Fleiss, Krippendorff, pairwise Cohen) is on all 11
answers. Every aggregator of ``fairal.crowd.AGGREGATORS`` is scored;
crowd-kit's slower GLAD, MACE and M-MSR only at N = 5 and 11, exclusion only
for the quick ones. ``learning_from_crowds`` reads the items' features (the
data set's ``X``). Beside them: a logistic regression trained on the same
items' *true* labels, scored on those items by 5-fold cross-fitting.

Independent crowd: worker accuracies are set from the paper's Table 6: its N = 1 accuracy is
the average worker's accuracy, spammers included (0.609 COMPAS, 0.645
Adult). With 15 % spammers at 0.5, the other workers average
(0.609 - 0.075) / 0.85 = 0.63 on COMPAS and (0.645 - 0.075) / 0.85 = 0.67
on Adult; they are drawn uniformly within ± 0.10 of that.

    PYTHONPATH=. nice -n 10 python benchmarks/crowd_aggregation.py   # writes results/crowd_aggregation.md

``--skip-slow`` leaves out GLAD, MACE and M-MSR; ``--methods glad mace mmsr`` runs only those (and the
cheap Bayes bound and true-label LR), e.g. to add them to a run that skipped them.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairal import crowd
from fairal.crowd_simulation import TABLE6_CROWDS, reference_scores, simulate_feature_crowd
from fairal.datasets import load_adult, load_compas

RESULTS = Path(__file__).parent / "results"
NS = (1, 5, 11)
SLOW_NS = (11,)  # GLAD, MACE, M-MSR: seconds per fit
N_WORKERS = 100
N_FEATURE_WORKERS = 200
N_GOLD = 30
SPAMMER_SHARE = 0.15
SCALE = "confidence4"
MIN_ACCURACY = 0.6  # exclusion threshold on gold accuracy (rule: Wilson upper bound below it)
SIMULATORS = ("feature", "independent")
#: Paper's Table 6: crowd accuracy (mean of N answers vs 2.5) and a logistic regression on true labels.
PAPER_TABLE6 = {"compas": {1: 0.609, 5: 0.656, 11: 0.667, "LR": 0.659},
                "adult": {1: 0.645, 5: 0.721, 11: 0.743, "LR": 0.804}}
METHOD_NAMES = {"majority_vote": "majority vote", "mean_score": "mean score (paper)", "dawid_skene": "Dawid-Skene",
                "one_coin_dawid_skene": "one-coin DS", "dawid_skene_4": "DS on 1-4", "glad": "GLAD", "mace": "MACE",
                "mmsr": "M-MSR", "learning_from_crowds": "learning from crowds",
                "learning_from_crowds_difficulty": "LfC + item difficulty", "lr_true_labels": "LR true labels",
                "bayes_bound": "Bayes bound"}
#: Methods that also read the quiz items' answers and known labels (the others see the items' answers only).
GOLD_METHODS = ("learning_from_crowds_difficulty",)
QUICK = [m for m in crowd.AGGREGATORS if m in crowd.QUICK_AGGREGATORS]
SLOW = [m for m in crowd.AGGREGATORS if m not in crowd.QUICK_AGGREGATORS]


def worker_range(dataset: str) -> tuple[float, float]:
    """Independent crowd: non-spammer accuracy range whose crowd average matches Table 6 at N = 1."""
    mean = (PAPER_TABLE6[dataset][1] - SPAMMER_SHARE * 0.5) / (1 - SPAMMER_SHARE)
    return round(mean - 0.1, 3), round(mean + 0.1, 3)


def load(dataset: str):
    return load_compas(sensitive="race") if dataset == "compas" else load_adult(sensitive="sex")


def simulate(simulator: str, dataset: str, truth: pd.Series, scores: pd.Series, counts: np.ndarray, seed: int):
    if simulator == "feature":
        answers, workers = simulate_feature_crowd(truth, scores, n_workers=N_FEATURE_WORKERS, answers_per_item=counts,
                                                  scale=SCALE, spammer_share=SPAMMER_SHARE, seed=seed,
                                                  return_workers=True, **TABLE6_CROWDS[dataset])
    else:
        answers, workers = crowd.simulate_crowd(truth, n_workers=N_WORKERS, answers_per_item=counts, scale=SCALE,
                                                worker_accuracy=worker_range(dataset), spammer_share=SPAMMER_SHARE,
                                                seed=seed, return_workers=True)
    return answers, workers


def _answer_likelihood(simulator: str, dataset: str, answers: pd.DataFrame, workers: pd.DataFrame,
                       mean: np.ndarray) -> np.ndarray:
    """P(answer | the simulator's own parameters) per answer; ``mean``: feature crowd, the item mean per answer
    (any shape broadcasting against the answers); independent crowd, the true label per answer."""
    from scipy.stats import norm

    worker = workers.loc[answers["worker_id"].astype(str)]
    answer = answers["answer"].to_numpy()
    if simulator == "feature":
        sd = worker["noise"].to_numpy()[:, None]
        cuts = np.array([-np.inf, -1.0, 0.0, 1.0, np.inf])  # 1 | 2 | 3 | 4 at -+ sure_threshold * sigma_w
        low, high = cuts[answer - 1][:, None] * sd, cuts[answer][:, None] * sd
        p = norm.cdf((high - mean) / sd) - norm.cdf((low - mean) / sd)
    else:
        accuracy = worker["accuracy"].to_numpy()
        positive, strong = answer >= 3, (answer == 1) | (answer == 4)
        right = positive == (np.asarray(mean) == 1)
        sure = np.where(right, crowd.STRONG_WHEN_CORRECT, crowd.STRONG_WHEN_WRONG)
        p = np.where(right, accuracy, 1 - accuracy) * np.where(strong, sure, 1 - sure)
    spam = worker["spammer"].to_numpy()
    return np.where(spam.reshape(spam.shape + (1,) * (np.ndim(p) - 1)), 0.25, p)


def bayes_bound(simulator: str, dataset: str, answers: pd.DataFrame, workers: pd.DataFrame, items: pd.Index,
                reference: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """P(y = 1 | reference score, answers) under the simulator's own parameters: an upper bound on what any
    aggregator can reach from these answers and features (it knows every worker's noise, who the spammers
    are and the reference model fitted on all rows' true labels; ``prior`` = that model's P(y = 1 | x)).
    Feature crowd: the item's shared misperception xi is integrated out (Gauss-Hermite, 41 nodes)."""
    item = items.get_indexer(answers["item_id"])
    log_lik = np.zeros((2, len(items)))
    for y in (0, 1):
        if simulator == "feature":
            params = TABLE6_CROWDS[dataset]
            nodes, weights = np.polynomial.hermite_e.hermegauss(41)
            mean = (reference[item][:, None] + params["shared_noise"] * nodes[None, :]
                    + params["truth_signal"] * (2 * y - 1))
            log_p = np.log(np.clip(_answer_likelihood(simulator, dataset, answers, workers, mean), 1e-300, None))
            per_node = np.stack([np.bincount(item, weights=log_p[:, k], minlength=len(items))
                                 for k in range(len(nodes))], axis=1)
            top = per_node.max(axis=1, keepdims=True)
            log_lik[y] = top[:, 0] + np.log((np.exp(per_node - top) * weights / weights.sum()).sum(axis=1))
        else:
            p = _answer_likelihood(simulator, dataset, answers, workers, np.full(len(answers), y))
            log_lik[y] = np.bincount(item, weights=np.log(p), minlength=len(items))
    log_odds = np.log(prior) - np.log1p(-prior) + log_lik[1] - log_lik[0]
    return 1 / (1 + np.exp(-log_odds))


def reference_prior(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(y = 1 | reference score): the reference scores calibrated by a logistic regression on all rows."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(scores[:, None], y).predict_proba(scores[:, None])[:, 1]


def true_label_lr(features: pd.DataFrame, truth: pd.Series, seed: int) -> float:
    """A logistic regression on the items' true labels, scored on the same items by 5-fold cross-fitting."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    predicted = cross_val_predict(LogisticRegression(max_iter=1000), features.to_numpy(), truth.to_numpy(), cv=cv)
    return float((predicted == truth.to_numpy()).mean())


def score_rows(method: str, labels: pd.Series, items: pd.Series, groups: pd.Series) -> list[dict]:
    """Accuracy rows (overall and per group) of 0/1 ``labels`` for ``items``, in compare_aggregations' shape."""
    scored = pd.DataFrame({"truth": items, "group": groups.loc[items.index], "label": labels.loc[items.index]})
    parts = [("(all)", scored)] + list(scored.groupby("group", sort=True))
    return [{"method": method, "group": g, "n_items": len(part), "coverage": 1.0,
             "accuracy": float((part["label"] == part["truth"]).mean()), "tied_share": 0.0} for g, part in parts]


def run_seed(data, scores_all, prior_all, dataset: str, simulator: str, seed: int, n_items: int):
    """Accuracy rows, exclusion stats and agreement for one data set, simulator and seed."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data), size=n_items + N_GOLD, replace=False)
    ids = data.ids[rows].astype(str)
    truth = pd.Series(data.y[rows], index=ids)
    groups = pd.Series(data.group[rows], index=ids)
    features = pd.DataFrame(data.X[rows], index=ids)
    counts = np.r_[np.full(n_items, max(NS)), np.full(N_GOLD, N_WORKERS if simulator == "independent" else 60)]
    answers, workers = simulate(simulator, dataset, truth, pd.Series(scores_all[rows], index=ids), counts, seed)
    items, gold = truth.iloc[:n_items], truth.iloc[n_items:]
    quality = crowd.gold_accuracy(answers, gold, scale=SCALE)
    _, excluded = crowd.exclude_workers(answers, quality, min_accuracy=MIN_ACCURACY)
    spammers = set(workers.index[workers["spammer"]])
    base = {"dataset": dataset, "simulator": simulator, "seed": seed}
    exclusion = base | {"excluded": len(excluded), "spammers excluded": len(spammers & set(excluded)),
                        "spammers": len(spammers), "non-spammers excluded": len(set(excluded) - spammers)}
    on_items = answers[answers["item_id"].isin(items.index)]
    results = []
    for n in NS:
        first_n = answers[answers["position"] < n]  # the quiz items' first n answers too (GOLD_METHODS read them)
        methods = QUICK + (SLOW if n in SLOW_NS else [])
        variants = (("all", first_n, methods), ("excl", first_n[~first_n["worker_id"].isin(excluded)], QUICK))
        for variant, kept, chosen in variants:
            for with_gold in (False, True):
                picked = [m for m in chosen if (m in GOLD_METHODS) == with_gold]
                if not picked:
                    continue
                seen = kept if with_gold else kept[kept["item_id"].isin(items.index)]
                table = crowd.compare_aggregations(seen, items, scale=SCALE, groups=groups.loc[items.index],
                                                   methods=picked, features=features, gold=gold if with_gold else None)
                results.append(table.assign(N=n, answers=variant, **base))
        budget = on_items[on_items["position"] < n]
        bound = bayes_bound(simulator, dataset, budget, workers, items.index, scores_all[rows][:n_items],
                            np.clip(prior_all[rows][:n_items], 1e-6, 1 - 1e-6))
        results.append(pd.DataFrame(score_rows("bayes_bound", pd.Series((bound > 0.5).astype(int), index=items.index),
                                               items, groups)).assign(N=n, answers="all", **base))
    lr = true_label_lr(features.loc[items.index], items, seed)
    results.append(pd.DataFrame([{"method": "lr_true_labels", "group": "(all)", "n_items": len(items),
                                  "coverage": 1.0, "accuracy": lr, "tied_share": 0.0, "N": n, "answers": "all"}
                                 for n in NS]).assign(**base))
    stats = crowd.agreement(on_items, scale=SCALE) | base
    return pd.concat(results), exclusion, stats


def mean_sd(values: pd.Series, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return (f"{values.mean():{sign}.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1
            else f"{values.mean():{sign}.3f}")


def accuracy_table(results: pd.DataFrame, group: str) -> pd.DataFrame:
    part = results[results["group"] == group]
    table = part.pivot_table(index="N", columns=["method", "answers"], values="accuracy", aggfunc=mean_sd)
    order = [(m, v) for m in crowd.AGGREGATORS for v in ("all", "excl")] + [("lr_true_labels", "all"),
                                                                             ("bayes_bound", "all")]
    table = table.reindex(columns=[c for c in order if c in table.columns])
    names = METHOD_NAMES | {"lr_true_labels": "LR on true labels (same items, 5-fold)",
                            "bayes_bound": "Bayes bound (simulator's parameters)"}
    table.columns = [f"{names[m]}{' + excl.' if v == 'excl' else ''}" for m, v in table.columns]
    return table.fillna("—")


def goal_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Issue 14's goal at N = 11: each learning-from-crowds model against DS, MV and the true-label LR, per simulator.

    Differences are per seed (mean ± sd); "met" asks for the mean gaps (≥ 0.04 over DS and MV, > 0 over the
    true-label LR); the Bayes bound is what the simulator's own parameters allow (``bayes_bound``)."""
    part = results[(results["group"] == "(all)") & (results["N"] == 11) & (results["answers"] == "all")]
    wide = part.pivot_table(index=["simulator", "dataset", "seed"], columns="method", values="accuracy")
    rows = []
    for (simulator, dataset), frame in wide.groupby(level=["simulator", "dataset"], sort=False):
        for model in ("learning_from_crowds", "learning_from_crowds_difficulty"):
            if model not in frame:
                continue
            ours = frame[model]
            row = {"crowd": simulator, "data set": dataset, "model": METHOD_NAMES[model], "accuracy": mean_sd(ours)}
            gaps = {other: ours - frame[other] for other in ("dawid_skene", "majority_vote", "mean_score",
                                                             "lr_true_labels", "bayes_bound")}
            for other, gap in gaps.items():
                row[f"− {METHOD_NAMES[other]}"] = mean_sd(gap, signed=True)
            row["Bayes bound − MV"] = mean_sd(frame["bayes_bound"] - frame["majority_vote"], signed=True)
            row["met: ≥ 0.04 over DS and MV"] = bool(min(gaps["dawid_skene"].mean(), gaps["majority_vote"].mean())
                                                    >= 0.04)
            row["met: > true-label LR"] = bool(gaps["lr_true_labels"].mean() > 0)
            rows.append(row)
    return pd.DataFrame(rows)


def report(results, exclusions, agreements, args, wall: float, cpu: float) -> str:
    lines = [
        "# Crowd label aggregation on COMPAS and Adult (two simulated 1-4 crowds)",
        "",
        "Command: `PYTHONPATH=. nice -n 10 python benchmarks/crowd_aggregation.py " + " ".join(sys.argv[1:]) + "` "
        f"(wall {wall:.0f} s, CPU {cpu:.0f} s on 2 shared, loaded cores).",
        "",
        "Seeds done (simulator, data set): " + ", ".join(
            f"{k[0]}/{k[1]} {v}" for k, v in results.groupby(["simulator", "dataset"], sort=False)["seed"].nunique()
            .items()) + ".",
        "",
        f"Setup: per data set and seed, {args.items} random items to label plus {N_GOLD} gold "
        "quiz items, 11 answers per item on the 1-4 scale, 15 % spammers. **feature** crowd (main): "
        f"`simulate_feature_crowd`, {N_FEATURE_WORKERS} workers with log-normal activity, shared mistakes on items "
        "whose features mislead, parameters `TABLE6_CROWDS` (calibrated in "
        "[`crowd_calibration.md`](crowd_calibration.md)); each gold item is answered by 60 workers. "
        f"**independent** crowd: `simulate_crowd`, {N_WORKERS} workers, independent errors, a right decision is "
        "'sure' (1/4) with probability 0.5, a wrong one 0.3; non-spammer accuracy uniform in ±0.10 around the value "
        "that reproduces Table 6 at N = 1: " + ", ".join(f"{d} {worker_range(d)}" for d in PAPER_TABLE6) + ". "
        "N = the first N answers per item. **+ excl.** = after dropping workers whose Wilson 95 % upper bound of "
        f"gold accuracy is below {MIN_ACCURACY} (quick methods only). GLAD, MACE and M-MSR (crowd-kit, seconds per "
        f"fit) run at N = {', '.join(map(str, SLOW_NS))} only (— elsewhere). Learning from crowds reads the data "
        "set's features; LfC + item difficulty (`learning_from_crowds_difficulty`) also reads the quiz items' "
        "first N answers and their known labels (the other methods see the items' answers only). **Bayes bound**: "
        "the posterior under the simulator's own parameters (every worker's noise, the spammers, the shared "
        "misperception integrated out) with the reference model fitted on all rows' true labels as the prior: no "
        "aggregator of these answers and features can expect more. Accuracy against the data set's true labels, "
        "mean ± sd over seeds.",
        "",
        "## Issue 14 goal rows (N = 11; differences per seed, mean ± sd)",
        "",
        goal_rows(results).to_markdown(index=False),
        "",
    ]
    for simulator in SIMULATORS:
        for dataset in PAPER_TABLE6:
            part = results[(results["dataset"] == dataset) & (results["simulator"] == simulator)]
            if part.empty:
                continue
            sensitive = "race" if dataset == "compas" else "sex"
            overall = accuracy_table(part, "(all)")
            overall.insert(0, "paper (Table 6)", [f"{PAPER_TABLE6[dataset][n]:.3f}" if n in PAPER_TABLE6[dataset]
                                                  else "—" for n in overall.index])
            lines += [f"## {simulator} crowd, {dataset} — overall accuracy", "", overall.to_markdown(), "",
                      f"Paper's logistic regression on true labels (test data): {PAPER_TABLE6[dataset]['LR']}.", ""]
            at11 = part[(part["N"] == 11) & (part["answers"] == "all") & (part["group"] != "(all)")]
            by_group = at11.pivot_table(index="method", columns="group", values="accuracy", aggfunc=mean_sd)
            by_group.index = [METHOD_NAMES.get(m, m) for m in by_group.index]
            lines += [f"Per group ({sensitive}) at N = 11:", "", by_group.to_markdown(), ""]
    ex = pd.DataFrame(exclusions).groupby(["simulator", "dataset"], sort=False).mean(numeric_only=True)
    lines += ["## Gold-based exclusion (mean workers per seed)", "", ex.drop(columns="seed").round(1).to_markdown(), ""]
    ag = pd.DataFrame(agreements)
    by = ag.groupby(["simulator", "dataset"], sort=False)
    ag_table = by[["fleiss_kappa", "krippendorff_alpha", "cohen_kappa_mean"]].agg(mean_sd)
    lines += ["## Agreement (all 11 answers per item; Fleiss and Cohen on 0/1 decisions, Krippendorff ordinal on 1-4)",
              "", ag_table.to_markdown(), ""]
    lines += [
        "## Beside the paper",
        "",
        "The independent crowd matches Table 6 at N = 1 by construction but then improves much faster than the "
        "paper's real workers, because its errors are independent given the true label. The feature crowd also "
        "matches N = 5 and N = 11 (calibration), because its workers share mistakes on items whose features "
        "mislead: averaging more of them converges to what the features suggest, not to the truth, which is what "
        "the paper observed. Only the feature crowd should guide the choice of method.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--simulators", nargs="+", default=list(SIMULATORS), choices=SIMULATORS)
    parser.add_argument("--out", type=Path, default=RESULTS / "crowd_aggregation.md")
    parser.add_argument("--csv", type=Path, default=None, help="also write the per-seed rows")
    parser.add_argument("--skip-slow", action="store_true",
                        help="leave out crowd-kit's GLAD, MACE and M-MSR (minutes per seed; they do not read the "
                             "features, so their figures for the same seeds do not change)")
    parser.add_argument("--methods", nargs="+", default=None, choices=crowd.AGGREGATORS,
                        help="run only these aggregators (the Bayes bound, the true-label LR, exclusion and "
                             "agreement are always computed; the slow ones still only at N = 11)")
    args = parser.parse_args()
    if args.skip_slow:
        SLOW.clear()
    if args.methods:
        QUICK[:] = [m for m in QUICK if m in args.methods]
        SLOW[:] = [m for m in SLOW if m in args.methods]
    start, cpu0 = time.perf_counter(), time.process_time()
    results, exclusions, agreements = [], [], []
    loaded = {dataset: load(dataset) for dataset in PAPER_TABLE6}
    scores = {dataset: reference_scores(data.X, data.y) for dataset, data in loaded.items()}
    priors = {dataset: reference_prior(scores[dataset], loaded[dataset].y) for dataset in loaded}
    for simulator in args.simulators:  # the feature crowd first: the goal rows
        for seed in range(args.seeds):
            for dataset, data in loaded.items():
                rows, exclusion, stats = run_seed(data, scores[dataset], priors[dataset], dataset, simulator, seed,
                                                  args.items)
                results.append(rows)
                exclusions.append(exclusion)
                agreements.append(stats)
                print(f"{dataset} {simulator} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
                if args.csv:
                    pd.concat(results).to_csv(args.csv, index=False)
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                text = report(pd.concat(results), exclusions, agreements, args, time.perf_counter() - start,
                              time.process_time() - cpu0 + usage.ru_utime + usage.ru_stime)
                args.out.write_text(text)  # after every seed, so an interrupted run still leaves its table
    print(text)


if __name__ == "__main__":
    main()
