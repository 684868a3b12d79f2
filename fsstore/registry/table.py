"""Registry tables: canonical encoding, BLAKE3 identity and Parquet form (encoding version 1).

A registry table is a reference table of valid identifiers (the genes of one GENCODE
release, the registered Features) with one column per *field*. Like a feature set, it is
stored once, at a path derived from the hash of its canonical encoding, and never changed.

This module is the executable form of the README section "Registry encoding, version 1".
The encoding is a sequence of netstrings (``<decimal byte length>:<UTF-8 bytes>,``)::

    field("fsstore.registry.v1") field(name) field(organism or "")
    field(decimal k) then the k field names, sorted by their UTF-8 bytes
    field(decimal n) then the n records, each the k netstrings of its cells in field order

A missing cell is encoded as the empty string. Records are sorted by the bytes of their
encoding (the concatenation of their k netstrings) and exact repeats are dropped, so row
order, column order and repeated rows of the input never change the hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Final, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from blake3 import blake3

from fsstore.errors import CorruptObjectError, FsstoreError, InvalidInputError, preview
from fsstore.featureset import Provenance
from fsstore.names import check_name
from fsstore.netstrings import EMPTY, concatenated, netstring, netstrings

__all__ = [
    "REGISTRIES_PREFIX",
    "REGISTRY_ENCODING",
    "REGISTRY_FORMAT",
    "RegistryTable",
    "build_table",
    "check_field_name",
    "check_registry_name",
    "decode_registry",
    "encode_registry",
    "encode_registry_parquet",
    "encode_registry_reference",
    "registry_key",
]

REGISTRY_ENCODING: Final = "fsstore.registry.v1"
REGISTRY_FORMAT: Final = "fsstore.registry-table.v1"
REGISTRIES_PREFIX: Final = "objects/registries"

_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REGISTRY_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Unicode White_Space characters; a cell made only of these is missing.
_BLANK: Final = "^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
_CONTROL: Final = r"[\x{00}-\x{1f}\x{7f}-\x{9f}]"


@dataclass(frozen=True)
class RegistryTable:
    """What defines a registry table's identity, in canonical form.

    ``columns`` holds one string column per field, in field order, records in canonical
    order, missing cells as nulls. Build one with :func:`build_table`.
    """

    name: str
    organism: str
    """The organism, or "" for registries that have none (Feature)."""
    fields: tuple[str, ...]
    columns: pa.Table
    dropped: int = 0
    """Input rows dropped while building: exact repeats and rows with every cell missing."""

    @cached_property
    def hash(self) -> str:
        return blake3(encode_registry(self)).hexdigest()

    @property
    def n(self) -> int:
        return int(self.columns.num_rows)

    def column(self, field: str) -> list[str | None]:
        return list(self.columns.column(field).to_pylist())


def registry_key(hash_hex: str) -> str:
    """Where a registry table lives: ``objects/registries/<first two hex>/<hash>.parquet``."""
    return f"{REGISTRIES_PREFIX}/{hash_hex[:2]}/{hash_hex}.parquet"


def check_registry_name(name: object) -> str:
    """A registry name is an identifier, optionally dotted (``Gene``, ``bionty.Gene``)."""
    if not isinstance(name, str) or not _REGISTRY_NAME.match(name):
        raise InvalidInputError(
            f"registry name {name!r} is not an identifier (letters, digits and _, not "
            "starting with a digit, optionally dotted); for example 'Gene' or 'CellType'"
        )
    return name


def check_field_name(field: object) -> str:
    if not isinstance(field, str) or not _IDENTIFIER.match(field):
        raise InvalidInputError(
            f"registry field name {field!r} is not an identifier (letters, digits and _, "
            "not starting with a digit); name it like 'ensembl_gene_id' or 'symbol'"
        )
    return field


Cells: TypeAlias = "Sequence[Any] | pa.Array | pa.ChunkedArray"


def build_table(name: str, organism: str | None, columns: Mapping[str, Cells]) -> RegistryTable:
    """Validate and canonicalise a registry table given as field name -> cells.

    Cells are text or missing (None, NaN, blank); text is normalised to NFC and may not
    hold control characters. Raises :class:`~fsstore.errors.InvalidInputError` otherwise.
    """
    name = check_registry_name(name)
    organism_text = "" if organism is None else check_name(organism, "organism")
    if not columns:
        raise InvalidInputError(f"registry {name} needs at least one field; none were given")
    fields = sorted((check_field_name(field) for field in columns), key=lambda f: f.encode())
    arrays = [_cells(columns[field], field) for field in fields]
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise InvalidInputError(f"the fields of registry {name} have different lengths")
    rows = _row_encodings(arrays)
    present = pc.invert(pc.equal(pc.binary_length(rows),
                                 _all_missing_length(len(fields))))
    kept = pc.indices_nonzero(present)
    order = pc.take(kept, pc.sort_indices(pc.take(rows, kept)))
    sorted_rows = pc.take(rows, order)
    unique = _first_of_runs(sorted_rows)
    order = pc.take(order, unique)
    table = pa.table([pc.take(array, order).cast(pa.string()) for array in arrays],
                     names=list(fields))
    if table.num_rows == 0:
        raise InvalidInputError(f"registry {name} has no records with any value; "
                                "check the file and the columns chosen")
    dropped = len(arrays[0]) - table.num_rows
    return RegistryTable(name, organism_text, tuple(fields), table, dropped)


def encode_registry(table: RegistryTable) -> bytes:
    """The canonical bytes of a registry table (see the module docstring)."""
    header = [REGISTRY_ENCODING, table.name, table.organism, str(len(table.fields)),
              *table.fields, str(table.n)]
    arrays = [_filled(table.columns.column(field)) for field in table.fields]
    rows = _row_encodings(arrays)
    return b"".join(netstring(value) for value in header) + concatenated(rows)


def encode_registry_reference(table: RegistryTable) -> bytes:
    """The same bytes as :func:`encode_registry`, written as plainly as the README reads."""
    columns = [["" if cell is None else cell for cell in table.column(field)]
               for field in table.fields]
    records = sorted({b"".join(netstring(cell) for cell in record)
                      for record in zip(*columns, strict=True)})
    header = [REGISTRY_ENCODING, table.name, table.organism, str(len(table.fields)),
              *table.fields, str(len(records))]
    return b"".join(netstring(value) for value in header) + b"".join(records)


def encode_registry_parquet(table: RegistryTable, provenance: Provenance,
                            version: str) -> bytes:
    """The Parquet bytes of a registry table.

    ``version`` is the label the table is first registered under; it is kept in the
    metadata for people and tools reading the file alone, and is not part of the hash.
    """
    metadata = {
        "fsstore.format": REGISTRY_FORMAT,
        "fsstore.encoding": REGISTRY_ENCODING,
        "fsstore.hash": table.hash,
        "fsstore.registry": table.name,
        "fsstore.organism": table.organism,
        "fsstore.fields": json.dumps(list(table.fields)),
        "fsstore.n": str(table.n),
        "fsstore.version": version,
        "fsstore.created_at": provenance.created_at.astimezone(timezone.utc).isoformat(),
        "fsstore.created_by": provenance.created_by,
    }
    data = table.columns.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def decode_registry(source: Any, expected_hash: str,
                    where: str) -> tuple[RegistryTable, Provenance]:
    """Read a registry table and check it against ``expected_hash``.

    ``source`` is bytes, a path or a file object; ``where`` names it in error messages.
    """
    try:
        data = pq.read_table(pa.BufferReader(source) if isinstance(source, bytes | bytearray)
                             else source)
        raw = data.schema.metadata or {}
        metadata = {key.decode(): value.decode() for key, value in raw.items()}
        if metadata.get("fsstore.format") != REGISTRY_FORMAT:
            raise _corrupt(where, expected_hash,
                           f"is not an fsstore registry table "
                           f"(format {metadata.get('fsstore.format')!r})")
        fields = json.loads(metadata["fsstore.fields"])
        columns = {field: data.column(field) for field in fields}
        table = build_table(metadata["fsstore.registry"],
                            metadata["fsstore.organism"] or None, columns)
        provenance = Provenance(datetime.fromisoformat(metadata["fsstore.created_at"]),
                                metadata["fsstore.created_by"])
    except CorruptObjectError:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError, TypeError,
            FsstoreError) as error:
        raise _corrupt(where, expected_hash,
                       f"cannot be read as a registry table ({error})") from None
    if table.hash != expected_hash:
        raise _corrupt(where, expected_hash, f"hashes to {table.hash}")
    return table, provenance


def _cells(values: Cells, field: str) -> pa.Array:
    """Cells of one field as a large_string array, missing cells as nulls, text in NFC."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pd.Series):
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            values = values.tolist()  # mixed objects: checked one by one below
    if isinstance(values, pa.Array):
        array = values
    else:
        items = values.tolist() if hasattr(values, "tolist") else list(values)
        cleaned = [None if _is_missing(item) else item for item in items]
        not_text = [item for item in cleaned if item is not None and not isinstance(item, str)]
        if not_text:
            raise InvalidInputError(
                f"registry field {field!r} holds {len(not_text):,} values that are not text: "
                f"{preview(not_text)}; registry fields hold identifiers, so convert them to "
                "text first"
            )
        array = pa.array([None if item is None else str(item) for item in cleaned],
                         pa.large_string())
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
            or pa.types.is_null(array.type)):
        raise InvalidInputError(
            f"registry field {field!r} has Arrow type {array.type}; registry fields hold "
            "identifiers as text, so convert the column to strings first"
        )
    array = array.cast(pa.large_string())
    blank = pc.match_substring_regex(array, _BLANK)
    array = pc.if_else(blank, pa.scalar(None, pa.large_string()), array)
    control = pc.fill_null(pc.match_substring_regex(array, _CONTROL), False)
    if pc.any(control).as_py():
        bad = pc.filter(array, control).to_pylist()
        raise InvalidInputError(
            f"registry field {field!r} has {len(bad):,} values with a control character (tab, "
            f"newline, ...): {preview(bad)}; this usually means the file was split wrongly"
        )
    return pc.utf8_normalize(array, form="NFC")


