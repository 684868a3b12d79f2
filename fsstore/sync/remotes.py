"""Named remotes: other stores this one pushes to and pulls from, kept in ``fsstore.json``.

The store's config gains ``"remotes": {"team": {"url": "s3://lab-bucket/fsstore"}}``.
Changes go through :meth:`Backend.update`, an atomic read-modify-write (a conditional put
on object stores), so two people adding remotes at once both keep theirs.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Final

from fsstore.backend import is_url, open_backend
from fsstore.errors import (
    InvalidNameError,
    MissingDependencyError,
    ReferenceNotFoundError,
    StoreNotFoundError,
    StoreURLError,
)
from fsstore.store import STORE_FILE, Store

__all__ = ["REMOTES_FIELD", "add_remote", "remote_url", "remotes", "remove_remote"]

REMOTES_FIELD: Final = "remotes"
log = logging.getLogger(__name__)

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def remotes(store: Store) -> dict[str, str]:
    """The store's remotes: name to URL (or folder path)."""
    found = store.config.get(REMOTES_FIELD) or {}
    return {name: str(entry["url"]) for name, entry in sorted(found.items())
            if isinstance(entry, dict) and "url" in entry}


def add_remote(store: Store, name: str, location: str, *, replace: bool = False) -> str:
    """Name another store ``name``; returns the location as saved (folders made absolute).

    Raises :class:`InvalidNameError` for a name that is not 1-64 letters, digits, ``.``,
    ``_`` or ``-`` (starting with a letter or digit), or that is taken (unless
    ``replace``), and :class:`StoreURLError` for a location that cannot be opened.
    """
    if not _NAME.match(name):
        raise InvalidNameError(
            f"remote name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit; choose another name"
        )
    saved = normalise_location(location)
    if saved == store.location:
        raise StoreURLError(f"{location!r} is this store itself; name another store")

    def change(current: bytes | None) -> bytes:
        config = _parse(current, store)
        entries = config.setdefault(REMOTES_FIELD, {})
        if name in entries and not replace and entries[name].get("url") != saved:
            raise InvalidNameError(
                f"remote {name!r} already points at {entries[name].get('url')}; remove it "
                f"first (`fsstore remote remove {name}`) or pick another name"
            )
        entries[name] = {"url": saved}
        return _dump(config)

    _update(store, change)
    return saved


def remove_remote(store: Store, name: str) -> None:
    """Forget the remote ``name``; :class:`ReferenceNotFoundError` if there is none."""
    named = remotes(store)
    if name not in named:
        known = f"; the remotes are {', '.join(named)}" if named else "; there are none"
        raise ReferenceNotFoundError(f"no remote named {name!r}{known}", name)

    def change(current: bytes | None) -> bytes:
        config = _parse(current, store)
        config.get(REMOTES_FIELD, {}).pop(name, None)
        return _dump(config)

    _update(store, change)


def remote_url(store: Store | None, remote: str) -> str:
    """The location a remote name stands for; a URL or folder path is returned as is."""
    known = remotes(store) if store is not None else {}
    if remote in known:
        return known[remote]
    if is_url(remote) or "/" in remote or remote in (".", "..") or Path(remote).exists():
        return normalise_location(remote)
    raise ReferenceNotFoundError(_unknown(store, remote), remote)


def normalise_location(location: str) -> str:
    """A folder path made absolute; a URL checked (no secrets, a known scheme) and kept.

    A URL's options are checked by opening it, which needs obstore for object stores;
    without obstore the URL is kept unchecked in that respect (the secrets, the scheme and
    the bucket are checked all the same), and using it later says what to install.
    """
    if is_url(location):
        try:
            open_backend(location)  # raises a clear error for a bad scheme, secret or option
        except MissingDependencyError:
            log.debug("obstore is missing: the options of %s are not checked", location)
        return location.rstrip("/")
    return os.path.abspath(Path(location).expanduser())


def _update(store: Store, change: Any) -> None:
    updated = store.backend.update(STORE_FILE, change)
    store.config = json.loads(updated)


def _parse(current: bytes | None, store: Store) -> dict[str, Any]:
    if current is None:
        raise StoreNotFoundError(f"{store.location}/{STORE_FILE} disappeared; is the store "
                                 "still there?")
    config = json.loads(current)
    if not isinstance(config.get(REMOTES_FIELD, {}), dict):
        config[REMOTES_FIELD] = {}
    return dict(config)


def _dump(config: dict[str, Any]) -> bytes:
    return json.dumps(config, indent=2).encode() + b"\n"


def _unknown(store: Store | None, name: str) -> str:
    known = ", ".join(remotes(store)) if store is not None else ""
    listed = f" (known: {known})" if known else ""
    return (f"no remote named {name!r}{listed}; add one with "
            f"`fsstore remote add {name} URL`, or give a URL or folder path")
