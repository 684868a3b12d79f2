"""``verify``: re-hash every object and index file, and check the index against the objects.

It reads, and never changes anything. What it checks:

* every file under ``objects/``: that it belongs to a known kind, has an object's name in
  the right fan-out folder, and that its content hashes to that name;
* every index run: its files against the sizes and BLAKE3 digests in its ``RUN.json``;
* every journal commit: that it parses and matches its checksum;
* that commit numbers 1..head are all held by some commit or run (no gaps);
* that every object an index event refers to exists;
* temporary files (a write in progress, or left by a crash when older than the grace
  period) and files that are not part of the layout.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

from blake3 import blake3

from fsstore.backend import Backend, Entry
from fsstore.backend.local import TEMPORARY_PREFIX
from fsstore.commit_ranges import folder_range
from fsstore.errors import IndexMissingError
from fsstore.index.events import KINDS
from fsstore.index.index import COMPACT_LOCK_KEY, LOCK_KEY, Layout, View
from fsstore.index.journal import JOURNAL_PREFIX, decode_commit, parse_commit_key
from fsstore.index.runs import RUN_FORMAT, RUN_MANIFEST, RUNS_PREFIX
from fsstore.integrity.findings import Report
from fsstore.integrity.kinds import (
    OBJECT_KINDS,
    ObjectDamage,
    kind_of_key,
    referenced_digests,
)
from fsstore.quarantine import QUARANTINE_PREFIX, unrecovered_losses
from fsstore.store import Store
from fsstore.stored_manifests import is_dangling

__all__ = ["DEFAULT_GRACE", "KNOWN_INDEX_FILES", "Progress", "verify"]

log = logging.getLogger(__name__)

DEFAULT_GRACE: Final = 24 * 3600.0
"""Seconds after which a temporary file counts as left over by a crash."""
OBJECTS_PREFIX: Final = "objects"
KNOWN_INDEX_FILES: Final[set[str]] = {
    LOCK_KEY, LOCK_KEY + ".holder", COMPACT_LOCK_KEY, COMPACT_LOCK_KEY + ".holder",
}
"""Files directly under ``index/`` that belong there (other modules may add theirs)."""

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as verify goes."""

_CHUNK: Final = 1 << 20
Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class _ObjectJob:
    key: str
    size: int
    kind: str
    digest: str
    placed: bool


def verify(store: Store, *, grace: float = DEFAULT_GRACE, workers: int | None = None,
           progress: Progress | None = None, quick: bool = False) -> Report:
    """Check the whole store; returns a :class:`Report` of every problem found.

    Parameters
    ----------
    grace
        Temporary files older than this many seconds are reported as left over by a crash;
        younger ones as writes possibly in progress.
    workers
        Threads re-hashing objects (default: the number of CPUs, at most 8).
    progress
        Called with (bytes done, bytes in all) after each file.
    quick
        Check objects by the checksum of their bytes that they carry (a manifest's seal)
        and the digest they record, instead of recomputing the digest from their content;
        objects without such a checksum are re-hashed in full anyway.
    """
    started = time.monotonic()
    backend = store.backend
    report = Report()
    now = time.time()
    object_entries = list(backend.list(OBJECTS_PREFIX, temporary=True))
    index_entries = list(backend.list("index", temporary=True))
    jobs, run_files, commits = [], [], []
    present: dict[str, set[str]] = {name: set() for name in OBJECT_KINDS}
    for entry in object_entries:
        if _temporary(report, entry, now, grace):
            continue
        job = _classify_object(report, entry)
        if job is not None:
            jobs.append(job)
            if job.placed:
                present[job.kind].add(job.digest)
    for entry in index_entries:
        if _temporary(report, entry, now, grace):
            continue
        if entry.key.startswith(JOURNAL_PREFIX + "/"):
            commits.append(entry)
        elif entry.key.startswith(RUNS_PREFIX + "/"):
            run_files.append(entry)
        elif entry.key not in KNOWN_INDEX_FILES:
            report.add("foreign", entry.key, "is not part of the index layout")
    total = sum(job.size for job in jobs) + sum(entry.size for entry in run_files) + sum(
        entry.size for entry in commits)
    done = [0]

    def advance(size: int) -> None:
        done[0] += size
        if progress is not None:
            progress(done[0], total)

    if progress is not None:
        progress(0, total)
    _check_commits(report, backend, commits, advance)
    _check_runs(report, backend, run_files, now, grace, workers, advance)
    valid = _check_objects(report, backend, jobs, workers, advance, quick)
    _check_index(report, store, present, valid)
    for loss in unrecovered_losses(backend):
        report.add("lost-events", loss.folder,
                   f"index events were lost with {', '.join(loss.keys)} (moved to quarantine "
                   f"at {loss.time}); objects only they recorded have no entry now, and gc "
                   "would remove them: run `fsstore verify --repair` to record them again")
    quarantined = sum(1 for _ in backend.keys(QUARANTINE_PREFIX))
    if quarantined:
        report.add("quarantined", QUARANTINE_PREFIX,
                   f"{quarantined} file(s) kept for inspection; delete the folder when done")
    report.seconds = time.monotonic() - started
    log.info("verify: %s", report.summary())
    return report


