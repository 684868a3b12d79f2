"""The storage contract shared by all backends."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

__all__ = ["UPDATE_LOCK", "Backend", "Entry"]

UPDATE_LOCK: Final = "index/lock"
"""The lock that serialises :meth:`Backend.update` where there is no compare-and-swap."""


@dataclass(frozen=True)
class Entry:
    """A stored key with its size in bytes and modification time (seconds since the epoch)."""

    key: str
    size: int
    mtime: float


class Backend(abc.ABC):
    """Byte storage for one store.

    Implementations guarantee:

    * :meth:`create` publishes all of ``data`` or nothing, never replaces an existing key,
      and has made the bytes durable when it returns True.
    * :meth:`read` of a key returns exactly what was created.
    * :meth:`replace` swaps a small mutable document atomically.
    """

    url: str

    @abc.abstractmethod
    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``; FileNotFoundError if absent."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for streaming reads; FileNotFoundError if absent."""

    @abc.abstractmethod
    def create(self, key: str, data: bytes, *, readonly: bool = True) -> bool:
        """Atomically create ``key`` holding ``data``; False (and no change) if it exists."""

    @abc.abstractmethod
    def create_from_file(self, key: str, path: str, *, readonly: bool = True) -> bool:
        """Like :meth:`create`, streaming the content of a local file."""

    @abc.abstractmethod
    def replace(self, key: str, data: bytes) -> None:
        """Atomically set ``key`` to ``data``, replacing any previous value."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abc.abstractmethod
    def list(self, prefix: str, *, temporary: bool = False) -> Iterator[Entry]:
        """Every key under the folder ``prefix``, recursively, in no particular order.

        Temporary files of writes in progress are left out unless ``temporary`` is True.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every key of ``keys``, in no particular order; none need exist.

        The default deletes one key at a time; object stores delete in batches.
        """
        for key in keys:
            self.delete(key)

    def lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[object]:
        """A lock that narrows contention between writers; correctness never depends on it.

        The default does nothing: backends without locks rely on exclusive :meth:`create`.
        """
        return contextlib.nullcontext()

    def update(self, key: str, change: Callable[[bytes | None], bytes],
               *, timeout: float = 60.0) -> bytes:
        """Read ``key``, pass its bytes (None if absent) to ``change``, store the result.

        No concurrent update is lost: ``change`` may run more than once, each time on the
        latest value, and must not have side effects. Returns what was stored.

        The default holds :meth:`lock` around the read and the :meth:`replace`. Where locks
        silently do nothing (NFS without lock support), two updates at the same instant can
        still lose one; object stores override this with a conditional write.
        """
        with self.lock(UPDATE_LOCK, timeout):
            try:
                current: bytes | None = self.read(key)
            except FileNotFoundError:
                current = None
            updated = change(current)
            if updated != current:
                self.replace(key, updated)
            return updated

    def local_path(self, key: str) -> str | None:
        """The key's path on the local file system, when there is one."""
        return None

    def move(self, key: str, target: str) -> bool:
        """Move ``key`` to ``target`` (quarantine); False (and no change) if ``target`` exists.

        The default copies then deletes; backends with a rename override it.
        """
        if self.exists(target):
            return False
        if not self.create(target, self.read(key)):
            return False
        self.delete(key)
        return True

    def ensure_folder(self, prefix: str) -> None:
        """Create the folder ``prefix`` if missing; backends without folders do nothing."""
        return None

    def prune(self, prefix: str) -> None:
        """Remove empty folders under ``prefix``; backends without folders do nothing."""
        return None

    def break_lock(self, name: str, *, force: bool = False) -> dict[str, object] | None:
        """Break the lock ``name``; returns its holder (pid, host, since) or None.

        The default has no lock to break.
        """
        return None

    def keys(self, prefix: str, *, temporary: bool = False) -> Iterator[str]:
        """The keys :meth:`list` yields, without their sizes and times (cheaper on folders)."""
        return (entry.key for entry in self.list(prefix, temporary=temporary))

    def folders(self, prefix: str) -> tuple[str, ...]:
        """Names of the folders directly under ``prefix`` (for object stores: the common
        prefixes of the keys under it)."""
        start = len(prefix) + 1
        return tuple(sorted({key[start:].partition("/")[0]
                             for key in self.keys(prefix, temporary=True)
                             if "/" in key[start:]}))
