"""fsstore: feature sets in a content-addressed file store, with no database.

Each feature set is an immutable Parquet manifest at a path derived from the BLAKE3 hash of
its canonical content; an index maps names, registries and datasets to hashes.
"""

from fsstore.canonical import ENCODING, CanonicalSet, digest, encode
from fsstore.errors import (
    AmbiguousReferenceError,
    AmbiguousRegistryError,
    CorruptObjectError,
    DuplicateColumnError,
    EmptyFeatureSetError,
    FeatureDtypeMismatchError,
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
    RegistryNotFoundError,
    RegistryVersionConflictError,
    StorageError,
    StoreExistsError,
    StoreFormatError,
    StoreNotFoundError,
    StoreURLError,
    SyncError,
    UnsupportedFileError,
    UpdateConflictError,
    ValidationError,
)
from fsstore.featureset import Feature, FeatureSet, InputReport, Provenance
from fsstore.registry import Inspection, Mapping, Registry, Standardized, Suggestion
from fsstore.store import SaveOutcome, Store, default_store
from fsstore.validation import inspect, map_values, standardize

__version__ = "0.1.0"

__all__ = [
    "ENCODING",
    "AmbiguousReferenceError",
    "AmbiguousRegistryError",
    "CanonicalSet",
    "CorruptObjectError",
    "DuplicateColumnError",
    "EmptyFeatureSetError",
    "Feature",
    "FeatureDtypeMismatchError",
    "FeatureSet",
    "FsstoreError",
    "IndexConflictError",
    "IndexCorruptError",
    "InputReport",
    "Inspection",
    "InvalidDtypeError",
    "InvalidInputError",
    "InvalidItypeError",
    "InvalidMemberError",
    "InvalidNameError",
    "LockTimeoutError",
    "Mapping",
    "MissingDependencyError",
    "Provenance",
    "ReferenceNotFoundError",
    "Registry",
    "RegistryNotFoundError",
    "RegistryVersionConflictError",
    "SaveOutcome",
    "Standardized",
    "StorageError",
    "Store",
    "StoreExistsError",
    "StoreFormatError",
    "StoreNotFoundError",
    "StoreURLError",
    "Suggestion",
    "SyncError",
    "UnsupportedFileError",
    "UpdateConflictError",
    "ValidationError",
    "default_store",
    "digest",
    "encode",
    "inspect",
    "map_values",
    "standardize",
]
