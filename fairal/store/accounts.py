"""Accounts (annotators and admins), their password hashes, sign-in sessions and project memberships."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from fairal.errors import DuplicateError, NotFoundError
from fairal.store._db import Connection, _now, _str
from fairal.store.projects import _decode_project
from fairal.store.schema import ANNOTATOR_ROLES


def _annotator_row(name: str, role: str) -> dict:
    if role not in ANNOTATOR_ROLES:
        raise ValueError(f"role must be one of {list(ANNOTATOR_ROLES)}, got {role!r}")
    return {"name": _str(name, "name"), "role": role, "created_at": _now()}


class AccountsArea(Connection):
    """Who may sign in, with which role, to which projects."""

    def add_annotator(self, name: str, *, role: str = "annotator") -> int:
        row = _annotator_row(name, role)
        with self._write():
            if self._value("SELECT 1 FROM annotators WHERE name = ?", [name]):
                raise DuplicateError(f"an annotator named {name!r} already exists")
            return cast(int, self._table("annotators").insert(row).last_pk)

    def get_or_create_annotator(self, name: str, *, role: str = "annotator") -> int:
        """The id of the annotator with this name, created with ``role`` if new."""
        row = _annotator_row(name, role)
        existing = self._value("SELECT id FROM annotators WHERE name = ?", [name])
        if existing is not None:
            return existing
        with self._write():  # looked up again: another process may have added it
            existing = self._value("SELECT id FROM annotators WHERE name = ?", [name])
            if existing is not None:
                return existing
            return cast(int, self._table("annotators").insert(row).last_pk)

    def annotator(self, annotator_id: int) -> dict:
        row = self._row("SELECT * FROM annotators WHERE id = ?", [annotator_id])
        if row is None:
            raise NotFoundError(f"annotator {annotator_id} does not exist")
        return row

    def annotators(self) -> list[dict]:
        """Every account: ``{id, name, role, created_at, has_password}``, by name."""
        return self._rows(
            "SELECT a.*, c.annotator_id IS NOT NULL AS has_password FROM annotators AS a "
            "LEFT JOIN credentials AS c ON c.annotator_id = a.id ORDER BY a.name")

    def annotator_by_name(self, name: str) -> dict | None:
        return self._row("SELECT * FROM annotators WHERE name = ?", [name])

    def set_role(self, annotator_id: int, role: str) -> None:
        _annotator_row("x", role)  # validates the role
        with self._write():
            self._require_annotator(annotator_id)
            self._db.execute("UPDATE annotators SET role = ? WHERE id = ?", [role, annotator_id])

    def remove_annotator(self, annotator_id: int) -> bool:
        """Delete an account with its password, sign-ins, project memberships and leases.

        An account with labels (or skips, quiz answers, review requests) on record keeps its
        row as a password-less annotator, so its labels keep their author; returns whether
        the row went too.
        """
        with self._write():
            self._require_annotator(annotator_id)
            for table in ("credentials", "auth_sessions", "memberships", "leases"):
                self._db.execute(f"DELETE FROM {table} WHERE annotator_id = ?", [annotator_id])
            self._db.execute("UPDATE annotators SET role = 'annotator' WHERE id = ?", [annotator_id])
            try:
                self._db.execute("DELETE FROM annotators WHERE id = ?", [annotator_id])
            except sqlite3.IntegrityError:  # referenced by labels etc. (foreign keys are on)
                return False
            return True

    # ------------------------------------------------ passwords and sign-ins

    def set_password_hash(self, annotator_id: int, password_hash: str) -> None:
        """Store a password *hash* (see :mod:`fairal.auth`; the store never sees a password)."""
        password_hash = _str(password_hash, "password_hash")
        with self._write():
            self._require_annotator(annotator_id)
            self._db.execute(
                "INSERT INTO credentials (annotator_id, password_hash, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (annotator_id) DO UPDATE SET password_hash = excluded.password_hash, "
                "updated_at = excluded.updated_at",
                [annotator_id, password_hash, _now()])

    def password_hash(self, annotator_id: int) -> str | None:
        return self._value("SELECT password_hash FROM credentials WHERE annotator_id = ?", [annotator_id])

    def add_auth_session(self, annotator_id: int, token_hash: str, *, seconds: float) -> None:
        """Remember a sign-in (by the hash of its token) for ``seconds``; expired ones are dropped here."""
        now = datetime.now(UTC)
        with self._write():
            self._require_annotator(annotator_id)
            self._db.execute("DELETE FROM auth_sessions WHERE expires_at <= ?",
                             [now.isoformat(timespec="microseconds")])
            self._db.execute(
                "INSERT INTO auth_sessions (token_hash, annotator_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [_str(token_hash, "token_hash"), annotator_id, now.isoformat(timespec="microseconds"),
                 (now + timedelta(seconds=float(seconds))).isoformat(timespec="microseconds")])

    def auth_session_account(self, token_hash: str) -> int | None:
        """The account of a live sign-in, or None (unknown or expired)."""
        return self._value("SELECT annotator_id FROM auth_sessions WHERE token_hash = ? AND expires_at > ?",
                           [token_hash, _now()])

    def delete_auth_sessions(self, *, token_hash: str | None = None, annotator_id: int | None = None) -> None:
        """End one sign-in, or every sign-in of an account (after a password change)."""
        with self._write():
            if token_hash is not None:
                self._db.execute("DELETE FROM auth_sessions WHERE token_hash = ?", [token_hash])
            if annotator_id is not None:
                self._db.execute("DELETE FROM auth_sessions WHERE annotator_id = ?", [annotator_id])

    # ------------------------------------------------ sign-in throttling, setup codes

    def login_blocked_seconds(self, keys: list[str]) -> float:
        """How long sign-ins under any of ``keys`` (``account:…``, ``client:…``) stay blocked (0: not)."""
        if not keys:
            return 0.0
        marks = ", ".join("?" * len(keys))
        until = self._value(f"SELECT MAX(blocked_until) FROM login_failures WHERE key IN ({marks})", list(keys))
        if until is None:
            return 0.0
        return max(0.0, (datetime.fromisoformat(until) - datetime.now(UTC)).total_seconds())

    def record_login_failure(self, key: str, delay: Callable[[int], float], *, forget_seconds: float) -> float:
        """Count a failed sign-in under ``key`` and block it for ``delay(failures)`` seconds; returns that
        delay. A count quiet for ``forget_seconds`` starts again at one (rows that old are dropped)."""
        now = datetime.now(UTC)
        forgotten = (now - timedelta(seconds=forget_seconds)).isoformat(timespec="microseconds")
        with self._write():
            self._db.execute("DELETE FROM login_failures WHERE last_failure_at < ?", [forgotten])
            failures = int(self._value("SELECT failures FROM login_failures WHERE key = ?", [key]) or 0) + 1
            seconds = float(delay(failures))
            self._db.execute(
                "INSERT INTO login_failures (key, failures, last_failure_at, blocked_until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, "
                "last_failure_at = excluded.last_failure_at, blocked_until = excluded.blocked_until",
                [_str(key, "key"), failures, now.isoformat(timespec="microseconds"),
                 (now + timedelta(seconds=seconds)).isoformat(timespec="microseconds")])
            return seconds

    def clear_login_failures(self, keys: list[str]) -> None:
        with self._write():
            for key in keys:
                self._db.execute("DELETE FROM login_failures WHERE key = ?", [key])

    def add_setup_code(self, code_hash: str, *, seconds: float) -> None:
        """Remember a one-time setup code (by its hash) for ``seconds``; expired ones are dropped here."""
        now = datetime.now(UTC)
        with self._write():
            self._db.execute("DELETE FROM setup_codes WHERE expires_at <= ?", [now.isoformat(timespec="microseconds")])
            self._db.execute("INSERT OR REPLACE INTO setup_codes (code_hash, created_at, expires_at) VALUES (?, ?, ?)",
                             [_str(code_hash, "code_hash"), now.isoformat(timespec="microseconds"),
                              (now + timedelta(seconds=float(seconds))).isoformat(timespec="microseconds")])

    def setup_code_valid(self, code_hash: str) -> bool:
        return bool(self._value("SELECT 1 FROM setup_codes WHERE code_hash = ? AND expires_at > ?",
                                [code_hash, _now()]))

    def delete_setup_codes(self) -> None:
        """Every setup code goes once the first admin exists."""
        with self._write():
            self._db.execute("DELETE FROM setup_codes")

    # ------------------------------------------------------------ memberships

    def add_member(self, project_id: int, annotator_id: int) -> None:
        """Assign an annotator to a project (idempotent)."""
        with self._write():
            self._require_project(project_id)
            self._require_annotator(annotator_id)
            self._db.execute(
                "INSERT OR IGNORE INTO memberships (project_id, annotator_id, created_at) VALUES (?, ?, ?)",
                [project_id, annotator_id, _now()])

    def remove_member(self, project_id: int, annotator_id: int) -> None:
        """Unassign; the annotator's labels stay, their leases end."""
        with self._write():
            self._db.execute("DELETE FROM memberships WHERE project_id = ? AND annotator_id = ?",
                             [project_id, annotator_id])
            self._db.execute("DELETE FROM leases WHERE project_id = ? AND annotator_id = ?",
                             [project_id, annotator_id])

    def members(self, project_id: int) -> list[dict]:
        self._require_project(project_id)
        return self._rows(
            "SELECT a.* FROM memberships AS m JOIN annotators AS a ON a.id = m.annotator_id "
            "WHERE m.project_id = ? ORDER BY a.name", [project_id])

    def is_member(self, project_id: int, annotator_id: int) -> bool:
        return bool(self._value("SELECT 1 FROM memberships WHERE project_id = ? AND annotator_id = ?",
                                [project_id, annotator_id]))

    def member_projects(self, annotator_id: int) -> list[dict]:
        """The projects this annotator is assigned to (not the archived ones)."""
        return [_decode_project(r) for r in self._rows(
            "SELECT p.* FROM projects AS p JOIN memberships AS m ON m.project_id = p.id "
            "WHERE m.annotator_id = ? AND p.archived_at IS NULL ORDER BY p.id", [annotator_id])]
