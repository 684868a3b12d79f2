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
* :data:`POINTERS`: which columns make a movable pointer and what it points at: a set's
  ``name`` (to its ``hash``), a dataset's ``name`` (to its digest) and a dataset's slot
  (``dataset``, ``slot``: to a set ``hash``, ``linked`` or not). When both stores moved the
  same pointer independently (neither side had seen the other's last move), the merge
  reports a conflict and settles it with a *merge commit*, the same in every store: see
  :func:`settlement`.
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

import pyarrow as pa
import pyarrow.compute as pc
from blake3 import blake3

from fsstore.errors import FsstoreError, IndexConflictError
from fsstore.index import COMPACT_AFTER, KINDS, Event, Index, View
from fsstore.index.events import format_time
from fsstore.index.index import LOCK_KEY
from fsstore.index.journal import commit_key, decode_commit, encode_commit
from fsstore.links import dataset_file_key
from fsstore.manifest import manifest_key
from fsstore.registry.table import registry_key

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
    "settlement",
]

log = logging.getLogger(__name__)

EventId = tuple[str, int, int]
"""``(origin, oseq, pos)``: an event's identity in every store."""

MERGE_ORIGIN_PREFIX: Final = "merge:"
"""Origin of the events that settle a pointer conflict."""
_LOCAL_COLUMNS: Final = ("seq",)
_KEY_SEPARATOR: Final = "\x1f"
_APPEND_BATCH: Final = 64
_MAX_APPEND_ATTEMPTS: Final = 100


@dataclass(frozen=True)
class Pointer:
    """Columns of an event kind that name a movable pointer, and what it points at."""

    key: tuple[str, ...]
    target: tuple[str, ...]
    switch: str | None = None
    """A boolean target column saying whether the pointer holds its target at all (a link's
    ``linked``): every event with it false means "empty", whatever else it names. A merge
    commit that moves such a pointer away from a held target first releases it (a copy of
    the displaced event with this column false), so that the events of any one target
    still tell on their own whether the pointer holds it."""
    clear: tuple[str, ...] = ()
    """Columns a merge commit leaves null in its copy: facts of the copied event that are
    not about the pointer (a dataset's ``path``), so that the copy repeats nothing else."""


POINTERS: Final[dict[str, Pointer]] = {
    "set": Pointer(key=("name",), target=("hash",)),
    "dataset": Pointer(key=("name",), target=("dataset",), clear=("path",)),
    "link": Pointer(key=("dataset", "slot"), target=("hash", "linked"), switch="linked"),
}
"""Movable pointers by event kind; an event whose key columns are all null moves none."""
_PLAIN: Final = Pointer(key=(), target=())

