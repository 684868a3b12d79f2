"""The sync commands as a user runs them: remote, push, pull, clone, on folders and a bucket.

One test runs the command in subprocesses, as a user would; the others call the same entry
point in the test process, which is much faster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from blake3 import blake3

from fsstore import Store
from fsstore.cli import main
from fsstore.manifest import manifest_key
from tests.test_cli import run
from tests.test_object_store import closed_port
from tests.test_sync import genes

Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def fsstore(capsys: pytest.CaptureFixture[str]) -> Invoke:
    """``fsstore(*args, store=PATH)``: run the command line here; (status, stdout, stderr)."""

    def invoke(*args: str, store: Path | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        extra = ["--store", str(store)] if store is not None else []
        status = main([*args, *extra])
        out, err = capsys.readouterr()
        return status, out, err

    return invoke


def test_remotes_are_added_listed_and_removed(tmp_path: Path, fsstore: Invoke) -> None:
    store = tmp_path / "store"
    assert fsstore("init", str(store))[0] == 0
    status, out, err = fsstore("remote", "add", "backup", str(tmp_path / "backup"), store=store)
    assert status == 0, err
    assert out.strip() == f"added remote backup -> {tmp_path / 'backup'}"
    status, out, _ = fsstore("remote", "--json", store=store)
    assert json.loads(out) == [{"name": "backup", "url": str(tmp_path / "backup")}]
    assert fsstore("remote", "add", "backup", "/elsewhere", store=store)[0] == 4
    status, out, _ = fsstore("remote", "remove", "backup", "--json", store=store)
    assert status == 0
    assert json.loads(out) == {"name": "backup", "url": str(tmp_path / "backup"),
                               "removed": True}
    status, _, err = fsstore("remote", "remove", "backup", store=store)
    assert status == 3
    assert err.strip() == "error: no remote named 'backup'; there are none"
    status, out, _ = fsstore("remote", "list", store=store)
    assert out.strip() == "no remotes; add one with `fsstore remote add NAME URL`"
    status, _, err = fsstore("push", "backup", store=store)
    assert status == 3
    assert err.strip().startswith("error: no remote named 'backup'")


@pytest.mark.parametrize("url", ["s3://AKIA:supersecret@team/p",
                                 "s3://team/p#secret_access_key=supersecret",
                                 "s3://team/p?secret_access_key=supersecret"])
def test_a_url_carrying_a_secret_is_refused_in_one_line_and_never_saved_or_echoed(
        tmp_path: Path, fsstore: Invoke, url: str) -> None:
    store = tmp_path / "store"
    assert fsstore("init", str(store))[0] == 0
    for command in (("remote", "add", "r1", url), ("pull", url), ("push", url),
                    ("clone", url, str(tmp_path / "copy")), ("ls", "--store", url)):
        status, out, err = fsstore(*command, store=None if "--store" in command else store)
        assert status == 4, command
        assert err.startswith("error: the store URL s3://team/p carries "), err
        assert "give credentials in environment variables" in err
        assert len(err.strip().splitlines()) == 1
        assert "supersecret" not in out + err
    assert "supersecret" not in (store / "fsstore.json").read_text()
    assert not (tmp_path / "copy").exists()


def test_an_unreachable_endpoint_is_reported_as_such_not_as_damage(
        tmp_path: Path, fsstore: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("obstore", reason="obstore is not installed (pip install -e '.[test]')")
    from fsstore.backend import object_store

    monkeypatch.setattr(object_store, "DEFAULT_RETRY", {"max_retries": 1})  # fail fast
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = tmp_path / "store"
    assert fsstore("init", str(store))[0] == 0
    for command in (("pull", f"s3://team/q?endpoint={endpoint}"),
                    ("clone", f"s3://team/q?endpoint={endpoint}", str(tmp_path / "copy"))):
        status, _, err = fsstore(*command, store=store)
        assert status == 7
        assert err == (f"error: cannot read s3://team/q/fsstore.json: the endpoint {endpoint} "
                       "could not be reached (no connection, after retries); check the "
                       "endpoint (AWS_ENDPOINT_URL, or ?endpoint= in the URL) and the network\n")
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("command", ["pull", "clone", "push"])
def test_a_missing_bucket_is_named_by_pull_clone_and_push(
        s3_url: str, tmp_path: Path, fsstore: Invoke, command: str) -> None:
    store = tmp_path / "store"
    assert fsstore("init", str(store))[0] == 0
    url = "s3://fsstore-no-such-bucket/lab"
    arguments = [command, url] + ([str(tmp_path / "copy")] if command == "clone" else [])
    status, _, err = fsstore(*arguments, store=store)
    assert status == 7
    assert "the bucket does not exist; create it with your provider's tools" in err
    assert "fsstore init" not in err
    assert not (tmp_path / "copy").exists()


def test_the_gene_reference_is_pushed_to_a_bucket_cloned_and_pushed_again(
        s3_url: str, tmp_path: Path, grch38: Path) -> None:
    store = tmp_path / "store"
    assert run("init", str(store))[0] == 0
    assert run("add", str(grch38), "--field", "Gene.ensembl_gene_id", "--name",
               "GRCh38-2020-A", store=store)[0] == 0
    assert run("remote", "add", "team", s3_url, store=store)[0] == 0

    status, out, err = run("push", "team", store=store)
    assert status == 0, err
    size = (store / manifest_key(Store(store).resolve("GRCh38-2020-A"))).stat().st_size
    assert out.splitlines() == [
        f"initialized a new store at {s3_url}",
        f"pushed to team ({s3_url}): 1 object copied ({size:,} bytes, {size / 1000:.1f} kB), "
        "0 already there; 1 index commit merged (1 event)"]

    status, out, err = run("clone", s3_url, str(tmp_path / "clone"), "--json")
    assert status == 0, err
    cloned = json.loads(out)
    assert (cloned["objects"]["copied"], cloned["objects"]["bytes"]) == (1, size)

    status, out, err = run("push", "team", "--json", store=store)
    assert status == 0, err
    again = json.loads(out)
    assert (again["objects"]["copied"], again["objects"]["bytes"],
            again["index"]["commits"]) == (0, 0, 0)

    status, out, _ = run("ls", "--json", store=tmp_path / "clone")
    assert [row["names"] for row in json.loads(out)] == [["GRCh38-2020-A"]]
    status, out, _ = run("show", "GRCh38-2020-A", "--no-members", "--json", "--store", s3_url)
    assert json.loads(out)["n"] == 36_601


def test_a_corrupt_object_on_the_remote_fails_the_pull_with_the_integrity_status(
        s3_url: str, tmp_path: Path, fsstore: Invoke) -> None:
    source = Store.init(tmp_path / "source")
    saved = source.save(genes("CD8A", "CD8B", name="cd8"))
    assert fsstore("push", s3_url, store=tmp_path / "source")[0] == 0
    bucket = Store(s3_url)
    key = manifest_key(saved.hash)
    bucket.backend.replace(key, bucket.backend.read(key)[:-30])

    status, _, err = fsstore("clone", s3_url, str(tmp_path / "copy"))
    assert status == 5
    assert f"problem: {key}: manifest" in err
    assert err.strip().splitlines()[-1].startswith("error: 2 problem(s) syncing")
    assert not (tmp_path / "copy" / key).exists()


def test_a_name_conflict_is_reported_and_both_sets_kept(tmp_path: Path, fsstore: Invoke) -> None:
    ana = Store.init(tmp_path / "ana")
    ana.save(genes("A", name="base"))
    assert fsstore("clone", str(tmp_path / "ana"), str(tmp_path / "bob"))[0] == 0
    mine = ana.save(genes("A", "B", name="panel"))
    theirs = Store(tmp_path / "bob").save(genes("C", name="panel"))
    status, _, err = fsstore("pull", "origin", store=tmp_path / "bob")
    assert status == 0, err
    assert 'conflict: "panel" was moved in both stores: here to ' + theirs.hash[:12] in err
    assert f"there to {mine.hash[:12]}" in err
    assert f'now points at {theirs.hash[:12]}, the later one' in err
    status, out, _ = fsstore("log", "panel", "--json", store=tmp_path / "bob")
    assert {row["hash"] for row in json.loads(out)} == {mine.hash, theirs.hash}


def sync_rounds(fsstore: Invoke, stores: tuple[Path, ...]) -> str:
    """Push each store to its origin, then pull into each, twice; standard error of all."""
    errors = ""
    for _ in range(2):
        for command in ("push", "pull"):
            for store in stores:
                status, _, err = fsstore(command, "origin", store=store)
                assert status == 0, err
                errors += err
    return errors


def test_a_slot_re_annotated_in_two_stores_converges_and_the_conflict_is_reported(
        tmp_path: Path, fsstore: Invoke, grch38: Path, mm10: Path) -> None:
    x, hub, y = tmp_path / "x", tmp_path / "hub", tmp_path / "y"
    data = tmp_path / "pbmc.csv"
    data.write_text("gene_id,count\nENSG00000153563,3\n")
    assert fsstore("init", str(x))[0] == 0
    for path, name in ((grch38, "GRCh38"), (mm10, "mm10")):
        assert fsstore("add", str(path), "--field", "Gene.ensembl_gene_id", "--name", name,
                       store=x)[0] == 0
    assert fsstore("link", str(data), "--name", "pbmc", store=x)[0] == 0
    assert fsstore("remote", "add", "origin", str(hub), store=x)[0] == 0
    assert fsstore("push", "origin", store=x)[0] == 0
    assert fsstore("clone", str(hub), str(y))[0] == 0
    grch38_hash, mm10_hash = (Store(x).resolve(name) for name in ("GRCh38", "mm10"))

    assert fsstore("link", str(data), "--slot", "var=GRCh38", store=x)[0] == 0
    assert fsstore("link", str(data), "--slot", "var=mm10", store=y)[0] == 0  # later
    errors = sync_rounds(fsstore, (x, y))

    for store in (x, hub, y):
        status, out, err = fsstore("datasets", "pbmc", "--json", store=store)
        assert status == 0, err
        assert json.loads(out)["slots"]["var"] == mm10_hash, store.name
        assert fsstore("verify", store=store)[0] == 0
        assert fsstore("datasets", "--set", "GRCh38", "--json", store=store)[1].strip() \
            == "[]"
    [conflict] = [line for line in errors.splitlines() if line.startswith("conflict:")]
    digest = Store(x).datasets()["dataset"][0]
    assert conflict.startswith(f'conflict: slot "var" of dataset {digest[:12]} was '
                               f"re-annotated in both stores: here to {grch38_hash[:12]} (")
    assert f"there to {mm10_hash[:12]} (" in conflict
    assert f"it now holds {mm10_hash[:12]}, the later one" in conflict
    status, out, _ = fsstore("push", "origin", "--json", store=y)
    assert json.loads(out)["conflicts"] == []


def test_a_dataset_name_given_in_two_stores_converges_and_the_conflict_is_reported(
        tmp_path: Path, fsstore: Invoke) -> None:
    x, hub, y = tmp_path / "x", tmp_path / "hub", tmp_path / "y"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("gene,count\nCD8A,1\n")
    second.write_text("gene,count\nCD4,2\n")
    assert fsstore("init", str(x))[0] == 0
    assert fsstore("push", str(hub), store=x)[0] == 0
    assert fsstore("remote", "add", "origin", str(hub), store=x)[0] == 0
    assert fsstore("clone", str(hub), str(y))[0] == 0

    assert fsstore("link", str(first), "--name", "dsname", store=x)[0] == 0
    assert fsstore("link", str(second), "--name", "dsname", store=y)[0] == 0  # later
    errors = sync_rounds(fsstore, (x, y))

    digests = {path: blake3(path.read_bytes()).hexdigest() for path in (first, second)}
    for store in (x, hub, y):
        status, out, err = fsstore("datasets", "dsname", "--json", store=store)
        assert status == 0, err
        assert json.loads(out)["dataset"] == digests[second], store.name
        listed = json.loads(fsstore("datasets", "--json", store=store)[1])
        assert {row["dataset"]: row["name"] for row in listed} == {
            digests[first]: None, digests[second]: "dsname"}
        assert fsstore("verify", store=store)[0] == 0
    [conflict] = [line for line in errors.splitlines() if line.startswith("conflict:")]
    assert conflict.startswith(
        f'conflict: dataset name "dsname" was given in both stores: here to dataset '
        f"{digests[first][:12]} (")
    assert f"there to dataset {digests[second][:12]} (" in conflict
    assert f'"dsname" now names {digests[second][:12]}, the later one' in conflict
    status, out, _ = fsstore("pull", "origin", "--json", store=x)
    assert json.loads(out)["conflicts"] == []
