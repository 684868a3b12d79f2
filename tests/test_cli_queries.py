"""The dataset and query commands, run as a user would: link, datasets, find, similar, diff."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

from fsstore.cli import main
from tests.conftest import DATA, cli_json, data_file
from tests.test_cli import run

DEATHS = ["MASS__deaths.csv", "MASS__accdeaths.csv", "MASS__drivers.csv"]



def test_linking_a_folder_lists_shared_sets_and_datasets_by_member(cli, tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    for name in DEATHS:
        (folder / name).write_bytes(data_file(DATA / "tabular" / "csv" / "rdatasets" / name)
                                    .read_bytes())
    (folder / "notes.txt").write_text("not a dataset\n")
    linked = cli_json(cli, "link", str(folder))
    assert len(linked["datasets"]) == 3
    assert not linked["failed"]
    shared = cli_json(cli, "datasets", "--shared")
    assert len(shared) == 1
    assert sorted(Path(d["path"]).name for d in shared[0]["datasets"]) == sorted(DEATHS)
    status, out, _ = cli("datasets", "--shared")
    assert status == 0
    assert "1 sets are held by 2 or more datasets" in out
    by_member = cli_json(cli, "datasets", "--member", "value")
    assert sorted(Path(row["path"]).name for row in by_member) == sorted(DEATHS)
    by_set = cli_json(cli, "datasets", "--set", shared[0]["hash"][:8])
    assert len(by_set) == 3
    # again: nothing recorded
    status, out, _ = cli("link", str(folder))
    assert "3 datasets: 0 new, 0 with changes recorded" in out
    # a dataset's slot, by path
    status, out, _ = cli("datasets", str(folder / DEATHS[0]), "--slot", "columns")
    assert status == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["rownames", "time", "value"]


def test_a_bad_file_among_many_fails_alone(store_path: Path, tmp_path: Path) -> None:
    # a subprocess, as a user runs it: the exit status and one line per failure
    (tmp_path / "good.csv").write_text("a,b\n1,2\n")
    (tmp_path / "bad.csv").write_text("a,a\n1,2\n")
    status, _, err = run("link", str(tmp_path / "good.csv"), str(tmp_path / "bad.csv"),
                         store=store_path)
    assert status == 4
    assert "duplicate column names" in err
    assert "Traceback" not in err
    assert main(["datasets", "--store", str(store_path)]) == 0


def test_similar_finds_the_references_for_a_query_of_their_ids(store_path: Path, cli, grch38: Path,
                                                               mm10: Path) -> None:
    for path, name in ((grch38, "GRCh38-2020-A"), (mm10, "mm10")):
        cli_json(cli, "add", str(path), "--field", "Gene.ensembl_gene_id", "--name", name)
    ids = {name: [line.split("\t")[0] for line in gzip.decompress(path.read_bytes()).decode()
                  .splitlines()] for path, name in ((grch38, "GRCh38-2020-A"), (mm10, "mm10"))}
    rng = random.Random(11)
    query = rng.sample(ids["GRCh38-2020-A"], 500) + rng.sample(ids["mm10"], 500)
    done = subprocess.run([sys.executable, "-m", "fsstore", "similar", "-", "--min-jaccard",
                           "0.01", "--json", "--store", str(store_path)],
                          input="\n".join(query), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    brute = {name: len(set(query) & set(members)) / len(set(query) | set(members))
             for name, members in ids.items()}
    assert [(row["names"], row["jaccard"]) for row in found] == sorted(
        (([name], value) for name, value in brute.items()), key=lambda item: -item[1])
    status, out, _ = cli("similar", "GRCh38-2020-A", "--min-jaccard", "0.9")
    assert status == 0
    assert "mm10" not in out


def test_find_and_diff_on_named_sets(store_path: Path, cli) -> None:
    for name, members in (("old", "CD4\nCD8A\nCD3E\n"), ("new", "CD4\nCD8A\nCD8B\n")):
        done = subprocess.run([sys.executable, "-m", "fsstore", "add", "-", "--field",
                               "Gene.symbol", "--name", name, "--store", str(store_path)],
                              input=members, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    found = cli_json(cli, "find", "--member", "CD8A")
    assert sorted(row["names"][0] for row in found) == ["new", "old"]
    assert cli_json(cli, "find", "--member", "cd8b", "-i")[0]["names"] == ["new"]
    assert [row["names"] for row in cli_json(cli, "find", "--name", "ne*")] == \
        [["new"]]
    status, out, _ = cli("diff", "old", "new")
    assert status == 0
    assert out.splitlines() == ["+ CD8B", "- CD3E",
                                out.splitlines()[-1]]
    assert "1 added, 1 removed, 0 changed, 2 in common" in out
    changes = cli_json(cli, "diff", "old", "new")
    assert (changes["added"], changes["removed"]) == (["CD8B"], ["CD3E"])
    status, _, err = cli("similar", "nothing-here")
    assert status == 3
    assert "no set named 'nothing-here'" in err


def test_export_serves_a_copied_dataset_back(cli, tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_text("a,b\n1,2\n")
    linked = cli_json(cli, "link", str(source), "--copy", "--name", "tiny")
    assert linked["stored"] is True
    target = tmp_path / "back.csv"
    status, out, _ = cli("export", "tiny", str(target))
    assert status == 0, out
    assert target.read_bytes() == source.read_bytes()
    shown = cli_json(cli, "datasets", "tiny")
    assert Path(shown["object"]).read_bytes() == source.read_bytes()
    status, _, err = cli("export", "tiny", str(target))
    assert status == 4
    assert err.startswith("error: ")
    assert "exists" in err
    assert len(err.strip().splitlines()) == 1


def test_exporting_a_dataset_without_stored_bytes_creates_no_file(cli, tmp_path: Path
                                                                   ) -> None:
    source = tmp_path / "t.csv"
    source.write_text("a,b\n1,2\n")
    linked = cli_json(cli, "link", str(source))
    target = tmp_path / "back.csv"
    status, _, err = cli("export", linked["dataset"][:8], str(target))
    assert status == 3
    assert "--copy" in err
    assert not target.exists()
    assert cli("link", str(source), "--copy")[0] == 0
    assert cli("export", linked["dataset"][:8], str(target))[0] == 0
    assert target.read_bytes() == source.read_bytes()


def test_a_damaged_copy_is_refused_and_the_advice_given_restores_it(cli, tmp_path: Path
                                                                    ) -> None:
    source = tmp_path / "t.csv"
    source.write_text("a,b\n1,2\n")
    linked = cli_json(cli, "link", str(source), "--copy")
    stored = Path(cli_json(cli, "datasets", linked["dataset"])["object"])
    stored.chmod(0o644)
    stored.write_text("a,b\n1,3\n")
    status, _, err = cli("export", linked["dataset"][:8], str(tmp_path / "back.csv"))
    assert status != 0
    assert "fsstore verify --repair" in err
    assert not (tmp_path / "back.csv").exists()
    status, out, err = cli("export", linked["dataset"][:8], "-")
    assert status != 0
    assert out == ""  # nothing of the damaged copy reached standard output
    assert "the copy is damaged" in err
    status, out, err = cli("verify", "--repair")
    assert status != 0, out  # damage was found (and moved away)
    status, _, err = cli("link", str(source), "--copy")
    assert status == 0, err
    status, _, err = cli("export", linked["dataset"][:8], str(tmp_path / "back.csv"))
    assert status == 0, err
    assert (tmp_path / "back.csv").read_bytes() == source.read_bytes()
