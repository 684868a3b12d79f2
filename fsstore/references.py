"""References people type for a set, and the hash prefixes sets and datasets share.

A set is named by a name, its hash, or a unique prefix of its hash (:func:`resolve_set`).
Hashes and dataset digests are both 64 lower-case hex characters; any unique prefix of
``MIN_PREFIX`` or more (in either case) names the same thing (:func:`unique_prefix`, also
used by ``links.resolve_dataset`` after a dataset's names and paths).
"""

from __future__ import annotations

import re
from typing import Final

from fsstore.backend import Backend
from fsstore.canonical import nfc
from fsstore.errors import AmbiguousReferenceError, ReferenceNotFoundError
from fsstore.index import View
from fsstore.manifest import manifest_key

__all__ = ["MIN_PREFIX", "is_hex", "resolve_set", "short_prefix_hint", "unique_prefix"]

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


def resolve_set(view: View, backend: Backend, ref: str) -> str:
    """The full hash of the set ``ref`` names: a name, a unique hash prefix or a full hash.

    A name wins over a prefix; a full hash that no event records resolves if its
    manifest is stored. Raises :class:`ReferenceNotFoundError` (or
    :class:`AmbiguousReferenceError` for a prefix of several hashes) otherwise.
    """
    pointing = view.find("set", "name", nfc(ref)).to_pylist()  # names are stored in NFC
    if pointing:
        return str(pointing[-1]["hash"])

    found = unique_prefix(view, "set", "hash", ref, label="hash", plural="sets")
    if found is not None:
        return found

    lowered = ref.lower()
    if len(lowered) == 64 and is_hex(lowered) and backend.exists(manifest_key(lowered)):
        return lowered

    raise ReferenceNotFoundError(
        f"no set named {ref!r} and no hash starting with it"
        f"{short_prefix_hint(ref, 'hash')}; run `fsstore ls` to see what is stored",
        ref,
    )
