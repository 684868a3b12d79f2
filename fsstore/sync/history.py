"""Merging index histories: the union of two stores' events, and name conflicts.

An event keeps the store and commit it was first recorded in (``origin``, ``oseq``) and its
position in that commit (``pos``); ``(origin, oseq, pos)`` identifies it in every store.
Merging copies each origin commit that the destination lacks as one new commit there,
events in their original order, so every event keeps its position and its identity, and
merging again copies nothing. The union does not depend on the order of pushes and pulls.

Events are merged whatever their kind: sync reads every kind in
:data:`fsstore.index.KINDS`. Two optional tables teach it more about a kind:

* :data:`REFERENCES`: which objects an event points at. An origin commit whose events
  point at objects the destination does not hold (their copy was refused) is held back,
  so the index never points at nothing; the next sync retries it.
* :data:`POINTERS`: which columns make a movable pointer (a set's ``name``) and what it
  points at (``hash``). When both stores moved the same pointer independently (neither
  side had seen the other's last move), the merge reports a conflict and settles it with a
  *merge event*, the same in every store: see :func:`resolution`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from blake3 import blake3

from fsstore.errors import FsstoreError, IndexConflictError
from fsstore.index import COMPACT_AFTER, KINDS, Event, Index, View
from fsstore.index.events import format_time
from fsstore.index.index import LOCK_KEY
from fsstore.index.journal import commit_key, encode_commit
from fsstore.manifest import manifest_key

__all__ = [
    "MERGE_ORIGIN_PREFIX",
    "POINTERS",
    "REFERENCES",
    "Conflict",
    "EventId",
    "MergeResult",
    "Pointer",
    "event_id",
    "merge_history",
    "read_events",
    "resolution",
]

log = logging.getLogger(__name__)

EventId = tuple[str, int, int]
"""``(origin, oseq, pos)``: an event's identity in every store."""

MERGE_ORIGIN_PREFIX: Final = "merge:"
"""Origin of the events that settle a pointer conflict."""
_LOCAL_COLUMNS: Final = ("seq",)
_APPEND_BATCH: Final = 64
_MAX_APPEND_ATTEMPTS: Final = 100


@dataclass(frozen=True)
class Pointer:
    """Columns of an event kind that name a movable pointer, and what it points at."""

    key: tuple[str, ...]
    target: tuple[str, ...]


POINTERS: Final[dict[str, Pointer]] = {"set": Pointer(key=("name",), target=("hash",))}
"""Movable pointers by event kind; an event whose key columns are all null moves none."""

REFERENCES: Final[dict[str, Callable[[Event], list[str]]]] = {
    "set": lambda event: [manifest_key(event["hash"])],
}
"""The object keys an event of a kind points at."""


@dataclass(frozen=True)
class Conflict:
    """A pointer both stores moved independently."""

    kind: str
    key: tuple[Any, ...]
    here: Event
    """The destination's last event for the pointer before the merge."""
    there: Event
    """The source's last event for it."""
    chosen: Event
    """The one the pointer follows after the merge (the later by recorded time)."""


@dataclass
class MergeResult:
    """What a merge did to the destination's index."""

    commits: int = 0
    """Origin commits copied (each became one commit)."""
    events: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    held_back: dict[tuple[str, int], str] = field(default_factory=dict)
    """Origin commits not copied, by ``(origin, oseq)``, with the reason."""
    collisions: list[EventId] = field(default_factory=list)
    """Identities both stores hold with different content (stores sharing one id)."""


def event_id(event: Event) -> EventId:
    return (str(event["origin"]), int(event["oseq"]), int(event["pos"]))


def read_events(index: Index) -> list[Event]:
    """Every event of every kind, in commit order, as JSON-ready dicts with their kind."""

    def query(view: View) -> list[Event]:
        events: list[Event] = []
        for kind in KINDS:
            for row in view.table(kind).to_pylist():
                row = {column: _plain(value) for column, value in row.items()}
                row["kind"] = kind
                events.append(row)
        return events

    events = index.read(query)
    events.sort(key=lambda event: (event["seq"], event["pos"]))
    return events


