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
  same step as the app (:mod:`fairal.trainers.training`). Trainers that read a clean
  validation set (FR-Train, FORML) get the seed examples, as a project does
  before a crowd-built set exists.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairal.datasets import Dataset, csv_limits, panda_split
from fairal.panda.representation import pretrain_representation
from fairal.projects import draw_initial
from fairal.research.methods import METHODS, Method
from fairal.strategies import STRATEGIES, make_strategy
from fairal.trainers import TRAINERS, training

__all__ = ["Method", "METHODS", "Run", "BACKENDS", "simulate", "plan_runs", "default_budgets", "summarise",
           "read_simulation"]

logger = logging.getLogger(__name__)


#: Where the runs of a sweep execute: this process, or Ray tasks (optional: requirements-ray.txt).
BACKENDS = ("serial", "ray")
#: The share of a GPU a Ray task asks for when its trainer runs on torch and the cluster has GPUs
#: (the trainers' steps are small: four runs share one GPU).
GPU_SHARE = 0.25
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # Ray workers import fairal from here

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


@dataclass(frozen=True)
class Run:
    """One unit of a sweep: a method, the trainer that learns from its labels, and a seed."""

    method: str
    trainer: str
    seed: int

    @property
    def file_name(self) -> str:
        return f"{self.method}__{self.trainer}__seed{self.seed}.csv"


@dataclass(frozen=True)
class _Sweep:
    """What every run of a sweep shares (sent once to each Ray worker)."""

    dataset: Dataset
    features: np.ndarray
    split: Any
    budgets: list[int]
    n_initial: int
    query_batch: int
    trainer_params: dict[str, dict]
    strategy_params: dict[str, dict]


def plan_runs(methods: Sequence[str], learners: Sequence[str], seeds: Iterable[int]) -> list[Run]:
    """The runs of a sweep, in the order of its table: seeds, then methods, then learners (a method
    whose trainer is part of it runs once per seed)."""
    runs = []
    for seed in seeds:
        for name in methods:
            trainers = [METHODS[name].trainer] if name in _FIXED_TRAINER else list(learners)
            runs += [Run(name, trainer, int(seed)) for trainer in trainers]
    return list(dict.fromkeys(runs))


def _features(dataset: Dataset, split, representation, split_seed: int) -> np.ndarray:
    from fairal.panda.representation import Representation

    if isinstance(representation, Representation):
        return representation.transform(dataset.X)
    if representation == "raw":
        return dataset.X
    start = time.perf_counter()
    encoder = pretrain_representation(dataset.X[split.meta_train], dataset.y[split.meta_train],
                                      random_state=split_seed)
    logger.info("pretrained the representation on %d rows in %.1f s", len(split.meta_train),
                time.perf_counter() - start)
    return encoder.transform(dataset.X)


