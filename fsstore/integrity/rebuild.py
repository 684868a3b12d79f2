"""Rebuilding the index from every readable commit and run, as one new run.

Used by ``verify --repair`` when the index is damaged. Every run file is read row group by
row group (each page carries a CRC, so a damaged group fails alone), every intact commit is
read, duplicates (runs that overlap) are dropped by ``(seq, pos)``, and the result is
published as a single run covering commits 1..head. The run files and commits it replaces
are then removed, the damaged ones into quarantine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fsstore.backend import Backend
from fsstore.commit_ranges import folder_range
from fsstore.errors import IndexCorruptError
from fsstore.index.events import KINDS, EventKind, events_to_table
from fsstore.index.journal import JOURNAL_PREFIX, commit_key, decode_commit, parse_commit_key
from fsstore.index.runs import RUN_MANIFEST, RUNS_PREFIX, Run, write_run
from fsstore.quarantine import quarantine

__all__ = ["Rebuilt", "rebuild_index"]

log = logging.getLogger(__name__)


@dataclass
class Rebuilt:
    """What a rebuild kept and what it could not."""

    run: Run | None
    events: int
    lost: list[str] = field(default_factory=list)
    """Plain descriptions of what could not be read back (events are lost there)."""
    quarantine: str | None = None


def rebuild_index(backend: Backend, damaged: Iterable[str]) -> Rebuilt:
    """Fold every readable event into one new run; ``damaged`` keys go to quarantine.

    The caller holds the store's write and compaction locks.
    """
    damaged = set(damaged)
    tables: dict[str, list[pa.Table]] = {}
    lost: list[str] = []
    head = 0
    run_files: list[str] = []
    recorded: dict[str, dict[str, int]] = {}
    damaged_folders: set[str] = set()
    for key in sorted(backend.keys(RUNS_PREFIX)):
        folder, _, file = key.rpartition("/")
        covered = folder_range(folder)
        if covered is None:
            continue
        run_files.append(key)
        # A run folder, even unfinished, exists only once its commits did.
        head = max(head, covered[1])
        if file == RUN_MANIFEST:
            recorded[folder] = _recorded_rows(backend, key)
        kind = _kind_of_file(file)
        if kind is None:
            continue
        table, unreadable = _salvage(backend, key, kind)
        if table is not None:
            tables.setdefault(kind.name, []).append(table)
        if unreadable:
            log.warning("cannot read all of %s: %s", key, "; ".join(unreadable))
            damaged_folders.add(folder)
    commits: list[int] = []
    for key in sorted(backend.keys(JOURNAL_PREFIX)):
        seq = parse_commit_key(key)
        if seq is None:
            continue
        commits.append(seq)
        head = max(head, seq)
        commit = decode_commit(seq, backend.read(key))
        if commit.torn:
            lost.append(f"the events of commit {seq} (the commit is damaged)")
            continue
        grouped: dict[str, list[dict[str, object]]] = {}
        for event in commit.events:
            kind_name = str(event.get("kind"))
            if kind_name not in KINDS:
                raise IndexCorruptError(
                    f"index commit {seq} holds events of kind {kind_name!r}, unknown to this "
                    "fsstore; upgrade fsstore before repairing this store")
            grouped.setdefault(kind_name, []).append(
                {name: value for name, value in event.items() if name != "kind"})
        for kind_name, events in grouped.items():
            tables.setdefault(kind_name, []).append(events_to_table(KINDS[kind_name], events))
    merged = {name: _unique(pa.concat_tables([_conform(part, KINDS[name]) for part in parts]),
                            KINDS[name]) for name, parts in tables.items()}
    events = sum(table.num_rows for table in merged.values())
    lost += _lost_from_runs(merged, damaged_folders, recorded)
    if head == 0:
        return Rebuilt(None, 0, lost)
    run = write_run(backend, 1, head, merged)
    log.warning("rebuilt the index: %d events of commits 1..%d in %s", events, head,
                run.folder)
    moved = quarantine(backend, [(key, "damaged index file, replaced by a rebuilt run")
                                 for key in sorted(damaged)], lost_events=bool(lost))
    for key in run_files:
        if key not in damaged and not key.startswith(run.folder + "/"):
            backend.delete(key)
    for seq in commits:
        if commit_key(seq) not in damaged:
            backend.delete(commit_key(seq))
    backend.prune(RUNS_PREFIX)
    return Rebuilt(run, events, lost, moved)


def _recorded_rows(backend: Backend, key: str) -> dict[str, int]:
    try:
        manifest = json.loads(backend.read(key))
        return {str(kind): int(rows) for kind, rows in manifest["rows"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _lost_from_runs(merged: dict[str, pa.Table], damaged: set[str],
                    recorded: dict[str, dict[str, int]]) -> list[str]:
    """What damaged runs held that no other file gave back."""
    lost = []
    for folder in sorted(damaged):
        first, last = folder_range(folder) or (0, 0)
        rows = recorded.get(folder)
        if not rows:
            lost.append(f"an unknown number of events of commits {first}..{last} (the run "
                        f"{folder} cannot be read and its {RUN_MANIFEST} neither)")
            continue
        for kind, count in rows.items():
            table = merged.get(kind)
            found = 0 if table is None else int(pc.sum(pc.and_(
                pc.greater_equal(table["seq"], first),
                pc.less_equal(table["seq"], last))).as_py() or 0)
            if found < count:
                lost.append(f"{count - found} {kind} event(s) of commits {first}..{last}")
    return lost


def _kind_of_file(file: str) -> EventKind | None:
    """The kind whose projection keeps every column in ``file`` (None for other files)."""
    for kind in KINDS.values():
        for projection in kind.projections:
            if projection.file == file and projection.columns is None:
                return kind
    return None


def _salvage(backend: Backend, key: str, kind: EventKind) -> tuple[pa.Table | None, list[str]]:
    """The readable row groups of a run file, and what could not be read."""
    source = backend.local_path(key) or pa.BufferReader(backend.read(key))
    try:
        parquet = pq.ParquetFile(source, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as error:
        return None, [f"every event in {key} (its footer cannot be read: {error})"]
    groups = []
    lost = []
    for group in range(parquet.metadata.num_row_groups):
        try:
            table = parquet.read_row_group(group)
            groups.append(_conform(table, kind))
        except (pa.ArrowException, OSError, ValueError) as error:
            rows = parquet.metadata.row_group(group).num_rows
            lost.append(f"{rows} events of row group {group} of {key} ({error})")
    if not groups:
        return None, lost
    return pa.concat_tables(groups), lost


def _conform(table: pa.Table, kind: EventKind) -> pa.Table:
    """``table`` with exactly the kind's columns and types (missing ones null)."""
    columns = [table[wanted.name].cast(wanted.type) if wanted.name in table.column_names
               else pa.nulls(table.num_rows, wanted.type) for wanted in kind.schema]
    return pa.Table.from_arrays(columns, schema=kind.schema)


def _unique(table: pa.Table, kind: EventKind) -> pa.Table:
    """One row per (seq, pos), in commit order."""
    table = table.sort_by([("seq", "ascending"), ("pos", "ascending")])
    if table.num_rows < 2:
        return table
    seq = table["seq"].to_numpy()
    pos = table["pos"].to_numpy()
    repeated = (seq[1:] == seq[:-1]) & (pos[1:] == pos[:-1])
    keep = np.concatenate([[True], ~repeated])
    return table.filter(pa.array(keep))
