"""fsstore: feature sets in a content-addressed file store, with no database.

Each feature set is an immutable Parquet manifest at a path derived from the BLAKE3 hash of
its canonical content; an index maps names, registries and datasets to hashes.
"""

from importlib import metadata as _metadata

from fsstore.algebra import SetDiff, diff, difference, intersection, union
from fsstore.canonical import ENCODING, CanonicalSet, digest, encode
from fsstore.errors import (
    AmbiguousReferenceError,
    AmbiguousRegistryError,
    CorruptObjectError,
    DatasetNotFoundError,
    DuplicateColumnError,
    EmptyFeatureSetError,
    FeatureDtypeMismatchError,
    FileChangedError,
    FsstoreError,
    IncompatibleSetsError,
    IndexConflictError,
    IndexCorruptError,
    IndexMissingError,
    InvalidDtypeError,
    InvalidInputError,
    InvalidItypeError,
    InvalidMemberError,
    InvalidNameError,
    InvalidSlotError,
    LockTimeoutError,
    MissingDependencyError,
    OutputExistsError,
    ReferenceNotFoundError,
    RegistryNotFoundError,
    RegistryVersionConflictError,
    StorageError,
    StoreExistsError,
    StoreFormatError,
    StoreNotFoundError,
    StoreUnreachableError,
    StoreURLError,
    SyncError,
    UnsupportedFileError,
    UpdateConflictError,
    ValidationError,
)
from fsstore.featureset import Feature, FeatureSet, InputReport, Provenance
from fsstore.links import LinkOutcome, SlotChange
from fsstore.registry import (
    Inspection,
    Mapping,
    RegisterOutcome,
    Registry,
    RegistryInfo,
    Standardized,
    Suggestion,
)
from fsstore.store import SaveOutcome, Store, default_store
from fsstore.validation import inspect, map_values, standardize

try:
    __version__ = _metadata.version("fsstore")
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree only
    __version__ = "0+unknown"

__all__ = [
    "ENCODING",
    "AmbiguousReferenceError",
    "AmbiguousRegistryError",
    "CanonicalSet",
    "CorruptObjectError",
    "DatasetNotFoundError",
    "DuplicateColumnError",
    "EmptyFeatureSetError",
    "Feature",
    "FeatureDtypeMismatchError",
    "FeatureSet",
    "FileChangedError",
    "FsstoreError",
    "IncompatibleSetsError",
    "IndexConflictError",
    "IndexCorruptError",
    "IndexMissingError",
    "InputReport",
    "Inspection",
    "InvalidDtypeError",
    "InvalidInputError",
    "InvalidItypeError",
    "InvalidMemberError",
    "InvalidNameError",
    "InvalidSlotError",
    "LinkOutcome",
    "LockTimeoutError",
    "Mapping",
    "MissingDependencyError",
    "OutputExistsError",
    "Provenance",
    "ReferenceNotFoundError",
    "RegisterOutcome",
    "Registry",
    "RegistryInfo",
    "RegistryNotFoundError",
    "RegistryVersionConflictError",
    "SaveOutcome",
    "SetDiff",
    "SlotChange",
    "Standardized",
    "StorageError",
    "Store",
    "StoreExistsError",
    "StoreFormatError",
    "StoreNotFoundError",
    "StoreURLError",
    "StoreUnreachableError",
    "Suggestion",
    "SyncError",
    "UnsupportedFileError",
    "UpdateConflictError",
    "ValidationError",
    "default_store",
    "diff",
    "difference",
    "digest",
    "encode",
    "inspect",
    "intersection",
    "map_values",
    "standardize",
    "union",
]
