"""The member index: which stored sets hold each member, for lookups, overlap and unions.

It is derived data, rebuilt from the manifests whenever it is missing or doubtful, and
never the only source of an answer: every query combines

* *packs*: immutable folders ``derived/members/<first>-<last>-<token>/`` holding every set
  recorded by ``set`` events in index commits ``first..last``, as two compressed sparse
  arrays over one sorted dictionary of member names (member -> sets, set -> members);
* the *tail*: sets recorded after the last pack, read from their manifests (verified).

Packs chain from commit 1 like the index's runs; a pack that does not chain, fails its
checksums, or disagrees with the index about a set's size is ignored and its sets are read
from their manifests instead. A save whose commit leaves ``PACK_AFTER`` or more commits
uncovered packs them (under a try-lock: if another writer is packing, it skips), and
packs of similar size are merged, so a store holds a handful of packs. Publication is
exclusive (``PACK.json`` is written last) and inputs of a merge are deleted only after the
merged pack is visible, so concurrent writers and readers are safe without the lock. Where
the lock does nothing (object stores), packers race: one whose merge input vanished stops
quietly, and packs the chain covers are deleted by the next packer.

Queries cost the postings of the members asked about, not the number of stored sets: see
the README ("Member index") for measured figures.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from blake3 import blake3

from fsstore.canonical import CanonicalSet
from fsstore.commit_ranges import (
    MERGE_FACTOR,
    covering_chain,
    delete_folder,
    folder_range,
    new_folder,
)
from fsstore.errors import (
    CorruptObjectError,
    FsstoreError,
    LockTimeoutError,
    ReferenceNotFoundError,
)
from fsstore.index import View
from fsstore.manifest import decode_manifest, manifest_key

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = [
    "LOCK_KEY",
    "MEMBERS_PREFIX",
    "PACK_AFTER",
    "PACK_FORMAT",
    "PACK_MANIFEST",
    "MemberSnapshot",
    "Pack",
    "PackInfo",
    "build_pack",
    "is_pack_folder",
    "keep_current",
    "keep_current_quietly",
    "list_packs",
    "rebuild",
    "snapshot",
]

log = logging.getLogger(__name__)

MEMBERS_PREFIX: Final = "derived/members"
PACK_FORMAT: Final = "fsstore.members.v1"
PACK_MANIFEST: Final = "PACK.json"
PACK_AFTER: Final = 64
"""Commits not covered by a pack that make a save pack them."""
TAIL_MAX: Final = 200_000
"""Members in the tail beyond which a query packs it (when saves did not)."""
LOCK_KEY: Final = "derived/lock"
SETS_FILE: Final = "sets.arrow"
MEMBERS_FILE: Final = "members.arrow"
_READ_ATTEMPTS: Final = 10

_SETS_SCHEMA: Final = pa.schema([
    pa.field("hash", pa.string(), nullable=False),
    pa.field("itype", pa.string(), nullable=False),
    pa.field("n", pa.int64(), nullable=False),
    pa.field("members", pa.list_(pa.field("item", pa.int32(), nullable=False)),
             nullable=False),
])
_MEMBERS_SCHEMA: Final = pa.schema([
    pa.field("name", pa.string(), nullable=False),
    pa.field("sets", pa.list_(pa.field("item", pa.int32(), nullable=False)), nullable=False),
])


@dataclass(frozen=True)
class PackInfo:
    """A published pack: the commits it covers and its files' sizes and checksums."""

    first: int
    last: int
    folder: str
    sets: int
    postings: int
    files: dict[str, dict[str, Any]]

    def key(self, file: str) -> str:
        return f"{self.folder}/{file}"


