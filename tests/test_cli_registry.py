"""The command line for registries: registry add/ls/show, validate, add strict or lenient."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from fsstore.cli import main
from tests.conftest import GRCH38, data_file
from tests.test_cli import run
from tests.test_store import snapshot
from tests.test_validation_real import COORDINATES, INT_IDS, PBMC, V44, V48

GENE_FIELDS = ["--field", "ensembl_gene_id=0", "--field", "symbol=1"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def gencode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with both GENCODE releases registered through the command line."""
    store = tmp_path_factory.mktemp("cli") / "store"
    assert run("init", str(store))[0] == 0
    status, out, err = run("registry", "add", str(data_file(V48)), "--no-header", "--name",
                           "Gene", "--organism", "human", "--version", "gencode-v48",
                           *GENE_FIELDS, "--field", "biotype=4", store=store)
    assert status == 0, err
    assert out.startswith("registered Gene (human) gencode-v48: 78,894 records, fields "
                          "biotype, ensembl_gene_id, symbol; table ")
    status, out, err = run("registry", "add", str(data_file(V44)), "--no-header", "--name",
                           "Gene", "--organism", "human", "--version", "gencode-v44",
                           *GENE_FIELDS, store=store)
    assert status == 0, err
    return store


def test_registering_again_is_reported_and_writes_nothing(gencode: Path, capsys) -> None:
    before = snapshot(gencode)
    status, out, _ = cli(capsys, "registry", "add", str(V48), "--no-header", "--name", "Gene",
                         "--organism", "human", "--version", "gencode-v48", *GENE_FIELDS,
                         "--field", "biotype=4", "--store", str(gencode))
    assert status == 0
    assert out.startswith("exists Gene (human) gencode-v48")
    assert "already registered, nothing written" in out
    assert snapshot(gencode) == before

    status, _, err = cli(capsys, "registry", "add", str(V44), "--no-header", "--name", "Gene",
                         "--organism", "human", "--version", "gencode-v48", *GENE_FIELDS,
                         "--store", str(gencode))
    assert status == 4
    assert err.startswith("error: Gene (human) gencode-v48 is already registered with "
                          "another table")
    assert snapshot(gencode) == before


def test_ls_and_show_list_both_versions(gencode: Path, capsys) -> None:
    status, out, _ = cli(capsys, "registry", "ls", "--json", "--store", str(gencode))
    assert status == 0
    listed = json.loads(out)
    assert [(item["version"], item["n"]) for item in listed] == [("gencode-v48", 78894),
                                                                 ("gencode-v44", 62754)]
    status, out, _ = cli(capsys, "registry", "ls", "--store", str(gencode))
    assert "gencode-v44" in out
    assert "62,754" in out

    status, out, _ = cli(capsys, "registry", "show", "Gene", "--version", "gencode-v48",
                         "--json", "--head", "2", "--store", str(gencode))
    shown = json.loads(out)
    fields = {item["field"]: item for item in shown["fields"]}
    symbols = [row[1] for row in
               (line.split(",") for line in gzip.decompress(V48.read_bytes()).decode()
                .splitlines())]
    assert fields["symbol"]["distinct"] == len(set(symbols))
    counts = Counter(symbols)
    assert fields["symbol"]["in_several_records"] == sum(1 for c in counts.values() if c > 1)
    assert len(shown["records"]) == 2
    assert Path(shown["table"]).is_file()

    status, out, _ = cli(capsys, "registry", "show", "Gene", "--store", str(gencode))
    assert status == 0
    assert "version     gencode-v44" in out
    assert "records (10 of 62,754):" in out


def test_validate_prints_the_summary_and_exits_4_on_invalid(gencode: Path, capsys) -> None:
    ids = [line.split("\t")[0] for line in
           gzip.decompress(data_file(GRCH38).read_bytes()).decode().splitlines()]
    known = {line.split(",")[0] for line in gzip.decompress(V48.read_bytes()).decode()
             .splitlines()}
    missing = [value for value in ids if value not in known]
    status, out, _ = cli(capsys, "validate", str(GRCH38), "--field", "Gene.ensembl_gene_id",
                         "--registry-version", "gencode-v48", "--store", str(gencode))
    assert status == 4
    assert (f"{len(ids):,} values ({len(ids):,} distinct): {len(ids) - len(missing):,} "
            f"validated, {len(missing):,} not validated") in out
    status, out, _ = cli(capsys, "validate", str(GRCH38), "--field", "Gene.ensembl_gene_id",
                         "--registry-version", "gencode-v48", "--json", "--store",
                         str(gencode))
    assert status == 4
    document = json.loads(out)
    assert set(document["not_validated"]) == set(missing)
    assert document["registry"].startswith("Gene (human) gencode-v48 [")

    status, out, _ = cli(capsys, "validate", str(COORDINATES), "--column", "gene_id",
                         "--field", "Gene.ensembl_gene_id", "--registry-version",
                         "gencode-v48", "--limit", "2", "--store", str(gencode))
    assert status == 4
    assert "'ENSG00000296732.1' -> 'ENSG00000296732' by version" in out

    good = Path(str(gencode) + "-good.txt")
    good.write_text("ENSG00000153563\nENSG00000010610\n")
    status, out, _ = cli(capsys, "validate", str(good), "--field", "Gene.ensembl_gene_id",
                         "--store", str(gencode))
    assert status == 0
    assert "2 validated, 0 not validated" in out


