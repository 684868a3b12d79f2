"""What a process keeps of the index between reads: runs never change, so caching is safe.

A run folder's name carries a random token and its files are never modified, so anything
read from one stays true for as long as the process lives: its ``RUN.json``, the Parquet
footers of its files, and decoded row groups. Row groups are kept in a least-recently-used
cache bounded in bytes (``FSSTORE_INDEX_CACHE_MB``, default 256); footers and manifests are
small and kept while their run exists.

Lookups read, per candidate row group, only the sorted column they look up by; the other
columns are read only when that column matches. Columns whose values repeat (user, origin,
itype: under 2 bytes per row in the file) are held dictionary-encoded, which keeps a cached
row group of a million-entry history small.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["CACHE", "FileInfo", "RunCache"]

ENV_BUDGET: Final = "FSSTORE_INDEX_CACHE_MB"
_DEFAULT_MB: Final = 256
_REPEATED_BYTES_PER_ROW: Final = 2.0


@dataclass(frozen=True)
class FileInfo:
    """A projection file's footer and what lookups need of it."""

    metadata: Any
    """The Parquet footer (``pyarrow.parquet.FileMetaData``)."""
    schema: pa.Schema
    repeated: tuple[str, ...]
    """String columns to hold dictionary-encoded."""

    @cached_property
    def empty(self) -> pa.Table:
        """No rows, this file's schema (made once: it costs as much as a small read)."""
        return self.schema.empty_table()

    def bounds(self, column: str) -> list[tuple[Any, Any] | None]:
        """Per row group, the (min, max) of ``column``, or None without statistics."""
        index = _flat_columns(self.metadata).get(column)
        if index is None:
            return [None] * self.metadata.num_row_groups
        found: list[tuple[Any, Any] | None] = []
        for group in range(self.metadata.num_row_groups):
            stats = self.metadata.row_group(group).column(index).statistics
            found.append((stats.min, stats.max) if stats is not None and stats.has_min_max
                         else None)
        return found


class RunCache:
    """Footers and decoded row groups of immutable run files, shared by a whole process."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._lock = threading.Lock()
        self._files: dict[str, FileInfo] = {}
        self._bounds: dict[tuple[str, str], list[tuple[Any, Any] | None]] = {}
        self._sorted: dict[tuple[str, str, str], tuple[list[Any], list[Any]]] = {}
        self._groups: OrderedDict[tuple[str, int, tuple[str, ...] | None], pa.Table] = \
            OrderedDict()
        self._used = 0
        self.runs: dict[str, Any] = {}
        """Parsed ``RUN.json`` by run folder identity (see ``runs.list_runs``)."""

    def file(self, identity: str, source: Callable[[], Any]) -> FileInfo:
        """The footer of the file ``identity`` (opened with ``source()`` the first time)."""
        info = self._files.get(identity)
        if info is None:
            metadata = pq.ParquetFile(source()).metadata
            schema = metadata.schema.to_arrow_schema()
            info = FileInfo(metadata, schema, _repeated_columns(metadata, schema))
            with self._lock:
                self._files[identity] = info
        return info

    def bounds(self, identity: str, info: FileInfo,
               column: str) -> list[tuple[Any, Any] | None]:
        key = (identity, column)
        found = self._bounds.get(key)
        if found is None:
            found = info.bounds(column)
            with self._lock:
                self._bounds[key] = found
        return found

    def candidates(self, identity: str, info: FileInfo, column: str, low: Any,
                   high: Any | None) -> range | list[int]:
        """Row groups that may hold ``low <= column < high`` (``column == low`` if no high).

        The file is sorted by ``column``, so the groups' minima and maxima both ascend and
        two binary searches find the range.
        """
        bounds = self.bounds(identity, info, column)
        if any(bound is None for bound in bounds):
            return list(range(len(bounds)))
        key = (identity, column, "sorted")
        sorted_bounds = self._sorted.get(key)
        if sorted_bounds is None:
            sorted_bounds = ([bound[0] for bound in bounds if bound is not None],
                             [bound[1] for bound in bounds if bound is not None])
            with self._lock:
                self._sorted[key] = sorted_bounds
        minima, maxima = sorted_bounds
        start = bisect.bisect_left(maxima, low)
        end = (bisect.bisect_right(minima, low) if high is None
               else bisect.bisect_left(minima, high))
        return range(start, max(start, end))

    def group(self, identity: str, group: int, columns: tuple[str, ...] | None,
              read: Callable[[], pa.Table]) -> pa.Table:
        """Row group ``group`` of a file (only ``columns``, or all), read once then cached."""
        key = (identity, group, columns)
        with self._lock:
            table = self._groups.get(key)
            if table is not None:
                self._groups.move_to_end(key)
                return table
        table = read()
        size = table.nbytes
        if size > self.budget // 4:
            return table  # too big to be worth evicting everything else for
        with self._lock:
            if key not in self._groups:
                self._groups[key] = table
                self._used += size
            while self._used > self.budget and self._groups:
                _, evicted = self._groups.popitem(last=False)
                self._used -= evicted.nbytes
        return table

    def forget(self, prefix: str) -> None:
        """Drop everything cached of files whose identity starts with ``prefix``."""
        with self._lock:
            for identity in [key for key in self._files if key.startswith(prefix)]:
                del self._files[identity]
            for bound in [bound for bound in self._bounds if bound[0].startswith(prefix)]:
                del self._bounds[bound]
            for known in [known for known in self._sorted if known[0].startswith(prefix)]:
                del self._sorted[known]
            for group in [group for group in self._groups if group[0].startswith(prefix)]:
                self._used -= self._groups.pop(group).nbytes

    def retain(self, prefix: str, runs: set[str]) -> None:
        """Forget runs under ``prefix`` that are not in ``runs`` (deleted since)."""
        gone = [identity for identity in self.runs
                if identity.startswith(prefix) and identity not in runs]
        for identity in gone:
            self.forget(identity + "/")
            self.runs.pop(identity, None)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._bounds.clear()
            self._sorted.clear()
            self._groups.clear()
            self._used = 0
            self.runs.clear()

    @property
    def used_bytes(self) -> int:
        return self._used


def _flat_columns(metadata: Any) -> dict[str, int]:
    """Parquet column index of each top-level, non-nested column, by name."""
    if metadata.num_row_groups == 0:
        return {}
    group = metadata.row_group(0)
    paths = [group.column(index).path_in_schema for index in range(group.num_columns)]
    return {path: index for index, path in enumerate(paths) if "." not in path}


def _repeated_columns(metadata: Any, schema: pa.Schema) -> tuple[str, ...]:
    rows = max(metadata.num_rows, 1)
    flat = _flat_columns(metadata)
    repeated = []
    for field in schema:
        index = flat.get(field.name)
        if index is None or not pa.types.is_string(field.type):
            continue
        size = sum(metadata.row_group(group).column(index).total_uncompressed_size
                   for group in range(metadata.num_row_groups))
        if size / rows < _REPEATED_BYTES_PER_ROW:
            repeated.append(field.name)
    return tuple(repeated)


def _budget() -> int:
    try:
        megabytes = float(os.environ.get(ENV_BUDGET, _DEFAULT_MB))
    except ValueError:
        megabytes = _DEFAULT_MB
    return int(max(megabytes, 0) * 1024 * 1024)


CACHE: Final = RunCache(_budget())
"""The process's cache of run files."""
