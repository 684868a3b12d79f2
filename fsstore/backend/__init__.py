"""Where a store keeps its bytes: the contract every backend meets, and how to pick one.

Keys are relative, ``/``-separated paths such as ``objects/sets/ab/ab12...parquet``. The
contract is small on purpose, so that a local folder and an object store can both meet it:
objects are only ever created (never modified), creation is atomic and exclusive, and the
one value that is replaced in place (the store's config) is replaced atomically.
"""

from __future__ import annotations

from fsstore.backend.base import Backend, Entry
from fsstore.backend.local import LocalBackend
from fsstore.backend.urls import check_url, is_url
from fsstore.errors import StoreNotFoundError

__all__ = ["Backend", "Entry", "LocalBackend", "check_url", "is_url", "open_backend"]

OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "az", "azure", "abfs", "abfss")


def open_backend(location: str, *, shared: bool = False) -> Backend:
    """The backend for a folder path, a ``file://`` URL, or an object-store URL.

    Object-store URLs (``s3://bucket/prefix``, ``gs://``, ``az://``) need the optional
    ``obstore`` dependency (``pip install 'fsstore[s3]'``); see
    :mod:`fsstore.backend.object_store` for credentials and options. A URL that carries
    credentials (user information, a fragment, a secret option) is refused first, with a
    :class:`~fsstore.errors.StoreURLError`.
    """
    scheme, separator, rest = location.partition("://")
    if not separator:
        return LocalBackend(location, shared=shared)
    check_url(location)  # before anything echoes the URL: it may carry a secret
    if scheme == "file":
        return LocalBackend(rest, shared=shared)
    if scheme in OBJECT_STORE_SCHEMES:
        from fsstore.backend.object_store import ObjectStoreBackend

        return ObjectStoreBackend(location)
    raise StoreNotFoundError(
        f"fsstore cannot open {location!r}: unknown URL scheme {scheme!r}; give a folder "
        f"path or a URL with one of the schemes {', '.join(OBJECT_STORE_SCHEMES)}"
    )
