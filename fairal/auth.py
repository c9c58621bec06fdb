"""Accounts, passwords and who may do what.

Two roles: an **admin** creates projects, manages annotators and sees
everything; an **annotator** labels the projects assigned to them and sees
nothing else (not even other annotators' answers). Passwords are hashed with
Argon2id by ``argon2-cffi`` (the Password Hashing Competition winner, with
its maintained defaults); the store keeps only the hash.

Access control has two layers: the app's router offers each role only its
pages, and every library write that a user triggers checks the role again
here (:func:`require_admin`, :func:`require_project_access`), so a crafted
request that bypasses the router still fails.

Single sign-on: ``st.login`` (OIDC, configured in ``.streamlit/secrets.toml``)
gives the app a verified e-mail; :func:`oidc_user` maps it to a local account,
created as an annotator on first sign-in unless the e-mail is listed in
``FAIRAL_OIDC_ADMINS`` (comma-separated).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from fairal.errors import AccessDenied, AuthError, TooManyAttempts  # noqa: F401 (defined there, named here too)
from fairal.text import check_name

__all__ = [
    "AccessDenied",
    "accounts_overview",
    "AuthError",
    "TooManyAttempts",
    "create_first_admin",
    "has_admin",
    "issue_setup_code",
    "MIN_PASSWORD_LENGTH",
    "User",
    "authenticate",
    "create_account",
    "oidc_user",
    "require_admin",
    "require_project_access",
    "set_password",
    "set_role",
    "remove_account",
    "assign",
    "unassign",
    "user",
    "start_session",
    "resume_session",
    "end_session",
    "SESSION_DAYS",
]

#: How long a browser stays signed in (the app keeps a random token in a cookie; the store keeps its hash).
SESSION_DAYS = 7

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise AuthError("a password may have at most 1024 characters")


def _check_name(name: str) -> str:
    return check_name(name, "user name", error=AuthError)  # no control or bidi characters (fairal.text)


def create_account(store, name: str, password: str, *, role: str = "annotator", by: User | None = None) -> User:
    """A new account with a hashed password. ``by``: the admin creating it (None only to bootstrap
    the first admin, when no admin exists yet)."""
    if by is not None:
        require_admin(by)
    elif any(a["role"] == "admin" for a in store.annotators()):
        raise AccessDenied("only an admin can create accounts")
    name = _check_name(name)
    _check_password(password)
    if role not in ("admin", "annotator"):
        raise AuthError(f"role must be 'admin' or 'annotator', got {role!r}")
    existing = store.annotator_by_name(name)
    if existing is not None and store.password_hash(existing["id"]) is not None:
        raise AuthError(f"an account named {name!r} already exists")
    # An existing password-less annotator (from the first, account-free slice) is adopted.
    annotator_id = existing["id"] if existing else store.add_annotator(name, role=role)
    if existing and existing["role"] != role:
        store.set_role(annotator_id, role)
    store.set_password_hash(annotator_id, _hasher.hash(password))
    return User(annotator_id, name, role)


def set_password(store, account_id: int, password: str, *, by: User) -> None:
    """Change a password: admins for anyone, annotators for themselves."""
    if not by.is_admin and by.id != account_id:
        raise AccessDenied("annotators can change only their own password")
    _check_password(password)
    store.set_password_hash(account_id, _hasher.hash(password))
    store.delete_auth_sessions(annotator_id=account_id)  # every browser signed in with the old one is out


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(store, who: User, *, days: float = SESSION_DAYS) -> str:
    """A random token that keeps this browser signed in; only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    store.add_auth_session(who.id, _token_hash(token), seconds=days * 86_400)
    return token


