"""Re-hashing a manifest file without building Python objects of its members.

A manifest stores its members in canonical order, so the canonical encoding of the set is
the netstrings of its metadata fields followed by the netstrings of its rows, as stored.
Computing that with Arrow kernels and hashing it gives the set's hash at close to the
speed of reading the file. A manifest whose rows were changed in any way, reordered
included, hashes differently: for verification that strictness is right, since a manifest
is written once, in canonical order, and never modified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from blake3 import blake3

from fsstore.canonical import ENCODING
from fsstore.manifest import MANIFEST_FORMAT, read_seal, seal_matches
from fsstore.netstrings import COLON, COMMA, EMPTY, netstring, netstrings, values_buffer

__all__ = ["ManifestDamage", "manifest_digest", "manifest_metadata", "sealed_digest"]

_PARQUET_MAGIC: Final = b"PAR1"
_NO_DTYPE: Final = pa.scalar(",0:,", pa.large_string())


class ManifestDamage(Exception):  # noqa: N818 - a finding, raised only inside verify
    """A manifest that cannot be read; ``problem`` is ``truncated`` or ``corrupt``."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


def manifest_digest(path_or_bytes: Any) -> tuple[str, str | None]:
    """The hash of the set a manifest holds, computed from its rows as stored, and the hash
    its metadata records (``fsstore.hash``, None if absent).

    Raises :class:`ManifestDamage` when the file is not a readable manifest.
    """
    data = (bytes(path_or_bytes) if isinstance(path_or_bytes, bytes | bytearray)
            else Path(path_or_bytes).read_bytes())
    _check_footer(data)
    try:
        seal = read_seal(data)
        if seal is not None and not seal_matches(data, seal):
            raise ManifestDamage("corrupt", "does not match its seal (its bytes changed "
                                 "since it was written)")
        table = pq.read_table(pa.BufferReader(data))
        metadata = manifest_metadata(table.schema.metadata)
        names = table.column("name").combine_chunks()
        dtypes = table.column("dtype").combine_chunks()
    except ManifestDamage:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError, UnicodeDecodeError) as error:
        raise ManifestDamage("corrupt", f"cannot be read as a manifest ({error})") from None
    if names.null_count:
        raise ManifestDamage("corrupt", "has members without a name")
    header = [ENCODING, metadata["fsstore.itype"], metadata["fsstore.dtype"],
              "1" if metadata["fsstore.ordered"] == "true" else "0", str(len(table))]
    hasher = blake3()
    hasher.update(b"".join(netstring(value) for value in header))
    if len(table):
        names = names.cast(pa.large_string())
        lengths = pc.cast(pc.binary_length(names), pa.large_string())
        if dtypes.null_count == len(dtypes):
            # No member carries a dtype (every set but Feature sets): one join does it.
            members = pc.binary_join_element_wise(lengths, COLON, names, _NO_DTYPE, EMPTY)
        else:
            members = pc.binary_join_element_wise(
                lengths, COLON, names, COMMA,
                netstrings(pc.fill_null(dtypes.cast(pa.large_string()), "")), EMPTY)
        hasher.update(values_buffer(members))
    return str(hasher.hexdigest()), metadata.get("fsstore.hash")


def sealed_digest(data: bytes) -> str | None:
    """The hash a sealed manifest records, once its seal shows its bytes are intact.

    None for a manifest without a seal (check it with :func:`manifest_digest`); raises
    :class:`ManifestDamage` when the bytes do not match the seal.
    """
    _check_footer(data)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        seal = read_seal(parquet)
        if seal is None:
            return None
        if not seal_matches(data, seal):
            raise ManifestDamage("corrupt", "does not match its seal (its bytes changed "
                                 "since it was written)")
        metadata = manifest_metadata(parquet.schema_arrow.metadata)
    except ManifestDamage:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError, UnicodeDecodeError) as error:
        raise ManifestDamage("corrupt", f"cannot be read as a manifest ({error})") from None
    recorded = metadata.get("fsstore.hash")
    if recorded is None:
        raise ManifestDamage("corrupt", "records no hash")
    return recorded


def manifest_metadata(raw: dict[bytes, bytes] | None) -> dict[str, str]:
    """The ``fsstore.*`` metadata of a manifest; ManifestDamage if it is not one."""
    metadata = {key.decode(): value.decode() for key, value in (raw or {}).items()}
    if metadata.get("fsstore.format") != MANIFEST_FORMAT:
        raise ManifestDamage(
            "corrupt", f"is not an fsstore manifest (format {metadata.get('fsstore.format')!r})")
    missing = [key for key in ("fsstore.itype", "fsstore.dtype", "fsstore.ordered")
               if key not in metadata]
    if missing:
        raise ManifestDamage("corrupt", f"lacks the metadata {', '.join(missing)}")
    return metadata


def _check_footer(data: bytes) -> None:
    if len(data) < 12 or not data.endswith(_PARQUET_MAGIC):
        raise ManifestDamage("truncated", f"is truncated ({len(data)} bytes, no Parquet "
                             "footer)")
    if not data.startswith(_PARQUET_MAGIC):
        raise ManifestDamage("corrupt", "does not start as a Parquet file")
