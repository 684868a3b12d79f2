"""Compaction: folding journal commits into runs and merging runs of similar size.

The writer whose commit makes the journal ``COMPACT_AFTER`` commits long compacts, after
releasing the write lock and under ``COMPACT_LOCK_KEY`` taken without waiting, so that
other writers go on committing meanwhile and only one compacts at a time. What a
compaction makes redundant (folded commits, merged runs) is deleted by the next one, never
by itself: a reader that listed those files a moment earlier can still read them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from fsstore.backend import Backend
from fsstore.commit_ranges import MERGE_FACTOR, delete_folder
from fsstore.errors import FsstoreError, IndexCorruptError, LockTimeoutError
from fsstore.index.events import KINDS, Event, events_to_table
from fsstore.index.journal import Commit, commit_key
from fsstore.index.runs import RUN_MANIFEST, Run, read_projection, write_run
from fsstore.index.view import RunPart, from_start, without_kind

if TYPE_CHECKING:
    from fsstore.index.index import Index

__all__ = ["COMPACT_LOCK_KEY", "compact", "compact_quietly", "delete_run"]

log = logging.getLogger(__name__)

COMPACT_LOCK_KEY: Final = "index/compact.lock"
"""Taken without waiting by the writer that compacts; others skip compaction meanwhile."""


def compact(index: Index) -> Run | None:
    """Fold the journal into a run and merge runs of similar size.

    Folded commits and merged runs are deleted only by a later compaction (or ``gc``),
    once a run that holds them has been published for a whole compaction cycle: so
    every commit is in some visible run or journal file at every instant, even when
    compactions run at once, and a writer with a view older than a fold cannot reuse
    a commit number (see ``Index.shadowed``). A damaged commit is folded as empty and its
    file moved to quarantine.
    """
    layout = index.layout()
    for run in layout.superseded_runs:
        delete_run(index.backend, run)
    index.backend.delete_many(commit_key(seq) for seq in layout.superseded_commits)
    new_run = None
    covered = max((part.run.last for part in layout.runs), default=0)
    trailing = [commit for commit in layout.commits if commit.seq > covered]
    if trailing:
        first, last = covered + 1, trailing[-1].seq
        new_run = write_run(index.backend, first, last, _tables_of(trailing))
        log.debug("compacted commits %d..%d into %s", first, last, new_run.folder)
        torn = [commit.seq for commit in trailing if commit.torn]
        if torn:
            from fsstore.quarantine import quarantine

            log.warning("index commits %s are damaged; their events are lost; moving "
                        "them to quarantine", ", ".join(map(str, torn)))
            quarantine(index.backend, [(commit_key(seq), "damaged index commit (torn "
                                       "write or checksum mismatch)") for seq in torn],
                       lost_events=True)
    # Parts, not runs: runs left overlapping by compactions that ran at once are merged
    # from where the chain uses them, so overlaps do not pile up.
    chain = list(layout.runs)
    if new_run is not None:
        chain.append(RunPart(new_run, new_run.first))
    while (len(chain) >= 2 and chain[-2].run.last + 1 == chain[-1].start
           and chain[-2].run.size <= MERGE_FACTOR * max(chain[-1].run.size, 1)):
        merged = _merge(index.backend, chain[-2], chain[-1])
        chain[-2:] = [RunPart(merged, merged.first)]
        new_run = merged
    return new_run


def compact_quietly(index: Index) -> None:
    """Compact after a commit, unless another writer is at it; failures are only logged.

    The commit has been made: a failed compaction only leaves the journal longer.
    """
    try:
        with index.backend.lock(COMPACT_LOCK_KEY, 0):
            index.compact()
    except LockTimeoutError:
        log.debug("another writer is compacting the index; leaving it the work")
    except FileNotFoundError as error:
        log.debug("index compaction raced another one and stopped: %s", error)
    except (FsstoreError, OSError) as error:
        log.warning("index compaction failed (the commit itself succeeded): %s", error)


def _merge(backend: Backend, older: RunPart, newer: RunPart) -> Run:
    tables: dict[str, pa.Table] = {}
    for kind_name in sorted(set(older.run.rows) | set(newer.run.rows)):
        spec = KINDS[kind_name]
        parts = [from_start(read_projection(backend, part.run, spec, spec.main), part)
                 for part in (older, newer) if part.run.rows.get(kind_name)]
        if parts:
            tables[kind_name] = pa.concat_tables(parts)
    merged = write_run(backend, older.start, newer.run.last, tables)
    log.debug("merged runs %s and %s into %s; they go at the next compaction",
              older.run.folder, newer.run.folder, merged.folder)
    return merged


def delete_run(backend: Backend, run: Run) -> None:
    """Remove a run, its RUN.json first so that readers stop choosing it at once."""
    delete_folder(backend, run.folder, RUN_MANIFEST, run.files)


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
            grouped.setdefault(kind, []).append(without_kind(event))
    return {kind: events_to_table(KINDS[kind], events) for kind, events in grouped.items()}
