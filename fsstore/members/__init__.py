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

The package's modules: ``pack`` (the format, building and publishing packs), ``cache``
(what a process keeps, and the tail), ``snapshots`` (queries) and ``upkeep`` (packing,
merging, rebuilding).
"""

from fsstore.members.pack import (
    MEMBERS_PREFIX,
    PACK_FORMAT,
    PACK_MANIFEST,
    Pack,
    PackInfo,
    build_pack,
    is_pack_folder,
    list_packs,
)
from fsstore.members.snapshots import MemberSnapshot, snapshot
from fsstore.members.upkeep import (
    LOCK_KEY,
    PACK_AFTER,
    keep_current,
    keep_current_quietly,
    rebuild,
)

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
