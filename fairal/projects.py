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

import functools
import hashlib
import io
import logging
from dataclasses import dataclass

import numpy as np

from fairal import metrics
from fairal.datasets import Dataset, load, load_csv, panda_split
from fairal.models import FittedModel
from fairal.strategies import STRATEGIES, make_strategy
from fairal.trainers import TRAINERS, make_trainer

__all__ = [
    "ProjectSettings",
    "CsvSource",
    "Project",
    "create_project",
    "open_project",
    "ensure_default_project",
    "DEFAULT_PROJECT_NAME",
    "DEFAULT_PROJECT",
    "ProjectError",
    "draw_initial",
]

logger = logging.getLogger(__name__)

DEFAULT_PROJECT_NAME = "Adult (demo)"


class ProjectError(ValueError):
    """The project settings are inconsistent with its data."""


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


def _load_csv_source(source: CsvSource) -> Dataset:
    return load_csv(
        io.BytesIO(source.data),
        label=source.label,
        sensitive=source.sensitive,
        display_columns=list(source.display_columns) if source.display_columns else None,
        positive=source.positive,
        id_column=source.id_column,
        name=source.filename,
    )


@functools.lru_cache(maxsize=8)
def _csv_dataset(digest: str, data: bytes, options: tuple) -> Dataset:
    # ``digest`` keys the cache; parsing a large CSV once per process is enough.
    return _load_csv_source(CsvSource(data=data, **dict(options)))


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


class Project:
    """Runtime view of a stored project: its dataset and the positions of each role."""

    def __init__(self, row: dict, dataset: Dataset, roles: dict[str, list[int]]):
        self.row = row
        self.id = int(row["id"])
        self.dataset = dataset
        self._position = {int(i): p for p, i in enumerate(dataset.ids)}
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
        from fairal.strategies.panda import PandaSampling

        representation = PandaSampling().trained_policy().representation
        if self.dataset.X.shape[1] != representation.n_features:
            raise ProjectError(f"the shipped PANDA representation reads {representation.n_features} features; "
                               f"{self.dataset.name} has {self.dataset.X.shape[1]}")
        return representation.transform(self.dataset.X)

    @property
    def budget(self) -> int:
        return int(self.row["budget"])

    @property
    def strategy_name(self) -> str:
        return self.row["strategy"]

    @property
    def trainer_names(self) -> list[str]:
        return list(self.row["trainers"])

    def positions(self, item_ids) -> np.ndarray:
        """Dataset positions of stored item ids."""
        try:
            return np.fromiter((self._position[int(i)] for i in item_ids), dtype=np.int64)
        except KeyError as error:
            raise ProjectError(f"item {error.args[0]} of project {self.name!r} is not in its dataset") from None

    def training_arrays(self, labels: dict[int, int]):
        """(X, y, group) of the seed examples (their known labels) plus the given pool labels."""
        labeled = self.positions(labels.keys())
        X = np.concatenate([self.features[self.seed], self.features[labeled]])
        y = np.concatenate([self.dataset.y[self.seed], np.fromiter(labels.values(), dtype=np.int64, count=len(labels))])
        group = np.concatenate([self.dataset.group[self.seed], self.dataset.group[labeled]])
        return X, y, group

    def evaluate(self, model: FittedModel) -> dict[str, float]:
        """Every metric of :data:`fairal.metrics.METRICS` on the project's test set."""
        data = self.dataset
        return metrics.evaluate(data.y[self.test], model.predict(self.features[self.test]),
                                sensitive_features=data.group[self.test])

    def ranking(self, model: FittedModel | None, labels: dict[int, int]):
        """(item_id, rank, score) for every unlabeled pool item, in the strategy's order."""
        ids = self.dataset.ids
        labeled_ids = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
        unlabeled = self.pool[~np.isin(ids[self.pool], labeled_ids)]
        if len(unlabeled) == 0:
            return []
        labeled = np.concatenate([self.seed, self.positions(labels.keys())])
        y = np.concatenate([self.dataset.y[self.seed],
                            np.fromiter(labels.values(), dtype=np.int64, count=len(labels))])
        strategy = make_strategy(self.strategy_name, random_state=int(self.row["split_seed"]))
        order = strategy.rank(model, self.features, unlabeled, labeled, y, groups=self.dataset.group)
        score_of = dict(zip(unlabeled.tolist(), strategy.last_scores_.tolist()))
        return [(int(ids[p]), rank, float(score_of[int(p)])) for rank, p in enumerate(order.tolist())]

    def retrain(self, store, *, rerank: bool | None = None) -> list[dict]:
        """Train every trainer on seed + current labels, evaluate on the test set, record a curve point.

        Then re-rank the unlabeled pool with the first trainer's model when
        ``rerank`` is True, or, by default, when the strategy is adaptive (its
        ranking follows the model). Returns what the store recorded.
        """
        labels = store.labeled_items(self.id)
        X, y, group = self.training_arrays(labels)
        recorded, first_model = [], None
        for trainer_name in self.trainer_names:
            model = make_trainer(trainer_name).fit((X, y, group))
            first_model = first_model or model
            scores = self.evaluate(model)
            recorded.append(store.record_evaluation(
                self.id, trainer=trainer_name, strategy=self.strategy_name, budget=len(labels),
                metrics=scores, n_labels=len(y), state=model.to_bytes(), info=model.architecture))
        if rerank is None:
            rerank = make_strategy(self.strategy_name).adaptive
        if rerank:
            store.set_ranking(self.id, self.ranking(first_model, labels))
        return recorded


