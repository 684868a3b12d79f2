"""The store's write lock: an ``flock`` where the file system has one, plus a holder marker.

The lock only narrows contention. Correctness of the index never depends on it: commits
are created exclusively and a writer that loses the race retries (see ``fsstore.index``).

Taking the lock at ``index/lock`` is two steps:

1. ``flock`` on ``index/lock`` (the file itself stays in place). The kernel releases it when
   its holder dies, so a killed writer never blocks the others on its own machine. Where the
   file system has no ``flock`` (``ENOLCK`` on NFS without a lock daemon, ``ENOTSUP`` on some
   FUSE mounts), this step is skipped.
2. The **holder marker** ``index/lock.holder``, created exclusively with the holder's pid,
   host and start time. It excludes writers on other machines, where ``flock`` may silently
   do nothing (NFS mounted ``nolock``), and it names the holder in timeout errors.

A marker left by a dead holder is broken only when that holder is known to be gone: it was
made on this machine (same host name, boot and pid namespace) and either this process holds
the ``flock`` (so the marker's maker cannot be holding the lock) or its process is not
running. A marker from another machine, or with a time in the future, is never broken on
age: ``fsstore unlock`` breaks it after a person has checked.

filelock is not used: 3.12 (our lowest supported version) has no holder record, and 4.x
falls back to its own marker at the lock path only on ``ENOSYS``, so the behaviour would
depend on the installed version.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from fsstore.degraded import warn_degraded
from fsstore.errors import LockTimeoutError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; the marker alone excludes
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "Holder",
    "StoreLock",
    "break_lock",
    "holder_state",
    "read_holder",
]

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT: Final = 60.0
HOLDER_SUFFIX: Final = ".holder"
FUTURE_TOLERANCE: Final = 300.0
"""Seconds a marker's time may lie ahead of our clock before it counts as "in the future"."""
_NO_FLOCK: Final = frozenset({errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                              errno.EINVAL})
_NO_LINK: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                             errno.EMLINK, errno.EXDEV, errno.EINVAL})
_BUSY: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})
_MAX_POLL: Final = 0.01


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as recorded in its marker."""

    pid: int
    host: str
    since: float
    machine: str | None = None
    """Boot id and pid namespace: tells two machines with one host name apart."""
    started: int | None = None
    """The process's start time in clock ticks since boot (Linux), to detect pid reuse."""
    token: str = ""
    flock: bool = False
    """The holder also took the flock (so whoever holds the flock now outlived it)."""

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on host {self.host} since {since}"


def _machine() -> str | None:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"


def _process_start(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after its closing paren are plain.
    return int(stat.rpartition(")")[2].split()[19])


def _me(flock: bool = False) -> Holder:
    return Holder(pid=os.getpid(), host=socket.gethostname(), since=time.time(),
                  machine=_machine(), started=_process_start(os.getpid()),
                  token=secrets.token_hex(8), flock=flock)


def _encode(holder: Holder) -> bytes:
    return json.dumps({"pid": holder.pid, "host": holder.host, "since": holder.since,
                       "machine": holder.machine, "started": holder.started,
                       "token": holder.token, "flock": holder.flock}).encode()


def _decode(data: bytes) -> Holder | None:
    try:
        record = json.loads(data)
        return Holder(pid=int(record["pid"]), host=str(record["host"]),
                      since=float(record["since"]), machine=record.get("machine"),
                      started=record.get("started"), token=str(record.get("token", "")),
                      flock=bool(record.get("flock", False)))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def holder_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + HOLDER_SUFFIX)


def read_holder(lock_path: Path) -> dict[str, Any] | None:
    """The recorded holder of the lock at ``lock_path`` as a dict, or None."""
    try:
        holder = _decode(holder_path(lock_path).read_bytes())
    except OSError:
        return None
    if holder is None:
        return None
    return {"pid": holder.pid, "host": holder.host, "since": holder.since,
            "machine": holder.machine}


def holder_state(holder: Holder) -> str:
    """``alive``, ``dead`` (its process is gone) or ``unknown`` (another machine, or future)."""
    here = _me()
    if holder.host != here.host or (holder.machine and here.machine
                                    and holder.machine != here.machine):
        return "unknown"
    if holder.since > time.time() + FUTURE_TOLERANCE:
        # A clock that ran backwards: the pid check below still holds, the time says nothing.
        log.debug("lock marker of pid %d has a time in the future", holder.pid)
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        pass  # the process exists and belongs to someone else
    if holder.started is not None:
        started = _process_start(holder.pid)
        if started is not None and started != holder.started:
            return "dead"  # the pid now belongs to another process
    return "alive"


