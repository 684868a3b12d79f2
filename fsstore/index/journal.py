"""Commits: the journal files that record index events, one file per commit.

A commit is ``index/journal/<seq, 16 digits>.json``::

    {"format": "fsstore.commit.v1", "seq": 7, "blake3": "<hex>", "events": [...]}

``blake3`` is the BLAKE3 of the compact, key-sorted JSON of ``events``. A commit file is
created exclusively, so two writers can never both own a sequence number; one that fails
to parse or to match its checksum (a crash on a file system without atomic publication)
is skipped by readers and still occupies its number.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Final

from blake3 import blake3

from fsstore.index.events import Event

__all__ = [
    "COMMIT_FORMAT",
    "JOURNAL_PREFIX",
    "Commit",
    "commit_key",
    "decode_commit",
    "encode_commit",
    "parse_commit_key",
]

log = logging.getLogger(__name__)

COMMIT_FORMAT: Final = "fsstore.commit.v1"
JOURNAL_PREFIX: Final = "index/journal"
_NAME: Final = re.compile(r"^(\d{16})\.json$")


@dataclass(frozen=True)
class Commit:
    """A parsed commit; ``events`` is empty for a torn commit."""

    seq: int
    events: tuple[Event, ...]
    torn: bool = False


def commit_key(seq: int) -> str:
    return f"{JOURNAL_PREFIX}/{seq:016d}.json"


def parse_commit_key(key: str) -> int | None:
    """The sequence number of a journal key, or None for a key that is not a commit."""
    name = key.rpartition("/")[2]
    if len(name) != 21 or not name.endswith(".json") or not name[:16].isdigit():
        return None
    found = _NAME.match(name)  # isdigit() also accepts other scripts' digits
    return int(found.group(1)) if found else None


def encode_commit(seq: int, events: list[Event]) -> bytes:
    document = {
        "format": COMMIT_FORMAT,
        "seq": seq,
        "blake3": _checksum(events),
        "events": events,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode_commit(seq: int, data: bytes) -> Commit:
    """Parse a commit; a damaged one is reported as torn, never raised."""
    try:
        document = json.loads(data)
        events = document["events"]
        valid = (
            document.get("format") == COMMIT_FORMAT
            and document.get("seq") == seq
            and isinstance(events, list)
            and document.get("blake3") == _checksum(events)
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        log.warning("index commit %d is damaged (torn write?); ignoring it", seq)
        return Commit(seq, (), torn=True)
    return Commit(seq, tuple(events))


def _checksum(events: list[Event]) -> str:
    canonical = json.dumps(events, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return blake3(canonical.encode()).hexdigest()
