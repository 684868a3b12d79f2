"""Push, pull and clone: bring one store up to date with another.

A sync from a source to a destination runs in two steps, in this order:

1. objects the destination lacks are copied and verified (:mod:`fsstore.sync.objects`);
2. index commits the destination lacks are merged (:mod:`fsstore.sync.history`), except
   those pointing at objects it still lacks.

So the destination's index never points at an object it does not hold, an interrupted
sync leaves nothing half-done that the next one does not finish, and running the same
sync twice copies nothing the second time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsstore.backend import is_url
from fsstore.errors import StoreExistsError, StoreNotFoundError, StoreURLError, SyncError
from fsstore.store import STORE_FILE, Store
from fsstore.sync.history import POINTERS, Conflict, MergeResult, merge_history
from fsstore.sync.objects import Progress, TransferPlan, TransferResult, plan_transfer, transfer
from fsstore.sync.remotes import add_remote, remote_url

__all__ = ["SyncReport", "clone", "pull", "push", "sync_stores"]

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What a push, pull or clone did."""

    source: str
    destination: str
    plan: TransferPlan
    objects: TransferResult
    history: MergeResult
    initialised: bool = False
    """The destination store was created by this sync."""

    @property
    def problems(self) -> list[str]:
        """One line per thing that could not be synced; empty when all went through."""
        lines = [f"{key}: {reason}" for key, reason in self.objects.refused.items()]
        lines += [f"{key} differs in size between the stores ({theirs} vs {ours} bytes): "
                  "one copy is damaged; run `fsstore verify` on both"
                  for key, theirs, ours in self.plan.differing]
        lines += [f"commit {oseq} of store {origin} not merged: {reason}"
                  for (origin, oseq), reason in self.history.held_back.items()]
        return lines

    def check(self) -> None:
        """Raise :class:`SyncError` listing the problems, if there were any."""
        problems = self.problems
        if problems and self.history.collisions:
            raise SyncError(
                f"{len(problems)} problem(s) syncing {self.source} to {self.destination}: "
                "the two stores share a store id, so one was copied as a folder (cp -r, "
                "rsync) instead of with `fsstore clone`, and what each recorded since cannot "
                "be told apart. Everything else was copied. Keep one side: clone it into a "
                "new folder (`fsstore clone ...`), save there again the sets made in the "
                "other copy, and stop using that copy"
            )
        if problems:
            raise SyncError(
                f"{len(problems)} problem(s) syncing {self.source} to {self.destination}, "
                f"the first: {problems[0]}. Everything else was copied; fix the source "
                "(`fsstore verify` there) and sync again"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "initialised": self.initialised,
            "objects": {"copied": len(self.objects.copied), "bytes": self.objects.size,
                        "already_there": self.plan.present, "raced": len(self.objects.raced),
                        "refused": dict(self.objects.refused)},
            "index": {"commits": self.history.commits, "events": self.history.events,
                      "held_back": [{"origin": origin, "oseq": oseq, "reason": reason}
                                    for (origin, oseq), reason
                                    in self.history.held_back.items()]},
            "conflicts": [_conflict_dict(conflict) for conflict in self.history.conflicts],
            "problems": self.problems,
        }


def sync_stores(source: Store, destination: Store,
                progress: Progress | None = None) -> SyncReport:
    """Copy into ``destination`` every object and index commit of ``source`` it lacks."""
    if source.location == destination.location:
        raise StoreURLError(f"cannot sync {source.location} with itself")
    plan = plan_transfer(source.backend, destination.backend)
    log.info("%d objects (%d bytes) to copy from %s to %s; %d already there",
             len(plan.missing), plan.size, source.location, destination.location, plan.present)
    if progress is not None:
        progress.planned(len(plan.missing), plan.size)
    objects = transfer(source.backend, destination.backend, plan.missing, progress)
    installed = plan.held | set(objects.copied) | set(objects.raced)
    history = merge_history(source.index, destination.index, installed.__contains__)
    log.info("merged %d commits (%d events) into %s", history.commits, history.events,
             destination.location)
    return SyncReport(source.location, destination.location, plan, objects, history)


def push(store: Store, remote: str, progress: Progress | None = None) -> SyncReport:
    """Bring the remote up to date with ``store``, creating the remote store if absent.

    ``remote`` is a remote's name (see :func:`fsstore.sync.add_remote`), a URL or a path.
    """
    location = remote_url(store, remote)
    try:
        destination = Store(location)
        created = False
    except StoreNotFoundError:
        destination = Store.init(location)
        created = True
        log.info("initialised a new store at %s", destination.location)
    report = sync_stores(store, destination, progress)
    report.initialised = created
    return report


def pull(store: Store, remote: str, progress: Progress | None = None) -> SyncReport:
    """Bring ``store`` up to date with the remote."""
    return sync_stores(Store(remote_url(store, remote)), store, progress)


def clone(remote: str, path: str | os.PathLike[str],
          progress: Progress | None = None) -> tuple[Store, SyncReport]:
    """A new store at ``path`` holding everything of ``remote``, which it names ``origin``.

    The clone gets its own store id, so the two can later push and pull to each other.
    """
    location = remote_url(None, remote)
    source = Store(location)
    target = str(path)
    if not is_url(target) and (Path(target) / STORE_FILE).exists():
        raise StoreExistsError(f"{target} is already a store; clone into a new folder")
    store = Store.init(target)
    if store.index.view().head or any(store.backend.list("objects")):
        raise StoreExistsError(f"{store.location} is already a store; clone into a new place")
    report = sync_stores(source, store, progress)
    report.initialised = True
    add_remote(store, "origin", location)
    return store, report


def _conflict_dict(conflict: Conflict) -> dict[str, Any]:
    # Each side: where it moved the pointer (a set's or a slot's hash, a name's dataset),
    # then who moved it, when, and in which store.
    target = POINTERS[conflict.kind].target

    def side(event: dict[str, Any]) -> dict[str, Any]:
        return {key: event.get(key) for key in (*target, "user", "time", "origin")}

    return {"kind": conflict.kind, "key": list(conflict.key), "here": side(conflict.here),
            "there": side(conflict.there), "chosen": side(conflict.chosen)}