def resolution(here: Event, there: Event) -> Event:
    """The event that settles a conflict between two pointer moves, as a pure function.

    Both stores compute the same event from the same pair, whichever is "here", so it has
    the same identity everywhere and syncing it again copies nothing. It repeats the move
    recorded later by wall-clock time (ties: the greater identity); the clock only breaks
    a tie that the sequence numbers cannot, as neither move saw the other. Its origin is
    ``merge:`` and 32 hex digits of the BLAKE3 of the two identities, its ``oseq`` is 1.
    """
    first, second = sorted((here, there), key=event_id)
    digest = blake3(json.dumps([event_id(first), event_id(second)]).encode()).hexdigest()
    chosen = max((here, there), key=lambda event: (event["time"], event_id(event)))
    settled = {key: value for key, value in chosen.items() if key not in ("seq", "pos")}
    settled.update(origin=MERGE_ORIGIN_PREFIX + digest[:32], oseq=1, pos=0)
    return settled


def merge_history(source: Index, destination: Index,
                  available: Callable[[str], bool]) -> MergeResult:
    """Copy into ``destination`` every origin commit of ``source`` that it lacks.

    ``available(key)`` says whether the destination holds an object; origin commits whose
    events reference a missing object are held back.
    """
    result = MergeResult()
    theirs = read_events(source)
    ours = read_events(destination)
    known = {event_id(event): _fingerprint(event) for event in ours}
    incoming: list[list[Event]] = []
    for origin_commit, events in _origin_commits(theirs).items():
        reason = _reason_to_hold(events, known, available, result)
        if reason is None:
            incoming.append(events)
        elif reason:
            result.held_back[origin_commit] = reason
            log.warning("not merging commit %s of %s: %s", origin_commit[1],
                        origin_commit[0], reason)
    settling = _settle_conflicts(ours, theirs, incoming, known, result)
    batches = incoming + [[event] for event in settling]
    _append(destination, batches, result)
    return result


def _reason_to_hold(events: list[Event], known: dict[EventId, str],
                    available: Callable[[str], bool], result: MergeResult) -> str | None:
    """Why an origin commit cannot be merged; "" if already merged, None to merge it."""
    ids = [event_id(event) for event in events]
    held = [identity for identity in ids if identity in known]
    clashing = [event_id(event) for event in events
                if event_id(event) in known and known[event_id(event)] != _fingerprint(event)]
    if clashing:
        result.collisions.extend(clashing)
        return (f"events {clashing[0]} differ between the stores under one identity: the "
                "two stores share a store id (one is a copy of the other)")
    if len(held) == len(ids):
        return ""
    if held or [event["pos"] for event in events] != list(range(len(events))):
        return "the commit is incomplete on the source (a damaged journal file?)"
    for event in events:
        for key in REFERENCES.get(event["kind"], _no_references)(event):
            if not available(key):
                return f"it refers to {key}, which the destination does not hold"
    return None


def _settle_conflicts(ours: list[Event], theirs: list[Event], incoming: list[list[Event]],
                      known: dict[EventId, str], result: MergeResult) -> list[Event]:
    """Find pointers moved on both sides, record them, and return the settling events."""
    their_ids = {event_id(event) for event in theirs}
    merged_ids = {event_id(event) for events in incoming for event in events}
    here = _last_moves(ours)
    there = _last_moves(theirs)
    settling: list[Event] = []
    for pointer, their_last in there.items():
        our_last = here.get(pointer)
        if our_last is None or event_id(their_last) not in merged_ids:
            continue  # nothing moved here, or their move is already here, or held back
        if event_id(our_last) in their_ids:
            continue  # they saw our last move and moved on: a fast-forward
        kind = pointer[0]
        spec = POINTERS[kind]
        if _values(our_last, spec.target) == _values(their_last, spec.target):
            continue  # both moved it to the same place
        settled = resolution(our_last, their_last)
        chosen = our_last if _values(settled, spec.target) == _values(
            our_last, spec.target) else their_last
        result.conflicts.append(Conflict(kind, pointer[1], our_last, their_last, chosen))
        if event_id(settled) not in known and event_id(settled) not in their_ids:
            settling.append(settled)
    return settling