def _temporary(report: Report, entry: Entry, now: float, grace: float) -> bool:
    if not entry.key.rpartition("/")[2].startswith(TEMPORARY_PREFIX):
        return False
    age = now - entry.mtime
    if age > grace:
        report.add("stale-temporary", entry.key,
                   f"temporary file {age / 3600:.1f} hours old, left by an interrupted write; "
                   "`fsstore gc` removes it")
    else:
        report.add("temporary", entry.key,
                   f"temporary file {max(age, 0):.0f}s old: a write in progress, or "
                   "interrupted (`fsstore gc` removes it once older than the grace period)")
    return True


def _classify_object(report: Report, entry: Entry) -> _ObjectJob | None:
    kind = kind_of_key(entry.key)
    if kind is None:
        report.add("foreign", entry.key, "is in no folder of a known kind of object")
        return None
    digest, placed = kind.parse(entry.key)
    if digest is None:
        report.add("foreign", entry.key, f"is not named like a {kind.name} object",
                   kind=kind.name)
        return None
    return _ObjectJob(entry.key, entry.size, kind.name, digest, placed)


def _check_objects(report: Report, backend: Backend, jobs: list[_ObjectJob],
                   workers: int | None, advance: Callable[[int], None],
                   quick: bool) -> dict[str, set[str]]:
    """Re-hash objects; returns the digests of intact, well-placed objects per kind."""
    valid: dict[str, set[str]] = {name: set() for name in OBJECT_KINDS}

    def check(job: _ObjectJob) -> tuple[_ObjectJob, str | None, str | None, str]:
        kind = OBJECT_KINDS[job.kind]
        digest_of = (kind.quick_digest_of if quick and kind.quick_digest_of is not None
                     else kind.digest_of)
        try:
            return job, digest_of(backend, job.key), None, ""
        except ObjectDamage as damage:
            return job, None, damage.problem, damage.detail
        except FileNotFoundError:
            return job, None, None, "gone"
        except OSError as error:
            if error.errno is not None:
                # The file system refused (EIO, EACCES, ...): the bytes may be intact, so
                # this is not damage for repair to move away.
                return job, None, "unreadable", f"cannot be read: {error.strerror or error}"
            return job, None, "corrupt", f"cannot be read ({error})"

    for job, actual, problem, detail in _parallel(check, jobs, workers):
        advance(job.size)
        if detail == "gone":
            continue  # removed while we were checking (gc, repair)
        report.objects += 1
        report.bytes += job.size
        kind = OBJECT_KINDS[job.kind]
        if problem is not None:
            report.add(problem, job.key, f"{kind.name} object {detail}", kind=job.kind)
        elif actual != job.digest:
            report.add("misplaced" if kind.self_describing else "corrupt", job.key,
                       f"holds the {kind.name} object {actual}, not {job.digest}"
                       + (f"; it belongs at {kind.key_of(actual)}"
                          if kind.self_describing and actual else ""),
                       kind=job.kind, digest=actual)
        elif not job.placed:
            report.add("misplaced", job.key,
                       f"is in the wrong folder; it belongs at {kind.key_of(job.digest)}",
                       kind=job.kind, digest=actual)
        else:
            valid[job.kind].add(job.digest)
    return valid


