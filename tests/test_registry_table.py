"""The registry table encoding: test vectors, order independence, Parquet round trip, damage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from fsstore.errors import CorruptObjectError, InvalidInputError
from fsstore.featureset import Provenance
from fsstore.index.events import now
from fsstore.registry.table import (
    build_table,
    decode_registry,
    encode_registry,
    encode_registry_parquet,
    encode_registry_reference,
)

VECTORS = json.loads((Path(__file__).parent / "registry_vectors.json").read_text())
README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["blake3"][:8])
def test_registry_vectors_hash_as_specified(vector: dict) -> None:
    table = build_table(vector["name"], vector["organism"], vector["columns"])
    assert encode_registry(table).decode() == vector["encoding"]
    assert encode_registry_reference(table).decode() == vector["encoding"]
    assert blake3(vector["encoding"].encode()).hexdigest() == vector["blake3"]
    assert table.hash == vector["blake3"]
    assert table.n == vector["n"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["blake3"][:8])
def test_readme_lists_every_registry_vector(vector: dict) -> None:
    section = README.split("### Registry encoding, version 1", 1)[1]
    assert f"`{vector['encoding']}`" in section
    assert vector["blake3"] in section


cells = st.one_of(st.none(), st.just(""), st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), max_size=6))
rows = st.lists(st.tuples(cells, cells), min_size=1, max_size=25)


def _table(records: list[tuple[str | None, str | None]], order: tuple[str, str] = ("a", "b")):
    columns = {order[0]: [record[0] for record in records],
               order[1]: [record[1] for record in records]}
    return build_table("Gene", "human", columns)


@settings(max_examples=150, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_row_order_column_order_and_repeats_do_not_change_the_hash(records, rng) -> None:
    if all(not (a or "").strip() and not (b or "").strip() for a, b in records):
        with pytest.raises(InvalidInputError, match="no records"):
            _table(records)
        return
    first = _table(records)
    shuffled = [*records, records[0]]
    rng.shuffle(shuffled)
    columns_swapped = build_table("Gene", "human", {"b": [r[1] for r in shuffled],
                                                   "a": [r[0] for r in shuffled]})
    assert columns_swapped.hash == first.hash
    assert encode_registry(first) == encode_registry_reference(first)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_parquet_round_trip_keeps_the_hash(records) -> None:
    try:
        table = _table(records)
    except InvalidInputError:
        return
    data = encode_registry_parquet(table, Provenance(now(), "ana"), "v1")
    decoded, provenance = decode_registry(data, table.hash, "memory")
    assert decoded.hash == table.hash
    assert decoded.columns.equals(table.columns)
    assert provenance.created_by == "ana"


def test_name_organism_and_fields_are_part_of_the_identity() -> None:
    base = build_table("Gene", "human", {"symbol": ["CD8A"]})
    assert build_table("Gene", "mouse", {"symbol": ["CD8A"]}).hash != base.hash
    assert build_table("Protein", "human", {"symbol": ["CD8A"]}).hash != base.hash
    assert build_table("Gene", "human", {"name": ["CD8A"]}).hash != base.hash
    assert build_table("Gene", None, {"symbol": ["CD8A"]}).hash != base.hash


def test_blank_cells_are_missing_and_empty_rows_are_dropped() -> None:
    table = build_table("Gene", None, {"id": ["A", " ", None, "A", "\u00a0"],
                                       "symbol": ["x", "y", float("nan"), "x", ""]})
    assert table.n == 2
    assert table.dropped == 3
    assert sorted(table.column("symbol")) == ["x", "y"]
    assert None in table.column("id")


def test_text_is_normalised_to_nfc() -> None:
    composed = build_table("Gene", None, {"symbol": ["caf\u00e9"]})
    decomposed = build_table("Gene", None, {"symbol": ["cafe\u0301"]})
    assert composed.hash == decomposed.hash


@pytest.mark.parametrize(("name", "columns", "message"), [
    ("Gene", {}, "at least one field"),
    ("Gene", {"symbol": [None, ""]}, "no records"),
    ("Gene", {"sym bol": ["A"]}, "not an identifier"),
    ("Gene", {"1st": ["A"]}, "not an identifier"),
    ("9Gene", {"symbol": ["A"]}, "registry name '9Gene'"),
    ("Gene", {"symbol": ["A\tB"]}, "control character"),
    ("Gene", {"symbol": ["A", 5]}, "not text: 5"),
    ("Gene", {"symbol": ["A"], "id": ["1", "2"]}, "different lengths"),
])
def test_bad_tables_are_rejected_with_a_reason(name, columns, message) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        build_table(name, None, columns)


def test_an_organism_with_a_separator_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="organism"):
        build_table("Gene", "homo/sapiens", {"symbol": ["A"]})


def test_a_modified_table_is_detected(tmp_path: Path) -> None:
    table = build_table("Gene", "human", {"symbol": ["CD8A", "CD4"], "id": ["1", "2"]})
    data = encode_registry_parquet(table, Provenance(now(), "ana"), "v1")
    path = tmp_path / "table.parquet"
    path.write_bytes(data)
    decode_registry(str(path), table.hash, str(path))

    # A cell changed (and the file rewritten as valid Parquet with the same metadata).
    original = pq.read_table(path)
    changed = original.set_column(original.schema.get_field_index("symbol"), "symbol",
                                  pa.array(["CD8B", "CD4"]))
    pq.write_table(changed.replace_schema_metadata(original.schema.metadata), path)
    with pytest.raises(CorruptObjectError, match=f"{re.escape(str(path))} hashes to"):
        decode_registry(str(path), table.hash, str(path))

    # Truncated bytes.
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptObjectError, match="cannot be read as a registry table"):
        decode_registry(str(path), table.hash, str(path))

    # A manifest or any other Parquet file is not a registry table.
    pq.write_table(pa.table({"name": ["x"]}), path)
    with pytest.raises(CorruptObjectError, match="not an fsstore registry table"):
        decode_registry(str(path), table.hash, str(path))
