"""Registering datasets and linking their slots to feature sets, in the index.

Two event kinds record it (see ``fsstore.index.events``):

* ``dataset``: a dataset identity (BLAKE3 of its bytes) was seen at a path, under a name,
  or had its bytes copied into the store. Recorded once per new fact: adding the same file
  again records nothing.
* ``link``: a set was put into (``linked`` true) or taken out of (``linked`` false) a slot
  of a dataset. Replacing the set of a slot records both, in one commit, so that the events
  of any one set tell on their own which datasets hold it now: the last event of each
  ``(dataset, slot)`` among them says whether the slot still holds that set.

A slot's current set is its last ``link`` event; the earlier ones are its history.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fsstore.canonical import nfc
from fsstore.dataset import DatasetSource, check_slot, file_digest, read_dataset, read_object
from fsstore.errors import (
    DatasetNotFoundError,
    FileChangedError,
    InvalidInputError,
    ReferenceNotFoundError,
)
from fsstore.featureset import FeatureSet
from fsstore.index import Event, View
from fsstore.names import check_set_name
from fsstore.references import unique_prefix

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = [
    "FILES_PREFIX",
    "LinkOutcome",
    "SlotChange",
    "current_links",
    "dataset_events",
    "dataset_file_key",
    "dataset_history",
    "datasets",
    "datasets_of_sets",
    "describe",
    "latest_labels",
    "link",
    "links_of_sets",
    "names_now",
    "open_dataset",
    "resolve_dataset",
    "shared_sets",
    "slot_set",
    "unlink",
]

log = logging.getLogger(__name__)

FILES_PREFIX: Final = "objects/files"
FEW_SETS: Final = 2
"""Up to this many sets, datasets are looked up set by set; beyond, by one scan of links
(a lookup reads a row group of each run, so a scan wins early)."""
_LINK_COLUMNS: Final = ["dataset", "slot", "hash"]


@dataclass(frozen=True)
class SlotChange:
    """What linking did to one slot."""

    slot: str
    hash: str
    """The set offered for the slot."""
    action: str
    """``linked`` (slot was empty), ``replaced``, ``unchanged`` (held this set already) or
    ``kept`` (holds another set that a derived set does not replace)."""
    previous: str | None = None
    """The set the slot held before, when it held one."""


@dataclass(frozen=True)
class LinkOutcome:
    """What :func:`link` recorded for one dataset."""

    dataset: str
    size: int
    format: str
    path: str | None
    new: bool
    """The identity was not known to the store before."""
    recorded: bool
    """Index events were recorded (False: the store already said all of it)."""
    stored: bool
    """The store holds the dataset's bytes (``objects/files``)."""
    slots: tuple[SlotChange, ...]
    notes: tuple[str, ...] = ()
    """What deriving sets from the dataset dropped or merged, one line per slot, or that
    it derived none."""

    @property
    def uid(self) -> str:
        return self.dataset[:16]


def dataset_file_key(digest: str) -> str:
    """Where a copied dataset's bytes live: ``objects/files/<first two hex>/<digest>``."""
    return f"{FILES_PREFIX}/{digest[:2]}/{digest}"


# -- registering --------------------------------------------------------------------------


