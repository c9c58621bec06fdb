"""Offline active-learning runs with oracle labels: methods × seeds × budgets → a tidy table.

A *method* is a query strategy plus the trainer that learns from its labels
(PANDA §4.1: "fairlearn" = random selection + fairlearn's reductions,
"fairlearn_al" = margin selection + fairlearn). The setting follows PANDA §4:

- PANDA's split (``split_seed``): meta-train half D0, pool, test set.
- ``representation="pretrained"`` (default): every method sees the features
  of an MLP pretrained on D0 (:mod:`fairal.panda.representation`), so all
  strategies share one representation, as in the paper; ``"raw"`` uses the
  encoded features.
- The learner starts from ``n_initial`` labeled examples drawn from D0 (the
  same seed set the app uses) and adds the selected pool examples. (The paper
  trains the head on the B selected examples only; with a small seed every
  method has a model from budget 0 on, which adaptive strategies need.)
- Adaptive strategies (margin, entropy, FAL) are re-queried every
  ``query_batch`` labels with the model retrained on everything labeled so
  far; non-adaptive ones (random, group-aware random, PANDA) rank the pool once.
- Each checkpoint in ``budgets`` trains the method's trainer on seed +
  selected labels and evaluates every metric on the test set, through the
  same step as the app (:mod:`fairal.training`). Trainers that read a clean
  validation set (FR-Train, FORML) get the seed examples, as a project does
  before a crowd-built set exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from fairal import training
from fairal.datasets import Dataset, panda_split
from fairal.panda.representation import pretrain_representation
from fairal.projects import draw_initial
from fairal.research.methods import METHODS, Method
from fairal.strategies import STRATEGIES, make_strategy
from fairal.trainers import TRAINERS

__all__ = ["Method", "METHODS", "simulate", "default_budgets", "summarise", "read_simulation"]

logger = logging.getLogger(__name__)


#: Methods whose trainer is fixed whatever ``learner`` says (their trainer *is* the method).
_FIXED_TRAINER = {"fairlearn", "fairlearn_al", "panda", "panda_lr"}


def default_budgets(budget: int = 400, step: int = 25) -> list[int]:
    return list(range(0, budget + 1, step))


def _check(methods: Sequence[str], budgets: Sequence[int], pool_size: int) -> list[int]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got {list(methods)}")
    for name in methods:
        method = METHODS[name]
        if method.strategy not in STRATEGIES or method.trainer not in TRAINERS:
            raise ValueError(f"method {name!r} needs strategy {method.strategy!r} and trainer "
                             f"{method.trainer!r}, which are not available in this installation")
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 0:
        raise ValueError(f"budgets must be non-negative integers, got {budgets}")
    if budgets[-1] > pool_size:
        raise ValueError(f"the largest budget ({budgets[-1]}) is larger than the pool ({pool_size} items)")
    return budgets


def simulate(
    dataset: Dataset,
    methods: Sequence[str],
    *,
    seeds: Iterable[int] = (0,),
    budgets: Sequence[int] = tuple(default_budgets()),
    split_seed: int = 0,
    n_initial: int = 50,
    representation="pretrained",
    learner: str = "erm",
    query_batch: int = 10,
    trainer_params: dict[str, dict] | None = None,
    strategy_params: dict[str, dict] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run every method for every seed; one row per (method, seed, budget).

    Columns: method, strategy, trainer, seed, budget, n_labels, every metric
    of :data:`fairal.metrics.METRICS`, select_seconds and fit_seconds
    (cumulative selection / training time of the run up to that budget).
    ``representation``: "pretrained", "raw", or a
    :class:`fairal.panda.representation.Representation` (e.g. the one stored in a
    PANDA policy file, so every method sees the features PANDA was trained on).
    ``learner``: the trainer of every method whose trainer is not part of the
    method itself ("erm" = converged logistic regression, "head" = PANDA's
    few-step linear head). ``progress`` is called with a message after each run.
    """
    from fairal.panda.representation import Representation

    if not isinstance(representation, Representation) and representation not in ("pretrained", "raw"):
        raise ValueError(f"representation must be 'pretrained', 'raw' or a Representation, got {representation!r}")
    if learner not in TRAINERS:
        raise ValueError(f"learner must be one of {sorted(TRAINERS)}, got {learner!r}")
    if query_batch < 1:
        raise ValueError(f"query_batch must be at least 1, got {query_batch}")
    split = panda_split(len(dataset), seed=split_seed)
    budgets = _check(methods, budgets, len(split.pool))
    features = dataset.X
    if isinstance(representation, Representation):
        features = representation.transform(dataset.X)
    elif representation == "pretrained":
        start = time.perf_counter()
        encoder = pretrain_representation(dataset.X[split.meta_train], dataset.y[split.meta_train],
                                          random_state=split_seed)
        features = encoder.transform(dataset.X)
        logger.info("pretrained the representation on %d rows in %.1f s", len(split.meta_train),
                    time.perf_counter() - start)
    rows = []
    for seed in seeds:
        initial = draw_initial(dataset, split.meta_train, n_initial, seed)
        for name in methods:
            start = time.perf_counter()
            trainer = METHODS[name].trainer if name in _FIXED_TRAINER else learner
            rows += _run(dataset, features, split, initial, name, seed, budgets, query_batch,
                         trainer, (trainer_params or {}).get(trainer, {}),
                         (strategy_params or {}).get(METHODS[name].strategy, {}))
            if progress is not None:
                progress(f"{name} seed {seed}: {time.perf_counter() - start:.1f} s")
    return pd.DataFrame(rows)