def create_project(store, settings: ProjectSettings, *, csv: CsvSource | None = None) -> int:
    """Validate, split, rank the pool, store the project and its first curve point."""
    _validate(settings)
    if store.project_by_name(settings.name) is not None:
        raise ProjectError(f"a project named {settings.name!r} already exists")
    config = {"n_initial": settings.n_initial, "features": settings.features}
    if csv is not None:
        dataset = _load_csv_source(csv)
        dataset_name, sensitive = f"csv:{csv.filename}", csv.sensitive
    else:
        dataset = load(settings.dataset, sensitive=settings.sensitive)
        dataset_name, sensitive = settings.dataset, settings.sensitive
    if len(dataset.group_names) < 2:
        raise ProjectError(f"the sensitive attribute {sensitive!r} has one group only; fairness needs two")
    split = panda_split(len(dataset), seed=settings.split_seed)
    if settings.budget > len(split.pool):
        raise ProjectError(f"budget ({settings.budget}) is larger than the unlabeled pool ({len(split.pool)} items)")
    seed = draw_initial(dataset, split.meta_train, settings.n_initial, settings.split_seed)
    ids = dataset.ids
    items = [{"item_id": int(ids[p]), "role": "seed"} for p in seed]
    items += [{"item_id": int(ids[p]), "role": "test"} for p in split.test]
    items += [{"item_id": int(ids[p]), "role": "pool"} for p in split.pool]
    if csv is not None:
        config["csv"] = {"label": csv.label, "sensitive": csv.sensitive,
                         "display_columns": list(csv.display_columns) if csv.display_columns else None,
                         "positive": csv.positive, "id_column": csv.id_column, "filename": csv.filename}
    project_id = store.create_project(
        name=settings.name, dataset=dataset_name, label_column=dataset.label_name, sensitive=sensitive,
        split_seed=settings.split_seed, strategy=settings.strategy, trainers=list(settings.trainers),
        budget=settings.budget, metric=settings.metric, threshold=settings.threshold,
        label_values=list(range(len(dataset.classes))), config=config, items=items,
        dataset_file=(csv.filename, csv.data) if csv is not None else None)
    try:
        open_project(store, project_id).retrain(store, rerank=True)  # the first ranking
    except Exception:  # no half-made project: without its first model it cannot rank its pool
        store.delete_project(project_id)
        raise
    logger.info("created project %s (%d pool items)", settings.name, len(split.pool))
    return project_id


def open_project(store, project_id: int) -> Project:
    """The runtime view of a stored project (its dataset is loaded once and cached)."""
    row = store.project(project_id)
    config = row.get("config") or {}
    if row["dataset"].startswith("csv:"):
        options = dict(config["csv"])
        file_id = config["dataset_file_id"]
        if options.get("display_columns"):
            options["display_columns"] = tuple(options["display_columns"])
        data = store.dataset_file(int(file_id))
        dataset = _csv_dataset(hashlib.sha256(data).hexdigest(), data, tuple(sorted(options.items())))
    else:
        dataset = load(row["dataset"], sensitive=row["sensitive"])
    roles = {role: store.item_ids(project_id, role) for role in ("seed", "pool", "test")}
    return Project(row, dataset, roles)


#: The demo: PANDA's shipped policy picks, and two learners show whether its parity transfers —
#: "head" (the few-step linear head it was meta-trained through) and "erm" (a converged logistic
#: regression), both on the policy's representation.
DEFAULT_PROJECT = ProjectSettings(name=DEFAULT_PROJECT_NAME, strategy="panda", trainers=("head", "erm"),
                                  metric="demographic_parity_to_overall", features="representation")


def ensure_default_project(store) -> int:
    """The ready-to-label Adult project a newcomer sees; created on first use."""
    existing = store.project_by_name(DEFAULT_PROJECT_NAME)
    if existing is not None:
        return int(existing["id"])
    return create_project(store, DEFAULT_PROJECT)