def link(store: Store, source: Any, *, slots: Mapping[str, FeatureSet | str] | None = None,
         name: str | None = None, copy: bool = False, fmt: str | None = None,
         var_field: str | None = None, derive: bool = True,
         replace: bool = False) -> LinkOutcome:
    """Register a dataset and link its slots to feature sets.

    Parameters
    ----------
    store
        The store to record in.
    source
        A file path (CSV, TSV, Parquet, ``.h5ad``, 10x ``features.tsv``), a pandas
        DataFrame or an AnnData object.
    slots
        Sets to put in named slots (a :class:`FeatureSet`, saved if needed, or the name or
        hash prefix of a stored set). They replace what the slots held.
    name
        A name for the dataset (not part of its identity).
    copy
        Also keep the dataset's bytes in the store, so that it can serve them back.
    fmt, var_field
        The file format (default: from the name) and the itype of ``var`` members (default:
        ``Gene.ensembl_gene_id`` if all are Ensembl ids, else ``Gene.symbol``).
    derive
        Derive sets from the dataset (its columns, var, obs). A derived set fills an empty
        slot; it replaces the set of a slot only with ``replace``, so re-adding a dataset
        never undoes a re-annotation.
    """
    dataset_name = None if name is None else check_set_name(name, "dataset")
    if isinstance(source, str | os.PathLike):
        opened: contextlib.AbstractContextManager[DatasetSource] = contextlib.nullcontext(
            _read_unchanged(source, fmt, var_field))
    else:
        opened = read_object(source, var_field=var_field)
    with opened as read:
        given = {check_slot(slot): value for slot, value in (slots or {}).items()}
        # References are resolved before anything is saved: a wrong one records nothing.
        resolved = {slot: store.resolve(value) for slot, value in given.items()
                    if not isinstance(value, FeatureSet)}
        derived = _saved(store, read.slots) if derive else {}
        explicit = resolved | _saved(store, {slot: value for slot, value in given.items()
                                             if isinstance(value, FeatureSet)})
        stored = _store_bytes(store, read) if copy else False
        stored = stored or store.backend.exists(dataset_file_key(read.digest))
        changes: list[SlotChange] = []
        known: list[bool] = []

        def build(view: View) -> list[Event]:
            if copy:
                # A gc whose grace period this call outlived may have removed the copy
                # (gc deletes under this same lock): copy it again before recording it.
                _store_bytes(store, read)
            return _link_events(view, read, dataset_name, stored, derived, explicit,
                                replace, changes, known)

        # Committed while the source is open: an in-memory object's file is still there.
        recorded = store.index.commit(build)
    if recorded:
        _after_commit(store, recorded)
    log.info("dataset %s: %s", read.digest[:12],
             ", ".join(f"{c.slot} {c.action}" for c in changes) or "no slots")
    return LinkOutcome(read.digest, read.size, read.format, read.path, not known[0],
                       bool(recorded), stored, tuple(changes),
                       _derivation_notes(read.slots) if derive else ())


def _derivation_notes(slots: Mapping[str, FeatureSet]) -> tuple[str, ...]:
    """What turning the dataset's names into members changed, or that it gave no set."""
    if not slots:
        return ("no feature set could be derived: the dataset has no columns, var names or "
                "obs columns",)
    notes = []
    for slot, feature_set in sorted(slots.items()):
        changes = feature_set.report.changes() if feature_set.report else []
        if changes:
            notes.append(f"{slot}: {'; '.join(changes)}")
    return tuple(notes)


def _link_events(view: View, read: DatasetSource, dataset_name: str | None, stored: bool,
                 derived: Mapping[str, str], explicit: Mapping[str, str], replace: bool,
                 changes: list[SlotChange], known: list[bool]) -> list[Event]:
    """The events that record ``read`` and its slots, given the index as it is now."""
    changes.clear()
    history = view.find("dataset", "dataset", read.digest).to_pylist()
    known[:] = [bool(history)]
    events: list[Event] = []
    if _new_facts(history, read.path, dataset_name, stored):
        events.append({"kind": "dataset", "dataset": read.digest, "size": read.size,
                       "format": read.format, "path": read.path, "name": dataset_name,
                       "copied": stored})
    current = _slots_of(view.find("link", "dataset", read.digest))
    offered = [(slot, hash_hex, False) for slot, hash_hex in derived.items()
               if slot not in explicit]
    offered += [(slot, hash_hex, True) for slot, hash_hex in explicit.items()]
    for slot, hash_hex, forced in sorted(offered):
        change, slot_events = _link_slot(read.digest, slot, hash_hex, current.get(slot),
                                         forced or replace)
        changes.append(change)
        events += slot_events
    return events


