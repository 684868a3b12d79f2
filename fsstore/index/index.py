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
"""

from __future__ import annotations

import bisect
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from fsstore.backend import Backend
from fsstore.commit_ranges import MERGE_FACTOR, delete_folder, folder_range
from fsstore.errors import (
    FsstoreError,
    IndexConflictError,
    IndexCorruptError,
    IndexMissingError,
    LockTimeoutError,
)
from fsstore.index.events import (
    KINDS,
    Event,
    EventKind,
    Projection,
    events_to_table,
    format_time,
    now,
)
from fsstore.index.journal import (
    JOURNAL_PREFIX,
    Commit,
    commit_key,
    decode_commit,
    encode_commit,
    parse_commit_key,
)
from fsstore.index.runs import (
    RUN_MANIFEST,
    RUNS_PREFIX,
    Run,
    column_sizes,
    list_runs,
    project,
    read_columns,
    read_projection,
    write_run,
)

__all__ = ["COMPACT_AFTER", "COMPACT_LOCK_KEY", "LOCK_KEY", "MERGE_FACTOR", "Index", "Layout",
           "View"]

log = logging.getLogger(__name__)

T = TypeVar("T")

COMPACT_AFTER: Final = 64
"""Journal commits that trigger a compaction into a run."""
LOCK_KEY: Final = "index/lock"
COMPACT_LOCK_KEY: Final = "index/compact.lock"
"""Taken without waiting by the writer that compacts; others skip compaction meanwhile."""
_MAX_COMMIT_ATTEMPTS: Final = 1000
_MAX_READ_ATTEMPTS: Final = 20
_QUIET: Final = 2.0


@dataclass(frozen=True)
class Segment:
    """A run or a journal commit, by the commit numbers it covers."""

    first: int
    last: int
    run: Run | None = None
    commit_seq: int | None = None


@dataclass(frozen=True)
class RunPart:
    """A run read from commit ``start`` on (later than its first when runs overlap)."""

    run: Run
    start: int


@dataclass
class Layout:
    """What a reader combines: parts of runs and journal commits covering 1..head."""

    runs: list[RunPart]
    commits: list[Commit]
    gaps: list[tuple[int, int]] = field(default_factory=list)
    superseded_runs: list[Run] = field(default_factory=list)
    """Runs whose every commit a chosen run also covers (inputs of merges): garbage."""
    superseded_commits: list[int] = field(default_factory=list)
    """Journal commits a chosen run also covers (left by an interrupted compaction)."""
    named: int = 0
    """The last commit number a run folder's name covers (finished or not)."""

    @property
    def covered(self) -> int:
        """The last commit number the chosen runs and commits hold."""
        last_commit = self.commits[-1].seq if self.commits else 0
        last_run = max((part.run.last for part in self.runs), default=0)
        return max(last_commit, last_run)

    @property
    def head(self) -> int:
        """The last commit number in use: a new commit gets ``head + 1``."""
        return max(self.covered, self.named)


