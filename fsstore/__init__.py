"""fsstore: feature sets in a content-addressed file store, with no database.

Each feature set is an immutable Parquet manifest at a path derived from the BLAKE3 hash of
its canonical content; an index maps names, registries and datasets to hashes.
"""

from fsstore.canonical import ENCODING, CanonicalSet, digest, encode
from fsstore.errors import (
    AmbiguousReferenceError,
    CorruptObjectError,
    DuplicateColumnError,
    EmptyFeatureSetError,
    FsstoreError,
    IndexConflictError,
    IndexCorruptError,
    InvalidDtypeError,
    InvalidInputError,
    InvalidItypeError,
    InvalidMemberError,
    InvalidNameError,
    LockTimeoutError,
    MissingDependencyError,
    ReferenceNotFoundError,
    StorageError,
    StoreExistsError,
    StoreFormatError,
    StoreNotFoundError,
    StoreURLError,
    SyncError,
    UnsupportedFileError,
    UpdateConflictError,
)
from fsstore.featureset import Feature, FeatureSet, InputReport, Provenance
from fsstore.store import SaveOutcome, Store, default_store

__version__ = "0.1.0"

__all__ = [
    "ENCODING",
    "AmbiguousReferenceError",
    "CanonicalSet",
    "CorruptObjectError",
    "DuplicateColumnError",
    "EmptyFeatureSetError",
    "Feature",
    "FeatureSet",
    "FsstoreError",
    "IndexConflictError",
    "IndexCorruptError",
    "InputReport",
    "InvalidDtypeError",
    "InvalidInputError",
    "InvalidItypeError",
    "InvalidMemberError",
    "InvalidNameError",
    "LockTimeoutError",
    "MissingDependencyError",
    "Provenance",
    "ReferenceNotFoundError",
    "SaveOutcome",
    "StorageError",
    "Store",
    "StoreExistsError",
    "StoreFormatError",
    "StoreNotFoundError",
    "StoreURLError",
    "SyncError",
    "UnsupportedFileError",
    "UpdateConflictError",
    "default_store",
    "digest",
    "encode",
]
