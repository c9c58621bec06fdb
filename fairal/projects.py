"""Projects: a dataset split into seed / pool / test, a strategy, trainers and a budget.

A project is created once (``create_project``) and written to the store with
all its items; afterwards ``open_project`` rebuilds the runtime view (the
dataset, positions of each role) from what the store holds, so the app, the
command line and a background worker all see the same project.

Choices the papers leave open, made here:
- The split is PANDA's (50/50 meta-train / meta-test, meta-test 50/50 into
  pool and test). The classifier of this first slice starts from a small
  labeled *seed* of ``n_initial`` examples drawn from the meta-train half
  (with both classes present), so there is a model before the first label
  and the curve visibly moves with every label. PANDA's representation
  pretrained on the whole meta-train half comes with the strategies issue.
- The curve's budget is the number of labeled pool items.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fairal import crowd, metrics
from fairal.crowd import SCALES
from fairal.datasets import Dataset, DatasetError, load, load_csv, panda_split
from fairal.errors import ProjectError  # noqa: F401 (defined there, named here too)
from fairal.panda.strategy import (
    TRAIN_POLICY_HINT,
    PandaSampling,
    policies_for,
    policy_file,
    policy_misfit,
    policy_ref,
)
from fairal.project_arrays import arrays_folder, arrays_key, read_arrays, remove_arrays, write_arrays
from fairal.strategies import STRATEGIES, make_strategy
from fairal.text import check_name
from fairal.trainers import TRAINERS, USES_POOL, USES_VALIDATION, training
from fairal.trainers.models import FittedModel

__all__ = [
    "ProjectSettings",
    "CsvSource",
    "Project",
    "TrainingStep",
    "create_project",
    "open_project",
    "ensure_default_project",
    "DEFAULT_PROJECT_NAME",
    "DEFAULT_PROJECT",
    "ProjectError",
    "draw_initial",
    "policy_folder",
    "fitting_policies",
    "use_policy",
    "DataSummary",
    "summarize",
    "preview",
    "csv_dataset",
    "next_project_name",
    "EDITABLE",
    "settings_of",
    "update_project_settings",
    "archive_project",
    "restore_project",
    "delete_project",
    "labels_table",
]

logger = logging.getLogger(__name__)

DEFAULT_PROJECT_NAME = "Adult (demo)"


@dataclass(frozen=True)
class ProjectSettings:
    """What a user chooses when creating a project (Setup page, CLI)."""

    name: str
    dataset: str = "adult"
    sensitive: str = "sex"
    strategy: str = "entropy"
    trainers: tuple[str, ...] = ("erm",)
    budget: int = 400
    metric: str = "demographic_parity_difference"
    threshold: float = 0.04
    split_seed: int = 0
    n_initial: int = 50
    #: "raw": the data set's encoded features; "representation": the features of the shipped
    #: PANDA policy's pretrained representation (what PANDA and its learner were trained on).
    features: str = "raw"
    #: Annotators per item (k); items with answers are finished first when k > 1.
    overlap: int = 1
    #: "binary" (one key per class) or "confidence4" (FR-Train's crowd scale: 1 = surely negative …
    #: 4 = surely positive; answers are averaged and compared with 2.5).
    scale: str = "binary"
    #: Share of quiz (gold) items mixed into each annotator's queue; gold = the seed items, whose
    #: labels are known.
    gold_rate: float = 0.0
    #: Tell the annotator right after a quiz item whether the answer was right.
    quiz_feedback: bool = True
    #: How long an item handed to an annotator stays locked for them.
    lease_seconds: int = 600
    #: The PANDA policy file (strategy "panda" or features "representation"); None: the first
    #: policy that fits the data (:func:`fitting_policies`), e.g. the shipped one for adult/sex.
    policy_path: str | None = None
    #: What the annotators' answer keys say for each class (None: the data's own class names).
    class_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CsvSource:
    """An uploaded CSV and how to read it (see :func:`fairal.datasets.load_csv`)."""

    data: bytes
    label: str
    sensitive: str
    display_columns: tuple[str, ...] | None = None
    positive: str | None = None
    id_column: str | None = None
    filename: str = "upload.csv"


def _validate(settings: ProjectSettings) -> None:
    if not settings.name.strip():
        raise ProjectError("the project needs a name")
    check_name(settings.name, "project name", max_length=200, error=ProjectError)  # no bidi/control characters
    if settings.strategy not in STRATEGIES:
        raise ProjectError(f"strategy must be one of {sorted(STRATEGIES)}, got {settings.strategy!r}")
    unknown = [t for t in settings.trainers if t not in TRAINERS]
    if unknown or not settings.trainers:
        raise ProjectError(f"trainers must be a non-empty subset of {sorted(TRAINERS)}, got {list(settings.trainers)}")
    if settings.metric not in metrics.METRICS:
        raise ProjectError(f"metric must be one of {list(metrics.METRICS)}, got {settings.metric!r}")
    if settings.budget < 1:
        raise ProjectError(f"budget must be at least 1, got {settings.budget}")
    if settings.n_initial < 2:
        raise ProjectError(f"n_initial must be at least 2 (one example of each class), got {settings.n_initial}")
    if settings.features not in ("raw", "representation"):
        raise ProjectError(f"features must be 'raw' or 'representation', got {settings.features!r}")
    if not isinstance(settings.overlap, int) or not 1 <= settings.overlap <= 25:
        raise ProjectError(f"overlap (annotators per item) must be an integer from 1 to 25, got {settings.overlap!r}")
    if settings.scale not in SCALES:
        raise ProjectError(f"scale must be one of {list(SCALES)}, got {settings.scale!r}")
    if not 0.0 <= settings.gold_rate <= 0.5:
        raise ProjectError(f"gold_rate must be between 0 and 0.5, got {settings.gold_rate!r}")
    if not 10 <= settings.lease_seconds <= 86_400:
        raise ProjectError(f"lease_seconds must be between 10 s and one day, got {settings.lease_seconds!r}")
    if settings.class_names is not None:
        names = [str(n).strip() for n in settings.class_names]
        if not all(names) or len(set(names)) != len(names) or max(map(len, names)) > 60:
            raise ProjectError(f"the class names must be different, non-empty and at most 60 characters, "
                               f"got {list(settings.class_names)}")


def _load_csv_source(source: CsvSource, *, stored: bool = False) -> Dataset:
    """The upload as a Dataset; the errors about the positive class use the Setup form's words.

    ``stored``: the CSV of an existing project, accepted when it was uploaded; the operator's size
    and row limits (:func:`fairal.datasets.csv_limits`) apply to new uploads only, so lowering them
    never locks a project out."""
    limit = len(source.data) if stored else None  # a file has fewer rows than bytes
    try:
        return load_csv(
            io.BytesIO(source.data),
            label=source.label,
            sensitive=source.sensitive,
            display_columns=list(source.display_columns) if source.display_columns else None,
            positive=source.positive,
            id_column=source.id_column,
            name=source.filename,
            max_bytes=limit,
            max_rows=limit,
        )
    except DatasetError as error:
        if error.field != "positive":
            raise
        values = ", ".join(error.values[:10]) + (", …" if len(error.values) > 10 else "")
        if source.positive is None:
            message = (f"the label column {source.label} has {len(error.values)} values ({values}), not two: "
                       "type the positive one under “Positive label value” (all others become the negative class)")
        else:
            message = (f"“Positive label value” {source.positive} is not a value of the label column "
                       f"{source.label}; its values are {values}")
        raise DatasetError(message, field="positive", values=error.values) from None


def csv_dataset(source: CsvSource) -> Dataset:
    """:func:`fairal.datasets.load_csv` of an upload, parsed once per process (same bytes, same options)."""
    options = {k: v for k, v in vars(source).items() if k != "data"}
    return _csv_dataset(hashlib.sha256(source.data).hexdigest(), source.data, tuple(sorted(options.items())))


@functools.lru_cache(maxsize=8)
def _csv_dataset(digest: str, data: bytes, options: tuple, stored: bool = False) -> Dataset:
    # ``digest`` keys the cache; parsing a large CSV once per process is enough.
    return _load_csv_source(CsvSource(data=data, **dict(options)), stored=stored)


def policy_folder(store) -> Path | None:
    """Where policies trained for this database's projects go: ``<db folder>/policies``."""
    return None if store.path is None else Path(store.path).resolve().parent / "policies"