class View:
    """The index as of one layout: lookups and whole tables of events."""

    def __init__(self, backend: Backend, layout: Layout,
                 journal: Callable[[EventKind, list[Commit]], pa.Table] | None = None) -> None:
        self.backend = backend
        self.layout = layout
        self._journal_tables: dict[str, pa.Table] = {}
        self._journal = journal or _journal_events

    @property
    def head(self) -> int:
        return self.layout.head

    def table(self, kind: str) -> pa.Table:
        """Every event of a kind, in commit order."""
        spec = KINDS[kind]
        parts = [part for part in self.layout.runs if part.run.rows.get(kind)]
        journal = self._journal_table(spec)
        if not parts:
            return _in_order(journal)
        # One column at a time, so that loading a million events needs little more memory
        # than the result. Runs in the chain cover consecutive commit ranges and the
        # journal follows them, so commit order is each part in (seq, pos) order, in turn.
        orders = []
        for part in parts:
            keys = read_columns(self.backend, part.run, spec.main, ["seq", "pos"])
            if part.start != part.run.first:
                keys = keys.append_column("row", pa.array(range(keys.num_rows), pa.int64()))
                keys = keys.filter(pc.greater_equal(keys["seq"], part.start))
                inner = pc.sort_indices(keys, sort_keys=_SEQ_POS)
                orders.append(pc.take(keys["row"], inner))
            else:
                orders.append(pc.sort_indices(keys, sort_keys=_SEQ_POS))
        journal = _in_order(journal)
        sizes: dict[str, int] = {}
        for part in parts:
            for name, size in column_sizes(self.backend, part.run, spec.main).items():
                sizes[name] = sizes.get(name, 0) + size
        columns: dict[str, pa.ChunkedArray] = {}
        # The widest columns first: the peak is then the result plus one column of a run.
        for wanted in sorted(spec.schema, key=lambda wanted: -sizes.get(wanted.name, 0)):
            chunks = []
            for part, order in zip(parts, orders, strict=True):
                read = read_columns(self.backend, part.run, spec.main, [wanted.name])
                values = (read[wanted.name] if read.num_columns
                          else pa.nulls(part.run.rows[kind], wanted.type))
                chunks.extend(_as_type(pc.take(values, order), wanted.type).chunks)
                del read, values
            chunks.extend(journal[wanted.name].chunks)
            columns[wanted.name] = pa.chunked_array(chunks, wanted.type)
        return pa.Table.from_arrays([columns[name] for name in spec.schema.names],
                                    schema=spec.schema)

    def column(self, kind: str, column: str, *, where: str | None = None,
               unreadable: list[str] | None = None) -> pa.ChunkedArray:
        """Every value of one column of a kind's events, in no particular order.

        With ``where`` (a boolean column), only events where it is true. With
        ``unreadable`` (a list), runs whose files cannot be read are skipped and their
        folders appended to it, instead of raising.
        """
        spec = KINDS[kind]
        field = spec.schema.field(column)
        wanted = ["seq", column] + ([where] if where else [])
        chunks = []
        for part in self.layout.runs:
            if not part.run.rows.get(kind):
                continue
            try:
                read = read_columns(self.backend, part.run, spec.main, wanted)
            except FileNotFoundError:
                raise  # moved by a compaction: the caller retries on a new view
            except IndexCorruptError:
                if unreadable is None:
                    raise
                unreadable.append(part.run.folder)
                continue
            if column not in read.column_names:
                continue
            if part.start != part.run.first:
                read = read.filter(pc.greater_equal(read["seq"], part.start))
            if where:
                read = read.filter(pc.fill_null(read[where], False))
            chunks.extend(_as_type(read[column], field.type).chunks)
        journal = self._journal_table(spec)
        if where:
            journal = journal.filter(pc.fill_null(journal[where], False))
        chunks.extend(journal[column].chunks)
        return pa.chunked_array(chunks, field.type)

    def find(self, kind: str, column: str, value: str) -> pa.Table:
        """Events of a kind whose ``column`` equals ``value``, in commit order."""
        return self._lookup(kind, column, value, None)

    def find_prefix(self, kind: str, column: str, prefix: str) -> pa.Table:
        """Events of a kind whose ``column`` starts with ``prefix``, in commit order."""
        return self._lookup(kind, column, prefix, prefix + "\U0010ffff")

    def _lookup(self, kind: str, column: str, low: str, high: str | None) -> pa.Table:
        spec = KINDS[kind]
        projection = next(p for p in spec.projections if p.sort_by[0] == column)
        parts = [_from_start(read_projection(self.backend, part.run, spec, projection, column,
                                             low, high), part)
                 for part in self.layout.runs if part.run.rows.get(kind)]
        matches = [_without_kind(event) for commit in self.layout.commits
                   for event in commit.events
                   if event.get("kind") == kind and _matches(event.get(column), low, high)
                   and (projection.where_not_null is None
                        or event.get(projection.where_not_null) is not None)]
        found = [table for table in parts if table.num_rows]
        if matches:
            found.append(project(events_to_table(spec, matches), projection))
        if not found:
            return _empty(spec, projection)
        table = found[0] if len(found) == 1 else pa.concat_tables(found)
        # Equal keys are stored in commit order, and parts follow the chain: only a range
        # of keys needs sorting back into commit order.
        return table if high is None or table.num_rows < 2 else _in_order(table)

    def _journal_table(self, spec: EventKind) -> pa.Table:
        if spec.name not in self._journal_tables:
            self._journal_tables[spec.name] = self._journal(spec, self.layout.commits)
        return self._journal_tables[spec.name]


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
        chosen, gaps = _chain(segments)
        commits = [self._commit(segment.commit_seq) for segment, _ in chosen
                   if segment.commit_seq is not None]
        parts = [RunPart(segment.run, start) for segment, start in chosen
                 if segment.run is not None]
        used = {id(segment) for segment, _ in chosen}
        spans = [(segment.first, segment.last) for segment, _ in chosen
                 if segment.run is not None]
        unused = [segment for segment in segments
                  if id(segment) not in used and _within(segment, spans)]
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
                table = pa.concat_tables([table, _journal_events(spec, commits[len(known):])])
        else:
            table = _journal_events(spec, commits)
        self._journal_cache[spec.name] = (seqs, table)
        return table

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
                self._commits[seq] = Commit(seq, tuple(stamped))
                self._last_commit = max(self._last_commit, seq)
                if len(view.layout.commits) + 1 >= COMPACT_AFTER:
                    # After the lock: other writers go on committing while this one folds
                    # the journal (a large merge can take seconds).
                    self._compact_quietly()
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
        """Fold the journal into a run and merge runs of similar size.

        Folded commits and merged runs are deleted only by a later compaction (or ``gc``),
        once a run that holds them has been published for a whole compaction cycle: so
        every commit is in some visible run or journal file at every instant, even when
        compactions run at once, and a writer with a view older than a fold cannot reuse
        a commit number (see ``shadowed``). A damaged commit is folded as empty and its
        file moved to quarantine.
        """
        layout = self.layout()
        for run in layout.superseded_runs:
            delete_run(self.backend, run)
        for seq in layout.superseded_commits:
            self.backend.delete(commit_key(seq))
        new_run = None
        covered = max((part.run.last for part in layout.runs), default=0)
        trailing = [commit for commit in layout.commits if commit.seq > covered]
        if trailing:
            first, last = covered + 1, trailing[-1].seq
            new_run = write_run(self.backend, first, last, _tables_of(trailing))
            log.debug("compacted commits %d..%d into %s", first, last, new_run.folder)
            torn = [commit.seq for commit in trailing if commit.torn]
            if torn:
                from fsstore.quarantine import quarantine

                log.warning("index commits %s are damaged; their events are lost; moving "
                            "them to quarantine", ", ".join(map(str, torn)))
                quarantine(self.backend, [(commit_key(seq), "damaged index commit (torn "
                                           "write or checksum mismatch)") for seq in torn],
                           lost_events=True)
        # Parts, not runs: runs left overlapping by compactions that ran at once are merged
        # from where the chain uses them, so overlaps do not pile up.
        chain = list(layout.runs)
        if new_run is not None:
            chain.append(RunPart(new_run, new_run.first))
        while (len(chain) >= 2 and chain[-2].run.last + 1 == chain[-1].start
               and chain[-2].run.size <= MERGE_FACTOR * max(chain[-1].run.size, 1)):
            merged = self._merge(chain[-2], chain[-1])
            chain[-2:] = [RunPart(merged, merged.first)]
            new_run = merged
        return new_run

    def _compact_quietly(self) -> None:
        # The commit has been made; a failed compaction only leaves the journal longer.
        try:
            with self.backend.lock(COMPACT_LOCK_KEY, 0):
                self.compact()
        except LockTimeoutError:
            log.debug("another writer is compacting the index; leaving it the work")
        except FileNotFoundError as error:
            log.debug("index compaction raced another one and stopped: %s", error)
        except (FsstoreError, OSError) as error:
            log.warning("index compaction failed (the commit itself succeeded): %s", error)

    def _merge(self, older: RunPart, newer: RunPart) -> Run:
        tables: dict[str, pa.Table] = {}
        for kind_name in sorted(set(older.run.rows) | set(newer.run.rows)):
            spec = KINDS[kind_name]
            parts = [_from_start(read_projection(self.backend, part.run, spec, spec.main), part)
                     for part in (older, newer) if part.run.rows.get(kind_name)]
            if parts:
                tables[kind_name] = pa.concat_tables(parts)
        merged = write_run(self.backend, older.start, newer.run.last, tables)
        log.debug("merged runs %s and %s into %s; they go at the next compaction",
                  older.run.folder, newer.run.folder, merged.folder)
        return merged


