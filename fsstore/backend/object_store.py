"""A store in an object store: S3 and S3-compatible services, Google Cloud Storage, Azure.

Object stores have no rename and no locks, so this backend gets the contract's guarantees
from conditional writes (through obstore, which speaks all three protocols):

* :meth:`~ObjectStoreBackend.create` is a put with ``If-None-Match: *``: the store itself
  refuses to overwrite, so two writers racing for one key (an index commit, a manifest)
  end with exactly one winner, and a put is atomic, so no reader ever sees half of one.
  Files larger than :attr:`~ObjectStoreBackend.stream_threshold` are uploaded in parts to
  a temporary key and then copied to their key with the same create-only condition.
* :meth:`~ObjectStoreBackend.update` (read-modify-write of the store's config) is a put
  conditional on the ETag (or generation) that was read, retried until it applies.
* :meth:`~Backend.lock` does nothing: correctness never depended on it.

Credentials and endpoints come from the providers' usual environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``,
``GOOGLE_SERVICE_ACCOUNT``, ``AZURE_STORAGE_ACCOUNT_NAME``, ...) and from options given as
URL query parameters (``s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-1``)
or to the constructor. Secrets are refused in the URL, which may be saved as a remote
(see :mod:`fsstore.backend.urls`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final
from urllib.parse import urlsplit

from fsstore.backend.base import Backend, Entry
from fsstore.backend.urls import split_url
from fsstore.errors import (
    FsstoreError,
    MissingDependencyError,
    StorageError,
    StoreUnreachableError,
    StoreURLError,
    UpdateConflictError,
    first_line,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

__all__ = ["DEFAULT_RETRY", "SCHEMES", "STREAM_THRESHOLD", "ObjectStoreBackend", "split_url"]

log = logging.getLogger(__name__)

SCHEMES: Final = frozenset({"s3", "s3a", "gs", "az", "azure", "abfs", "abfss"})
"""URL schemes served by this backend."""
STREAM_THRESHOLD: Final = 64 << 20
"""Files above this size are uploaded in parts (bounded memory) rather than in one put."""
TEMPORARY_PREFIX: Final = ".fsstore-tmp-"
"""Same prefix as the local backend's: keys being uploaded in parts, never content."""
DEFAULT_RETRY: RetryConfig | None = None
"""Retry configuration of backends opened without one (None: obstore's defaults, 10 retries
with exponential back-off). Programs that prefer to fail fast can lower it."""

_PART_SIZE: Final = 16 << 20
_READ_BUFFER: Final = 1 << 20
_MAX_UPDATE_ATTEMPTS: Final = 50
_LIST_CHUNK: Final = 1000
_ENDPOINT_VARIABLES: Final = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
_CONNECTION_MARKERS: Final = ("error sending request", "kind: connect", "connecterror",
                              "connection refused", "dns error", "kind: timeout",
                              "operation timed out")
"""How obstore (reqwest, hyper) words a failure to reach the service, in lower case."""
_METADATA_SERVICE: Final = re.compile(
    r"169\.254\.169\.254|metadata\.google\.internal|computeMetadata|/metadata/identity")
"""Where clients look for a cloud machine's credentials when the environment has none."""
_SERVICES: Final = {"s3": "Amazon S3", "s3a": "Amazon S3", "gs": "Google Cloud Storage"}