def unlink(store: Store, dataset: str, slot: str) -> bool:
    """Empty a dataset's slot (its history keeps the set it held); False if it was empty."""
    digest = resolve_dataset(store, dataset)
    check_slot(slot)

    def build(view: View) -> list[Event]:
        held = _slots_of(view.find("link", "dataset", digest)).get(slot)
        if held is None:
            return []
        return [{"kind": "link", "dataset": digest, "slot": slot, "hash": held,
                 "linked": False}]

    return bool(store.index.commit(build))


def _read_unchanged(path: str | os.PathLike[str], fmt: str | None,
                    var_field: str | None) -> DatasetSource:
    """Read a dataset file, making sure it did not change while it was read."""
    before = _signature(path)
    read = read_dataset(path, fmt=fmt, var_field=var_field)
    if _signature(path) != before:
        raise FileChangedError(
            f"{read.path} changed while it was being read; nothing was recorded. Add it again "
            "once it is no longer being written", str(read.path))
    return read


def _signature(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _saved(store: Store, sets: Mapping[str, FeatureSet]) -> dict[str, str]:
    return {slot: store.put(value).feature_set.hash for slot, value in sets.items()}


def _store_bytes(store: Store, read: DatasetSource) -> bool:
    """Copy the dataset's bytes into ``objects/files``, checking they still hash the same."""
    key = dataset_file_key(read.digest)
    assert read.file is not None
    if store.backend.exists(key):
        return True
    if not store.backend.create_from_file(key, read.file):
        return True  # another writer stored the same bytes first
    copied, _ = _digest_of_key(store, key)
    if copied != read.digest:
        store.backend.delete(key)
        raise FileChangedError(
            f"{read.path or 'the dataset'} changed while it was being copied into the store "
            f"(its bytes now hash to {copied[:12]}, not {read.digest[:12]}); nothing was "
            "recorded. Add it again once it is no longer being written",
            str(read.path or ""))
    log.debug("stored the bytes of dataset %s", read.digest[:12])
    return True


def _digest_of_key(store: Store, key: str) -> tuple[str, int]:
    path = store.backend.local_path(key)
    if path is not None:
        return file_digest(path)
    from blake3 import blake3

    hasher = blake3()
    size = 0
    with store.backend.open(key) as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _new_facts(history: Sequence[Event], path: str | None, name: str | None,
               stored: bool) -> bool:
    if not history:
        return True
    if path is not None and path not in {event["path"] for event in history}:
        return True
    names = [event["name"] for event in history if event["name"]]
    if name is not None and (not names or names[-1] != name):
        return True
    return stored and not any(event["copied"] for event in history)


def _slots_of(events: pa.Table) -> dict[str, str]:
    """The current set of each slot, from a dataset's link events in commit order."""
    current: dict[str, str] = {}
    for event in events.select(["slot", "hash", "linked"]).to_pylist():
        if event["linked"]:
            current[event["slot"]] = event["hash"]
        elif current.get(event["slot"]) == event["hash"]:
            del current[event["slot"]]
    return current


def _link_slot(digest: str, slot: str, offered: str, held: str | None,
               replace: bool) -> tuple[SlotChange, list[Event]]:
    def event(hash_hex: str, linked: bool) -> Event:
        return {"kind": "link", "dataset": digest, "slot": slot, "hash": hash_hex,
                "linked": linked}

    if held is None:
        return SlotChange(slot, offered, "linked"), [event(offered, True)]
    if held == offered:
        return SlotChange(slot, offered, "unchanged", held), []
    if not replace:
        return SlotChange(slot, offered, "kept", held), []
    return SlotChange(slot, offered, "replaced", held), [event(held, False),
                                                         event(offered, True)]


def _after_commit(store: Store, events: Sequence[Event]) -> None:
    from fsstore.members import keep_current_quietly

    keep_current_quietly(store, max(int(event["seq"]) for event in events))


# -- reading ------------------------------------------------------------------------------


def resolve_dataset(store: Store, ref: str) -> str:
    """The digest of a dataset given by name, path, full digest or unique prefix (6+)."""
    return store.index.read(lambda view: _resolve(view, ref))


def _resolve(view: View, ref: str) -> str:
    if not isinstance(ref, str):
        raise InvalidInputError(f"a dataset reference is a name, a path or a digest prefix "
                                f"(a str), not {type(ref).__name__} {ref!r}")
    if not ref:
        raise DatasetNotFoundError("an empty reference names no dataset", ref)
    named = view.find("dataset", "name", nfc(ref))  # names are stored in NFC
    if named.num_rows:
        return str(named["dataset"][-1].as_py())
    at_path = view.find("dataset", "path", os.path.abspath(Path(ref).expanduser()))
    if at_path.num_rows:
        return str(at_path["dataset"][-1].as_py())
    found = unique_prefix(view, "dataset", "dataset", ref, label="dataset", plural="datasets")
    if found is not None:
        return found
    raise DatasetNotFoundError(
        f"no dataset named {ref!r}, registered at that path, or with a digest starting with "
        "it; run `fsstore datasets` to see what is registered", ref)


def current_links(view: View) -> pd.DataFrame:
    """Every slot that holds a set now: columns dataset, slot, hash."""
    events = view.table("link").select(["dataset", "slot", "hash", "linked"])
    if not events.num_rows:
        return pd.DataFrame(columns=_LINK_COLUMNS)
    # Events are in commit order, so the last of each (dataset, slot) is its state now.
    last = events.group_by(["dataset", "slot"], use_threads=False).aggregate(
        [("hash", "last"), ("linked", "last")])
    held = last.filter(last["linked_last"]).select(["dataset", "slot", "hash_last"])
    return pd.DataFrame(held.rename_columns(_LINK_COLUMNS).to_pandas())


def _current_of_sets(events: pd.DataFrame) -> pd.DataFrame:
    # Events of the wanted sets only: a replaced link left an unlink event for its set, so
    # the last event of each (dataset, slot, set) says whether the slot holds the set now.
    if events.empty:
        return pd.DataFrame(columns=_LINK_COLUMNS)
    last = events.drop_duplicates(["dataset", "slot", "hash"], keep="last")
    return pd.DataFrame(last[last["linked"]][_LINK_COLUMNS]).reset_index(drop=True)


def datasets_of_sets(store: Store, hashes: Iterable[str]) -> pd.DataFrame:
    """The slots that hold any of ``hashes`` now: columns dataset, slot, hash."""
    wanted = sorted(set(hashes))
    return store.index.read(lambda view: links_of_sets(view, wanted))


def links_of_sets(view: View, wanted: Sequence[str]) -> pd.DataFrame:
    """:func:`datasets_of_sets` on a view: set by set for a few sets, else one scan."""
    if not wanted:
        return pd.DataFrame(columns=_LINK_COLUMNS)
    if len(wanted) <= FEW_SETS:
        columns = ["dataset", "slot", "hash", "linked", "seq", "pos"]
        tables = [view.find("link", "hash", hash_hex).select(columns) for hash_hex in wanted]
        events = pa.concat_tables(tables).sort_by([("seq", "ascending"), ("pos", "ascending")])
        return _current_of_sets(events.to_pandas())
    table = view.table("link").select(["dataset", "slot", "hash", "linked"])
    events = table.filter(pc.is_in(table["hash"], pa.array(list(wanted), pa.string())))
    return _current_of_sets(events.to_pandas())


def dataset_events(view: View, digests: Sequence[str]) -> pa.Table:
    """The ``dataset`` events of some datasets, in commit order."""
    if len(digests) <= FEW_SETS:
        tables = [view.find("dataset", "dataset", digest) for digest in digests]
        if not tables:
            tables = [view.find("dataset", "dataset", "")]
        return pa.concat_tables(tables).sort_by([("seq", "ascending"), ("pos", "ascending")])
    table = view.table("dataset")
    return table.filter(pc.is_in(table["dataset"], pa.array(list(digests), pa.string())))


def latest_labels(events: pa.Table, view: View | None = None
                  ) -> dict[str, tuple[str | None, str | None]]:
    """The name and the latest path of each dataset in some ``dataset`` events.

    A dataset's name is one that still names it (see :func:`names_now`); ``view`` says
    which dataset each name names now, else ``events`` alone do.
    """
    digests = events["dataset"].to_pylist()
    names = events["name"].to_pylist()
    paths: dict[str, str | None] = {}
    for digest, path in zip(digests, events["path"].to_pylist(), strict=True):
        paths[digest] = path or paths.get(digest)
    holder: Callable[[str], str | None]
    if view is None:
        holders = {name: digest for digest, name in zip(digests, names, strict=True) if name}
        holder = holders.get
    else:
        holder = _holder_in(view)
    named = names_now(zip(digests, names, events["time"].to_pylist(), strict=True), holder)
    return {digest: (named.get(digest), paths[digest]) for digest in paths}


def names_now(events: Iterable[tuple[str, str | None, Any]],
              holder: Callable[[str], str | None]) -> dict[str, str]:
    """Each dataset's name now, from ``(dataset, name, time)`` of its ``dataset`` events.

    A name names the dataset of its last event (``holder(name)``), so a dataset whose name
    was given to another dataset since has lost it. A dataset with several names shows the
    one given latest by the clock (ties: the greater name): event times are the same in
    every store, where the order of concurrent events is not, so synced stores agree.
    """
    best: dict[str, tuple[Any, str]] = {}
    for digest, name, moment in events:
        if name is None or holder(name) != digest:
            continue
        if digest not in best or (moment, name) > best[digest]:
            best[digest] = (moment, name)
    return {digest: name for digest, (_, name) in best.items()}


def _holder_in(view: View) -> Callable[[str], str | None]:
    found: dict[str, str | None] = {}

    def holder(name: str) -> str | None:
        if name not in found:
            named = view.find("dataset", "name", name)["dataset"]
            found[name] = str(named[-1].as_py()) if len(named) else None
        return found[name]

    return holder


def datasets(store: Store) -> pd.DataFrame:
    """One row per dataset, oldest first.

    Columns: ``dataset`` (digest), ``uid``, ``name``, ``path`` (the latest path it was seen
    at), ``format``, ``size``, ``stored`` (the store holds its bytes), ``registered_at``,
    ``slots`` (slot -> set hash, now) and ``superseded_by`` (the dataset registered at the
    same path since, when the file changed on disk).
    """
    def query(view: View) -> tuple[pd.DataFrame, pd.DataFrame]:
        return view.table("dataset").to_pandas(), current_links(view)

    events, links = store.index.read(query)
    slots: dict[str, dict[str, str]] = {}
    for dataset, slot, hash_hex in links.itertuples(index=False):
        slots.setdefault(dataset, {})[slot] = hash_hex
    frame = describe(events)
    frame["slots"] = pd.Series([dict(sorted(slots.get(value, {}).items()))
                                for value in frame["dataset"]], index=frame.index, dtype=object)
    return frame


DATASET_COLUMNS: Final = ["dataset", "uid", "name", "path", "format", "size", "stored",
                          "registered_at", "slots", "superseded_by"]


def describe(events: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset of some ``dataset`` events (in commit order), oldest first."""
    if events.empty:
        return pd.DataFrame(columns=DATASET_COLUMNS)
    first = events.drop_duplicates("dataset", keep="first").reset_index(drop=True)
    named = events[events["name"].notna()]
    holders = dict(zip(named["name"], named["dataset"], strict=True))  # the last holds
    name_now = names_now(zip(named["dataset"], named["name"], named["time"], strict=True),
                         holders.get)
    stored = events.groupby("dataset", sort=False)["copied"].any()
    path, later = _paths(first["dataset"], events[events["path"].notna()])
    frame = pd.DataFrame({
        "dataset": first["dataset"],
        "uid": first["dataset"].str[:16],
        "name": first["dataset"].map(name_now),
        "path": path,
        "format": first["format"],
        "size": first["size"].astype("int64"),
        "stored": first["dataset"].map(stored).astype(bool),
        "registered_at": first["time"],
        "slots": [{} for _ in range(len(first))],
        "superseded_by": later,
    })
    frame = frame.astype({"name": object, "path": object, "superseded_by": object})
    return frame.where(frame.notna(), None)[DATASET_COLUMNS]


def _paths(digests: pd.Series, seen: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Where each dataset is, and what superseded it.

    A dataset is *current* at a path when it is the latest dataset seen there. Its path is
    the last one it is current at, else the last one it was seen at; it is superseded (by
    the dataset now at that path) only when it is current at none of its paths, so a
    changed copy of a file does not supersede the original at its own path.
    """
    now_at = seen.drop_duplicates("path", keep="last").set_index("path")["dataset"]
    visits = seen.drop_duplicates(["dataset", "path"], keep="last")
    current = visits[visits["path"].map(now_at) == visits["dataset"]]
    current_path = current.drop_duplicates("dataset", keep="last").set_index("dataset")["path"]
    last_path = visits.drop_duplicates("dataset", keep="last").set_index("dataset")["path"]
    path = digests.map(current_path).fillna(digests.map(last_path))
    superseded = digests.map(last_path).map(now_at)
    superseded = superseded.where(~digests.isin(current_path.index) & superseded.notna()
                                  & (superseded != digests), None)
    return path, superseded


def dataset_history(store: Store, ref: str) -> pd.DataFrame:
    """Every link event of a dataset, oldest first: seq, time, user, slot, hash, linked."""
    digest = resolve_dataset(store, ref)
    events = store.index.read(lambda view: view.find("link", "dataset", digest))
    return pd.DataFrame(events.select(["seq", "time", "user", "slot", "hash", "linked"])
                        .to_pandas())


def slot_set(store: Store, dataset: str, slot: str) -> FeatureSet:
    """The feature set a dataset's slot holds now, read and checked against its hash."""
    digest = resolve_dataset(store, dataset)
    held = store.index.read(lambda view: _slots_of(view.find("link", "dataset", digest)))
    if slot not in held:
        filled = ", ".join(sorted(held)) or "none"
        raise ReferenceNotFoundError(
            f"dataset {digest[:12]} has no set in slot {slot!r} (its slots: {filled})", slot)
    return store.get(held[slot])


def shared_sets(store: Store, min_datasets: int = 2) -> pd.DataFrame:
    """Sets held now by slots of at least ``min_datasets`` datasets, most shared first.

    Columns: ``hash``, ``n_datasets``, ``datasets`` (digests), ``slots`` (slot names).
    """
    links = store.index.read(current_links)
    columns = ["hash", "n_datasets", "datasets", "slots"]
    if links.empty:
        return pd.DataFrame(columns=columns)
    grouped = links.groupby("hash", sort=False).agg(
        datasets=("dataset", lambda values: sorted(set(values))),
        slots=("slot", lambda values: sorted(set(values))))
    grouped["n_datasets"] = grouped["datasets"].map(len)
    grouped = grouped[grouped["n_datasets"] >= min_datasets].reset_index()
    grouped = grouped.sort_values(["n_datasets", "hash"], ascending=[False, True],
                                  kind="stable")
    return pd.DataFrame(grouped[columns]).reset_index(drop=True)


def open_dataset(store: Store, ref: str) -> Any:
    """A binary file object over the stored bytes of a dataset added with ``copy``."""
    digest = resolve_dataset(store, ref)
    key = dataset_file_key(digest)
    try:
        return store.backend.open(key)
    except FileNotFoundError:
        raise ReferenceNotFoundError(
            f"the store does not hold the bytes of dataset {digest[:12]}; add the file again "
            "with copy (--copy) to keep them", ref) from None
