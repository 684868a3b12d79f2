"""A store in a folder of the local file system, or a mounted network share."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

from fsstore.backend.base import Backend, Entry
from fsstore.errors import StorageError

__all__ = ["TEMPORARY_PREFIX", "LocalBackend"]

log = logging.getLogger(__name__)

TEMPORARY_PREFIX: Final = ".fsstore-tmp-"
"""Names of files being written start with this; they are never read as content."""

# errno values meaning "this file system cannot hard-link", as on object-store mounts.
_NO_LINK: Final = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}
)
_COPY_CHUNK: Final = 1 << 20

_Writer = Callable[[BinaryIO], object]


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
        self.root = Path(root).absolute()
        self.url = str(self.root)
        self.shared = shared

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
        top = self._path(prefix) if prefix else self.root
        for folder, _, files in os.walk(top):
            for file_name in files:
                if file_name.startswith(TEMPORARY_PREFIX) and not temporary:
                    continue
                path = os.path.join(folder, file_name)
                try:
                    status = os.stat(path)
                except FileNotFoundError:
                    continue  # removed while we were listing
                key = os.path.relpath(path, self.root).replace(os.sep, "/")
                yield Entry(key, status.st_size, status.st_mtime)

    # -- writing --------------------------------------------------------------------------

    def create(self, key: str, data: bytes, *, readonly: bool = True) -> bool:
        def write(handle: BinaryIO) -> None:
            handle.write(data)

        return self._publish(key, write, readonly=readonly)

    def create_from_file(self, key: str, path: str, *, readonly: bool = True) -> bool:
        def write(handle: BinaryIO) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, _COPY_CHUNK)

        return self._publish(key, write, readonly=readonly)

    def replace(self, key: str, data: bytes) -> None:
        final = self._path(key)
        self._make_folder(final.parent)
        temporary = self._write_temporary(final, lambda handle: handle.write(data), False)
        try:
            os.replace(temporary, final)
        except OSError as error:
            _remove_quietly(temporary)
            raise _storage_error(error, final) from error
        _fsync_folder(final.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[object]:
        from fsstore.lock import StoreLock

        return StoreLock(self._path(name), timeout=timeout, shared=self.shared)

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
        self._make_folder(final.parent)
        temporary = self._write_temporary(final, write, readonly)
        try:
            created = _link_or_rename(temporary, final)
        finally:
            _remove_quietly(temporary)
        if created:
            _fsync_folder(final.parent)
            log.debug("created %s", final)
        return created

    def _write_temporary(self, final: Path, write: _Writer, readonly: bool) -> Path:
        name = f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}-{final.name}"
        temporary = final.parent / name
        try:
            with open(temporary, "xb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            self._set_mode(temporary, 0o444 if readonly else 0o644)
        except BaseException as error:
            _remove_quietly(temporary)
            if isinstance(error, OSError):
                raise _storage_error(error, final) from error
            raise
        return temporary

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
                raise _storage_error(error, path) from error
            if self.shared:
                self._set_mode(path, 0o2775)
            _fsync_folder(path.parent)

    def _set_mode(self, path: Path, mode: int) -> None:
        if self.shared:
            mode |= 0o060 if mode & 0o200 else 0o040
        try:
            os.chmod(path, mode)
        except PermissionError:
            # A file or folder made by a teammate: its owner already set its mode.
            log.debug("could not chmod %s (not its owner); leaving its mode as is", path)


def _link_or_rename(temporary: Path, final: Path) -> bool:
    """Publish ``temporary`` as ``final`` without ever replacing an existing ``final``."""
    try:
        os.link(temporary, final)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_LINK:
            raise _storage_error(error, final) from error
    # No hard links here (object-store mounts, some FUSE file systems). Rename does replace
    # an existing file, so check first; two writers racing through this window both publish
    # complete files with the same name, and for content-addressed keys their content is
    # the same, so the loser's copy replacing the winner's loses nothing.
    if final.exists():
        return False
    log.debug("hard links unsupported under %s; publishing by rename", final.parent)
    try:
        os.rename(temporary, final)
    except OSError as error:
        raise _storage_error(error, final) from error
    return True


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        # Some file systems (network mounts) refuse fsync on folders; the data itself was
        # already fsynced, so this only weakens the durability of the new name.
        log.debug("fsync of folder %s failed: %s", folder, error)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _storage_error(error: OSError, path: Path) -> StorageError:
    reasons = {
        errno.ENOSPC: "the disk is full; free space and retry",
        errno.EDQUOT: "the disk quota is exceeded; free space or raise the quota and retry",
        errno.EIO: "the file system reported an I/O error; check the disk or mount, then run "
        "`fsstore verify`",
        errno.EACCES: "permission denied; check the store folder's owner and mode",
        errno.EPERM: "operation not permitted; check the store folder's owner and mode",
        errno.EROFS: "the file system is read-only",
    }
    reason = reasons.get(error.errno or 0, error.strerror or str(error))
    return StorageError(f"cannot write {path}: {reason}", str(path))
