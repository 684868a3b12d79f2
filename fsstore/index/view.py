"""What a reader of the index combines, and the lookups it makes on that.

A *layout* is the runs (each from some commit on) and journal commits that together hold
commits 1..head, chosen among every published run and journal file by
:func:`chain_segments`; a :class:`View` answers lookups and whole-table reads over one
layout. Views take no lock: ``Index.read`` retries on a fresh one when a compaction
removes a file a view still needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from fsstore.backend import Backend
from fsstore.errors import IndexCorruptError
from fsstore.index.events import KINDS, Event, EventKind, Projection, events_to_table
from fsstore.index.journal import Commit
from fsstore.index.runs import Run, column_sizes, project, read_columns, read_projection

__all__ = ["Layout", "RunPart", "Segment", "View", "chain_segments", "from_start",
           "journal_events", "within", "without_kind"]


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
        self._journal = journal or journal_events

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
        parts = [from_start(read_projection(self.backend, part.run, spec, projection, column,
                                             low, high), part)
                 for part in self.layout.runs if part.run.rows.get(kind)]
        matches = [without_kind(event) for commit in self.layout.commits
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


def chain_segments(segments: list[Segment]
                   ) -> tuple[list[tuple[Segment, int]], list[tuple[int, int]]]:
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


def within(segment: Segment, spans: list[tuple[int, int]]) -> bool:
    """Whether every commit of ``segment`` lies in one of the (sorted, disjoint) ``spans``."""
    at = bisect.bisect_right(spans, (segment.first, float("inf"))) - 1
    return at >= 0 and spans[at][0] <= segment.first and segment.last <= spans[at][1]


def journal_events(spec: EventKind, commits: list[Commit]) -> pa.Table:
    """A kind's events in ``commits``, as a table in commit order."""
    events = [without_kind(event) for commit in commits for event in commit.events
              if event.get("kind") == spec.name]
    return events_to_table(spec, events)


def without_kind(event: Event) -> Event:
    """An event without its ``kind`` (a kind's table has no such column)."""
    return {key: value for key, value in event.items() if key != "kind"}


def from_start(table: pa.Table, part: RunPart) -> pa.Table:
    """The rows of a run's table that the part uses (from commit ``part.start`` on)."""
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


def _as_type(values: pa.ChunkedArray | pa.Array, wanted: pa.DataType) -> pa.ChunkedArray:
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], values.type)
    return values if values.type == wanted else values.cast(wanted)


_SEQ_POS: Final = [("seq", "ascending"), ("pos", "ascending")]


def _in_order(table: pa.Table) -> pa.Table:
    return table.sort_by(_SEQ_POS)