class ObjectStoreBackend(Backend):
    """Keys are objects under a bucket (or container) and prefix.

    Parameters
    ----------
    location
        ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``az://container/prefix``,
        optionally with options as query parameters.
    options
        Client options (obstore's store configuration keys, such as ``endpoint`` or
        ``region``); they override the URL's query and the environment.
    retry
        obstore's retry configuration (maximum retries, back-off, time-out); default
        :data:`DEFAULT_RETRY`. obstore retries 5xx answers, timeouts and failed connections
        alike (it cannot single out connections), so an unreachable endpoint is reported
        only once the retries are spent: a few seconds with obstore's defaults.
    """

    stream_threshold: int = STREAM_THRESHOLD

    def __init__(self, location: str, *, options: Mapping[str, str] | None = None,
                 retry: RetryConfig | None = None) -> None:
        self.url, query = split_url(location)
        scheme = self.url.partition("://")[0]
        if scheme not in SCHEMES:
            raise StoreURLError(f"{location!r} is not an object-store URL "
                                f"(schemes: {', '.join(sorted(SCHEMES))})")
        if not urlsplit(self.url).netloc:
            raise StoreURLError(f"{location!r} names no bucket; write {scheme}://BUCKET/PREFIX")
        config: dict[str, Any] = {**query, **(options or {})}
        self._endpoint = _endpoint_of(scheme, config)
        self._store = _open_store(self.url, scheme, config,
                                  DEFAULT_RETRY if retry is None else retry)

    # -- reading --------------------------------------------------------------------------

    def read(self, key: str) -> bytes:
        obstore = _obstore()
        path = _check_key(key)
        try:
            return bytes(obstore.get(self._store, path).bytes())
        except FileNotFoundError as error:
            raise self._not_found(error, key, "read") from None
        except _failures() as error:
            raise self._failure(error, key, "read") from None

    def open(self, key: str) -> BinaryIO:
        obstore = _obstore()
        path = _check_key(key)
        try:
            reader = obstore.open_reader(self._store, path, buffer_size=_READ_BUFFER)
        except FileNotFoundError as error:
            raise self._not_found(error, key, "read") from None
        except _failures() as error:
            raise self._failure(error, key, "read") from None
        return io.BufferedReader(_ObjectReader(reader), buffer_size=_READ_BUFFER)

    def exists(self, key: str) -> bool:
        obstore = _obstore()
        path = _check_key(key)
        try:
            obstore.head(self._store, path)
        except FileNotFoundError:
            return False
        except _failures() as error:
            raise self._failure(error, key, "look up") from None
        return True

    def list(self, prefix: str, *, temporary: bool = False) -> Iterator[Entry]:
        obstore = _obstore()
        path = _check_key(prefix) if prefix else None
        try:
            for batch in obstore.list(self._store, path, chunk_size=_LIST_CHUNK):
                for meta in batch:
                    key = meta["path"]
                    if not temporary and key.rpartition("/")[2].startswith(TEMPORARY_PREFIX):
                        continue
                    yield Entry(key, int(meta["size"]), meta["last_modified"].timestamp())
        except FileNotFoundError as error:
            if _bucket_missing(error):
                raise self._failure(error, prefix or "", "list") from None
            return  # a listing of nothing, on providers that say so with a 404
        except _failures() as error:
            raise self._failure(error, prefix or "", "list") from None

    # -- writing --------------------------------------------------------------------------

    def create(self, key: str, data: bytes, *, readonly: bool = True) -> bool:
        # Objects cannot be modified in place anyway; ``readonly`` has nothing to add here.
        obstore = _obstore()
        path = _check_key(key)
        try:
            obstore.put(self._store, path, data, mode="create", use_multipart=False)
        except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
            # Also when obstore retried a put whose answer was lost and the first attempt
            # had landed: the key then holds our bytes, yet we answer False. Callers cope:
            # content-addressed objects are the same either way, and a writer that "lost"
            # an index commit re-reads the index and finds its own events there.
            return False
        except _failures() as error:
            raise self._failure(error, key, "write") from None
        log.debug("created %s/%s", self.url, key)
        return True

    def create_from_file(self, key: str, path: str, *, readonly: bool = True) -> bool:
        obstore = _obstore()
        object_path = _check_key(key)
        size = os.path.getsize(path)
        if size <= self.stream_threshold:
            try:
                obstore.put(self._store, object_path, Path(path), mode="create",
                            use_multipart=False)
            except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
                return False
            except _failures() as error:
                raise self._failure(error, key, "write") from None
            log.debug("created %s/%s (%d bytes)", self.url, key, size)
            return True
        return self._create_in_parts(key, path, size)

    def replace(self, key: str, data: bytes) -> None:
        # A plain put is atomic on every object store: readers see the old or new value.
        obstore = _obstore()
        path = _check_key(key)
        try:
            obstore.put(self._store, path, data, use_multipart=False)
        except _failures() as error:
            raise self._failure(error, key, "write") from None

    def update(self, key: str, change: Callable[[bytes | None], bytes],
               *, timeout: float = 60.0) -> bytes:
        obstore = _obstore()
        path = _check_key(key)
        deadline = time.monotonic() + timeout
        for attempt in range(_MAX_UPDATE_ATTEMPTS):
            current, version = self._read_versioned(key, path)
            updated = change(current)
            if updated == current:
                return updated
            mode: Any = "create" if version is None else version
            try:
                obstore.put(self._store, path, updated, mode=mode, use_multipart=False)
            except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
                log.debug("%s/%s changed while being updated (attempt %d); retrying",
                          self.url, key, attempt + 1)
                if time.monotonic() > deadline:
                    break
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
                continue
            except _failures() as error:
                raise self._failure(error, key, "write") from None
            return updated
        raise UpdateConflictError(
            f"gave up updating {self.url}/{key}: other writers kept changing it; retry later"
        )

    def delete(self, key: str) -> None:
        obstore = _obstore()
        path = _check_key(key)
        try:
            obstore.delete(self._store, path)
        except FileNotFoundError:
            return
        except _failures() as error:
            raise self._failure(error, key, "delete") from None

    def delete_many(self, keys: Iterable[str]) -> None:
        # S3 and Azure delete up to 1,000 (256) objects a request; the others run requests
        # side by side. Stores that refuse to delete a missing object (GCS, Azure) fail the
        # batch with FileNotFoundError: then one at a time, where a missing key is no error.
        obstore = _obstore()
        keys = list(keys)
        if not keys:
            return
        try:
            obstore.delete(self._store, [_check_key(key) for key in keys])
        except FileNotFoundError:
            for key in keys:
                self.delete(key)
        except _failures() as error:
            raise self._failure(error, keys[0], "delete") from None

    # -- internals ------------------------------------------------------------------------

    def _read_versioned(self, key: str, path: str) -> tuple[bytes | None, Any]:
        obstore = _obstore()
        try:
            result = obstore.get(self._store, path)
            data = bytes(result.bytes())
        except FileNotFoundError as error:
            if _bucket_missing(error):
                raise self._failure(error, key, "read") from None
            return None, None
        except _failures() as error:
            raise self._failure(error, key, "read") from None
        meta = result.meta
        version = {name: meta[name] for name in ("e_tag", "version") if meta.get(name)}
        if not version:
            raise StorageError(
                f"cannot update {self.url}/{key}: the store gives neither an ETag nor a "
                "version for it, so it cannot be updated safely", f"{self.url}/{key}")
        return data, version

    def _create_in_parts(self, key: str, path: str, size: int) -> bool:
        # A create-only put sends the whole body in one request, which obstore holds in
        # memory; above the threshold the file is uploaded in parts instead, then copied
        # to its key only if absent. Shortcoming: on S3 that copy is one multipart "upload
        # part copy", which S3 limits to 5 GiB, so larger objects cannot be created there.
        obstore = _obstore()
        folder, _, name = key.rpartition("/")
        staging = f"{folder}/{TEMPORARY_PREFIX}{secrets.token_hex(6)}-{name}".lstrip("/")
        try:
            with open(path, "rb") as source:
                obstore.put(self._store, staging, source, use_multipart=True,
                            chunk_size=_PART_SIZE, max_concurrency=4)
            log.debug("uploaded %s/%s in parts (%d bytes)", self.url, staging, size)
            obstore.copy(self._store, staging, key, overwrite=False)
        except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
            return False
        except _failures() as error:
            raise self._failure(error, key, "write") from None
        finally:
            with contextlib.suppress(Exception):  # best effort: the key is temporary anyway
                obstore.delete(self._store, staging)
        log.debug("created %s/%s from its uploaded parts", self.url, key)
        return True

    def _failure(self, error: Exception, key: str, action: str) -> FsstoreError:
        exceptions = _obstore().exceptions
        where = f"{self.url}/{key}" if key else self.url
        log.debug("%s of %s failed: %r", action, where, error)
        if isinstance(error, exceptions.PermissionDeniedError | exceptions.UnauthenticatedError):
            reason = ("access denied; check the credentials in the environment "
                      "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_SERVICE_ACCOUNT, "
                      "AZURE_STORAGE_ACCOUNT_KEY) and the bucket's permissions")
        elif _bucket_missing(error):
            reason = "the bucket does not exist; create it with your provider's tools"
        elif _no_credentials(error):
            reason = ("no credentials were found (the client fell back to asking a cloud "
                      "machine's metadata service, which is not here); set them in the "
                      "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3://, "
                      "GOOGLE_SERVICE_ACCOUNT for gs://, AZURE_STORAGE_ACCOUNT_NAME and "
                      "AZURE_STORAGE_ACCOUNT_KEY for az://")
        elif _unreachable(error):
            return self._unreachable_error(action, where)
        else:
            reason = f"{type(error).__name__}: {first_line(error)[:300]}"
        return StorageError(f"cannot {action} {where}: {reason}", where)

    def _unreachable_error(self, action: str, where: str) -> StoreUnreachableError:
        scheme = self.url.partition("://")[0]
        if self._endpoint:
            service = f"the endpoint {self._endpoint}"
        else:
            service = _SERVICES.get(scheme, "the storage service")
        if scheme in ("s3", "s3a"):
            check = ("check the endpoint (AWS_ENDPOINT_URL, or ?endpoint= in the URL) and "
                     "the network")
        else:
            check = "check the network and the URL's endpoint options"
        return StoreUnreachableError(
            f"cannot {action} {where}: {service} could not be reached (no connection, "
            f"after retries); {check}", where)

    def _not_found(self, error: FileNotFoundError, key: str, action: str) -> Exception:
        """A missing key, or (what S3 answers the same way) a missing bucket."""
        if _bucket_missing(error):
            return self._failure(error, key, action)
        return FileNotFoundError(f"{self.url}/{key} does not exist")

    def __repr__(self) -> str:
        return f"ObjectStoreBackend({self.url!r})"


