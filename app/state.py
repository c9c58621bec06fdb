"""What every page shares: the store, the signed-in user, the current project, the worker.

Kept small on purpose: pages call library functions, never SQL or training code.
Who may do what is decided twice: the router offers each role only its pages,
and the library checks the role again on every write (``fairal.auth``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shlex
import sys
import threading
import time
from pathlib import Path

import streamlit as st

from fairal import auth, errors
from fairal.auth import AccessDenied, User
from fairal.projects import DEFAULT_PROJECT_NAME, Project, ensure_default_project, open_project
from fairal.research.methods import METHODS
from fairal.retrainer import ensure_worker
from fairal.retrainer import worker_running as _worker_running
from fairal.store import NotFoundError, Store

from literal import md

logger = logging.getLogger(__name__)

#: Where the labels live. ``FAIRAL_DB`` overrides it (tests point it at a temp file).
DEFAULT_DB = Path(".fairal") / "fairal.db"

#: Session-state keys shared by pages (page-specific keys carry the page's prefix).
USER_KEY = "fairal_user_id"
PROJECT_KEY = "fairal_project_id"


def db_path() -> Path:
    # Absolute: the background worker runs from the repository root, not from the app's folder.
    return Path(os.environ.get("FAIRAL_DB", DEFAULT_DB)).resolve()


def store() -> Store:
    """A new Store: the caller closes it (``with state.store() as s:``), e.g. a fragment rerunning on its own.

    It opens the existing file only (``create=False``): once the app has a database, a page view never
    makes a new, empty one; a missing file is an error (:class:`fairal.errors.MissingDatabaseError`).
    """
    return Store(db_path(), create=False)


SETUP_CODE_LINE = "fairal setup code: "


@st.cache_resource(show_spinner=False)
def _started(path: str) -> dict:
    """This server process's first page run on this database (the app's "first start"): the only time
    the app may create the file. A database without an admin then gets a one-time setup code, printed
    in the server console (as Jupyter prints its token), which the first-admin form asks for."""
    created = not Path(path).exists()
    with Store(path) as s:
        code = None if auth.has_admin(s) else auth.issue_setup_code(s)
    if code is not None:
        banner = (f"\n  {'Created' if created else 'Opened'} the fairal database {path}; it has no admin yet.\n"
                  f"  To create the first admin, open the app and enter the\n"
                  f"  {SETUP_CODE_LINE}{code}\n"
                  f"  (valid {auth.SETUP_CODE_HOURS} h; `python -m fairal init` prints a new one)\n")
        print(banner, file=sys.stderr, flush=True)
    return {"created": created}


def open_database() -> None:
    """Create the database on the app's first start (and print a setup code if it has no admin);
    afterwards only check it is there. Call before anything else opens it."""
    path = db_path()
    _started(str(path))
    if not path.exists():  # before anything (the worker's start included) could make a new one
        with store():
            pass  # raises MissingDatabaseError, naming the file


_PAGE_STORE: contextvars.ContextVar[Store | None] = contextvars.ContextVar("fairal_page_store", default=None)


@contextlib.contextmanager
def page_store_scope():
    """One Store for the page this script run shows, closed when the page is done (the router wraps the
    page in this), so no page leaves a connection open."""
    opened = store()
    token = _PAGE_STORE.set(opened)
    try:
        yield opened
    finally:
        _PAGE_STORE.reset(token)
        opened.close()


def page_store() -> Store:
    """The Store of the page being shown (see :func:`page_store_scope`); pages do not close it."""
    current = _PAGE_STORE.get()
    if current is None:
        raise RuntimeError("page_store() outside page_store_scope(): pages run inside the router")
    return current


def failure_message(error: BaseException, *, doing: str = "") -> str:
    """What to tell the person about ``error`` (escaped for Markdown): the library's own words, or a
    plain sentence for storage failures and bugs, which go to the server log with a reference.
    Call it inside ``except``."""
    explanation = errors.explain(error)
    message = explanation.message
    if explanation.reference is not None:
        logger.exception("unexpected failure %s%s", explanation.reference, f" while {doing}" if doing else "")
        message += f" (reference {explanation.reference} in the server log)"
    return (f"{doing[:1].upper()}{doing[1:]} did not work: " if doing else "") + md(message)


def show_failure(error: BaseException, *, doing: str = "") -> None:
    """:func:`failure_message` as an error box."""
    st.error(failure_message(error, doing=doing), icon=":material/error:")


# ----------------------------------------------------------------- worker


def worker_enabled() -> bool:
    """False when ``FAIRAL_WORKER=off`` (tests, or a worker started by hand elsewhere)."""
    return os.environ.get("FAIRAL_WORKER", "on").strip().lower() not in ("off", "0", "false", "no")


#: After a failed start, the app tries again at most this often (each try can wait for the child).
WORKER_RETRY_SECONDS = 60.0


@st.cache_resource(show_spinner=False)
def _worker_attempts(path: str) -> dict:
    """Per database, for this app process: when the last start failed and why, and a lock so
    that two sessions' first page runs do not both start a worker."""
    return {"failed_at": None, "error": None, "lock": threading.Lock()}


