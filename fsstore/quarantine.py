"""Quarantine: where damaged or foreign files go instead of being deleted.

``quarantine/<UTC time>-<token>/`` holds the files moved out by one repair (or one
compaction that met a damaged commit), each under its original key, and ``REPORT.json``::

    {"format": "fsstore.quarantine.v1", "time": "2026-12-03T18:32:49.076640Z",
     "files": [{"key": "objects/sets/ab/ab12....parquet", "problem": "hashes to cd34..."}]}

Nothing reads from the quarantine; a person inspects it and deletes it when done.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from typing import Final

from fsstore.backend import Backend
from fsstore.index.events import format_time, now

__all__ = ["QUARANTINE_FORMAT", "QUARANTINE_PREFIX", "quarantine"]

log = logging.getLogger(__name__)

QUARANTINE_PREFIX: Final = "quarantine"
QUARANTINE_FORMAT: Final = "fsstore.quarantine.v1"


def quarantine(backend: Backend, files: Sequence[tuple[str, str]]) -> str | None:
    """Move each ``(key, problem)`` into a new quarantine folder; returns its prefix.

    Keys that vanished meanwhile are skipped; returns None when nothing was moved.
    """
    moment = now()
    folder = (f"{QUARANTINE_PREFIX}/{moment.strftime('%Y%m%dT%H%M%SZ')}-"
              f"{secrets.token_hex(3)}")
    moved = []
    for key, problem in files:
        try:
            if backend.move(key, f"{folder}/{key}"):
                moved.append({"key": key, "problem": problem})
                log.warning("moved %s to %s: %s", key, folder, problem)
        except FileNotFoundError:
            continue
    if not moved:
        return None
    report = {"format": QUARANTINE_FORMAT, "time": format_time(moment), "files": moved}
    backend.create(f"{folder}/REPORT.json",
                   json.dumps(report, indent=1, ensure_ascii=False).encode() + b"\n")
    return folder
