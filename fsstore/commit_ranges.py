"""Folders that cover a range of index commits: the index's runs and the member index's packs.

Both are immutable folders named ``<first>-<last>-<token>`` (16-digit commit numbers and a
random token, so that two writers never collide), made visible by a manifest file written
last. Readers chain them from commit 1, taking the widest at each step; writers merge the
newest two while the older is at most ``MERGE_FACTOR`` times the size of the newer, so a
long history is a handful of folders.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Final, Protocol, TypeVar

from fsstore.backend import Backend

__all__ = ["MERGE_FACTOR", "Span", "covering_chain", "delete_folder", "folder_range",
           "new_folder"]

MERGE_FACTOR: Final = 4
"""Two adjacent folders are merged when the older is at most this many times the newer."""
_FOLDER: Final = re.compile(r"^(\d{16})-(\d{16})-([0-9a-f]+)$")


class Span(Protocol):
    """Anything that covers the commits ``first..last``."""

    @property
    def first(self) -> int: ...

    @property
    def last(self) -> int: ...


S = TypeVar("S", bound=Span)


def new_folder(prefix: str, first: int, last: int) -> str:
    """A fresh folder name under ``prefix`` for commits ``first..last``."""
    return f"{prefix}/{first:016d}-{last:016d}-{secrets.token_hex(4)}"


def folder_range(folder: str) -> tuple[int, int] | None:
    """The (first, last) commit numbers a folder's name says it covers, or None.

    Only the last part of ``folder`` counts, so a key's parent or a bare name will do.
    """
    found = _FOLDER.match(folder.rpartition("/")[2])
    return (int(found.group(1)), int(found.group(2))) if found else None


def covering_chain(spans: Iterable[S]) -> list[S]:
    """The spans that cover commits 1..k without gaps, preferring the widest at each step."""
    by_first: dict[int, S] = {}
    for span in spans:
        best = by_first.get(span.first)
        if best is None or span.last > best.last:
            by_first[span.first] = span

    chain: list[S] = []
    following = 1
    while following in by_first:
        span = by_first[following]
        chain.append(span)
        following = span.last + 1
    return chain


def delete_folder(backend: Backend, folder: str, manifest: str, files: Iterable[str]) -> None:
    """Remove a published folder, its manifest first so that readers stop choosing it."""
    backend.delete(f"{folder}/{manifest}")
    backend.delete_many(f"{folder}/{file}" for file in files)
    backend.prune(folder)  # the emptied folder, where folders exist
