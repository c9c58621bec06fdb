"""A project's clean validation set, built from crowd answers (FR-Train §4.4).

Glue between :mod:`fairal.crowd` (reading, quality, aggregation, agreement:
pure functions on long-form answer frames) and a stored project: import a
crowd CSV into the project, gather the answers of in-app annotators and
imported workers, measure workers on the quiz (gold) items, aggregate, and
store the result as the project's validation set, which the robust trainers
(FR-Train's robustness discriminator, FORML's exemplars) then use. Every
function that writes takes the acting user and checks they are an admin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import pandas as pd

from fairal import crowd
from fairal.auth import User, require_admin
from fairal.projects import open_project

__all__ = ["import_crowd_csv", "remove_crowd_file", "imported_files", "answer_sources", "project_answers",
           "worker_quality", "aggregate_labels", "build_validation_set", "aggregation_report", "send_for_review",
           "item_features", "uncertain_labels", "send_uncertain_for_review", "SOURCES"]

#: Whose answers to use: the app's annotators, imported crowd workers, or both.
SOURCES = ("all", "app", "crowd")


_INT64 = (-(2**63), 2**63 - 1)


def _numeric_item_ids(item_ids: pd.Series, filename: str) -> list[int]:
    """The item ids as ints, or a CrowdDataError naming those that are not integers SQLite can hold."""
    values: list[int] = []
    bad: list[str] = []
    for text in item_ids.astype(str).str.strip():
        try:
            value = int(text)
        except ValueError:
            bad.append(text)
            continue
        if not _INT64[0] <= value <= _INT64[1]:
            bad.append(text)
        values.append(value)
    if bad:
        raise crowd.CrowdDataError(f"{filename}: item ids must be the project's numeric item ids; got "
                                   f"{bad[:5]}{' and more' if len(bad) > 5 else ''}")
    return values


def import_crowd_csv(store, project_id: int, data: bytes, *, by: User, filename: str = "crowd.csv",
                     format: str = "auto", columns: Mapping[str, str] | None = None,
                     max_bytes: int = 20_000_000) -> int:
    """Read a long- or wide-form crowd CSV (:func:`fairal.crowd.read_answers`) into the project.

    The answers must be on the project's scale and name items of the
    project (numeric item ids); all rows are stored or none. ``columns``
    maps the roles ``item``/``worker``/``answer`` to the file's column
    names (in a wide file, the stems of the numbered columns), e.g.
    ``{"item": "example_idx", "answer": "ans"}`` for FR-Train's published
    files. Error messages name the file as ``filename``. Returns the number
    of answers imported.
    """
    require_admin(by)
    project = store.project(project_id)
    scale = (project.get("config") or {}).get("scale", "binary")
    answers = crowd.read_answers(data, format=cast(Literal["auto", "long", "wide"], format), scale=scale,
                                 columns=columns, name=filename, max_bytes=max_bytes)
    item_ids = _numeric_item_ids(answers["item_id"], filename)
    rows = [{"item_id": int(i), "worker_id": str(w), "answer": int(a), "position": int(p)}
            for i, w, a, p in zip(item_ids, answers["worker_id"], answers["answer"], answers["position"])]
    return store.add_crowd_answers(project_id, rows, source=filename)


def remove_crowd_file(store, project_id: int, filename: str, *, by: User) -> None:
    """Delete the answers imported from ``filename`` (admins only)."""
    require_admin(by)
    store.delete_crowd_answers(project_id, source=filename)


def answer_sources(store, project_id: int) -> pd.DataFrame:
    """Answers, items and workers per source: the app's labels, its quiz answers, each imported file."""
    app = pd.DataFrame(store.answers(project_id), columns=["item_id", "annotator_id", "worker_id", "answer", "seq"])
    quiz = pd.DataFrame(store.gold_answers(project_id),
                        columns=["item_id", "annotator_id", "worker_id", "answer", "gold"])
    imported = pd.DataFrame(store.crowd_answers(project_id),
                            columns=["item_id", "worker_id", "answer", "position", "source"])
    parts = [("app annotators (labels)", app), ("app annotators (quiz items)", quiz)]
    parts += [(f"file {name}", part) for name, part in imported.groupby("source", sort=True)]
    return pd.DataFrame([{"source": name, "answers": len(part), "items": part["item_id"].nunique(),
                          "workers": part["worker_id"].nunique()} for name, part in parts],
                        columns=["source", "answers", "items", "workers"])


def imported_files(store, project_id: int) -> list[str]:
    """Names of the crowd files imported into the project, sorted."""
    return sorted({row["source"] for row in store.crowd_answers(project_id)})


