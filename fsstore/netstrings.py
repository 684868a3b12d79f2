"""Netstrings, the framing of every hashed encoding in fsstore (sets, registry tables).

A netstring is ``<decimal byte length>:<UTF-8 bytes>,``: ``"CD8A"`` is ``4:CD8A,``. Framing
each value with its length makes a concatenation of values unambiguous, so equal bytes mean
equal sequences of values. The functions here work on one string, or on a whole Arrow array
at once, without a Python loop over its values.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["COLON", "COMMA", "EMPTY", "concatenated", "netstring", "netstrings",
           "values_buffer"]

COLON: Final = pa.scalar(":", pa.large_string())
COMMA: Final = pa.scalar(",", pa.large_string())
EMPTY: Final = pa.scalar("", pa.large_string())


def netstring(value: str) -> bytes:
    """``value`` as one netstring."""
    data = value.encode("utf-8")
    return b"%d:%s," % (len(data), data)


def netstrings(values: pa.Array) -> pa.Array:
    """Each value of a ``large_string`` array as its netstring (lengths count bytes)."""
    lengths = pc.cast(pc.binary_length(values), pa.large_string())
    return pc.binary_join_element_wise(lengths, COLON, values, COMMA, EMPTY)


def values_buffer(values: pa.Array) -> memoryview:
    """The values of a ``large_string`` or ``large_binary`` array back to back, uncopied."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)
    start = int(offsets[values.offset])
    end = int(offsets[values.offset + len(values)])
    return memoryview(values.buffers()[2])[start:end]


def concatenated(values: pa.Array) -> bytes:
    """The values of a ``large_string`` or ``large_binary`` array back to back, as bytes."""
    if len(values) == 0:
        return b""
    return bytes(values_buffer(values))
