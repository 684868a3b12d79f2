"""verify, verify --repair and gc: every kind of damage found, repaired or reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsstore import CorruptObjectError, FeatureSet, IndexCorruptError, Store
from fsstore.cli import main
from fsstore.featureset import Provenance
from fsstore.index import KINDS
from fsstore.index.events import COMMON, EventKind, Projection, now
from fsstore.index.index import COMPACT_AFTER
from fsstore.index.journal import commit_key
from fsstore.index.runs import list_runs
from fsstore.integrity import (
    OBJECT_KINDS,
    REFERENCES,
    ObjectDamage,
    ObjectKind,
    Reference,
    register_reference,
)
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.repair import repair
from fsstore.integrity.verify import verify
from fsstore.manifest import encode_manifest, manifest_key
from tests.conftest import GRCH38, data_file
from tests.faults import temporary_files

OLD = time.time() - 3 * 86400


def genes(*members: str, name: str | None = None) -> FeatureSet:
    return FeatureSet.from_values(list(members), field="Gene.symbol", name=name)


def write_over(path: Path, data: bytes) -> None:
    """Change a stored (read-only) file, then make it read-only again, as stored."""
    path.chmod(0o644)
    path.write_bytes(data)
    path.chmod(0o444)


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    write_over(path, bytes(data))


def problems(store: Store) -> dict[str, int]:
    return verify(store).counts()


@pytest.fixture
def grch38_store(store: Store) -> tuple[Store, FeatureSet]:
    from fsstore.readers import read_values

    values = read_values(str(data_file(GRCH38)))
    saved = store.save(FeatureSet.from_values(values, field="Gene.ensembl_gene_id",
                                              name="GRCh38-2020-A"))
    store.save(genes("CD8A", "CD4", name="t-cells"))
    return store, saved


def test_a_clean_store_verifies_clean_and_the_cli_exits_zero(grch38_store, capsys) -> None:
    store, _ = grch38_store
    report = verify(store)
    assert report.ok
    assert report.objects == 2
    assert report.events == 2
    assert report.bytes > 100_000
    assert main(["verify", "--store", str(store.root)]) == 0
    assert "no problems" in capsys.readouterr().out
    assert main(["verify", "--json", "--store", str(store.root)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert document["problems"] == {}


@pytest.mark.parametrize("where", ["members", "footer", "first-byte", "last-byte"])
def test_a_bit_flip_in_a_read_only_manifest_is_caught_by_read_and_verify(
        grch38_store, where: str, capsys) -> None:
    store, saved = grch38_store
    path = store.root / manifest_key(saved.hash)
    size = path.stat().st_size
    offset = {"members": size // 3, "footer": size - 200, "first-byte": 0,
              "last-byte": size - 1}[where]
    flip(path, offset, bit=3)
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert path.stat().st_mode & 0o222 == 0
    with pytest.raises(CorruptObjectError, match=str(path)) as caught:
        store.get("GRCh38-2020-A")
    assert caught.value.expected == saved.hash
    report = verify(store)
    assert [(finding.problem, finding.key) for finding in report.errors] in (
        [("corrupt", manifest_key(saved.hash))], [("truncated", manifest_key(saved.hash))])
    assert main(["verify", "--store", str(store.root)]) == 5
    out = capsys.readouterr().out
    assert manifest_key(saved.hash) in out
    assert "fsstore verify --repair" in out


@pytest.mark.parametrize("keep", [0, 12, 1000, -8, -1])
def test_a_truncated_manifest_is_caught_by_read_and_verify(grch38_store, keep: int) -> None:
    store, saved = grch38_store
    path = store.root / manifest_key(saved.hash)
    data = path.read_bytes()
    write_over(path, data[:keep] if keep >= 0 else data[:len(data) + keep])
    with pytest.raises(CorruptObjectError, match=str(path)):
        store.get("GRCh38-2020-A")
    assert problems(store) == {"truncated": 1}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.floats(min_value=0, max_value=1, exclude_max=True),
       bit=st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_in_a_manifest_is_caught(tmp_path_factory, position: float,
                                                     bit: int) -> None:
    store = Store.init(tmp_path_factory.mktemp("flip") / "store")
    saved = store.save(genes(*[f"GENE{n}" for n in range(50)], name="fifty"))
    path = store.root / manifest_key(saved.hash)
    flip(path, int(position * path.stat().st_size), bit)
    with pytest.raises(CorruptObjectError):
        store.get("fifty")
    assert not verify(store).ok


def test_a_set_saved_while_verify_runs_is_not_reported_missing(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(FeatureSet(["a"], name="first"))
    read = store.index.read

    def read_after_a_save(*args: object, **kwargs: object) -> object:
        # A writer saves between verify's listing of the objects and its reading of the
        # index: the new event refers to a manifest the listing did not see.
        monkeypatch.setattr(store.index, "read", read)
        store.save(FeatureSet(["b"], name="second"))
        return read(*args, **kwargs)

    monkeypatch.setattr(store.index, "read", read_after_a_save)
    report = verify(store)
    assert report.ok, report.errors
    assert verify(store).objects == 2


def test_verify_alongside_a_writer_process_finds_no_problems(store: Store) -> None:
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("worker.py")),
                               str(store.root), "w", "150"], stdout=subprocess.PIPE, text=True)
    try:
        while writer.poll() is None:
            report = verify(store)
            assert report.ok, report.errors
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0
    assert verify(store).ok


def test_misplaced_foreign_missing_and_stale_temporary_files_are_found(store: Store) -> None:
    kept = store.save(genes("A", name="a"))
    moved = store.save(genes("B", name="b"))
    gone = store.save(genes("C", name="c"))
    sets = store.root / "objects" / "sets"
    wrong = sets / "00" / f"{moved.hash}.parquet"
    wrong.parent.mkdir(exist_ok=True)
    os.rename(store.root / manifest_key(moved.hash), wrong)
    os.remove(store.root / manifest_key(gone.hash))
    (sets / ".DS_Store").write_text("x")
    (store.root / "objects" / "notes").mkdir()
    (store.root / "objects" / "notes" / "todo.txt").write_text("x")
    stale = sets / kept.hash[:2] / f".fsstore-tmp-abc-{kept.hash}.parquet"
    stale.write_bytes(b"partial")
    os.utime(stale, (OLD, OLD))
    fresh = sets / kept.hash[:2] / f".fsstore-tmp-def-{kept.hash}.parquet"
    fresh.write_bytes(b"in progress")
    report = verify(store)
    found = {(finding.problem, finding.key) for finding in report.errors}
    assert found == {
        ("misplaced", f"objects/sets/00/{moved.hash}.parquet"),
        ("missing", manifest_key(moved.hash)),
        ("missing", manifest_key(gone.hash)),
        ("foreign", "objects/sets/.DS_Store"),
        ("foreign", "objects/notes/todo.txt"),
        ("stale-temporary", str(stale.relative_to(store.root))),
    }
    assert report.counts(errors=False) == {"temporary": 1}
    assert store.get("a").hash == kept.hash


def test_an_intact_manifest_under_another_name_is_misplaced(store: Store) -> None:
    first = store.save(genes("A", name="a"))
    second = store.save(genes("B", name="b"))
    write_over(store.root / manifest_key(first.hash),
               (store.root / manifest_key(second.hash)).read_bytes())
    report = verify(store)
    assert [(finding.problem, finding.digest) for finding in report.errors] == [
        ("misplaced", second.hash)]
    with pytest.raises(CorruptObjectError):
        store.get("a")


def compacted_store(store: Store, count: int = COMPACT_AFTER + 5) -> dict[str, str]:
    names = {}
    for number in range(count):
        name = f"n{number}" if number % 3 else None
        saved = store.save(genes(f"G{number}", name=name))
        if name:
            names[name] = saved.hash
    assert list_runs(store.backend)
    return names


def test_a_damaged_run_file_is_found_and_rebuilt_from_the_other_projection(
        store: Store) -> None:
    names = compacted_store(store)
    collect_garbage(store)  # the folded commits go: only the run's two files hold the events
    run = list_runs(store.backend)[0]
    damaged = store.root / run.key("sets.parquet")
    flip(damaged, damaged.stat().st_size // 2)
    report = verify(store)
    assert [(finding.problem, finding.key) for finding in report.errors] == [
        ("damaged-run", run.key("sets.parquet"))]
    done = repair(store, report)
    assert done.rebuilt_events is not None
    # names.parquet holds every named event, unnamed ones are rebuilt from the manifests.
    assert done.lost
    assert done.recovered == sum(1 for number in range(COMPACT_AFTER) if number % 3 == 0)
    assert verify(store).ok
    assert {name: store.resolve(name) for name in names} == names
    damaged_bytes = (store.root / done.quarantine[0] / run.key("sets.parquet")).read_bytes()
    assert not damaged.exists()
    assert blake3(damaged_bytes).hexdigest() != run.files["sets.parquet"]["blake3"]
    report_file = json.loads((store.root / done.quarantine[0] / "REPORT.json").read_text())
    assert report_file["files"][0]["problem"].startswith("damaged index file")


def test_events_lost_with_an_unreadable_run_are_recovered_from_the_manifests(
        store: Store) -> None:
    compacted_store(store)
    collect_garbage(store)  # the folded commits go: the run is their only copy now
    before = len(store.sets())
    run = list_runs(store.backend)[0]
    for file in ("sets.parquet", "names.parquet"):
        path = store.root / run.key(file)
        write_over(path, path.read_bytes()[:100])
    report = verify(store)
    assert report.counts() == {"damaged-run": 2}
    done = repair(store, report)
    assert done.lost == [f"{run.rows['set']} set event(s) of commits 1..{run.last}"]
    assert done.recovered == run.rows["set"]
    after = verify(store)
    assert after.ok, after.errors
    assert len(store.sets()) == before


def test_a_damaged_commit_and_a_gap_are_found_and_repaired(store: Store) -> None:
    for number in range(6):
        store.save(genes(f"G{number}", name=f"n{number}"))
    write_over(store.root / commit_key(3), b'{"format": "fsstore.commit.v1", "seq": 3, "ev')
    os.remove(store.root / commit_key(5))
    report = verify(store)
    assert {finding.problem for finding in report.errors} == {"damaged-commit", "gap"}
    done = repair(store, report)
    # The two lost events named sets whose manifests are intact: they come back unnamed.
    assert done.recovered == 2
    assert verify(store).ok
    assert len(store.sets()) == 6
    assert store.resolve("n0")
    assert store.resolve("n5")


def test_repair_puts_misplaced_objects_back_and_quarantines_the_rest(store: Store,
                                                                     capsys) -> None:
    kept = store.save(genes("A", name="a"))
    moved = store.save(genes("B", name="b"))
    broken = store.save(genes("C", name="c"))
    wrong = store.root / "objects" / "sets" / "00" / f"{moved.hash}.parquet"
    wrong.parent.mkdir(exist_ok=True)
    os.rename(store.root / manifest_key(moved.hash), wrong)
    flip(store.root / manifest_key(broken.hash), 40)
    stale = store.root / "objects" / "sets" / f".fsstore-tmp-1-{kept.hash}.parquet"
    stale.write_bytes(b"x")
    os.utime(stale, (OLD, OLD))
    assert main(["verify", "--repair", "--store", str(store.root)]) == 5
    out = capsys.readouterr().out
    assert f"put back {manifest_key(moved.hash)}" in out
    assert "moved 1 file(s) to quarantine/" in out
    assert f"not repaired: {manifest_key(broken.hash)}" in out
    assert store.get("b").hash == moved.hash
    assert not stale.exists()
    assert [finding.problem for finding in verify(store).errors] == ["missing"]
    # Saving the set again restores its manifest; then everything is clean.
    store.save(genes("C"))
    assert main(["verify", "--store", str(store.root)]) == 0


def test_gc_removes_only_what_nothing_reaches(store: Store) -> None:
    old = store.save(genes("OLD", name="moving"))
    store.save(genes("NEW", name="moving"))  # the old set stays reachable through history
    orphan = genes("ORPHAN")
    store.backend.create(manifest_key(orphan.hash),
                         (store.root / manifest_key(old.hash)).read_bytes())
    young = genes("YOUNG")
    store.backend.create(manifest_key(young.hash),
                         encode_manifest(young.canonical, Provenance(now(), "test")))
    os.utime(store.root / manifest_key(orphan.hash), (OLD, OLD))
    stale = store.root / "index" / "journal" / ".fsstore-tmp-x-0000000000000009.json"
    stale.write_text("{")
    os.utime(stale, (OLD, OLD))
    dry = collect_garbage(store, dry_run=True)
    assert {key for key, _, _ in dry.removed} == {
        manifest_key(orphan.hash), str(stale.relative_to(store.root))}
    assert dry.kept_young == 1
    assert (store.root / manifest_key(orphan.hash)).exists()
    done = collect_garbage(store)
    assert done.removed == dry.removed
    assert not (store.root / manifest_key(orphan.hash)).exists()
    assert store.get(old.hash[:8]).hash == old.hash
    assert list(store.history("moving")["hash"]) == [old.hash, genes("NEW").hash]
    assert collect_garbage(store, grace=0).removed[0][0] == manifest_key(young.hash)
    assert verify(store).ok
    assert temporary_files(store.root) == []


def test_gc_removes_runs_a_wider_run_holds(store: Store) -> None:
    compacted_store(store, COMPACT_AFTER * 2)  # the second compaction merges
    view = store.index.view()
    assert view.layout.superseded_runs or view.layout.superseded_commits
    done = collect_garbage(store)
    assert any(why == "run also held by a wider run" for _, _, why in done.removed)
    view = store.index.view()
    assert not view.layout.superseded_runs
    assert verify(store).ok


def test_gc_refuses_a_damaged_index(store: Store) -> None:
    for number in range(3):
        store.save(genes(f"G{number}"))
    os.remove(store.root / commit_key(2))
    with pytest.raises(IndexCorruptError, match="fsstore verify --repair"):
        collect_garbage(store)
    assert len(list((store.root / "objects" / "sets").rglob("*.parquet"))) == 3


def test_a_save_writes_its_manifest_again_if_gc_removed_it_meanwhile(
        store: Store, monkeypatch) -> None:
    feature_set = genes("RACE", name="race")
    # Left by an earlier save that died before committing: intact, unreferenced.
    store.backend.create(manifest_key(feature_set.hash),
                         encode_manifest(feature_set.canonical, Provenance(now(), "earlier")))
    original = store.index.commit

    def commit_after_gc(build):
        os.remove(store.root / manifest_key(feature_set.hash))  # what gc would do
        return original(build)

    monkeypatch.setattr(store.index, "commit", commit_after_gc)
    outcome = store.put(feature_set)
    assert not outcome.created
    assert store.get("race").hash == feature_set.hash
    assert verify(store).ok


def test_unlock_breaks_a_lock_left_on_another_machine(store: Store, capsys) -> None:
    marker = store.root / "index" / "lock.holder"
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(json.dumps({"pid": 4242, "host": "elsewhere", "since": OLD,
                                  "token": "t"}))
    assert main(["unlock", "--store", str(store.root)]) == 0
    assert "broke index/lock, held by pid 4242 on elsewhere" in capsys.readouterr().out
    assert not marker.exists()
    assert main(["unlock", "--store", str(store.root)]) == 0
    assert "no lock" in capsys.readouterr().out


# -- a new kind of object plugs in -------------------------------------------------------

BLOB_EVENT = EventKind(
    name="blobref",
    fields=pa.schema([pa.field("blob", pa.string(), nullable=False)]),
    projections=(Projection("blobrefs.parquet", ("blob", "seq", "pos")),),
)


def blob_digest(backend, key: str) -> str:
    data = backend.read(key)
    if not data:
        raise ObjectDamage("truncated", "is empty")
    return str(blake3(data).hexdigest())


@pytest.fixture
def blobs(monkeypatch) -> Iterator[ObjectKind]:
    kind = ObjectKind(name="blob", prefix="objects/blobs", suffix="", digest_of=blob_digest)
    monkeypatch.setitem(OBJECT_KINDS, "blob", kind)
    monkeypatch.setitem(KINDS, "blobref", BLOB_EVENT)
    register_reference(Reference("blobref", "blob", "blob"))
    yield kind
    REFERENCES.remove(Reference("blobref", "blob", "blob"))
    return kind


def test_a_new_object_kind_is_verified_and_collected_once_registered(store: Store,
                                                                     blobs) -> None:
    assert COMMON.names[0] == "seq"
    kept, orphan, damaged = b"kept bytes", b"orphan bytes", b"damaged bytes"
    digests = {data: str(blake3(data).hexdigest()) for data in (kept, orphan, damaged)}
    for data in (kept, orphan, damaged):
        store.backend.create(blobs.key_of(digests[data]), data)
    store.index.commit(lambda view: [{"kind": "blobref", "blob": digests[kept]},
                                     {"kind": "blobref", "blob": digests[damaged]},
                                     {"kind": "blobref", "blob": "f" * 64}])
    write_over(store.root / blobs.key_of(digests[damaged]), b"tampered")
    report = verify(store)
    assert {(finding.problem, finding.key) for finding in report.errors} == {
        ("corrupt", blobs.key_of(digests[damaged])), ("missing", blobs.key_of("f" * 64))}
    assert [finding.key for finding in report.findings if finding.problem == "unreferenced"
            ] == [blobs.key_of(digests[orphan])]
    os.utime(store.root / blobs.key_of(digests[orphan]), (OLD, OLD))
    done = collect_garbage(store)
    assert [key for key, _, _ in done.removed] == [blobs.key_of(digests[orphan])]