class _ObjectReader(io.RawIOBase):
    """A seekable raw stream over obstore's buffered reader, so that io and pyarrow can use it."""

    def __init__(self, reader: Any) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._reader.read(len(view))
        count = len(data)
        view[:count] = memoryview(data)
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._reader.seek(offset, whence))

    def tell(self) -> int:
        return int(self._reader.tell())

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


def _failures() -> tuple[type[Exception], ...]:
    """What obstore raises when a request fails: its own errors, and builtin OSErrors."""
    return (_obstore().exceptions.BaseError, OSError)


def _obstore() -> Any:
    try:
        import obstore
        import obstore.exceptions
    except ImportError:
        raise MissingDependencyError(
            "object-store URLs (s3://, gs://, az://) need the obstore package: "
            "pip install 'fsstore[s3]'"
        ) from None
    return obstore


def _open_store(url: str, scheme: str, config: dict[str, Any],
                retry: RetryConfig | None) -> ObjectStore:
    obstore = _obstore()
    client: ClientConfig = {}
    endpoint = _endpoint_of(scheme, config)
    if str(endpoint).startswith("http://"):
        client["allow_http"] = True
    if scheme in ("s3", "s3a") and not os.environ.get("AWS_COPY_IF_NOT_EXISTS"):
        # S3 offers "copy only if the target is absent" through a multipart upload.
        config.setdefault("copy_if_not_exists", "multipart")
    try:
        store: ObjectStore = obstore.store.from_url(url, config=config, client_options=client,
                                                    retry_config=retry)
    except Exception as error:  # noqa: BLE001 obstore reports bad options with several types
        raise StoreURLError(f"cannot open {url}: {first_line(error)}; check the URL and its "
                            "options (see the README's object-store section)") from None
    return store


def _endpoint_of(scheme: str, config: dict[str, Any]) -> str:
    """The endpoint an S3 URL's options or the environment give; empty for the default."""
    if scheme not in ("s3", "s3a"):
        return str(config.get("endpoint") or "")
    return str(config.get("endpoint") or config.get("aws_endpoint") or next(
        (os.environ[name] for name in _ENDPOINT_VARIABLES if os.environ.get(name)), ""))


def _bucket_missing(error: Exception) -> bool:
    text = str(error)
    return "NoSuchBucket" in text or "bucket does not exist" in text.lower()


def _no_credentials(error: Exception) -> bool:
    """Whether the client, finding no credentials, asked an instance metadata service."""
    return _METADATA_SERVICE.search(str(error)) is not None


def _unreachable(error: Exception) -> bool:
    """Whether a request failed for want of a connection (after obstore's own retries)."""
    text = str(error).lower()
    return any(marker in text for marker in _CONNECTION_MARKERS)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts) or "\\" in key \
            or "\x00" in key:
        raise ValueError(f"invalid store key {key!r}")
    return key
