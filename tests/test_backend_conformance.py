"""The Backend contract, checked the same way on every backend: a local folder and S3.

The S3 backend runs against a real S3-protocol server on loopback (moto in server mode,
see ``tests/s3server.py``). Races use real threads and real processes, each bounded.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from blake3 import blake3
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fsstore import FeatureSet, Provenance
from fsstore.backend import Backend, LocalBackend, open_backend
from fsstore.backend.local import TEMPORARY_PREFIX
from fsstore.index.events import now
from fsstore.manifest import decode_manifest, encode_manifest, manifest_key
from tests.barrier import Workers
from tests.conftest import REPOSITORY

WORKER = REPOSITORY / "tests" / "backend_worker.py"
DEADLINE = 120


def run_workers(*argument_lists: list[str]) -> list[str]:
    """Start one worker process per argument list, released at once when all are ready;
    their outputs, in order."""
    workers = Workers([[sys.executable, str(WORKER), *arguments]
                       for arguments in argument_lists], deadline=DEADLINE, cwd=REPOSITORY)
    workers.release()
    return ["\n".join(lines) for lines in workers.finish()]


class BackendContract:
    """Every backend meets these. Subclasses provide ``location`` and ``backend``."""

    @pytest.fixture
    def location(self, tmp_path: Path) -> str:
        raise NotImplementedError

    @pytest.fixture
    def backend(self, location: str) -> Backend:
        return open_backend(location)

    # -- create and read ------------------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 1000, (1 << 20) + 7])
    def test_created_bytes_read_back_exactly(self, backend: Backend, size: int) -> None:
        data = os.urandom(size)
        assert backend.create("objects/sets/ab/key.bin", data)
        assert backend.read("objects/sets/ab/key.bin") == data
        with backend.open("objects/sets/ab/key.bin") as stream:
            assert stream.read() == data
        assert backend.exists("objects/sets/ab/key.bin")

    def test_create_never_replaces_an_existing_key(self, backend: Backend) -> None:
        assert backend.create("index/journal/0000000000000001.json", b"first")
        assert not backend.create("index/journal/0000000000000001.json", b"second")
        assert backend.read("index/journal/0000000000000001.json") == b"first"

    def test_create_from_file_never_replaces_either(self, backend: Backend,
                                                    tmp_path: Path) -> None:
        source = tmp_path / "source"
        source.write_bytes(b"from a file")
        assert backend.create("a/b", b"already here")
        assert not backend.create_from_file("a/b", str(source))
        assert backend.read("a/b") == b"already here"
        assert backend.create_from_file("a/c", str(source))
        assert backend.read("a/c") == b"from a file"

    def test_one_of_many_threads_racing_to_create_a_key_wins(self, backend: Backend) -> None:
        for round_number in range(3):
            key = f"index/journal/{round_number:016d}.json"
            payloads = [f"writer {number}".encode() for number in range(8)]
            barrier = threading.Barrier(len(payloads))

            def create(payload: bytes, key: str = key,
                       barrier: threading.Barrier = barrier) -> bool:
                barrier.wait(timeout=30)
                return backend.create(key, payload)

            with ThreadPoolExecutor(len(payloads)) as pool:
                won = list(pool.map(create, payloads))
            assert won.count(True) == 1
            assert backend.read(key) == payloads[won.index(True)]

    def test_one_of_many_processes_racing_to_create_a_key_wins(self, location: str,
                                                               backend: Backend) -> None:
        key = "index/journal/0000000000000042.json"
        outputs = run_workers(*[["create", location, key, f"process {number}"]
                                for number in range(4)])
        assert sorted(outputs) == ["lost", "lost", "lost", "won"]
        assert backend.read(key) == f"process {outputs.index('won')}".encode()

    # -- replace and update ---------------------------------------------------------------

    def test_readers_see_the_old_or_the_new_value_never_a_mix(self,
                                                              backend: Backend) -> None:
        values = [b"a" * (1 << 20), b"b" * (1 << 19)]
        backend.replace("fsstore.json", values[0])
        seen: list[bytes] = []
        stop = threading.Event()

        def read_until_stopped() -> None:
            while not stop.is_set():
                seen.append(backend.read("fsstore.json"))

        readers = [threading.Thread(target=read_until_stopped) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            for turn in range(20):
                backend.replace("fsstore.json", values[turn % 2])
        finally:
            stop.set()
            for reader in readers:
                reader.join(timeout=DEADLINE)
        assert seen
        assert all(value in values for value in seen)

    def test_update_passes_none_for_a_missing_key_and_stores_the_result(
            self, backend: Backend) -> None:
        given: list[bytes | None] = []

        def change(current: bytes | None) -> bytes:
            given.append(current)
            return b"v1" if current is None else current + b"+"

        assert backend.update("config.json", change) == b"v1"
        assert backend.update("config.json", change) == b"v1+"
        assert given == [None, b"v1"]
        assert backend.read("config.json") == b"v1+"

    def test_concurrent_updates_from_processes_lose_nothing(self, location: str,
                                                           backend: Backend) -> None:
        run_workers(*[["increment", location, "counter.json", "10"] for _ in range(4)])
        assert json.loads(backend.read("counter.json")) == {"count": 40}

    # -- list, delete, missing keys -------------------------------------------------------

    def test_list_finds_every_key_below_a_folder_and_nothing_beside_it(
            self, backend: Backend) -> None:
        for key, size in (("objects/sets/aa/one", 3), ("objects/sets/bb/two", 5),
                          ("objects/setsx/three", 1), ("index/journal/x", 2)):
            backend.create(key, b"x" * size)
        listed = {entry.key: entry.size for entry in backend.list("objects/sets")}
        assert listed == {"objects/sets/aa/one": 3, "objects/sets/bb/two": 5}
        assert {entry.key for entry in backend.list("")} >= {"objects/setsx/three",
                                                            "index/journal/x"}
        assert list(backend.list("nothing/here")) == []
        assert all(entry.mtime > 0 for entry in backend.list("objects"))

    def test_list_leaves_out_writes_in_progress_unless_asked(self, backend: Backend) -> None:
        backend.create("objects/sets/aa/done", b"complete")
        temporary = f"objects/sets/aa/{TEMPORARY_PREFIX}1234-done"
        backend.create(temporary, b"half")
        assert [entry.key for entry in backend.list("objects")] == ["objects/sets/aa/done"]
        keys = {entry.key for entry in backend.list("objects", temporary=True)}
        assert keys == {"objects/sets/aa/done", temporary}

    def test_delete_removes_a_key_and_ignores_a_missing_one(self, backend: Backend) -> None:
        backend.create("a/b", b"x")
        backend.delete("a/b")
        backend.delete("a/b")
        backend.delete("never/was")
        assert not backend.exists("a/b")
        assert list(backend.list("a")) == []
        assert backend.create("a/b", b"again")

    def test_delete_many_removes_keys_present_and_ignores_missing(self,
                                                                  backend: Backend) -> None:
        keys = [f"runs/r/{number:04d}" for number in range(30)]
        for key in keys:
            backend.create(key, b"x")
        backend.create("runs/kept", b"y")
        backend.delete_many([*keys, "runs/never/was"])
        backend.delete_many([])
        assert [entry.key for entry in backend.list("runs")] == ["runs/kept"]

    def test_missing_keys_raise_file_not_found(self, backend: Backend) -> None:
        assert not backend.exists("no/such/key")
        with pytest.raises(FileNotFoundError):
            backend.read("no/such/key")
        with pytest.raises(FileNotFoundError):
            backend.open("no/such/key")

    @pytest.mark.parametrize("key", ["../escape", "a//b", "a/./b", "a\\b", "a/\x00"])
    def test_keys_that_could_escape_or_alias_are_refused(self, backend: Backend,
                                                        key: str) -> None:
        with pytest.raises(ValueError, match="invalid store key"):
            backend.create(key, b"x")

    # -- streaming ------------------------------------------------------------------------

    def test_a_large_file_streams_in_and_out(self, backend: Backend, tmp_path: Path) -> None:
        source = tmp_path / "large"
        expected = blake3()
        with source.open("wb") as handle:
            for _ in range(20):
                chunk = os.urandom(1 << 20)
                expected.update(chunk)
                handle.write(chunk)
        assert backend.create_from_file("objects/files/large", str(source))
        assert not backend.create_from_file("objects/files/large", str(source))
        received = blake3()
        with backend.open("objects/files/large") as stream:
            while chunk := stream.read(1 << 18):
                received.update(chunk)
        assert received.hexdigest() == expected.hexdigest()
        listed = [(entry.key, entry.size) for entry in backend.list("objects", temporary=True)]
        assert listed == [("objects/files/large", 20 << 20)]

    def test_an_opened_manifest_reads_as_parquet_with_seeks(self, backend: Backend) -> None:
        feature_set = FeatureSet.from_values(["CD8A", "CD4", "CD3E"], field="Gene.symbol")
        data = encode_manifest(feature_set.canonical, Provenance(now(), "ana"))
        key = manifest_key(feature_set.hash)
        backend.create(key, data)
        with backend.open(key) as stream:
            assert pq.ParquetFile(stream).metadata.num_rows == 3
        canonical, _ = decode_manifest(backend.read(key), feature_set.hash, key)
        assert canonical == feature_set.canonical
        assert isinstance(backend.open(key), io.IOBase)


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def location(self, tmp_path: Path) -> str:
        return str(tmp_path / "store")

    def test_is_a_local_backend(self, backend: Backend) -> None:
        assert isinstance(backend, LocalBackend)


class TestObjectStoreBackend(BackendContract):
    @pytest.fixture
    def location(self, s3_url: str) -> str:
        return s3_url

    @pytest.fixture
    def backend(self, location: str) -> Backend:
        from fsstore.backend.object_store import ObjectStoreBackend

        backend = open_backend(location)
        assert isinstance(backend, ObjectStoreBackend)
        # Exercise the multipart path (upload to a temporary key, then copy-if-absent)
        # without 64 MiB files.
        backend.stream_threshold = 8 << 20
        return backend


# -- a state machine per backend, against a dict -------------------------------------------

KEYS = st.sampled_from(["a", "b/c", "b/d", "objects/sets/x", "objects/sets/y"])
VALUES = st.binary(max_size=64)


class BackendAgainstDict(RuleBasedStateMachine):
    """Any sequence of operations leaves a backend holding what a dict would."""

    backend: Backend

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, bytes] = {}
        self.prefix = os.urandom(4).hex()

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    @rule(key=KEYS, value=VALUES)
    def create(self, key: str, value: bytes) -> None:
        created = self.backend.create(self.key(key), value)
        assert created == (key not in self.model)
        self.model.setdefault(key, value)

    @rule(key=KEYS, value=VALUES)
    def replace(self, key: str, value: bytes) -> None:
        self.backend.replace(self.key(key), value)
        self.model[key] = value

    @rule(key=KEYS, value=VALUES)
    def update(self, key: str, value: bytes) -> None:
        self.backend.update(self.key(key), lambda current: (current or b"") + value)
        self.model[key] = self.model.get(key, b"") + value

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.backend.delete(self.key(key))
        self.model.pop(key, None)

    @rule(key=KEYS)
    def read(self, key: str) -> None:
        if key in self.model:
            assert self.backend.read(self.key(key)) == self.model[key]
        else:
            with pytest.raises(FileNotFoundError):
                self.backend.read(self.key(key))

    @invariant()
    def listing_matches(self) -> None:
        listed = {entry.key.removeprefix(self.prefix + "/"): entry.size
                  for entry in self.backend.list(self.prefix)}
        assert listed == {key: len(value) for key, value in self.model.items()}


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_backends_behave_like_a_dict(kind: str, tmp_path: Path,
                                     request: pytest.FixtureRequest) -> None:
    location = str(tmp_path / "store") if kind == "local" else request.getfixturevalue("s3_url")
    backend = open_backend(location)

    class Machine(BackendAgainstDict):
        pass

    Machine.backend = backend
    Machine.TestCase.settings = settings(
        max_examples=15, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.too_slow])
    Machine.TestCase().runTest()
