"""Where stores are and how they are set up: ``fsstore.json``, users and store folders.

A store is a folder (or an object-store prefix) holding ``fsstore.json``, which says it is
a store, its layout version and its id. This module finds stores (``FSSTORE_DIR``, else the
nearest ``.fsstore`` folder upward), reads and checks that file, writes it for a new store,
and makes a store group-shared. ``fsstore.store.Store`` uses it to open and create stores.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Final

from fsstore.backend import Backend, LocalBackend, open_backend
from fsstore.backend.local import TEMPORARY_PREFIX
from fsstore.errors import StorageError, StoreExistsError, StoreFormatError, StoreNotFoundError
from fsstore.index.events import format_time, now
from fsstore.index.journal import JOURNAL_PREFIX
from fsstore.names import check_name

__all__ = [
    "DEFAULT_FOLDER",
    "ENV_STORE",
    "ENV_USER",
    "STORE_FILE",
    "STORE_FORMAT",
    "STORE_VERSION",
    "backend_at",
    "current_user",
    "find_store",
    "initialise",
    "is_path",
    "read_config",
    "share",
]

log = logging.getLogger(__name__)

STORE_FILE: Final = "fsstore.json"
STORE_FORMAT: Final = "fsstore.store"
STORE_VERSION: Final = 1
DEFAULT_FOLDER: Final = ".fsstore"
ENV_STORE: Final = "FSSTORE_DIR"
ENV_USER: Final = "FSSTORE_USER"
_STORE_FOLDERS: Final = frozenset({"objects", "index", "derived", "quarantine"})


def find_store(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``.fsstore`` store folder from ``start`` (default: cwd) upward."""
    folder = Path(start or os.getcwd()).absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / DEFAULT_FOLDER / STORE_FILE).is_file():
            return candidate / DEFAULT_FOLDER
    return None


