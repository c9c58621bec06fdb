"""Trained model versions, the claims that keep one trainer from training twice at once, and PANDA
policy jobs for the background worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from fairal.errors import NotFoundError
from fairal.store._db import Connection, _int, _now

_MODEL_COLUMNS = "id, project_id, trainer, version, n_labels, created_at, info"


def _decode_model(row: dict) -> dict:
    row["info"] = json.loads(row["info"])
    row["has_state"] = bool(row["has_state"])
    return row


class ModelsArea(Connection):
    """Model versions, training claims and policy jobs."""

    def _insert_model_version(self, project_id: int, *, trainer: str, n_labels: int, created_at: str,
                              info_json: str, state: bytes | None) -> tuple[int, int]:
        """Add the next version of ``trainer``'s model (inside a write); returns ``(id, version)``."""
        version = 1 + self._value(
            "SELECT COALESCE(MAX(version), 0) FROM model_versions "
            "WHERE project_id = ? AND trainer = ?",
            [project_id, trainer],
        )
        model_version_id = self._table("model_versions").insert(
            {
                "project_id": project_id,
                "trainer": trainer,
                "version": version,
                "n_labels": n_labels,
                "created_at": created_at,
                "info": info_json,
                "state": None if state is None else bytes(state),
            }
        ).last_pk
        return cast(int, model_version_id), version

    def model_versions(self, project_id: int, *, trainer: str | None = None) -> list[dict]:
        """Model versions without their state; ``has_state`` says whether one is stored."""
        self._require_project(project_id)
        sql = (
            f"SELECT {_MODEL_COLUMNS}, state IS NOT NULL AS has_state "
            "FROM model_versions WHERE project_id = ?"
        )
        params: list = [project_id]
        if trainer is not None:
            sql += " AND trainer = ?"
            params.append(trainer)
        return [_decode_model(r) for r in self._rows(sql + " ORDER BY id", params)]

    def model_state(self, model_version_id: int) -> bytes | None:
        rows = self._tuples("SELECT state FROM model_versions WHERE id = ?", [model_version_id])
        if not rows:
            raise NotFoundError(f"model version {model_version_id} does not exist")
        return rows[0][0]

    def latest_model_version(self, project_id: int, trainer: str) -> dict | None:
        self._require_project(project_id)
        row = self._row(
            f"SELECT {_MODEL_COLUMNS}, state IS NOT NULL AS has_state FROM model_versions "
            "WHERE project_id = ? AND trainer = ? ORDER BY version DESC LIMIT 1",
            [project_id, trainer],
        )
        return None if row is None else _decode_model(row)

    # ----------------------------------------------------- training claims

    def claim_training(self, project_id: int, trainer: str, owner: str, *, stale_seconds: float = 300,
                       holder_gone: Callable[[str], bool] | None = None) -> bool:
        """Take the right to train ``trainer`` for the project; False while someone else holds it.

        A claim whose holder has not refreshed it for ``stale_seconds`` (a
        killed worker) is taken over, and so is one whose holder
        ``holder_gone(owner)`` says is no longer running (its process is gone:
        taken over at once). So two versions of one trainer are never trained
        at once, whatever the number of workers.
        """
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=float(stale_seconds))).isoformat(timespec="microseconds")
        with self._write():
            self._require_project(project_id)
            holder = self._row("SELECT owner, heartbeat_at FROM training_claims WHERE project_id = ? AND trainer = ?",
                               [project_id, trainer])
            if (holder is not None and holder["owner"] != owner and holder["heartbeat_at"] > stale
                    and not (holder_gone is not None and holder_gone(holder["owner"]))):
                return False
            self._db.execute(
                "INSERT INTO training_claims (project_id, trainer, owner, heartbeat_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (project_id, trainer) DO UPDATE SET owner = excluded.owner, "
                "heartbeat_at = excluded.heartbeat_at",
                [project_id, trainer, owner, now.isoformat(timespec="microseconds")])
            return True

    def release_training(self, project_id: int, trainer: str, owner: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM training_claims WHERE project_id = ? AND trainer = ? AND owner = ?",
                             [project_id, trainer, owner])

    def training_claims(self, project_id: int) -> list[dict]:
        return self._rows("SELECT * FROM training_claims WHERE project_id = ? ORDER BY trainer", [project_id])

    # -------------------------------------------------------- policy jobs

    def add_policy_job(self, project_id: int, *, iterations: int) -> int:
        """Queue meta-training a PANDA policy on the project's data; returns the job id."""
        now = _now()
        with self._write():
            self._require_project(project_id)
            cursor = self._db.execute(
                "INSERT INTO policy_jobs (project_id, status, iterations, message, created_at, updated_at) "
                "VALUES (?, 'queued', ?, 'waiting for the background worker', ?, ?)",
                [project_id, _int(iterations, "iterations"), now, now])
            return int(cast(int, cursor.lastrowid))

    def policy_job(self, job_id: int) -> dict:
        row = self._row("SELECT * FROM policy_jobs WHERE id = ?", [job_id])
        if row is None:
            raise NotFoundError(f"policy job {job_id} does not exist")
        return row

    def policy_jobs(self, project_id: int | None = None) -> list[dict]:
        """Jobs, newest first (of one project, or all)."""
        if project_id is None:
            return self._rows("SELECT * FROM policy_jobs ORDER BY id DESC")
        return self._rows("SELECT * FROM policy_jobs WHERE project_id = ? ORDER BY id DESC", [project_id])

    def claim_policy_job(self, owner: str, *, stale_seconds: float = 300) -> dict | None:
        """Mark the oldest queued job running for ``owner`` and return it (None when none waits).

        A running job not updated for ``stale_seconds`` lost its worker: it is marked failed first
        (not re-queued, so a job that kills its worker cannot do so forever).
        """
        if not self._value("SELECT 1 FROM policy_jobs WHERE status IN ('queued', 'running') LIMIT 1"):
            return None  # the worker asks every poll: no write lock when there is nothing to do
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=float(stale_seconds))).isoformat(timespec="microseconds")
        with self._write():
            self._db.execute(
                "UPDATE policy_jobs SET status = 'failed', updated_at = ?, message = 'the background worker "
                "stopped while this job ran; start a new one' WHERE status = 'running' AND updated_at < ?",
                [_now(), stale])
            row = self._row("SELECT * FROM policy_jobs WHERE status = 'queued' ORDER BY id LIMIT 1")
            if row is None:
                return None
            self._db.execute("UPDATE policy_jobs SET status = 'running', owner = ?, message = 'starting', "
                             "updated_at = ? WHERE id = ?", [owner, _now(), row["id"]])
        return self.policy_job(row["id"])

    def update_policy_job(self, job_id: int, *, status: str | None = None, iteration: int | None = None,
                          message: str | None = None, policy_path: str | None = None) -> None:
        """Record a job's progress or outcome (also its heartbeat: ``updated_at``)."""
        if status is not None and status not in ("queued", "running", "done", "failed"):
            raise ValueError(f"unknown policy job status {status!r}")
        changes = {"status": status, "iteration": iteration, "message": message, "policy_path": policy_path}
        changes = {k: v for k, v in changes.items() if v is not None}
        changes["updated_at"] = _now()
        with self._write():
            self._db.execute(f"UPDATE policy_jobs SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                             [*changes.values(), job_id])