def _check_commits(report: Report, backend: Backend, entries: list[Entry],
                   advance: Callable[[int], None]) -> None:
    for entry in entries:
        seq = parse_commit_key(entry.key)
        if seq is None or entry.key.count("/") != 2:
            report.add("foreign", entry.key, "is not an index commit")
            continue
        try:
            data = backend.read(entry.key)
        except FileNotFoundError:
            continue  # compacted meanwhile
        commit = decode_commit(seq, data)
        report.bytes += len(data)
        advance(entry.size)
        if commit.torn:
            report.add("damaged-commit", entry.key,
                       f"index commit {seq} does not parse or match its checksum (a torn "
                       "write?); its events are lost")
            continue
        unknown = sorted({str(event.get("kind")) for event in commit.events} - set(KINDS))
        if unknown:
            report.add("unknown-kind", entry.key,
                       f"holds events of kind(s) {', '.join(unknown)} that this fsstore does "
                       "not know; upgrade fsstore")


def _check_runs(report: Report, backend: Backend, entries: list[Entry], now: float,
                grace: float, workers: int | None, advance: Callable[[int], None]) -> None:
    folders: dict[str, dict[str, Entry]] = {}
    for entry in entries:
        folder, _, file = entry.key.rpartition("/")
        if folder_range(folder) is None or folder.count("/") != 2:
            report.add("foreign", entry.key, "is not in an index run folder")
            continue
        folders.setdefault(folder, {})[file] = entry
    checks: list[tuple[str, str, Entry, dict[str, object]]] = []
    for folder, files in sorted(folders.items()):
        manifest_entry = files.get(RUN_MANIFEST)
        if manifest_entry is None:
            age = now - max(entry.mtime for entry in files.values())
            report.add("unfinished-run", folder,
                       f"has no {RUN_MANIFEST} (an interrupted compaction, {age:.0f}s ago); "
                       "its commits are still in the journal or other runs")
            continue
        manifest = _run_manifest(report, backend, folder)
        if manifest is None:
            continue
        recorded = manifest["files"]
        assert isinstance(recorded, dict)
        for file, entry in files.items():
            if file == RUN_MANIFEST:
                continue
            if file not in recorded:
                report.add("foreign", entry.key, f"is not listed in {folder}/{RUN_MANIFEST}")
                continue
            checks.append((folder, file, entry, recorded[file]))
        for file in sorted(set(recorded) - set(files)):
            if not backend.exists(f"{folder}/{RUN_MANIFEST}"):
                break  # the whole run was removed meanwhile (a wider run replaced it)
            if not backend.exists(f"{folder}/{file}"):
                report.add("damaged-run", f"{folder}/{file}",
                           f"is listed in {RUN_MANIFEST} but missing")
        rows = manifest.get("rows")
        unknown = sorted(set(rows) - set(KINDS)) if isinstance(rows, dict) else []
        if unknown:
            report.add("unknown-kind", folder,
                       f"holds events of kind(s) {', '.join(unknown)} that this fsstore does "
                       "not know; upgrade fsstore")

    def digest(check: tuple[str, str, Entry, dict[str, object]]) -> tuple[str, int, str]:
        _, _, entry, _ = check
        try:
            return _file_digest(backend, entry.key)
        except FileNotFoundError:
            return "", -1, ""

    for (_, _, entry, expected), (actual, size, _) in zip(
            checks, _parallel(digest, checks, workers), strict=True):
        advance(entry.size)
        if size < 0:
            continue  # deleted meanwhile by a compaction
        report.bytes += size
        if size != expected.get("bytes"):
            report.add("damaged-run", entry.key,
                       f"has {size} bytes where {RUN_MANIFEST} records {expected.get('bytes')}")
        elif actual != expected.get("blake3"):
            report.add("damaged-run", entry.key,
                       f"hashes to {actual}, not {expected.get('blake3')} as {RUN_MANIFEST} "
                       "records")