def _last_moves(events: Sequence[Event]) -> dict[tuple[str, tuple[Any, ...]], Event]:
    last: dict[tuple[str, tuple[Any, ...]], Event] = {}
    for event in events:
        spec = POINTERS.get(event["kind"])
        if spec is None:
            continue
        key = _values(event, spec.key)
        if all(value is None for value in key):
            continue
        last[(event["kind"], key)] = event
    return last


def _append(index: Index, batches: list[list[Event]], result: MergeResult) -> None:
    """Write each batch as one commit, in order, skipping any another writer added first.

    This follows :meth:`Index.commit`'s rules (the lock narrows contention; each commit is
    created exclusively at head + 1; a writer that loses re-reads and retries) but does
    not re-read the index between its own commits, so that merging a long history into an
    object store costs one request per commit rather than several.
    """
    backend = index.backend
    pending = list(batches)
    lost = 0
    while pending:
        with backend.lock(LOCK_KEY, index.lock_timeout):
            view = index.view()
            if lost:
                # Another writer committed first; it may have been merging the same events.
                present = {event_id(event) for event in _view_events(view)}
                pending = [batch for batch in pending if event_id(batch[0]) not in present]
            journal = len(view.layout.commits)
            room = max(1, min(_APPEND_BATCH, COMPACT_AFTER - journal))
            written = 0
            while pending and written < room:
                seq = view.head + 1 + written
                stamped = [_stamp(event, seq, pos) for pos, event in enumerate(pending[0])]
                if not backend.create(commit_key(seq), encode_commit(seq, stamped)):
                    break
                result.commits += 1
                result.events += len(stamped)
                pending.pop(0)
                written += 1
            lost = lost + 1 if pending and written < room else 0
            if written and journal + written >= COMPACT_AFTER:
                _compact_quietly(index)
        if lost >= _MAX_APPEND_ATTEMPTS:
            raise IndexConflictError(
                f"gave up merging into the index of {backend.url}: other writers kept "
                "committing first; run the push or pull again"
            )
        if lost:
            log.debug("commit %d was taken by another writer; re-reading the index",
                      view.head + 1 + written)
            time.sleep(random.uniform(0, 0.002 * min(lost, 20)))


def _compact_quietly(index: Index) -> None:
    # The commits are made; a failed compaction only leaves the journal longer.
    try:
        index.compact()
    except (FsstoreError, OSError) as error:
        log.warning("index compaction failed (the merged commits are intact): %s", error)


def _view_events(view: View) -> list[Event]:
    return [row for kind in KINDS for row in view.table(kind).to_pylist()]


def _stamp(event: Event, seq: int, pos: int) -> Event:
    stamped = {key: value for key, value in event.items() if key not in _LOCAL_COLUMNS}
    stamped["seq"] = seq
    stamped["pos"] = pos
    return stamped


def _origin_commits(events: Sequence[Event]) -> dict[tuple[str, int], list[Event]]:
    """Events grouped by the commit they were first recorded in, first seen first."""
    grouped: dict[tuple[str, int], list[Event]] = {}
    for event in events:
        grouped.setdefault((str(event["origin"]), int(event["oseq"])), []).append(event)
    for group in grouped.values():
        group.sort(key=lambda event: event["pos"])
    return grouped


def _fingerprint(event: Event) -> str:
    content = {key: value for key, value in event.items() if key not in _LOCAL_COLUMNS}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)


def _values(event: Event, columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(event.get(column) for column in columns)


def _no_references(event: Event) -> list[str]:
    return []


def _plain(value: Any) -> Any:
    """A value as a commit stores it in JSON (times as ISO 8601 in UTC with a ``Z``)."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
