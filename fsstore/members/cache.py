"""What a process keeps of each store's member index, and the sources it is built from.

Loaded packs are kept by folder (they never change), and so are the tail's sets, read from
their manifests: the sets recorded after the last pack. Both queries (``snapshots``) and
writers (``upkeep``) read the index's ``set`` events and the tail through here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from fsstore.canonical import CanonicalSet
from fsstore.errors import CorruptObjectError
from fsstore.index import View
from fsstore.manifest import decode_manifest, manifest_key
from fsstore.members.pack import Pack, build_pack
from fsstore.stored_manifests import manifest_source, missing_manifest

if TYPE_CHECKING:
    from fsstore.members.snapshots import MemberSnapshot
    from fsstore.store import Store

__all__ = ["MemberCache", "cache_of", "read_manifest", "set_events", "tail_pack"]


@dataclass
class MemberCache:
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


_CACHES: dict[str, MemberCache] = {}
_CACHES_LOCK = threading.Lock()


def cache_of(store: Store) -> MemberCache:
    """This process's cache for a store (one per location, shared by its Store objects)."""
    with _CACHES_LOCK:
        return _CACHES.setdefault(store.location, MemberCache())


def set_events(view: View) -> tuple[pa.Table, int]:
    """The index's ``set`` events (hash, itype, n, seq, name) and its head."""
    return view.table("set").select(["hash", "itype", "n", "seq", "name"]), view.head


def tail_pack(store: Store, cache: MemberCache, hashes: Sequence[str]) -> Pack:
    """A pack of the given sets, read from their manifests (each once per process)."""
    entries = []
    for hash_hex in hashes:
        if hash_hex not in cache.tail:
            canonical = read_manifest(store, hash_hex)
            names = pa.array([name for name, _ in canonical.members], pa.string())
            cache.tail[hash_hex] = (canonical.itype, names)
        entries.append(cache.tail[hash_hex])
    return build_pack(hashes, [itype for itype, _ in entries], [names for _, names in entries])


def read_manifest(store: Store, hash_hex: str) -> CanonicalSet:
    """A set's members from its manifest, checked against its hash (as ``Store.get`` does)."""
    key = manifest_key(hash_hex)
    where = store.where(key)
    try:
        canonical, _ = decode_manifest(manifest_source(store.backend, key), hash_hex, where)
    except (FileNotFoundError, CorruptObjectError):
        if store.backend.exists(key):
            raise
        raise missing_manifest(store.backend, hash_hex, key, hash_hex, where) from None
    return canonical