def _check_options(representation, learners: Sequence[str], query_batch: int, backend: str) -> None:
    from fairal.panda.representation import Representation

    if not isinstance(representation, Representation) and representation not in ("pretrained", "raw"):
        raise ValueError(f"representation must be 'pretrained', 'raw' or a Representation, got {representation!r}")
    unknown = [name for name in learners if name not in TRAINERS]
    if unknown or not learners:
        raise ValueError(f"learner must be one or more of {sorted(TRAINERS)}, got {list(learners)}")
    if query_batch < 1:
        raise ValueError(f"query_batch must be at least 1, got {query_batch}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def simulate(
    dataset: Dataset,
    methods: Sequence[str],
    *,
    seeds: Iterable[int] = (0,),
    budgets: Sequence[int] = tuple(default_budgets()),
    split_seed: int = 0,
    n_initial: int = 50,
    representation="pretrained",
    learner: str | Sequence[str] = "erm",
    query_batch: int = 10,
    trainer_params: dict[str, dict] | None = None,
    strategy_params: dict[str, dict] | None = None,
    progress: Callable[[str], None] | None = None,
    backend: str = "serial",
    address: str | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Run every method for every seed (and learner); one row per (method, trainer, seed, budget).

    Columns: method, strategy, trainer, seed, budget, n_labels, every metric
    of :data:`fairal.metrics.METRICS`, select_seconds and fit_seconds
    (cumulative selection / training time of the run up to that budget).
    ``representation``: "pretrained", "raw", or a
    :class:`fairal.panda.representation.Representation` (e.g. the one stored in a
    PANDA policy file, so every method sees the features PANDA was trained on).
    ``learner``: the trainer (or a list of trainers: each one is a run) of every method whose
    trainer is not part of the method itself ("erm" = converged logistic regression, "head" =
    PANDA's few-step linear head). ``progress`` is called with a message after each run.

    ``backend``: "serial" (in this process) or "ray": each run is a Ray task (a local Ray, or the
    cluster at ``address``; a GPU share per task whose trainer runs on torch, where the cluster has
    GPUs); the numbers are the same either way. ``checkpoint``: a folder where each finished run is
    written (one CSV per run, with the sweep's settings); a sweep started again with the same folder
    and settings runs only what is missing, and refuses a folder written with other settings.
    """
    learners = [learner] if isinstance(learner, str) else list(learner)
    _check_options(representation, learners, query_batch, backend)
    split = panda_split(len(dataset), seed=split_seed)
    budgets = _check(methods, budgets, len(split.pool))
    runs = plan_runs(methods, learners, seeds)
    store = _Checkpoint(checkpoint, _identity(dataset, budgets, split_seed, n_initial, representation,
                                              query_batch, trainer_params, strategy_params)) if checkpoint else None
    results = {run: store.load(run) for run in runs if store is not None and store.has(run)}
    todo = [run for run in runs if run not in results]
    if results:
        logger.info("%d of %d runs are already in %s", len(results), len(runs), checkpoint)
    if todo:
        sweep = _Sweep(dataset, _features(dataset, split, representation, split_seed), split, budgets, n_initial,
                       query_batch, dict(trainer_params or {}), dict(strategy_params or {}))
        execute = _execute_ray if backend == "ray" else _execute_serial
        for run, rows, seconds in execute(sweep, todo, address=address):
            results[run] = rows
            if store is not None:
                store.save(run, rows)
            if progress is not None:
                progress(f"{run.method}/{run.trainer} seed {run.seed}: {seconds:.1f} s")
    return pd.DataFrame([row for run in runs for row in results[run]])


def _execute_serial(sweep: _Sweep, runs: list[Run], *, address=None) -> Iterator[tuple[Run, list[dict], float]]:
    for run in runs:
        yield (run, *_timed_run(sweep, run))


def _timed_run(sweep: _Sweep, run: Run) -> tuple[list[dict], float]:
    start = time.perf_counter()
    rows = _run(sweep, run)
    return rows, time.perf_counter() - start


def _uses_torch(trainer: str) -> bool:
    """Whether a trainer runs on torch (takes a ``device``): a Ray task for it asks for a GPU share."""
    import inspect

    return "device" in inspect.signature(TRAINERS[trainer]).parameters


def _execute_ray(sweep: _Sweep, runs: list[Run], *, address=None) -> Iterator[tuple[Run, list[dict], float]]:
    """Each run a Ray task, yielded as it finishes (tasks retry on a lost worker; a run is deterministic)."""
    try:
        import ray
    except ImportError as error:
        from fairal.panda.tuning import RAY_MISSING

        raise ValueError(RAY_MISSING.replace("tune-policy", "simulate")) from error
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": _PACKAGE_ROOT}})
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        shared = ray.put(sweep)
        task = ray.remote(_timed_run)
        pending = {task.options(num_cpus=1, num_gpus=GPU_SHARE if gpus and _uses_torch(run.trainer) else 0,
                                name=f"simulate {run.method}/{run.trainer}/{run.seed}").remote(shared, run): run
                   for run in runs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                yield (pending.pop(ref), *ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def _identity(dataset, budgets, split_seed, n_initial, representation, query_batch, trainer_params,
              strategy_params) -> dict:
    """What must match for runs written in a checkpoint folder to be reused."""
    import hashlib

    from fairal.panda.representation import Representation

    if isinstance(representation, Representation):
        representation = "sha256:" + hashlib.sha256(representation.to_bytes()).hexdigest()
    digest = hashlib.sha256(np.ascontiguousarray(dataset.X).tobytes() + dataset.y.tobytes()).hexdigest()
    return json.loads(json.dumps({
        "dataset": dataset.name, "sensitive": dataset.sensitive, "rows": len(dataset), "data_sha256": digest,
        "budgets": list(budgets), "split_seed": split_seed, "n_initial": n_initial, "representation": representation,
        "query_batch": query_batch, "trainer_params": trainer_params or {}, "strategy_params": strategy_params or {},
    }, default=str, sort_keys=True))


class _Checkpoint:
    """A folder of finished runs: ``settings.json`` and one ``<method>__<trainer>__seed<k>.csv`` per run."""

    def __init__(self, folder, identity: dict):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = self.folder / "settings.json"
        if settings.exists():
            recorded = json.loads(settings.read_text())
            if recorded != identity:
                changed = sorted(k for k in set(recorded) | set(identity) if recorded.get(k) != identity.get(k))
                raise ValueError(f"{self.folder} holds runs of another sweep (different {', '.join(changed)}); "
                                 "use another output folder, or delete it to start again")
        else:
            settings.write_text(json.dumps(identity, indent=1, sort_keys=True))

    def has(self, run: Run) -> bool:
        return (self.folder / run.file_name).exists()

    def load(self, run: Run) -> list[dict]:
        return pd.read_csv(self.folder / run.file_name).to_dict("records")

    def save(self, run: Run, rows: list[dict]) -> None:
        """Written whole or not at all (a temporary file renamed into place)."""
        path = self.folder / run.file_name
        partial = path.with_suffix(".partial")
        pd.DataFrame(rows).to_csv(partial, index=False)
        os.replace(partial, path)


def _run(sweep: _Sweep, run: Run) -> list[dict]:
    method, dataset, split = METHODS[run.method], sweep.dataset, sweep.split
    features, y, group = sweep.features, dataset.y, dataset.group
    initial = draw_initial(dataset, split.meta_train, sweep.n_initial, run.seed)
    strategy = make_strategy(method.strategy, random_state=run.seed, **sweep.strategy_params.get(method.strategy, {}))
    trainer_params = sweep.trainer_params.get(run.trainer, {})
    test = features[split.test], y[split.test], group[split.test]
    # As in a project before a crowd-built set exists: the seed examples are the clean validation set.
    validation = features[initial], y[initial], group[initial]
    pool = features[split.pool], group[split.pool]  # what pool_parity measures parity on, as projects do
    selected: list[int] = []
    unlabeled = np.asarray(split.pool, dtype=np.int64)
    select_seconds = fit_seconds = 0.0

    def fit():
        nonlocal fit_seconds
        labeled = np.concatenate([initial, np.asarray(selected, dtype=np.int64)])
        fitted = training.fit(run.trainer, (features[labeled], y[labeled], group[labeled]),
                              validation=validation, pool=pool, params=trainer_params)
        fit_seconds += fitted.seconds
        return fitted.model, labeled

    model, labeled = fit()
    order = None  # a non-adaptive strategy's one ranking
    rows = []
    for budget in sweep.budgets:
        while len(selected) < budget:
            start = time.perf_counter()
            if not strategy.adaptive:
                if order is None:
                    order = strategy.rank(model, features, unlabeled, labeled, y[labeled], groups=group).order
                picks = order[len(selected):budget]
            else:
                n = min(sweep.query_batch, budget - len(selected))
                picks = strategy.query(model, features, unlabeled, labeled, y[labeled], n, groups=group)
            select_seconds += time.perf_counter() - start
            selected += [int(p) for p in picks]
            unlabeled = np.setdiff1d(unlabeled, picks, assume_unique=True)
            if strategy.adaptive and len(selected) < budget:
                model, labeled = fit()
        if len(labeled) != len(initial) + len(selected):
            model, labeled = fit()
        scores = training.evaluate(model, test)
        rows.append({"method": run.method, "strategy": method.strategy, "trainer": run.trainer, "seed": run.seed,
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
    recorded the sensitive attribute are accepted on their data set alone. A file over the operator's
    limit on uploaded CSVs (``FAIRAL_MAX_CSV_BYTES``, :func:`fairal.datasets.csv_limits`) is refused
    before it is read; ``source`` is a path or a file object (an upload's ``size`` is used when it has one).
    """
    size = getattr(source, "size", None)
    if size is None and isinstance(source, (str, os.PathLike)) and os.path.exists(source):
        size = os.path.getsize(source)
    limit = csv_limits().max_bytes
    if size is not None and size > limit:
        raise ValueError(f"the file is {size:,} bytes, over the limit of {limit:,} bytes")
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
