"""Projects, their items and ranking, and the uploaded data files they were made from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, cast

from fairal.errors import DuplicateError, NotFoundError
from fairal.metrics import METRICS
from fairal.store._db import Connection, _int, _now, _optional_float, _str
from fairal.store.schema import _PROJECT_TABLES, ITEM_ROLES


def _decode_project(row: dict) -> dict:
    for key in ("trainers", "label_values", "config"):
        row[key] = json.loads(row[key])
    return row


def _check_role(role: Any) -> str:
    if role not in ITEM_ROLES:
        raise ValueError(f"role must be one of {list(ITEM_ROLES)}, got {role!r}")
    return role


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return metric


def _item_rows(project_id: int, items: Iterable[dict]) -> Iterator[tuple]:
    """Rows for ``insert_all`` (column names first), validated one by one so
    that a bad item fails the transaction it is inserted in."""
    yield ("project_id", "item_id", "role", "rank", "score")
    seen: set[int] = set()
    for item in items:
        item_id = _int(item.get("item_id"), "item_id")
        if item_id in seen:
            raise ValueError(f"item_id {item_id} appears twice in items")
        seen.add(item_id)
        rank = item.get("rank")
        yield (
            project_id,
            item_id,
            _check_role(item.get("role")),
            None if rank is None else _int(rank, "rank"),
            _optional_float(item.get("score"), "score"),
        )


def _project_row(*, name: str, dataset: str, label_column: str, sensitive: str, split_seed: int,
                 strategy: str, trainers: Iterable[str], budget: int, metric: str, threshold: float,
                 label_values: Iterable[int], config: dict | None) -> dict:
    """The ``projects`` row of :meth:`ProjectsArea.create_project`, every argument checked."""
    if isinstance(trainers, str):
        raise ValueError(f"trainers must be a list of names, got {trainers!r}")
    trainers = [_str(t, "trainer") for t in trainers]
    label_values = [_int(v, "label value") for v in label_values]
    if not label_values or len(set(label_values)) != len(label_values):
        raise ValueError(f"label_values must be distinct ints, got {label_values}")
    _check_metric(metric)
    budget = _int(budget, "budget")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    threshold_value = _optional_float(threshold, "threshold")
    if threshold_value is None:
        raise ValueError("threshold must be a number, got None")
    return {
        "name": _str(name, "name"),
        "dataset": _str(dataset, "dataset"),
        "label_column": _str(label_column, "label_column"),
        "sensitive": _str(sensitive, "sensitive"),
        "split_seed": _int(split_seed, "split_seed"),
        "strategy": _str(strategy, "strategy"),
        "trainers": json.dumps(trainers),
        "budget": budget,
        "metric": metric,
        "threshold": threshold_value,
        "label_values": json.dumps(label_values),
        "config": json.dumps(config or {}),
        "created_at": _now(),
    }


def _project_changes(*, name: str | None, budget: int | None, trainers: Iterable[str] | None,
                     metric: str | None, threshold: float | None, config: dict | None) -> dict[str, Any]:
    """The columns :meth:`ProjectsArea.update_project` changes, checked (None: unchanged)."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _str(name, "name")
    if budget is not None:
        changes["budget"] = _int(budget, "budget")
        if changes["budget"] < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
    if trainers is not None:
        if isinstance(trainers, str):
            raise ValueError(f"trainers must be a list of names, got {trainers!r}")
        changes["trainers"] = json.dumps([_str(t, "trainer") for t in trainers])
    if metric is not None:
        changes["metric"] = _check_metric(metric)
    if threshold is not None:
        changes["threshold"] = _optional_float(threshold, "threshold")
    if config is not None:
        changes["config"] = json.dumps(config)
    return changes


