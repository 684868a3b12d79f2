"""``verify --repair``: put back what can be put back, quarantine the rest, rebuild the index.

In order, holding the store's write and compaction locks:

1. An intact object under a wrong name or folder is moved to where it belongs (or to
   quarantine when a copy is already there).
2. Corrupt, truncated and foreign files are moved to ``quarantine/`` (never deleted).
3. Temporary files older than the grace period are deleted.
4. If the index is damaged (a run file that does not match its RUN.json, a damaged commit,
   missing commit numbers), it is rebuilt from every readable commit and run
   (``fsstore.integrity.rebuild``); damaged index files go to quarantine.
5. If events may have been lost in 4, each intact object that no event refers to any
   more gets a recovered event, rebuilt from the object itself (a set's manifest holds its
   itype, dtype, size, creator and creation time; names are not recoverable).

What cannot be repaired is reported: an object the index refers to that is missing
everywhere must come from a copy of the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fsstore.index.events import Event
from fsstore.index.index import COMPACT_LOCK_KEY, LOCK_KEY, View
from fsstore.integrity.findings import Finding, Report
from fsstore.integrity.kinds import OBJECT_KINDS, ObjectDamage, referenced_digests
from fsstore.integrity.rebuild import rebuild_index
from fsstore.integrity.verify import DEFAULT_GRACE, verify
from fsstore.quarantine import mark_recovered, quarantine, unrecovered_losses
from fsstore.store import Store

__all__ = ["INDEX_DAMAGE", "Repair", "repair"]

log = logging.getLogger(__name__)

INDEX_DAMAGE = frozenset({"damaged-run", "damaged-commit", "gap"})
_QUARANTINED = frozenset({"corrupt", "truncated", "foreign"})


@dataclass
class Repair:
    """What a repair did."""

    restored: list[str] = field(default_factory=list)
    """Misplaced objects moved to where they belong."""
    quarantined: list[Finding] = field(default_factory=list)
    quarantine: list[str] = field(default_factory=list)
    """The quarantine folders written."""
    removed_temporary: list[str] = field(default_factory=list)
    rebuilt_events: int | None = None
    """Events in the rebuilt index (None: the index needed no rebuild)."""
    lost: list[str] = field(default_factory=list)
    recovered: int = 0
    """Events recovered from objects after index damage."""
    unrepaired: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"restored": self.restored,
                "quarantined": [finding.as_dict() for finding in self.quarantined],
                "quarantine": self.quarantine, "removed_temporary": self.removed_temporary,
                "rebuilt_events": self.rebuilt_events, "lost": self.lost,
                "recovered": self.recovered,
                "unrepaired": [finding.as_dict() for finding in self.unrepaired]}


def repair(store: Store, report: Report | None = None, *, grace: float = DEFAULT_GRACE,
           lock_timeout: float | None = None) -> Repair:
    """Repair what ``report`` (default: a fresh :func:`verify`) found; see the module text."""
    backend = store.backend
    timeout = store.index.lock_timeout if lock_timeout is None else lock_timeout
    done = Repair()
    with backend.lock(LOCK_KEY, timeout), backend.lock(COMPACT_LOCK_KEY, timeout):
        if report is None:
            report = verify(store, grace=grace)
        to_quarantine: list[Finding] = []
        for finding in report.errors:
            if finding.problem == "misplaced":
                _put_back(store, finding, done, to_quarantine)
            elif finding.problem in _QUARANTINED and not finding.key.startswith("index/"):
                to_quarantine.append(finding)
            elif finding.problem == "stale-temporary":
                backend.delete(finding.key)
                done.removed_temporary.append(finding.key)
        folder = quarantine(backend, [(finding.key, f"{finding.problem}: {finding.detail}")
                                      for finding in to_quarantine])
        if folder:
            done.quarantine.append(folder)
            done.quarantined.extend(to_quarantine)
        lost_index = [finding for finding in report.errors
                      if finding.problem == "missing-index"]
        if lost_index:
            backend.ensure_folder(lost_index[0].key)
            done.lost = [lost_index[0].detail]
            done.recovered = _recover_events(store)
        index_damage = [finding for finding in report.errors
                        if finding.problem in INDEX_DAMAGE
                        or (finding.problem == "foreign" and finding.key.startswith("index/"))]
        if index_damage:
            # Foreign files go too, whatever their name (editor backups, NFS .nfs files).
            damaged = {finding.key for finding in index_damage
                       if finding.problem == "foreign"
                       or (finding.problem != "gap"
                           and finding.key.endswith((".parquet", ".json")))}
            for finding in index_damage:
                if finding.problem == "damaged-run" and finding.key.endswith(".parquet"):
                    damaged.add(finding.key.rpartition("/")[0] + "/RUN.json")
            rebuilt = rebuild_index(backend, damaged)
            done.rebuilt_events = rebuilt.events
            done.lost = rebuilt.lost + [finding.detail for finding in index_damage
                                        if finding.problem == "gap"]
            if rebuilt.quarantine:
                done.quarantine.append(rebuilt.quarantine)
                done.quarantined.extend(finding for finding in index_damage
                                        if finding.key in damaged)
            if done.lost:
                done.recovered = _recover_events(store)
        losses = unrecovered_losses(backend)
        if losses:
            # Left by a compaction that met damaged commits, or by a rebuild just above (or
            # an earlier repair that was interrupted): record the objects again, then say so.
            if not done.recovered:
                done.recovered = _recover_events(store)
            done.lost += [f"the events of {', '.join(loss.keys)} (quarantined at {loss.time})"
                          for loss in losses if loss.folder not in done.quarantine]
            for loss in losses:
                mark_recovered(backend, loss, done.recovered)
        done.unrepaired = [finding for finding in report.errors
                           if finding.problem in ("missing", "unknown-kind", "unreadable")
                           and finding.key not in done.restored]
        done.unrepaired += _referenced_but_quarantined(store, done.quarantined)
    return done


def _referenced_but_quarantined(store: Store, moved: list[Finding]) -> list[Finding]:
    """Quarantined objects that events still refer to: they are missing now."""
    objects = [finding for finding in moved if finding.kind in OBJECT_KINDS]
    if not objects:
        return []
    referenced = store.index.read(lambda view: referenced_digests(view, unreadable=[]))
    missing = []
    for finding in objects:
        kind = OBJECT_KINDS[str(finding.kind)]
        digest, placed = kind.parse(finding.key)
        if digest is not None and placed and digest in referenced[kind.name]:
            missing.append(Finding(
                "missing", finding.key,
                f"was {finding.problem} and is in quarantine now, and the index refers to it: "
                f"save the {kind.name} again or restore it from a copy of the store",
                kind=kind.name))
    return missing


def _put_back(store: Store, finding: Finding, done: Repair,
              to_quarantine: list[Finding]) -> None:
    kind = OBJECT_KINDS.get(finding.kind or "")
    if kind is None or finding.digest is None:
        to_quarantine.append(finding)
        return
    target = kind.key_of(finding.digest)
    if store.backend.move(finding.key, target):
        log.warning("moved %s back to %s", finding.key, target)
        done.restored.append(target)
    else:
        to_quarantine.append(finding)  # the right place already holds a copy


def _recover_events(store: Store) -> int:
    """Record an event for every intact object no event records; returns how many.

    A set that only ``link`` events name lost its ``set`` event: it gets one again.
    """
    backend = store.backend

    def build(view: View) -> list[Event]:
        referenced = referenced_digests(view, recording_only=True)
        events: list[Event] = []
        for kind in OBJECT_KINDS.values():
            if kind.recover is None:
                continue
            for key in sorted(backend.keys(kind.prefix)):
                digest, placed = kind.parse(key)
                if digest is None or not placed or digest in referenced[kind.name]:
                    continue
                try:
                    if kind.digest_of(backend, key) != digest:
                        continue
                except (ObjectDamage, OSError):
                    continue  # a damaged object gets no event
                event = kind.recover(backend, key, digest)
                if event is not None:
                    events.append(event)
        return events

    recovered = store.index.commit(build)
    if recovered:
        log.warning("recovered %d index events from objects no event referred to",
                    len(recovered))
    return len(recovered)