def fitting_policies(store, dataset: Dataset) -> list[Path]:
    """PANDA policy files that can rank ``dataset``: shipped ones and those trained next to the database."""
    folder = policy_folder(store)
    return policies_for(dataset, folders=[folder] if folder is not None else [])


def _choose_policy(store, dataset: Dataset, wanted: str | None) -> str:
    """The ``policy_path`` a PANDA project stores; ProjectError when no policy fits its data."""
    if wanted:
        misfit = policy_misfit(policy_file(wanted), dataset)
        if misfit:
            raise ProjectError(f"this PANDA policy does not fit {dataset.name}: {misfit}")
        return policy_ref(policy_file(wanted))
    fitting = fitting_policies(store, dataset)
    if not fitting:
        raise ProjectError(f"no PANDA policy fits {dataset.name} ({dataset.X.shape[1]} features, sensitive "
                           f"{dataset.sensitive}); choose another strategy, or {TRAIN_POLICY_HINT}")
    return policy_ref(fitting[0])


def draw_initial(dataset: Dataset, candidates: np.ndarray, n_initial: int, seed: int) -> np.ndarray:
    """``n_initial`` random positions from ``candidates``, re-drawn (seeded) until both classes appear."""
    if n_initial > len(candidates):
        raise ProjectError(f"n_initial ({n_initial}) is larger than the meta-train part ({len(candidates)} rows)")
    rng = np.random.default_rng([seed, 1])
    for _ in range(100):
        chosen = rng.choice(candidates, size=n_initial, replace=False)
        if len(np.unique(dataset.y[chosen])) == 2:
            return np.sort(chosen)
    raise ProjectError(f"could not draw {n_initial} initial examples containing both classes; raise n_initial")


