"""Runs: compacted, sorted Parquet snapshots of a contiguous range of commits.

A run lives in ``index/runs/<first>-<last>-<token>/`` (16-digit commit numbers, a random
token so that two compactions never collide). It holds one or more sorted Parquet files per
event kind and, written last, ``RUN.json``; a run without ``RUN.json`` is invisible::

    {"format": "fsstore.run.v1", "first": 1, "last": 64, "rows": {"set": 64},
     "files": {"sets.parquet": {"bytes": 1234, "blake3": "<hex>"}, ...}}

Readers combine the runs that chain from commit 1 with the journal commits after the last
of them. Runs are immutable; a merge writes a new run covering two older ones, which are
then deleted.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from blake3 import blake3

from fsstore.backend import Backend
from fsstore.index.events import KINDS, EventKind, Projection

__all__ = [
    "RUNS_PREFIX",
    "RUN_FORMAT",
    "Run",
    "covering_chain",
    "list_runs",
    "project",
    "read_projection",
    "write_run",
]

RUN_FORMAT: Final = "fsstore.run.v1"
RUNS_PREFIX: Final = "index/runs"
RUN_MANIFEST: Final = "RUN.json"
_ROW_GROUP: Final = 32_768
_FOLDER: Final = re.compile(r"^(\d{16})-(\d{16})-([0-9a-f]+)$")


@dataclass(frozen=True)
class Run:
    """A published run: its commit range, folder and row counts per kind."""

    first: int
    last: int
    folder: str
    rows: dict[str, int]
    files: dict[str, dict[str, Any]]

    @property
    def size(self) -> int:
        return sum(self.rows.values())

    def key(self, file: str) -> str:
        return f"{self.folder}/{file}"


def list_runs(backend: Backend) -> list[Run]:
    """Every published run, in no particular order."""
    runs = []
    for entry in backend.list(RUNS_PREFIX):
        folder, _, file = entry.key.rpartition("/")
        if file != RUN_MANIFEST or not _FOLDER.match(folder.rpartition("/")[2]):
            continue
        try:
            manifest = json.loads(backend.read(entry.key))
        except FileNotFoundError:
            continue  # deleted by a concurrent merge
        except ValueError:
            continue  # RUN.json is written in one exclusive create; a bad one is foreign
        if manifest.get("format") != RUN_FORMAT:
            continue
        runs.append(Run(manifest["first"], manifest["last"], folder, manifest["rows"],
                        manifest["files"]))
    return runs


def covering_chain(runs: Iterable[Run]) -> list[Run]:
    """The runs that cover commits 1..k without gaps, preferring the widest at each step."""
    by_first: dict[int, Run] = {}
    for run in runs:
        best = by_first.get(run.first)
        if best is None or run.last > best.last:
            by_first[run.first] = run
    chain: list[Run] = []
    following = 1
    while following in by_first:
        run = by_first[following]
        chain.append(run)
        following = run.last + 1
    return chain


def write_run(backend: Backend, first: int, last: int, tables: dict[str, pa.Table]) -> Run:
    """Write and publish a run of the given events (one table per kind)."""
    folder = f"{RUNS_PREFIX}/{first:016d}-{last:016d}-{secrets.token_hex(4)}"
    files: dict[str, dict[str, Any]] = {}
    rows: dict[str, int] = {}
    for kind_name, table in tables.items():
        kind = KINDS[kind_name]
        rows[kind_name] = table.num_rows
        for projection in kind.projections:
            data = _parquet_bytes(project(table, projection))
            backend.create(f"{folder}/{projection.file}", data)
            files[projection.file] = {"bytes": len(data), "blake3": blake3(data).hexdigest()}
    manifest = {"format": RUN_FORMAT, "first": first, "last": last, "rows": rows,
                "files": files}
    backend.create(f"{folder}/{RUN_MANIFEST}", json.dumps(manifest, indent=1).encode())
    return Run(first, last, folder, rows, files)


def project(table: pa.Table, projection: Projection) -> pa.Table:
    """Select, filter and sort a kind's events as a projection file keeps them."""
    if projection.where_not_null:
        table = table.filter(pc.is_valid(table[projection.where_not_null]))
    if projection.columns is not None:
        table = table.select(list(projection.columns))
    return table.sort_by([(column, "ascending") for column in projection.sort_by])


def read_projection(backend: Backend, run: Run, kind: EventKind, projection: Projection,
                    column: str | None = None, low: str | None = None,
                    high: str | None = None) -> pa.Table:
    """Rows of a run's projection, all of them or those with ``low <= column < high``.

    The projection is sorted by ``column``, so only row groups whose statistics overlap
    the range are read. ``high=None`` with a ``low`` means ``column == low``.
    """
    source = _source(backend, run.key(projection.file))
    parquet = pq.ParquetFile(source, page_checksum_verification=True)
    if column is None:
        return parquet.read()
    index = parquet.schema_arrow.get_field_index(column)
    groups = []
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            groups.append(group)
            continue
        upper_ok = stats.min < high if high is not None else stats.min <= low
        if upper_ok and stats.max >= low:
            groups.append(group)
    if not groups:
        return parquet.schema_arrow.empty_table()
    table = parquet.read_row_groups(groups)
    values = table[column]
    mask = pc.equal(values, low) if high is None else pc.and_(
        pc.greater_equal(values, low), pc.less(values, high))
    return table.filter(mask)


def _source(backend: Backend, key: str) -> Any:
    path = backend.local_path(key)
    if path is not None:
        return path
    return pa.BufferReader(backend.read(key))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=_ROW_GROUP,
                   write_page_checksum=True)
    return bytes(sink.getvalue().to_pybytes())
