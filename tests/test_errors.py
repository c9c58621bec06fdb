"""Failures reach people as plain sentences: a damaged database, a full disk, a bug (with a log
reference), never a traceback or a server path."""

import errno
import shutil
import sqlite3

import pytest
from streamlit.testing.v1 import AppTest

from fairal import errors
from fairal.labeling import LabelingSession
from fairal.store import NotFoundError, Store

from test_app import ADMIN, PASSWORD, sign_in, started, template  # noqa: F401  (template: a fixture)


@pytest.mark.parametrize(("error", "expected"), [
    (sqlite3.OperationalError("database or disk is full"), errors.DISK_FULL),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/x.db"), errors.DISK_FULL),
    (sqlite3.DatabaseError("file is not a database"), errors.DAMAGED),
    (sqlite3.DatabaseError("database disk image is malformed"), errors.DAMAGED),
    (sqlite3.OperationalError("attempt to write a readonly database"), errors.READ_ONLY),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/x.db"), errors.READ_ONLY),
    (sqlite3.OperationalError("database is locked"), errors.BUSY),
    (ValueError("budget must be at least 1, got 0"), "budget must be at least 1, got 0"),
    (NotFoundError("no project 7"), "no project 7"),
])
def test_known_failures_get_their_sentence(error, expected):
    explanation = errors.explain(error)
    assert explanation.message == expected and explanation.reference is None
    assert "/srv" not in explanation.message


def test_a_bug_gets_a_reference_and_no_details():
    explanation = errors.explain(KeyError("/home/server/secret/path"))
    assert explanation.reference and len(explanation.reference) == 8
    assert "secret" not in explanation.message and "KeyError" not in explanation.message


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("error", "markdown", "caption", "title") for e in getattr(at, kind))


def test_a_damaged_database_is_reported_without_a_traceback(tmp_path, monkeypatch):
    db = tmp_path / "fairal.db"
    db.write_bytes(b"this is not an SQLite file " * 100)
    monkeypatch.setenv("FAIRAL_DB", str(db))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    at = started()
    assert not at.exception
    assert errors.DAMAGED in texts(at).replace("\\", "")
    assert str(tmp_path) not in texts(at)


def test_a_full_disk_while_labeling_keeps_the_page_and_says_so(template, tmp_path, monkeypatch):  # noqa: F811
    db = tmp_path / "fairal.db"
    shutil.copy(template, db)
    monkeypatch.setenv("FAIRAL_DB", str(db))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    at = sign_in(started(), ADMIN, PASSWORD)
    with Store(db) as store:
        before = store.label_count(store.project_by_name("Adult (demo)")["id"])

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(LabelingSession, "submit", full)
    at.button(key="label_value_0").click().run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error).replace("\\", "")
    assert "That did not work: The server's disk is full, so nothing was saved." in shown
    assert at.button(key="label_value_0")  # the item is still there to answer again
    with Store(db) as store:
        assert store.label_count(store.project_by_name("Adult (demo)")["id"]) == before