def project_answers(store, project_id: int, *, source: str = "all") -> pd.DataFrame:
    """Long-form answers (``item_id, worker_id, answer, position``) of the app's annotators and/or
    imported crowd workers; in-app workers are named ``app:<name>`` so the two never merge."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")
    frames = []
    if source in ("all", "app"):
        app = pd.DataFrame(store.answers(project_id), columns=["item_id", "annotator_id", "worker_id", "answer", "seq"])
        frames.append(pd.DataFrame({"item_id": app["item_id"], "worker_id": "app:" + app["worker_id"].astype(str),
                                    "answer": app["answer"], "order": app["seq"]}))
    if source in ("all", "crowd"):
        imported = pd.DataFrame(store.crowd_answers(project_id),
                                columns=["item_id", "worker_id", "answer", "position", "source"])
        frames.append(pd.DataFrame({"item_id": imported["item_id"], "worker_id": imported["worker_id"].astype(str),
                                    "answer": imported["answer"], "order": imported["position"]}))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(columns=list(crowd.ANSWER_COLUMNS))
    frame = frame.sort_values(["item_id", "order"], kind="stable")
    frame["position"] = frame.groupby("item_id").cumcount()
    frame["item_id"] = frame["item_id"].astype(str)  # fairal.crowd's convention (ids as read from CSV)
    return frame[list(crowd.ANSWER_COLUMNS)].reset_index(drop=True)


def _scale(store, project_id: int) -> str:
    return (store.project(project_id).get("config") or {}).get("scale", "binary")


def worker_quality(store, project_id: int, *, source: str = "all") -> pd.DataFrame:
    """Per-worker accuracy on the quiz items with a Wilson interval (:func:`fairal.crowd.gold_accuracy`).

    Quiz answers given in the app count for ``app:<name>``; imported
    answers on quiz items count for their workers.
    """
    gold = {str(i): v for i, v in store.gold(project_id).items()}
    scale = _scale(store, project_id)
    answers = project_answers(store, project_id, source=source)
    quiz = pd.DataFrame(store.gold_answers(project_id),
                        columns=["item_id", "annotator_id", "worker_id", "answer", "gold"])
    if not quiz.empty and source in ("all", "app"):
        quiz_frame = pd.DataFrame({"item_id": quiz["item_id"].astype(str),
                                   "worker_id": "app:" + quiz["worker_id"].astype(str),
                                   "answer": quiz["answer"], "position": 0})
        answers = pd.concat([answers, quiz_frame], ignore_index=True)
    if answers.empty or not answers["item_id"].isin(list(gold)).any():  # nobody has answered a quiz item yet
        return pd.DataFrame(columns=["n_answers", "n_gold", "n_correct", "accuracy", "ci_low", "ci_high"])
    return crowd.gold_accuracy(answers, gold, scale=scale)


def aggregate_labels(store, project_id: int, *, method: str = "majority_vote", source: str = "all",
                     min_accuracy: float | None = None, min_gold: int = 3, max_answers: int | None = None,
                     min_answers: int = 1) -> tuple[pd.DataFrame, list[str], int]:
    """The aggregated labels :func:`build_validation_set` would store, without storing them.

    Quiz items are left out (their labels are known, and the workers were
    measured on them). ``min_accuracy``: exclude workers whose gold accuracy
    is below it first (:func:`fairal.crowd.exclude_workers`). Items with
    fewer than ``min_answers`` answers are left out. Returns (the aggregator's
    frame indexed by item id, excluded workers, answers used).
    """
    if method not in crowd.AGGREGATORS:
        raise ValueError(f"method must be one of {list(crowd.AGGREGATORS)}, got {method!r}")
    if method in crowd.CONFIDENCE4_AGGREGATORS and _scale(store, project_id) != "confidence4":
        raise ValueError(f"{method} needs a project with 1-4 confidence answers")
    scale = _scale(store, project_id)
    answers = project_answers(store, project_id, source=source)
    quiz = [str(i) for i in store.gold(project_id)]
    if method != "learning_from_crowds_difficulty":  # it learns from the quiz items how far to trust the crowd
        answers = answers[~answers["item_id"].isin(quiz)]
    excluded: list[str] = []
    if min_accuracy is not None:
        quality = worker_quality(store, project_id, source=source)
        answers, excluded = crowd.exclude_workers(answers, quality, min_accuracy=min_accuracy, min_gold=min_gold)
    if answers[~answers["item_id"].isin(quiz)].empty:
        raise ValueError("no answers to aggregate (import a crowd CSV or label with overlap first)")
    kwargs: dict[str, Any] = {"max_answers": max_answers}
    if method != "mean_score":
        kwargs["scale"] = scale
    if method in crowd.FEATURE_AGGREGATORS:
        kwargs["features"] = item_features(store, project_id, answers["item_id"].unique())
        kwargs["gold"] = {str(item): label for item, label in store.gold(project_id).items()}
    result = crowd.aggregate(answers, method, **kwargs)
    result = result[~result.index.isin(quiz)]
    return result[result["n_answers"] >= min_answers], excluded, int(len(answers))


def item_features(store, project_id: int, item_ids) -> pd.DataFrame:
    """The project's feature rows (its data set's ``X``) for ``item_ids``, indexed by item id as str.

    What learning from crowds fits its classifier on, next to the workers'
    confusion matrices.
    """
    project = open_project(store, project_id)
    ids = [int(i) for i in item_ids]
    return pd.DataFrame(project.dataset.X[project.positions(ids)], index=[str(i) for i in ids])


def uncertain_labels(store, project_id: int, *, method: str = "learning_from_crowds", min_confidence: float = 0.8,
                     **options: Any) -> pd.DataFrame:
    """The aggregated labels (:func:`aggregate_labels` with ``options``) less sure than ``min_confidence``,
    least sure first: the items to ask more workers about."""
    from fairal.crowd_models import uncertain_items

    result, _, _ = aggregate_labels(store, project_id, method=method, **options)
    return result.loc[uncertain_items(result, min_confidence=min_confidence)]


def send_uncertain_for_review(store, project_id: int, *, by: User, method: str = "learning_from_crowds",
                              min_confidence: float = 0.8, limit: int | None = None, **options: Any) -> int:
    """Queue the items whose aggregated posterior is uncertain (:func:`uncertain_labels`) for one more
    answer, least sure first, at most ``limit`` of them (admins only). Returns how many were queued."""
    require_admin(by)
    unsure = uncertain_labels(store, project_id, method=method, min_confidence=min_confidence, **options)
    items = [int(i) for i in unsure.index[:limit]]
    if not items:
        return 0
    return store.request_review(project_id, items, requested_by=by.id,
                                reason=f"uncertain {method} label (confidence < {min_confidence:g})")


def build_validation_set(store, project_id: int, *, by: User, method: str = "majority_vote",
                         source: str = "all", min_accuracy: float | None = None, min_gold: int = 3,
                         max_answers: int | None = None, min_answers: int = 1) -> dict:
    """Aggregate the answers (:func:`aggregate_labels`) and store them as the project's clean
    validation set, in one transaction. Returns a summary."""
    require_admin(by)
    result, excluded, used = aggregate_labels(store, project_id, method=method, source=source,
                                              min_accuracy=min_accuracy, min_gold=min_gold,
                                              max_answers=max_answers, min_answers=min_answers)
    labels = {int(item): int(label) for item, label in result["label"].items()}
    if not labels:
        raise ValueError(f"no item has at least {min_answers} answers")
    store.set_validation_labels(project_id, labels, method=method)
    positives = sum(labels.values())
    return {"size": len(labels), "positives": positives, "method": method, "excluded_workers": excluded,
            "answers_used": used}


def send_for_review(store, project_id: int, item_ids, *, by: User, reason: str = "suspicious") -> int:
    """Re-queue labeled items for one more annotator, ahead of everything else (admins only)."""
    require_admin(by)
    return store.request_review(project_id, item_ids, requested_by=by.id, reason=reason)


def aggregation_report(store, project_id: int, *, source: str = "all",
                       methods: Sequence[str] | None = None, max_answers: int | None = None) -> pd.DataFrame:
    """Accuracy of each aggregation method against the data set's known labels, overall and per group.

    Only meaningful when the project's data set has ground truth (the
    built-in data sets and labeled CSVs do): it tells how clean a
    crowd-built validation set would be.
    """
    project = open_project(store, project_id)
    answers = project_answers(store, project_id, source=source)
    if answers.empty:
        raise ValueError("no answers yet")
    items = sorted(answers["item_id"].unique())
    where = project.positions([int(i) for i in items])
    truth = pd.Series(project.dataset.y[where], index=items)
    groups = pd.Series(project.dataset.group[where], index=items)
    features = pd.DataFrame(project.dataset.X[where], index=items)
    gold = {str(item): label for item, label in store.gold(project_id).items()}
    return crowd.compare_aggregations(answers, truth, scale=project.scale, groups=groups, methods=methods,
                                      max_answers=max_answers, features=features, gold=gold)
