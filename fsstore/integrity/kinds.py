"""Kinds of stored objects: where each lives, how to check one, which events reach it.

``verify``, ``repair`` and ``gc`` know objects only through this registry, so a new kind
of object (a registry table, a copy of a dataset file) plugs in by declaring itself::

    register_object_kind(ObjectKind(name="file", prefix="objects/files", suffix="",
                                    digest_of=file_digest))
    register_reference(Reference(event="dataset", column="dataset", object_kind="file"))

An object lives at ``<prefix>/<digest[0:2]>/<digest><suffix>``. ``digest_of`` recomputes
the digest of an object's content (raising :class:`ObjectDamage` when it cannot be read),
and ``recover``, when a kind can, rebuilds the event that recorded an object from the
object alone (used by ``verify --repair`` after index damage). A :class:`Reference` says
that a column of an event kind holds digests of a kind of object: those objects are
reachable, and must exist.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pyarrow.parquet as pq
from blake3 import blake3

from fsstore.backend import Backend
from fsstore.errors import CorruptObjectError
from fsstore.index.events import KINDS, Event, format_time
from fsstore.index.index import View
from fsstore.integrity.manifests import (
    ManifestDamage,
    manifest_digest,
    manifest_metadata,
    sealed_digest,
)
from fsstore.links import FILES_PREFIX
from fsstore.manifest import SETS_PREFIX
from fsstore.registry.table import REGISTRIES_PREFIX, decode_registry

__all__ = [
    "OBJECT_KINDS",
    "REFERENCES",
    "ObjectDamage",
    "ObjectKind",
    "Reference",
    "kind_of_key",
    "referenced_digests",
    "register_object_kind",
    "register_reference",
]

_DIGEST: Final = re.compile(r"^[0-9a-f]{64}$")
_CHUNK: Final = 1 << 20

ObjectDamage = ManifestDamage
"""Raised by ``digest_of``: ``problem`` is ``truncated`` or ``corrupt``, ``detail`` says how."""


@dataclass(frozen=True)
class ObjectKind:
    """One kind of content-addressed object."""

    name: str
    prefix: str
    """Folder of the objects, e.g. ``objects/sets``."""
    suffix: str
    """File name ending after the digest, e.g. ``.parquet``."""
    digest_of: Callable[[Backend, str], str]
    """The digest of the content at a key; raises ObjectDamage if it cannot be read."""
    recover: Callable[[Backend, str, str], Event | None] | None = None
    """The event that recorded the object (key, digest), rebuilt from the object alone."""
    quick_digest_of: Callable[[Backend, str], str] | None = None
    """A cheaper check (``verify --quick``): the digest the object records, once some
    checksum over its bytes shows they are intact. None: ``digest_of`` is already cheap."""
    self_describing: bool = False
    """``digest_of`` checks the content against a digest the object itself records, so a
    digest that differs from the file name means an intact object under the wrong name."""

    def key_of(self, digest: str) -> str:
        return f"{self.prefix}/{digest[:2]}/{digest}{self.suffix}"

    def parse(self, key: str) -> tuple[str | None, bool]:
        """``(digest, placed)`` of a key under this kind's prefix.

        ``digest`` is None when the file name is not an object name at all (a foreign
        file); ``placed`` is False when the name is right but the fan-out folder is not.
        """
        rest = key[len(self.prefix) + 1:]
        folder, _, file = rest.rpartition("/")
        if not file.endswith(self.suffix):
            return None, False
        digest = file[:len(file) - len(self.suffix)] if self.suffix else file
        if not _DIGEST.match(digest):
            return None, False
        return digest, folder == digest[:2]


@dataclass(frozen=True)
class Reference:
    """Column ``column`` of ``event`` events holds digests of ``object_kind`` objects."""

    event: str
    column: str
    object_kind: str
    where: str | None = None
    """A boolean column of the event: only events where it is true refer to an object
    (a dataset event refers to a stored file only when ``copied``)."""
    records: bool = True
    """The event records the object (a ``set`` event records a set). False for events that
    only use an object recorded elsewhere (a ``link`` puts a set in a slot): an object
    they alone refer to lost its record, and ``verify --repair`` recovers it."""


OBJECT_KINDS: Final[dict[str, ObjectKind]] = {}
REFERENCES: Final[list[Reference]] = []


def register_object_kind(kind: ObjectKind) -> None:
    OBJECT_KINDS[kind.name] = kind


def register_reference(reference: Reference) -> None:
    if reference not in REFERENCES:
        REFERENCES.append(reference)


def kind_of_key(key: str) -> ObjectKind | None:
    """The kind whose folder holds ``key``, or None."""
    for kind in OBJECT_KINDS.values():
        if key.startswith(kind.prefix + "/"):
            return kind
    return None


def referenced_digests(view: View, *, unreadable: list[str] | None = None,
                       recording_only: bool = False) -> dict[str, set[str]]:
    """Digests of each kind of object that some event of the history refers to.

    With ``recording_only``, only the events that record objects count (see
    :attr:`Reference.records`).
    """
    referenced: dict[str, set[str]] = {name: set() for name in OBJECT_KINDS}
    for reference in REFERENCES:
        if recording_only and not reference.records:
            continue
        if reference.event in KINDS and reference.object_kind in referenced:
            values = view.column(reference.event, reference.column, where=reference.where,
                                 unreadable=unreadable).unique()
            referenced[reference.object_kind].update(
                value for value in values.to_pylist() if value)
    return referenced


def _source(backend: Backend, key: str) -> Any:
    path = backend.local_path(key)
    return path if path is not None else backend.read(key)


def _set_digest(backend: Backend, key: str) -> str:
    digest, recorded = manifest_digest(_source(backend, key))
    if recorded != digest:
        raise ObjectDamage("corrupt", f"hashes to {digest} although it records {recorded}")
    return digest


def _set_quick_digest(backend: Backend, key: str) -> str:
    data = backend.read(key)
    recorded = sealed_digest(data)
    return recorded if recorded is not None else _set_digest(backend, key)


def _set_event(backend: Backend, key: str, digest: str) -> Event | None:
    try:
        schema = pq.read_schema(_source(backend, key))
        metadata = manifest_metadata(schema.metadata)
    except (ManifestDamage, OSError, ValueError):
        return None
    event: Event = {
        "kind": "set",
        "hash": digest,
        "itype": metadata["fsstore.itype"],
        "dtype": metadata["fsstore.dtype"] or None,
        "ordered": metadata["fsstore.ordered"] == "true",
        "n": int(metadata.get("fsstore.n", "0")),
        "name": None,
        "description": None,
    }
    if "fsstore.created_by" in metadata:
        event["user"] = metadata["fsstore.created_by"]
    # Without a readable creation time, the commit records the time of the repair.
    with contextlib.suppress(KeyError, ValueError):
        event["time"] = format_time(datetime.fromisoformat(metadata["fsstore.created_at"]))
    return event


SET_OBJECTS: Final = ObjectKind(name="set", prefix=SETS_PREFIX, suffix=".parquet",
                                digest_of=_set_digest, recover=_set_event,
                                quick_digest_of=_set_quick_digest, self_describing=True)
"""Manifests of feature sets."""

register_object_kind(SET_OBJECTS)
register_reference(Reference(event="set", column="hash", object_kind="set"))


def _registry_digest(backend: Backend, key: str) -> str:
    """A registry table's canonical hash, recomputed from its records and metadata."""
    named = key.rpartition("/")[2].removesuffix(".parquet")
    try:
        table, _ = decode_registry(_source(backend, key), named, key)
    except CorruptObjectError as error:
        raise ObjectDamage("corrupt", str(error).partition("; ")[0]) from None
    return table.hash


def _file_digest(backend: Backend, key: str) -> str:
    """BLAKE3 of a stored dataset file's bytes, streamed."""
    hasher = blake3()
    path = backend.local_path(key)
    with open(path, "rb") if path is not None else backend.open(key) as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return str(hasher.hexdigest())


REGISTRY_OBJECTS: Final = ObjectKind(name="registry", prefix=REGISTRIES_PREFIX,
                                     suffix=".parquet", digest_of=_registry_digest)
"""Registry tables. No ``recover``: a registry's version label lives only in its event."""

FILE_OBJECTS: Final = ObjectKind(name="file", prefix=FILES_PREFIX, suffix="",
                                 digest_of=_file_digest)
"""Datasets' bytes, stored by ``link(..., copy=True)``."""

register_object_kind(REGISTRY_OBJECTS)
register_object_kind(FILE_OBJECTS)
register_reference(Reference(event="link", column="hash", object_kind="set", records=False))
register_reference(Reference(event="registry", column="hash", object_kind="registry"))
register_reference(Reference(event="dataset", column="dataset", object_kind="file",
                             where="copied"))