def _run(dataset, features, split, initial, name, seed, budgets, query_batch, trainer_name,
         trainer_params, strategy_params) -> list[dict]:
    method = METHODS[name]
    strategy = make_strategy(method.strategy, random_state=seed, **strategy_params)
    y, group = dataset.y, dataset.group
    test = features[split.test], y[split.test], group[split.test]
    # As in a project before a crowd-built set exists: the seed examples are the clean validation set.
    validation = features[initial], y[initial], group[initial]
    selected: list[int] = []
    unlabeled = np.asarray(split.pool, dtype=np.int64)
    select_seconds = fit_seconds = 0.0

    def fit():
        nonlocal fit_seconds
        labeled = np.concatenate([initial, np.asarray(selected, dtype=np.int64)])
        fitted = training.fit(trainer_name, (features[labeled], y[labeled], group[labeled]),
                              validation=validation, params=trainer_params)
        fit_seconds += fitted.seconds
        return fitted.model, labeled

    model, labeled = fit()
    order = None  # a non-adaptive strategy's one ranking
    rows = []
    for budget in budgets:
        while len(selected) < budget:
            start = time.perf_counter()
            if not strategy.adaptive:
                if order is None:
                    order = strategy.rank(model, features, unlabeled, labeled, y[labeled], groups=group).order
                picks = order[len(selected):budget]
            else:
                n = min(query_batch, budget - len(selected))
                picks = strategy.query(model, features, unlabeled, labeled, y[labeled], n, groups=group)
            select_seconds += time.perf_counter() - start
            selected += [int(p) for p in picks]
            unlabeled = np.setdiff1d(unlabeled, picks, assume_unique=True)
            if strategy.adaptive and len(selected) < budget:
                model, labeled = fit()
        if len(labeled) != len(initial) + len(selected):
            model, labeled = fit()
        scores = training.evaluate(model, test)
        rows.append({"method": name, "strategy": method.strategy, "trainer": trainer_name, "seed": seed,
                     "budget": budget, "n_labels": len(labeled), **scores,
                     "select_seconds": select_seconds, "fit_seconds": fit_seconds})
    return rows


def summarise(frame: pd.DataFrame, *, budget: int | None = None,
              columns: Sequence[str] = ("f1", "accuracy", "demographic_parity_difference",
                                        "demographic_parity_to_overall", "error_rate_balance")) -> pd.DataFrame:
    """Mean and standard error over seeds at one budget (the last by default), one row per method."""
    budget = int(frame["budget"].max()) if budget is None else budget
    at = frame[frame["budget"] == budget]
    grouped = at.groupby("method", sort=False)[list(columns)]
    mean, se = grouped.mean(), grouped.std(ddof=1) / np.sqrt(grouped.count())
    out = pd.DataFrame(index=mean.index)
    for column in columns:
        out[column] = mean[column]
        out[f"{column}_se"] = se[column]
    out.insert(0, "seeds", grouped.count()[columns[0]])
    out.insert(0, "budget", budget)
    return out.reset_index()


def _data_key(name: str) -> str:
    """A data set's name as both sides record it: "adult"; a CSV by its file stem ("csv:fair.csv" = "fair")."""
    from pathlib import PurePath

    name = str(name).strip()
    return PurePath(name[4:]).stem if name.startswith("csv:") else PurePath(name).stem


def read_simulation(source, *, dataset: str, sensitive: str, metric: str) -> pd.DataFrame:
    """A ``simulation.csv`` to draw beside a project's curves, checked against that project.

    ``dataset`` and ``sensitive`` are the project's (``projects.dataset``: a built-in name or
    ``csv:FILE``). Raises ValueError naming what does not fit: not a CSV, columns missing, a
    simulation of other data or of another sensitive attribute. Files written before simulate
    recorded the sensitive attribute are accepted on their data set alone.
    """
    try:
        frame = pd.read_csv(source)
    except Exception as error:  # pandas raises many kinds for a malformed file
        raise ValueError(f"could not read it as a CSV file ({error})") from None
    missing = {"method", "budget", "f1", "dataset", metric} - set(frame.columns)
    if missing:
        raise ValueError(f"it is not a simulation table written by python -m fairal simulate: "
                         f"the columns {sorted(missing)} are missing")
    simulated = sorted({str(name) for name in frame["dataset"].dropna()})
    if [_data_key(name) for name in simulated] != [_data_key(dataset)]:
        raise ValueError(f"it simulates {', '.join(simulated) or 'no named data set'}, but this project "
                         f"labels {dataset}")
    if "sensitive" in frame.columns:
        attributes = sorted({str(a) for a in frame["sensitive"].dropna()})
        if attributes != [str(sensitive)]:
            raise ValueError(f"it measures fairness for the sensitive attribute {', '.join(attributes)}, "
                             f"but this project uses {sensitive}")
    return frame
