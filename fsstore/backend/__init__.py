"""Where a store keeps its bytes: the contract every backend meets, and how to pick one.

Keys are relative, ``/``-separated paths such as ``objects/sets/ab/ab12...parquet``. The
contract is small on purpose, so that a local folder and an object store can both meet it:
objects are only ever created (never modified), creation is atomic and exclusive, and the
one value that is replaced in place (the store's config) is replaced atomically.
"""

from __future__ import annotations

from fsstore.backend.base import Backend, Entry
from fsstore.backend.local import LocalBackend
from fsstore.errors import StoreNotFoundError

__all__ = ["Backend", "Entry", "LocalBackend", "open_backend"]


def open_backend(location: str, *, shared: bool = False) -> Backend:
    """The backend for a folder path or a ``file://`` URL."""
    scheme, separator, rest = location.partition("://")
    if not separator:
        return LocalBackend(location, shared=shared)
    if scheme == "file":
        return LocalBackend(rest, shared=shared)
    raise StoreNotFoundError(
        f"fsstore cannot open {location!r}: unknown URL scheme {scheme!r}; "
        "give a folder path"
    )