@dataclass
class Pack:
    """Sets and members as compressed sparse rows over a sorted dictionary of names.

    ``set_members[set_offsets[i]:set_offsets[i + 1]]`` are the member ids of set ``i``;
    ``member_sets[member_offsets[j]:member_offsets[j + 1]]`` the sets holding member ``j``,
    whose name is ``names[j]``.
    """

    hashes: pa.Array
    itypes: pa.Array
    n: np.ndarray
    names: pa.Array
    set_offsets: np.ndarray
    set_members: np.ndarray
    member_offsets: np.ndarray
    member_sets: np.ndarray
    _row_of_hash: dict[str, int] | None = field(default=None, repr=False)
    _id_of_name: dict[str, int] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.hashes)

    def row_of_hash(self) -> dict[str, int]:
        if self._row_of_hash is None:
            self._row_of_hash = {value: row for row, value in enumerate(self.hashes.to_pylist())}
        return self._row_of_hash

    def ids_of(self, names: Sequence[str]) -> np.ndarray:
        """Member ids of the names this pack holds (others are left out)."""
        if self._id_of_name is None:
            self._id_of_name = {value: row for row, value in enumerate(self.names.to_pylist())}
        lookup = self._id_of_name
        return np.fromiter((lookup[name] for name in names if name in lookup), np.int64)

    def sets_of_members(self, ids: np.ndarray) -> np.ndarray:
        """Set rows holding each of the member ids, concatenated (a set once per member)."""
        found: np.ndarray = self.member_sets[_ranges(self.member_offsets, ids)]
        return found

    def members_of_sets(self, rows: np.ndarray) -> np.ndarray:
        found: np.ndarray = self.set_members[_ranges(self.set_offsets, rows)]
        return found

    def names_of_set(self, row: int) -> pa.Array:
        ids = self.set_members[self.set_offsets[row]:self.set_offsets[row + 1]]
        return self.names.take(pa.array(ids))


