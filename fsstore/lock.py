"""The store's write lock: short, visible scopes, with the holder named when it times out.

The lock only narrows contention. Correctness of the index never depends on it: commits
are created exclusively and a writer that loses the race retries (see ``fsstore.index``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import filelock

from fsstore.errors import LockTimeoutError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "StoreLock", "read_holder"]

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT: Final = 60.0
_HOLDER_SUFFIX: Final = ".holder"


class StoreLock:
    """A file lock at ``path``, re-entrant within one thread, that records its holder."""

    def __init__(self, path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT,
                 shared: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        self._holder_path = path.with_name(path.name + _HOLDER_SUFFIX)
        mode = 0o666 if shared else -1
        self._lock = filelock.FileLock(str(path), timeout=timeout, mode=mode)

    def __enter__(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        log.debug("acquiring %s", self.path)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise self._timeout_error() from None
        if self._lock.lock_counter == 1:
            self._write_holder()
        log.debug("acquired %s", self.path)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._lock.lock_counter == 1:
            with contextlib.suppress(OSError):
                self._holder_path.unlink()
        self._lock.release()
        log.debug("released %s", self.path)

    def _write_holder(self) -> None:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        try:
            self._holder_path.write_text(json.dumps(holder))
        except OSError as error:
            log.debug("could not record the lock holder in %s: %s", self._holder_path, error)

    def _timeout_error(self) -> LockTimeoutError:
        holder = read_holder(self.path)
        if holder:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
            who = f"held by pid {holder.get('pid')} on {holder.get('host')} since {since}"
        else:
            who = "its holder is unknown"
        return LockTimeoutError(
            f"timed out after {self.timeout:g}s waiting for the store lock {self.path} "
            f"({who}); if that process is gone, run `fsstore unlock`",
            str(self.path),
        )


def read_holder(path: Path) -> dict[str, Any] | None:
    """The recorded holder of the lock at ``path``, or None."""
    try:
        holder = json.loads(path.with_name(path.name + _HOLDER_SUFFIX).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None