def test_add_is_strict_unless_lenient_and_can_standardize(gencode: Path, capsys) -> None:
    before = snapshot(gencode / "objects")
    status, _, err = cli(capsys, "add", str(INT_IDS), "--field", "Gene.ensembl_gene_id",
                         "--store", str(gencode))
    assert status == 4
    assert "6 of 6 distinct values are not in Gene.ensembl_gene_id" in err
    assert "look like integers" in err
    note, error = err.strip().splitlines()  # which column was read; the error, on one line
    assert note.startswith("reading the ids (column 0)")
    assert error.startswith("error: ")
    assert snapshot(gencode / "objects") == before

    status, out, err = cli(capsys, "add", str(PBMC), "--column", "index", "--field",
                           "Gene.ensembl_gene_id", "--registry-version", "gencode-v48",
                           "--lenient", "--standardize", "--name", "pbmc68k", "--json",
                           "--store", str(gencode))
    assert status == 0, err
    document = json.loads(out)
    assert document["input"]["validated_against"].startswith("Gene (human) gencode-v48")
    assert len(document["input"]["standardized"]) == document["n"]
    assert document["n"] + len(document["input"]["invalid_dropped"]) == 765

    status, out, err = cli(capsys, "add", str(GRCH38), "--field", "Gene.ensembl_gene_id",
                           "--registry-version", "gencode-v44", "--lenient", "--store",
                           str(gencode))
    assert status == 0
    ids = [line.split("\t")[0] for line in
           gzip.decompress(GRCH38.read_bytes()).decode().splitlines()]
    v44 = {line.split(",")[0] for line in gzip.decompress(V44.read_bytes()).decode()
           .splitlines()}
    dropped = len(set(ids) - v44)
    assert (f"dropped {dropped:,} values not in Gene.ensembl_gene_id of Gene (human) "
            "gencode-v44") in err
    assert out.startswith("stored ")


def test_feature_registry_from_the_command_line(tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert cli(capsys, "init", str(store))[0] == 0
    reference = tmp_path / "reference.csv"
    reference.write_text("n_counts,ratio,label\n1,0.5,a\n2,1.5,b\n")
    status, out, _ = cli(capsys, "registry", "add", str(reference), "--features",
                         "--store", str(store))
    assert status == 0
    assert out.startswith("registered Feature v1: 3 records, fields dtype, name")

    table = tmp_path / "table.csv"
    table.write_text("n_counts,ratio,extra\n1.5,0.5,x\n")
    status, out, _ = cli(capsys, "validate", str(table), "--header", "--field",
                         "Feature.name", "--store", str(store))
    assert status == 4
    assert "1 not validated" in out
    assert "dtype mismatch: column 'n_counts' holds float, registered as int" in out

    status, _, err = cli(capsys, "add", str(table), "--header", "--store", str(store))
    assert status == 4
    assert "1 of 3 distinct values are not in Feature.name" in err
    status, _, err = cli(capsys, "add", str(table), "--header", "--lenient", "--store",
                         str(store))
    assert status == 4
    assert "n_counts (float, registered as int)" in err
    status, _, err = cli(capsys, "add", str(table), "--header", "--no-validate", "--store",
                         str(store))
    assert status == 0
    assert err == ""


def test_sets_of_a_registry_the_store_lacks_say_they_were_not_validated(
        tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    assert cli(capsys, "init", str(store))[0] == 0
    values = tmp_path / "list.txt"
    values.write_text("CD8A\nCD4\n")
    # A store without registries: nothing to validate against, nothing to point out.
    status, _, err = cli(capsys, "add", str(values), "--field", "Gene.symbol", "--store",
                         str(store))
    assert (status, err) == (0, "")
    status, out, _ = cli(capsys, "add", str(values), "--field", "Gene.symbol", "--json",
                         "--store", str(store))
    assert json.loads(out)["input"]["validated_against"] is None
    # Once the store has registries, a set of another registry is pointed out.
    proteins = tmp_path / "proteins.csv"
    proteins.write_text("uniprot_id\nP01732\n")
    assert cli(capsys, "registry", "add", str(proteins), "--name", "Protein", "--version",
               "2024", "--store", str(store))[0] == 0
    status, _, err = cli(capsys, "add", str(values), "--field", "Gene.symbol", "--store",
                         str(store))
    assert status == 0
    assert "not validated: this store has no Gene registry" in err


@pytest.mark.parametrize(("args", "message"), [
    (["registry", "add", "x.csv"], "give the registry --name and a --version"),
    (["registry", "add", "x.csv", "--features", "--name", "Gene"], "takes no --name"),
    (["validate", "x.csv", "--field", "Gene.symbol", "--header"], "use --field Feature.name"),
])
def test_usage_errors(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    store = tmp_path / "store"
    assert cli(capsys, "init", str(store))[0] == 0
    (tmp_path / "x.csv").write_text("a\n1\n")
    status, _, err = cli(capsys, *[str(tmp_path / a) if a == "x.csv" else a for a in args],
                         "--store", str(store))
    assert status == 2
    assert message in err