def _is_missing(item: Any) -> bool:
    if item is None:
        return True
    if isinstance(item, float):
        return item != item
    return bool(item is pd.NA or item is pd.NaT)


def _filled(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.fill_null(values.cast(pa.large_string()), EMPTY)


def _row_encodings(arrays: Sequence[pa.Array]) -> pa.Array:
    """Each record's encoding: the netstrings of its cells, concatenated, as binary."""
    parts = [netstrings(pc.fill_null(array, EMPTY)) for array in arrays]
    joined = pc.binary_join_element_wise(*parts, EMPTY)
    return joined.cast(pa.large_binary())


def _all_missing_length(k: int) -> int:
    return len(b"0:,") * k


def _first_of_runs(sorted_rows: pa.Array) -> pa.Array:
    """Positions of the first of each run of equal values in a sorted array."""
    n = len(sorted_rows)
    if n == 0:
        return pa.array([], pa.int64())
    differs = pc.not_equal(sorted_rows.slice(1), sorted_rows.slice(0, n - 1))
    keep = np.concatenate([[True], differs.to_numpy(zero_copy_only=False)])
    return pa.array(np.flatnonzero(keep))


def _corrupt(where: str, expected: str, problem: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"registry table {where} {problem}; it is damaged or was modified. "
        "Run `fsstore verify --repair` to quarantine it",
        where,
        expected,
    )
