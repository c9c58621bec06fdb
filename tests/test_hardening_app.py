# ruff: noqa: F811  (the fixtures db and empty_db come from test_app and are taken as arguments)
"""Issue 12 "Hardening", the sign-in and database side: sign-ins re-checked on every run, throttled
password guessing (kept in the database), the session cookie, a missing or broken database, and the
setup code that the first admin needs."""

import os
import re
import sqlite3
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fairal import auth, errors
from fairal.cli import main
from fairal.errors import AuthError, MissingDatabaseError, TooManyAttempts
from fairal.store import Store

from test_app import (  # noqa: F401  (template, db, empty_db: fixtures)
    ADMIN,
    ANNOTATOR,
    APP,
    PASSWORD,
    db,
    empty_db,
    pages,
    plain,
    sign_in,
    signed_in,
    started,
    template,
)


def texts(at: AppTest) -> str:
    return plain(" ".join(str(e.value) for kind in ("error", "markdown", "caption", "title", "info")
                          for e in getattr(at, kind)))


def account_id(db, name):
    with Store(db) as store:
        return store.annotator_by_name(name)["id"]


# ------------------------------------------------------------------ item 1: sign-ins re-checked


def test_an_open_tab_is_signed_out_after_a_password_change(db):
    at = signed_in(ANNOTATOR)
    assert pages(at) == ["label.py"]
    with Store(db) as store:  # an admin (or the annotator in another tab) changes the password
        auth.set_password(store, account_id(db, ANNOTATOR), "a brand new password",
                          by=auth.authenticate(store, ADMIN, PASSWORD))
    at.run()
    assert not at.exception
    assert pages(at) == ["login.py"]
    assert "You were signed out" in texts(at)
    assert "fairal_user_id" not in at.session_state


def test_an_open_tab_is_signed_out_after_signing_out_in_another_tab(db):
    at = signed_in(ADMIN)
    token = at.session_state["fairal_session_token"]  # the browser's cookie, shared by its tabs
    with Store(db) as store:  # the other tab's "Sign out" ends this token
        auth.end_session(store, token)
    at.run()
    assert pages(at) == ["login.py"]
    assert "You were signed out" in texts(at)


def test_a_key_press_in_a_tab_signed_out_elsewhere_stores_nothing(db):
    """The answer button's callback runs before the page: it checks the sign-in itself, so a tab
    whose sign-in ended (another tab's sign-out, a password reset) saves no more answers."""
    at = signed_in(ADMIN)
    at.button(key="label_value_0").click().run()  # a live sign-in: stored
    with Store(db) as store:
        pid = store.project_by_name("Adult (demo)")["id"]
        assert store.label_count(pid) == 1
        auth.end_session(store, at.session_state["fairal_session_token"])
    at.button(key="label_value_1").click().run()
    assert pages(at) == ["login.py"]
    with Store(db) as store:
        assert store.label_count(pid) == 1


def test_a_live_sign_in_stays_signed_in(db):
    at = signed_in(ANNOTATOR)
    for _ in range(2):
        assert pages(at.run()) == ["label.py"]


# ------------------------------------------------------------------ item 2: throttled guessing


def test_wrong_passwords_block_the_account_with_a_growing_delay_even_for_the_right_one(db):
    with Store(db) as store:
        for _ in range(auth.ACCOUNT_THROTTLE.free):
            assert auth.authenticate(store, ANNOTATOR, "wrong password") is None
        delays = []
        for _ in range(2):
            with pytest.raises(TooManyAttempts, match=r"Too many attempts; try again in \d+ s") as raised:
                auth.authenticate(store, ANNOTATOR, "wrong password")
            delays.append(raised.value.retry_after)
            with pytest.raises(TooManyAttempts):  # blocked: not even the right password gets in
                auth.authenticate(store, ANNOTATOR, PASSWORD)
            time.sleep(raised.value.retry_after)
        assert delays == [1, 2]
        assert auth.authenticate(store, ANNOTATOR, PASSWORD).name == ANNOTATOR  # the wait is over
        assert auth.authenticate(store, ANNOTATOR, "wrong password") is None  # and the count starts again
        assert auth.authenticate(store, ADMIN, PASSWORD).name == ADMIN  # other accounts were never blocked


