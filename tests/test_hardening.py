"""Issue 12 "Hardening": the library side (claims of killed workers, hostile names, atomic CLI commands).

The app side (sessions re-checked, throttled sign-in, a missing database, the setup code) is in
tests/test_hardening_app.py.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from fairal import auth
from fairal.cli import main
from fairal.errors import AuthError, ProjectError
from fairal.labeling import LabelingSession
from fairal.projects import ProjectSettings, create_project, update_project_settings
from fairal.retrainer import STALE_CLAIM_SECONDS, Retrainer, child_env, process_gone
from fairal.store import Store
from fairal.text import check_name, escape

HOSTILE = ["evil\u202eredaeh", "bell\x07", "esc\x1b[31mred", "two\nlines", "tab\tname", "zero\u200bwidth",
           "isolate\u2067x", "nul\x00", "line\u2028sep"]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "fairal.db"
    with Store(path) as store:
        create_project(store, ProjectSettings(name="german", dataset="german", budget=40, n_initial=20,
                                              trainers=("erm",)))
    return path


def label(store, n):
    session = LabelingSession(store, 1, "ann", retrain=False)
    data = session.project.dataset
    for _ in range(n):
        item = session.next_item()
        session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))


# ------------------------------------------------------------------ item 6: claims of killed workers

_HOLDER = textwrap.dedent("""
    import os, socket, sys, time
    from fairal.store import Store
    with Store(sys.argv[1]) as store:
        assert store.claim_training(1, "erm", f"{socket.gethostname()}:{os.getpid()}")
    print("claimed", flush=True)
    time.sleep(600)
""")


def test_a_sigkilled_workers_claim_is_taken_over_at_once(db):
    """A worker SIGKILLed mid-fit leaves its claim (fresh heartbeat); the next worker trains at once
    instead of waiting STALE_CLAIM_SECONDS (120 s): the claim's process is gone."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdout=subprocess.PIPE, text=True,
                              env=child_env())
    assert holder.stdout.readline().strip() == "claimed"
    owner = f"{socket.gethostname()}:{holder.pid}"
    assert not process_gone(owner)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert process_gone(owner)
    with Store(db) as store:
        label(store, 3)
        assert store.training_claims(1)[0]["owner"] == owner  # left behind, heartbeat fresh
        start = time.monotonic()
        recorded = Retrainer(db, debounce=0.0).run_once(store)
        assert [r["trainer"] for r in recorded] == ["erm"]
        assert time.monotonic() - start < STALE_CLAIM_SECONDS / 4
        assert store.training_claims(1) == []  # released after training


def test_a_live_holders_claim_is_respected(db):
    with Store(db) as store:
        label(store, 3)
        alive = f"{socket.gethostname()}:{os.getppid()}"  # the process that started pytest runs
        assert store.claim_training(1, "erm", alive)
        assert not process_gone(alive)
        assert not process_gone("another-host:1")  # another host's worker cannot be checked: never gone
        assert not process_gone("someone-else")
        assert Retrainer(db, debounce=0.0).run_once(store) == []
        assert store.training_claims(1)[0]["owner"] == alive


# ------------------------------------------------------------------ item 8: hostile text


@pytest.mark.parametrize("name", HOSTILE)
def test_names_with_control_or_bidi_characters_are_refused(name):
    with pytest.raises(ValueError, match="control or invisible"):
        check_name(name, "user name")


def test_ordinary_names_of_any_script_are_kept():
    for name in ("Zoë", "李雷", "O'Brien-Smith", "عربي", "ann@example.org", "  padded  "):
        assert check_name(name, "user name") == name.strip()


def test_accounts_refuse_hostile_names(tmp_path):
    with Store(tmp_path / "fairal.db") as store:
        admin = auth.create_account(store, "root", "a long password", role="admin")
        for name in HOSTILE:
            with pytest.raises(AuthError, match="control or invisible"):
                auth.create_account(store, name, "a long password", by=admin)
        with pytest.raises(AuthError, match="control or invisible"):
            auth.oidc_user(store, "evil\u202e@example.org")
        assert [a["name"] for a in store.annotators()] == ["root"]


def test_projects_refuse_hostile_names(db):
    with Store(db) as store:
        with pytest.raises(ProjectError, match="U\\+000A"):
            create_project(store, ProjectSettings(name="x\n2026-01-01 INFO forged line", dataset="german",
                                                  budget=10, trainers=("erm",)))
        with pytest.raises(ProjectError, match="U\\+202E"):
            update_project_settings(store, 1, {"name": "evil\u202eredaeh"})
        assert [p["name"] for p in store.projects()] == ["german"]


def test_escape_writes_control_characters_as_escapes():
    assert escape("two\nlines\x07\x1b[0m\u202e") == "two\\nlines\\x07\\x1b[0m\\u202e"
    assert escape("Zoë \\n") == "Zoë \\\\n"  # a literal backslash cannot pass for an escape


def test_users_list_and_the_worker_log_escape_names_stored_before_the_check(db, capsys, caplog):
    """Rows written before names were checked (or by hand) still cannot reach a terminal or forge a log line."""
    with Store(db) as store:
        store.add_annotator("bell\x07esc\x1b[2J")
        store._db.execute("UPDATE projects SET name = ? WHERE id = 1", ["german\nFORGED worker line"])
        label(store, 2)
    assert main(["users", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "\x07" not in out and "\x1b" not in out and "bell\\x07esc\\x1b[2J" in out
    with Store(db) as store, caplog.at_level("INFO", logger="fairal.retrainer"):
        Retrainer(db, debounce=0.0).run_once(store)
    trained = [r.getMessage() for r in caplog.records if "trained on" in r.getMessage()]
    assert trained and all("\n" not in line for line in trained)
    assert "german\\nFORGED worker line" in trained[0]


# ------------------------------------------------------------------ item 9: users add is atomic


def test_users_add_with_an_unknown_project_creates_nothing(db, monkeypatch, capsys):
    monkeypatch.setenv("FAIRAL_PASSWORD", "first password")
    assert main(["users", "add", "bob", "--project", "german", "--project", "nope", "--db", str(db)]) == 2
    assert "no project named 'nope'" in capsys.readouterr().err
    with Store(db) as store:
        assert store.annotator_by_name("bob") is None


def test_users_add_rolls_back_the_account_when_an_assignment_fails(db, monkeypatch, capsys):
    """The project is deleted between the check and the assignment (another admin, another process):
    the account is not left behind, and the rerun is not told "already exists"."""
    monkeypatch.setenv("FAIRAL_PASSWORD", "first password")
    real = Store.add_member

    def gone(self, project_id, annotator_id):
        raise ValueError(f"project {project_id} does not exist")

    monkeypatch.setattr(Store, "add_member", gone)
    assert main(["users", "add", "bob", "--project", "german", "--db", str(db)]) == 2
    with Store(db) as store:
        assert store.annotator_by_name("bob") is None
    monkeypatch.setattr(Store, "add_member", real)
    assert main(["users", "add", "bob", "--project", "german", "--db", str(db)]) == 0
    assert "created annotator 'bob'" in capsys.readouterr().out
    with Store(db) as store:
        bob = store.annotator_by_name("bob")
        assert [p["name"] for p in store.member_projects(bob["id"])] == ["german"]