class _Held:
    """What this process holds of one lock file: shared by all StoreLock objects on it."""

    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.count = 0
        self.descriptor: int | None = None
        self.holder: Holder | None = None


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _forget_after_fork() -> None:
    # A child does not hold its parent's locks; its descriptors close on exec or exit.
    global _HELD_GUARD
    _HELD.clear()
    _HELD_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


class StoreLock:
    """The lock at ``path``: re-entrant in one thread, exclusive between threads and processes.

    Parameters
    ----------
    path
        The lock file (``index/lock``); the marker is ``path`` + ``.holder``.
    timeout
        Seconds to wait; 0 tries once.
    shared
        Make the lock file group-writable (a store shared by a team).
    unlock_hint
        The command that breaks this lock, quoted in timeout errors.
    """

    def __init__(self, path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT,
                 shared: bool = False, unlock_hint: str = "fsstore unlock") -> None:
        self.path = path
        self.timeout = timeout
        self.shared = shared
        self.unlock_hint = unlock_hint
        self.marker = holder_path(path)

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()

    # -- acquiring ------------------------------------------------------------------------

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        held = self._held()
        taken = (held.mutex.acquire(timeout=self.timeout) if self.timeout > 0
                 else held.mutex.acquire(blocking=False))
        if not taken:
            raise self._timeout_error()
        try:
            if held.count == 0:
                self._acquire_files(held, deadline)
            held.count += 1
        except BaseException:
            held.mutex.release()
            raise

    def release(self) -> None:
        held = self._held()
        held.count -= 1
        try:
            if held.count == 0:
                self._release_files(held)
        finally:
            held.mutex.release()

    def _held(self) -> _Held:
        key = os.path.abspath(self.path)
        with _HELD_GUARD:
            return _HELD.setdefault(key, _Held())

    def _acquire_files(self, held: _Held, deadline: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = self._open_lock_file()
        flocked: bool | None = False
        delay = 0.001
        try:
            while True:
                if descriptor is not None and not flocked:
                    flocked = self._try_flock(descriptor)
                    if flocked is None:
                        os.close(descriptor)
                        descriptor = None
                if descriptor is None or flocked:
                    me = _me(flock=bool(flocked))
                    if self._create_marker(me):
                        held.descriptor = descriptor
                        held.holder = me
                        log.debug("acquired %s (%s)", self.path,
                                  "flock and marker" if flocked else "marker only")
                        return
                    if self._break_if_stale(same_machine_excluded=bool(flocked)):
                        continue
                if time.monotonic() >= deadline:
                    raise self._timeout_error()
                time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                delay = min(delay * 2, _MAX_POLL) * random.uniform(0.8, 1.2)
        except BaseException:
            if descriptor is not None:
                os.close(descriptor)  # closing drops the flock too
            raise

    def _open_lock_file(self) -> int | None:
        """The lock file's descriptor, or None where it cannot be opened (marker only)."""
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                descriptor = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
            except PermissionError:
                continue
            except OSError as error:
                raise StorageError(f"cannot open the store lock {self.path}: "
                                   f"{error.strerror}", str(self.path)) from error
            if self.shared:
                with contextlib.suppress(OSError):
                    os.fchmod(descriptor, 0o664)
            return descriptor
        warn_degraded(log, "no-lock-file", self.path.parent,
                      "cannot open the lock file %s; locking by its holder marker alone",
                      self.path)
        return None

    def _try_flock(self, descriptor: int) -> bool | None:
        """True if taken, False if busy, None if this file system has no flock."""
        if fcntl is None:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in _BUSY:
                return False
            if error.errno in _NO_FLOCK or error.errno == errno.EBADF:
                warn_degraded(log, "no-flock", self.path.parent,
                              "the file system of %s has no flock (%s); locking by the "
                              "holder marker alone, which a killed holder on another "
                              "machine leaves behind", self.path, error.strerror)
                return None
            raise StorageError(f"cannot lock {self.path}: {error.strerror}",
                               str(self.path)) from error
        return True

    def _create_marker(self, me: Holder) -> bool:
        temporary = self.marker.with_name(f".fsstore-tmp-{me.token}-{self.marker.name}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(descriptor, _encode(me))
                if self.shared:
                    with contextlib.suppress(OSError):
                        os.fchmod(descriptor, 0o664)
            finally:
                os.close(descriptor)
            try:
                os.link(temporary, self.marker)
                return True
            except FileExistsError:
                return False
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
            # No hard links: create the marker in place; it is small enough for one write.
            warn_degraded(log, "no-link", self.marker.parent,
                          "the file system of %s has no hard links; creating lock markers "
                          "in place", self.marker)
            try:
                descriptor = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o664)
            except FileExistsError:
                return False
            try:
                os.write(descriptor, _encode(me))
            finally:
                os.close(descriptor)
            return True
        except OSError as error:
            raise StorageError(f"cannot create the lock marker {self.marker}: "
                               f"{error.strerror}", str(self.marker)) from error
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()

    def _break_if_stale(self, same_machine_excluded: bool) -> bool:
        """Remove the marker if its holder is known to be gone; True if removed (or gone)."""
        try:
            data = self.marker.read_bytes()
        except FileNotFoundError:
            return True  # released between our attempt and now
        except OSError:
            return False
        holder = _decode(data)
        if holder is None:
            return False  # unreadable: only a person may break it
        state = holder_state(holder)
        if state == "unknown":
            return False
        if state == "alive" and not (same_machine_excluded and holder.flock):
            return False
        if _remove_marker(self.marker, data):
            log.warning("broke the stale lock %s left by %s (its process is gone)",
                        self.marker, holder.describe())
        return True

    # -- releasing ------------------------------------------------------------------------

    def _release_files(self, held: _Held) -> None:
        try:
            data = self.marker.read_bytes()
            current = _decode(data)
            if held.holder is not None and current is not None \
                    and current.token == held.holder.token:
                self.marker.unlink()
            else:
                log.warning("the lock marker %s was replaced while this process held the "
                            "lock (someone ran `fsstore unlock`?)", self.marker)
        except FileNotFoundError:
            log.warning("the lock marker %s vanished while this process held the lock",
                        self.marker)
        except OSError as error:
            log.warning("could not remove the lock marker %s: %s", self.marker, error)
        finally:
            held.holder = None
            if held.descriptor is not None:
                os.close(held.descriptor)
                held.descriptor = None
            log.debug("released %s", self.path)

    def _timeout_error(self) -> LockTimeoutError:
        try:
            holder = _decode(self.marker.read_bytes())
            unreadable = holder is None
        except OSError:
            holder, unreadable = None, False
        if holder is not None:
            who = f"held by {holder.describe()}"
            if holder_state(holder) == "unknown":
                who += "; fsstore cannot tell from here whether that process still runs"
        elif unreadable:
            who = f"its holder record {self.marker} is unreadable"
        elif flock_held(self.path):
            who = ("a process on this machine holds the lock file and left no holder "
                   f"record; `fuser -v {self.path}` names it")
        else:
            who = "its holder is unknown"
        return LockTimeoutError(
            f"timed out after {self.timeout:g}s waiting for the store lock {self.path} "
            f"({who}); if that process is gone, run `{self.unlock_hint}`",
            str(self.path),
        )


def _remove_marker(marker: Path, expected: bytes) -> bool:
    """Remove ``marker`` if it still holds ``expected``; never removes a newer marker."""
    aside = marker.with_name(f".fsstore-tmp-{secrets.token_hex(8)}-broken-{marker.name}")
    try:
        os.rename(marker, aside)
    except FileNotFoundError:
        return False
    except OSError:
        # No rename here: compare and remove, accepting a tiny window.
        with contextlib.suppress(OSError):
            if marker.read_bytes() == expected:
                marker.unlink()
                return True
        return False
    try:
        if aside.read_bytes() == expected:
            return True
        # We moved a marker made since we looked: put it back unless a newer one exists.
        with contextlib.suppress(FileExistsError):
            os.link(aside, marker)
        return False
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()


def flock_held(lock_path: Path) -> bool:
    """Whether a process holds the ``flock`` of ``lock_path`` (False where there is none)."""
    if fcntl is None:
        return False
    try:
        descriptor = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in _BUSY
    else:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


def break_lock(lock_path: Path, *, force: bool = False) -> Holder | None:
    """Remove the lock marker at ``lock_path``; returns who held it (None if nobody).

    Refuses (``LockTimeoutError``) when the holder is a running process on this machine,
    unless ``force``.
    """
    marker = holder_path(lock_path)
    try:
        data = marker.read_bytes()
    except FileNotFoundError:
        return None
    holder = _decode(data)
    if holder is not None and holder_state(holder) == "alive":
        if flock_held(lock_path):
            # Removing the record would not free the lock: the kernel keeps the flock
            # until that process ends, and writers keep waiting for it.
            raise LockTimeoutError(
                f"the store lock {lock_path} is held by {holder.describe()}, which is still "
                f"running on this machine and holds the lock file; wait for it or stop it "
                f"(`kill {holder.pid}`): no unlock can take a lock from a running process",
                str(lock_path),
            )
        if not force:
            raise LockTimeoutError(
                f"the store lock {lock_path} names {holder.describe()}, and a process with "
                "that pid runs on this machine but does not hold the lock file (its pid was "
                "reused?); pass --force to break the record",
                str(lock_path),
            )
    if not _remove_marker(marker, data):
        return None
    log.warning("broke the lock %s held by %s", lock_path,
                holder.describe() if holder else "an unreadable holder record")
    return holder or Holder(pid=0, host="?", since=0.0)
