"""gc never takes an object a save, a registration or a link is about to record.

A writer writes its object first and commits the event that refers to it second, under
the write lock; gc deletes unreferenced objects older than its grace period under the same
lock. Whatever the grace period, a writer re-checks its object under the lock and writes
it again if gc took it, so no event ever points at nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fsstore import FeatureSet, StorageError, Store
from fsstore.backend import LocalBackend
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.verify import verify
from fsstore.links import dataset_file_key
from fsstore.manifest import manifest_key
from fsstore.registry.table import registry_key

WORKER = Path(__file__).with_name("worker.py")
DEADLINE = 300


def gc_before_each_commit(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run a gc with no grace period just before every commit, as a racing gc would."""
    removed: list[str] = []
    commit = store.index.commit

    def commit_after_gc(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        done = collect_garbage(store, grace=0)
        removed.extend(key for key, _, _ in done.removed)
        return commit(build, *args, **kwargs)

    monkeypatch.setattr(store.index, "commit", commit_after_gc)
    return removed


def test_a_set_removed_by_gc_before_its_commit_is_written_again(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    removed = gc_before_each_commit(store, monkeypatch)
    saved = store.save(FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol",
                                              name="panel"))
    assert manifest_key(saved.hash) in removed
    assert store.backend.exists(manifest_key(saved.hash))
    assert set(store.get("panel").member_names) == {"CD8A", "CD4"}
    assert verify(store).ok


def test_a_registry_table_removed_by_gc_before_its_commit_is_written_again(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    removed = gc_before_each_commit(store, monkeypatch)
    table = pd.DataFrame({"ensembl_gene_id": ["ENSG00000153563"], "symbol": ["CD8A"]})
    outcome = store.register(table, name="Gene", organism="human", version="v1")
    assert registry_key(outcome.info.hash) in removed
    assert store.backend.exists(registry_key(outcome.info.hash))
    assert store.registry("Gene").validate(["CD8A"], "Gene.symbol") == [True]
    assert verify(store).ok


def test_a_copied_dataset_removed_by_gc_before_its_commit_is_copied_again(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    removed = gc_before_each_commit(store, monkeypatch)
    frame = pd.DataFrame({"gene": ["CD8A"], "count": [3]})
    outcome = store.link(frame, copy=True, name="counts")
    assert dataset_file_key(outcome.dataset) in removed
    assert store.backend.exists(dataset_file_key(outcome.dataset))
    assert verify(store).ok


def test_saves_racing_a_gc_with_a_short_grace_period_all_keep_their_manifests(
        store: Store) -> None:
    # Half a second: longer than writing a small file, shorter than the waits for the
    # write lock that gc itself causes, so gc takes manifests whose saves wait to commit.
    writers = [subprocess.Popen([sys.executable, str(WORKER), str(store.root), f"w{n}", "60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for n in range(2)]
    rounds = 0
    while any(writer.poll() is None for writer in writers) or rounds == 0:
        collect_garbage(store, grace=0.5)
        rounds += 1
    saved = []
    for writer in writers:
        out, err = writer.communicate(timeout=DEADLINE)
        assert writer.returncode == 0, err
        saved += out.split()
    assert len(saved) == 120
    report = verify(store)
    assert report.ok, report.errors
    for hash_hex in saved:
        assert store.backend.exists(manifest_key(hash_hex))


def test_a_temporary_file_removed_while_written_is_written_again(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = store.backend
    assert isinstance(backend, LocalBackend)
    write_temporary = backend._write_temporary
    removals = [1]

    def removed_once(*args: Any, **kwargs: Any) -> Path:
        temporary: Path = write_temporary(*args, **kwargs)
        if removals and removals.pop():
            temporary.unlink()  # as `fsstore gc --grace 0` would
        return temporary

    monkeypatch.setattr(backend, "_write_temporary", removed_once)
    saved = store.save(FeatureSet.from_values(["CD8A"], field="Gene.symbol"))
    assert store.get(saved.hash[:8]).member_names == ("CD8A",)
    assert not list(store.root.rglob(".fsstore-tmp-*"))


def test_a_temporary_file_removed_at_every_try_fails_the_save_clearly(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = store.backend
    assert isinstance(backend, LocalBackend)
    write_temporary = backend._write_temporary

    def always_removed(*args: Any, **kwargs: Any) -> Path:
        temporary: Path = write_temporary(*args, **kwargs)
        temporary.unlink()
        return temporary

    monkeypatch.setattr(backend, "_write_temporary", always_removed)
    with pytest.raises(StorageError, match=r"temporary file was removed while it was "
                                           r"written, 3 times .* nothing was stored"):
        store.save(FeatureSet.from_values(["CD8A"], field="Gene.symbol", name="cd8"))
    assert store.sets().empty
