"""A store in a folder of the local file system, or a mounted network share.

Every new file is written to a temporary file in its destination folder, fsynced, given its
final mode, then published under its name with a hard link (which never replaces anything),
and the folder is fsynced. Where the file system refuses hard links (object-store mounts,
some FUSE file systems), the file is published by rename after an existence check; where it
refuses renames too, the file is written in place, created exclusively (see ``_publish``).

A write the file system refuses (disk full, quota, I/O error) raises
:class:`~fsstore.errors.StorageError` and leaves no temporary file and no new key behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

from fsstore.backend.base import Backend, Entry
from fsstore.degraded import warn_degraded
from fsstore.errors import StorageError

__all__ = ["TEMPORARY_PREFIX", "LocalBackend"]

log = logging.getLogger(__name__)

TEMPORARY_PREFIX: Final = ".fsstore-tmp-"
"""Names of files being written start with this; they are never read as content."""

# errno values meaning "this file system cannot do that here", as on object-store mounts.
_UNSUPPORTED: Final = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK,
     errno.EINVAL}
)
_CHUNK: Final = 1 << 20
_PUBLISH_ATTEMPTS: Final = 3


class _TemporaryVanishedError(Exception):
    """The temporary file was removed before it could be published."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause

_Writer = Callable[[int], None]
"""Writes a file's content to an open descriptor."""


