"""The netstring framing every hashed encoding uses, one value at a time and array-wise."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from fsstore.netstrings import concatenated, netstring, netstrings, values_buffer

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def test_netstring_counts_bytes_not_characters() -> None:
    assert netstring("CD8A") == b"4:CD8A,"
    assert netstring("") == b"0:,"
    assert netstring("é") == b"2:\xc3\xa9,"


@given(st.lists(texts, max_size=30), st.integers(min_value=0, max_value=5))
def test_array_framing_equals_framing_each_value(values: list[str], skip: int) -> None:
    # A sliced array (offset > 0) must frame exactly the values it shows.
    array = pa.array(["ignored"] * skip + values, pa.large_string()).slice(skip)
    expected = b"".join(netstring(value) for value in values)
    assert concatenated(netstrings(array)) == expected
    assert concatenated(array) == "".join(values).encode("utf-8")
    if values:
        assert bytes(values_buffer(netstrings(array))) == expected
