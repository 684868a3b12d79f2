"""A whole store in an S3 bucket (a real S3-protocol server on loopback): saves, concurrent
writers with no lock, and the errors a user meets with URLs, credentials and buckets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from fsstore import FeatureSet, StorageError, Store, StoreExistsError, StoreNotFoundError
from fsstore.backend import open_backend
from fsstore.errors import MissingDependencyError, StoreUnreachableError, StoreURLError
from fsstore.readers import read_values
from tests.barrier import Workers
from tests.conftest import REPOSITORY

DEADLINE = 300


def test_a_bucket_store_saves_and_reads_the_gene_reference_like_a_folder(
        s3_url: str, grch38: Path) -> None:
    store = Store.init(s3_url)
    ids = read_values(str(grch38))
    saved = store.put(FeatureSet.from_values(ids, field="Gene.ensembl_gene_id",
                                             name="GRCh38-2020-A"))
    assert saved.created
    keys = {entry.key for entry in store.backend.list("")}

    again = Store(s3_url).put(FeatureSet.from_values(list(reversed(ids)),
                                                     field="Gene.ensembl_gene_id",
                                                     name="GRCh38-2020-A"))
    assert not again.created
    assert not again.recorded
    assert {entry.key for entry in store.backend.list("")} == keys

    reopened = Store(s3_url)
    read_back = reopened.get("GRCh38-2020-A")
    assert read_back.n == 36_601
    assert read_back.hash == saved.feature_set.hash
    assert list(reopened.sets()["names"]) == [["GRCh38-2020-A"]]
    assert reopened.root is None
    assert reopened.location == s3_url


def test_two_processes_saving_into_one_bucket_store_lose_no_index_entry(s3_url: str) -> None:
    Store.init(s3_url)
    count = 36
    processes = [subprocess.Popen([sys.executable, str(REPOSITORY / "tests" / "worker.py"),
                                   s3_url, prefix, str(count)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=REPOSITORY)
                 for prefix in ("left", "right")]
    printed: dict[str, list[str]] = {}
    for prefix, process in zip(("left", "right"), processes, strict=True):
        out, err = process.communicate(timeout=DEADLINE)
        assert process.returncode == 0, err
        printed[prefix] = out.split()

    store = Store(s3_url)
    for prefix, hashes in printed.items():
        assert len(hashes) == count
        for number, hash_hex in enumerate(hashes):
            assert store.resolve(f"{prefix}-{number}") == hash_hex
    view = store.index.view()
    assert view.head == 2 * count  # one commit per save: none lost, none doubled
    assert view.table("set").num_rows == 2 * count
    assert view.layout.runs, "72 commits are past the compaction threshold"


def test_object_store_urls_without_obstore_say_how_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'fsstore\[s3\]'"):
        open_backend("s3://bucket/prefix")


@pytest.mark.parametrize(("url", "what"), [
    ("s3://bucket/prefix?secret_access_key=supersecret", "the secret 'secret_access_key'"),
    ("s3://AKIA:supersecret@bucket/prefix", "a user name or password (before '@')"),
    ("s3://supersecret@bucket/prefix", "a user name or password (before '@')"),
    ("s3://bucket/prefix#secret_access_key=supersecret", "a fragment (after '#')"),
    ("gs://bucket/prefix#supersecret", "a fragment (after '#')"),
    ("s3://bucket/prefix?endpoint=http://AKIA:supersecret@host:9000",
     "a user name or password in its option 'endpoint'"),
    ("ftp://AKIA:supersecret@host/store", "a user name or password (before '@')"),
])
def test_secrets_in_a_store_url_are_refused_without_echoing_them(
        url: str, what: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)  # refused before any client is made
    with pytest.raises(StoreURLError) as refused:
        open_backend(url)
    message = str(refused.value)
    assert f"carries {what}; URLs are saved in store configs" in message
    assert "give credentials in environment variables" in message
    assert "supersecret" not in message
    assert "\n" not in message


def test_an_unknown_option_in_a_store_url_is_a_clear_error() -> None:
    pytest.importorskip("obstore", reason="obstore is not installed (pip install -e '.[test]')")
    with pytest.raises(StoreURLError, match="cannot open s3://bucket/prefix"):
        open_backend("s3://bucket/prefix?no_such_option=1")


def test_an_unknown_url_scheme_lists_the_known_ones() -> None:
    with pytest.raises(StoreNotFoundError, match=r"unknown URL scheme 'ftp'.*s3, s3a, gs"):
        Store("ftp://host/store")


def test_an_empty_prefix_is_not_a_store_and_says_to_init(s3_url: str) -> None:
    with pytest.raises(StoreNotFoundError, match=r"is not an fsstore store .*fsstore init"):
        Store(s3_url)


def test_init_refuses_a_prefix_that_holds_other_objects(s3_url: str) -> None:
    open_backend(s3_url).create("someone/else.csv", b"a,b\n")
    with pytest.raises(StoreExistsError, match="holds objects but no fsstore store"):
        Store.init(s3_url)


def test_a_missing_bucket_is_named_as_the_problem(s3_url: str) -> None:
    with pytest.raises(StorageError, match="the bucket does not exist"):
        Store.init("s3://fsstore-no-such-bucket/prefix")


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_endpoint_is_a_storage_error_naming_the_endpoint() -> None:
    pytest.importorskip("obstore", reason="obstore is not installed (pip install -e '.[test]')")
    from fsstore.backend.object_store import ObjectStoreBackend

    endpoint = f"http://127.0.0.1:{closed_port()}"
    backend = ObjectStoreBackend(
        "s3://bucket/prefix",
        options={"endpoint": endpoint, "access_key_id": "x", "secret_access_key": "x",
                 "region": "us-east-1"},
        retry={"max_retries": 0, "retry_timeout": timedelta(seconds=1)})
    with pytest.raises(StoreUnreachableError) as refused:
        backend.read("fsstore.json")
    assert isinstance(refused.value, StorageError)
    assert isinstance(refused.value, ConnectionError)
    assert str(refused.value) == (
        f"cannot read s3://bucket/prefix/fsstore.json: the endpoint {endpoint} could not be "
        "reached (no connection, after retries); check the endpoint (AWS_ENDPOINT_URL, or "
        "?endpoint= in the URL) and the network")
    with pytest.raises(StoreUnreachableError, match="cannot list s3://bucket/prefix/objects"):
        list(backend.list("objects"))


@pytest.mark.parametrize("message", [
    "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token in 1.6ms "
    "- Server returned non-2xx status code: 403 Forbidden",
    "Generic GCS error: Error performing token request: Error performing GET "
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/",
])
def test_missing_credentials_are_named_with_the_variables_to_set(message: str) -> None:
    # What obstore says when the environment has no credentials and it asks the metadata
    # service of a cloud machine instead (this machine is none).
    pytest.importorskip("obstore", reason="obstore is not installed (pip install -e '.[test]')")
    from fsstore.backend.object_store import ObjectStoreBackend

    backend = ObjectStoreBackend("s3://bucket/prefix", options={"region": "us-east-1"})
    error = backend._failure(RuntimeError(message), "fsstore.json", "read")
    assert isinstance(error, StorageError)
    assert str(error).startswith("cannot read s3://bucket/prefix/fsstore.json: no credentials "
                                 "were found")
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in str(error)


def test_a_store_behind_an_unreachable_endpoint_is_not_called_damaged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("obstore", reason="obstore is not installed (pip install -e '.[test]')")
    from fsstore.backend import object_store

    monkeypatch.setattr(object_store, "DEFAULT_RETRY", {"max_retries": 1})
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(StoreUnreachableError) as refused:
        Store(f"s3://bucket/prefix?endpoint={endpoint}")
    message = str(refused.value)
    assert message.count("cannot read") == 1
    assert f"the endpoint {endpoint} could not be reached" in message
    assert "damaged" not in message


def test_a_missing_bucket_is_named_as_the_problem_when_opening_a_store(s3_url: str) -> None:
    with pytest.raises(StorageError, match=r"cannot read s3://fsstore-no-such-bucket/prefix/"
                                           r"fsstore.json: the bucket does not exist; create"):
        Store("s3://fsstore-no-such-bucket/prefix")


def test_options_in_the_url_override_the_environment(s3_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    store = Store.init(f"{s3_url}?endpoint={endpoint}")
    store.save(FeatureSet.from_values(["CD8A"], field="Gene.symbol", name="cd8"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert Store(s3_url).resolve("cd8") == store.resolve("cd8")


@pytest.mark.parametrize("kind", ["folder", "bucket"])
def test_processes_initialising_one_store_at_once_all_open_the_same_store(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    base = str(tmp_path / "store") if kind == "folder" else request.getfixturevalue("s3_url")
    script = (
        "import sys; from fsstore import Store, FeatureSet\n"
        "for turn in range(5):\n"
        "    print('ready', flush=True)\n"  # the barrier: every turn starts together
        "    sys.stdin.readline()\n"
        "    store = Store.init(f'{sys.argv[1]}-{turn}')\n"
        "    store.save(FeatureSet.from_values([sys.argv[2]], field='Gene.symbol'))\n"
        "    print(store.store_id, flush=True)\n")
    workers = Workers([[sys.executable, "-c", script, base, who] for who in ("A", "B", "C")],
                      deadline=DEADLINE, cwd=REPOSITORY)
    for _ in range(5):
        workers.release()
    printed = workers.finish()
    assert printed[0] == printed[1] == printed[2]
    assert len(printed[0]) == 5
    for turn in range(5):
        assert len(Store(f"{base}-{turn}").sets()) == 3