class LocalBackend(Backend):
    """Keys are files below ``root``; writes go through a temporary file and a hard link.

    Parameters
    ----------
    root
        The store folder.
    shared
        Make new folders group-writable with the setgid bit and new files group-readable,
        whatever the writer's umask, so that a team can share the store.
    """

    def __init__(self, root: str | os.PathLike[str], *, shared: bool = False) -> None:
        self.root = Path(os.path.abspath(root))
        self.url = str(self.root)
        self.shared = shared
        self._warned_chmod = False

    # -- reading --------------------------------------------------------------------------

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def local_path(self, key: str) -> str:
        return str(self._path(key))

    def list(self, prefix: str, *, temporary: bool = False) -> Iterator[Entry]:
        for key, entry in self._walk(prefix, temporary):
            try:
                status = entry.stat()
            except FileNotFoundError:
                continue  # removed while we were listing
            yield Entry(key, status.st_size, status.st_mtime)

    def keys(self, prefix: str, *, temporary: bool = False) -> Iterator[str]:
        return (key for key, _ in self._walk(prefix, temporary))

    def folders(self, prefix: str) -> tuple[str, ...]:
        # One directory read: on a local file system it cannot interleave with the creation
        # or removal of an entry, so a folder that exists throughout is always listed.
        try:
            with os.scandir(self._path(prefix)) as entries:
                return tuple(sorted(entry.name for entry in entries if entry.is_dir()))
        except FileNotFoundError:
            return ()

    def _walk(self, prefix: str, temporary: bool) -> Iterator[tuple[str, os.DirEntry[str]]]:
        top = str(self._path(prefix)) if prefix else str(self.root)
        start = len(str(self.root)) + 1
        pending = [top]
        while pending:
            folder = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed while we were listing
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                        continue
                except FileNotFoundError:
                    continue
                if entry.name.startswith(TEMPORARY_PREFIX) and not temporary:
                    continue
                key = entry.path[start:]
                if os.sep != "/":  # pragma: no cover - Windows separators
                    key = key.replace(os.sep, "/")
                yield key, entry

    # -- writing --------------------------------------------------------------------------

    def create(self, key: str, data: bytes, *, readonly: bool = True) -> bool:
        def write(descriptor: int) -> None:
            _write_all(descriptor, memoryview(data))

        return self._publish(key, write, readonly=readonly)

    def create_from_file(self, key: str, path: str, *, readonly: bool = True) -> bool:
        def write(descriptor: int) -> None:
            source = os.open(path, os.O_RDONLY)
            try:
                while chunk := os.read(source, _CHUNK):
                    _write_all(descriptor, memoryview(chunk))
            finally:
                os.close(source)

        return self._publish(key, write, readonly=readonly)

    def replace(self, key: str, data: bytes) -> None:
        final = self._path(key)
        self._make_folder(final.parent)
        temporary = self._write_temporary(
            final, lambda descriptor: _write_all(descriptor, memoryview(data)), False)
        try:
            os.replace(temporary, final)
        except OSError as error:
            raise _storage_error(error, final, "replacing") from error
        finally:
            _remove_quietly(temporary)
        _fsync_folder(final.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def ensure_folder(self, prefix: str) -> None:
        self._make_folder(self._path(prefix))

    def prune(self, prefix: str) -> None:
        top = self._path(prefix)
        for folder, _, _ in sorted(os.walk(top), key=lambda walked: -len(walked[0])):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only succeeds when empty

    def move(self, key: str, target: str) -> bool:
        source, final = self._path(key), self._path(target)
        if final.exists():
            return False
        self._make_folder(final.parent)
        try:
            os.link(source, final)
        except FileExistsError:
            return False
        except OSError as error:
            if not source.exists():
                raise FileNotFoundError(errno.ENOENT, "no such file to move", str(source)) \
                    from error
            if error.errno not in _UNSUPPORTED:
                raise _storage_error(error, final, "moving") from error
            try:
                os.rename(source, final)
            except FileNotFoundError:
                raise
            except OSError as renamed:
                raise _storage_error(renamed, final, "moving") from renamed
            _fsync_folder(final.parent)
            return True
        _fsync_folder(final.parent)
        self.delete(key)
        return True

    def lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[object]:
        from fsstore.lock import StoreLock

        path = self._path(name)
        self._make_folder(path.parent)  # with the shared mode, not as the lock would
        return StoreLock(path, timeout=timeout, shared=self.shared,
                         unlock_hint=f"fsstore unlock --store {self.root}")

    def break_lock(self, name: str, *, force: bool = False) -> dict[str, object] | None:
        from fsstore.lock import break_lock

        holder = break_lock(self._path(name), force=force)
        if holder is None:
            return None
        return {"pid": holder.pid, "host": holder.host, "since": holder.since}

    # -- internals ------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        if not key:
            return self.root
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts) or "\\" in key or "\x00" in key:
            raise ValueError(f"invalid store key {key!r}")
        return self.root.joinpath(*parts)

    def _publish(self, key: str, write: _Writer, *, readonly: bool) -> bool:
        final = self._path(key)
        if final.exists():
            return False
        created = False
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            self._make_folder(final.parent)
            temporary = self._write_temporary(final, write, readonly)
            try:
                published = self._link_or_rename(temporary, final)
                created = (self._write_in_place(final, write, readonly) if published is None
                           else published)
                break
            except _TemporaryVanishedError as error:
                # Someone removed it while it was written (`fsstore gc --grace 0`, which
                # takes temporary files of any age): write it again.
                if attempt == _PUBLISH_ATTEMPTS:
                    raise StorageError(
                        f"cannot write {final}: its temporary file was removed while it was "
                        f"written, {attempt} times (by a `fsstore gc` with a grace period "
                        "shorter than a write?); nothing was stored. Try again, and give gc "
                        "a longer --grace while others write", str(final)) from error.cause
                log.warning("temporary file %s vanished before it was published; writing "
                            "it again", temporary)
            finally:
                _remove_quietly(temporary)
        if created:
            _fsync_folder(final.parent)
            log.debug("created %s", final)
        return created

    def _link_or_rename(self, temporary: Path, final: Path) -> bool | None:
        """Publish ``temporary`` as ``final``; None if this file system can do neither."""
        try:
            os.link(temporary, final)
            return True
        except FileExistsError:
            return False
        except FileNotFoundError as error:
            raise _TemporaryVanishedError(error) from error
        except OSError as error:
            if error.errno not in _UNSUPPORTED:
                raise _storage_error(error, final, "publishing") from error
        # No hard links here. Rename does replace an existing file, so check first; two
        # writers racing through this window both publish complete files under one name,
        # and for content-addressed keys their content is the same, so nothing is lost.
        # (Journal commits hold different content: there the lock, which such file systems
        # usually do support, is what keeps two writers out of this window.)
        if final.exists():
            return False
        warn_degraded(log, "no-link", final.parent, "the file system under %s has no hard "
                      "links; publishing files by rename after an existence check",
                      final.parent)
        try:
            os.rename(temporary, final)
            return True
        except FileNotFoundError as error:
            raise _TemporaryVanishedError(error) from error
        except OSError as error:
            if error.errno not in _UNSUPPORTED:
                raise _storage_error(error, final, "publishing") from error
        warn_degraded(log, "no-rename", final.parent, "the file system under %s has neither "
                      "hard links nor renames; writing files in place (a crash can leave a "
                      "torn file, which readers detect)", final.parent)
        return None

    def _write_in_place(self, final: Path, write: _Writer, readonly: bool) -> bool:
        """Create ``final`` exclusively and write it directly: the last resort.

        Object-store mounts that support neither links nor renames publish a file when it
        is closed, so this is atomic there. Elsewhere a crash in the middle leaves a torn
        file: readers detect it (manifests by their hash, commits by their checksum) and
        ``fsstore verify --repair`` moves it to quarantine.
        """
        try:
            descriptor = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            raise _storage_error(error, final, "creating") from error
        try:
            self._fill(descriptor, final, write, readonly)
        except BaseException:
            _remove_quietly(final)
            raise
        return True

    def _write_temporary(self, final: Path, write: _Writer, readonly: bool) -> Path:
        temporary = final.parent / f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}-{final.name}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as error:
            raise _storage_error(error, final, "creating a temporary file for") from error
        try:
            self._fill(descriptor, final, write, readonly)
        except BaseException:
            _remove_quietly(temporary)
            raise
        return temporary

    def _fill(self, descriptor: int, final: Path, write: _Writer, readonly: bool) -> None:
        """Write, set the mode, fsync and close ``descriptor``; typed errors, always closed."""
        step = "writing"
        try:
            write(descriptor)
            self._set_mode(descriptor, final, 0o444 if readonly else 0o644)
            step = "flushing (fsync)"
            os.fsync(descriptor)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.close(descriptor)
            raise _storage_error(error, final, step) from error
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(descriptor)
            raise
        try:
            os.close(descriptor)  # NFS reports deferred write errors here
        except OSError as error:
            raise _storage_error(error, final, "closing") from error

    def _make_folder(self, folder: Path) -> None:
        if folder.is_dir():
            return
        missing = []
        current = folder
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise _storage_error(error, path, "creating the folder") from error
            if self.shared:
                self.share_folder(path)
            _fsync_folder(path.parent)

    def share_folder(self, path: Path) -> None:
        """Make a folder group-writable with the setgid bit (new files take its group)."""
        try:
            os.chmod(path, (path.stat().st_mode & 0o7777) | 0o2770)
        except OSError as error:
            # A folder made by a teammate: its owner already set its mode.
            log.debug("could not chmod folder %s: %s; leaving its mode as is", path, error)

    def _set_mode(self, descriptor: int, final: Path, mode: int) -> None:
        if self.shared:
            mode |= 0o060 if mode & 0o200 else 0o040
        try:
            os.fchmod(descriptor, mode)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP,
                                   errno.ENOSYS):
                raise
            # Documented fallback: some mounts refuse chmod; the file keeps the mode it was
            # created with. Integrity does not depend on it (every read checks the hash).
            level = logging.DEBUG if self._warned_chmod else logging.WARNING
            self._warned_chmod = True
            log.log(level, "cannot set the mode of files under %s (%s); they keep their "
                    "default mode", final.parent, error.strerror)


