"""Copying the immutable objects a store lacks, each checked before it is installed.

Everything under ``objects/`` is immutable and named by its content, so two stores holding
the same key hold the same bytes, and a key that one side lacks is exactly what must be
copied: one listing of each side decides the transfer. Each object travels through a
local file (or is read in place when the source is a local folder), is checked by the
rule of its kind (the folder right under ``objects/``), and only then is created on the
other side, exclusively, so a corrupt object never lands and an existing one is never
overwritten.

Kinds and their rules:

* ``objects/sets/``: a manifest; reading it recomputes the set's hash from its rows and
  metadata, which must equal the hash in its name (:func:`fsstore.manifest.decode_manifest`).
* ``objects/registries/``: a registry table; its canonical hash is recomputed from its
  records (:func:`fsstore.registry.table.decode_registry`) and must equal its name.
* any other kind, unless a rule is registered for it with :func:`register_verifier`: the
  object's file name must start with the BLAKE3 (64 hex digits) of its bytes. Objects of
  a kind whose names carry no such digest cannot be checked, and are not copied.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Protocol

from blake3 import blake3

from fsstore.backend import Backend, Entry
from fsstore.errors import CorruptObjectError, StorageError, StoreFormatError
from fsstore.manifest import SETS_PREFIX, decode_manifest, manifest_key
from fsstore.registry.table import REGISTRIES_PREFIX, decode_registry, registry_key

__all__ = [
    "OBJECTS_PREFIX",
    "VERIFIERS",
    "Progress",
    "TransferPlan",
    "TransferResult",
    "Verifier",
    "plan_transfer",
    "register_verifier",
    "transfer",
    "verify_object",
]

log = logging.getLogger(__name__)

OBJECTS_PREFIX: Final = "objects"
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_CHUNK: Final = 1 << 20
_WORKERS: Final = 8

Verifier = Callable[[str, str], None]
"""A kind's rule: ``verify(key, path)`` raises :class:`CorruptObjectError` if the file at
``path`` is not what ``key`` names."""


class Progress(Protocol):
    """What a transfer reports as it goes (the command line draws bars from it)."""

    def planned(self, objects: int, size: int) -> None:
        """The transfer will copy ``objects`` objects holding ``size`` bytes."""

    def copied(self, key: str, size: int) -> None:
        """One object was handled (copied, found already there, or refused)."""


def verify_manifest_file(key: str, path: str) -> None:
    """A manifest must sit at its hash's key and hash to the hash in its name."""
    name = key.rpartition("/")[2]
    hash_hex = name.removesuffix(".parquet")
    if not _HEX64.match(hash_hex) or manifest_key(hash_hex) != key:
        raise CorruptObjectError(
            f"{key} is not where a manifest belongs (expected "
            f"{SETS_PREFIX}/<2 hex>/<64 hex>.parquet); it was misplaced or renamed",
            key,
        )
    decode_manifest(path, hash_hex, key)


def verify_content_digest(key: str, path: str) -> None:
    """The default rule: the file name starts with the BLAKE3 of the file's bytes."""
    name = key.rpartition("/")[2]
    stem = name.split(".", 1)[0]
    if not _HEX64.match(stem):
        kind = _kind(key)
        raise StoreFormatError(
            f"{key}: fsstore has no rule to check objects of kind {kind!r} and the name "
            "carries no content digest, so it cannot be verified and is not copied; "
            "upgrade fsstore on this side"
        )
    hasher = blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    actual = hasher.hexdigest()
    if actual != stem:
        raise CorruptObjectError(
            f"{key} hashes to {actual}, not to the digest in its name; it is damaged. "
            "Run `fsstore verify --repair` where it came from",
            key,
            stem,
        )


def verify_registry_file(key: str, path: str) -> None:
    """A registry table must sit at its hash's key and hash to the hash in its name."""
    hash_hex = key.rpartition("/")[2].removesuffix(".parquet")
    if not _HEX64.match(hash_hex) or registry_key(hash_hex) != key:
        raise CorruptObjectError(
            f"{key} is not where a registry table belongs (expected "
            f"{REGISTRIES_PREFIX}/<2 hex>/<64 hex>.parquet); it was misplaced or renamed",
            key,
        )
    decode_registry(path, hash_hex, key)


