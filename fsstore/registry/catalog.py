"""Registering registry tables in a store, listing them, and choosing the one to check against.

A registry is a name (``Gene``) and an organism (``human``, or none); each registration
adds a *version* of it: a table stored once under ``objects/registries/`` and a
``registry`` event in the index that gives it a version label (``gencode-v48``). Labels
never move: registering another table under a label already used is an error, and the
same table under the same label is a no-op. Without a version, lookups use the version
registered last.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa

from fsstore.errors import (
    AmbiguousRegistryError,
    InvalidInputError,
    InvalidNameError,
    ReferenceNotFoundError,
    RegistryNotFoundError,
    RegistryVersionConflictError,
)
from fsstore.featureset import Provenance
from fsstore.index import Event, View
from fsstore.index.events import now
from fsstore.names import check_name
from fsstore.registry.lookup import Registry
from fsstore.registry.table import (
    RegistryTable,
    build_table,
    check_registry_name,
    decode_registry,
    encode_registry_parquet,
    registry_key,
)

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = [
    "FEATURE_REGISTRY",
    "RegisterOutcome",
    "RegistryInfo",
    "choose_version",
    "load_registry",
    "register",
    "registry_versions",
    "store_table",
    "table_columns",
]

log = logging.getLogger(__name__)

FEATURE_REGISTRY: Final = "Feature"
"""The built-in registry of named features with dtypes (fields ``name`` and ``dtype``)."""
_CACHE_SIZE: Final = 4
"""Registry versions kept in memory with their indexes (all of GENCODE v48: about 70 MB)."""
_cache: OrderedDict[str, Registry] = OrderedDict()


@dataclass(frozen=True)
class RegistryInfo:
    """One version of a registry, as the index records it."""

    registry: str
    organism: str | None
    version: str
    hash: str
    fields: tuple[str, ...]
    n: int
    description: str | None = None
    seq: int = 0
    time: datetime | None = None
    user: str | None = None

    @property
    def label(self) -> str:
        organism = f" ({self.organism})" if self.organism else ""
        return f"{self.registry}{organism} {self.version} [{self.hash[:12]}]"

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RegistryInfo:
        return cls(event["registry"], event.get("organism"), event["version"], event["hash"],
                   tuple(event["fields"]), int(event["n"]), event.get("description"),
                   int(event.get("seq") or 0), event.get("time"), event.get("user"))


@dataclass(frozen=True)
class RegisterOutcome:
    """What a registration did."""

    info: RegistryInfo
    created: bool
    """A new table object was written (False: the same table was already stored)."""
    recorded: bool
    """A new version label was recorded (False: this label already named this table)."""
    dropped: int = 0
    """Input rows left out: exact repeats and rows with every cell missing."""


# -- registering ----------------------------------------------------------------------------

def register(store: Store, source: Any, *, name: str, version: str,
             organism: str | None = None, fields: Sequence[str] | Mapping[str, Any] | None = None,
             header: bool = True, fmt: str | None = None,
             description: str | None = None) -> RegisterOutcome:
    """Store a table as version ``version`` of registry ``name`` for ``organism``.

    ``source`` is a DataFrame, an Arrow table, a mapping of field name to cells, or the
    path of a CSV, TSV or Parquet file. ``fields`` picks and names the columns: None for
    all of them (their names must be identifiers), a list of column names, or a mapping
    of field name to column name or 0-based position (``{"symbol": 1}``).
    """
    check_registry_name(name)
    if name == FEATURE_REGISTRY:
        raise InvalidInputError(
            "Feature is the built-in registry of features; fill it with "
            "Store.register_features(df) (or `fsstore registry add --features FILE`)"
        )
    version = check_name(version, "version")
    if any(character.isspace() for character in version):
        raise InvalidNameError(
            f"version label {version!r} contains white space; labels are one word on the "
            f"command line, e.g. {'-'.join(version.split())!r}")
    table = build_table(name, organism, table_columns(source, fields, header=header, fmt=fmt))
    info = _info(table, version, description)
    # Checked before the table is written too, so that a refusal leaves nothing behind.
    store.index.read(lambda view: _recorded_already(view, info))
    created = store_table(store, table, version)

    def build(view: View) -> list[Event]:
        # A gc whose grace period this call outlived may have removed the table since it
        # was written or found (gc deletes under this same lock): write it again.
        store_table(store, table, version)
        return [] if _recorded_already(view, info) else [_event(info)]

    recorded = bool(store.index.commit(build))
    log.info("registry %s: %s, %s", info.label, "new table" if created else "table existed",
             "version recorded" if recorded else "version already recorded")
    return RegisterOutcome(info, created, recorded, table.dropped)


def _recorded_already(view: View, info: RegistryInfo) -> bool:
    """Whether ``info`` is registered already; refuses a label or organism that clashes."""
    events = _events(view, info.registry)
    _check_organisms(info.registry, info.organism, {event.get("organism") for event in events})
    for event in events:
        if event.get("organism") == info.organism and event["version"] == info.version:
            if event["hash"] == info.hash:
                return True
            organism_part = f" ({info.organism})" if info.organism else ""
            raise RegistryVersionConflictError(
                f"{info.registry}{organism_part} {info.version} is already registered with "
                f"another table ({event['hash'][:12]}, {event['n']:,} records); versions "
                "never change, so register this table under a new version label",
                event["hash"],
            )
    return False


def _check_organisms(name: str, organism: str | None, registered: set[str | None]) -> None:
    """A registry's versions all name an organism, or none does: else a version without
    one could never be chosen apart from the others."""
    named = sorted(item for item in registered if item)
    if not organism and named:
        raise InvalidInputError(
            f"registry {name} has versions for {', '.join(named)}; give this one its "
            "organism too (organism=, --organism), or register it under another name")
    if organism and any(not item for item in registered):
        raise InvalidInputError(
            f"registry {name} has versions without an organism; register this one without "
            f"organism={organism!r} (--organism), or under another registry name")


def store_table(store: Store, table: RegistryTable, version: str) -> bool:
    """Write a table's object unless it exists; True if it was written."""
    key = registry_key(table.hash)
    if store.backend.exists(key):
        return False
    data = encode_registry_parquet(table, Provenance(now(), store.user), version)
    _remember(table)
    return store.backend.create(key, data)


