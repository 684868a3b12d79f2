"""Quarantine: where damaged or foreign files go instead of being deleted.

``quarantine/<UTC time>-<token>/`` holds the files moved out by one repair (or one
compaction that met a damaged commit), each under its original key, and ``REPORT.json``::

    {"format": "fsstore.quarantine.v1", "time": "2026-12-03T18:32:49.076640Z",
     "files": [{"key": "objects/sets/ab/ab12....parquet", "problem": "hashes to cd34..."}]}

When the files moved held index events that are lost with them (damaged commits folded
away by a compaction, damaged index files replaced by a rebuilt run), the report also says
``"lost_events": true``. Objects only those events recorded are then unrecorded, and gc
would take them: ``verify`` reports such a folder as ``lost-events`` and ``gc`` refuses to
run until ``verify --repair`` has recorded those objects again and written
``RECOVERED.json`` next to the report.

Nothing else reads from the quarantine; a person inspects it and deletes it when done.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fsstore.backend import Backend
from fsstore.index.events import format_time, now

__all__ = ["QUARANTINE_FORMAT", "QUARANTINE_PREFIX", "RECOVERED", "REPORT", "Loss",
           "mark_recovered", "quarantine", "unrecovered_losses"]

log = logging.getLogger(__name__)

QUARANTINE_PREFIX: Final = "quarantine"
QUARANTINE_FORMAT: Final = "fsstore.quarantine.v1"
REPORT: Final = "REPORT.json"
RECOVERED: Final = "RECOVERED.json"


@dataclass(frozen=True)
class Loss:
    """A quarantine folder whose files took index events with them, not yet recovered."""

    folder: str
    time: str
    keys: tuple[str, ...]


def quarantine(backend: Backend, files: Sequence[tuple[str, str]], *,
               lost_events: bool = False) -> str | None:
    """Move each ``(key, problem)`` into a new quarantine folder; returns its prefix.

    Keys that vanished meanwhile are skipped; returns None when nothing was moved.
    ``lost_events`` records that index events were lost with the files.
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
    report: dict[str, object] = {"format": QUARANTINE_FORMAT, "time": format_time(moment),
                                 "files": moved}
    if lost_events:
        report["lost_events"] = True
    backend.create(f"{folder}/{REPORT}",
                   json.dumps(report, indent=1, ensure_ascii=False).encode() + b"\n")
    return folder


def unrecovered_losses(backend: Backend) -> list[Loss]:
    """Quarantine folders that say index events were lost and that no repair has handled."""
    keys = set(backend.keys(QUARANTINE_PREFIX))
    losses = []
    for key in sorted(keys):
        folder, _, name = key.rpartition("/")
        if name != REPORT or f"{folder}/{RECOVERED}" in keys:
            continue
        try:
            report = json.loads(backend.read(key))
        except (FileNotFoundError, ValueError):
            continue  # a report someone edited or removed says nothing reliable
        if isinstance(report, dict) and report.get("lost_events") is True:
            files = report.get("files") or []
            losses.append(Loss(folder, str(report.get("time", "")),
                               tuple(str(entry.get("key", "")) for entry in files
                                     if isinstance(entry, dict))))
    return losses


def mark_recovered(backend: Backend, loss: Loss, recovered: int) -> None:
    """Record that ``verify --repair`` recorded again the objects ``loss`` left unrecorded."""
    document = {"format": QUARANTINE_FORMAT, "time": format_time(now()),
                "recovered_events": recovered}
    backend.create(f"{loss.folder}/{RECOVERED}", json.dumps(document).encode() + b"\n")
