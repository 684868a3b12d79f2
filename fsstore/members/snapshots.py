"""Queries on the member index: a snapshot of the packs that chain, plus the tail.

A snapshot is taken for one index view: the packs that chain from commit 1, each checked
against its checksums and against the index (a doubtful one is ignored with a warning and
its sets read from their manifests), and the tail of sets recorded since. On an unchanged
index a process reuses its last snapshot.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fsstore.commit_ranges import covering_chain
from fsstore.index import View
from fsstore.members import upkeep  # by module: PACK_AFTER is read when used
from fsstore.members.cache import MemberCache, cache_of, set_events, tail_pack
from fsstore.members.pack import Pack, PackInfo, PackRejectedError, list_packs, read_pack
from fsstore.set_events import names_by_set

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = ["TAIL_MAX", "MemberSnapshot", "snapshot"]

log = logging.getLogger(__name__)

TAIL_MAX: Final = 200_000
"""Members in the tail beyond which a query packs it (when saves did not)."""
_READ_ATTEMPTS: Final = 10


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
            current = names_by_set(named)
            self._names = {key: sorted(value) for key, value in current.items()}
        return {hash_hex: self._names.get(hash_hex, []) for hash_hex in hashes}

    def sets_with_member(self, member: str, *, ignore_case: bool = False) -> pd.DataFrame:
        """Sets holding ``member`` (exactly, or ignoring case): hash, itype, n, member.

        ``member`` is compared in Unicode NFC, the form members are stored in.
        """
        member = unicodedata.normalize("NFC", member)
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
        names = sorted({unicodedata.normalize("NFC", name) for name in query})
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


def _head(view: View) -> int:
    return view.head


def _snapshot(store: Store, use_packs: bool = True) -> MemberSnapshot:
    cache = cache_of(store)
    chain = covering_chain(list_packs(store)) if use_packs else []
    key = (store.index.read(_head), tuple(info.folder for info in chain))
    if cache.snapshot is not None and cache.snapshot[0] == key:
        return cache.snapshot[1]  # nothing was committed or packed since
    events, head = store.index.read(set_events)
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
            cache.tail_pack = (tail_key, tail_pack(store, cache, tail_hashes))
        tail = cache.tail_pack[1]
        packs.append(tail)
        if use_packs and (head - covered > 4 * upkeep.PACK_AFTER
                          or len(tail.set_members) > TAIL_MAX):
            # Written by a fsstore without this index, or packing failed: catch up now.
            upkeep.keep_current_quietly(store, head, force=True)
    snapshot = MemberSnapshot(packs, head, len(tail_hashes), events)
    cache.snapshot = ((head, key[1]), snapshot)
    return snapshot


def _load_checked(store: Store, cache: MemberCache, info: PackInfo,
                  sizes: dict[str, int]) -> Pack | None:
    if info.folder in cache.rejected:
        return None
    pack = cache.packs.get(info.folder)
    if pack is None:
        try:
            pack = read_pack(store, info)
            # Never trusted over the index: every set must be one it records, of that size.
            for hash_hex, n in zip(pack.hashes.to_pylist(), pack.n.tolist(), strict=True):
                if sizes.get(hash_hex) != n:
                    raise PackRejectedError(f"{info.folder} lists set {hash_hex[:12]} with {n} "
                                            "members, which the index does not record")
        except (PackRejectedError, pa.ArrowInvalid, OSError, KeyError, ValueError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            log.warning("ignoring member pack %s (%s); its sets are read from their "
                        "manifests. Run `fsstore find --rebuild` to rebuild the member index",
                        info.folder, error)
            cache.rejected.add(info.folder)
            return None
        cache.packs[info.folder] = pack
    return pack