@dataclass(frozen=True)
class TrainingStep:
    """What :meth:`Project.train_step` did: the store's record (model version, curve point), the
    model, and the fit's seconds."""

    recorded: dict
    model: FittedModel
    fit_seconds: float


class Project:
    """Runtime view of a stored project: its dataset and the positions of each role."""

    def __init__(self, row: dict, dataset: Dataset, roles: Mapping[str, Iterable[int]]):
        self.row = row
        self.id = int(row["id"])
        self.dataset = dataset
        # Ids in increasing order (every loader's) are looked up by bisection in place; others
        # through their sorted order. No dict of a million Python ints (0.25 s to build at 1M rows).
        ids = dataset.ids
        increasing = len(ids) < 2 or bool((ids[1:] > ids[:-1]).all())
        self._order = None if increasing else np.argsort(ids, kind="stable")
        self._sorted_ids = ids if self._order is None else ids[self._order]
        self.seed = self.positions(roles.get("seed", []))
        self.pool = self.positions(roles.get("pool", []))
        self.test = self.positions(roles.get("test", []))

    @property
    def name(self) -> str:
        return self.row["name"]

    @functools.cached_property
    def features(self) -> np.ndarray:
        """What the trainers and strategies see: encoded features, or the PANDA representation."""
        if (self.row.get("config") or {}).get("features", "raw") != "representation":
            return self.dataset.X
        representation = PandaSampling(policy_path=self.policy_path).trained_policy().representation
        if self.dataset.X.shape[1] != representation.n_features:
            raise ProjectError(f"the PANDA representation of {self.policy_path.name} reads "
                               f"{representation.n_features} features; "
                               f"{self.dataset.name} has {self.dataset.X.shape[1]}")
        return representation.transform(self.dataset.X)

    @property
    def policy_path(self) -> Path:
        """The project's PANDA policy file (older projects: the default one)."""
        return policy_file(self._config("policy_path", None))

    @property
    def budget(self) -> int:
        return int(self.row["budget"])

    @property
    def class_names(self) -> tuple[str, ...]:
        """What each class is called on the answer keys: the names chosen in Setup, else the data's."""
        return tuple(self._config("class_names", None) or self.dataset.classes)

    @property
    def archived(self) -> bool:
        return self.row.get("archived_at") is not None

    @property
    def strategy_name(self) -> str:
        return self.row["strategy"]

    @property
    def trainer_names(self) -> list[str]:
        return list(self.row["trainers"])

    def _config(self, key, default):
        return (self.row.get("config") or {}).get(key, default)

    @property
    def overlap(self) -> int:
        return int(self._config("overlap", 1))

    @property
    def scale(self) -> str:
        return self._config("scale", "binary")

    @property
    def gold_rate(self) -> float:
        return float(self._config("gold_rate", 0.0))

    @property
    def quiz_feedback(self) -> bool:
        return bool(self._config("quiz_feedback", True))

    @property
    def lease_seconds(self) -> float:
        return float(self._config("lease_seconds", 600))

    def training_labels(self, store) -> dict[int, int]:
        """``{item_id: class}`` of the labeled pool items, the answers of several annotators aggregated
        (:meth:`labels_of` what :meth:`fairal.store.Store.training_inputs` reads)."""
        return self.labels_of(store.training_inputs(self.id, latest=len(self.dataset.classes) > 2))

    def labels_of(self, inputs: dict) -> dict[int, int]:
        """``{item_id: class}`` from a step's inputs (:meth:`fairal.store.Store.training_inputs`).

        Several classes: each item's majority label, ties to the latest. Binary answers: majority
        vote (:func:`fairal.crowd.majority_vote`); the 1–4 scale: the mean of the answers against
        2.5 (:func:`fairal.crowd.mean_score`, FR-Train's protocol).
        """
        if inputs["labels"] is not None:
            return dict(inputs["labels"])
        answers = inputs["answers"]
        if not answers:
            return {}
        frame = pd.DataFrame(answers)
        frame["position"] = frame.groupby("item_id").cumcount()  # answers come in commit order
        frame = frame[list(crowd.ANSWER_COLUMNS)]
        if self.scale == "confidence4":
            result = crowd.mean_score(frame)
        else:
            result = crowd.majority_vote(frame, scale="binary")
        return {int(item): int(label) for item, label in result["label"].items()}

    def validation_arrays(self, store):
        """(X, y, group) of the clean validation set: the crowd-built one when it exists, else the seed set."""
        return self._validation_arrays(store.validation_labels(self.id))

    def _validation_arrays(self, labels: dict[int, int]):
        if not labels:
            return self.features[self.seed], self.dataset.y[self.seed], self.dataset.group[self.seed]
        where = self.positions(labels.keys())
        return (self.features[where], np.fromiter(labels.values(), dtype=np.int64, count=len(labels)),
                self.dataset.group[where])

    def positions(self, item_ids) -> np.ndarray:
        """Dataset positions of stored item ids (any iterable of ints), in the order given."""
        wanted = (np.asarray(item_ids, dtype=np.int64).reshape(-1) if isinstance(item_ids, np.ndarray)
                  else np.fromiter(item_ids, dtype=np.int64))
        at = np.searchsorted(self._sorted_ids, wanted)
        found = at < len(self._sorted_ids)
        found[found] = self._sorted_ids[at[found]] == wanted[found]
        if not found.all():
            missing = wanted[~found]
            more = f" ({len(missing)} items missing)" if len(missing) > 1 else ""
            raise ProjectError(f"item {int(missing[0])} of project {self.name!r} is not in its dataset{more}")
        return at if self._order is None else self._order[at]

    def training_arrays(self, labels: dict[int, int]):
        """(X, y, group) of the seed examples (their known labels) plus the given pool labels."""
        labeled = self.positions(labels.keys())
        X = np.concatenate([self.features[self.seed], self.features[labeled]])
        y = np.concatenate([self.dataset.y[self.seed], np.fromiter(labels.values(), dtype=np.int64, count=len(labels))])
        group = np.concatenate([self.dataset.group[self.seed], self.dataset.group[labeled]])
        return X, y, group

    def test_arrays(self):
        """(X, y, group) of the held-out test set every curve point is measured on."""
        return self.features[self.test], self.dataset.y[self.test], self.dataset.group[self.test]

    def ranking(self, model: FittedModel | None, labels: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, scores) of every unlabeled pool item, in the strategy's order (what
        :meth:`fairal.store.Store.set_ranking` keeps)."""
        ids = self.dataset.ids
        labeled_ids = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
        unlabeled = self.pool[~np.isin(ids[self.pool], labeled_ids)]
        if len(unlabeled) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        labeled = np.concatenate([self.seed, self.positions(labels.keys())])
        y = np.concatenate([self.dataset.y[self.seed],
                            np.fromiter(labels.values(), dtype=np.int64, count=len(labels))])
        params = {"policy_path": self.policy_path} if self.strategy_name == PandaSampling.name else {}
        strategy = make_strategy(self.strategy_name, random_state=int(self.row["split_seed"]), **params)
        order, scores = strategy.rank(model, self.features, unlabeled, labeled, y, groups=self.dataset.group)
        return ids[order], np.asarray(scores, dtype=np.float64)

    def train_step(self, store, trainer_name: str, *, rerank: bool | None = None,
                   extra: dict | None = None) -> TrainingStep:
        """The training step: fit one trainer on seed + current labels (and the validation set when it
        reads one), evaluate it on the test set, store the model version, its curve point and the
        trainer's per-label suspicion scores, and re-rank the pool when this is the project's first
        trainer and ``rerank`` is True, or, by default, when the strategy follows the model.

        The store is entered twice: one read of everything the step trains on
        (:meth:`fairal.store.Store.training_inputs`) and one transaction for everything it learned
        (:meth:`fairal.store.Store.record_training_step`). The version's info holds the architecture,
        ``fit_seconds``, the label sequence number it was trained on and the validation set's date
        (how the worker knows what is out of date) and ``extra``.
        """
        uses_validation = trainer_name in USES_VALIDATION
        inputs = store.training_inputs(self.id, validation=uses_validation, latest=len(self.dataset.classes) > 2)
        labels = self.labels_of(inputs)
        fitted = training.fit_and_evaluate(
            trainer_name, self.training_arrays(labels), self.test_arrays(),
            validation=self._validation_arrays(inputs["validation_labels"]) if uses_validation else None,
            pool=(self.features[self.pool], self.dataset.group[self.pool]) if trainer_name in USES_POOL else None,
            params=training.parity_params(trainer_name, self.row["metric"], float(self.row["threshold"])))
        model = fitted.model
        info = {**model.architecture, "fit_seconds": round(fitted.seconds, 4), **(extra or {}),
                "label_seq": int(inputs["label_seq"])}
        if inputs["validation_info"]:
            info["validation_at"] = inputs["validation_info"]["created_at"]
        if rerank is None:
            rerank = STRATEGIES[self.strategy_name].adaptive
        ranking = self.ranking(model, labels) if rerank and trainer_name == self.trainer_names[0] else None
        recorded = store.record_training_step(
            self.id, trainer=trainer_name, strategy=self.strategy_name, budget=len(labels),
            metrics=fitted.metrics, n_labels=len(self.seed) + len(labels), state=fitted.state, info=info,
            item_scores=self.label_suspicion(model, labels), ranking=ranking)
        return TrainingStep(recorded, model, fitted.seconds)

    def label_suspicion(self, model: FittedModel, labels: dict[int, int]) -> dict[int, float]:
        """``{item_id: score}`` for the labeled pool items, low = the trainer doubts the label.

        The model's ``details.label_trust``: FR-Train's robustness discriminator's
        score of (x, z, y); FORML's learned example weight (× n, so 1 = average).
        Other trainers say nothing. Training rows are the seed set, then ``labels``
        in order (``training_arrays``).
        """
        details = getattr(model, "details", None)
        if details is None or details.label_trust is None:
            return {}
        scores = np.asarray(details.label_trust, dtype=float)
        rows = np.arange(len(scores)) if details.rows is None else np.asarray(details.rows)
        items = list(labels)
        return {int(items[r - len(self.seed)]): float(v) for r, v in zip(rows, scores) if r >= len(self.seed)}

    def retrain(self, store, *, rerank: bool | None = None) -> list[dict]:
        """:meth:`train_step` for every trainer of the project (the inline path: no background
        worker); returns what the store recorded."""
        return [self.train_step(store, name, rerank=rerank).recorded for name in self.trainer_names]


def _class_names(names, dataset: Dataset) -> list[str]:
    if len(names) != len(dataset.classes):
        raise ProjectError(f"{dataset.name} has {len(dataset.classes)} classes; got {len(names)} class names")
    return [str(n).strip() for n in names]


@dataclass(frozen=True)
class DataSummary:
    """What the Setup page shows about a data set before a project is made of it."""

    rows: int
    #: Size of the unlabeled pool PANDA's split leaves (the most a budget can be).
    pool: int
    classes: tuple[str, ...]
    #: One row per group, then "all": the count of each class and the positive rate (class 1).
    balance: pd.DataFrame
    #: The first rows as annotators will see them, as text.
    sample: pd.DataFrame


def summarize(dataset: Dataset, *, sample_rows: int = 5) -> DataSummary:
    """Rows, pool size, class balance per group and a sample of ``dataset``."""
    classes = pd.Categorical.from_codes(dataset.y, categories=range(len(dataset.classes)))
    counts = pd.crosstab(pd.Series(dataset.group, name=dataset.sensitive), classes, dropna=False)
    counts.loc["all" if "all" not in counts.index else "all groups"] = counts.sum()
    counts.columns = list(dataset.classes)
    balance = counts.assign(**{"positive rate": counts[dataset.classes[-1]] / counts.sum(axis=1)})
    sample = dataset.display.head(sample_rows).map(lambda v: "" if pd.isna(v) else str(v))
    return DataSummary(rows=len(dataset), pool=len(panda_split(len(dataset)).pool), classes=dataset.classes,
                       balance=balance, sample=sample)


def preview(dataset: str = "adult", sensitive: str = "sex", *, csv: CsvSource | None = None) -> DataSummary:
    """:func:`summarize` of a built-in data set or an upload (DatasetError when it cannot be read
    as given: the message names the form's field)."""
    return summarize(csv_dataset(csv) if csv is not None else load(dataset, sensitive=sensitive))


def next_project_name(store, stem: str) -> str:
    """``"<stem> project <n>"``, n one more than the number of projects, and free."""
    taken = {p["name"] for p in store.projects(include_archived=True)}
    n = len(taken) + 1
    while f"{stem} project {n}" in taken:
        n += 1
    return f"{stem} project {n}"


def create_project(store, settings: ProjectSettings, *, csv: CsvSource | None = None, by=None) -> int:
    """Validate, split, rank the pool, store the project and its first curve point.

    ``by``: the signed-in user creating it (must be an admin); None for trusted
    local callers (scripts and tests that hold the database file).
    """
    _require_admin(by)
    _validate(settings)
    if store.project_by_name(settings.name) is not None:
        raise ProjectError(f"a project named {settings.name!r} already exists")
    config = {"n_initial": settings.n_initial, "features": settings.features, "overlap": settings.overlap,
              "scale": settings.scale, "gold_rate": settings.gold_rate, "quiz_feedback": settings.quiz_feedback,
              "lease_seconds": settings.lease_seconds}
    if csv is not None:
        dataset = csv_dataset(csv)
        dataset_name, sensitive = f"csv:{csv.filename}", csv.sensitive
    else:
        dataset = load(settings.dataset, sensitive=settings.sensitive)
        dataset_name, sensitive = settings.dataset, settings.sensitive
    if len(dataset.group_names) < 2:
        raise ProjectError(f"the sensitive attribute {sensitive!r} has one group only; fairness needs two")
    if settings.scale == "confidence4" and len(dataset.classes) != 2:
        raise ProjectError(f"the 1–4 confidence scale needs two classes; {dataset.name} has {len(dataset.classes)}")
    if settings.strategy == PandaSampling.name or settings.features == "representation":
        config["policy_path"] = _choose_policy(store, dataset, settings.policy_path)
    if settings.class_names is not None:
        config["class_names"] = _class_names(settings.class_names, dataset)
    split = panda_split(len(dataset), seed=settings.split_seed)
    if settings.budget > len(split.pool):
        raise ProjectError(f"budget ({settings.budget}) is larger than the unlabeled pool ({len(split.pool)} items)")
    seed = draw_initial(dataset, split.meta_train, settings.n_initial, settings.split_seed)
    ids = dataset.ids
    parts = (("seed", seed), ("test", split.test), ("pool", split.pool))
    items = ({"item_id": item, "role": role} for role, where in parts for item in ids[where].tolist())  # no 1M dicts
    if csv is not None:
        options = {"label": csv.label, "sensitive": csv.sensitive,
                   "display_columns": list(csv.display_columns) if csv.display_columns else None,
                   "positive": csv.positive, "id_column": csv.id_column, "filename": csv.filename}
        config["csv"] = options
        config.update(_keep_arrays(store, csv.data, options, dataset))
    project_id = store.create_project(
        name=settings.name, dataset=dataset_name, label_column=dataset.label_name, sensitive=sensitive,
        split_seed=settings.split_seed, strategy=settings.strategy, trainers=list(settings.trainers),
        budget=settings.budget, metric=settings.metric, threshold=settings.threshold,
        label_values=list(SCALES[settings.scale]) if settings.scale != "binary" else list(range(len(dataset.classes))),
        config=config, items=items,
        dataset_file=(csv.filename, csv.data) if csv is not None else None)
    try:
        if settings.gold_rate > 0:  # quiz items: the seed examples, whose labels are known
            store.set_gold(project_id, {int(ids[p]): int(dataset.y[p]) for p in seed})
        # The first ranking from the data in hand (opening it would map a second copy of X)
        roles = {role: np.sort(ids[where]) for role, where in parts}
        Project(store.project(project_id), dataset, roles).retrain(store, rerank=True)
    except Exception:  # no half-made project: without its first model it cannot rank its pool
        store.delete_project(project_id)
        _drop_unused_arrays(store, config)
        raise
    logger.info("created project %s (%d pool items)", settings.name, len(split.pool))
    return project_id


def use_policy(store, project_id: int, policy_path, *, by=None) -> None:
    """Switch a project's strategy to PANDA with this policy file and re-rank its pool.

    ProjectError when the policy does not fit the project's data, or when the project's models read
    the representation of another policy (their features would change under them).
    """
    _require_admin(by)
    project = open_project(store, project_id)
    ref = _choose_policy(store, project.dataset, str(policy_path))
    other_policy = policy_file(ref).resolve() != project.policy_path.resolve()
    if project._config("features", "raw") == "representation" and other_policy:
        raise ProjectError(f"the models of {project.name} read the representation of {project.policy_path.name}; "
                           "create a new project to use another policy")
    store.set_project_strategy(project_id, PandaSampling.name, {"policy_path": ref})
    project = open_project(store, project_id)
    store.set_ranking(project_id, *project.ranking(None, project.training_labels(store)))
    logger.info("project %s now ranks with PANDA policy %s", project.name, ref)


#: The settings :func:`update_project_settings` may change (the data, split, strategy, features
#: and answer scale are fixed once labels exist).
EDITABLE = ("name", "budget", "trainers", "metric", "threshold", "gold_rate", "quiz_feedback", "lease_seconds",
            "overlap", "class_names")


def _require_admin(by) -> None:
    """``by`` must be an admin; None is a trusted local caller (scripts, tests, the CLI)."""
    if by is not None:
        from fairal.auth import require_admin

        require_admin(by)


def settings_of(row: dict) -> ProjectSettings:
    """The :class:`ProjectSettings` of a stored project (``store.project(id)``)."""
    config = row.get("config") or {}
    fields = {f.name for f in dataclasses.fields(ProjectSettings)}
    values = {k: v for k, v in config.items() if k in fields}
    if values.get("class_names") is not None:
        values["class_names"] = tuple(values["class_names"])
    return ProjectSettings(**values, name=row["name"], dataset=row["dataset"], sensitive=row["sensitive"],
                           strategy=row["strategy"], trainers=tuple(row["trainers"]), budget=int(row["budget"]),
                           metric=row["metric"], threshold=float(row["threshold"]), split_seed=int(row["split_seed"]))


def update_project_settings(store, project_id: int, changes: dict, *, by=None) -> ProjectSettings:
    """Change the :data:`EDITABLE` settings of a project, checked as at creation; returns the new settings.

    Also: the budget must fit the pool and cover the pool items labeled already; the annotators per
    item (k) can only go up (items finished with fewer answers stay finished). A quiz rate above 0
    on a project without quiz items makes its seed examples the quiz items. One transaction.
    ``by``: the admin making the change (None for trusted local callers).
    """
    _require_admin(by)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ProjectError(f"cannot change {', '.join(unknown)}; editable settings: {', '.join(EDITABLE)}")
    row = store.project(project_id)
    old = settings_of(row)
    changes = dict(changes)
    for key in ("trainers", "class_names"):
        if changes.get(key) is not None:
            changes[key] = tuple(changes[key])
    if "name" in changes:
        changes["name"] = str(changes["name"]).strip()
    new = dataclasses.replace(old, **changes)
    _validate(new)
    other = store.project_by_name(new.name)
    if other is not None and int(other["id"]) != int(project_id):
        raise ProjectError(f"a project named {new.name!r} already exists")
    project = open_project(store, project_id)
    if new.budget > len(project.pool):
        raise ProjectError(f"budget ({new.budget}) is larger than the unlabeled pool ({len(project.pool)} items)")
    labeled = store.label_count(project_id, role="pool")
    if new.budget < labeled:
        raise ProjectError(f"budget ({new.budget}) is below the {labeled} pool items labeled already")
    if new.overlap < old.overlap:
        raise ProjectError(f"annotators per item (k) can only go up: it is {old.overlap}, got {new.overlap}")
    config = {**row["config"], "overlap": new.overlap, "gold_rate": new.gold_rate,
              "quiz_feedback": new.quiz_feedback, "lease_seconds": new.lease_seconds}
    if new.class_names is not None:
        config["class_names"] = _class_names(new.class_names, project.dataset)
    gold = None
    if new.gold_rate > 0 and not store.gold(project_id):
        gold = {int(project.dataset.ids[p]): int(project.dataset.y[p]) for p in project.seed}
    store.update_project(project_id, name=new.name, budget=new.budget, trainers=list(new.trainers),
                         metric=new.metric, threshold=new.threshold, config=config, gold=gold)
    logger.info("project %s: settings changed (%s)", new.name, ", ".join(sorted(changes)))
    return new


def archive_project(store, project_id: int, *, by=None) -> None:
    """Hide a project from the project lists and the background worker; its labels stay."""
    _require_admin(by)
    store.set_archived(project_id, True)


def restore_project(store, project_id: int, *, by=None) -> None:
    """Bring an archived project back."""
    _require_admin(by)
    store.set_archived(project_id, False)


def delete_project(store, project_id: int, *, confirm: str, by=None) -> None:
    """Delete a project and every row of it (labels, models, curves, its uploaded file) in one
    transaction; ``confirm`` must be the project's name, typed by the admin. Once that has
    committed, its kept arrays folder goes too, unless another project of the same upload reads it."""
    _require_admin(by)
    row = store.project(project_id)
    name, config = row["name"], row.get("config") or {}
    if confirm.strip() != name:
        raise ProjectError(f"type the project's name, {name}, to delete it")
    store.delete_project(project_id)  # one transaction, committed when it returns
    logger.info("deleted project %s", name)
    _drop_unused_arrays(store, config)


def labels_table(store, project_id: int) -> pd.DataFrame:
    """The labels of a project, one row per labeled pool item: ``item_id``, ``label`` (class
    name), ``value`` (class index; the answers of several annotators aggregated as for training),
    ``answers`` (how many), ``annotators``, then the columns annotators saw. Quiz answers are left out."""
    project = open_project(store, project_id)
    labels = project.training_labels(store)
    workers: dict[int, list[str]] = {}
    for answer in store.answers(project_id):
        workers.setdefault(int(answer["item_id"]), []).append(answer["worker_id"])
    ids, names = sorted(labels), project.class_names
    table = pd.DataFrame({"item_id": ids, "label": [names[labels[i]] for i in ids],
                          "value": [labels[i] for i in ids], "answers": [len(workers[i]) for i in ids],
                          "annotators": [", ".join(sorted(set(workers[i]))) for i in ids]})
    shown = project.dataset.display.loc[ids].reset_index(drop=True)
    shown.columns = [f"{c} (data)" if c in table.columns else c for c in shown.columns]
    return pd.concat([table, shown], axis=1)


def _keep_arrays(store, data: bytes, options: dict, dataset: Dataset) -> dict:
    """Write a CSV project's encoded arrays beside the database (:mod:`fairal.project_arrays`):
    ``{"arrays": record}`` for its config, or {} (in-memory store, or the folder cannot be written:
    the project then re-parses its CSV when opened)."""
    folder = arrays_folder(store)
    if folder is None:
        return {}
    key = arrays_key(hashlib.sha256(data).hexdigest(), options)
    try:
        return {"arrays": {"key": key, **write_arrays(folder / key, dataset)}}
    except Exception as error:  # an optimisation only: any failure (disk, Parquet types) leaves the CSV path
        logger.warning("could not keep the arrays of %s in %s (%s); opening it will re-parse the CSV",
                       dataset.name, folder, error)
        return {}


def _drop_unused_arrays(store, config: dict) -> None:
    """After a project left the database: remove its kept arrays unless another project (archived
    ones too) was made from the same upload and reads the same folder."""
    key, folder = (config.get("arrays") or {}).get("key"), arrays_folder(store)
    if key is None or folder is None:
        return
    if any(((row.get("config") or {}).get("arrays") or {}).get("key") == key
           for row in store.projects(include_archived=True)):
        return
    try:
        remove_arrays(folder, key)
    except ValueError as error:  # a config edited by hand: the project is deleted; leave the disk alone
        logger.warning("kept arrays of a deleted project left in place: %s", error)


def _stored_arrays(store, row: dict) -> Dataset | None:
    """A CSV project's kept arrays, checked against the checksums in its config; None (logged) when
    there are none or they do not match, so the caller re-parses the CSV."""
    record, folder = (row.get("config") or {}).get("arrays"), arrays_folder(store)
    if not record or folder is None:
        return None
    try:
        return read_arrays(folder / record["key"], {k: v for k, v in record.items() if k != "key"})
    except (OSError, ValueError, KeyError) as error:  # DatasetError is a ValueError
        logger.warning("project %s: its kept arrays cannot be used (%s); re-parsing its CSV", row.get("name"), error)
        return None


def _parsed_csv(store, config: dict) -> Dataset:
    """A CSV project's data parsed from the CSV stored in the database (cached per process)."""
    options = dict(config["csv"])
    if options.get("display_columns"):
        options["display_columns"] = tuple(options["display_columns"])
    data = store.dataset_file(int(config["dataset_file_id"]))
    return _csv_dataset(hashlib.sha256(data).hexdigest(), data, tuple(sorted(options.items())), True)


def open_project(store, project_id: int) -> Project:
    """The runtime view of a stored project (its dataset is loaded once and cached)."""
    row = store.project(project_id)
    config = row.get("config") or {}
    if row["dataset"].startswith("csv:"):
        dataset = _stored_arrays(store, row) or _parsed_csv(store, config)
    else:
        dataset = load(row["dataset"], sensitive=row["sensitive"])
    roles = {role: store.item_ids(project_id, role) for role in ("seed", "pool", "test")}
    return Project(row, dataset, roles)


#: The demo: the pair of the PANDA frontier (benchmarks/results/frontier.md) that reaches ρ = 0.04
#: with the highest F1 — group-aware random picks and the ``pool_parity`` learner (F1 0.617 ± 0.003,
#: DP 0.024, 5 seeds; PANDA's picks with it: 0.612 / 0.023) — beside "erm", the same logistic
#: regression without the parity correction, both on the shipped policy's representation.
DEFAULT_PROJECT = ProjectSettings(name=DEFAULT_PROJECT_NAME, strategy="group_random",
                                  trainers=("pool_parity", "erm"), metric="demographic_parity_to_overall",
                                  features="representation")


def ensure_default_project(store) -> int:
    """The ready-to-label Adult project a newcomer sees; created on first use."""
    existing = store.project_by_name(DEFAULT_PROJECT_NAME)
    if existing is not None:
        return int(existing["id"])
    return create_project(store, DEFAULT_PROJECT)
