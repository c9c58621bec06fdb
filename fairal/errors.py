"""What a person is told when something fails: one place that turns an exception into a sentence.

The library's own errors (bad input, a refused role, a missing row) already say what is wrong in
plain words; storage failures (a full disk, a damaged or read-only database file) and bugs do not,
and their text names server paths. :func:`explain` keeps the first, translates the second, and
gives every unexpected failure a short reference to find its traceback in the server log.
"""

from __future__ import annotations

import errno
import secrets
import sqlite3
from dataclasses import dataclass

__all__ = ["Explanation", "explain"]

DISK_FULL = ("The server's disk is full, so nothing was saved. Ask your administrator to free some "
             "space, then try again.")
DAMAGED = ("The label database is damaged and cannot be read. Ask your administrator to restore it "
           "from a backup.")
READ_ONLY = ("The server may not write its label database (a permissions problem), so nothing was "
             "saved. Ask your administrator.")
BUSY = "The label database is busy; nothing was saved. Try again in a moment."


@dataclass(frozen=True)
class Explanation:
    """``message`` for the person; ``reference`` is set for an unexpected failure (log it with it)."""

    message: str
    reference: str | None = None


def explain(error: BaseException) -> Explanation:
    """The sentence to show for ``error``."""
    from fairal.store import StoreError

    text = str(error).lower()
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
    if isinstance(error, (ValueError, StoreError, PermissionError)):
        return Explanation(str(error))  # the library's own words: already plain
    return Explanation("Something went wrong on the server; it was not caused by anything you did. "
                       "Nothing half-done was saved.", reference=secrets.token_hex(4))