def test_the_block_survives_a_server_restart(db):
    with Store(db) as store:
        for _ in range(auth.ACCOUNT_THROTTLE.free):
            auth.authenticate(store, ANNOTATOR, "wrong password")
        with pytest.raises(TooManyAttempts):
            auth.authenticate(store, ANNOTATOR, "wrong password")
    with Store(db) as store:  # a new process opens the file: the block is in it
        with pytest.raises(TooManyAttempts):
            auth.authenticate(store, ANNOTATOR, PASSWORD)
        assert store.login_blocked_seconds([f"account:{ANNOTATOR}"]) > 0


def test_one_client_guessing_many_accounts_is_blocked_by_address(db):
    with Store(db) as store:
        for n in range(auth.CLIENT_THROTTLE.free):
            assert auth.authenticate(store, f"user{n}", "wrong password", client="203.0.113.9") is None
        with pytest.raises(TooManyAttempts):
            auth.authenticate(store, "user-x", "wrong password", client="203.0.113.9")
        with pytest.raises(TooManyAttempts):
            auth.authenticate(store, ADMIN, PASSWORD, client="203.0.113.9")
        assert auth.authenticate(store, ADMIN, PASSWORD, client="198.51.100.7").name == ADMIN


def test_signing_in_to_ones_own_account_does_not_wipe_the_clients_guesses(db):
    """A success clears the account's count only: guesses at other accounts from one address keep
    counting toward the address's block (the outside probe reset it by signing in as itself)."""
    with Store(db) as store:
        for n in range(auth.CLIENT_THROTTLE.free - 1):
            assert auth.authenticate(store, f"user{n}", "wrong password", client="203.0.113.9") is None
        assert auth.authenticate(store, ADMIN, PASSWORD, client="203.0.113.9").name == ADMIN
        assert auth.authenticate(store, "user-x", "wrong password", client="203.0.113.9") is None  # the last free
        with pytest.raises(TooManyAttempts):
            auth.authenticate(store, "user-y", "wrong password", client="203.0.113.9")


def test_the_login_page_says_how_long_to_wait(db):
    at = started()
    for _ in range(auth.ACCOUNT_THROTTLE.free):
        assert sign_in(at, ADMIN, "wrong password").error[0].value == "Wrong name or password."
    assert re.fullmatch(r"Too many attempts; try again in \d+ s\.", sign_in(at, ADMIN, "wrong password").error[0].value)
    assert re.fullmatch(r"Too many attempts; try again in \d+ s\.", sign_in(at, ADMIN, PASSWORD).error[0].value)
    assert pages(at) == ["login.py"]


# ------------------------------------------------------------------ item 3: the session cookie


def _cookie_script(at: AppTest) -> str:
    scripts = [str(getattr(e, "proto", "")) for e in at.get("html")]
    return " ".join(s for s in scripts if "document.cookie" in s)


def test_the_session_cookie_is_strict_and_secure_behind_https(db):
    at = signed_in(ADMIN)
    script = _cookie_script(at)
    assert "SameSite=Strict" in script
    assert "location.protocol === \\'https:\\' ? \\'; Secure\\'" in script or \
        "location.protocol === 'https:' ? '; Secure'" in script


# ------------------------------------------------------------------ item 4: a missing database


def _remove(db):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{db}{suffix}"):
            os.remove(f"{db}{suffix}")


def test_a_deleted_database_is_an_error_not_a_new_empty_one(db):
    at = signed_in(ANNOTATOR)
    _remove(db)
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Create the first admin account" not in shown
    assert errors.MISSING in shown and "reference" in shown
    assert str(db.parent) not in shown  # the path goes to the server log only
    assert not db.exists()  # and no new, empty database was made
    other = AppTest.from_file(APP, default_timeout=60).run()  # a new visitor: the same error
    assert errors.MISSING in texts(other) and "Create the first admin" not in texts(other)
    assert not db.exists()


def test_a_store_that_must_exist_names_the_missing_path(tmp_path):
    with pytest.raises(MissingDatabaseError, match=re.escape(str(tmp_path / "gone.db"))):
        Store(tmp_path / "gone.db", create=False)
    assert not (tmp_path / "gone.db").exists()


