"""Set algebra and diff: checked against Python sets, for genes and for typed features."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsstore import FeatureSet
from fsstore.algebra import diff, difference, intersection, union
from fsstore.errors import EmptyFeatureSetError, IncompatibleSetsError, InvalidInputError

MEMBERS = st.sets(st.sampled_from([f"G{i}" for i in range(40)]), min_size=1, max_size=25)


def genes(members: set[str] | list[str], *, type: str | None = None) -> FeatureSet:
    return FeatureSet.from_values(sorted(members), field="Gene.symbol", type=type)


@settings(deadline=None)  # timing on a shared machine is not what this checks
@given(st.lists(MEMBERS, min_size=1, max_size=6))
def test_union_intersection_and_difference_match_python_sets(groups: list[set[str]]) -> None:
    sets = [genes(group) for group in groups]
    assert set(union(*sets).member_names) == set().union(*groups)
    common = set.intersection(*groups)
    if common:
        assert set(intersection(*sets).member_names) == common
    else:
        with pytest.raises(EmptyFeatureSetError, match="the intersection is empty"):
            intersection(*sets)
    left = groups[0] - set().union(*groups[1:])
    if left:
        assert set(difference(*sets).member_names) == left
    # the result is a new, unsaved set of the same kind, with the content hash of its members
    result = union(*sets, name="merged")
    assert result.provenance is None
    assert result.name == "merged"
    assert result.hash == genes(set().union(*groups)).hash


@settings(deadline=None)
@given(MEMBERS, MEMBERS)
def test_diff_lists_what_was_added_and_removed(old: set[str], new: set[str]) -> None:
    changes = diff(genes(old), genes(new))
    assert set(changes.added) == new - old
    assert set(changes.removed) == old - new
    assert changes.common == len(old & new)
    assert changes.same == (old == new)


def test_features_keep_their_dtypes_and_a_changed_dtype_is_reported() -> None:
    a = FeatureSet([("age", "int"), ("sex", "cat"), ("weight", "float")])
    b = FeatureSet([("age", "float"), ("sex", "cat"), ("height", "float")])
    changes = diff(a, b)
    assert changes.added == ("height",)
    assert changes.removed == ("weight",)
    assert changes.changed == (("age", "int", "float"),)
    assert changes.common == 1
    assert intersection(a, b).features == [a.features[1]]
    with pytest.raises(IncompatibleSetsError, match=r"two dtypes: 'age'"):
        union(a, b)
    both = union(a, FeatureSet([("sex", "cat"), ("site", "str")]))
    assert [(f.name, f.dtype) for f in both.features] == [
        ("age", "int"), ("sex", "cat"), ("site", "str"), ("weight", "float")]


@pytest.mark.parametrize("other", [
    FeatureSet.from_values(["CD8A"], field="Gene.ensembl_gene_id"),
    FeatureSet.from_values(["CD8A"], field="Gene.symbol", type="float"),
])
def test_sets_of_different_kinds_do_not_combine(other: FeatureSet) -> None:
    with pytest.raises(IncompatibleSetsError, match="different kinds"):
        union(genes(["CD8A"]), other)


def test_diff_refuses_sets_of_different_itypes() -> None:
    with pytest.raises(IncompatibleSetsError, match="hold different things"):
        diff(genes(["CD8A"]), FeatureSet.from_values(["CD8A"], field="Gene.ensembl_gene_id"))


def test_an_ordered_union_is_an_unordered_set() -> None:
    ordered = FeatureSet.from_values(["B", "A"], field="Gene.symbol", ordered=True)
    assert not union(ordered, genes(["C"])).ordered
    assert union(ordered, genes(["C"])).member_names == ("A", "B", "C")


def test_order_changes_are_part_of_a_diff() -> None:
    ba = FeatureSet(["b", "a"], ordered=True)
    ab = FeatureSet(["a", "b"], ordered=True)
    plain = FeatureSet(["a", "b"])
    assert diff(ba, ab).order == "reordered"
    assert not diff(ba, ab).same
    assert diff(ba, plain).order == "no longer ordered"
    assert diff(plain, ab).order == "now ordered"
    assert diff(ab, FeatureSet(["a", "c", "b"], ordered=True)).order is None
    assert diff(plain, FeatureSet(["b", "a"])).same


def test_wrong_arguments_to_the_algebra_are_input_errors(store) -> None:
    a, b = FeatureSet(["a"]), FeatureSet(["b"])
    for call in (lambda: union([a, b]), lambda: union("two", "two"),  # type: ignore[arg-type]
                 lambda: diff(a, ["b"])):  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="takes FeatureSets"):
            call()
    assert union(*[a, b]).member_names == ("a", "b")
    with pytest.raises(InvalidInputError, match="list of set names"):
        store.union("big")
    with pytest.raises(InvalidInputError, match="min_jaccard must be a number"):
        store.similar(["a"], min_jaccard="0.5")
