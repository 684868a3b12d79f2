"""Index events: what the index records, one kind at a time, and their Arrow schemas.

An event is a flat record. Every event has the common columns below; each kind adds its
own. Events are never changed or removed: the current state (where a name points now) is
derived from the history (the last event for that name wins, by ``(seq, pos)``).

Common columns:

``seq``     commit number in this store (orders events; wall clocks never do)
``pos``     position of the event within its commit
``time``    when the event was recorded (UTC, informational only)
``user``    who recorded it
``origin``  id of the store where the event was first recorded (kept by sync)
``oseq``    the commit number in that origin store; ``(origin, oseq, pos)`` identifies it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

import pyarrow as pa

__all__ = [
    "COMMON",
    "DATASET",
    "KINDS",
    "LINK",
    "Event",
    "EventKind",
    "Projection",
    "events_to_table",
    "format_time",
    "now",
]

Event = dict[str, Any]

COMMON: Final = pa.schema([
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("pos", pa.int32(), nullable=False),
    pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("user", pa.string(), nullable=False),
    pa.field("origin", pa.string(), nullable=False),
    pa.field("oseq", pa.int64(), nullable=False),
])


@dataclass(frozen=True)
class Projection:
    """A Parquet file of a run: some columns of one kind's events, sorted for lookups."""

    file: str
    sort_by: tuple[str, ...]
    columns: tuple[str, ...] | None = None
    """None keeps every column."""
    where_not_null: str | None = None
    """Keep only events where this column is set."""


@dataclass(frozen=True)
class EventKind:
    """One kind of event: its own columns and the sorted files a run keeps of it."""

    name: str
    fields: pa.Schema
    projections: tuple[Projection, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(list(COMMON) + list(self.fields))

    @property
    def main(self) -> Projection:
        """The projection that keeps every column (the first one)."""
        return self.projections[0]


SET: Final = EventKind(
    name="set",
    fields=pa.schema([
        pa.field("hash", pa.string(), nullable=False),
        pa.field("itype", pa.string(), nullable=False),
        pa.field("dtype", pa.string()),
        pa.field("ordered", pa.bool_(), nullable=False),
        pa.field("n", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("description", pa.string()),
    ]),
    projections=(
        Projection("sets.parquet", ("hash", "seq", "pos")),
        Projection("names.parquet", ("name", "seq", "pos"), where_not_null="name"),
    ),
)
"""A set was recorded, optionally under a name (which then points at it)."""

REGISTRY: Final = EventKind(
    name="registry",
    fields=pa.schema([
        pa.field("hash", pa.string(), nullable=False),
        pa.field("registry", pa.string(), nullable=False),
        pa.field("organism", pa.string()),
        pa.field("version", pa.string(), nullable=False),
        pa.field("fields", pa.list_(pa.string()), nullable=False),
        pa.field("n", pa.int64(), nullable=False),
        pa.field("description", pa.string()),
    ]),
    projections=(
        Projection("registries.parquet", ("registry", "seq", "pos")),
        Projection("registry_tables.parquet", ("hash", "seq", "pos")),
    ),
)
"""A registry table was registered as a version of a registry (name and organism)."""


DATASET: Final = EventKind(
    name="dataset",
    fields=pa.schema([
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("path", pa.string()),
        pa.field("name", pa.string()),
        pa.field("copied", pa.bool_(), nullable=False),
    ]),
    projections=(
        Projection("datasets.parquet", ("dataset", "seq", "pos")),
        Projection("dataset_paths.parquet", ("path", "seq", "pos"), where_not_null="path"),
        Projection("dataset_names.parquet", ("name", "seq", "pos"), where_not_null="name"),
    ),
)
"""A dataset (a file's bytes, by BLAKE3) was registered, seen at a path or under a name."""

LINK: Final = EventKind(
    name="link",
    fields=pa.schema([
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("slot", pa.string(), nullable=False),
        pa.field("hash", pa.string(), nullable=False),
        pa.field("linked", pa.bool_(), nullable=False),
    ]),
    projections=(
        Projection("links.parquet", ("dataset", "slot", "seq", "pos")),
        Projection("links_by_set.parquet", ("hash", "seq", "pos")),
    ),
)
"""A set was put in (``linked``) or taken out of a dataset's slot."""

KINDS: Final[dict[str, EventKind]] = {
    kind.name: kind for kind in (SET, REGISTRY, DATASET, LINK)
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``, as stored in commits."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def events_to_table(kind: EventKind, events: Sequence[Event]) -> pa.Table:
    """An Arrow table of events of one kind, times parsed from their ISO form."""
    rows = []
    for event in events:
        row = dict(event)
        if isinstance(row.get("time"), str):
            row["time"] = datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=kind.schema)
