"""The index: an append-only history of events, readable without a lock.

Layout (all under ``index/`` of the store):

* ``journal/<seq>.json``: one file per commit, created exclusively (see ``journal``);
* ``runs/<first>-<last>-<token>/``: sorted Parquet snapshots of commit ranges (see ``runs``).

A writer takes the lock, reads the head (the last commit number), and creates the commit
``head + 1``. Creation is exclusive, so even if the lock does nothing (NFS without lock
support) two writers cannot both own a number: the loser re-reads and retries. A number
freed by compaction is never taken again: folded commits stay until a later compaction,
and a writer whose new commit lands under a run folder's range retries too. Every
``COMPACT_AFTER`` commits, the writer folds the journal into a run and merges runs of
similar size, so a commit costs the same however long the history is and a reader parses
at most ``COMPACT_AFTER`` small files plus a few sorted Parquet files.

This module reads and writes commits; what a reader combines and how it looks things up
is in ``view``, folding and merging in ``compaction``.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import pyarrow as pa

from fsstore.backend import Backend
from fsstore.commit_ranges import MERGE_FACTOR, folder_range
from fsstore.errors import (
    IndexConflictError,
    IndexCorruptError,
    IndexMissingError,
)
from fsstore.index.compaction import COMPACT_LOCK_KEY, compact, compact_quietly
from fsstore.index.events import KINDS, Event, EventKind, format_time, now
from fsstore.index.journal import (
    JOURNAL_PREFIX,
    Commit,
    commit_key,
    decode_commit,
    encode_commit,
    parse_commit_key,
)
from fsstore.index.runs import RUNS_PREFIX, Run, list_runs
from fsstore.index.view import (
    Layout,
    RunPart,
    Segment,
    View,
    chain_segments,
    journal_events,
    within,
)

# COMPACT_LOCK_KEY and MERGE_FACTOR live with compaction and commit_ranges; they stay
# importable from here, where the index's other constants are.
__all__ = ["COMPACT_AFTER", "COMPACT_LOCK_KEY", "LOCK_KEY", "MERGE_FACTOR", "Index", "Layout",
           "View"]

log = logging.getLogger(__name__)

T = TypeVar("T")

COMPACT_AFTER: Final = 64
"""Journal commits that trigger a compaction into a run (read at each commit)."""
LOCK_KEY: Final = "index/lock"
_MAX_COMMIT_ATTEMPTS: Final = 1000
_MAX_READ_ATTEMPTS: Final = 20
_QUIET: Final = 2.0


class Index:
    """The history of events of one store.

    Parameters
    ----------
    backend
        Where the store's bytes live.
    origin
        The store's id, recorded in every event first committed here.
    user
        Recorded as the author of events committed here.
    lock_timeout
        Seconds to wait for the write lock.
    """

    def __init__(self, backend: Backend, origin: str, user: str, lock_timeout: float) -> None:
        self.backend = backend
        self.origin = origin
        self.user = user
        self.lock_timeout = lock_timeout
        self._commits: dict[int, Commit] = {}
        self._journal_cache: dict[str, tuple[tuple[int, ...], pa.Table]] = {}
        self._layout_cache: tuple[tuple[int, int], Layout] | None = None
        self._last_commit = 0

    # -- reading --------------------------------------------------------------------------

    def view(self) -> View:
        """A view of the whole history; takes no lock.

        A view reads lazily, so a compaction may remove a file it still needs; use
        :meth:`read` to retry on a fresh view when that happens.
        """
        return View(self.backend, self.layout(), self._journal_events)

    def read(self, query: Callable[[View], T]) -> T:
        """Run ``query`` on a fresh view, again on a newer one if a compaction got between."""
        missing = ""
        for attempt in range(_MAX_READ_ATTEMPTS):
            try:
                layout = self._quiet_layout() if attempt == 0 else self.layout()
                return query(View(self.backend, layout, self._journal_events))
            except FileNotFoundError as error:
                log.debug("index files moved while reading (attempt %d); retrying", attempt + 1)
                missing = str(error.filename or error)
                self._layout_cache = None
                time.sleep(0.001 * (attempt + 1))
        # A compaction moves files once; still missing after every retry means lost.
        raise IndexCorruptError(
            f"the index under {self.backend.url}/index lacks a file its runs list "
            f"({missing}): it was deleted or never synced. Run `fsstore verify`, then "
            "`fsstore verify --repair` to rebuild the index from the rest", missing,
        )

    def _quiet_layout(self) -> Layout:
        """The last layout again if neither ``index/journal`` nor ``index/runs`` changed.

        Every commit, folded commit deleted and run folder removed changes the modification
        time of one of the two folders, and a new run's commits stay in the journal until a
        later compaction deletes them, so an unchanged pair of times means an unchanged
        history. A listing is kept only if both times were over ``_QUIET`` seconds old
        when it was taken, so that file systems with coarse times (changes within the same
        second) cannot hide a change. Writers never use this.
        """
        stamp = self._folder_times()
        cached = self._layout_cache
        if (stamp is not None and cached is not None and cached[0] == stamp
                and cached[1].head >= self._last_commit):
            return cached[1]
        layout = self.layout()
        if stamp is not None and time.time() - max(stamp) / 1e9 > _QUIET:
            self._layout_cache = (stamp, layout)
        return layout

    def _folder_times(self) -> tuple[int, int] | None:
        times = []
        for prefix in (JOURNAL_PREFIX, RUNS_PREFIX):
            path = self.backend.local_path(prefix)
            if path is None:
                return None
            try:
                times.append(os.stat(path).st_mtime_ns)
            except OSError:
                return None
        return times[0], times[1]

    def layout(self) -> Layout:
        """Find the runs and commits that cover the history, retrying past compactions."""
        for attempt in range(_MAX_READ_ATTEMPTS):
            try:
                layout = self._read_layout()
            except FileNotFoundError:
                layout = None  # a compaction removed files we had just listed
            whole = layout is not None and not layout.gaps and layout.covered >= layout.named
            if layout is not None and (whole or attempt >= 4):
                for first, last in layout.gaps:
                    log.warning("index commits %d..%d are missing; run `fsstore verify`",
                                first, last)
                if layout.covered < layout.named:
                    log.warning("index commits %d..%d are named by a run folder but held "
                                "by no run or commit; run `fsstore verify`",
                                layout.covered + 1, layout.named)
                return layout
            time.sleep(0.001 * (attempt + 1))
        raise IndexCorruptError(
            f"the index under {self.backend.url}/index keeps changing while being read; "
            "retry, and run `fsstore verify` if this persists"
        )

    def _read_layout(self) -> Layout:
        # The journal first, then the runs: a compaction publishes its run before deleting
        # the commits it folded, and merged runs stay until a later compaction, so a commit
        # missing from this listing is always in a run the next listing sees.
        seqs = [parse_commit_key(key) for key in self.backend.keys(JOURNAL_PREFIX)]
        if not seqs:
            self._check_journal_folder()
        # A run folder is made before its files and removed after them, and compactions
        # delete commits only once their run is published, so the folder names bound the
        # head even when a merge removes files while we list them.
        named = max((span[1] for span in map(folder_range,
                                             self.backend.folders(RUNS_PREFIX)) if span),
                    default=0)
        runs = list_runs(self.backend)
        segments = [Segment(run.first, run.last, run=run) for run in runs]
        segments += [Segment(seq, seq, commit_seq=seq) for seq in seqs if seq is not None]
        chosen, gaps = chain_segments(segments)
        commits = [self._commit(segment.commit_seq) for segment, _ in chosen
                   if segment.commit_seq is not None]
        parts = [RunPart(segment.run, start) for segment, start in chosen
                 if segment.run is not None]
        used = {id(segment) for segment, _ in chosen}
        spans = [(segment.first, segment.last) for segment, _ in chosen
                 if segment.run is not None]
        unused = [segment for segment in segments
                  if id(segment) not in used and within(segment, spans)]
        return Layout(parts, commits, gaps,
                      [segment.run for segment in unused if segment.run is not None],
                      [segment.commit_seq for segment in unused
                       if segment.commit_seq is not None], named)

    def _check_journal_folder(self) -> None:
        """Raise if a folder store has lost ``index/journal`` (made by ``Store.init``)."""
        path = self.backend.local_path(JOURNAL_PREFIX)
        if path is None or os.path.isdir(path):
            return
        if not os.path.exists(self.backend.local_path("index") or path) and not any(
                True for _ in self.backend.keys("objects")):
            return  # a store with nothing in it yet (made before index/journal was)
        raise IndexMissingError(
            f"the index folder {path} is missing (deleted, or not copied along with the "
            "objects); the stored objects are untouched: run `fsstore verify --repair` to "
            "rebuild the index from them (names and links cannot be recovered), or restore "
            "the index folder from a copy of the store"
        )

    def _journal_events(self, spec: EventKind, commits: list[Commit]) -> pa.Table:
        """A kind's events in ``commits``, extending the table built for the last view."""
        seqs = tuple(commit.seq for commit in commits)
        cached = self._journal_cache.get(spec.name)
        if cached is not None and seqs[:len(cached[0])] == cached[0]:
            known, table = cached
            if len(known) < len(seqs):
                table = pa.concat_tables([table, journal_events(spec, commits[len(known):])])
        else:
            table = journal_events(spec, commits)
        self._journal_cache[spec.name] = (seqs, table)
        return table

    def remember_commit(self, commit: Commit) -> None:
        """Keep a commit this process created, so that reading it again costs no request.

        Only for a commit created exclusively and not shadowed by a run (see
        :meth:`shadowed`): its number then holds these events for every reader.
        """
        self._commits[commit.seq] = commit

    def _commit(self, seq: int) -> Commit:
        cached = self._commits.get(seq)
        if cached is None:
            cached = decode_commit(seq, self.backend.read(commit_key(seq)))
            self._commits[seq] = cached
        return cached

    # -- writing --------------------------------------------------------------------------

    def commit(self, build: Callable[[View], Sequence[Event]]) -> list[Event]:
        """Record the events ``build`` returns for the current view, as one commit.

        ``build`` runs under the lock with the latest view; if another writer commits first
        (possible only when the lock does not exclude), it runs again on the new view.
        Returns the stamped events, or an empty list if ``build`` had nothing to record.
        """
        vanished = 0
        for attempt in range(_MAX_COMMIT_ATTEMPTS):
            with self.backend.lock(LOCK_KEY, self.lock_timeout):
                view = self.view()
                try:
                    events = list(build(view))
                except FileNotFoundError as error:
                    # A compaction removed a file this view was reading: once, not often.
                    vanished += 1
                    if vanished >= _MAX_READ_ATTEMPTS:
                        missing = str(error.filename or error)
                        raise IndexCorruptError(
                            f"the index under {self.backend.url}/index lacks a file its runs "
                            f"list ({missing}); run `fsstore verify --repair`", missing,
                        ) from error
                    continue
                if not events:
                    return []
                seq = view.head + 1
                stamped = [self._stamp(event, seq, pos) for pos, event in enumerate(events)]
                created = self.backend.create(commit_key(seq), encode_commit(seq, stamped))
            if created and self.shadowed(seq):
                # Our view was older than a commit that has been folded into a run and
                # deleted since, so the number was free again; readers take the run's
                # event for it, so ours must go under a new number.
                log.debug("commit %d landed under a run; retrying", seq)
                created = False
            if created:
                log.debug("committed %d (%d events)", seq, len(stamped))
                self.remember_commit(Commit(seq, tuple(stamped)))
                self._last_commit = max(self._last_commit, seq)
                if len(view.layout.commits) + 1 >= COMPACT_AFTER:
                    # After the lock: other writers go on committing while this one folds
                    # the journal (a large merge can take seconds).
                    compact_quietly(self)
                return stamped
            log.debug("commit %d was taken by another writer; retrying", seq)
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
        raise IndexConflictError(
            f"gave up after {_MAX_COMMIT_ATTEMPTS} attempts to commit to the index of "
            f"{self.backend.url}: other writers kept committing first; retry later"
        )

    def shadowed(self, seq: int) -> bool:
        """Whether a run folder (finished or not) covers commit ``seq``.

        A writer that created commit ``seq`` from a view older than a compaction must
        check this: if true, readers take the run's event for that number, not its own.
        """
        for folder in self.backend.folders(RUNS_PREFIX):
            span = folder_range(folder)
            if span is not None and span[0] <= seq <= span[1]:
                return True
        return False

    def _stamp(self, event: Event, seq: int, pos: int) -> Event:
        if event.get("kind") not in KINDS:
            raise ValueError(f"unknown event kind {event.get('kind')!r}")
        stamped = dict(event)
        stamped["seq"] = seq
        stamped["pos"] = pos
        stamped.setdefault("time", format_time(now()))
        stamped.setdefault("user", self.user)
        stamped.setdefault("origin", self.origin)
        stamped.setdefault("oseq", seq)
        return stamped

    # -- compaction -----------------------------------------------------------------------

    def compact(self) -> Run | None:
        """Fold the journal into a run and merge runs of similar size (see ``compaction``)."""
        return compact(self)