VERIFIERS: Final[dict[str, Verifier]] = {
    SETS_PREFIX.rpartition("/")[2]: verify_manifest_file,
    REGISTRIES_PREFIX.rpartition("/")[2]: verify_registry_file,
}
"""Rules by kind (the folder right under ``objects/``); other kinds use the digest rule."""


def register_verifier(kind: str, verifier: Verifier) -> None:
    """Check objects under ``objects/<kind>/`` with ``verifier`` when they are copied."""
    VERIFIERS[kind] = verifier


def verify_object(key: str, path: str) -> None:
    """Check the object at ``path`` against its key by the rule of its kind."""
    VERIFIERS.get(_kind(key), verify_content_digest)(key, path)


@dataclass
class TransferPlan:
    """What one side has and the other lacks, from one listing of each."""

    missing: list[Entry]
    """Objects to copy, in key order."""
    present: int
    """Objects both sides already hold."""
    differing: list[tuple[str, int, int]] = field(default_factory=list)
    """Keys both hold with different sizes (source, destination): one side is damaged."""
    held: set[str] = field(default_factory=set)
    """Every object key the destination held when it was listed."""

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.missing)


@dataclass
class TransferResult:
    """What a transfer did."""

    copied: list[str] = field(default_factory=list)
    size: int = 0
    """Bytes copied."""
    raced: list[str] = field(default_factory=list)
    """Keys another writer created on the destination while we were copying them."""
    refused: dict[str, str] = field(default_factory=dict)
    """Keys not installed, with the reason (damaged, unverifiable, unreadable)."""


def plan_transfer(source: Backend, destination: Backend) -> TransferPlan:
    """List both sides' objects and find those the destination lacks."""
    held = {entry.key: entry.size for entry in destination.list(OBJECTS_PREFIX)}
    missing: list[Entry] = []
    differing: list[tuple[str, int, int]] = []
    present = 0
    for entry in source.list(OBJECTS_PREFIX):
        size = held.get(entry.key)
        if size is None:
            missing.append(entry)
        elif size != entry.size:
            differing.append((entry.key, entry.size, size))
        else:
            present += 1
    missing.sort(key=lambda entry: entry.key)
    return TransferPlan(missing, present, sorted(differing), set(held))


def transfer(source: Backend, destination: Backend, entries: Iterable[Entry],
             progress: Progress | None = None, workers: int = _WORKERS) -> TransferResult:
    """Copy ``entries`` from ``source`` to ``destination``, verifying each on the way.

    Copies run on a few threads (object stores answer slowly but in parallel). An object
    that fails its check is reported in :attr:`TransferResult.refused` and not created.
    """
    result = TransferResult()
    entries = list(entries)
    with tempfile.TemporaryDirectory(prefix="fsstore-transfer-") as staging, \
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = pool.map(lambda entry: _copy_one(source, destination, entry, staging),
                            entries)
        for entry, (outcome, reason) in zip(entries, outcomes, strict=True):
            if outcome == "copied":
                result.copied.append(entry.key)
                result.size += entry.size
            elif outcome == "raced":
                result.raced.append(entry.key)
            else:
                result.refused[entry.key] = reason
                log.info("not copying %s: %s", entry.key, reason)
            if progress is not None:
                progress.copied(entry.key, entry.size)
    return result


def _copy_one(source: Backend, destination: Backend, entry: Entry,
              staging: str) -> tuple[str, str]:
    """Copy one object; returns ("copied" | "raced" | "refused", reason)."""
    try:
        local = source.local_path(entry.key)
        if local is not None:
            verify_object(entry.key, local)
            created = destination.create_from_file(entry.key, local)
        else:
            handle, path = tempfile.mkstemp(dir=staging)
            try:
                with os.fdopen(handle, "wb") as target, source.open(entry.key) as stream:
                    shutil.copyfileobj(stream, target, _CHUNK)
                verify_object(entry.key, path)
                created = destination.create_from_file(entry.key, path)
            finally:
                os.unlink(path)
    except StorageError:
        raise  # the destination refuses writes (full, denied): stop rather than refuse all
    except FileNotFoundError:
        return "refused", "it disappeared from the source while being copied"
    except (CorruptObjectError, StoreFormatError, OSError) as error:
        return "refused", str(error)
    return ("copied", "") if created else ("raced", "")


def _kind(key: str) -> str:
    parts = key.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == OBJECTS_PREFIX else ""