def _ranges(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices ``offsets[r]..offsets[r + 1]`` for every ``r`` in ``rows``, concatenated."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    shifts = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    indices: np.ndarray = np.arange(total, dtype=np.int64) + shifts
    return indices


# -- building -----------------------------------------------------------------------------


def build_pack(hashes: Sequence[str], itypes: Sequence[str],
               members: Sequence[pa.Array]) -> Pack:
    """A pack of sets given by hash, itype and member names (each name once per set)."""
    lengths = np.fromiter((len(names) for names in members), np.int64, len(members))
    set_offsets = np.zeros(len(members) + 1, dtype=np.int64)
    np.cumsum(lengths, out=set_offsets[1:])
    if members:
        flat = pa.concat_arrays([names.cast(pa.string()) for names in members])
    else:
        flat = pa.array([], pa.string())
    unique = pc.unique(flat)
    names = unique.take(pc.sort_indices(unique))
    ids = pc.index_in(flat, value_set=names).to_numpy(zero_copy_only=False).astype(np.int32)
    owner = np.repeat(np.arange(len(members), dtype=np.int32), lengths)
    forward = np.lexsort((ids, owner))
    by_member = np.argsort(ids, kind="stable")  # owners stay ascending within a member
    counts = np.bincount(ids, minlength=len(names)).astype(np.int64)
    member_offsets = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(counts, out=member_offsets[1:])
    return Pack(pa.array(list(hashes), pa.string()), pa.array(list(itypes), pa.string()),
                lengths, names, set_offsets, ids[forward], member_offsets, owner[by_member])


def _pack_tables(pack: Pack) -> tuple[pa.Table, pa.Table]:
    sets = pa.Table.from_arrays([
        pack.hashes, pack.itypes, pa.array(pack.n, pa.int64()),
        pa.ListArray.from_arrays(pa.array(pack.set_offsets, pa.int32()),
                                 pa.array(pack.set_members, pa.int32())),
    ], schema=_SETS_SCHEMA)
    members = pa.Table.from_arrays([
        pack.names,
        pa.ListArray.from_arrays(pa.array(pack.member_offsets, pa.int32()),
                                 pa.array(pack.member_sets, pa.int32())),
    ], schema=_MEMBERS_SCHEMA)
    return sets, members


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def write_pack(store: Store, first: int, last: int, pack: Pack) -> PackInfo:
    """Publish a pack covering commits ``first..last``; ``PACK.json`` last makes it visible."""
    folder = new_folder(MEMBERS_PREFIX, first, last)
    files: dict[str, dict[str, Any]] = {}
    for file, table in zip((SETS_FILE, MEMBERS_FILE), _pack_tables(pack), strict=True):
        data = _ipc_bytes(table)
        store.backend.create(f"{folder}/{file}", data)
        files[file] = {"bytes": len(data), "blake3": blake3(data).hexdigest()}
    postings = len(pack.set_members)
    manifest = {"format": PACK_FORMAT, "first": first, "last": last, "sets": pack.size,
                "members": len(pack.names), "postings": postings, "files": files}
    store.backend.create(f"{folder}/{PACK_MANIFEST}",
                         json.dumps(manifest, indent=1).encode() + b"\n")
    log.debug("published member pack %s (%d sets, %d postings)", folder, pack.size, postings)
    return PackInfo(first, last, folder, pack.size, postings, files)


def list_packs(store: Store) -> list[PackInfo]:
    """Every published pack, in no particular order."""
    found = []
    for entry in store.backend.list(MEMBERS_PREFIX):
        folder, _, file = entry.key.rpartition("/")
        if file != PACK_MANIFEST or folder_range(folder) is None:
            continue
        try:
            manifest = json.loads(store.backend.read(entry.key))
        except FileNotFoundError:
            continue  # removed by a merge while listing
        except ValueError:
            log.warning("ignoring member pack %s: its %s does not parse", folder, PACK_MANIFEST)
            continue
        if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
            continue
        found.append(PackInfo(int(manifest["first"]), int(manifest["last"]), folder,
                              int(manifest["sets"]), int(manifest["postings"]),
                              dict(manifest["files"])))
    return found


def is_pack_folder(name: str) -> bool:
    """Whether a folder name under ``derived/members`` is a pack's (``<first>-<last>-<token>``)."""
    return folder_range(name) is not None


def _read_pack(store: Store, info: PackInfo) -> Pack:
    """Load a pack, memory-mapped where the store is local, checking its checksums."""
    tables = []
    for file in (SETS_FILE, MEMBERS_FILE):
        key = info.key(file)
        path = store.backend.local_path(key)
        expected = info.files.get(file, {}).get("blake3")
        if path is not None:
            source = pa.memory_map(path)
            digest = blake3(max_threads=blake3.AUTO).update_mmap(path).hexdigest()
        else:
            data = store.backend.read(key)
            source = pa.BufferReader(data)
            digest = blake3(data).hexdigest()
        if digest != expected:
            raise _PackRejectedError(f"{key} does not match its checksum")
        tables.append(pa.ipc.open_file(source).read_all())
    sets, members = tables
    if sets.schema != _SETS_SCHEMA or members.schema != _MEMBERS_SCHEMA:
        raise _PackRejectedError(f"{info.folder} has an unexpected schema")
    set_lists = sets["members"].combine_chunks()
    member_lists = members["sets"].combine_chunks()
    pack = Pack(sets["hash"].combine_chunks(), sets["itype"].combine_chunks(),
                sets["n"].to_numpy(), members["name"].combine_chunks(),
                set_lists.offsets.to_numpy().astype(np.int64),
                set_lists.values.to_numpy(),
                member_lists.offsets.to_numpy().astype(np.int64),
                member_lists.values.to_numpy())
    lengths = np.diff(pack.set_offsets)
    if (len(lengths) != len(pack.n) or not np.array_equal(lengths, pack.n)
            or int(lengths.sum()) != len(pack.member_sets)):
        raise _PackRejectedError(f"{info.folder} is inconsistent")
    return pack


class _PackRejectedError(FsstoreError):
    """A pack that cannot be used (damaged, or disagreeing with the index)."""


# -- reading ------------------------------------------------------------------------------


@dataclass
class _Cache:
    """Per store: packs by folder (immutable, so safe to keep) and tail sets by hash."""

    packs: dict[str, Pack] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    tail: dict[str, tuple[str, pa.Array]] = field(default_factory=dict)
    tail_pack: tuple[tuple[str, ...], Pack] | None = None
    snapshot: tuple[tuple[int, tuple[str, ...]], MemberSnapshot] | None = None
    covered: int = 0
    """The last commit covered by packs, as last seen by this process."""
    retry_at: int = 0
    """After a failed update, the head at which this process tries again."""


_CACHES: dict[str, _Cache] = {}
_CACHES_LOCK = threading.Lock()


def _cache_of(store: Store) -> _Cache:
    with _CACHES_LOCK:
        return _CACHES.setdefault(store.location, _Cache())


@dataclass
class MemberSnapshot:
    """The member index as of one index view: packs plus the tail, queried together."""

    packs: list[Pack]
    head: int
    tail_sets: int
    events: pa.Table
    """The ``set`` events the snapshot was built from (hash, itype, n, seq, name)."""
    _names: dict[str, list[str]] | None = field(default=None, repr=False)

    def names_of(self, hashes: Iterable[str]) -> dict[str, list[str]]:
        """The names pointing at each of the sets now (sorted; empty if none)."""
        if self._names is None:
            named = self.events.filter(pc.is_valid(self.events["name"])).to_pandas()
            latest = named.drop_duplicates("name", keep="last")
            current: dict[str, list[str]] = {}
            for name, hash_hex in zip(latest["name"], latest["hash"], strict=True):
                current.setdefault(hash_hex, []).append(name)
            self._names = {key: sorted(value) for key, value in current.items()}
        return {hash_hex: self._names.get(hash_hex, []) for hash_hex in hashes}

    def sets_with_member(self, member: str, *, ignore_case: bool = False) -> pd.DataFrame:
        """Sets holding ``member`` (exactly, or ignoring case): hash, itype, n, member."""
        rows = []
        for pack in self.packs:
            if ignore_case:
                mask = pc.equal(pc.utf8_lower(pack.names), member.lower())
                ids = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
            else:
                ids = pack.ids_of([member])
            for member_id in ids:
                found = pack.sets_of_members(np.array([member_id]))
                name = pack.names[int(member_id)].as_py()
                rows += [(pack.hashes[int(row)].as_py(), pack.itypes[int(row)].as_py(),
                          int(pack.n[row]), name) for row in found]
        frame = pd.DataFrame(rows, columns=["hash", "itype", "n", "member"])
        return frame.drop_duplicates(["hash", "member"]).reset_index(drop=True)

    def overlaps(self, query: Iterable[str], *, itype: str | None = None) -> pd.DataFrame:
        """Every set sharing a member with ``query``: hash, itype, n, shared."""
        names = sorted(set(query))
        parts = []
        for pack in self.packs:
            rows = pack.sets_of_members(pack.ids_of(names))
            counts = np.bincount(rows, minlength=pack.size)
            hits = np.flatnonzero(counts)
            if itype is not None and len(hits):
                keep = pc.equal(pack.itypes.take(pa.array(hits)), itype)
                hits = hits[keep.to_numpy(zero_copy_only=False)]
            parts.append(pd.DataFrame({
                "hash": pack.hashes.take(pa.array(hits, pa.int64())).to_pylist(),
                "itype": pack.itypes.take(pa.array(hits, pa.int64())).to_pylist(),
                "n": pack.n[hits], "shared": counts[hits]}))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["hash", "itype", "n", "shared"])
        return frame.drop_duplicates("hash").reset_index(drop=True)

    def scores(self, query: Iterable[str], *, min_jaccard: float | None = None,
               min_containment: float | None = None,
               itype: str | None = None) -> pd.DataFrame:
        """Sets whose overlap with ``query`` reaches the thresholds: hash, itype, n, shared,
        jaccard, containment. The thresholds are applied before any set is looked at."""
        names = sorted(set(query))
        size = len(names)
        parts = []
        for pack in self.packs:
            counts = np.bincount(pack.sets_of_members(pack.ids_of(names)),
                                 minlength=pack.size)
            jaccard = counts / np.maximum(size + pack.n - counts, 1)
            containment = counts / max(size, 1)
            keep = counts > 0
            if min_jaccard is not None:
                keep &= jaccard >= min_jaccard
            if min_containment is not None:
                keep &= containment >= min_containment
            rows = np.flatnonzero(keep)
            if itype is not None and len(rows):
                same = pc.equal(pack.itypes.take(pa.array(rows)), itype)
                rows = rows[same.to_numpy(zero_copy_only=False)]
            taken = pa.array(rows, pa.int64())
            parts.append(pd.DataFrame({
                "hash": pack.hashes.take(taken).to_pylist(),
                "itype": pack.itypes.take(taken).to_pylist(),
                "n": pack.n[rows], "shared": counts[rows], "jaccard": jaccard[rows],
                "containment": containment[rows]}))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["hash", "itype", "n", "shared", "jaccard", "containment"])
        return frame.drop_duplicates("hash").reset_index(drop=True)

    def union(self, hashes: Iterable[str]) -> pa.Array:
        """The distinct member names of the given sets, sorted; each name taken once."""
        wanted = set(hashes)
        found: set[str] = set()
        parts = []
        for pack in self.packs:
            lookup = pack.row_of_hash()
            rows = np.fromiter((lookup[value] for value in wanted if value in lookup), np.int64)
            if not len(rows):
                continue
            found.update(pack.hashes.take(pa.array(rows)).to_pylist())
            mask = np.zeros(len(pack.names), dtype=bool)
            mask[pack.members_of_sets(rows)] = True
            parts.append(pack.names.filter(pa.array(mask)))
        missing = wanted - found
        if missing:
            raise KeyError(sorted(missing)[0])
        if len(parts) == 1:
            return parts[0]
        merged = pc.unique(pa.concat_arrays(parts)) if parts else pa.array([], pa.string())
        return merged.take(pc.sort_indices(merged))

    def members_of(self, hash_hex: str) -> pa.Array:
        for pack in self.packs:
            row = pack.row_of_hash().get(hash_hex)
            if row is not None:
                return pack.names_of_set(row)
        raise KeyError(hash_hex)


