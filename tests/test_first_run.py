"""A new user's first run: the app, started in a folder with no ``.fairal/``, starts its worker.

This is the path every fresh clone takes (README command 1, then the browser): no
``FAIRAL_DB``, no ``FAIRAL_WORKER``, no database folder yet. The app's first page run must
create the folder, start ``python -m fairal worker`` and the worker must write its first log
line. A worker that dies is started again on a later page run.
"""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fairal.retrainer import ensure_worker, stop_worker, worker_running

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def clean_folder(tmp_path, monkeypatch):
    """An empty working folder like a fresh clone's root: the app's default database lives under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAIRAL_DB", raising=False)
    monkeypatch.delenv("FAIRAL_WORKER", raising=False)
    db = tmp_path / ".fairal" / "fairal.db"
    yield db
    stop_worker(db)


def log_text(db: Path) -> str:
    log = Path(f"{db}.worker.log")
    return log.read_text(errors="replace") if log.exists() else ""


def test_first_page_run_in_a_clean_folder_starts_the_worker(clean_folder):
    db = clean_folder
    assert not db.parent.exists()
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    assert worker_running(db)
    assert wait_for(lambda: "watching" in log_text(db)), log_text(db)
    assert str(db) in log_text(db)


def test_a_dead_worker_is_started_again_on_the_next_page_run(clean_folder):
    db = clean_folder
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert wait_for(lambda: worker_running(db))
    stop_worker(db)
    assert not worker_running(db)
    at.run()
    assert not at.exception
    assert wait_for(lambda: worker_running(db))


def test_ensure_worker_creates_the_folder_and_reports_a_child_that_dies(tmp_path):
    db = tmp_path / "new" / "folder" / "fairal.db"
    try:
        assert ensure_worker(db)
        assert worker_running(db)
        assert not ensure_worker(db)  # one worker per database
    finally:
        stop_worker(db)
    broken = tmp_path / "not-a-database.db"
    broken.mkdir()  # a folder where the database file should be: the worker cannot open it
    with pytest.raises(RuntimeError, match="exited"):
        ensure_worker(broken, timeout=60)