def _write_all(descriptor: int, data: memoryview) -> None:
    while data:
        written = os.write(descriptor, data[:_CHUNK])
        data = data[written:]


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        # Some file systems (network mounts) refuse fsync on folders. The file itself was
        # fsynced and is published, so failing now would report a save that did happen;
        # only the durability of the new name across a power loss is weakened.
        level = logging.WARNING if error.errno == errno.EIO else logging.DEBUG
        log.log(level, "fsync of folder %s failed: %s", folder, error)
    finally:
        with contextlib.suppress(OSError):
            os.close(descriptor)  # read-only: nothing can be lost here


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("could not remove the temporary file %s: %s; `fsstore gc` removes it "
                    "later", path, error)


_REASONS: Final = {
    errno.ENOSPC: "the disk is full; free space and retry",
    errno.EDQUOT: "the disk quota is exceeded; free space or raise the quota and retry",
    errno.EIO: "the file system reported an I/O error; check the disk or mount, then run "
    "`fsstore verify`",
    errno.EACCES: "permission denied; check the store folder's owner and mode",
    errno.EPERM: "operation not permitted; check the store folder's owner and mode",
    errno.EROFS: "the file system is read-only",
    errno.ENOTSUP: "the file system does not support this operation",
    errno.EXDEV: "the file system does not support this operation",
}


def _storage_error(error: OSError, path: Path, step: str) -> StorageError:
    code = error.errno or 0
    reason = _REASONS.get(code, error.strerror or str(error))
    name = errno.errorcode.get(code, "error")
    return StorageError(f"cannot write {path}: {reason} ({name} while {step}); "
                        "nothing was stored", str(path), code)