def table_columns(source: Any, fields: Sequence[str] | Mapping[str, Any] | None, *,
                  header: bool = True, fmt: str | None = None) -> dict[str, Any]:
    """The cells of each chosen field of a table source (see :func:`register`)."""
    if isinstance(source, str | os.PathLike):
        source = _read_source(os.fspath(source), header=header, fmt=fmt)
    if isinstance(source, Mapping) and not isinstance(source, pd.DataFrame):
        source = pd.DataFrame(dict(source))
    if isinstance(source, pa.Table):
        names = [str(column) for column in source.column_names]
        getter = source.column
    elif isinstance(source, pd.DataFrame):
        names = [str(column) for column in source.columns]
        frame = source

        def getter(label: str) -> Any:
            return frame.iloc[:, names.index(label)]
    else:
        raise InvalidInputError(
            f"cannot read a registry table from a {type(source).__name__}; give a "
            "DataFrame, an Arrow table, a mapping of field to values, or a file path"
        )
    if len(set(names)) != len(names):
        raise InvalidInputError("the registry table has duplicate column names; rename them")
    chosen = _chosen_columns(names, fields)
    return {field: getter(column) for field, column in chosen.items()}


def _chosen_columns(names: list[str], fields: Sequence[str] | Mapping[str, Any] | None,
                    ) -> dict[str, str]:
    if fields is None:
        return {name: name for name in names}
    pairs = fields.items() if isinstance(fields, Mapping) else ((f, f) for f in fields)
    chosen = {}
    for field, column in pairs:
        label = str(column)
        if label not in names:
            position = column if isinstance(column, int) else (
                int(label) if label.isdigit() else None)
            if position is None or not 0 <= position < len(names):
                shown = ", ".join(repr(name) for name in names[:8])
                raise InvalidInputError(
                    f"the registry table has no column {column!r} for field {field!r}; its "
                    f"columns are {shown}{', ...' if len(names) > 8 else ''}"
                )
            label = names[position]
        chosen[field] = label
    return chosen


