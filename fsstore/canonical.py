"""Canonical encoding and BLAKE3 digest of a feature set (encoding version 1).

This module is the executable form of the specification in the README ("Canonical
encoding"). Changing the bytes it produces changes every hash ever stored, so any change
needs a new encoding version, never an edit of version 1.

The encoding is a sequence of netstrings, ``<decimal byte length>:<UTF-8 bytes>,``::

    field("fsstore.featureset.v1") field(itype) field(dtype or "")
    field("1" if ordered else "0") field(decimal n)
    then, for each member in canonical order: field(name) field(member dtype or "")

Members of an unordered set are sorted by the UTF-8 bytes of their NFC name (the same as
Unicode code point order, whatever the locale) and exact duplicates are dropped. Members of
an ordered set keep their order and may not repeat.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final, cast

import pyarrow as pa
import pyarrow.compute as pc
from blake3 import blake3

from fsstore.errors import (
    EmptyFeatureSetError,
    InvalidItypeError,
    InvalidMemberError,
    preview,
)
from fsstore.netstrings import EMPTY, concatenated, netstring, netstrings

__all__ = [
    "ENCODING",
    "UID_LENGTH",
    "WHITE_SPACE",
    "CanonicalSet",
    "canonical_members",
    "digest",
    "encode",
    "encode_reference",
    "nfc",
    "parse_itype",
    "strip_white_space",
]

ENCODING: Final = "fsstore.featureset.v1"
UID_LENGTH: Final = 16
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
WHITE_SPACE: Final = ("\t \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                      "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
"""What members may not begin or end with: tab, space, and the other characters of
Unicode's White_Space property that are not control characters. The control characters
among White_Space (line feed, carriage return, U+000B, U+000C, U+0085) and the separators
U+001C to U+001F that Python also counts as space are refused anywhere in a member, so
they are never stripped: stripping them would hide a file split wrongly."""
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_PADDED: Final = re.compile(f"(?:^|\x00)[{WHITE_SPACE}]|[{WHITE_SPACE}](?:\x00|\\Z)")
"""White space next to a NUL or an end of the NUL-joined members: a member may be padded."""
_IDENTIFIER: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_ITYPE: Final = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})+$")

Member = tuple[str, str]
"""A member as (name, dtype); dtype is "" where the set's members carry no dtype."""


@dataclass(frozen=True)
class CanonicalSet:
    """What defines a feature set's identity, in canonical form."""

    itype: str
    dtype: str
    ordered: bool
    members: tuple[Member, ...]

    @cached_property
    def hash(self) -> str:
        return digest(self)


