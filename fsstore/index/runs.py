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

import bisect
import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, overload

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from blake3 import blake3

from fsstore.backend import Backend
from fsstore.commit_ranges import folder_range, new_folder
from fsstore.errors import IndexCorruptError, first_line
from fsstore.index.cache import CACHE
from fsstore.index.events import KINDS, EventKind, Projection

__all__ = [
    "RUNS_PREFIX",
    "RUN_FORMAT",
    "RUN_MANIFEST",
    "Run",
    "column_sizes",
    "list_runs",
    "project",
    "read_columns",
    "read_projection",
    "write_run",
]

RUN_FORMAT: Final = "fsstore.run.v1"
RUNS_PREFIX: Final = "index/runs"
RUN_MANIFEST: Final = "RUN.json"
_ROW_GROUP: Final = 4_096


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
    seen = set()
    for key in backend.keys(RUNS_PREFIX):
        folder, _, file = key.rpartition("/")
        if file != RUN_MANIFEST or folder_range(folder) is None:
            continue
        identity = f"{backend.url}/{folder}"
        seen.add(identity)
        run = CACHE.runs.get(identity)
        if run is None:
            run = _read_run(backend, folder)
            if run is None:
                continue
            CACHE.runs[identity] = run
        runs.append(run)
    CACHE.retain(f"{backend.url}/{RUNS_PREFIX}/", seen)
    return runs


def _read_run(backend: Backend, folder: str) -> Run | None:
    try:
        manifest = json.loads(backend.read(f"{folder}/{RUN_MANIFEST}"))
    except FileNotFoundError:
        return None  # deleted by a concurrent merge
    except ValueError:
        return None  # RUN.json is written in one exclusive create; a bad one is foreign
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        return None
    try:
        return Run(int(manifest["first"]), int(manifest["last"]), folder,
                   dict(manifest["rows"]), dict(manifest["files"]))
    except (KeyError, TypeError, ValueError):
        return None


def write_run(backend: Backend, first: int, last: int, tables: dict[str, pa.Table]) -> Run:
    """Write and publish a run of the given events (one table per kind)."""
    folder = new_folder(RUNS_PREFIX, first, last)
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
    the range are read, and of those only the ``column`` until it matches (see
    ``fsstore.index.cache``). ``high=None`` with a ``low`` means ``column == low``.
    """
    file = _RunFile(backend, run, projection.file)
    if column is None:
        return file.open().read()
    found = []
    for group in CACHE.candidates(file.identity, file.info, column, low, high):
        keys = CACHE.group(file.identity, group, (column,),
                           partial(_read_group, file, group, [column], False))
        values = keys.column(0)
        if values.null_count == 0 and values.num_chunks == 1:
            # Sorted within the group: two binary searches find the rows.
            start, end = _sorted_range(values.chunk(0), low, high)
            if start == end:
                continue
            rows = CACHE.group(file.identity, group, None,
                               partial(_read_group, file, group, None, True))
            found.append(rows.slice(start, end - start))
            continue
        mask = pc.equal(values, low) if high is None else pc.and_(
            pc.greater_equal(values, low), pc.less(values, high))
        if not pc.any(mask).as_py():
            continue
        rows = CACHE.group(file.identity, group, None,
                           partial(_read_group, file, group, None, True))
        found.append(rows.filter(mask))
    if not found:
        return file.info.empty
    return pa.concat_tables(found).cast(file.info.schema)


class _Values(Sequence[Any]):
    """An Arrow array seen as a Python sequence, for ``bisect``."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self.values[index].to_pylist()
        return self.values[index].as_py()


def _sorted_range(values: pa.Array, low: Any, high: Any | None) -> tuple[int, int]:
    """Positions [start, end) of ``low <= value < high`` (``== low`` without high)."""
    sequence = _Values(values)
    start = bisect.bisect_left(sequence, low)
    end = (bisect.bisect_right(sequence, low, lo=start) if high is None
           else bisect.bisect_left(sequence, high, lo=start))
    return start, end


def read_columns(backend: Backend, run: Run, projection: Projection,
                 columns: list[str]) -> pa.Table:
    """Whole columns of a run's projection file (those it has of ``columns``)."""
    file = _RunFile(backend, run, projection.file)
    present = [column for column in columns if column in file.info.schema.names]
    return file.open().read(columns=present, use_threads=False)


def column_sizes(backend: Backend, run: Run, projection: Projection) -> dict[str, int]:
    """Uncompressed bytes of each top-level column of a run's projection file."""
    file = _RunFile(backend, run, projection.file)
    metadata = file.info.metadata
    sizes: dict[str, int] = {}
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            name = chunk.path_in_schema.split(".")[0]
            sizes[name] = sizes.get(name, 0) + chunk.total_uncompressed_size
    return sizes


def _read_group(file: _RunFile, group: int, columns: list[str] | None,
                compact: bool) -> pa.Table:
    return file.open(compact=compact).read_row_group(group, columns)


class _RunFile:
    """One Parquet file of a run, opened with its cached footer.

    A file that cannot be read (a failed page checksum, a torn footer, an I/O error) is an
    :class:`IndexCorruptError` naming it; a missing one stays a ``FileNotFoundError``, which
    readers take as a compaction having moved it and retry on a newer view.
    """

    def __init__(self, backend: Backend, run: Run, file: str) -> None:
        self.key = run.key(file)
        self.backend = backend
        self.identity = f"{backend.url}/{self.key}"
        with self.reading():
            self.info = CACHE.file(self.identity, self._source)

    def open(self, *, compact: bool = False) -> _CheckedParquetFile:
        """The file; ``compact`` reads repetitive string columns dictionary-encoded."""
        with self.reading():
            opened = pq.ParquetFile(self._source(), metadata=self.info.metadata,
                                    read_dictionary=(list(self.info.repeated) if compact
                                                     else None),
                                    page_checksum_verification=True)
        return _CheckedParquetFile(self, opened)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as error:
            reason = first_line(error)
            raise IndexCorruptError(
                f"index file {self.backend.url}/{self.key} cannot be read ({reason}); it is "
                "damaged: run `fsstore verify --repair` to rebuild the index from the rest",
                self.key,
            ) from error

    def _source(self) -> Any:
        path = self.backend.local_path(self.key)
        if path is not None:
            return path
        return pa.BufferReader(self.backend.read(self.key))


class _CheckedParquetFile:
    """The reads of a run file that the index makes, with damage named as its file."""

    def __init__(self, file: _RunFile, opened: pq.ParquetFile) -> None:
        self.file = file
        self.opened = opened

    def read(self, **options: Any) -> pa.Table:
        with self.file.reading():
            return self.opened.read(**options)

    def read_row_group(self, group: int, columns: list[str] | None) -> pa.Table:
        with self.file.reading():
            return self.opened.read_row_group(group, columns)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=_ROW_GROUP,
                   write_page_checksum=True, use_dictionary=_repetitive(table))
    return bytes(sink.getvalue().to_pybytes())


def _repetitive(table: pa.Table) -> list[str]:
    """Columns worth dictionary-encoding: values repeat (user, itype) rather than not (hash).

    A dictionary tried on unique values (hashes, times) makes the file bigger and lookups
    slower (a third, for hashes), so only these columns get one.
    """
    names = []
    for name in table.column_names:
        column = table[name]
        if pa.types.is_boolean(column.type) or pa.types.is_nested(column.type):
            continue
        if table.num_rows < 2 or pc.count_distinct(column).as_py() * 2 <= table.num_rows:
            names.append(name)
    return names
