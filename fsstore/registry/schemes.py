"""Recognising common identifier schemes, to explain values that did not validate.

When most values that failed are, say, integers while the field holds Ensembl ids, the
reason is a wrong id scheme, not a few typos; the error message says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = ["guess_scheme", "scheme_hint"]

SCHEMES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("Ensembl ids with a version suffix", re.compile(r"^ENS[A-Z]*[EGPRT]\d{6,}\.\d+$")),
    ("Ensembl ids", re.compile(r"^ENS[A-Z]*[EGPRT]\d{6,}$")),
    ("NCBI 'GeneID:' ids", re.compile(r"^GeneID:\d+$")),
    ("integers (such as NCBI Gene / Entrez ids)", re.compile(r"^\d+$")),
    ("UniProt accessions", re.compile(
        r"^(?:[OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9](?:[A-Z][A-Z0-9]{2}[0-9]){1,2})"
        r"(?:-\d+)?$")),
)
SAMPLE: Final = 2000
SHARE: Final = 0.9
"""A list is said to be of a scheme when at least this share of its sample matches it."""


def guess_scheme(values: Sequence[str]) -> str | None:
    """The scheme that nearly all of (a sample of) ``values`` follow, or None."""
    step = max(1, len(values) // SAMPLE)
    sample = [value for value in values[::step] if value]
    if not sample:
        return None
    for label, pattern in SCHEMES:
        matching = sum(1 for value in sample if pattern.match(value))
        if matching >= SHARE * len(sample):
            return label
    return None


def scheme_hint(invalid: Sequence[str], field_values: Sequence[str], itype: str) -> str | None:
    """A sentence saying the invalid values follow another scheme than the field, if so."""
    theirs = guess_scheme(invalid)
    if theirs is None:
        return None
    ours = guess_scheme(field_values)
    if theirs == ours:
        return None
    held = ours or "other identifiers"
    return (f"the values that did not validate look like {theirs}, while {itype} holds "
            f"{held}; convert them to that scheme first")