def ensure_background_worker() -> None:
    """Start ``python -m fairal worker`` unless one runs (or ``FAIRAL_WORKER=off``).

    Checked on every script run (a lock-file test, microseconds), so a worker that died is
    started again; after a failed start the app waits ``WORKER_RETRY_SECONDS`` before the next
    try and meanwhile retrains inline. Nothing of a failure is cached for good.
    """
    if not worker_enabled():
        return
    path = db_path()
    if _worker_running(path):
        return
    attempts = _worker_attempts(str(path))
    with attempts["lock"]:
        failed_at = attempts["failed_at"]
        if _worker_running(path) or (failed_at is not None and time.monotonic() - failed_at < WORKER_RETRY_SECONDS):
            return
        try:
            with st.spinner("Starting the background trainer…"):
                ensure_worker(path)
            attempts["failed_at"], attempts["error"] = None, None
        except Exception as error:  # the app still works: sessions retrain inline then
            logger.exception("could not start the background worker for %s", path)
            attempts["failed_at"], attempts["error"] = time.monotonic(), str(error)


def worker_start_error() -> str | None:
    """Why the last start of the background worker failed (None when it did not fail)."""
    return _worker_attempts(str(db_path()))["error"]


def worker_running() -> bool:
    return _worker_running(db_path())


def no_worker_notice() -> None:
    """Say that models retrain inline, and why no worker runs (disabled, or its start failed)."""
    if not worker_enabled():
        why = "the background worker is switched off (FAIRAL_WORKER=off)"
    elif worker_start_error():
        why = (f"the background worker could not start ({md(worker_start_error())}; "
               "the app tries again every minute)")
    else:
        why = "no background worker runs"
    st.info(f"Models retrain inline after each label, because {why}: the annotator waits for each fit. "
            "Start one in a terminal with `python -m fairal worker`.", icon=":material/info:")


# ------------------------------------------------------------ accounts


def sso_providers() -> list[str] | None:
    """None when no ``[auth]`` section is in the secrets; else the named providers ([] = the default one)."""
    try:
        if "auth" not in st.secrets:
            return None
        section = st.secrets["auth"]
    except Exception:  # no secrets file at all
        return None
    return [name for name, value in section.items() if hasattr(value, "keys")]


def _sso_logged_in() -> bool:
    try:
        return bool(st.user.get("is_logged_in", False))
    except Exception:
        return False


def current_user(s: Store) -> User | None:
    """The signed-in user, read again from the store on every run (roles can change).

    A browser that signed in earlier carries a session cookie (a random token whose hash the
    store keeps for ``auth.SESSION_DAYS``), so a reload or a new tab stays signed in. The token
    is checked again on every run too: a tab whose sign-in ended elsewhere (signed out in another
    tab, the password changed, the account removed) is signed out at its next run.
    """
    account_id = st.session_state.get(USER_KEY)
    if account_id is not None and not _sign_in_still_valid(s, account_id):
        sign_out()
        st.session_state["login_error"] = "You were signed out: your sign-in ended elsewhere (signed out in " \
                                          "another tab, or the password was changed)."
        return None
    if account_id is None:
        token = _cookie()
        resumed = auth.resume_session(s, token)
        if resumed is not None:
            sign_in(resumed, s, token=token)
            return resumed
    if account_id is None and sso_providers() is not None and _sso_logged_in():
        email = st.user.get("email")
        try:
            signed = auth.oidc_user(s, email if isinstance(email, str) else "")
        except auth.AuthError:
            st.session_state["login_error"] = ("Your identity provider sent no e-mail address; "
                                               "fairal needs one to find your account.")
            return None
        sign_in(signed)
        return signed
    if account_id is None:
        return None
    try:
        return auth.user(s, int(account_id))
    except (NotFoundError, ValueError, TypeError):  # the account was deleted: sign out
        sign_out()
        return None


