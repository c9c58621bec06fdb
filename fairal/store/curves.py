"""Learning curves: one point per (trainer, budget) evaluation, its metrics kept long-form.

A point is a row of ``curve_points``; each of its metric values is a row ``(point_id, metric,
value)`` of ``curve_metrics`` (a missing or NaN value has no row). The metric names are read from
``fairal.metrics.METRICS`` at each call, so a new metric needs no schema change. Reads give one
column per metric, as the wide table did, by pivoting in SQL.
"""

from __future__ import annotations

import json
import math
from typing import cast

import pandas as pd

from fairal.metrics import METRICS
from fairal.store._db import _int, _now, _optional_float, _str
from fairal.store.models import ModelsArea
from fairal.store.schema import CURVE_POINT_COLUMNS

#: The metrics of ``fairal.metrics.METRICS`` when the store was imported (the list is kept there).
METRIC_COLUMNS = tuple(METRICS)


def metric_names() -> tuple[str, ...]:
    """The metrics a curve point has now: the keys of ``fairal.metrics.METRICS``."""
    return tuple(METRICS)


def _points_sql(names: tuple[str, ...]) -> str:
    """One row per curve point of ``:p``, a column per metric (NULL where the point has none)."""
    for name in names:  # they become column names of the result
        if not name.isidentifier():
            raise ValueError(f"metric names must be identifiers, got {name!r}")
    pivot = "".join(f",\n MAX(CASE WHEN m.metric = '{name}' THEN m.value END) AS {name}" for name in names)
    return (f"SELECT {', '.join(f'p.{c}' for c in CURVE_POINT_COLUMNS)}{pivot}\n"
            "FROM curve_points AS p LEFT JOIN curve_metrics AS m ON m.point_id = p.id\n"
            "WHERE p.project_id = :p GROUP BY p.id ORDER BY p.id")


class CurvesArea(ModelsArea):
    """Recording evaluations (a model version and its curve point) and reading the curves."""

    def record_evaluation(
        self,
        project_id: int,
        *,
        trainer: str,
        strategy: str,
        budget: int,
        metrics: dict[str, float | None],
        n_labels: int,
        state: bytes | None = None,
        info: dict | None = None,
    ) -> dict:
        """Store a trained model version and its curve point in one transaction.

        ``metrics`` keys are names from ``fairal.metrics.METRICS``; missing ones (and NaN) are
        stored as nothing and read back as None. Returns ``{"model_version_id", "version",
        "curve_point_id", "trainer", "budget"}``.
        """
        known = metric_names()
        unknown = sorted(set(metrics) - set(known))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: {list(known)}")
        values = {k: _optional_float(v, f"metric {k}") for k, v in metrics.items()}
        if state is not None and not isinstance(state, (bytes, bytearray, memoryview)):
            raise ValueError(f"state must be bytes or None, got {type(state).__name__}")
        trainer = _str(trainer, "trainer")
        strategy = _str(strategy, "strategy")
        budget = _int(budget, "budget")
        n_labels = _int(n_labels, "n_labels")
        info_json = json.dumps(info or {})
        now = _now()
        with self._write():
            self._require_project(project_id)
            model_version_id, version = self._insert_model_version(
                project_id, trainer=trainer, n_labels=n_labels, created_at=now, info_json=info_json, state=state)
            point = {"project_id": project_id, "budget": budget, "trainer": trainer, "strategy": strategy,
                     "model_version_id": model_version_id, "created_at": now}
            curve_point_id = cast(int, self._table("curve_points").insert(point).last_pk)
            self._db.conn.executemany(
                "INSERT INTO curve_metrics (point_id, metric, value) VALUES (?, ?, ?)",
                [(curve_point_id, k, v) for k, v in values.items() if v is not None and not math.isnan(v)])
        return {
            "model_version_id": model_version_id,
            "version": version,
            "curve_point_id": curve_point_id,
            "trainer": trainer,
            "budget": budget,
        }

    def curve_points(self, project_id: int) -> list[dict]:
        """Every curve point of the project, oldest first: its columns and one key per metric."""
        self._require_project(project_id)
        names = metric_names()
        columns = (*CURVE_POINT_COLUMNS, *names)  # tuples zipped here: a third faster than sqlite-utils' dicts
        return [dict(zip(columns, row)) for row in self._tuples(_points_sql(names), {"p": project_id})]

    def last_curve_point_id(self, project_id: int) -> int:
        """Grows with every recorded curve point of the project (0 before the first): a cheap
        "is there anything new to draw" check for a page that polls."""
        return self._value("SELECT COALESCE(MAX(id), 0) FROM curve_points WHERE project_id = ?", [project_id])

    def curve_frame(self, project_id: int) -> pd.DataFrame:
        """``curve_points`` as a DataFrame; it has the columns even when empty."""
        names = metric_names()
        frame = pd.DataFrame(self.curve_points(project_id), columns=[*CURVE_POINT_COLUMNS, *names])
        return frame.astype({name: "float64" for name in names})
