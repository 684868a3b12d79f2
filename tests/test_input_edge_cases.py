"""Input that a first user tried and that fsstore once got wrong, kept as regressions."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fsstore import (
    DuplicateColumnError,
    FeatureSet,
    InvalidDtypeError,
    InvalidInputError,
    InvalidMemberError,
    InvalidNameError,
    Store,
    StoreFormatError,
    StoreNotFoundError,
    UnsupportedFileError,
)
from fsstore.readers import read_column, read_header_features, read_values
from tests.conftest import DATA, data_file


def fsstore(*args: str, store: Path | None = None, stdin: bytes = b""
            ) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "fsstore", *args]
    if store is not None:
        command += ["--store", str(store)]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120)


# -- files named like 10x lists -----------------------------------------------------------

def test_a_features_file_with_a_header_is_read_as_a_table() -> None:
    path = data_file(DATA / "genes" / "tenx"
                     / "scanpy_tests_visium_1.0.0_filtered_feature_bc_matrix_features.tsv")
    column = read_column(str(path), column="id")
    assert len(column.values) == 100
    assert all(value.startswith("ENSG") for value in column.values)


def test_a_genes_file_with_a_header_keeps_its_header_out_of_the_members() -> None:
    path = data_file(DATA / "genes" / "tenx"
                     / "scanpy_tests_10x_1.2.0_multiple_genomes_h5_genes.tsv")
    values = read_values(str(path), column="genes")
    assert "genes" not in values
    assert len(values) == 686


def test_a_marker_table_named_genes_tsv_is_not_taken_for_a_10x_list(tmp_path: Path) -> None:
    table = tmp_path / "cluster3_marker_genes.tsv"
    table.write_text("gene\tlogFC\nCD3E\t2.1\nMS4A1\t1.5\n")
    assert read_values(str(table), column="gene") == ["CD3E", "MS4A1"]


def test_a_headerless_10x_list_is_still_read_without_a_header(grch38: Path) -> None:
    assert len(read_values(str(grch38))) == 36601


# -- text cells ---------------------------------------------------------------------------

def test_missing_markers_and_white_space_read_alike_in_lists_and_tables(tmp_path: Path) -> None:
    listed = tmp_path / "genes.txt"
    listed.write_text(" CD4 \nNA\nCD8A\n\n\n")
    table = tmp_path / "genes.csv"
    table.write_text("gene\n CD4 \nNA\nCD8A\n\n")
    assert read_values(str(listed)) == ["CD4", None, "CD8A"]
    assert read_values(str(table)) == ["CD4", None, "CD8A"]


def test_a_blank_line_before_the_end_is_a_missing_value(tmp_path: Path) -> None:
    listed = tmp_path / "genes.txt"
    listed.write_text("CD4\n\nCD8A\n")
    assert read_values(str(listed)) == ["CD4", None, "CD8A"]


def test_a_file_with_only_a_header_says_how_to_read_it(tmp_path: Path) -> None:
    table = tmp_path / "x.tsv"
    table.write_text("A\n")
    with pytest.raises(UnsupportedFileError, match="no values; pass --no-header"):
        read_values(str(table))


@pytest.mark.parametrize(("header", "message"), [
    (",x,y", r"column 0 \(counting from 0\) of .* has no name.*--header records every"),
    ("a,,b", r"column 1 \(counting from 0\) of .* has no name"),
    (",,b", r"columns 0, 1 \(counting from 0\) of .* have no name"),
])
def test_header_needs_every_column_named_and_says_which_from_0(tmp_path: Path, header: str,
                                                               message: str) -> None:
    table = tmp_path / "t.csv"
    table.write_text(f"{header}\n1,2,3\n")
    with pytest.raises(UnsupportedFileError, match=message):
        read_header_features(str(table))


def test_a_named_column_is_read_beside_unnamed_ones_which_positions_reach(
        tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text(",x,,y\n1,A,2,B\n3,C,4,D\n")
    assert read_values(str(table), column="y") == ["B", "D"]
    assert read_values(str(table), column="0") == ["1", "3"]
    assert read_values(str(table), column="2") == ["2", "4"]
    with pytest.raises(UnsupportedFileError, match=r"columns \(0 \(unnamed\), 'x', 2 "):
        read_values(str(table))


def test_a_real_table_with_an_unnamed_row_index_gives_its_named_columns() -> None:
    liana = data_file(DATA / "genes" / "marker_lists" / "liana_omni_resource.csv.gz")
    symbols = read_column(str(liana), column="source_genesymbol")
    assert (symbols.name, len(symbols.values)) == ("source_genesymbol", 35356)
    assert symbols.values[0] == "LGALS9"
    assert read_values(str(liana), column="0")[:3] == ["1", "2", "3"]
    with pytest.raises(UnsupportedFileError, match=r"column 0 .* has no name"):
        read_header_features(str(liana))


def _var_frame() -> pd.DataFrame:
    var = data_file(DATA / "genes" / "package_vars" / "infercnvpy_oligodendroglioma_var.tsv")
    return pd.read_csv(var, sep="\t").set_index("gene_symbol")


@pytest.mark.parametrize("index_name", ["gene_symbol", None])
def test_the_index_of_a_parquet_frame_is_read_as_in_its_tsv(tmp_path: Path,
                                                            index_name: str | None) -> None:
    var = _var_frame().rename_axis(index_name)
    var.to_parquet(tmp_path / "var.parquet")
    var.reset_index().to_csv(tmp_path / "var.tsv", sep="\t", index=False)
    name = index_name or "index"
    for column in (name, "0", "chromosome", "2"):
        from_parquet = read_column(str(tmp_path / "var.parquet"), column=column)
        from_tsv = read_column(str(tmp_path / "var.tsv"), column=column)
        assert (from_parquet.name, from_parquet.values) == (from_tsv.name, from_tsv.values)
    assert read_values(str(tmp_path / "var.parquet"), column=name)[:2] == ["WASH7P",
                                                                           "LINC00115"]
    header = read_header_features(str(tmp_path / "var.parquet"))
    assert FeatureSet(header) == FeatureSet.from_df(var, validate=False)
    assert name not in [feature.name for feature in header]


def test_a_repeated_column_name_is_an_error_also_when_choosing_a_column(tmp_path: Path) -> None:
    table = tmp_path / "dup.csv"
    table.write_text("a,a,b\nA1,A2,B\n")
    with pytest.raises(DuplicateColumnError, match="'a'"):
        read_values(str(table), column="a")


def test_compressed_input_is_recognised_by_content(tmp_path: Path) -> None:
    hidden = tmp_path / "genes.txt"  # gzip bytes behind a plain name
    hidden.write_bytes(gzip.compress(b"CD4\nCD8A\n"))
    assert read_values(str(hidden)) == ["CD4", "CD8A"]
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\x1f\x8b" + b"not gzip at all")
    with pytest.raises(UnsupportedFileError, match="compressed but damaged"):
        read_values(str(broken))


def test_a_binary_file_is_named_as_binary(tmp_path: Path) -> None:
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(UnsupportedFileError, match="binary file"):
        read_values(str(binary))


# -- Parquet ------------------------------------------------------------------------------

def test_parquet_input_follows_the_same_rules_as_text(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    duplicate = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]), duplicate)
    with pytest.raises(DuplicateColumnError):
        read_header_features(str(duplicate))
    indexed = tmp_path / "var.parquet"
    pd.DataFrame({"n": [1, 2]}, index=["G1", "G2"]).to_parquet(indexed)
    assert [feature.name for feature in read_header_features(str(indexed))] == ["n"]
    ids = tmp_path / "ids.parquet"
    pd.DataFrame({"entrez": [574405, 574404]}).to_parquet(ids)
    assert read_values(str(ids)) == ["574405", "574404"]
    nested = tmp_path / "nested.parquet"
    pd.DataFrame({"lst": [[1, 2], [3]]}).to_parquet(nested)
    with pytest.raises(UnsupportedFileError, match="members are identifiers"):
        read_values(str(nested))


# -- the Python API -----------------------------------------------------------------------

@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: FeatureSet.from_values("ENSG00000153563"), InvalidInputError, "not one str"),
    (lambda: FeatureSet(None), InvalidInputError, "must be a list"),
    (lambda: FeatureSet.from_df(pd.Series([1])), InvalidInputError, "to_frame"),
    (lambda: FeatureSet.from_values([["a"]]), InvalidMemberError, "not text"),
    (lambda: FeatureSet.from_values(["a\ud800"]), InvalidMemberError, "lone surrogates"),
    (lambda: FeatureSet.from_values(["a"], name="3a8c51"), InvalidNameError, "hash prefix"),
    (lambda: FeatureSet.from_values(["a"], name="x" * 100_000), InvalidNameError, r"\.\.\."),
    (lambda: FeatureSet.from_values(["a"], type="datetime[Mars/Olympus]"), InvalidDtypeError,
     "unknown time zone"),
    (lambda: FeatureSet.from_values(["a"], type="cat[ bad ]"), InvalidDtypeError,
     "unknown dtype"),
])
def test_bad_python_input_raises_the_package_errors(call, error, message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        call()
    assert len(str(caught.value)) < 400


def test_a_moved_name_is_not_reported_for_its_old_set(store: Store) -> None:
    old = store.save(FeatureSet.from_values(["A"], field="Gene.symbol", name="x"))
    store.save(FeatureSet.from_values(["B"], field="Gene.symbol", name="x"))
    loaded = store.get(old.hash[:8])
    assert loaded.name is None
    resaved = store.put(loaded)
    assert not resaved.recorded
    assert store.get("x").member_names == ("B",)


# -- the store's description file ---------------------------------------------------------

def test_a_damaged_store_description_is_named_as_damaged(store: Store) -> None:
    config = store.root / "fsstore.json"
    document = json.loads(config.read_text())
    del document["store_id"]
    config.write_text(json.dumps(document))
    with pytest.raises(StoreFormatError, match="no valid store_id"):
        Store(store.root)
    document["store_id"] = "abc"
    document["version"] = "1"
    config.write_text(json.dumps(document))
    with pytest.raises(StoreFormatError, match="invalid layout version '1'"):
        Store(store.root)


def test_a_lost_store_description_can_be_written_again(store: Store) -> None:
    saved = store.save(FeatureSet.from_values(["A"], field="Gene.symbol", name="kept"))
    (store.root / "fsstore.json").unlink()
    with pytest.raises(StoreNotFoundError, match="run `fsstore init"):
        Store(store.root)
    again = Store.init(store.root)
    assert again.get("kept").hash == saved.hash


def test_a_folder_inside_a_store_points_at_the_store(store: Store) -> None:
    with pytest.raises(StoreNotFoundError, match=f"inside the store {store.root}"):
        Store(store.root / "objects")


# -- the command line ---------------------------------------------------------------------

@pytest.fixture
def cli_store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    assert fsstore("init", str(path)).returncode == 0
    return path


def test_standard_input_can_be_a_compressed_table(cli_store: Path) -> None:
    done = fsstore("add", "-", "--format", "csv", "--column", "g", "--field", "Gene.symbol",
                   "--json", store=cli_store, stdin=gzip.compress(b"g,v\nA,1\nB,2\n"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 2


def test_a_header_can_be_stored_as_gene_symbols(cli_store: Path, tmp_path: Path) -> None:
    matrix = tmp_path / "counts.csv"
    matrix.write_text("CD4,CD8A,MS4A1\n1,2,3\n")
    done = fsstore("add", str(matrix), "--header", "--field", "Gene.symbol", "--json",
                   store=cli_store)
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert (added["itype"], added["n"]) == ("Gene.symbol", 3)


@pytest.mark.parametrize("args", [["--header", "--no-header"], ["--header", "--type", "int"],
                                  ["--header", "--column", "a"]])
def test_contradicting_options_are_usage_errors(cli_store: Path, tmp_path: Path,
                                                args: list[str]) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    done = fsstore("add", str(table), *args, store=cli_store)
    assert done.returncode == 2
    assert b"cannot be used with" in done.stderr


def test_the_only_column_of_a_table_is_named_when_used(cli_store: Path, tmp_path: Path) -> None:
    table = tmp_path / "genes.csv"
    table.write_text("CD4\nCD8A\nMS4A1\n")
    done = fsstore("add", str(table), "--field", "Gene.symbol", store=cli_store)
    assert done.returncode == 0
    assert b"reading column 'CD4'" in done.stderr
    assert b"--no-header" in done.stderr


def test_ls_json_has_no_nan(cli_store: Path) -> None:
    assert fsstore("add", "-", store=cli_store, stdin=b"a\n").returncode == 0
    done = fsstore("ls", "--json", store=cli_store)
    assert b"NaN" not in done.stdout
    assert json.loads(done.stdout)[0]["type"] is None


def test_an_exists_message_says_when_the_index_changed(cli_store: Path) -> None:
    assert fsstore("add", "-", "--name", "first", store=cli_store, stdin=b"a\n").returncode == 0
    done = fsstore("add", "-", "--name", "second", store=cli_store, stdin=b"a\n")
    assert b"recorded in the index" in done.stdout


def test_a_file_system_refusal_is_one_line(cli_store: Path) -> None:
    lock = cli_store / "index" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.mkdir()  # a folder where the lock file belongs
    done = fsstore("add", "-", "--name", "b", store=cli_store, stdin=b"a\n")
    assert done.returncode in (6, 7)
    assert len(done.stderr.strip().splitlines()) == 1
    assert b"Traceback" not in done.stderr


def test_output_cut_short_by_a_pager_is_not_an_error(cli_store: Path, grch38: Path) -> None:
    assert fsstore("add", str(grch38), "--name", "big", store=cli_store).returncode == 0
    done = subprocess.run(
        f"{sys.executable} -m fsstore show big --store {cli_store} | head -1",
        shell=True, capture_output=True, timeout=120)
    assert done.stdout.startswith(b"uid")
    assert b"Traceback" not in done.stderr