class ProjectsArea(Connection):
    """Projects, items, quiz (gold) sets and uploaded data files (rankings: :mod:`fairal.store.rankings`)."""

    def create_project(
        self,
        *,
        name: str,
        dataset: str,
        label_column: str,
        sensitive: str,
        split_seed: int,
        strategy: str,
        trainers: Iterable[str],
        budget: int,
        metric: str,
        threshold: float,
        label_values: Iterable[int] = (0, 1),
        config: dict | None = None,
        items: Iterable[dict] = (),
        dataset_file: tuple[str, bytes] | None = None,
    ) -> int:
        """Create a project and its items in one transaction; return its id.

        ``items`` are dicts ``{item_id, role, rank?, score?}``. An invalid
        item raises ``ValueError`` and leaves no trace of the project.
        ``dataset_file`` = ``(name, data)`` keeps an uploaded data file in the
        same transaction; its id is stored as ``config["dataset_file_id"]``.
        """
        row = _project_row(name=name, dataset=dataset, label_column=label_column, sensitive=sensitive,
                           split_seed=split_seed, strategy=strategy, trainers=trainers, budget=budget,
                           metric=metric, threshold=threshold, label_values=label_values, config=config)
        with self._write():
            if self._value("SELECT 1 FROM projects WHERE name = ?", [name]):
                raise DuplicateError(f"a project named {name!r} already exists")
            if dataset_file is not None:
                file_id = self._insert_dataset_file(*dataset_file)
                row["config"] = json.dumps({**(config or {}), "dataset_file_id": file_id})
            project_id = cast(int, self._table("projects").insert(row).last_pk)
            self._table("items").insert_all(_item_rows(project_id, items), batch_size=1000)
        return project_id

    def project(self, project_id: int) -> dict:
        row = self._row("SELECT * FROM projects WHERE id = ?", [project_id])
        if row is None:
            raise NotFoundError(f"project {project_id} does not exist")
        return _decode_project(row)

    def project_by_name(self, name: str) -> dict | None:
        row = self._row("SELECT * FROM projects WHERE name = ?", [name])
        return None if row is None else _decode_project(row)

    def projects(self, *, include_archived: bool = False) -> list[dict]:
        """Every project, by id; archived ones only with ``include_archived``."""
        where = "" if include_archived else " WHERE archived_at IS NULL"
        return [_decode_project(r) for r in self._rows(f"SELECT * FROM projects{where} ORDER BY id")]

    def update_project(self, project_id: int, *, name: str | None = None, budget: int | None = None,
                       trainers: Iterable[str] | None = None, metric: str | None = None,
                       threshold: float | None = None, config: dict | None = None,
                       gold: dict[int, int] | None = None) -> None:
        """Change a project's settings in one transaction (None: unchanged); ``config`` replaces
        the stored config, ``gold`` (``{item_id: value}``) becomes its quiz set."""
        changes = _project_changes(name=name, budget=budget, trainers=trainers, metric=metric,
                                   threshold=threshold, config=config)
        with self._write():
            self._require_project(project_id)
            if name is not None and self._value("SELECT 1 FROM projects WHERE name = ? AND id != ?",
                                                [name, project_id]):
                raise DuplicateError(f"a project named {name!r} already exists")
            if changes:
                self._db.execute(f"UPDATE projects SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                                 [*changes.values(), project_id])
            if gold is not None:
                self.set_gold(project_id, gold)  # nests in this transaction

    def set_archived(self, project_id: int, archived: bool) -> None:
        """Archive a project (out of :meth:`projects` and the annotators' lists; nothing is deleted)
        or restore it."""
        with self._write():
            self._require_project(project_id)
            self._db.execute("UPDATE projects SET archived_at = ? WHERE id = ?",
                             [_now() if archived else None, project_id])

    def delete_project(self, project_id: int) -> None:
        """Delete a project with its items, labels, history, skips, models, curves and data file."""
        with self._write():
            file_id = self.project(project_id)["config"].get("dataset_file_id")
            for table in _PROJECT_TABLES:
                self._db.execute(f"DELETE FROM {table} WHERE project_id = ?", [project_id])
            self._db.execute("DELETE FROM projects WHERE id = ?", [project_id])
            if file_id is not None:
                self._db.execute("DELETE FROM dataset_files WHERE id = ?", [file_id])

    def set_project_strategy(self, project_id: int, strategy: str, config: dict | None = None) -> None:
        """Change a project's query strategy, merging ``config`` into its config (e.g. a policy_path)."""
        with self._write():
            merged = {**self.project(project_id)["config"], **(config or {})}
            self._db.execute("UPDATE projects SET strategy = ?, config = ? WHERE id = ?",
                             [_str(strategy, "strategy"), json.dumps(merged), project_id])

    # --------------------------------------------------------------- items

    def items(self, project_id: int, *, role: str | None = None) -> list[dict]:
        """Items as ``{item_id, role, rank, score}``, ordered by item_id."""
        self._require_project(project_id)
        sql = "SELECT item_id, role, rank, score FROM items WHERE project_id = ?"
        params: list = [project_id]
        if role is not None:
            sql += " AND role = ?"
            params.append(_check_role(role))
        return self._rows(sql + " ORDER BY item_id", params)

    def item_ids(self, project_id: int, role: str) -> list[int]:
        self._require_project(project_id)
        rows = self._tuples(
            "SELECT item_id FROM items WHERE project_id = ? AND role = ? ORDER BY item_id",
            [project_id, _check_role(role)],
        )
        return [r[0] for r in rows]

    def item_ids_all(self, project_id: int) -> list[int]:
        return [r[0] for r in self._tuples("SELECT item_id FROM items WHERE project_id = ? ORDER BY item_id",
                                           [project_id])]

    def next_items(self, project_id: int, annotator_id: int, *, limit: int = 1) -> list[dict]:
        """Pool items nobody has labeled yet, best first for this annotator.

        Items the annotator skipped come after the others (oldest skip first);
        then by rank, unranked last; then by item_id.
        """
        limit = _int(limit, "limit")
        self._require_project(project_id)
        self._require_annotator(annotator_id)
        return self._rows(
            """
            SELECT i.item_id, i.role, i.rank, i.score
            FROM items AS i
            LEFT JOIN (
                SELECT item_id, MAX(id) AS last_skip FROM skips
                WHERE project_id = :p AND annotator_id = :a GROUP BY item_id
            ) AS s ON s.item_id = i.item_id
            WHERE i.project_id = :p AND i.role = 'pool'
              AND NOT EXISTS (
                SELECT 1 FROM labels AS l
                WHERE l.project_id = i.project_id AND l.item_id = i.item_id
              )
            ORDER BY s.last_skip IS NOT NULL, s.last_skip,
                     i.rank IS NULL, i.rank, i.item_id
            LIMIT :limit
            """,
            {"p": project_id, "a": annotator_id, "limit": limit},
        )

    # ---------------------------------------------------------------- gold

    def set_gold(self, project_id: int, answers: dict[int, int]) -> None:
        """Known answers of quiz (gold) items; replaces the project's gold set, keeps no stale answers."""
        rows = [(project_id, _int(i, "item_id"), _int(v, "value")) for i, v in answers.items()]
        with self._write():
            for _, item_id, _ in rows:
                self._require_item(project_id, item_id)
            self._db.execute("DELETE FROM gold_answers WHERE project_id = ?", [project_id])
            self._db.execute("DELETE FROM gold WHERE project_id = ?", [project_id])
            self._db.conn.executemany("INSERT INTO gold (project_id, item_id, value) VALUES (?, ?, ?)", rows)

    def gold(self, project_id: int) -> dict[int, int]:
        return dict(self._tuples("SELECT item_id, value FROM gold WHERE project_id = ? ORDER BY item_id",
                                 [project_id]))

    # ------------------------------------------------------- dataset files

    def add_dataset_file(self, name: str, data: bytes) -> int:
        """Keep an uploaded file (e.g. a CSV data set) and return its id."""
        with self._write():
            return self._insert_dataset_file(name, data)

    def _insert_dataset_file(self, name: str, data: bytes) -> int:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        row = {"name": _str(name, "name"), "created_at": _now(), "data": bytes(data)}
        return cast(int, self._table("dataset_files").insert(row).last_pk)

    def dataset_file(self, file_id: int) -> bytes:
        rows = self._tuples("SELECT data FROM dataset_files WHERE id = ?", [file_id])
        if not rows:
            raise NotFoundError(f"dataset file {file_id} does not exist")
        return rows[0][0]
