"""fairal's errors, and what a person is told when something fails.

Every error the library raises on purpose is defined here, under one base (:class:`FairalError`),
and keeps the standard type callers catch (ValueError, PermissionError); the modules that raise
them import them from here (``fairal.store.NotFoundError`` and the like still work). Their messages
already say what is wrong in plain words; storage failures (a full disk, a damaged or read-only
database file) and bugs do not, and their text names server paths. :func:`explain` keeps the first,
translates the second, and gives every unexpected failure a short reference to find its traceback
in the server log.
"""

from __future__ import annotations

import errno
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FairalError", "StoreError", "NotFoundError", "DuplicateError", "MissingDatabaseError", "AuthError",
           "TooManyAttempts", "AccessDenied", "BudgetUsedUp",
           "DatasetError", "CrowdDataError", "ProjectError", "ModelFileError", "PolicyFileError",
           "EmptyPoolError", "PoolExhaustedError", "PolicyMismatchError", "Explanation", "explain"]


class FairalError(Exception):
    """The base of every error fairal raises on purpose: its message says what is wrong in plain
    words, so it can be shown to the person as it is. Each also keeps the standard type callers
    catch (ValueError for bad input, PermissionError for a refused role)."""


# --- by where they are raised: store, auth, datasets, crowd, projects, models, panda, strategies ---

class StoreError(FairalError):
    "Error in the fairal store"


class NotFoundError(StoreError):
    "No such project, annotator, item or model version"


class DuplicateError(StoreError):
    "A row with this name already exists"


class MissingDatabaseError(StoreError):
    """The database file is gone (deleted or moved while fairal ran): it is not silently created anew."""


class AuthError(FairalError, ValueError):
    """A bad account request: a weak password, a taken name, an unknown account."""


class TooManyAttempts(AuthError):
    """Sign-in refused for ``retry_after`` seconds after repeated failures (this account or this client)."""

    def __init__(self, retry_after: float):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"Too many attempts; try again in {self.retry_after} s")


class AccessDenied(FairalError, PermissionError):
    """The user's role does not allow this."""


class DatasetError(FairalError, ValueError):
    """A data set could not be loaded or is not usable as given.

    ``field``: the argument at fault (``"label"``, ``"sensitive"``, ``"positive"``, ...) when one
    is, so that a form can name its own field; ``values``: the values the argument could take.
    """

    def __init__(self, message: str, *, field: str | None = None, values: Sequence[str] = ()):
        super().__init__(message)
        self.field = field
        self.values = tuple(values)


class CrowdDataError(FairalError, ValueError):
    """Crowd answers or an argument about them are not usable as given."""


class ProjectError(FairalError, ValueError):
    """The project settings are inconsistent with its data."""


class ModelFileError(FairalError, ValueError):
    """A saved model could not be read: the file is corrupt or not a fairal model."""


class PolicyFileError(FairalError, ValueError):
    """A saved PANDA policy could not be read: the file is corrupt or not a policy file."""


class EmptyPoolError(FairalError, ValueError):
    """There are no unlabeled examples left to query."""


class BudgetUsedUp(FairalError, ValueError):
    """The project's label budget is used up: no new item takes a first answer."""


class PoolExhaustedError(FairalError, ValueError):
    """More examples were requested than the pool holds."""

    def __init__(self, available: int, requested: int):
        super().__init__(f"the pool is exhausted: {available} available / {requested} requested")
        self.available = available
        self.requested = requested


class PolicyMismatchError(FairalError, ValueError):
    """The policy was trained for other data (groups or features) than it is asked to rank."""


# --- explaining a failure ------------------------------------------------------------------

DISK_FULL = ("The server's disk is full, so nothing was saved. Ask your administrator to free some "
             "space, then try again.")
DAMAGED = ("The label database is damaged and cannot be read. Ask your administrator to restore it "
           "from a backup.")
READ_ONLY = ("The server may not write its label database (a permissions problem), so nothing was "
             "saved. Ask your administrator.")
BUSY = "The label database is busy; nothing was saved. Try again in a moment."
MISSING = ("The label database is missing (deleted or moved while the app ran), so nothing can be shown or "
           "saved. Ask your administrator to restore it; the server log names the file.")


@dataclass(frozen=True)
class Explanation:
    """``message`` for the person; ``reference`` is set for an unexpected failure (log it with it)."""

    message: str
    reference: str | None = None


def explain(error: BaseException) -> Explanation:
    """The sentence to show for ``error``."""
    text = str(error).lower()
    if isinstance(error, MissingDatabaseError):  # its text names the server's path: that goes to the log
        return Explanation(MISSING, reference=secrets.token_hex(4))
    if isinstance(error, sqlite3.OperationalError):
        if "disk is full" in text:
            return Explanation(DISK_FULL)
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return Explanation(READ_ONLY)
        if "locked" in text or "busy" in text:
            return Explanation(BUSY)
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        return Explanation(DAMAGED)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return Explanation(DISK_FULL)
    if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return Explanation(READ_ONLY)
    if isinstance(error, (FairalError, ValueError)):
        return Explanation(str(error))  # the library's own words: already plain
    return Explanation("Something went wrong on the server; it was not caused by anything you did. "
                       "Nothing half-done was saved.", reference=secrets.token_hex(4))