def _run_manifest(report: Report, backend: Backend, folder: str) -> dict[str, object] | None:
    key = f"{folder}/{RUN_MANIFEST}"
    try:
        manifest = json.loads(backend.read(key))
    except FileNotFoundError:
        return None
    except ValueError:
        report.add("damaged-run", key, f"{RUN_MANIFEST} does not parse")
        return None
    if (not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT
            or not isinstance(manifest.get("files"), dict)):
        report.add("damaged-run", key, f"{RUN_MANIFEST} is not a {RUN_FORMAT} description")
        return None
    first_last = folder_range(folder)
    if first_last != (manifest.get("first"), manifest.get("last")):
        report.add("damaged-run", key,
                   f"{RUN_MANIFEST} covers {manifest.get('first')}..{manifest.get('last')} "
                   f"but its folder says {first_last}")
        return None
    return manifest


def _check_index(report: Report, store: Store, present: dict[str, set[str]],
                 valid: dict[str, set[str]]) -> None:
    def inspect(view: View) -> tuple[Layout, dict[str, set[str]], int, list[str]]:
        unreadable: list[str] = []
        referenced = referenced_digests(view, unreadable=unreadable)
        events = sum(len(view.column(kind, "seq", unreadable=unreadable)) for kind in KINDS)
        return view.layout, referenced, events, unreadable

    try:
        layout, referenced, report.events, unreadable = store.index.read(inspect)
    except IndexMissingError as error:
        report.add("missing-index", JOURNAL_PREFIX, str(error).partition(";")[0])
        return  # every object would look unreferenced: say nothing more about them
    if unreadable:
        # Its damage is reported with its files; the events in it are unknown, so an
        # object may look unreferenced only because its event is in there.
        log.warning("index runs %s cannot be read; objects may look unreferenced",
                    ", ".join(sorted(set(unreadable))))
    for first, last in layout.gaps:
        report.add("gap", JOURNAL_PREFIX,
                   f"index commits {first}..{last} are in no commit file and no run: "
                   "their events are lost")
    for run in layout.superseded_runs:
        report.add("superseded", run.folder, f"run {run.first}..{run.last} is also held by "
                   "a wider run")
    for seq in layout.superseded_commits:
        report.add("superseded", f"{JOURNAL_PREFIX}/{seq:016d}.json",
                   f"commit {seq} is also held by a run")
    for name, digests in referenced.items():
        kind = OBJECT_KINDS[name]
        for digest in sorted(digests - present[name]):
            key = kind.key_of(digest)
            if store.backend.exists(key):
                # Written, with the event that refers to it, after the objects were listed
                # (a save running alongside): not missing, and checked by the next verify.
                continue
            if is_dangling(store.backend, key):
                path = store.backend.local_path(key)
                report.add("missing", key,
                           f"the index refers to {name} {digest}, whose file is a link to "
                           f"content that is not here; if the store lives in git-annex, run "
                           f"`git annex get {path}` (DVC: `dvc pull`)", kind=name)
                continue
            report.add("missing", key,
                       f"the index refers to {name} {digest} but its file is missing; "
                       "restore it from a copy of the store (`fsstore pull`)", kind=name)
        for digest in sorted(valid[name] - digests) if not unreadable else ():
            report.add("unreferenced", kind.key_of(digest),
                       f"no index entry refers to this {name} object", kind=name)


def _file_digest(backend: Backend, key: str) -> tuple[str, int, str]:
    hasher = blake3()
    size = 0
    with backend.open(key) as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return str(hasher.hexdigest()), size, key


def _parallel(function: Callable[[Item], Result], items: Iterable[Item],
              workers: int | None) -> Iterable[Result]:
    count = workers or min(8, os.cpu_count() or 1)
    if count <= 1:
        return map(function, items)
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="fsstore-verify")
    try:
        return list(pool.map(function, items))
    finally:
        pool.shutdown()
