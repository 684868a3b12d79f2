"""Hash prefixes: the short forms people type for a set's hash or a dataset's digest.

Both are 64 lower-case hex characters; any unique prefix of ``MIN_PREFIX`` or more (in
either case) names the same thing. Names, paths and full hashes are resolved by the
callers (``Store.resolve``, ``links.resolve_dataset``), which fall back on these.
"""

from __future__ import annotations

import re
from typing import Final

from fsstore.errors import AmbiguousReferenceError
from fsstore.index import View

__all__ = ["MIN_PREFIX", "is_hex", "short_prefix_hint", "unique_prefix"]

MIN_PREFIX: Final = 6
"""The fewest characters a prefix may have (a shorter one would soon match many)."""
_HEX: Final = re.compile(r"^[0-9a-f]+$")
_SHOWN: Final = 5
"""Candidates an ambiguous prefix's error names."""


def is_hex(text: str) -> bool:
    """Whether ``text`` is made only of lower-case hex digits (and is not empty)."""
    return _HEX.match(text) is not None


def unique_prefix(view: View, kind: str, column: str, ref: str, *, label: str,
                  plural: str) -> str | None:
    """The one value of ``column`` in ``kind`` events that starts with ``ref``, if any.

    Parameters
    ----------
    view
        The index to look in.
    kind, column
        The event kind and the column holding the hashes (``"set"``, ``"hash"``).
    ref
        What was typed; it is a prefix only when made of ``MIN_PREFIX`` or more hex digits.
    label, plural
        How the error names the prefix and the things it matches (``"hash"``, ``"sets"``).

    Returns
    -------
    str or None
        The full value, or None if ``ref`` is no prefix or nothing starts with it.

    Raises
    ------
    AmbiguousReferenceError
        If several values start with ``ref``; it names the first few.
    """
    lowered = ref.lower()
    if len(lowered) < MIN_PREFIX or not is_hex(lowered):
        return None

    found = sorted(set(view.find_prefix(kind, column, lowered)[column].to_pylist()))
    if len(found) > 1:
        shown = ", ".join(value[:12] for value in found[:_SHOWN])
        raise AmbiguousReferenceError(
            f"{label} prefix {ref!r} matches {len(found)} {plural} ({shown}); "
            "give more characters",
            ref,
            found,
        )
    return str(found[0]) if found else None


def short_prefix_hint(ref: str, label: str) -> str:
    """A clause for a not-found error when ``ref`` looks like a prefix too short to be one."""
    if len(ref) >= MIN_PREFIX or not is_hex(ref.lower()):
        return ""
    return f"; {label} prefixes need at least {MIN_PREFIX} characters"
