"""Manifests: the immutable Parquet file that holds one feature set.

A manifest has one row per member, columns ``name`` (string) and ``dtype`` (string, null
where members carry no dtype), in canonical order. The set's defining metadata and its
provenance sit in the Parquet key-value metadata under ``fsstore.*`` keys. Reading a
manifest always recomputes the hash from its content.

The hash covers what defines the set, not the file's bytes (provenance, statistics, Parquet
headers). So that a flipped bit anywhere is caught, a manifest also carries a **seal**:
``fsstore.seal``, the BLAKE3 of the whole file as written with 64 ``-`` in place of the
seal's own value, and ``fsstore.sealed`` = ``true`` in its schema metadata, so that a
damaged seal key is not mistaken for an unsealed manifest. Manifests written with pyarrow
older than 17 (which cannot add metadata after the data) or by fsstore before the seal
existed have none; they are checked by hash only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
from blake3 import blake3

from fsstore.canonical import ENCODING, CanonicalSet, canonical_members, digest
from fsstore.errors import CorruptObjectError, FsstoreError, StorageError
from fsstore.featureset import Provenance

__all__ = [
    "MANIFEST_FORMAT",
    "SEAL_KEY",
    "SETS_PREFIX",
    "decode_manifest",
    "encode_manifest",
    "manifest_key",
    "read_provenance",
    "read_seal",
    "seal_matches",
]

MANIFEST_FORMAT: Final = "fsstore.manifest.v1"
SETS_PREFIX: Final = "objects/sets"

SEAL_KEY: Final = "fsstore.seal"
SEALED_KEY: Final = "fsstore.sealed"
_UNSEALED: Final = b"-" * 64

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
    if hasattr(pq.ParquetWriter, "add_key_value_metadata"):
        metadata[SEALED_KEY] = "true"  # so that a damaged seal key is not taken for none
    names = [name for name, _ in canonical.members]
    dtypes = [dtype or None for _, dtype in canonical.members]
    table = pa.table([pa.array(names, pa.string()), pa.array(dtypes, pa.string())],
                     schema=_SCHEMA.with_metadata(metadata))
    sink = pa.BufferOutputStream()
    writer = pq.ParquetWriter(sink, table.schema, compression="zstd", use_dictionary=["dtype"])
    writer.write_table(table)
    sealed = hasattr(writer, "add_key_value_metadata")
    if sealed:
        # Only in the file's own metadata, not in the Arrow schema it also stores, so that
        # the placeholder appears once, in the footer, after all the data.
        writer.add_key_value_metadata({SEAL_KEY: _UNSEALED.decode()})
    writer.close()
    data = bytes(sink.getvalue().to_pybytes())
    return _seal(data) if sealed else data


def seal_matches(data: bytes, seal: str) -> bool:
    """Whether ``data`` (a whole manifest file) is exactly what was written under ``seal``."""
    at = data.rfind(seal.encode())
    if len(seal) != len(_UNSEALED) or at < 0:
        return False
    view = memoryview(data)
    hasher = blake3(view[:at])
    hasher.update(_UNSEALED)
    hasher.update(view[at + len(_UNSEALED):])
    return bool(hasher.hexdigest() == seal)


def read_seal(data: bytes | pq.ParquetFile) -> str | None:
    """The seal recorded in a manifest's footer, or None (an older, unsealed manifest).

    Raises ValueError when the manifest says it is sealed but its seal is gone.
    """
    parquet = data if isinstance(data, pq.ParquetFile) else pq.ParquetFile(
        pa.BufferReader(data))
    seal = (parquet.metadata.metadata or {}).get(SEAL_KEY.encode())
    if seal is None:
        if (parquet.schema_arrow.metadata or {}).get(SEALED_KEY.encode()) == b"true":
            raise ValueError("it says it is sealed but its seal is missing")
        return None
    return str(seal.decode("ascii", "replace"))


def _seal(data: bytes) -> bytes:
    at = data.rfind(_UNSEALED)
    return data[:at] + blake3(data).hexdigest().encode() + data[at + len(_UNSEALED):]


def decode_manifest(source: Any, expected_hash: str, where: str) -> tuple[CanonicalSet,
                                                                          Provenance]:
    """Parse a manifest and check it against ``expected_hash``.

    ``source`` is bytes or a path; ``where`` names it in error messages.
    """
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        # The file system refused (permissions, I/O error): nothing says the bytes are bad.
        raise StorageError(f"cannot read manifest {where}: {error.strerror or error}; check "
                           "the file's permissions and the disk, then run `fsstore verify`",
                           where) from error
    try:
        seal = read_seal(data)
        if seal is not None and not seal_matches(data, seal):
            raise _corrupt(where, expected_hash,
                           "does not match its seal (its bytes changed since it was written)")
        table = pq.read_table(pa.BufferReader(data))
        metadata = _metadata(table.schema.metadata, where)
        itype = metadata["fsstore.itype"]
        dtype = metadata["fsstore.dtype"]
        ordered = metadata["fsstore.ordered"] == "true"
        names = table.column("name").to_pylist()
        dtypes = ["" if value is None else value for value in table.column("dtype").to_pylist()]
        members = canonical_members(zip(names, dtypes, strict=True), ordered, stored=True)
        provenance = _provenance(metadata)
    except CorruptObjectError:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError, FsstoreError) as error:
        # What parsing a damaged file raises: pyarrow errors, missing metadata keys, members
        # the canonical rules refuse.
        raise _corrupt(where, expected_hash,
                       f"cannot be read as a manifest ({error})") from error
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