def delete_run(backend: Backend, run: Run) -> None:
    """Remove a run, its RUN.json first so that readers stop choosing it at once."""
    delete_folder(backend, run.folder, RUN_MANIFEST, run.files)


def _chain(segments: list[Segment]) -> tuple[list[tuple[Segment, int]], list[tuple[int, int]]]:
    """Choose segments covering 1..max, each used from where the previous one ends.

    At each commit number, the segment that contains it and reaches furthest wins (a run
    over a journal commit on a tie). Overlapping runs, left by compactions that ran at
    once, are read from the first commit not yet covered. Uncovered ranges are gaps.
    """
    chosen: list[tuple[Segment, int]] = []
    gaps: list[tuple[int, int]] = []
    ordered = sorted(segments, key=lambda segment: segment.first)
    following = 1
    best: Segment | None = None
    index = 0
    while True:
        # The best segment starting at or before ``following``, over all seen so far.
        while index < len(ordered) and ordered[index].first <= following:
            candidate = ordered[index]
            if best is None or (candidate.last, candidate.run is not None) > (
                    best.last, best.run is not None):
                best = candidate
            index += 1
        if best is not None and best.last >= following:
            chosen.append((best, following))
            following = best.last + 1
            continue
        if index >= len(ordered):
            break
        gaps.append((following, ordered[index].first - 1))
        following = ordered[index].first
    return chosen, gaps


