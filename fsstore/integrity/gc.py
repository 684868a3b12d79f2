"""``gc``: remove what nothing reaches, and what interrupted writes left behind.

Under the store's write and compaction locks, ``gc`` removes:

* objects that no event in the whole history refers to (no name, dataset link or earlier
  version reaches them), once older than the grace period: a save writes its object just
  before it commits the event, so a young unreferenced object may be a save in progress;
* temporary files older than the grace period;
* index files a wider run also holds, and run folders an interrupted compaction left
  without ``RUN.json`` (once older than the grace period);
* member pack folders without ``PACK.json`` (a packer died, or a merge's inputs were
  half deleted) and empty pack folders, once older than the grace period, under the member
  index's lock too.

It refuses to run on a damaged index (missing commit numbers, damaged commits or run
files, events of unknown kinds): events lost there could be the only references to some
objects. ``fsstore verify --repair`` first.

Every writer (a save, a registration, a link with copy) checks, under the write lock, that
its object is still there before it commits the event referring to it, and writes it again
if not, so gc cannot delete an object a writer is about to refer to, whatever the grace
period. A temporary file removed while it is written (``--grace 0``) is written again, up
to three times, then the write fails and records nothing. Where the lock does nothing
(NFS without lock support), run gc when no one writes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from fsstore.backend import Entry
from fsstore.backend.local import TEMPORARY_PREFIX
from fsstore.commit_ranges import folder_range
from fsstore.errors import IndexCorruptError
from fsstore.index.events import KINDS
from fsstore.index.index import COMPACT_LOCK_KEY, LOCK_KEY, View
from fsstore.index.journal import commit_key
from fsstore.index.runs import RUN_MANIFEST, RUNS_PREFIX
from fsstore.integrity.kinds import kind_of_key, referenced_digests
from fsstore.integrity.verify import DEFAULT_GRACE, OBJECTS_PREFIX
from fsstore.members import LOCK_KEY as MEMBERS_LOCK_KEY
from fsstore.members import MEMBERS_PREFIX, PACK_MANIFEST, is_pack_folder
from fsstore.quarantine import unrecovered_losses
from fsstore.store import Store

__all__ = ["Collected", "collect_garbage"]

log = logging.getLogger(__name__)


@dataclass
class Collected:
    """What ``gc`` removed (or, in a dry run, would remove)."""

    dry_run: bool
    removed: list[tuple[str, int, str]] = field(default_factory=list)
    """(key, bytes, why) of each file."""
    kept_young: int = 0
    """Unreferenced objects kept because they are younger than the grace period."""

    @property
    def bytes(self) -> int:
        return sum(size for _, size, _ in self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "bytes": self.bytes, "kept_young": self.kept_young,
                "removed": [{"key": key, "bytes": size, "why": why}
                            for key, size, why in self.removed]}


def collect_garbage(store: Store, *, grace: float = DEFAULT_GRACE, dry_run: bool = False,
                    lock_timeout: float | None = None) -> Collected:
    """Remove unreachable objects and leftovers; see the module text."""
    backend = store.backend
    timeout = store.index.lock_timeout if lock_timeout is None else lock_timeout
    done = Collected(dry_run)
    now = time.time()
    with (backend.lock(LOCK_KEY, timeout), backend.lock(COMPACT_LOCK_KEY, timeout),
          backend.lock(MEMBERS_LOCK_KEY, timeout)):
        view = store.index.view()
        referenced = _referenced(store, view)
        garbage: list[tuple[Entry, str]] = []
        for entry in backend.list(OBJECTS_PREFIX, temporary=True):
            old = now - entry.mtime > grace
            if entry.key.rpartition("/")[2].startswith(TEMPORARY_PREFIX):
                if old:
                    garbage.append((entry, "temporary file left by an interrupted write"))
                continue
            kind = kind_of_key(entry.key)
            if kind is None:
                continue  # foreign: verify reports it, repair quarantines it
            digest, placed = kind.parse(entry.key)
            if digest is None or not placed or digest in referenced[kind.name]:
                continue
            if old:
                garbage.append((entry, f"no index entry refers to this {kind.name}"))
            else:
                done.kept_young += 1
        garbage += _index_garbage(store, view, now, grace)
        unfinished, empty = _pack_garbage(store, now, grace)
        garbage += unfinished
        for entry, why in garbage:
            done.removed.append((entry.key, entry.size, why))
        done.removed += [(f"{folder}/", 0, "empty member pack folder") for folder in empty]
        if not dry_run:
            # RUN.json first (as delete_run does), so readers stop choosing a run at once.
            garbage.sort(key=lambda item: item[0].key.rpartition("/")[2] != RUN_MANIFEST)
            for entry, _ in garbage:
                backend.delete(entry.key)
            # Empty folders under objects/ stay (at most 256 per kind): a writer may be
            # between making one and creating its file there, and the write lock does not
            # cover that step. Run folders are made under the compaction lock gc holds.
            backend.prune(RUNS_PREFIX)
            for folder in {entry.key.rpartition("/")[0] for entry, _ in unfinished} | empty:
                backend.prune(folder)
    log.info("gc %s %d files (%d bytes)", "would remove" if dry_run else "removed",
             len(done.removed), done.bytes)
    return done


def _referenced(store: Store, view: View) -> dict[str, set[str]]:
    layout = view.layout
    problems = [f"commits {first}..{last} are missing" for first, last in layout.gaps]
    problems += [f"commit {commit.seq} is damaged" for commit in layout.commits if commit.torn]
    unknown = sorted({str(event.get("kind")) for commit in layout.commits
                      for event in commit.events} - set(KINDS))
    unknown += sorted({kind for part in layout.runs for kind in part.run.rows} - set(KINDS))
    if unknown:
        problems.append(f"it holds events of kinds unknown to this fsstore "
                        f"({', '.join(unknown)}; upgrade fsstore)")
    problems += [f"events lost with the files in {loss.folder} are not recovered yet"
                 for loss in unrecovered_losses(store.backend)]
    if problems:
        raise IndexCorruptError(
            f"gc refuses to run on {store.location}: the index is damaged "
            f"({'; '.join(problems)}), so some objects may look unreferenced although "
            "lost events referred to them; run `fsstore verify --repair` first")
    return referenced_digests(view)


def _index_garbage(store: Store, view: View, now: float,
                   grace: float) -> list[tuple[Entry, str]]:
    layout = view.layout
    superseded = {run.folder for run in layout.superseded_runs}
    superseded_commits = {commit_key(seq) for seq in layout.superseded_commits}
    folders: dict[str, list[Entry]] = {}
    garbage: list[tuple[Entry, str]] = []
    for entry in store.backend.list("index", temporary=True):
        old = now - entry.mtime > grace
        name = entry.key.rpartition("/")[2]
        if name.startswith(TEMPORARY_PREFIX):
            if old:
                garbage.append((entry, "temporary file left by an interrupted write"))
        elif entry.key in superseded_commits:
            garbage.append((entry, "commit also held by a run"))
        elif entry.key.startswith(RUNS_PREFIX + "/"):
            folders.setdefault(entry.key.rpartition("/")[0], []).append(entry)
    for folder, entries in folders.items():
        if folder in superseded:
            garbage += [(entry, "run also held by a wider run") for entry in entries]
        elif (folder_range(folder) is not None
              and all(entry.key.rpartition("/")[2] != RUN_MANIFEST for entry in entries)
              and all(now - entry.mtime > grace for entry in entries)):
            garbage += [(entry, "unfinished run left by an interrupted compaction")
                        for entry in entries]
    return garbage


def _pack_garbage(store: Store, now: float, grace: float
                  ) -> tuple[list[tuple[Entry, str]], set[str]]:
    """Files of member pack folders without ``PACK.json``, and empty pack folders (keys),
    all older than the grace period. The member index is derived: nothing here is needed."""
    backend = store.backend
    folders: dict[str, list[Entry]] = {
        f"{MEMBERS_PREFIX}/{name}": [] for name in backend.folders(MEMBERS_PREFIX)
        if is_pack_folder(name)}
    for entry in backend.list(MEMBERS_PREFIX, temporary=True):
        folder = entry.key.rpartition("/")[0]
        if folder.rpartition("/")[0] == MEMBERS_PREFIX and is_pack_folder(
                folder.rpartition("/")[2]):
            folders.setdefault(folder, []).append(entry)
    unfinished: list[tuple[Entry, str]] = []
    empty: set[str] = set()
    for folder, entries in folders.items():
        if any(entry.key.rpartition("/")[2] == PACK_MANIFEST for entry in entries):
            continue
        if entries and all(now - entry.mtime > grace for entry in entries):
            unfinished += [(entry, "unfinished member pack (no PACK.json)")
                           for entry in entries]
        elif not entries and now - _folder_mtime(store, folder, now) > grace:
            empty.add(folder)
    return unfinished, empty


def _folder_mtime(store: Store, folder: str, now: float) -> float:
    # Only folders of the file system can be empty; one removed meanwhile counts as young.
    path = store.backend.local_path(folder)
    try:
        return os.stat(path).st_mtime if path is not None else now
    except OSError:
        return now
