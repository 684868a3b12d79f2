"""Exceptions raised by fsstore.

Every error derives from :class:`FsstoreError`; each leaf also derives from the builtin it
resembles, so ``except FileNotFoundError`` keeps working for callers that do not know fsstore.
Messages say what happened, to which path or hash, and what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AmbiguousReferenceError",
    "AmbiguousRegistryError",
    "CorruptObjectError",
    "DatasetNotFoundError",
    "DuplicateColumnError",
    "EmptyFeatureSetError",
    "FeatureDtypeMismatchError",
    "FileChangedError",
    "FsstoreError",
    "IncompatibleSetsError",
    "IndexConflictError",
    "IndexCorruptError",
    "IndexMissingError",
    "InvalidDtypeError",
    "InvalidInputError",
    "InvalidItypeError",
    "InvalidMemberError",
    "InvalidNameError",
    "InvalidSlotError",
    "LockTimeoutError",
    "MissingDependencyError",
    "OutputExistsError",
    "ReferenceNotFoundError",
    "RegistryNotFoundError",
    "RegistryVersionConflictError",
    "StorageError",
    "StoreExistsError",
    "StoreFormatError",
    "StoreNotFoundError",
    "StoreURLError",
    "StoreUnreachableError",
    "SyncError",
    "UnsupportedFileError",
    "UpdateConflictError",
    "ValidationError",
]


def preview(values: Sequence[object], limit: int = 5) -> str:
    """Render the first few values of a list for an error message."""
    shown = ", ".join(shorten(repr(value)) for value in values[:limit])
    more = len(values) - limit
    return f"{shown}, ... ({more:,} more)" if more > 0 else shown


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name if it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def shorten(text: str, limit: int = 80) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis, for messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FsstoreError(Exception):
    """Root of every error raised by fsstore."""


class InvalidInputError(FsstoreError, ValueError):
    """Input that cannot become a feature set; nothing was stored."""


class EmptyFeatureSetError(InvalidInputError):
    """A feature set needs at least one member."""


class InvalidMemberError(InvalidInputError):
    """Members that are missing, not strings, or contain control characters."""

    def __init__(self, message: str, values: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.values = list(values)


class DuplicateColumnError(InvalidInputError):
    """A table has two columns with the same name."""

    def __init__(self, message: str, columns: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.columns = list(columns)


class InvalidDtypeError(InvalidInputError):
    """A dtype that fsstore does not know how to record."""


class InvalidNameError(InvalidInputError):
    """A set name that is empty, too long, or contains separators or control characters."""


class InvalidItypeError(InvalidInputError):
    """An itype that is not of the form ``Registry.field``."""


class UnsupportedFileError(InvalidInputError):
    """A file whose format or layout fsstore cannot read members from."""


class InvalidSlotError(InvalidInputError):
    """A slot name that is empty, too long, or not made of letters, digits, ``_.-:``."""


class FileChangedError(InvalidInputError):
    """A dataset file changed while it was being hashed or copied; nothing was recorded."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class IncompatibleSetsError(InvalidInputError):
    """Sets of different itypes or set-level dtypes cannot be combined."""


class ValidationError(InvalidInputError):
    """Values that are not in the registry field they claim to belong to.

    ``values`` holds every distinct invalid value (the message shows the first few),
    ``itype`` the field, and ``registry`` a label of the registry table checked against.
    """

    def __init__(self, message: str, values: Sequence[str] = (), itype: str = "",
                 registry: str = "") -> None:
        super().__init__(message)
        self.values = list(values)
        self.itype = itype
        self.registry = registry


class FeatureDtypeMismatchError(InvalidDtypeError):
    """A column or value whose dtype disagrees with the dtype of its registered Feature."""

    def __init__(self, message: str, features: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.features = list(features)


class RegistryVersionConflictError(InvalidInputError):
    """A registry version label already names a different table; labels never move."""

    def __init__(self, message: str, existing: str = "") -> None:
        super().__init__(message)
        self.existing = existing


class ReferenceNotFoundError(FsstoreError, KeyError):
    """No set matches a name or hash prefix."""

    def __init__(self, message: str, ref: str = "") -> None:
        super().__init__(message)
        self.ref = ref

    def __str__(self) -> str:
        # KeyError quotes its argument; a message reads better without quotes.
        return str(self.args[0])


class DatasetNotFoundError(ReferenceNotFoundError):
    """No dataset matches a name, path or hash prefix."""


class AmbiguousReferenceError(FsstoreError, LookupError):
    """A hash prefix matches more than one set."""

    def __init__(self, message: str, ref: str = "", candidates: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.ref = ref
        self.candidates = list(candidates)


class RegistryNotFoundError(ReferenceNotFoundError):
    """No registry of that name, organism or version in the store."""


class AmbiguousRegistryError(AmbiguousReferenceError):
    """A registry name that is registered for several organisms, none chosen."""


class CorruptObjectError(FsstoreError, ValueError):
    """A stored object whose content does not match its hash, or cannot be parsed."""

    def __init__(self, message: str, path: str = "", expected: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected


class StoreNotFoundError(FsstoreError, FileNotFoundError):
    """No store at the given path, and none found upward from the current folder."""


class StoreExistsError(FsstoreError, FileExistsError):
    """``init`` found something that is not an fsstore store where it was asked to create one."""


class StoreFormatError(FsstoreError, ValueError):
    """A store written in a layout version this fsstore does not read."""


class IndexCorruptError(FsstoreError, ValueError):
    """The index cannot be read as a consistent whole."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class IndexMissingError(IndexCorruptError):
    """The store's index folder is gone (deleted, or not synced with the objects)."""


class IndexConflictError(FsstoreError, RuntimeError):
    """Writers kept committing to the index faster than this writer could retry."""


class LockTimeoutError(FsstoreError, TimeoutError):
    """The store's write lock could not be taken in time."""

    def __init__(self, message: str, lock_path: str = "") -> None:
        super().__init__(message)
        self.lock_path = lock_path


class StorageError(FsstoreError, OSError):
    """The file system refused a read or a write (disk full, quota, I/O error, permissions).

    ``errno`` is the system's error number when there was one, ``path`` (also
    ``filename``) the file concerned.
    """

    def __init__(self, message: str, path: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno
        self.filename = path or None

    def __str__(self) -> str:
        # OSError would render "[Errno 28] None: path" once errno is set.
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str, int | None]]:
        # OSError pickles its own fields only; keep the message, path and errno.
        return type(self), (str(self), self.path, self.errno)


class OutputExistsError(FsstoreError, FileExistsError):
    """A file fsstore was asked to write already exists; it is never overwritten."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class StoreUnreachableError(StorageError, ConnectionError):
    """The service holding a store (an object store's endpoint) could not be reached."""


class MissingDependencyError(FsstoreError, ImportError):
    """An optional dependency needed for what was asked is not installed."""


class StoreURLError(FsstoreError, ValueError):
    """A store URL, or an option given with it, that fsstore cannot use."""


class UpdateConflictError(FsstoreError, RuntimeError):
    """Other writers kept changing a document faster than this writer could retry."""


class SyncError(FsstoreError, RuntimeError):
    """A push or pull finished but could not copy everything; what it did copy is intact."""
