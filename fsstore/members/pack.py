"""Packs: the member index's immutable folders, their format and how to build them.

A pack ``derived/members/<first>-<last>-<token>/`` holds every set recorded by ``set``
events in index commits ``first..last`` as two Arrow IPC files over one sorted dictionary
of member names (member -> sets in ``members.arrow``, set -> members in ``sets.arrow``),
and ``PACK.json``, written last, which makes it visible. Packs never change once
published; see the README ("Member index") for the format.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from blake3 import blake3

from fsstore.commit_ranges import delete_folder, folder_range, new_folder
from fsstore.errors import FsstoreError

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = [
    "MEMBERS_FILE",
    "MEMBERS_PREFIX",
    "PACK_FORMAT",
    "PACK_MANIFEST",
    "SETS_FILE",
    "Pack",
    "PackInfo",
    "PackRejectedError",
    "build_pack",
    "delete_pack",
    "is_pack_folder",
    "list_packs",
    "read_pack",
    "write_pack",
]

log = logging.getLogger(__name__)

MEMBERS_PREFIX: Final = "derived/members"
PACK_FORMAT: Final = "fsstore.members.v1"
PACK_MANIFEST: Final = "PACK.json"
SETS_FILE: Final = "sets.arrow"
MEMBERS_FILE: Final = "members.arrow"

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


def read_pack(store: Store, info: PackInfo) -> Pack:
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
            raise PackRejectedError(f"{key} does not match its checksum")
        tables.append(pa.ipc.open_file(source).read_all())
    sets, members = tables
    if sets.schema != _SETS_SCHEMA or members.schema != _MEMBERS_SCHEMA:
        raise PackRejectedError(f"{info.folder} has an unexpected schema")
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
        raise PackRejectedError(f"{info.folder} is inconsistent")
    return pack


class PackRejectedError(FsstoreError):
    """A pack that cannot be used (damaged, or disagreeing with the index)."""


def delete_pack(store: Store, info: PackInfo) -> None:
    """Remove a pack, its ``PACK.json`` first so that readers stop choosing it."""
    delete_folder(store.backend, info.folder, PACK_MANIFEST, info.files)
