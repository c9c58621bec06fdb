"""Names people type (user names, project names), checked in one place, and text made safe for a log line
or a terminal.

A name may hold any letters, digits, punctuation and spaces of any script, but no control characters
(line breaks, tabs, BEL, ESC: they forge log lines and reach the terminal of ``users list``) and no
invisible format characters (Unicode category Cf: the bidirectional overrides and isolates such as
U+202E, which make ``evil\\u202eredaeh`` show as "evilheader", zero-width characters, the BOM), nor
line or paragraph separators.
"""

from __future__ import annotations

import unicodedata

__all__ = ["forbidden_characters", "check_name", "escape"]

#: Unicode categories refused in names: control, format (bidi overrides, zero-width), separators of
#: lines and paragraphs, surrogates, unassigned code points.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def _forbidden(ch: str) -> bool:
    return unicodedata.category(ch) in _FORBIDDEN_CATEGORIES


def forbidden_characters(text: str) -> list[str]:
    """The characters of ``text`` a name may not hold, written as ``U+XXXX`` (each once, in order)."""
    return list(dict.fromkeys(f"U+{ord(ch):04X}" for ch in text if _forbidden(ch)))


def check_name(value: object, what: str, *, max_length: int = 100, error: type[Exception] = ValueError) -> str:
    """``value`` stripped of surrounding spaces, or ``error`` naming the problem: empty, longer than
    ``max_length``, or holding control or invisible format characters (which it lists)."""
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > max_length:
        raise error(f"a {what} needs 1–{max_length} characters")
    bad = forbidden_characters(name)
    if bad:
        raise error(f"a {what} may not contain control or invisible formatting characters "
                    f"(line breaks, tabs, bidirectional overrides); found {', '.join(bad)}")
    return name


def escape(value: object) -> str:
    """``value`` as text with every control, format or separator character written as an escape
    (``\\n``, ``\\x1b``, ``\\u202e``), for one log line or a terminal; other characters stay as they are."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if _forbidden(ch) or ch == "\\" else ch
                   for ch in str(value))
