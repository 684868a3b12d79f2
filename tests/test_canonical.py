"""The canonical encoding: the README's test vectors and the properties the hash must have."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from fsstore import EmptyFeatureSetError, InvalidItypeError, InvalidMemberError
from fsstore.canonical import (
    CanonicalSet,
    canonical_members,
    digest,
    encode,
    encode_reference,
    parse_itype,
    strip_white_space,
)

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text(encoding="utf-8"))
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def canonical(itype: str, dtype: str, ordered: bool, members: list[tuple[str, str]]
              ) -> CanonicalSet:
    return CanonicalSet(itype, dtype, ordered, canonical_members(members, ordered))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_vector_bytes_hash_to_the_published_digest(vector: dict) -> None:
    # Independent of fsstore: BLAKE3 of the published bytes.
    assert blake3(vector["encoding"].encode("utf-8")).hexdigest() == vector["blake3"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_vector_input_encodes_to_the_published_bytes(vector: dict) -> None:
    members = [tuple(member) for member in vector["members"]]
    result = canonical(vector["itype"], vector["dtype"], vector["ordered"], members)
    assert encode(result) == vector["encoding"].encode("utf-8")
    assert digest(result) == vector["blake3"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_readme_publishes_every_vector(vector: dict) -> None:
    assert vector["blake3"] in README
    assert vector["encoding"] in README


def test_readme_has_at_least_five_vectors() -> None:
    assert len(set(re.findall(r"\b[0-9a-f]{64}\b", README.split("## Canonical")[1]))) >= 5


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
).filter(lambda text: text == strip_white_space(text) != "")
dtypes = st.sampled_from(["", "int", "float", "str", "cat", "datetime[UTC]"])
itypes = st.sampled_from(["Gene.ensembl_gene_id", "Gene.symbol", "Feature.name",
                          "bionty.Protein.uniprotkb_id"])


@given(st.lists(names, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_order_and_repeats_never_change_the_hash(values: list[str], rng) -> None:
    shuffled = values + values[: len(values) // 2]
    rng.shuffle(shuffled)
    first = canonical("Gene.symbol", "", False, [(value, "") for value in values])
    second = canonical("Gene.symbol", "", False, [(value, "") for value in shuffled])
    assert first.hash == second.hash


@given(st.lists(names, min_size=1, max_size=20, unique=True), itypes, itypes, dtypes, dtypes)
def test_itype_dtype_and_order_flag_are_part_of_the_identity(
    values: list[str], itype: str, other_itype: str, dtype: str, other_dtype: str
) -> None:
    members = [(value, "") for value in values]
    base = canonical(itype, dtype, False, members).hash
    if other_itype != itype:
        assert canonical(other_itype, dtype, False, members).hash != base
    if other_dtype != dtype:
        assert canonical(itype, other_dtype, False, members).hash != base
    assert canonical(itype, dtype, True, members).hash != base


@given(st.lists(names, min_size=1, max_size=20, unique_by=lambda s: unicodedata.normalize(
    "NFC", s)), names, st.data())
def test_adding_removing_or_changing_one_member_changes_the_hash(
    values: list[str], extra: str, data: st.DataObject
) -> None:
    base = canonical("Gene.symbol", "", False, [(v, "") for v in values]).hash
    normalized = {unicodedata.normalize("NFC", v) for v in values}
    if unicodedata.normalize("NFC", extra) not in normalized:
        assert canonical("Gene.symbol", "", False,
                         [(v, "") for v in [*values, extra]]).hash != base
        changed = [*values[:-1], extra]
        assert canonical("Gene.symbol", "", False, [(v, "") for v in changed]).hash != base
    if len(values) > 1:
        index = data.draw(st.integers(0, len(values) - 1))
        fewer = values[:index] + values[index + 1:]
        assert canonical("Gene.symbol", "", False, [(v, "") for v in fewer]).hash != base


@given(st.lists(st.tuples(names, dtypes.filter(bool)), min_size=1, max_size=20,
                unique_by=lambda pair: unicodedata.normalize("NFC", pair[0])), st.data())
def test_changing_one_feature_dtype_changes_the_hash(pairs, data) -> None:
    base = canonical("Feature.name", "", False, pairs).hash
    index = data.draw(st.integers(0, len(pairs) - 1))
    name, dtype = pairs[index]
    other = data.draw(st.sampled_from(["int", "float", "str", "bool"]).filter(
        lambda candidate: candidate != dtype))
    changed = [*pairs[:index], (name, other), *pairs[index + 1:]]
    assert canonical("Feature.name", "", False, changed).hash != base


@given(st.lists(st.tuples(names, dtypes), min_size=1, max_size=40), st.booleans())
def test_fast_encoding_matches_the_reference_encoding(pairs, ordered: bool) -> None:
    try:
        result = canonical("Feature.name", "", ordered, pairs)
    except InvalidMemberError:
        return  # repeats in an ordered set, or one name with two dtypes
    assert encode(result) == encode_reference(result)


def test_composed_and_decomposed_spellings_are_one_member() -> None:
    composed = canonical("Gene.symbol", "", False, [("caf\u00e9", "")])
    decomposed = canonical("Gene.symbol", "", False, [("cafe\u0301", "")])
    assert composed.hash == decomposed.hash


def test_sort_order_is_by_code_point_not_locale() -> None:
    result = canonical("Gene.symbol", "", False, [(v, "") for v in ["b", "B", "a", "\u00c4"]])
    assert [name for name, _ in result.members] == ["B", "a", "b", "\u00c4"]


@pytest.mark.parametrize(("members", "message"), [
    ([], "at least one member"),
    ([("", "")], "empty string"),
    ([("a\tb", "")], "control character"),
    ([("line\n", "")], "control character"),
    ([("A\x85", "")], "control character"),
    ([("A\x1eB", "")], "control character"),
    ([(" A", ""), ("B\u3000", "")], r"2 member.* white space: ' A', 'B\\u3000'; .*strip"),
    ([("A\t", "")], "white space"),
    ([(5, "")], "not strings"),
    ([("x", "int"), ("x", "float")], "two different dtypes"),
])
def test_invalid_members_are_rejected_with_a_reason(members, message: str) -> None:
    with pytest.raises((InvalidMemberError, EmptyFeatureSetError), match=message):
        canonical_members(members, ordered=False)


def test_an_ordered_set_cannot_repeat_a_member() -> None:
    with pytest.raises(InvalidMemberError, match="repeated: 'a'"):
        canonical_members([("a", ""), ("b", ""), ("a", "")], ordered=True)


@pytest.mark.parametrize("itype", ["Gene", "Gene.", ".name", "Gene/x.y", "Gene.na me", ""])
def test_malformed_itypes_are_rejected(itype: str) -> None:
    with pytest.raises(InvalidItypeError, match=r"Registry\.field"):
        parse_itype(itype)


def test_dotted_registries_split_at_the_last_dot() -> None:
    assert parse_itype("bionty.Gene.symbol") == ("bionty.Gene", "symbol")


def test_line_and_paragraph_separators_inside_a_member_are_valid() -> None:
    result = canonical("Gene.symbol", "", False, [("A\u2028B", ""), ("C\u2029D", "")])
    assert [name for name, _ in result.members] == ["A\u2028B", "C\u2029D"]