def resume_session(store, token: str | None) -> User | None:
    """The user of a live session token (from the browser's cookie), or None."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    account_id = store.auth_session_account(_token_hash(token))
    return None if account_id is None else user(store, account_id)


def end_session(store, token: str | None) -> None:
    if isinstance(token, str) and token:
        store.delete_auth_sessions(token_hash=_token_hash(token))


@dataclass(frozen=True)
class Throttle:
    """Failed sign-ins allowed free under one key, then blocked for ``base * 2 ** (extra - 1)`` seconds
    after each further failure (``extra``: failures beyond the free ones), at most ``cap``."""

    free: int
    base: float = 1.0
    cap: float = 900.0

    def delay(self, failures: int) -> float:
        extra = failures - self.free
        return 0.0 if extra <= 0 else min(self.cap, self.base * 2.0 ** (extra - 1))


#: Per account name: 3 free tries, then 1, 2, 4, … s up to 15 min. Per client address (many people
#: may share one behind a proxy or NAT): 20 free tries. Counts are forgotten after a quiet hour.
ACCOUNT_THROTTLE = Throttle(free=3)
CLIENT_THROTTLE = Throttle(free=20)
FORGET_FAILURES_SECONDS = 3600.0


def _throttle_keys(name: str, client: str | None) -> list[tuple[str, Throttle]]:
    keys = [(f"account:{name.strip().casefold()}", ACCOUNT_THROTTLE)]
    if client:
        keys.append((f"client:{client}", CLIENT_THROTTLE))
    return keys


def authenticate(store, name: str, password: str, *, client: str | None = None) -> User | None:
    """The user with this name and password, or None (the same answer for a wrong name or password).

    Throttled in the store (so a restart forgets nothing): per account name and per ``client`` (the
    browser's address), failures beyond the free ones block further tries for a doubling delay;
    a blocked try raises :class:`TooManyAttempts` ("try again in N s") without checking the password,
    the right one included. A success clears the account's count (the client's fades with time).
    """
    name = name if isinstance(name, str) else ""
    keys = _throttle_keys(name, client)
    blocked = store.login_blocked_seconds([key for key, _ in keys])
    if blocked > 0:
        raise TooManyAttempts(blocked)
    row = store.annotator_by_name(name.strip()) if name else None
    stored = store.password_hash(row["id"]) if row else None
    try:  # verified even for an unknown name, so a wrong name costs as long as a wrong password
        verified: bool = _hasher.verify(stored or _DUMMY_HASH, password if isinstance(password, str) else "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        verified = False
    if not verified or row is None or stored is None:
        delay = max(store.record_login_failure(key, throttle.delay, forget_seconds=FORGET_FAILURES_SECONDS)
                    for key, throttle in keys)
        if delay > 0:
            raise TooManyAttempts(delay) from None
        return None
    # Only the account's count: a client's count is forgotten with time, never by one success, or
    # an annotator could spray guesses at other accounts and wipe them by signing in to their own.
    store.clear_login_failures([key for key, _ in keys if key.startswith("account:")])
    if _hasher.check_needs_rehash(stored):  # the library's defaults got stronger: upgrade quietly
        store.set_password_hash(row["id"], _hasher.hash(password))
    return User(row["id"], row["name"], row["role"])


# ------------------------------------------------------------ the first admin

#: How long a setup code stays valid.
SETUP_CODE_HOURS = 24


def issue_setup_code(store, *, hours: float = SETUP_CODE_HOURS) -> str:
    """A new one-time code (16 hex digits) that lets whoever has it create the first admin; only its
    SHA-256 is stored. The operator gets it from the server console or ``python -m fairal init``."""
    code = secrets.token_hex(8)
    store.add_setup_code(_token_hash(code), seconds=hours * 3600)
    return code


def has_admin(store) -> bool:
    """Whether an admin who can sign in with a password exists (else the first one is still to create)."""
    return any(a["role"] == "admin" and a["has_password"] for a in store.annotators())


def create_first_admin(store, name: str, password: str, setup_code: str) -> User:
    """The first admin of a new installation, for whoever holds a live setup code (see
    :func:`issue_setup_code`); every setup code goes with it. One transaction."""
    code = setup_code.strip().lower() if isinstance(setup_code, str) else ""
    with store.transaction():
        if has_admin(store):
            raise AccessDenied("an admin exists already: ask them to create your account")
        if not code or not store.setup_code_valid(_token_hash(code)):
            raise AuthError("the setup code is wrong or expired: use the one printed in the server console "
                            "(or run `python -m fairal init` for a new one)")
        admin = create_account(store, name, password, role="admin")
        store.delete_setup_codes()
    return admin


def assign(store, project_id: int, account_id: int, *, by: User) -> None:
    """Give an account access to a project (admins only)."""
    require_admin(by)
    store.add_member(project_id, account_id)


def unassign(store, project_id: int, account_id: int, *, by: User) -> None:
    """Take a project away from an account; its labels stay (admins only)."""
    require_admin(by)
    store.remove_member(project_id, account_id)


def _require_another_admin(store, account_id: int) -> None:
    """Refuse to demote or remove the last admin (nobody could manage accounts afterwards)."""
    row = store.annotator(account_id)
    if row["role"] == "admin" and not any(a["role"] == "admin" and a["id"] != account_id
                                          for a in store.annotators()):
        raise AuthError(f"{row['name']!r} is the last admin: make another account admin first")


def set_role(store, account_id: int, role: str, *, by: User) -> None:
    """Make an account admin or annotator (admins only; an admin cannot demote themselves,
    nobody can demote the last admin)."""
    require_admin(by)
    if account_id == by.id and role != "admin":
        raise AuthError("an admin cannot take away their own admin role")
    if role != "admin":
        _require_another_admin(store, account_id)
    store.set_role(account_id, role)


def remove_account(store, account_id: int, *, by: User) -> bool:
    """Delete an account: its password, sign-ins and project assignments go (admins only; not
    oneself, not the last admin). An account that labeled keeps its name, without a password,
    as the author of its labels; returns whether the name went too."""
    require_admin(by)
    if account_id == by.id:
        raise AuthError("an admin cannot remove their own account")
    _require_another_admin(store, account_id)
    return store.remove_annotator(account_id)


def user(store, account_id: int) -> User:
    """The current view of an account (its role may have changed since login)."""
    row = store.annotator(account_id)
    return User(row["id"], row["name"], row["role"])


def oidc_user(store, email: str) -> User:
    """The local account of a user signed in through OIDC (``st.user.email``), created on first use."""
    email = _check_name(email)
    admins = {e.strip().lower() for e in os.environ.get("FAIRAL_OIDC_ADMINS", "").split(",") if e.strip()}
    role = "admin" if email.lower() in admins else "annotator"
    account_id = store.get_or_create_annotator(email, role=role)
    if role == "admin" and store.annotator(account_id)["role"] != "admin":
        store.set_role(account_id, "admin")
    return user(store, account_id)


def accounts_overview(store, *, by: User) -> list[dict]:
    """Every account (admins only) with its assigned project ids and the labels it gave in live projects:
    ``{id, name, role, has_password, project_ids, labels_given}``, by name."""
    require_admin(by)
    given = store.labels_by_annotator()  # one GROUP BY, not every answer of every project
    return [{**account, "project_ids": [int(p["id"]) for p in store.member_projects(account["id"])],
             "labels_given": given.get(account["id"], 0)} for account in store.annotators()]


def require_admin(who: User) -> None:
    if who is None or not who.is_admin:
        raise AccessDenied("this needs an admin account")


def require_project_access(store, who: User, project_id: int) -> None:
    """Admins reach every project; an annotator only the projects assigned to them."""
    if who is None:
        raise AccessDenied("sign in first")
    if who.is_admin:
        store.project(project_id)  # NotFoundError for a project that does not exist
        return
    if not store.is_member(project_id, who.id):
        raise AccessDenied(f"{who.name} is not assigned to project {project_id}")