def _read_source(path: str, *, header: bool, fmt: str | None) -> Any:
    from fsstore.readers import read_table

    return read_table(path, fmt=fmt, header=header)


# -- finding --------------------------------------------------------------------------------

def registry_versions(store: Store, name: str | None = None) -> list[RegistryInfo]:
    """Every registered version, oldest first; only those of registry ``name`` if given."""
    if name is None:
        table = store.index.read(lambda view: view.table("registry"))
    else:
        table = store.index.read(lambda view: view.find("registry", "registry", name))
    return [RegistryInfo.from_event(event) for event in table.to_pylist()]


def choose_version(store: Store, name: str, organism: str | None = None,
                   version: str | None = None) -> RegistryInfo:
    """The version of registry ``name`` to check against.

    With several organisms registered, ``organism`` must say which; without ``version``,
    the version registered last is used.
    """
    candidates = registry_versions(store, name)
    if not candidates:
        raise RegistryNotFoundError(
            f"the store has no registry {name!r}; register one with `fsstore registry add` "
            "(or Store.register), or run `fsstore registry ls` to see what is registered",
            name,
        )
    organisms = list(dict.fromkeys(info.organism for info in candidates))
    if organism is None and len(organisms) > 1:
        shown = ", ".join(item or "no organism" for item in organisms)
        raise AmbiguousRegistryError(
            f"registry {name} is registered for several organisms ({shown}); "
            "choose one with organism= (--organism)",
            name,
            [str(item) for item in organisms],
        )
    chosen_organism = organisms[0] if organism is None else organism
    matching = [info for info in candidates if info.organism == chosen_organism]
    if not matching:
        raise RegistryNotFoundError(
            f"registry {name} has no version for organism {organism!r}; it is registered "
            f"for {', '.join(item or 'no organism' for item in organisms)}. Check the "
            f"spelling, register a {name} table for {organism!r} (`fsstore registry add`), "
            "or store the values unvalidated (validate=False, --no-validate)",
            name,
        )
    if version is None:
        # The last registered, which is not necessarily the newest release: labels are
        # free text, so fsstore cannot order them.
        return matching[-1]
    labelled = [info for info in matching if info.version == version]
    if not labelled:
        known = ", ".join(dict.fromkeys(info.version for info in matching))
        raise RegistryNotFoundError(
            f"registry {name} has no version {version!r}; its versions are {known}", name)
    return labelled[-1]


def load_registry(store: Store, info: RegistryInfo) -> Registry:
    """Read a registered table (checked against its hash), or reuse one read before."""
    cached = _cache.get(info.hash)
    if cached is None:
        key = registry_key(info.hash)
        path = store.backend.local_path(key)
        try:
            source = path if path is not None else store.backend.read(key)
            table, _ = decode_registry(source, info.hash, store.where(key))
        except FileNotFoundError:
            raise ReferenceNotFoundError(
                f"the index registers {info.label} but its table {store.where(key)} is "
                "missing; run `fsstore verify` to find what else is missing",
                info.hash,
            ) from None
        cached = _remember(table)
    else:
        _cache.move_to_end(info.hash)
    return cached.with_info(info)


def _remember(table: RegistryTable) -> Registry:
    # Tables are immutable and named by their hash, so a cached one is never stale; the
    # indexes built on it (value counts, positions) are kept with it.
    registry = _cache.get(table.hash) or Registry(table)
    _cache[table.hash] = registry
    _cache.move_to_end(table.hash)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return registry


# -- events ---------------------------------------------------------------------------------

def _events(view: View, name: str) -> list[dict[str, Any]]:
    return list(view.find("registry", "registry", name).to_pylist())


def _info(table: RegistryTable, version: str, description: str | None) -> RegistryInfo:
    return RegistryInfo(table.name, table.organism or None, version, table.hash,
                        table.fields, table.n, description)


def _event(info: RegistryInfo) -> Event:
    return {
        "kind": "registry",
        "hash": info.hash,
        "registry": info.registry,
        "organism": info.organism,
        "version": info.version,
        "fields": list(info.fields),
        "n": info.n,
        "description": info.description,
    }