def snapshot(store: Store) -> MemberSnapshot:
    """The member index as of now: the packs that chain, checked, plus the tail."""
    for attempt in range(_READ_ATTEMPTS):
        try:
            return _snapshot(store)
        except FileNotFoundError:
            log.debug("member packs moved while loading (attempt %d); retrying", attempt + 1)
            time.sleep(0.002 * (attempt + 1))
    return _snapshot(store, use_packs=False)


def _set_events(view: View) -> tuple[pa.Table, int]:
    return view.table("set").select(["hash", "itype", "n", "seq", "name"]), view.head


def _head(view: View) -> int:
    return view.head


def _snapshot(store: Store, use_packs: bool = True) -> MemberSnapshot:
    cache = _cache_of(store)
    chain = covering_chain(list_packs(store)) if use_packs else []
    key = (store.index.read(_head), tuple(info.folder for info in chain))
    if cache.snapshot is not None and cache.snapshot[0] == key:
        return cache.snapshot[1]  # nothing was committed or packed since
    events, head = store.index.read(_set_events)
    sizes: dict[str, int] = {}
    packs: list[Pack] = []
    covered = 0
    for info in chain:
        if info.folder not in cache.packs and not sizes:
            sizes = dict(zip(events["hash"].to_pylist(), events["n"].to_pylist(), strict=True))
        pack = _load_checked(store, cache, info, sizes)
        if pack is None:
            break  # the sets of this pack and after are read from their manifests
        packs.append(pack)
        covered = info.last
    later = events.filter(pc.greater(events["seq"], covered))
    tail_hashes = [value for value in dict.fromkeys(later["hash"].to_pylist())
                   if not any(value in pack.row_of_hash() for pack in packs)]
    if tail_hashes:
        tail_key = tuple(tail_hashes)
        if cache.tail_pack is None or cache.tail_pack[0] != tail_key:
            cache.tail_pack = (tail_key, _tail_pack(store, cache, tail_hashes))
        tail = cache.tail_pack[1]
        packs.append(tail)
        if use_packs and (head - covered > 4 * PACK_AFTER or len(tail.set_members) > TAIL_MAX):
            # Written by a fsstore without this index, or packing failed: catch up now.
            keep_current_quietly(store, head, force=True)
    snapshot = MemberSnapshot(packs, head, len(tail_hashes), events)
    cache.snapshot = ((head, key[1]), snapshot)
    return snapshot


