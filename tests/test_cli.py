"""The command line on real gene references: add, dedup, show by prefix, errors."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fsstore.cli import main
from tests.test_store import snapshot


def run(*args: str, store: Path | None = None) -> tuple[int, str, str]:
    """Run the CLI in a subprocess, as a user would; returns (status, stdout, stderr)."""
    command = [sys.executable, "-m", "fsstore", *args]
    if store is not None:
        command += ["--store", str(store)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def run_json(*args: str, store: Path) -> object:
    status, out, err = run(*args, "--json", store=store)
    assert status == 0, err
    return json.loads(out)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    assert run("init", str(path))[0] == 0
    return path


def test_real_references_are_stored_once_and_shown_by_prefix(
        store_path: Path, grch38: Path, mm10: Path, tmp_path: Path) -> None:
    added = run_json("add", str(grch38), "--field", "Gene.ensembl_gene_id", "--name",
                     "GRCh38-2020-A", store=store_path)
    assert added["n"] == 36601
    assert added["created"] is True
    mouse = run_json("add", str(mm10), "--field", "Gene.ensembl_gene_id", "--name", "mm10",
                     store=store_path)
    assert mouse["n"] == 31053
    objects = snapshot(store_path / "objects")

    # Again, and shuffled: the existing set is reported and no object changes.
    status, out, _ = run("add", str(grch38), "--field", "Gene.ensembl_gene_id", "--name",
                         "GRCh38-2020-A", store=store_path)
    assert status == 0
    assert out.startswith(f"exists {added['hash'][:12]}")
    lines = gzip.decompress(grch38.read_bytes()).decode().splitlines()
    random.Random(7).shuffle(lines)
    shuffled = tmp_path / "shuffled_features.tsv.gz"
    shuffled.write_bytes(gzip.compress("\n".join(lines).encode()))
    again = run_json("add", str(shuffled), "--field", "Gene.ensembl_gene_id", "--name",
                     "GRCh38-2020-A", store=store_path)
    assert again["hash"] == added["hash"]
    assert again["created"] is False
    mouse_again = run_json("add", str(mm10), "--field", "Gene.ensembl_gene_id", store=store_path)
    assert mouse_again["created"] is False
    assert snapshot(store_path / "objects") == objects

    # show with a 6-character prefix lists every member
    status, out, _ = run("show", added["hash"][:6], store=store_path)
    assert status == 0
    members = out.split("members:\n", 1)[1].splitlines()
    assert len(members) == 36601
    assert set(members) == {line.split("\t")[0] for line in lines}

    # the manifest is plain Parquet
    frame = pd.read_parquet(added["manifest"])
    assert len(frame) == 36601
    assert list(frame.columns) == ["name", "dtype"]

    listed = run_json("ls", store=store_path)
    assert [entry["names"] for entry in listed] == [["GRCh38-2020-A"], ["mm10"]]


def test_table_header_becomes_a_feature_set(store_path: Path, tmp_path: Path) -> None:
    table = tmp_path / "seed.csv"
    table.write_text("feat1,feat2,feat3\n1,2.5,a\n2,3.5,b\n")
    added = run_json("add", str(table), "--header", "--name", "seed", store=store_path)
    shown = run_json("show", "seed", store=store_path)
    assert added["n"] == 3
    assert shown["members"] == [{"name": "feat1", "dtype": "int"},
                                {"name": "feat2", "dtype": "float"},
                                {"name": "feat3", "dtype": "str"}]


def test_standard_input_is_a_plain_list(store_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fsstore", "add", "-", "--field",
                           "Gene.symbol", "--name", "markers", "--store", str(store_path),
                           "--json"], input="CD8A\r\nCD4\r\nCD8A\r\n", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 2


@pytest.mark.parametrize(("args", "status", "message"), [
    (["show", "no-such-set"], 3, "no set named 'no-such-set'"),
    (["show", "abc"], 3, "at least 6 characters"),
    (["add", "missing.csv"], 4, "missing.csv does not exist"),
    (["add", "-", "--name", "a/b"], 4, "path separators"),
])
def test_errors_print_one_line_and_exit_non_zero(store_path: Path, args: list[str],
                                                 status: int, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "fsstore", *args, "--store",
                           str(store_path)], input="x\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == status
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_missing_values_fail_unless_lenient(store_path: Path, tmp_path: Path) -> None:
    table = tmp_path / "genes.csv"
    table.write_text("gene\nCD8A\n\nCD4\nNA\n")
    status, _, err = run("add", str(table), "--field", "Gene.symbol", store=store_path)
    assert status == 4
    assert "2 of 4 values are missing" in err
    status, _, err = run("add", str(table), "--field", "Gene.symbol", "--lenient",
                           store=store_path)
    assert status == 0
    assert "dropped 2 missing values of 4" in err


def test_the_store_is_found_upward_or_from_the_environment(tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    project = tmp_path / "project"
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project)
    assert main(["init"]) == 0
    assert "Initialized empty fsstore store" in capsys.readouterr().out
    monkeypatch.chdir(project / "deep" / "er")
    assert main(["ls", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    monkeypatch.chdir(tmp_path)
    assert main(["ls"]) == 3
    assert "fsstore init" in capsys.readouterr().err
    monkeypatch.setenv("FSSTORE_DIR", str(project / ".fsstore"))
    assert main(["ls", "--json"]) == 0


def test_help_lists_the_commands_and_exit_codes() -> None:
    status, out, _ = run("--help")
    assert status == 0
    for word in ("add", "init", "ls", "show", "log", "Exit status"):
        assert word in out


def test_a_shuffled_reference_piped_in_whole_is_the_stored_set(store_path: Path,
                                                                grch38: Path) -> None:
    stored = run_json("add", str(grch38), "--field", "Gene.ensembl_gene_id", store=store_path)
    lines = gzip.decompress(grch38.read_bytes()).splitlines(keepends=True)
    random.Random(3).shuffle(lines)
    command = [sys.executable, "-m", "fsstore", "add", "-", "--field", "Gene.ensembl_gene_id",
               "--json", "--store", str(store_path)]
    done = subprocess.run(command, input=b"".join(lines), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert again["hash"] == stored["hash"]
    assert again["created"] is False


def test_add_of_a_cite_seq_features_file_asks_for_a_feature_type(store_path: Path,
                                                                 grch38: Path,
                                                                 tmp_path: Path) -> None:
    from tests.test_readers import _mixed_10x

    path = _mixed_10x(grch38, tmp_path)
    status, _, err = run("add", str(path), "--field", "Gene.ensembl_gene_id",
                           store=store_path)
    assert status == 4
    assert "choose one with --feature-type" in err
    assert "Traceback" not in err
    genes = run_json("add", str(path), "--field", "Gene.ensembl_gene_id", "--feature-type",
                     "Gene Expression", store=store_path)
    reference = run_json("add", str(grch38), "--field", "Gene.ensembl_gene_id",
                         store=store_path)
    assert genes["hash"] == reference["hash"]
    assert genes["n"] == 36601


def test_commands_run_side_by_side_all_exit_zero(tmp_path: Path) -> None:
    # pyarrow's thread pools could abort the interpreter's teardown (exit 134) after a
    # command had succeeded, a few runs in a hundred when several ran at once.
    store = tmp_path / "store"
    assert main(["init", str(store)]) == 0
    members = tmp_path / "members.txt"
    members.write_text("CD8A\nCD4\ncafé\n")
    assert main(["add", str(members), "--name", "café", "--store", str(store)]) == 0
    command = [sys.executable, "-m", "fsstore", "show", "café", "--no-members", "--store",
               str(store)]
    statuses = []
    for _ in range(8):
        runs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True) for _ in range(4)]
        statuses += [(run.wait(timeout=120), run.stderr.read() if run.stderr else "")
                     for run in runs]
    assert statuses == [(0, "")] * 32