def _tables_of(commits: Sequence[Commit]) -> dict[str, pa.Table]:
    grouped: dict[str, list[Event]] = {}
    for commit in commits:
        for event in commit.events:
            kind = event.get("kind")
            if kind not in KINDS:
                raise IndexCorruptError(
                    f"index commit {commit.seq} holds an event of unknown kind {kind!r}; "
                    "it was written by a newer fsstore, so upgrade fsstore to read it"
                )
            grouped.setdefault(kind, []).append(_without_kind(event))
    return {kind: events_to_table(KINDS[kind], events) for kind, events in grouped.items()}


def _journal_events(spec: EventKind, commits: list[Commit]) -> pa.Table:
    events = [_without_kind(event) for commit in commits for event in commit.events
              if event.get("kind") == spec.name]
    return events_to_table(spec, events)


def _without_kind(event: Event) -> Event:
    return {key: value for key, value in event.items() if key != "kind"}


def _from_start(table: pa.Table, part: RunPart) -> pa.Table:
    if part.start == part.run.first:
        return table
    return table.filter(pc.greater_equal(table["seq"], part.start))


_EMPTY: dict[tuple[str, str], pa.Table] = {}


def _empty(spec: EventKind, projection: Projection) -> pa.Table:
    """A projection's table without rows (kept: making one costs a tenth of a millisecond)."""
    key = (spec.name, projection.file)
    if key not in _EMPTY:
        _EMPTY[key] = project(events_to_table(spec, []), projection)
    return _EMPTY[key]


def _matches(value: object, low: str, high: str | None) -> bool:
    if high is None:
        return value == low
    return isinstance(value, str) and low <= value < high


def _within(segment: Segment, spans: list[tuple[int, int]]) -> bool:
    """Whether every commit of ``segment`` lies in one of the (sorted, disjoint) ``spans``."""
    at = bisect.bisect_right(spans, (segment.first, float("inf"))) - 1
    return at >= 0 and spans[at][0] <= segment.first and segment.last <= spans[at][1]


def _as_type(values: pa.ChunkedArray | pa.Array, wanted: pa.DataType) -> pa.ChunkedArray:
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], values.type)
    return values if values.type == wanted else values.cast(wanted)


_SEQ_POS: Final = [("seq", "ascending"), ("pos", "ascending")]


def _in_order(table: pa.Table) -> pa.Table:
    return table.sort_by(_SEQ_POS)
