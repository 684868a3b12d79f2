"""Validation rules on small registries: which store, strict and lenient, suggestions, Features."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsstore import Feature, FeatureSet, Store
from fsstore.errors import (
    EmptyFeatureSetError,
    FeatureDtypeMismatchError,
    InvalidInputError,
    InvalidItypeError,
    RegistryNotFoundError,
    ValidationError,
)
from fsstore.validation import inspect, map_values, standardize

GENES = pd.DataFrame({
    "ensembl_gene_id": ["ENSG00000153563", "ENSG00000172116", "ENSG00000010610",
                        "ENSG00000111111", "ENSG00000222222"],
    "symbol": ["CD8A", "CD8B", "CD4", "DUP", "DUP"],
    "synonyms": ["Leu2|CD8alpha", "", "T4", "", ""],
})


@pytest.fixture
def genes(store: Store) -> Store:
    store.register(GENES, name="Gene", organism="human", version="v1")
    return store


def test_valid_values_pass_and_the_report_names_the_registry(genes: Store) -> None:
    feature_set = FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol", store=genes)
    assert feature_set.report is not None
    assert feature_set.report.validated_against is not None
    assert feature_set.report.validated_against.startswith("Gene (human) v1 [")
    assert feature_set.report.clean


def test_strict_error_gives_count_examples_suggestions_and_next_steps(genes: Store) -> None:
    with pytest.raises(ValidationError) as raised:
        FeatureSet.from_values(["CD8A", "cd4", "NOPE", "leu2"], field="Gene.symbol",
                               store=genes)
    error = raised.value
    assert isinstance(error, InvalidInputError)
    assert isinstance(error, ValueError)
    assert error.values == ["cd4", "NOPE", "leu2"]
    assert error.itype == "Gene.symbol"
    message = str(error)
    assert message.startswith("3 of 4 distinct values are not in Gene.symbol of Gene "
                              "(human) v1 [")
    assert "'cd4', 'NOPE', 'leu2'" in message
    assert "1 has a suggestion (1 unambiguous, e.g. 'cd4' -> 'CD4' by case)" in message
    assert "standardize=True (--standardize)" in message
    assert "strict=False (--lenient)" in message
    assert "\n" not in message


def test_lenient_drops_and_reports_and_keeps_order_of_ordered_sets(genes: Store) -> None:
    feature_set = FeatureSet.from_values(["CD4", "NOPE", "CD8A", "CD4"], field="Gene.symbol",
                                         store=genes, strict=False, ordered=False)
    assert feature_set.member_names == ("CD4", "CD8A")
    assert feature_set.report is not None
    assert feature_set.report.dropped == ("NOPE",)
    assert feature_set.report.duplicates == ("CD4",)
    assert "1 invalid dropped ('NOPE')" in feature_set.report.summary()
    ordered = FeatureSet.from_values(["CD8B", "NOPE", "CD4"], field="Gene.symbol",
                                     store=genes, strict=False, ordered=True)
    assert ordered.member_names == ("CD8B", "CD4")


def test_nothing_left_after_dropping_is_an_error_saying_why(genes: Store) -> None:
    with pytest.raises(EmptyFeatureSetError, match=r"no value is left to store: .*2 invalid "
                                                   r"dropped.*Gene\.symbol"):
        FeatureSet.from_values(["X", "Y"], field="Gene.symbol", store=genes, strict=False)


def test_suggestions_of_every_kind(genes: Store) -> None:
    found = inspect([" CD4", "cd8a", "ENSG00000153563.7", "CD8B", "T4", "DUP", "NOPE"],
                    "Gene.ensembl_gene_id", store=genes)
    kinds = {value: (item.kind, item.candidates, item.via)
             for value, item in found.suggestions.items()}
    assert kinds == {
        " CD4": ("field", ("ENSG00000010610",), "symbol"),
        "ENSG00000153563.7": ("version", ("ENSG00000153563",), None),
        "CD8B": ("field", ("ENSG00000172116",), "symbol"),
        "T4": ("synonym", ("ENSG00000010610",), "synonyms"),
        "DUP": ("field", ("ENSG00000111111", "ENSG00000222222"), "symbol"),
    }
    assert found.suggestions["DUP"].ambiguous
    # Letter case is only forgiven within the field itself, not across fields.
    assert found.without_suggestion == ("cd8a", "NOPE")
    symbols = inspect([" CD4", "cd8a", "Leu2"], "Gene.symbol", store=genes)
    assert symbols.suggestions[" CD4"].kind == "whitespace"
    assert symbols.suggestions["cd8a"].kind == "case"
    assert symbols.suggestions["Leu2"].kind == "synonym"


def test_standardize_applies_only_unambiguous_suggestions(genes: Store) -> None:
    fixed = standardize(["cd8a", "DUP", "NOPE", None, "CD4"], "Gene.symbol", store=genes)
    assert fixed.values == ["CD8A", "DUP", "NOPE", None, "CD4"]
    assert list(fixed.changed) == ["cd8a"]
    assert fixed.unresolved == ("NOPE",)
    to_ids = standardize(["CD8A", "DUP"], "Gene.ensembl_gene_id", store=genes)
    assert to_ids.values == ["ENSG00000153563", "DUP"]
    assert set(to_ids.ambiguous) == {"DUP"}


def test_map_reports_ambiguous_values_with_all_candidates(genes: Store) -> None:
    mapping = map_values(["CD4", "DUP", "NOPE"], "Gene.symbol", "Gene.ensembl_gene_id",
                         store=genes)
    assert mapping.mapped == {"CD4": "ENSG00000010610"}
    assert mapping.ambiguous == {"DUP": ("ENSG00000111111", "ENSG00000222222")}
    assert mapping.unmapped == ("NOPE",)
    assert mapping.apply(["CD4", "DUP"]) == ["ENSG00000010610", None]
    with pytest.raises(InvalidItypeError, match="different registries"):
        map_values(["CD4"], "Gene.symbol", "Protein.id", store=genes)


def test_a_store_without_the_registry_validates_nothing_and_says_so(store: Store) -> None:
    feature_set = FeatureSet.from_values(["anything"], field="Gene.symbol", store=store)
    assert feature_set.report is not None
    assert feature_set.report.validated_against is None
    assert "not validated against a registry" in feature_set.report.summary()
    with pytest.raises(RegistryNotFoundError, match="no registry 'Gene'"):
        FeatureSet.from_values(["x"], field="Gene.symbol", store=store, version="v1")
    with pytest.raises(RegistryNotFoundError, match="no registry 'Gene'"):
        inspect(["x"], "Gene.symbol", store=store)


def test_standardize_needs_a_registry(store: Store) -> None:
    with pytest.raises(RegistryNotFoundError, match="no registry 'Gene'"):
        FeatureSet.from_values(["cd4"], field="Gene.symbol", store=store, standardize=True)
    with pytest.raises(InvalidInputError, match="cannot be used with validate=False"):
        FeatureSet.from_values(["cd4"], field="Gene.symbol", standardize=True, validate=False)


def test_a_field_the_registry_lacks_is_an_error(genes: Store) -> None:
    with pytest.raises(InvalidItypeError, match=r"has no field 'entrez_id'; its fields are "
                                                r"ensembl_gene_id, symbol, synonyms"):
        FeatureSet.from_values(["1"], field="Gene.entrez_id", store=genes)


def test_the_default_store_is_found_like_save_finds_it(genes: Store, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSSTORE_DIR", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    unchecked = FeatureSet.from_values(["NOPE"], field="Gene.symbol")
    assert unchecked.report is not None
    assert unchecked.report.validated_against is None

    monkeypatch.setenv("FSSTORE_DIR", str(genes.root))
    with pytest.raises(ValidationError):
        FeatureSet.from_values(["NOPE"], field="Gene.symbol")
    assert FeatureSet.from_values(["NOPE"], field="Gene.symbol", validate=False).n == 1

    monkeypatch.delenv("FSSTORE_DIR")
    project = tmp_path / "project"
    Store.init(project / ".fsstore").register(GENES, name="Gene", version="v1")
    (project / "deep").mkdir()
    monkeypatch.chdir(project / "deep")
    with pytest.raises(ValidationError):
        FeatureSet.from_values(["NOPE"], field="Gene.symbol")
    assert FeatureSet.from_values(["NOPE"], field="Gene.symbol", store=str(genes.root),
                                  strict=False, validate=False).n == 1


values = st.lists(st.sampled_from(["CD8A", "CD8B", "CD4", "DUP", "cd4", "X1", "X2", "T4"]),
                  min_size=1, max_size=20)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values)
def test_lenient_keeps_exactly_the_valid_values(genes: Store, chosen: list[str]) -> None:
    valid = {"CD8A", "CD8B", "CD4", "DUP"}
    found = inspect(chosen, "Gene.symbol", store=genes)
    assert set(found.validated) == set(chosen) & valid
    assert set(found.not_validated) == set(chosen) - valid
    if not set(chosen) & valid:
        return
    feature_set = FeatureSet.from_values(chosen, field="Gene.symbol", store=genes,
                                         strict=False)
    assert set(feature_set.member_names) == set(chosen) & valid
    assert feature_set.report is not None
    assert set(feature_set.report.dropped) == set(chosen) - valid
    assert set(feature_set.report.multiple) == set(chosen) & {"DUP"}


# -- the Feature registry -----------------------------------------------------------------------

@pytest.fixture
def features(store: Store) -> Store:
    store.register_features([Feature("n_counts", "int"), Feature("ratio", "num"),
                             Feature("cell_type", "cat"), Feature("label", "str")])
    return store


def test_from_df_takes_registered_dtypes(features: Store) -> None:
    frame = pd.DataFrame({"n_counts": [1, 2], "ratio": [1, 2],
                          "cell_type": pd.Categorical(["T", "B"]), "label": ["a", "b"]})
    feature_set = FeatureSet.from_df(frame, store=features)
    assert {f.name: f.dtype for f in feature_set.features} == {
        "n_counts": "int", "ratio": "num", "cell_type": "cat", "label": "str"}
    text_categories = frame.assign(cell_type=["T", "B"])
    assert FeatureSet.from_df(text_categories, store=features).hash == feature_set.hash
    assert feature_set.report is not None
    assert feature_set.report.validated_against is not None


def test_from_df_rejects_or_drops_unregistered_columns(features: Store) -> None:
    frame = pd.DataFrame({"n_counts": [1], "mystery": [0.5], "Label": ["x"]})
    with pytest.raises(ValidationError, match=r"2 of 3 distinct values are not in "
                                              r"Feature\.name .*'Label' -> 'label' by case"):
        FeatureSet.from_df(frame, store=features)
    lenient = FeatureSet.from_df(frame, store=features, strict=False)
    assert lenient.member_names == ("n_counts",)
    assert lenient.report is not None
    assert lenient.report.dropped == ("mystery", "Label")


def test_features_none_of_which_is_registered_say_how_to_register_them(
        features: Store) -> None:
    given = [Feature("mystery", "float"), Feature("other", "int")]
    with pytest.raises(ValidationError, match=r"registry add FILE --features"):
        FeatureSet.from_features(given, store=features)
    with pytest.raises(EmptyFeatureSetError, match=r"none of the 2 given is in Feature v1"):
        FeatureSet.from_features(given, store=features, strict=False)


@pytest.mark.parametrize("strict", [True, False])
def test_from_df_dtype_disagreement_is_an_error_in_both_modes(features: Store,
                                                              strict: bool) -> None:
    frame = pd.DataFrame({"n_counts": [1.5, 2.5], "label": [1, 2], "ratio": [0.1, 0.2]})
    with pytest.raises(FeatureDtypeMismatchError,
                       match=r"2 columns have a dtype that disagrees with their registered "
                             r"Feature in Feature v1 \[[0-9a-f]{12}\]: n_counts \(float, "
                             r"registered as int\), label \(int, registered as str\); convert"):
        FeatureSet.from_df(frame, store=features, strict=strict)


def test_from_values_of_feature_names_takes_registered_dtypes(features: Store) -> None:
    feature_set = FeatureSet.from_values(["n_counts", "label"], store=features)
    assert {f.name: f.dtype for f in feature_set.features} == {"n_counts": "int",
                                                               "label": "str"}
    with pytest.raises(FeatureDtypeMismatchError, match="n_counts"):
        FeatureSet.from_values(["n_counts"], type="float", store=features)
    without = FeatureSet.from_values(["n_counts", "label"], validate=False)
    assert {f.dtype for f in without.features} == {None}