def _load_checked(store: Store, cache: _Cache, info: PackInfo,
                  sizes: dict[str, int]) -> Pack | None:
    if info.folder in cache.rejected:
        return None
    pack = cache.packs.get(info.folder)
    if pack is None:
        try:
            pack = _read_pack(store, info)
            # Never trusted over the index: every set must be one it records, of that size.
            for hash_hex, n in zip(pack.hashes.to_pylist(), pack.n.tolist(), strict=True):
                if sizes.get(hash_hex) != n:
                    raise _PackRejectedError(f"{info.folder} lists set {hash_hex[:12]} with {n} "
                                        "members, which the index does not record")
        except (_PackRejectedError, pa.ArrowInvalid, OSError, KeyError, ValueError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            log.warning("ignoring member pack %s (%s); its sets are read from their "
                        "manifests. Run `fsstore find --rebuild` to rebuild the member index",
                        info.folder, error)
            cache.rejected.add(info.folder)
            return None
        cache.packs[info.folder] = pack
    return pack


def _tail_pack(store: Store, cache: _Cache, hashes: Sequence[str]) -> Pack:
    entries = []
    for hash_hex in hashes:
        if hash_hex not in cache.tail:
            canonical = _read_manifest(store, hash_hex)
            names = pa.array([name for name, _ in canonical.members], pa.string())
            cache.tail[hash_hex] = (canonical.itype, names)
        entries.append(cache.tail[hash_hex])
    return build_pack(hashes, [itype for itype, _ in entries], [names for _, names in entries])


def _read_manifest(store: Store, hash_hex: str) -> CanonicalSet:
    """A set's members from its manifest, checked against its hash (as ``Store.get`` does)."""
    key = manifest_key(hash_hex)
    where = store.where(key)
    source = store.backend.local_path(key)
    try:
        canonical, _ = decode_manifest(source if source is not None
                                       else store.backend.read(key), hash_hex, where)
    except (FileNotFoundError, CorruptObjectError):
        if store.backend.exists(key):
            raise
        raise ReferenceNotFoundError(
            f"the index knows set {hash_hex[:12]} but its manifest {where} is missing; run "
            "`fsstore verify` to find what else is missing", hash_hex) from None
    return canonical


# -- keeping current ----------------------------------------------------------------------


def keep_current_quietly(store: Store, head: int, *, force: bool = False) -> None:
    """:func:`keep_current` after a commit; a failure only leaves more sets in the tail."""
    cache = _cache_of(store)
    if (head - cache.covered < PACK_AFTER or head < cache.retry_at) and not force:
        return  # packs only ever cover more, so a save needs no listing until then
    try:
        cache.covered = max((info.last for info in covering_chain(list_packs(store))), default=0)
        if head - cache.covered < PACK_AFTER and not force:
            return
        keep_current(store, force=force)
    except (FsstoreError, OSError, pa.ArrowException) as error:
        # Not again at every save: a missing manifest stays missing until someone acts.
        cache.retry_at = head + PACK_AFTER
        log.warning("could not update the member index (the save itself succeeded): %s; "
                    "queries read the sets it lacks from their manifests meanwhile", error)


def keep_current(store: Store, *, force: bool = False) -> PackInfo | None:
    """Pack the sets recorded since the last pack, then merge packs of similar size.

    Takes the member index's try-lock and returns None at once if another process holds
    it. ``force`` packs even a short tail.
    """
    try:
        with store.backend.lock(LOCK_KEY, 0.0):
            return _pack_and_merge(store, force)
    except LockTimeoutError:
        log.debug("another process is updating the member index; skipping")
        return None


def _pack_and_merge(store: Store, force: bool) -> PackInfo | None:
    packs = list_packs(store)
    chain = covering_chain(packs)
    covered = chain[-1].last if chain else 0
    _drop_superseded(store, packs, chain)
    events, head = store.index.read(_set_events)
    if head <= covered or (head - covered < PACK_AFTER and not force):
        return None
    later = events.filter(pc.and_(pc.greater(events["seq"], covered),
                                  pc.less_equal(events["seq"], head)))
    hashes = list(dict.fromkeys(later["hash"].to_pylist()))
    cache = _cache_of(store)
    new = write_pack(store, covered + 1, head, _tail_pack(store, cache, hashes))
    for hash_hex in hashes:
        cache.tail.pop(hash_hex, None)
    chain.append(new)
    while (len(chain) >= 2
           and chain[-2].postings + chain[-2].sets <= MERGE_FACTOR * (chain[-1].postings
                                                                       + chain[-1].sets + 1)):
        try:
            chain[-2:] = [_merge(store, chain[-2], chain[-1])]
        except FileNotFoundError as error:
            # Only where the lock does nothing (object stores): another packer merged these
            # packs first and deleted them; its merged pack covers the same commits.
            log.debug("a member pack vanished while merging (%s); another process merged "
                      "it, so this one stops here", error)
            break
    return chain[-1]


def _drop_superseded(store: Store, packs: Sequence[PackInfo], chain: Sequence[PackInfo]
                     ) -> None:
    """Delete packs the chain also covers: left by packers that raced or died mid-merge.

    Readers that chose one a moment ago retry when it vanishes, as after a merge.
    """
    covered = chain[-1].last if chain else 0
    chained = {info.folder for info in chain}
    for info in packs:
        if info.folder not in chained and info.last <= covered:
            log.debug("deleting member pack %s: the packs up to %d cover it", info.folder,
                      covered)
            _delete_pack(store, info)


def _merge(store: Store, older: PackInfo, newer: PackInfo) -> PackInfo:
    packs = [_read_pack(store, info) for info in (older, newer)]
    hashes: list[str] = []
    itypes: list[str] = []
    members: list[pa.Array] = []
    seen: set[str] = set()
    for pack in packs:
        for row, (hash_hex, itype) in enumerate(zip(pack.hashes.to_pylist(),
                                                   pack.itypes.to_pylist(), strict=True)):
            if hash_hex in seen:
                continue  # recorded again later (a new name): one row per set
            seen.add(hash_hex)
            hashes.append(hash_hex)
            itypes.append(itype)
            members.append(pack.names_of_set(row))
    merged = write_pack(store, older.first, newer.last, build_pack(hashes, itypes, members))
    for info in (older, newer):
        _delete_pack(store, info)
    log.debug("merged member packs %s and %s", older.folder, newer.folder)
    return merged


def _delete_pack(store: Store, info: PackInfo) -> None:
    delete_folder(store.backend, info.folder, PACK_MANIFEST, info.files)


def rebuild(store: Store) -> PackInfo | None:
    """Drop every pack and build one from the manifests of every stored set."""
    with store.backend.lock(LOCK_KEY, 60.0):
        for info in list_packs(store):
            _delete_pack(store, info)
        cache = _cache_of(store)
        cache.packs.clear()
        cache.rejected.clear()
        return _pack_and_merge(store, force=True)
