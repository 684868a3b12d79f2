"""A store: a folder of immutable manifests and an index, and the operations on it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fsstore.backend import Backend, LocalBackend, open_backend
from fsstore.canonical import CanonicalSet, nfc
from fsstore.errors import (
    CorruptObjectError,
    FsstoreError,
    InvalidInputError,
    ReferenceNotFoundError,
    StoreNotFoundError,
)
from fsstore.featureset import FeatureSet, Provenance
from fsstore.index import Event, Index, View
from fsstore.index.events import format_time, now
from fsstore.lock import DEFAULT_LOCK_TIMEOUT
from fsstore.manifest import decode_manifest, encode_manifest, manifest_key, read_provenance
from fsstore.references import resolve_set
from fsstore.set_events import adds_description, listing, set_event
from fsstore.store_config import (
    DEFAULT_FOLDER,
    ENV_STORE,
    ENV_USER,
    STORE_FILE,
    STORE_VERSION,
    backend_at,
    current_user,
    find_store,
    initialise,
    is_path,
    read_config,
    share,
)
from fsstore.stored_manifests import heal, is_dangling, manifest_source, missing_manifest

if TYPE_CHECKING:
    from fsstore.links import LinkOutcome
    from fsstore.registry import RegisterOutcome, Registry

# The store's location and configuration names live in fsstore.store_config; they stay
# importable from here, with the Store that uses them.
__all__ = [
    "DEFAULT_FOLDER",
    "ENV_STORE",
    "ENV_USER",
    "STORE_FILE",
    "STORE_VERSION",
    "SaveOutcome",
    "Store",
    "current_user",
    "default_store",
    "find_store",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SaveOutcome:
    """What :meth:`Store.put` did."""

    feature_set: FeatureSet
    created: bool
    """A new manifest was written (False: the set was already stored)."""
    recorded: bool
    """An index event was recorded (False: the index already said all of it)."""
    previous: str | None = None
    """The hash the name pointed at before, if the save moved it."""


class Store:
    """A feature-set store in a folder.

    Parameters
    ----------
    location
        The store folder (the one holding ``fsstore.json``), or a folder that contains a
        ``.fsstore`` store.
    lock_timeout
        Seconds to wait for the write lock before raising
        :class:`~fsstore.errors.LockTimeoutError`.
    """

    def __init__(self, location: str | os.PathLike[str] | Backend, *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        _check_location(location)
        backend = location if isinstance(location, Backend) else backend_at(location)
        self.config = read_config(backend)
        if isinstance(backend, LocalBackend) and self.config.get("shared"):
            backend.shared = True
        self.backend = backend
        self.location = backend.url
        self.root: Path | None = backend.root if isinstance(backend, LocalBackend) else None
        """The store folder, for stores on the local file system (None otherwise)."""
        self.user = current_user()
        self.index = Index(self.backend, self.config["store_id"], self.user, lock_timeout)

    @classmethod
    def init(cls, location: str | os.PathLike[str] | Backend = DEFAULT_FOLDER, *,
             shared: bool = False) -> Store:
        """Create a store at ``location`` (or open the one already there)."""
        _check_location(location)
        if isinstance(location, Backend):
            backend = location
        else:
            backend = open_backend(str(Path(location).expanduser()) if is_path(location)
                                   else str(location), shared=shared)
        if backend.exists(STORE_FILE):
            store = cls(backend)
            if shared and not store.config.get("shared"):
                store._share()
            return store
        initialise(backend, shared=shared)
        return cls(backend)

    def _share(self) -> None:
        """Make an existing store group-shared: its folders and files, then its config."""
        self.config = share(self.backend, self.config)

    @property
    def store_id(self) -> str:
        return str(self.config["store_id"])

    # -- saving ---------------------------------------------------------------------------

    def save(self, feature_set: FeatureSet) -> FeatureSet:
        """Store a set and point its name at it; returns the set with its provenance."""
        return self.put(feature_set).feature_set

    def put(self, feature_set: FeatureSet) -> SaveOutcome:
        """Like :meth:`save`, also telling what was written."""
        hash_hex = feature_set.hash
        key = manifest_key(hash_hex)
        created = False
        provenance = None
        if not self.backend.exists(key):
            provenance = Provenance(now(), self.user)
            data = encode_manifest(feature_set.canonical, provenance)
            created = self.backend.create(key, data)
        if not created and heal(self.backend, key, hash_hex):
            provenance = Provenance(now(), self.user)
            created = self.backend.create(key, encode_manifest(feature_set.canonical,
                                                               provenance))
        if not created:
            provenance = read_provenance(manifest_source(self.backend, key), key)
        assert provenance is not None
        previous: list[str | None] = [None]

        def build(view: View) -> list[Event]:
            if not self.backend.exists(key):
                # Removed since it was written or found, by a `fsstore gc` whose grace
                # period this save outlived (gc deletes under this same lock): write it
                # again before an event refers to it.
                log.warning("manifest %s vanished before its save committed; writing it "
                            "again", key)
                self.backend.create(key, encode_manifest(feature_set.canonical, provenance))
            history = view.find("set", "hash", hash_hex).to_pylist()
            if feature_set.name is not None:
                pointing = view.find("set", "name", feature_set.name).to_pylist()
                target = pointing[-1]["hash"] if pointing else None
                previous[0] = target
                if target == hash_hex and not adds_description(history, feature_set):
                    return []
            elif history and not adds_description(history, feature_set):
                return []
            event = set_event(feature_set)
            if created and not history:
                # The set's first event carries its manifest's creation time, so that
                # listings (from the index) and `show` (from the manifest) agree.
                event["time"] = format_time(provenance.created_at)
            return [event]

        recorded = self.index.commit(build)
        if recorded:
            self._keep_members_current(int(recorded[-1]["seq"]))
        events = self._events_of(hash_hex)
        updated = _utc(events[-1]["time"]) if events else None
        feature_set.provenance = Provenance(provenance.created_at, provenance.created_by,
                                            updated)
        moved = previous[0] if previous[0] not in (None, hash_hex) else None
        log.info("saved %s (%s, %s)", feature_set.uid,
                 "new manifest" if created else "manifest existed",
                 "index updated" if recorded else "index unchanged")
        return SaveOutcome(feature_set, created, bool(recorded), moved)

    # -- reading --------------------------------------------------------------------------

    def get(self, ref: str) -> FeatureSet:
        """The set a name or hash prefix refers to, read and checked against its hash."""
        hash_hex = self.resolve(ref)
        key = manifest_key(hash_hex)
        try:
            canonical, provenance = decode_manifest(manifest_source(self.backend, key),
                                                    hash_hex, self.where(key))
        except FileNotFoundError:
            raise missing_manifest(self.backend, hash_hex, key, ref,
                                   self.where(key)) from None
        except CorruptObjectError:
            if is_dangling(self.backend, key):
                raise missing_manifest(self.backend, hash_hex, key, ref,
                                       self.where(key)) from None
            raise

        events = self._events_of(hash_hex)
        names = self._current_names_of(hash_hex, events)
        return self._feature_set(canonical, provenance, events,
                                 ref if ref in names else (names[-1] if names else None))

    def resolve(self, ref: str) -> str:
        """The full hash for a name, a full hash, or a unique hash prefix of 6+ characters."""
        if not isinstance(ref, str):
            raise InvalidInputError(f"a set reference is a name or a hash prefix (a str), not "
                                    f"{type(ref).__name__} {ref!r}")
        if not ref:
            raise ReferenceNotFoundError("an empty reference names no set", ref)
        return self.index.read(lambda view: resolve_set(view, self.backend, ref))

    def sets(self) -> pd.DataFrame:
        """One row per stored set: hash, uid, itype, type, ordered, n, current names, times."""
        return listing(self.index.read(lambda view: view.table("set")).to_pandas())

    def history(self, name: str) -> pd.DataFrame:
        """Every event of a name, oldest first: where it pointed, when and by whom."""
        stored = nfc(name) if isinstance(name, str) else name  # names are stored in NFC
        events = self.index.read(lambda view: view.find("set", "name", stored)).to_pandas()
        if events.empty:
            raise ReferenceNotFoundError(f"no set was ever named {name!r}", name)
        return pd.DataFrame(events[["seq", "time", "user", "hash", "n", "itype"]])

    # -- registries -----------------------------------------------------------------------

    def register(self, source: Any, *, name: str, version: str, organism: str | None = None,
                 fields: Sequence[str] | Mapping[str, Any] | None = None, header: bool = True,
                 fmt: str | None = None, description: str | None = None) -> RegisterOutcome:
        """Store a reference table as version ``version`` of registry ``name``.

        See :func:`fsstore.registry.catalog.register`; for example
        ``store.register(path, name="Gene", organism="human", version="gencode-v48",
        fields={"ensembl_gene_id": 0, "symbol": 1}, header=False)``.
        """
        from fsstore.registry.catalog import register

        return register(self, source, name=name, version=version, organism=organism,
                        fields=fields, header=header, fmt=fmt, description=description)

    def register_features(self, source: Any,
                          description: str | None = None) -> RegisterOutcome:
        """Add features (a DataFrame's columns, or Feature records) to the Feature registry."""
        from fsstore.registry.features import register_features

        return register_features(self, source, description)

    def registry(self, name: str, *, organism: str | None = None,
                 version: str | None = None) -> Registry:
        """A registered registry version (default: the one registered last), read and checked."""
        from fsstore.registry.catalog import choose_version, load_registry

        return load_registry(self, choose_version(self, name, organism, version))

    def registries(self) -> pd.DataFrame:
        """One row per registered version, oldest first."""
        from fsstore.registry.catalog import registry_versions

        columns = ["registry", "organism", "version", "n", "fields", "hash", "registered_at",
                   "registered_by", "description"]
        rows = [{"registry": info.registry, "organism": info.organism,
                 "version": info.version, "n": info.n, "fields": list(info.fields),
                 "hash": info.hash, "registered_at": info.time, "registered_by": info.user,
                 "description": info.description} for info in registry_versions(self)]
        return pd.DataFrame(rows, columns=columns)

    # -- datasets and queries (fsstore.links, fsstore.queries, fsstore.algebra) -----------

    def link(self, source: Any, **options: Any) -> LinkOutcome:
        """Register a dataset and link its slots to sets; see :func:`fsstore.links.link`."""
        from fsstore.links import link

        return link(self, source, **options)

    def datasets(self) -> pd.DataFrame:
        """One row per dataset; see :func:`fsstore.links.datasets`."""
        from fsstore.links import datasets

        return datasets(self)

    def slot(self, dataset: str, slot: str) -> FeatureSet:
        """The set a dataset's slot holds now."""
        from fsstore.links import slot_set

        return slot_set(self, dataset, slot)

    def find(self, **filters: Any) -> pd.DataFrame:
        """Sets by name pattern, itype, registry or member (:func:`fsstore.queries.find_sets`)."""
        from fsstore.queries import find_sets

        return find_sets(self, **filters)

    def datasets_of(self, **which: Any) -> pd.DataFrame:
        """Dataset slots holding a set or a member (:func:`fsstore.queries.datasets_measuring`)."""
        from fsstore.queries import datasets_measuring

        return datasets_measuring(self, **which)

    def similar(self, query: Any, **options: Any) -> pd.DataFrame:
        """Sets overlapping a query set or list; see :func:`fsstore.queries.similar`."""
        from fsstore.queries import similar

        return similar(self, query, **options)

    def union(self, refs: Sequence[str], name: str | None = None) -> FeatureSet:
        """The union of stored sets, each member read once (see ``algebra.union_stored``)."""
        from fsstore.algebra import union_stored

        return union_stored(self, refs, name)

    def _keep_members_current(self, head: int) -> None:
        from fsstore.members import keep_current_quietly

        try:
            keep_current_quietly(self, head)
        except (FsstoreError, OSError) as error:
            log.warning("could not update the member index (the save succeeded): %s", error)

    # -- helpers --------------------------------------------------------------------------

    def _events_of(self, hash_hex: str) -> list[Event]:
        table = self.index.read(lambda view: view.find("set", "hash", hash_hex))
        return list(table.to_pylist())

    def _current_names_of(self, hash_hex: str, events: Sequence[Event]) -> list[str]:
        """The names that point at a set now (a name recorded with it may have moved on)."""
        recorded = list(dict.fromkeys(event["name"] for event in events if event.get("name")))

        def still_pointing(view: View) -> list[str]:
            return [name for name in recorded
                    if view.find("set", "name", name)["hash"].to_pylist()[-1] == hash_hex]

        return self.index.read(still_pointing) if recorded else []

    def _feature_set(self, canonical: CanonicalSet, provenance: Provenance,
                     events: Sequence[Event], name: str | None) -> FeatureSet:
        feature_set = FeatureSet.__new__(FeatureSet)
        feature_set._canonical = canonical
        feature_set.name = name
        descriptions = [event["description"] for event in events if event.get("description")]
        feature_set.description = descriptions[-1] if descriptions else None
        feature_set.report = None
        updated = _utc(events[-1]["time"]) if events else None
        feature_set.provenance = Provenance(provenance.created_at, provenance.created_by,
                                            updated)
        return feature_set

    def where(self, key: str) -> str:
        """A key's path on the local file system, or its URL."""
        return self.backend.local_path(key) or f"{self.backend.url}/{key}"

    def __repr__(self) -> str:
        return f"Store({self.location!r})"


def default_store(**options: Any) -> Store:
    """The store named by ``FSSTORE_DIR``, else the nearest ``.fsstore`` folder upward."""
    configured = os.environ.get(ENV_STORE)
    if configured:
        return Store(configured, **options)
    found = find_store()
    if found is None:
        raise StoreNotFoundError(
            f"no fsstore store in {os.getcwd()} or any parent folder; run `fsstore init` "
            f"to create one here, or point {ENV_STORE} or --store at one"
        )
    return Store(found, **options)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _check_location(location: object) -> None:
    if not isinstance(location, str | os.PathLike | Backend):
        raise InvalidInputError(
            f"a store location is a folder path or a URL such as s3://bucket/prefix (a str or "
            f"a path), not {type(location).__name__} {location!r}")
