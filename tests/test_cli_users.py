"""`python -m fairal users …`: accounts from the command line, on a temporary store."""

import pytest

from fairal import auth
from fairal.cli import main
from fairal.projects import ProjectSettings, create_project
from fairal.store import Store


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRAL_PASSWORD", "first password")
    path = str(tmp_path / "fairal.db")
    assert main(["users", "add", "root", "--role", "admin", "--db", path]) == 0
    assert main(["users", "add", "ann", "--db", path]) == 0
    return path


def users(db, *args):
    return main(["users", *args, "--db", db])


def signed_in(db, name):
    """A live sign-in token of ``name``."""
    with Store(db) as store:
        return auth.start_session(store, auth.authenticate(store, name, "first password"))


def test_reset_password_changes_it_and_signs_the_account_out(db, monkeypatch):
    token = signed_in(db, "ann")
    monkeypatch.setenv("FAIRAL_PASSWORD", "second password")
    assert users(db, "reset-password", "ann") == 0
    with Store(db) as store:
        assert auth.authenticate(store, "ann", "first password") is None
        assert auth.authenticate(store, "ann", "second password").name == "ann"
        assert auth.resume_session(store, token) is None


def test_role_promotes_and_demotes(db):
    assert users(db, "role", "ann", "admin") == 0
    assert users(db, "role", "root", "annotator") == 0
    with Store(db) as store:
        assert {a["name"]: a["role"] for a in store.annotators()} == {"ann": "admin", "root": "annotator"}


def test_the_last_admin_can_be_neither_demoted_nor_removed(db, capsys):
    assert users(db, "role", "root", "annotator") == 2
    assert users(db, "remove", "root") == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: 'root' is the last admin: make another account admin first"] * 2
    with Store(db) as store:
        assert store.annotator_by_name("root")["role"] == "admin"


def test_remove_deletes_the_account_and_ends_its_sign_ins(db, capsys):
    token = signed_in(db, "ann")
    assert users(db, "remove", "ann") == 0
    assert "removed 'ann'" in capsys.readouterr().out
    with Store(db) as store:
        assert store.annotator_by_name("ann") is None
        assert auth.resume_session(store, token) is None
        assert auth.authenticate(store, "ann", "first password") is None


def test_remove_keeps_the_name_of_an_annotator_who_labeled(db, capsys):
    with Store(db) as store:
        pid = create_project(store, ProjectSettings(name="german", dataset="german", budget=30, n_initial=20))
        ann = store.annotator_by_name("ann")["id"]
        store.add_member(pid, ann)
        item = store.lease_next_item(pid, ann, budget=30)
        store.submit_label(pid, item["item_id"], ann, 1)
    token = signed_in(db, "ann")
    assert users(db, "remove", "ann") == 0
    assert "stays as the author of its labels" in capsys.readouterr().out
    with Store(db) as store:
        row = store.annotator_by_name("ann")
        assert row["role"] == "annotator" and store.password_hash(row["id"]) is None
        assert not store.is_member(pid, row["id"]) and store.label_count(pid, annotator_id=row["id"]) == 1
        assert auth.resume_session(store, token) is None
        assert auth.authenticate(store, "ann", "first password") is None


def test_unknown_account_is_a_clear_error(db, capsys):
    for action in (["reset-password", "ghost"], ["role", "ghost", "admin"], ["remove", "ghost"]):
        assert users(db, *action) == 2
    assert capsys.readouterr().err.splitlines() == ["error: no account named 'ghost'"] * 3


def test_an_admin_cannot_remove_themselves_through_the_library(db):
    with Store(db) as store:
        root = auth.authenticate(store, "root", "first password")
        with pytest.raises(auth.AuthError, match="own account"):
            auth.remove_account(store, root.id, by=root)
        with pytest.raises(auth.AccessDenied):
            auth.remove_account(store, root.id, by=auth.authenticate(store, "ann", "first password"))


@pytest.mark.parametrize("command", [["users", "list"], ["users", "role", "ann", "admin"], ["users", "remove", "ann"]])
def test_a_mistyped_database_path_is_an_error_not_a_new_file(tmp_path, capsys, command):
    missing = tmp_path / "typo" / "fairal.db"
    assert main([*command, "--db", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()
