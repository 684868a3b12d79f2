"""Building feature sets: the lamindb-style constructors, dtypes from pandas, bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsstore import (
    DuplicateColumnError,
    EmptyFeatureSetError,
    Feature,
    FeatureSet,
    InvalidDtypeError,
    InvalidInputError,
    InvalidMemberError,
    InvalidNameError,
    Store,
)
from fsstore.canonical import WHITE_SPACE, CanonicalSet, strip_white_space


def test_seed_dataframe_gives_three_features_with_their_dtypes() -> None:
    df = pd.DataFrame({"feat1": [1, 2], "feat2": [3.1, 4.2], "feat3": ["a", "b"]})
    feature_set = FeatureSet.from_df(df, name="seed")
    assert feature_set.n == 3
    assert feature_set.itype == "Feature.name"
    assert feature_set.registry == "Feature"
    assert feature_set.type is None
    assert dict(zip(feature_set.members["name"], feature_set.members["dtype"], strict=True)) == {
        "feat1": "int", "feat2": "float", "feat3": "str"}


def test_seed_from_values_gives_a_feature_set_of_two() -> None:
    feature_set = FeatureSet.from_values(["feat1", "feat2"])
    assert feature_set.n == 2
    assert feature_set.member_names == ("feat1", "feat2")
    assert feature_set.itype == "Feature.name"
    assert len(feature_set.uid) == 16
    assert feature_set.hash.startswith(feature_set.uid)


def test_feature_records_and_names_build_the_same_set_as_from_df() -> None:
    df = pd.DataFrame({"feat1": [1], "feat2": [0.5]})
    by_records = FeatureSet([Feature("feat2", "float"), Feature("feat1", "int")])
    assert by_records == FeatureSet.from_df(df)


def test_from_values_type_applies_to_every_feature() -> None:
    feature_set = FeatureSet.from_values(["a", "b"], type=float)
    assert set(feature_set.members["dtype"]) == {"float"}


def test_a_gene_set_carries_its_set_level_type() -> None:
    genes = FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol", type="number")
    assert genes.type == "num"
    assert genes.registry == "Gene"
    assert genes.field == "symbol"
    assert genes.created_at is None  # not stored yet


PANDAS_DTYPES = [
    (pd.Series([1, 2], dtype=dtype), "int")
    for dtype in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "Int8", "Int64", "UInt32"]
] + [
    (pd.Series([1.5, 2.0], dtype=dtype), "float") for dtype in ["float16", "float32",
                                                                  "float64", "Float64"]
] + [
    (pd.Series([True, False]), "bool"),
    (pd.Series([True, None], dtype="boolean"), "bool"),
    (pd.Series(["a", None], dtype="string"), "str"),
    (pd.Series(["a", "b"], dtype=object), "str"),
    (pd.Series(["a", "b"], dtype="str"), "str"),
    (pd.Series(["a", "b"], dtype="category"), "cat"),
    (pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"])), "datetime"),
    (pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("UTC")), "datetime[UTC]"),
    (pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("Europe/Berlin")),
     "datetime[Europe/Berlin]"),
    (pd.Series(pd.to_timedelta(["1 day", "2 hours"])), "timedelta"),
    (pd.Series([dt.date(2024, 1, 1)], dtype=object), "date"),
    (pd.Series([1, None], dtype=object), "int"),
    (pd.Series(pd.array([1, 2], dtype="int64[pyarrow]")), "int"),
    (pd.Series(pd.array(["x"], dtype="string[pyarrow]")), "str"),
]


@pytest.mark.parametrize(("series", "expected"), PANDAS_DTYPES,
                         ids=[f"{s.dtype}->{e}" for s, e in PANDAS_DTYPES])
def test_from_df_maps_every_pandas_dtype(series: pd.Series, expected: str) -> None:
    feature_set = FeatureSet.from_df(pd.DataFrame({"column": series}))
    assert feature_set.features == [Feature("column", expected)]


@pytest.mark.parametrize("series", [
    pd.Series([1 + 2j]),
    pd.Series([b"bytes"], dtype=object),
    pd.Series(["a", 1], dtype=object),
    pd.Series([None, None], dtype=object),
    pd.Series(pd.period_range("2024-01", periods=2, freq="M")),
])
def test_from_df_rejects_dtypes_it_cannot_record(series: pd.Series) -> None:
    with pytest.raises(InvalidDtypeError, match="column 'column'"):
        FeatureSet.from_df(pd.DataFrame({"column": series}))


def test_duplicate_column_names_are_rejected() -> None:
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with pytest.raises(DuplicateColumnError, match="duplicate column names: 'a'") as caught:
        FeatureSet.from_df(df)
    assert caught.value.columns == ["a"]


def test_integer_column_labels_become_names_and_others_are_rejected() -> None:
    assert FeatureSet.from_df(pd.DataFrame({1999: [1], 2000: [2]})).member_names == (
        "1999", "2000")
    with pytest.raises(InvalidMemberError, match="MultiIndex"):
        FeatureSet.from_df(pd.DataFrame([[1]], columns=pd.MultiIndex.from_tuples([("a", "b")])))


@pytest.mark.parametrize("missing", [None, np.nan, float("nan"), pd.NA, "", "   "])
def test_missing_values_are_an_error_unless_lenient(missing: object) -> None:
    values = ["CD8A", missing, "CD4"]
    with pytest.raises(InvalidMemberError, match=r"1 of 3 values are missing.*strict=False"):
        FeatureSet.from_values(values, field="Gene.symbol")
    lenient = FeatureSet.from_values(values, field="Gene.symbol", strict=False)
    assert lenient.member_names == ("CD4", "CD8A")
    assert lenient.report is not None
    assert lenient.report.missing == 1


def test_repeats_are_merged_and_reported() -> None:
    feature_set = FeatureSet.from_values(["A", "B", "A"], field="Gene.symbol")
    assert feature_set.n == 2
    assert feature_set.report is not None
    assert feature_set.report.duplicates == ("A",)


def test_an_empty_set_is_rejected() -> None:
    with pytest.raises(EmptyFeatureSetError, match="at least one member"):
        FeatureSet.from_values([])
    with pytest.raises(EmptyFeatureSetError):
        FeatureSet.from_values([None, ""], strict=False)


def test_integer_ids_are_not_silently_turned_into_text() -> None:
    with pytest.raises(InvalidMemberError, match="not text: 574405"):
        FeatureSet.from_values([574405, 574404], field="Gene.ncbi_gene_id")


@pytest.mark.parametrize("name", ["a/b", "a\\b", "tab\there", "new\nline", "", " padded",
                                  "-option", "..", "x" * 256])
def test_unusable_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidNameError):
        FeatureSet.from_values(["a"], name=name)


def test_registry_names_with_separators_are_rejected() -> None:
    from fsstore import InvalidItypeError

    for itype in ["Ge/ne.symbol", "Gene.sym\nbol", "../Gene.symbol"]:
        with pytest.raises(InvalidItypeError):
            FeatureSet.from_values(["a"], field=itype)


@pytest.mark.parametrize("dtype", ["integer64", "complex", "foo", 3])
def test_unknown_dtypes_are_rejected(dtype: object) -> None:
    with pytest.raises(InvalidDtypeError):
        Feature("x", dtype)  # type: ignore[arg-type]  # a wrong type on purpose


def test_type_gives_features_named_alone_their_dtype_as_from_values_does() -> None:
    built = FeatureSet(["a", "b"], type=float)
    assert built == FeatureSet.from_values(["b", "a"], type="float")
    assert built.type is None
    assert FeatureSet([Feature("a", "float"), "b"], type="float") == built
    with pytest.raises(InvalidDtypeError, match="carry another"):
        FeatureSet([Feature("a", "int")], type="float")


def test_a_set_iterates_over_its_member_names_and_tests_membership() -> None:
    genes = FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol")
    assert list(genes) == ["CD4", "CD8A"]
    assert "CD8A" in genes
    assert "Cd8a" not in genes
    assert 3 not in genes
    assert "e\u0301" in FeatureSet(["\u00e9"])  # compared in NFC, as stored


def test_store_locations_and_references_of_the_wrong_type_are_input_errors(
        tmp_path) -> None:
    for location in (None, 123):
        with pytest.raises(InvalidInputError, match="a store location is a folder path"):
            Store(location)  # type: ignore[arg-type]  # the wrong type on purpose
    store = Store.init(tmp_path / "s")
    with pytest.raises(InvalidInputError, match="not int 5"):
        store.get(5)  # type: ignore[arg-type]  # the wrong type on purpose


def test_members_of_other_registries_carry_no_dtype() -> None:
    with pytest.raises(InvalidDtypeError, match="carry no dtype"):
        FeatureSet([("CD8A", "int")], itype="Gene.symbol")


# -- surrounding white space --------------------------------------------------------------

def test_members_with_surrounding_white_space_are_refused_saying_which() -> None:
    with pytest.raises(InvalidMemberError, match=r"2 value\(s\) begin or end with white "
                       r"space: ' A', 'B\\t'; strip it first .*strict=False") as caught:
        FeatureSet.from_values([" A", "B\t", "C"], field="Gene.symbol")
    assert caught.value.values == [" A", "B\t"]


def test_lenient_strips_surrounding_white_space_and_reports_it() -> None:
    lenient = FeatureSet.from_values([" A", "B\u3000", "A"], field="Gene.symbol",
                                     strict=False)
    assert lenient.member_names == ("A", "B")
    assert lenient.report is not None
    assert lenient.report.stripped == (" A", "B\u3000")
    assert "2 stripped of surrounding white space" in lenient.report.summary()
    assert lenient.hash == FeatureSet.from_values(["A", "B"], field="Gene.symbol").hash


def test_column_names_with_surrounding_white_space_are_refused_unless_lenient() -> None:
    frame = pd.DataFrame({" a": [1], "b": ["x"]})
    with pytest.raises(InvalidMemberError, match=r"1 column name\(s\) begin or end with white "
                       r"space: ' a'"):
        FeatureSet.from_df(frame)
    lenient = FeatureSet.from_df(frame, strict=False)
    assert [(f.name, f.dtype) for f in lenient.features] == [("a", "int"), ("b", "str")]
    assert lenient.report is not None
    assert lenient.report.stripped == (" a",)
    with pytest.raises(DuplicateColumnError, match="'a'"):
        FeatureSet.from_df(pd.DataFrame([[1, 2]], columns=["a", "a "]), strict=False)


def test_the_constructor_refuses_padded_names_as_the_canonical_rules_do() -> None:
    with pytest.raises(InvalidMemberError, match="white space"):
        FeatureSet([Feature(" a", "int")])


white_space = st.sampled_from(list(WHITE_SPACE))
padded_members = st.tuples(st.lists(white_space, max_size=2).map("".join),
                           st.sampled_from(["CD4", "CD8A", "A\u2028B", "caf\u00e9", "x y"]),
                           st.lists(white_space, max_size=2).map("".join)).map("".join)


@given(st.lists(padded_members, min_size=1, max_size=12))
def test_stripping_is_idempotent_and_lenient_builds_equal_stripped_ones(
        values: list[str]) -> None:
    stripped = [strip_white_space(value) for value in values]
    assert [strip_white_space(value) for value in stripped] == stripped
    lenient = FeatureSet.from_values(values, field="Gene.symbol", strict=False,
                                     validate=False)
    assert lenient.hash == FeatureSet.from_values(stripped, field="Gene.symbol",
                                                  validate=False).hash


def test_a_set_stored_with_padded_members_before_the_rule_still_reads_and_verifies(
        store: Store) -> None:
    from fsstore.integrity.verify import verify

    # Earlier versions stored such sets; their encoding is unchanged, so they stay valid.
    old = FeatureSet.from_values(["A"], field="Gene.symbol", validate=False)
    old._canonical = CanonicalSet("Gene.symbol", "", False, ((" A", ""), ("B", "")))
    saved = store.save(old)
    assert store.get(saved.hash).member_names == (" A", "B")
    assert verify(store).ok


# -- what from_values takes ---------------------------------------------------------------

def test_a_dataframe_is_refused_pointing_to_from_df_or_one_column() -> None:
    frame = pd.DataFrame({"gene": ["CD4", "CD8A"], "score": [1.0, 2.0]})
    for build in (lambda: FeatureSet.from_values(frame, field="Gene.symbol"),
                  lambda: FeatureSet(frame)):
        with pytest.raises(InvalidInputError, match=r"not a DataFrame; .*from_df\(df\).*"
                           r"df\[column\]"):
            build()
    assert FeatureSet.from_values(frame["gene"], field="Gene.symbol").member_names == (
        "CD4", "CD8A")


def test_a_single_string_is_refused_not_split_into_characters() -> None:
    # The package's convention for one value given where a list belongs: an error saying
    # to wrap it, as FeatureSet(...) and from_values have always done.
    for value in ("CD8A", b"CD8A"):
        with pytest.raises(InvalidInputError, match=r"not one (str|bytes).*wrap a single"):
            FeatureSet.from_values(value, field="Gene.symbol")
    assert FeatureSet.from_values(["CD8A"], field="Gene.symbol").member_names == ("CD8A",)


def test_registry_lookups_refuse_a_string_or_a_dataframe(store: Store) -> None:
    store.register({"symbol": ["CD4", "CD8A"]}, name="Gene", version="v1")
    registry = store.registry("Gene")
    for values in ("CD4", pd.DataFrame({"CD4": [1]})):
        for call in (registry.inspect, registry.validate, registry.standardize):
            with pytest.raises(InvalidInputError, match="must be a list"):
                call(values, "symbol")


def test_a_feature_named_with_surrounding_white_space_cannot_be_registered(
        store: Store) -> None:
    with pytest.raises(InvalidInputError, match=r"' a' begins or ends with white space"):
        store.register_features([Feature(" a", "int")])
    with pytest.raises(InvalidMemberError, match=r"column name\(s\) begin or end"):
        store.register_features(pd.DataFrame({" a": [1]}))


def test_an_ordered_set_is_not_built_from_a_python_set() -> None:
    # A set's iteration order changes between processes, and with it the hash.
    for build in (lambda: FeatureSet.from_values({"CD8A", "CD4"}, ordered=True),
                  lambda: FeatureSet(frozenset({"a", "b"}), ordered=True)):
        with pytest.raises(InvalidInputError, match="has none; pass a list"):
            build()
    assert FeatureSet.from_values({"CD8A", "CD4"}) == FeatureSet(["CD4", "CD8A"])
