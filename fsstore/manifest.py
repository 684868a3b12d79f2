"""Manifests: the immutable Parquet file that holds one feature set.

A manifest has one row per member, columns ``name`` (string) and ``dtype`` (string, null
where members carry no dtype), in canonical order. The set's defining metadata and its
provenance sit in the Parquet key-value metadata under ``fsstore.*`` keys. Reading a
manifest always recomputes the hash from its content.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from fsstore.canonical import ENCODING, CanonicalSet, canonical_members, digest
from fsstore.errors import CorruptObjectError, FsstoreError
from fsstore.featureset import Provenance

__all__ = [
    "MANIFEST_FORMAT",
    "SETS_PREFIX",
    "decode_manifest",
    "encode_manifest",
    "manifest_key",
    "read_provenance",
]

MANIFEST_FORMAT: Final = "fsstore.manifest.v1"
SETS_PREFIX: Final = "objects/sets"

_SCHEMA: Final = pa.schema([pa.field("name", pa.string(), nullable=False),
                            pa.field("dtype", pa.string())])


def manifest_key(hash_hex: str) -> str:
    """Where a set's manifest lives: ``objects/sets/<first two hex>/<hash>.parquet``."""
    return f"{SETS_PREFIX}/{hash_hex[:2]}/{hash_hex}.parquet"


def encode_manifest(canonical: CanonicalSet, provenance: Provenance) -> bytes:
    """The Parquet bytes of a manifest."""
    metadata = {
        "fsstore.format": MANIFEST_FORMAT,
        "fsstore.encoding": ENCODING,
        "fsstore.hash": digest(canonical),
        "fsstore.itype": canonical.itype,
        "fsstore.dtype": canonical.dtype,
        "fsstore.ordered": "true" if canonical.ordered else "false",
        "fsstore.n": str(len(canonical.members)),
        "fsstore.created_at": provenance.created_at.astimezone(timezone.utc).isoformat(),
        "fsstore.created_by": provenance.created_by,
    }
    names = [name for name, _ in canonical.members]
    dtypes = [dtype or None for _, dtype in canonical.members]
    table = pa.table([pa.array(names, pa.string()), pa.array(dtypes, pa.string())],
                     schema=_SCHEMA.with_metadata(metadata))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=["dtype"])
    return bytes(sink.getvalue().to_pybytes())


def decode_manifest(source: Any, expected_hash: str, where: str) -> tuple[CanonicalSet,
                                                                          Provenance]:
    """Parse a manifest and check it against ``expected_hash``.

    ``source`` is bytes, a path or a file object; ``where`` names it in error messages.
    """
    try:
        table = pq.read_table(_as_input(source))
        metadata = _metadata(table.schema.metadata, where)
        itype = metadata["fsstore.itype"]
        dtype = metadata["fsstore.dtype"]
        ordered = metadata["fsstore.ordered"] == "true"
        names = table.column("name").to_pylist()
        dtypes = ["" if value is None else value for value in table.column("dtype").to_pylist()]
        members = canonical_members(zip(names, dtypes, strict=True), ordered)
        provenance = _provenance(metadata)
    except CorruptObjectError:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError, FsstoreError) as error:
        raise _corrupt(where, expected_hash, f"cannot be read as a manifest ({error})") from None
    canonical = CanonicalSet(itype=itype, dtype=dtype, ordered=ordered, members=members)
    actual = digest(canonical)
    if actual != expected_hash:
        raise _corrupt(where, expected_hash, f"hashes to {actual}")
    return canonical, provenance


def read_provenance(source: Any, where: str) -> Provenance:
    """Creation time and creator from a manifest's footer, without reading its members."""
    try:
        schema = pq.read_schema(_as_input(source))
        return _provenance(_metadata(schema.metadata, where))
    except CorruptObjectError:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError) as error:
        raise _corrupt(where, "", f"cannot be read as a manifest ({error})") from None


def _as_input(source: Any) -> Any:
    return pa.BufferReader(source) if isinstance(source, bytes | bytearray) else source


def _metadata(raw: dict[bytes, bytes] | None, where: str) -> dict[str, str]:
    metadata = {key.decode(): value.decode() for key, value in (raw or {}).items()}
    found = metadata.get("fsstore.format")
    if found != MANIFEST_FORMAT:
        raise _corrupt(where, "", f"is not an fsstore manifest (format {found!r})")
    return metadata


def _provenance(metadata: dict[str, str]) -> Provenance:
    return Provenance(
        created_at=datetime.fromisoformat(metadata["fsstore.created_at"]),
        created_by=metadata["fsstore.created_by"],
    )


def _corrupt(where: str, expected: str, problem: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"manifest {where} {problem}; it is damaged or was modified. "
        "Run `fsstore verify --repair` to quarantine it",
        where,
        expected,
    )