def _sign_in_still_valid(s: Store, account_id) -> bool:
    """Whether this browser session's sign-in is still live in the store: its token (password sign-in)
    still names this account, or the identity provider still vouches for it (SSO, which has no token)."""
    token = st.session_state.get(_COOKIE_TOKEN)
    if token:
        resumed = auth.resume_session(s, token)
        return resumed is not None and resumed.id == int(account_id)
    return sso_providers() is not None and _sso_logged_in()


def has_admin(s: Store) -> bool:
    """Whether an admin who can sign in with a password exists (else: create the first one)."""
    return auth.has_admin(s)


def client_address() -> str | None:
    """The browser's address as the server sees it (a proxy's own address behind a proxy), for throttling."""
    try:
        address = st.context.ip_address
    except Exception:  # no browser (bare mode)
        return None
    return address if isinstance(address, str) and address else None


SESSION_COOKIE = "fairal_session"
_COOKIE_TOKEN = "fairal_session_token"
_COOKIE_WRITE = "fairal_cookie_write"
#: The cookie is written by the next few script runs, not one: a run that ends in a page switch
#: (sign-in → Label) is replaced before the browser may have loaded its frame.
_COOKIE_RUNS = 3


def _cookie() -> str | None:
    try:
        return st.context.cookies.get(SESSION_COOKIE)
    except Exception:  # no browser (AppTest, bare mode)
        return None


def sign_in(user: User, s: Store | None = None, *, token: str | None = None) -> None:
    """Sign ``user`` in for this browser session; with a store, also remember the browser (cookie)."""
    for key in list(st.session_state.keys()):  # nothing of a previous user survives
        del st.session_state[key]
    st.session_state[USER_KEY] = int(user.id)
    if token is None and s is not None:
        token = auth.start_session(s, user)
        st.session_state[_COOKIE_WRITE] = (token, _COOKIE_RUNS)  # written by the next runs (write_session_cookie)
    st.session_state[_COOKIE_TOKEN] = token


def sign_out(s: Store | None = None) -> None:
    sso = sso_providers() is not None and _sso_logged_in()
    if s is not None:
        auth.end_session(s, st.session_state.get(_COOKIE_TOKEN) or _cookie())
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[_COOKIE_WRITE] = ("", _COOKIE_RUNS)  # clear the browser's cookie on the next runs
    if sso:
        st.logout()


def run_in_page(script: str) -> None:
    """Run a line of our own JavaScript in the page (never user text). In the sidebar, whose
    bottom has room: an element in the main area would push the page down by its gap."""
    st.sidebar.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def write_session_cookie() -> None:
    """Set (or clear) the session cookie in the browser after a sign-in or sign-out (next few runs).

    The cookie is SameSite=Strict and holds only the random token (URL-safe characters: nothing to quote);
    on a page served over HTTPS it is also ``Secure`` (never sent over plain HTTP). Streamlit gives a script
    no way to set a response header, so the cookie is written by the page's JavaScript and cannot be
    ``HttpOnly``: the README says what a deployment does about that (TLS proxy, and the server re-checks
    the token on every run, so signing out or a password change ends it everywhere).
    """
    pending = st.session_state.get(_COOKIE_WRITE)
    if pending is None:
        return
    token, runs = pending
    if runs <= 1:
        del st.session_state[_COOKIE_WRITE]
    else:
        st.session_state[_COOKIE_WRITE] = (token, runs - 1)
    age = int(auth.SESSION_DAYS * 86_400) if token else 0
    run_in_page(f"document.cookie = '{SESSION_COOKIE}={token}; path=/; max-age={age}; SameSite=Strict'"
                " + (location.protocol === 'https:' ? '; Secure' : '');")


_RETURN_FOCUS = "fairal_return_focus"


def return_focus_to_page() -> None:
    """After a select box changed, give the keyboard back to the page (its shortcuts: 1/2, S, U).

    A select box keeps the focus after a choice, so the next key press would type into it.
    """
    if st.session_state.pop(_RETURN_FOCUS, False):
        run_in_page("if (document.activeElement) document.activeElement.blur();")


def require_admin_page(user: User | None) -> User:
    """Stop the page unless an admin is signed in (the router already hides it from others)."""
    if user is None or not user.is_admin:
        st.error("This page is for admins.")
        st.stop()
    return user


def annotator_name() -> str:
    """The signed-in user's name (kept for callers of the account-free first version)."""
    with store() as s:
        user = current_user(s)
    return user.name if user is not None else "annotator"


# ------------------------------------------------------------ projects


def needs_demo_project(s: Store) -> bool:
    """A new installation (no project at all, archived ones included) gets the demo Adult project.
    Once an admin has archived or deleted it, it is not made again."""
    return not s.projects(include_archived=True)