REFERENCES: Final[dict[str, Callable[[Event], list[str]]]] = {
    "set": lambda event: [manifest_key(event["hash"])],
    "link": lambda event: [manifest_key(event["hash"])],
    "dataset": lambda event: [dataset_file_key(event["dataset"])] if event["copied"] else [],
    "registry": lambda event: [registry_key(event["hash"])],
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
    """The move that settles a conflict between two pointer moves, as a pure function.

    It repeats the move recorded later by wall-clock time (ties: the greater identity); the
    clock only breaks a tie that the sequence numbers cannot, as neither move saw the other.
    Its origin is ``merge:`` and 32 hex digits of the BLAKE3 of the two identities, its
    ``oseq`` is 1, its ``pos`` 0. :func:`settlement` gives the whole merge commit.
    """
    kept, _ = _kept_and_displaced(here, there)
    origin = _merge_origin([event_id(event) for event in sorted((here, there), key=event_id)])
    return _copy(kept, origin, 0)


def settlement(here: Event, there: Event) -> list[Event]:
    """The merge commit that settles a conflict between two moves of one pointer.

    Both stores compute the same commit from the same pair, whichever is "here", so it has
    the same identity everywhere and syncing it again copies nothing. It ends with
    :func:`resolution`'s move; for a pointer with a :attr:`Pointer.switch`, the displaced
    target, if held, is released first.
    """
    _, displaced = _kept_and_displaced(here, there)
    return _commit_of_copies(displaced, resolution(here, there))


def _kept_and_displaced(here: Event, there: Event) -> tuple[Event, Event]:
    if (here["time"], event_id(here)) > (there["time"], event_id(there)):
        return here, there
    return there, here


def _restoration(stale: Event, ours: Event) -> list[Event]:
    """The merge commit that puts a pointer back at ``ours`` after ``stale`` merged behind it."""
    origin = _merge_origin(["restore", event_id(stale), event_id(ours)])
    return _commit_of_copies(stale, _copy(ours, origin, 0))


def _commit_of_copies(displaced: Event, chosen: Event) -> list[Event]:
    """``chosen`` (a copy of the move kept), preceded by the release of ``displaced``.

    Only for a pointer with a switch column, when ``displaced`` holds a target other than
    the chosen one: its copy with the switch false goes first, in the same commit.
    """
    spec = POINTERS.get(str(chosen.get("kind")), _PLAIN)
    if spec.switch is None or _target(displaced, spec) in (None, _target(chosen, spec)):
        return [chosen]
    release = _copy(displaced, str(chosen["origin"]), 0)
    release[spec.switch] = False
    return [release, {**chosen, "pos": 1}]


def _copy(event: Event, origin: str, pos: int) -> Event:
    spec = POINTERS.get(str(event.get("kind")), _PLAIN)
    copied = {key: value for key, value in event.items() if key not in ("seq", "pos")}
    copied.update(dict.fromkeys(spec.clear))
    copied.update(origin=origin, oseq=1, pos=pos)
    return copied


def _merge_origin(parts: list[Any]) -> str:
    digest = blake3(json.dumps(parts).encode()).hexdigest()
    return MERGE_ORIGIN_PREFIX + digest[:32]


def _target(event: Event, spec: Pointer) -> tuple[Any, ...] | None:
    """Where an event moves its pointer; None for "empty" (its switch column false)."""
    if spec.switch is not None and not event.get(spec.switch):
        return None
    return _values(event, spec.target)


@dataclass
class _Snapshot:
    """One store's history as Arrow tables, with each event's identity as a string key."""

    tables: dict[str, pa.Table]
    keys: pa.Array
    """Identity keys of every event of every kind."""

    def has(self, identities: Sequence[EventId]) -> list[bool]:
        """Whether each identity is an event of this history."""
        if not identities:
            return []
        wanted = pa.array([_key_text(identity) for identity in identities], pa.string())
        return [bool(flag) for flag in pc.is_in(wanted, value_set=self.keys).to_pylist()]


def merge_history(source: Index, destination: Index,
                  available: Callable[[str], bool]) -> MergeResult:
    """Copy into ``destination`` every origin commit of ``source`` that it lacks.

    ``available(key)`` says whether the destination holds an object; origin commits whose
    events reference a missing object are held back. Both histories are compared as Arrow
    columns; only the events to copy, and those of the names they move, become Python
    objects, so a sync with nothing to do stays cheap for long histories.
    """
    result = MergeResult()
    theirs = _snapshot(source)
    ours = _snapshot(destination)
    missing: list[Event] = []
    for kind, table in theirs.tables.items():
        present = pc.is_in(table["_id"], value_set=ours.keys)
        _find_collisions(kind, table.filter(present), ours.tables.get(kind), result)
        missing += _events(kind, table.filter(pc.invert(present)))
    missing.sort(key=lambda event: (event["seq"], event["pos"]))
    groups = _origin_commits(missing)
    partial = _partial_groups(list(groups), ours)
    for collided in result.collisions:
        result.held_back[collided[:2]] = (
            f"event {collided} differs between the stores under one identity: the two "
            "stores share a store id (one is a copy of the other)")
    incoming: list[list[Event]] = []
    for origin_commit, events in groups.items():
        reason = _reason_to_hold(events, origin_commit in partial, available)
        if reason is None:
            incoming.append(events)
        else:
            result.held_back[origin_commit] = reason
            log.info("not merging commit %s of %s: %s", origin_commit[1], origin_commit[0],
                     reason)
    settling = _settle_conflicts(theirs, ours, incoming, result)
    _append(destination, incoming + settling, result)
    return result


def _snapshot(index: Index) -> _Snapshot:
    return index.read(_snapshot_of_view)


def _keys(table: pa.Table) -> pa.Array:
    if table.num_rows == 0:
        return pa.array([], pa.string())
    joined = pc.binary_join_element_wise(
        table["origin"], pc.cast(table["oseq"], pa.string()),
        pc.cast(table["pos"], pa.string()), _KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _key_text(identity: EventId) -> str:
    return _KEY_SEPARATOR.join(str(part) for part in identity)


def _events(kind: str, table: pa.Table) -> list[Event]:
    events = []
    for row in table.drop_columns(["_id"]).to_pylist():
        event = {column: _plain(value) for column, value in row.items()}
        event["kind"] = kind
        events.append(event)
    return events


def _find_collisions(kind: str, theirs: pa.Table, ours: pa.Table | None,
                     result: MergeResult) -> None:
    """Events both stores hold under one identity must be the same event."""
    if theirs.num_rows == 0:
        return
    columns = [name for name in theirs.column_names if name not in _LOCAL_COLUMNS]
    left = theirs.select(columns).sort_by("_id")
    right = (ours.filter(pc.is_in(ours["_id"], value_set=left["_id"].combine_chunks()))
             .select(columns).sort_by("_id")) if ours is not None else None
    if right is not None and left.equals(right):
        return  # the usual case: one comparison in Arrow
    theirs_rows = {row["_id"]: row for row in left.to_pylist()}
    ours_rows = {row["_id"]: row for row in right.to_pylist()} if right is not None else {}
    for key, row in theirs_rows.items():
        if ours_rows.get(key) != row:
            result.collisions.append((str(row["origin"]), int(row["oseq"]), int(row["pos"])))
    log.debug("%d %s events differ under one identity", len(result.collisions), kind)


def _partial_groups(groups: list[tuple[str, int]], ours: _Snapshot) -> set[tuple[str, int]]:
    """Origin commits of which the destination already holds some events (not all)."""
    if not groups:
        return set()
    wanted = pa.array([f"{origin}{_KEY_SEPARATOR}{oseq}" for origin, oseq in groups])
    partial: set[tuple[str, int]] = set()
    for table in ours.tables.values():
        if table.num_rows == 0:
            continue
        held = pc.binary_join_element_wise(
            table["origin"], pc.cast(table["oseq"], pa.string()), _KEY_SEPARATOR)
        found = pc.is_in(wanted, value_set=pc.unique(held))
        partial |= {group for group, flag in zip(groups, found.to_pylist(), strict=True)
                    if flag}
    return partial


def _reason_to_hold(events: list[Event], partial: bool,
                    available: Callable[[str], bool]) -> str | None:
    """Why an origin commit the destination lacks cannot be merged; None to merge it."""
    if partial or [event["pos"] for event in events] != list(range(len(events))):
        return "the commit is incomplete on the source or the destination (a damaged journal?)"
    for event in events:
        for key in REFERENCES.get(event["kind"], _no_references)(event):
            if not available(key):
                return f"it refers to {key}, which the destination does not hold"
    return None


def _settle_conflicts(theirs: _Snapshot, ours: _Snapshot, incoming: list[list[Event]],
                      result: MergeResult) -> list[list[Event]]:
    """Find pointers moved on both sides, record them, and return the merge commits."""
    merged = [event for events in incoming for event in events]
    merged_ids = {event_id(event) for event in merged}
    there = _last_moves(_moves_of(theirs, merged))
    here = _last_moves(_moves_of(ours, merged))
    pairs = [(pointer, here[pointer], their_last) for pointer, their_last in there.items()
             if pointer in here and event_id(their_last) in merged_ids]
    seen_by_them = theirs.has([event_id(our_last) for _, our_last, _ in pairs])
    settling: list[list[Event]] = []
    for (pointer, our_last, their_last), fast_forward in zip(pairs, seen_by_them,
                                                              strict=True):
        spec = POINTERS[pointer[0]]
        if fast_forward or _target(our_last, spec) == _target(their_last, spec):
            continue  # they saw our last move and moved on, or both moved it to one place
        commit = settlement(our_last, their_last)
        chosen = our_last if _target(commit[-1], spec) == _target(our_last, spec) \
            else their_last
        result.conflicts.append(Conflict(pointer[0], pointer[1], our_last, their_last, chosen))
        settling.append(commit)
    settling += _restore_pointers(there, here, _last_moves(merged), merged_ids)
    firsts = [event_id(commit[0]) for commit in settling]
    known = [a or b for a, b in zip(ours.has(firsts), theirs.has(firsts), strict=True)]
    return [commit for commit, held in zip(settling, known, strict=True) if not held]


def _restore_pointers(there: dict[tuple[str, tuple[Any, ...]], Event],
                      here: dict[tuple[str, tuple[Any, ...]], Event],
                      merged_last: dict[tuple[str, tuple[Any, ...]], Event],
                      merged_ids: set[EventId]) -> list[list[Event]]:
    """Moves that put pointers back where they were, after older moves merged behind them.

    When the source's last move of a pointer is one this store already has, every move
    merged for it is older (the source moved on from it), so the pointer must stay where
    this store had it. The merged moves are appended after, so a copy of this store's last
    move follows them. Its identity comes from the two moves alone (origin ``merge:``), so
    every store that merges the same stale move computes the same commit.
    """
    restoring = []
    for pointer, stale in merged_last.items():
        spec = POINTERS[pointer[0]]
        their_last, our_last = there.get(pointer), here.get(pointer)
        if (their_last is None or our_last is None or event_id(their_last) in merged_ids
                or _target(stale, spec) == _target(our_last, spec)):
            continue
        restoring.append(_restoration(stale, our_last))
    return restoring


def _moves_of(snapshot: _Snapshot, merged: list[Event]) -> list[Event]:
    """A history's events that move the pointers the merged events move, in order."""
    moves: list[Event] = []
    for kind, spec in POINTERS.items():
        touched = {_key_text(_values(event, spec.key)) for event in merged
                   if event["kind"] == kind and _moves_pointer(event, spec)}
        table = snapshot.tables.get(kind)
        if not touched or table is None or table.num_rows == 0:
            continue
        columns = [pc.cast(table[column], pa.string()) for column in spec.key]
        keys = columns[0] if len(columns) == 1 else pc.binary_join_element_wise(
            *columns, _KEY_SEPARATOR)
        moves += _events(kind, table.filter(pc.is_in(keys, value_set=pa.array(sorted(touched)))))
    moves.sort(key=lambda event: (event["seq"], event["pos"]))
    return moves


def _last_moves(events: Sequence[Event]) -> dict[tuple[str, tuple[Any, ...]], Event]:
    last: dict[tuple[str, tuple[Any, ...]], Event] = {}
    for event in events:
        spec = POINTERS.get(event["kind"])
        if spec is None:
            continue
        if _moves_pointer(event, spec):
            last[(event["kind"], _values(event, spec.key))] = event
    return last


def _moves_pointer(event: Event, spec: Pointer) -> bool:
    return any(value is not None for value in _values(event, spec.key))


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
                keys = _snapshot_of_view(view).keys
                firsts = pa.array([_key_text(event_id(batch[0])) for batch in pending])
                present = pc.is_in(firsts, value_set=keys).to_pylist()
                pending = [batch for batch, held in zip(pending, present, strict=True)
                           if not held]
            journal = len(view.layout.commits)
            room = max(1, min(_APPEND_BATCH, COMPACT_AFTER - journal))
            written = 0
            while pending and written < room:
                seq = view.head + 1 + written
                stamped = [_stamp(event, seq, pos) for pos, event in enumerate(pending[0])]
                encoded = encode_commit(seq, stamped)
                if not backend.create(commit_key(seq), encoded):
                    break
                if index.shadowed(seq):
                    # A compaction folded and freed this number after our view was taken:
                    # readers take the run's commit for it, so this batch goes again.
                    break
                # The compaction below then folds it without reading it back.
                index.remember_commit(decode_commit(seq, encoded))
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


def _snapshot_of_view(view: View) -> _Snapshot:
    tables = {kind: view.table(kind) for kind in KINDS}
    tables = {kind: table.append_column("_id", _keys(table)) for kind, table in tables.items()}
    chunks = [chunk for table in tables.values() for chunk in table["_id"].chunks]
    return _Snapshot(tables, pa.concat_arrays(chunks) if chunks else pa.array([], pa.string()))


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
