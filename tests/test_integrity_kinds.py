"""verify, repair, gc and sync know every kind of object: sets, registry tables, dataset files."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from fsstore import CorruptObjectError, FeatureSet, IndexMissingError, Store
from fsstore.cli import main
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.repair import repair
from fsstore.integrity.verify import verify
from fsstore.links import dataset_file_key
from fsstore.manifest import manifest_key
from fsstore.registry.table import registry_key
from fsstore.sync import push

OLD = time.time() - 3 * 86400

GENES = pd.DataFrame({
    "ensembl_gene_id": ["ENSG00000153563", "ENSG00000010610", "ENSG00000111640"],
    "symbol": ["CD8A", "CD4", "GAPDH"],
})


def make_old(path: Path) -> None:
    os.utime(path, (OLD, OLD))


@pytest.fixture
def full_store(store: Store, tmp_path: Path) -> tuple[Store, str, str]:
    """A set, a registry table, a copied dataset and one that is only referenced."""
    registered = store.register(GENES, name="Gene", organism="human", version="v1")
    store.save(FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol", name="t-cells"))
    copied = tmp_path / "copied.csv"
    copied.write_text("CD8A,CD4\n1,2\n")
    only_seen = tmp_path / "seen.csv"
    only_seen.write_text("GAPDH,CD4\n3,4\n")
    outcome = store.link(str(copied), copy=True)
    store.link(str(only_seen))
    return store, registered.info.hash, outcome.dataset


def registry_path(store: Store, digest: str) -> Path:
    return Path(store.location) / registry_key(digest)


def file_path(store: Store, digest: str) -> Path:
    return Path(store.location) / dataset_file_key(digest)


def damage(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def test_registry_tables_and_dataset_files_verify_clean(full_store) -> None:
    store, _, _ = full_store
    report = verify(store)
    assert report.ok, report.findings
    # Two sets (t-cells and the columns of the two tables), one registry table, one file.
    assert report.objects == len(list(store.backend.keys("objects")))
    assert {finding.problem for finding in report.findings} <= {"unreferenced"}
    assert not [finding for finding in report.findings if finding.problem == "unreferenced"]


def test_a_damaged_registry_table_is_found_and_quarantined(full_store) -> None:
    store, table, _ = full_store
    damage(registry_path(store, table))
    report = verify(store)
    assert report.counts() == {"corrupt": 1}
    assert report.findings[0].key == registry_key(table)
    done = repair(store, report)
    assert [finding.key for finding in done.quarantined] == [registry_key(table)]
    assert not registry_path(store, table).exists()
    assert verify(store).counts() == {"missing": 1}


def test_a_damaged_dataset_file_is_found(full_store) -> None:
    store, _, dataset = full_store
    damage(file_path(store, dataset))
    report = verify(store)
    assert report.counts() == {"corrupt": 1}
    assert report.findings[0].key == dataset_file_key(dataset)


def test_a_missing_copied_file_is_reported_but_a_dataset_never_copied_is_not(full_store):
    store, _, dataset = full_store
    path = file_path(store, dataset)
    path.chmod(0o644)
    path.unlink()
    assert verify(store).counts() == {"missing": 1}


def test_gc_keeps_referenced_tables_and_files_and_removes_unreferenced_ones(full_store,
                                                                            tmp_path) -> None:
    store, table, dataset = full_store
    stray = Store.init(tmp_path / "other")
    stray_table = stray.register(GENES.iloc[:2], name="Gene", organism="human",
                                 version="v0").info.hash
    source = registry_path(stray, stray_table)
    target = registry_path(store, stray_table)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    make_old(target)
    for path in Path(store.location, "objects").rglob("*"):
        if path.is_file():
            make_old(path)

    collected = collect_garbage(store)
    assert [key for key, _, _ in collected.removed] == [registry_key(stray_table)]
    assert registry_path(store, table).exists()
    assert file_path(store, dataset).exists()
    assert verify(store).ok


def test_push_carries_registry_tables_and_refuses_a_damaged_one(full_store,
                                                                tmp_path) -> None:
    store, table, _ = full_store
    report = push(store, str(tmp_path / "remote"))
    assert report.objects.copied
    remote = Store(tmp_path / "remote")
    assert verify(remote).ok
    assert remote.registry("Gene").to_pandas().shape[0] == 3

    damage(registry_path(store, table))
    registry_path(remote, table).chmod(0o644)
    registry_path(remote, table).unlink()
    report = push(store, str(tmp_path / "remote"))
    assert list(report.objects.refused) == [registry_key(table)]
    assert "registry table" in report.objects.refused[registry_key(table)]
    assert not registry_path(remote, table).exists()


def test_push_refuses_a_registry_table_under_a_wrong_name(store: Store, tmp_path) -> None:
    table = store.register(GENES, name="Gene", organism="human", version="v1").info.hash
    wrong = "0" * 64
    store.backend.create(registry_key(wrong), registry_path(store, table).read_bytes())
    report = push(store, str(tmp_path / "remote"))
    assert "hashes to" in report.objects.refused[registry_key(wrong)]
    assert registry_key(table) in report.objects.copied


def test_saving_a_set_again_heals_its_damaged_manifest(store: Store) -> None:
    saved = store.save(FeatureSet.from_values(["CD8A", "CD4", "GAPDH"], field="Gene.symbol",
                                              name="panel"))
    path = Path(store.location) / manifest_key(saved.hash)
    damage(path)
    with pytest.raises(CorruptObjectError):
        store.get(saved.hash[:8])
    again = store.save(FeatureSet.from_values(["GAPDH", "CD4", "CD8A"], field="Gene.symbol",
                                              name="panel"))
    assert again.hash == saved.hash
    assert list(store.get("panel").members["name"]) == ["CD4", "CD8A", "GAPDH"]
    assert verify(store).ok
    quarantined = list(Path(store.location, "quarantine").rglob("*.parquet"))
    assert [path.name for path in quarantined] == [f"{saved.hash}.parquet"]


def test_saving_a_set_again_leaves_an_intact_manifest_untouched(store: Store) -> None:
    saved = store.save(FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol"))
    path = Path(store.location) / manifest_key(saved.hash)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    store.save(FeatureSet.from_values(["CD4", "CD8A"], field="Gene.symbol"))
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert not Path(store.location, "quarantine").exists()


def test_a_deleted_index_folder_is_an_error_not_an_empty_store(full_store, tmp_path) -> None:
    store, table, _ = full_store
    shutil.move(str(Path(store.location) / "index"), str(tmp_path / "index-elsewhere"))
    reopened = Store(store.location)
    with pytest.raises(IndexMissingError, match="fsstore verify --repair"):
        reopened.sets()
    assert main(["ls", "--store", store.location]) == 5
    report = verify(reopened)
    assert report.counts() == {"missing-index": 1}

    done = repair(reopened, report)
    assert done.recovered == 3  # the three sets; registry and file events are not recoverable
    assert verify(reopened).counts() == {}
    assert len(reopened.sets()) == 3
    assert registry_path(reopened, table).exists()


def test_a_new_empty_store_reads_as_empty(tmp_path) -> None:
    store = Store.init(tmp_path / "new")
    assert (Path(store.location) / "index" / "journal").is_dir()
    assert len(store.sets()) == 0
    assert verify(store).ok