def test_the_first_admin_needs_the_setup_code_printed_in_the_server_console(empty_db, capsys):
    at = started()
    assert plain(at.title[0].value) == "Create the first admin account"
    assert empty_db.exists()  # the app's first start made the database
    code = re.search(r"fairal setup code: ([0-9a-f]{16})", capsys.readouterr().err).group(1)
    at.text_input(key="login_setup_code").input("0123456789abcdef")
    at.text_input(key="login_new_name").input("root")
    at.text_input(key="login_new_password").input("a long password")
    at.text_input(key="login_new_again").input("a long password")
    at.button(key="login_create").click().run()
    assert "setup code is wrong" in plain(at.error[0].value)
    with Store(empty_db) as store:
        assert not auth.has_admin(store)
    at.text_input(key="login_setup_code").input(code)
    at.button(key="login_create").click().run()
    assert not at.exception
    assert pages(at) == ["annotators.py", "crowd.py", "curves.py", "label.py", "setup.py"]
    with Store(empty_db) as store:
        assert store._value("SELECT COUNT(*) FROM setup_codes") == 0  # used: every code is gone


def test_init_creates_the_database_and_prints_a_code_that_creates_the_first_admin(tmp_path, capsys):
    path = tmp_path / "new" / "fairal.db"
    assert main(["init", "--db", str(path)]) == 0
    code = re.search(r"fairal setup code: ([0-9a-f]{16})", capsys.readouterr().out).group(1)
    with Store(path, create=False) as store:
        with pytest.raises(AuthError, match="setup code"):
            auth.create_first_admin(store, "root", "a long password", "")
        admin = auth.create_first_admin(store, "root", "a long password", code)
        assert admin.is_admin
        with pytest.raises(auth.AccessDenied):  # once only
            auth.create_first_admin(store, "eve", "a long password", code)
    assert main(["init", "--db", str(path)]) == 0
    assert "has an admin" in capsys.readouterr().out


# ------------------------------------------------------------------ item 5: a broken database


def test_a_database_damaged_while_signed_in_gets_a_sentence(db):
    at = signed_in(ANNOTATOR)
    _remove(db)
    db.write_bytes(b"not an SQLite file " * 500)
    at.run()
    assert not at.exception
    assert errors.DAMAGED in texts(at) and str(db.parent) not in texts(at)


def test_a_full_disk_at_sign_in_gets_a_sentence(db, monkeypatch):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "record_login_failure", full)
    at = sign_in(started(), ADMIN, "wrong password")
    assert not at.exception
    assert errors.DISK_FULL in texts(at)


def test_failures_outside_the_boundary_show_no_details_wherever_the_server_started(db):
    """.streamlit/config.toml is read only when `streamlit run` starts in the repository; the app sets
    showErrorDetails itself, so a fragment's or callback's uncaught failure never shows a traceback."""
    from streamlit import config

    config.set_option("client.showErrorDetails", "full")  # as when started from another folder
    try:
        started()
        assert config.get_option("client.showErrorDetails") == "none"
    finally:
        config.set_option("client.showErrorDetails", "full")


def test_a_failing_sso_sign_in_is_said_plainly(db, monkeypatch):
    from test_app import SSO

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file /srv/secret/fairal.db")

    monkeypatch.setattr("streamlit.login", broken)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets.update(SSO)
    at.run().button(key="login_sso").click().run()
    assert not at.exception
    assert "Signing in with SSO did not work" in texts(at) and "/srv/secret" not in texts(at)


def test_a_deleted_database_is_not_made_again_by_restarting_the_worker(db, monkeypatch):
    """The app starts a worker when none runs; with the database gone it must not start one (a new worker
    would open, and so create, the file): the page says the database is missing first."""
    started_workers = []
    monkeypatch.setenv("FAIRAL_WORKER", "on")
    monkeypatch.syspath_prepend(str(Path(APP).parent))  # the app's own modules, as the router imports them
    import state  # the module the app's runs share (AppTest runs the script in this process)

    monkeypatch.setattr(state, "ensure_worker", lambda path, **kw: started_workers.append(path))
    at = signed_in(ANNOTATOR)
    assert len(started_workers) >= 1  # (the stub starts nothing, so every run asks)
    started_workers.clear()
    _remove(db)
    at.run()
    assert errors.MISSING in texts(at)
    assert started_workers == [] and not db.exists()