def current_user() -> str:
    """``FSSTORE_USER`` if set, else the operating-system user."""
    configured = os.environ.get(ENV_USER)
    if configured:
        return check_name(configured, f"user ({ENV_USER})")
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def is_path(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a path (not a URL such as ``s3://bucket/prefix``)."""
    return not (isinstance(location, str) and "://" in location)


def backend_at(location: str | os.PathLike[str]) -> Backend:
    """The backend of an existing store; a folder holding ``.fsstore`` means that store."""
    if not is_path(location):
        return open_backend(str(location))
    root = Path(location).expanduser()
    if not (root / STORE_FILE).is_file() and (root / DEFAULT_FOLDER / STORE_FILE).is_file():
        root = root / DEFAULT_FOLDER
    return LocalBackend(root)


def _holds_store_data(root: Path) -> bool:
    """Whether a folder without a config holds nothing but a store's own folders."""
    if not root.is_dir():
        return False
    entries = {entry.name for entry in root.iterdir()}
    return bool(entries) and entries <= _STORE_FOLDERS and "objects" in entries


def read_config(backend: Backend) -> dict[str, Any]:
    """A store's ``fsstore.json``, checked; raises what is wrong and what to do about it."""
    where = f"{backend.url}/{STORE_FILE}"
    try:
        config = json.loads(backend.read(STORE_FILE))
    except FileNotFoundError:
        raise _missing_config(backend) from None
    except NotADirectoryError:
        raise StoreNotFoundError(f"{backend.url} is a file, not a store folder") from None
    except StorageError:
        raise  # the storage refused or could not be reached: says so itself; not damage
    except OSError as error:
        if error.errno is None:  # raised by a backend without an errno: not the disk
            raise StoreFormatError(f"cannot read {where}: {error}") from error
        raise StorageError(f"cannot read {where}: {error.strerror or error}; check the store "
                           "folder's owner, mode and disk", where) from error
    except ValueError as error:
        raise StoreFormatError(f"cannot read {where}: {error}; it is damaged, restore it "
                               "from a copy") from None
    if not isinstance(config, dict) or config.get("format") != STORE_FORMAT:
        raise StoreFormatError(f"{where} is not an fsstore store description")
    if not isinstance(config.get("store_id"), str) or not config["store_id"]:
        raise StoreFormatError(f"{where} has no valid store_id; it is damaged, restore it "
                               "from a copy")
    version = config.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StoreFormatError(f"{where} has an invalid layout version {version!r}; it is "
                               "damaged, restore it from a copy")
    if version > STORE_VERSION:
        raise StoreFormatError(
            f"{backend.url} uses store layout version {version}, newer than this fsstore "
            f"reads ({STORE_VERSION}); upgrade fsstore"
        )
    return config


def _missing_config(backend: Backend) -> StoreNotFoundError:
    url = backend.url
    if isinstance(backend, LocalBackend):
        for parent in backend.root.parents:
            if (parent / STORE_FILE).is_file():
                return StoreNotFoundError(
                    f"{url} is inside the store {parent}; pass --store {parent} instead"
                )
        if _holds_store_data(backend.root):
            return StoreNotFoundError(
                f"{url} holds a store's folders but its {STORE_FILE} is missing; run "
                f"`fsstore init {url}` to write a new one (stored sets and index are kept)"
            )
    return StoreNotFoundError(
        f"{url} is not an fsstore store (no {STORE_FILE}); run `fsstore init {url}` to "
        "create one"
    )


def initialise(backend: Backend, *, shared: bool) -> None:
    """Write a new store's ``fsstore.json`` at ``backend``, which must hold nothing else.

    A folder holding only a store's own folders (its ``fsstore.json`` lost) is reused, its
    sets and index kept. If another process initialises the store meanwhile, its
    configuration is kept and this returns quietly.
    """
    root = Path(backend.url) if isinstance(backend, LocalBackend) else None
    if root is not None and _holds_store_data(root):
        log.warning("%s holds a store's folders but no %s; writing a new one (the stored "
                    "sets and index are kept)", root, STORE_FILE)
    elif root is not None and root.exists() and (not root.is_dir() or any(
            not path.name.startswith(TEMPORARY_PREFIX) for path in root.iterdir())):
        if backend.exists(STORE_FILE):
            return  # another process initialised it since we looked
        raise StoreExistsError(
            f"{root} exists and is not an empty folder or an fsstore store; "
            "choose a new or empty folder"
        )
    if root is None and next(iter(backend.list("", temporary=True)), None) is not None:
        if backend.exists(STORE_FILE):
            return  # another process initialised it since we looked
        raise StoreExistsError(
            f"{backend.url} holds objects but no fsstore store; "
            "choose an empty bucket or prefix"
        )
    config = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "store_id": uuid.uuid4().hex,
        "created_at": format_time(now()),
        "shared": shared,
    }
    # Exclusive: if two processes initialise at once, one config wins and both use it.
    backend.create(STORE_FILE, json.dumps(config, indent=2).encode() + b"\n",
                   readonly=False)
    if shared and isinstance(backend, LocalBackend):
        backend.share_folder(backend.root)  # it may have existed, empty, before
    # On a folder, index/journal exists from the start, so that its absence later
    # means a lost index (see Index.layout), not an empty one.
    backend.ensure_folder(JOURNAL_PREFIX)
    log.info("initialised store %s", backend.url)


def share(backend: Backend, config: dict[str, Any]) -> dict[str, Any]:
    """Make an existing store group-shared: its folders and files, then its config.

    Returns the configuration as written (``config`` stands in if the file vanished).
    """
    if not isinstance(backend, LocalBackend):
        raise StoreFormatError(
            f"{backend.url} is not a folder; an object store's access is set by its "
            "bucket policy, not by --shared"
        )
    backend.shared = True
    root = Path(backend.url)
    backend.share_folder(root)
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            backend.share_folder(Path(folder) / name)
        for name in files:
            path = Path(folder) / name
            try:
                mode = path.stat().st_mode & 0o7777
                os.chmod(path, mode | (0o060 if mode & 0o200 else 0o040))
            except OSError as error:
                # A teammate's file: its owner made it when the store was not shared.
                log.warning("could not make %s group-readable: %s", path,
                            error.strerror)

    def shared_config(data: bytes | None) -> bytes:
        current = json.loads(data) if data else dict(config)
        return json.dumps({**current, "shared": True}, indent=2).encode() + b"\n"

    backend.update(STORE_FILE, shared_config)
    written = read_config(backend)
    log.info("made store %s group-shared", backend.url)
    return written
