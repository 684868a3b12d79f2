"""Registries: reference tables of valid identifiers, stored in the store like sets.

``table`` holds the canonical encoding and Parquet form, ``catalog`` registration and
version choice, ``lookup`` the checks on a loaded table, ``inspection`` their results,
``features`` the built-in Feature registry and ``schemes`` the id-scheme hints.
"""

from fsstore.registry.catalog import FEATURE_REGISTRY, RegisterOutcome, RegistryInfo
from fsstore.registry.inspection import Inspection, Mapping, Standardized, Suggestion
from fsstore.registry.lookup import Registry
from fsstore.registry.table import REGISTRY_ENCODING, RegistryTable, build_table

__all__ = [
    "FEATURE_REGISTRY",
    "REGISTRY_ENCODING",
    "Inspection",
    "Mapping",
    "RegisterOutcome",
    "Registry",
    "RegistryInfo",
    "RegistryTable",
    "Standardized",
    "Suggestion",
    "build_table",
]
