"""File-system faults: each gives a typed error or a documented fallback; nothing is lost.

Faults are injected at the os call (write, fsync, close, fchmod, link, rename, mkdir) for
the store's files only; a full disk is also produced for real on a small tmpfs when the
tests run as root.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsstore import FeatureSet, StorageError, Store
from fsstore.index.index import COMPACT_AFTER
from fsstore.integrity.verify import verify
from fsstore.manifest import manifest_key
from fsstore.readers import read_values
from tests.conftest import GRCH38, data_file
from tests.faults import inject, snapshot, temporary_files

REASONS = {
    errno.ENOSPC: "the disk is full; free space and retry",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EIO: "the file system reported an I/O error",
}


@pytest.fixture
def real_input(tmp_path: Path) -> Path:
    """A copy of a real 10x gene list, to check that a failed save leaves it alone."""
    copy = tmp_path / "input" / GRCH38.name
    copy.parent.mkdir()
    shutil.copyfile(data_file(GRCH38), copy)
    return copy


def genes_from(path: Path, name: str) -> FeatureSet:
    return FeatureSet.from_values(read_values(str(path)), field="Gene.ensembl_gene_id",
                                  name=name)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("call", "code", "inside"),
    [
        ("write", errno.ENOSPC, "objects"),
        ("write", errno.EDQUOT, "objects"),
        ("fsync", errno.EIO, "objects"),
        ("close", errno.EIO, "objects"),
        ("link", errno.ENOSPC, "objects"),
        ("mkdir", errno.ENOSPC, "objects"),
        ("write", errno.ENOSPC, "index/journal"),
        ("write", errno.EDQUOT, "index/journal"),
        ("fsync", errno.EIO, "index/journal"),
        ("close", errno.EIO, "index/journal"),
    ],
)
def test_a_refused_write_raises_a_storage_error_and_changes_nothing(
        store: Store, real_input: Path, monkeypatch: pytest.MonkeyPatch, call: str,
        code: int, inside: str) -> None:
    store.save(FeatureSet.from_values(["KEPT"], field="Gene.symbol", name="kept"))
    before_objects = snapshot(store.root, "objects")
    before_index = {**snapshot(store.root, "index/journal"), **snapshot(store.root,
                                                                       "index/runs")}
    input_digest = digest_of(real_input)
    feature_set = genes_from(real_input, "grch38")

    hits = inject(monkeypatch, call, code, store.root, inside)
    with pytest.raises(StorageError) as caught:
        store.save(feature_set)
    monkeypatch.undo()

    assert hits, f"the {call} fault never fired"
    error = caught.value
    assert isinstance(error, OSError)
    assert error.errno == code
    message = str(error)
    assert message.startswith(f"cannot write {store.root / inside}")
    assert REASONS[code] in message
    assert f"({errno.errorcode[code]} while " in message
    assert message.endswith("nothing was stored")
    assert digest_of(real_input) == input_digest
    assert temporary_files(store.root) == []
    index_after = {**snapshot(store.root, "index/journal"), **snapshot(store.root,
                                                                      "index/runs")}
    assert index_after == before_index
    objects_after = snapshot(store.root, "objects")
    if inside == "objects":
        assert objects_after == before_objects
    else:
        # The manifest was published before the commit failed: complete, and unreferenced.
        new = set(objects_after) - set(before_objects)
        assert new == {manifest_key(feature_set.hash)}
        assert {key: objects_after[key] for key in before_objects} == before_objects
    assert store.resolve("kept") == FeatureSet.from_values(["KEPT"], field="Gene.symbol").hash
    report = verify(store)
    assert report.ok, report.findings
    # The same save succeeds once the file system recovers.
    assert store.save(feature_set).hash == feature_set.hash
    assert store.resolve("grch38") == feature_set.hash


def test_a_fault_during_compaction_keeps_the_commit_and_the_index_readable(
        store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    hashes = [store.save(FeatureSet.from_values([f"G{n}"], field="Gene.symbol",
                                                name=f"n{n}")).hash
              for n in range(COMPACT_AFTER - 1)]
    hits = inject(monkeypatch, "fsync", errno.EIO, store.root, "index/runs")
    with caplog.at_level(logging.WARNING, logger="fsstore.index"):
        last = store.save(FeatureSet.from_values(["LAST"], field="Gene.symbol", name="last"))
    monkeypatch.undo()
    assert hits
    assert "index compaction failed (the commit itself succeeded)" in caplog.text
    assert store.resolve("last") == last.hash
    assert [store.resolve(f"n{n}") for n in range(COMPACT_AFTER - 1)] == hashes
    assert temporary_files(store.root) == []
    assert verify(store).ok


@pytest.mark.parametrize("code", [errno.EPERM, errno.ENOTSUP, errno.EXDEV])
def test_without_hard_links_files_are_published_by_rename(
        store: Store, monkeypatch: pytest.MonkeyPatch, code: int,
        caplog: pytest.LogCaptureFixture) -> None:
    hits = inject(monkeypatch, "link", code, store.root)
    with caplog.at_level(logging.WARNING, logger="fsstore"):
        saved = store.save(FeatureSet.from_values(["A", "B"], field="Gene.symbol", name="ab"))
        store.save(FeatureSet.from_values(["A", "C"], field="Gene.symbol", name="ac"))
        again = store.put(FeatureSet.from_values(["B", "A"], field="Gene.symbol"))
    monkeypatch.undo()
    assert hits
    renames = [record for record in caplog.records if "publishing files by rename" in
               record.getMessage()]
    # Once for each folder (a manifest fan-out folder, the journal), not for every file.
    folders = [record.args[0] for record in renames]  # type: ignore[index]  # a tuple here
    assert len(folders) == len(set(folders))
    assert renames
    assert not again.created
    assert store.get("ab").hash == saved.hash
    assert temporary_files(store.root) == []
    assert verify(store).ok


def test_without_links_or_renames_files_are_written_in_place(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    inject(monkeypatch, "link", errno.ENOTSUP, store.root)
    hits = inject(monkeypatch, "rename", errno.ENOTSUP, store.root)
    saved = store.save(FeatureSet.from_values(["A", "B"], field="Gene.symbol", name="ab"))
    monkeypatch.undo()
    assert hits
    assert store.get("ab").hash == saved.hash
    assert temporary_files(store.root) == []
    assert verify(store).ok


def test_a_write_in_place_that_fails_leaves_no_partial_file(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(store.root)
    inject(monkeypatch, "link", errno.ENOTSUP, store.root)
    inject(monkeypatch, "rename", errno.ENOTSUP, store.root)
    # The first write (the temporary file) succeeds; the second (in place) fails.
    original = os.write
    writes = []

    def second_write_fails(descriptor: int, data: bytes) -> int:
        writes.append(descriptor)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(descriptor, data)

    monkeypatch.setattr(os, "write", second_write_fails)
    with pytest.raises(StorageError, match="the disk is full"):
        store.save(FeatureSet.from_values(["A"], field="Gene.symbol", name="a"))
    monkeypatch.undo()
    assert snapshot(store.root) == before
    assert temporary_files(store.root) == []


def test_a_refused_chmod_keeps_the_default_mode_and_warns_once(
        store: Store, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    hits = inject(monkeypatch, "fchmod", errno.EPERM, store.root)
    with caplog.at_level(logging.WARNING, logger="fsstore.backend.local"):
        first = store.save(FeatureSet.from_values(["A"], field="Gene.symbol", name="a"))
        store.save(FeatureSet.from_values(["B"], field="Gene.symbol", name="b"))
    monkeypatch.undo()
    assert hits
    warnings = [record for record in caplog.records if "cannot set the mode" in record.message]
    assert len(warnings) == 1
    mode = stat.S_IMODE((store.root / manifest_key(first.hash)).stat().st_mode)
    assert mode & 0o200, "without chmod the manifest keeps its writable creation mode"
    assert store.get("a").hash == first.hash
    assert verify(store).ok


def test_a_folder_fsync_error_after_publishing_is_a_warning_not_a_failure(
        store: Store, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    original = os.fsync

    def folder_fsync_fails(descriptor: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{descriptor}"):
            raise OSError(errno.EIO, "Input/output error")
        original(descriptor)

    monkeypatch.setattr(os, "fsync", folder_fsync_fails)
    with caplog.at_level(logging.WARNING, logger="fsstore.backend.local"):
        saved = store.save(FeatureSet.from_values(["A"], field="Gene.symbol", name="a"))
    monkeypatch.undo()
    assert "fsync of folder" in caplog.text
    assert store.resolve("a") == saved.hash


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real file system that runs out of space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system refuses."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    finally:
        os.close(descriptor)


def test_a_really_full_disk_fails_cleanly_and_the_save_works_after(
        small_disk: Path, real_input: Path) -> None:
    store = Store.init(small_disk / "store")
    store.save(FeatureSet.from_values(["KEPT"], field="Gene.symbol", name="kept"))
    filler = small_disk / "filler"
    with pytest.raises(OSError, match="No space left"):
        fill(filler)
    before = snapshot(store.root)
    feature_set = genes_from(real_input, "grch38")
    with pytest.raises(StorageError, match="the disk is full") as caught:
        store.save(feature_set)
    assert caught.value.errno == errno.ENOSPC
    assert snapshot(store.root) == before
    assert temporary_files(store.root) == []
    filler.unlink()
    assert store.save(feature_set).hash == feature_set.hash
    assert verify(store).ok


@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES])
def test_an_object_the_file_system_refuses_to_read_is_reported_and_left_in_place(
        store: Store, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    from fsstore.integrity import OBJECT_KINDS
    from fsstore.integrity.repair import repair

    saved = store.save(FeatureSet.from_values(["CD8A"], field="Gene.symbol", name="cd8"))
    key = manifest_key(saved.hash)
    kind = OBJECT_KINDS["set"]
    digest_of = kind.digest_of

    def refused(backend: object, object_key: str) -> str:
        if object_key == key:
            raise OSError(code, os.strerror(code), object_key)
        return digest_of(backend, object_key)  # type: ignore[arg-type]  # a Backend

    monkeypatch.setitem(OBJECT_KINDS, "set", dataclasses.replace(kind, digest_of=refused))
    report = verify(store)
    assert report.counts() == {"unreadable": 1}
    assert os.strerror(code) in report.errors[0].detail
    done = repair(store, report)
    assert done.quarantined == []
    assert [finding.problem for finding in done.unrepaired] == ["unreadable"]
    assert (store.root / key).exists()


def test_a_manifest_the_file_system_refuses_to_read_is_a_storage_error(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = store.save(FeatureSet.from_values(["CD8A"], field="Gene.symbol", name="cd8"))
    manifest = store.root / manifest_key(saved.hash)
    read_bytes = Path.read_bytes

    def refused(path: Path) -> bytes:
        if path == manifest:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(StorageError, match=r"cannot read manifest .*Input/output error; check "
                                           r"the file's permissions and the disk") as caught:
        store.get("cd8")
    assert "verify --repair" not in str(caught.value)