def create_demo_project(s: Store) -> int:
    """The ready-to-label demo Adult project (a few seconds: the router shows a spinner)."""
    return ensure_default_project(s)


@st.cache_resource(show_spinner=False, max_entries=16)
def _project(path: str, project_id: int, settings: str) -> Project:
    # ``settings``: the stored project row as text, so an edited project (Setup) gets a new entry;
    # until then the runtime view is shared by all sessions.
    with Store(path, create=False) as s:
        return open_project(s, project_id)


def allowed_projects(s: Store, user: User) -> list[dict]:
    """Every project for an admin; the assigned ones for an annotator."""
    return s.projects() if user.is_admin else s.member_projects(user.id)


def current_project_id(s: Store, user: User) -> int | None:
    """The project chosen in this session; by default the demo (admins, while it is active) or the
    first project this user may open."""
    if PROJECT_KEY not in st.session_state:
        mine = allowed_projects(s, user)
        if not mine:
            return None
        demo = [p for p in mine if p["name"] == DEFAULT_PROJECT_NAME and user.is_admin]
        st.session_state[PROJECT_KEY] = int((demo or mine)[0]["id"])
    try:
        return int(st.session_state[PROJECT_KEY])
    except (TypeError, ValueError):
        st.session_state.pop(PROJECT_KEY, None)
        return None


def set_current_project(project_id: int | None) -> None:
    if project_id is None:
        st.session_state.pop(PROJECT_KEY, None)
    else:
        st.session_state[PROJECT_KEY] = int(project_id)


def open_current_project(s: Store, user: User, project_id: int) -> Project:
    """The project's runtime view, after checking the user may open it (AccessDenied, NotFoundError)."""
    auth.require_project_access(s, user, project_id)
    return _project(str(db_path()), project_id, str(s.project(project_id)))


def project_picker(s: Store, user: User, *, key: str, label: str = "Project", where=st) -> Project | None:
    """A project selector bound to the session's current project; shows the problem and returns
    None when there is no project to open (none assigned, or a project this user may not open)."""
    current = current_project_id(s, user)
    projects = allowed_projects(s, user)
    if not projects:
        if user.is_admin:
            st.info("There is no project yet: create one on the **Setup** page.")
        else:
            st.info(f"Welcome, {md(user.name)}! You are not assigned to a project yet. "
                    "Ask an admin to assign you to one; it then appears here.")
        return None
    names = {int(p["id"]): p["name"] for p in projects}
    if current not in names and current is not None and user.is_admin:
        set_current_project(None)  # archived or deleted: fall back to another
        current = current_project_id(s, user)
    refused = current is not None and current not in names
    st.session_state[key] = None if refused or current not in names else current

    def chosen() -> None:
        set_current_project(st.session_state.get(key))
        st.session_state[_RETURN_FOCUS] = True

    where.selectbox(label, list(names), key=key, format_func=lambda i: names.get(i, f"project {i}"),
                    on_change=chosen, placeholder="Choose a project")
    return_focus_to_page()
    if refused:
        st.error(f"You are not assigned to project {current}. Choose one of your projects above.")
        return None
    if current is None:
        return None
    try:
        return open_current_project(s, user, current)
    except (AccessDenied, NotFoundError) as error:
        st.error(f"Cannot open this project: {md(error)}")
        return None


def simulate_command(project: Project) -> str:
    """The ``python -m fairal simulate`` line that simulates this project's data and attribute."""
    row = project.row
    if row["dataset"].startswith("csv:"):
        source = ["--csv", row["dataset"][4:], "--label", row["label_column"], "--sensitive", row["sensitive"]]
    else:
        source = ["--dataset", row["dataset"], "--sensitive", row["sensitive"]]
    methods = dict.fromkeys(["random", "entropy"] + [row["strategy"]] * (row["strategy"] in METHODS))
    return shlex.join(["python", "-m", "fairal", "simulate", *source, "--budget", str(row["budget"]),
                       "--methods", ",".join(methods), "--out", "simulation"])


def admin_project_page(title: str, *, key: str):
    """The opening of an admin page about one project: (store, admin, project), with the project
    picker in the sidebar and the page title; stops the page when there is no project to show."""
    s = page_store()
    admin = require_admin_page(current_user(s))
    with st.sidebar:
        project = project_picker(s, admin, key=key)
    if project is None:
        st.title(title)
        st.stop()
    st.title(f"{title} · {md(project.name)}")
    return s, admin, project
