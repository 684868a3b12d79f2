"""Keeping the member index current: packing new sets, merging packs, rebuilding.

A save whose commit leaves ``PACK_AFTER`` or more commits uncovered packs them, under a
try-lock (if another process is packing, it skips: the tail only grows), then merges the
newest packs while they are of similar size. Inputs of a merge are deleted only after the
merged pack is visible. Where the lock does nothing (object stores), packers race: one
whose merge input vanished stops quietly, and packs the chain covers are deleted by the
next packer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from fsstore.commit_ranges import MERGE_FACTOR, covering_chain
from fsstore.errors import FsstoreError, LockTimeoutError
from fsstore.lock import DEFAULT_LOCK_TIMEOUT
from fsstore.members.cache import cache_of, set_events, tail_pack
from fsstore.members.pack import (
    PackInfo,
    build_pack,
    delete_pack,
    list_packs,
    read_pack,
    write_pack,
)

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = ["LOCK_KEY", "PACK_AFTER", "keep_current", "keep_current_quietly", "rebuild"]

log = logging.getLogger(__name__)

PACK_AFTER: Final = 64
"""Commits not covered by a pack that make a save pack them (read at each save)."""
LOCK_KEY: Final = "derived/lock"


def keep_current_quietly(store: Store, head: int, *, force: bool = False) -> None:
    """:func:`keep_current` after a commit; a failure only leaves more sets in the tail."""
    cache = cache_of(store)
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
    events, head = store.index.read(set_events)
    if head <= covered or (head - covered < PACK_AFTER and not force):
        return None
    later = events.filter(pc.and_(pc.greater(events["seq"], covered),
                                  pc.less_equal(events["seq"], head)))
    hashes = list(dict.fromkeys(later["hash"].to_pylist()))
    cache = cache_of(store)
    new = write_pack(store, covered + 1, head, tail_pack(store, cache, hashes))
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
            delete_pack(store, info)


def _merge(store: Store, older: PackInfo, newer: PackInfo) -> PackInfo:
    packs = [read_pack(store, info) for info in (older, newer)]
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
        delete_pack(store, info)
    log.debug("merged member packs %s and %s", older.folder, newer.folder)
    return merged


def rebuild(store: Store) -> PackInfo | None:
    """Drop every pack and build one from the manifests of every stored set."""
    with store.backend.lock(LOCK_KEY, DEFAULT_LOCK_TIMEOUT):
        for info in list_packs(store):
            delete_pack(store, info)
        cache = cache_of(store)
        cache.packs.clear()
        cache.rejected.clear()
        return _pack_and_merge(store, force=True)
