"""Rules for the names people give to sets: what a name may contain."""

from __future__ import annotations

import re
from typing import Final

from fsstore.canonical import nfc
from fsstore.errors import InvalidNameError, shorten

__all__ = ["MAX_NAME_LENGTH", "check_name", "check_set_name"]

MAX_NAME_LENGTH: Final = 255
_FORBIDDEN: Final = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")
_HASH_LIKE: Final = re.compile(r"^[0-9a-fA-F]{6,64}$")


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` in NFC if it is a usable name, else raise :class:`InvalidNameError`.

    A name is 1 to 255 characters with no path separators, no control characters, no
    leading or trailing white space, and does not start with ``-`` (it would read as an
    option on the command line).
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be text, not {type(name).__name__}")
    text = nfc(name)
    problem = _problem(text)
    if problem:
        raise InvalidNameError(f"{what} {shorten(repr(name))} {problem}; choose another {what}")
    return text


def _problem(text: str) -> str:
    if not text:
        return "is empty"
    if len(text) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    found = _FORBIDDEN.search(text)
    if found:
        return (f"contains {found.group()!r} "
                "(path separators and control characters are not allowed)")
    if text != text.strip():
        return "starts or ends with white space"
    if text in (".", ".."):
        return "is a path component"
    if text.startswith("-"):
        return "starts with '-'"
    return ""


def check_set_name(name: object, what: str = "set") -> str:
    """Like :func:`check_name`, also refusing 6 to 64 hex digits, which read as a hash prefix.

    A set named ``3a8c51`` would hide the set whose hash starts with ``3a8c51`` wherever a
    set can be named by either; the same holds for datasets and their digests (``what``).
    """
    text = check_name(name, f"{what} name" if what != "set" else "name")
    if _HASH_LIKE.match(text):
        raise InvalidNameError(
            f"name {text!r} looks like a hash prefix (6 or more hex digits) and would hide "
            f"the {what} with that prefix; choose another name"
        )
    return text