def nfc(text: str) -> str:
    """Return ``text`` in Unicode normal form C, skipping the work when it already is."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def strip_white_space(text: str) -> str:
    """``text`` without surrounding :data:`WHITE_SPACE` (the only white space files lose)."""
    return text.strip(WHITE_SPACE)


def parse_itype(itype: str) -> tuple[str, str]:
    """Split ``Registry.field`` (the registry may be dotted) into registry and field."""
    if not isinstance(itype, str) or not _ITYPE.match(itype):
        raise InvalidItypeError(
            f"itype {itype!r} is not of the form Registry.field, "
            "for example 'Gene.ensembl_gene_id' or 'Feature.name'"
        )
    registry, _, field = itype.rpartition(".")
    return registry, field


def canonical_members(members: Iterable[Member], ordered: bool, *,
                      stored: bool = False) -> tuple[Member, ...]:
    """Validate, NFC-normalise, and order members as the encoding requires.

    ``stored`` says the members come from a stored manifest. Surrounding white space is
    then accepted: fsstore refused it only from encoding rules published after sets
    holding it may have been stored, and the encoding of those sets is unchanged, so they
    still read and verify.
    """
    pairs = list(members)
    if not pairs:
        raise EmptyFeatureSetError("a feature set needs at least one member; none were given")
    names = _checked_names([name for name, _ in pairs], padded_ok=stored)
    dtypes = _checked_dtypes(names, [dtype for _, dtype in pairs])
    names = _nfc_all(names)
    if ordered:
        _reject_repeats(names, ordered=True)
        return tuple(zip(names, dtypes, strict=True))
    if len(set(dtypes)) == 1:
        # The common case (no per-member dtypes, or one for all): sort plain strings.
        return tuple((name, dtypes[0]) for name in sorted(set(names)))
    unique = sorted(set(zip(names, dtypes, strict=True)))
    _reject_repeats([name for name, _ in unique], ordered=False)
    return tuple(unique)


def encode(canonical: CanonicalSet) -> bytes:
    """Return the canonical bytes of a set (see the module docstring)."""
    header = [ENCODING, canonical.itype, canonical.dtype, "1" if canonical.ordered else "0"]
    header.append(str(len(canonical.members)))
    names = pa.array([name for name, _ in canonical.members], pa.large_string())
    dtypes = pa.array([dtype for _, dtype in canonical.members], pa.large_string())
    members = pc.binary_join_element_wise(netstrings(names), netstrings(dtypes), EMPTY)
    return b"".join(netstring(value) for value in header) + concatenated(members)


def encode_reference(canonical: CanonicalSet) -> bytes:
    """The same bytes as :func:`encode`, written as plainly as the specification reads."""
    fields = [ENCODING, canonical.itype, canonical.dtype, "1" if canonical.ordered else "0",
              str(len(canonical.members))]
    for name, dtype in canonical.members:
        fields += [name, dtype]
    return b"".join(netstring(value) for value in fields)


def digest(canonical: CanonicalSet) -> str:
    """BLAKE3-256 of the canonical bytes, as 64 lower-case hex characters."""
    return blake3(encode(canonical)).hexdigest()


def _checked_names(names: list[object], *, padded_ok: bool = False) -> list[str]:
    not_text = [name for name in names if type(name) is not str]
    if not_text:
        raise InvalidMemberError(
            f"{len(not_text):,} member(s) are not strings: {preview(not_text)}; feature set "
            "members are identifiers, so convert them to text first",
            not_text,
        )
    if "" in names:
        raise InvalidMemberError("a member is the empty string; remove empty values first", [""])
    # One scan of the concatenation finds out whether any member needs a closer look.
    texts = cast("list[str]", names)
    joined = "".join(texts)
    if _SURROGATE.search(joined):
        bad = [name for name in texts if _SURROGATE.search(name)]
        raise InvalidMemberError(
            f"{len(bad):,} member(s) are not valid Unicode text (they hold lone surrogates, "
            f"usually from bytes decoded with the wrong codec): {preview(bad)}",
            bad,
        )
    padded = ([name for name in texts if name != name.strip(WHITE_SPACE)]
              if not padded_ok and _PADDED.search("\x00".join(texts)) else [])
    if padded:
        raise InvalidMemberError(
            f"{len(padded):,} member(s) begin or end with white space: {preview(padded)}; "
            "members are identifiers, and files are read with it removed, so strip it "
            "first (or build with from_values(..., strict=False), which strips it and "
            "reports it)",
            padded,
        )
    if _CONTROL.search(joined):
        bad = [name for name in texts if _CONTROL.search(name)]
        raise InvalidMemberError(
            f"{len(bad):,} member(s) contain a control character (tab, newline, ...): "
            f"{preview(bad)}; this usually means the input file was split wrongly",
            bad,
        )
    return cast("list[str]", names)


def _checked_dtypes(names: list[str], dtypes: list[object]) -> list[str]:
    bad = [name for name, dtype in zip(names, dtypes, strict=True) if type(dtype) is not str]
    if bad:
        raise InvalidMemberError(f"members have a non-text dtype: {preview(bad)}", bad)
    return cast("list[str]", dtypes)


def _nfc_all(names: list[str]) -> list[str]:
    # NUL never composes with its neighbours and members cannot contain it (checked above),
    # so normalising the NUL-joined text equals normalising each member on its own.
    joined = "\x00".join(names)
    if unicodedata.is_normalized("NFC", joined):
        return names
    return unicodedata.normalize("NFC", joined).split("\x00")


def _reject_repeats(names: Sequence[str], ordered: bool) -> None:
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    if not repeated:
        return
    if ordered:
        raise InvalidMemberError(
            f"an ordered feature set cannot repeat members; repeated: {preview(repeated)}",
            repeated,
        )
    raise InvalidMemberError(
        f"members appear with two different dtypes: {preview(repeated)}; "
        "a feature has one dtype within a set",
        repeated,
    )
