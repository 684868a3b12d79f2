"""Saving and reading sets: dedup by existence, names with history, integrity on read."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsstore import (
    AmbiguousReferenceError,
    CorruptObjectError,
    FeatureSet,
    InvalidMemberError,
    ReferenceNotFoundError,
    StorageError,
    Store,
    StoreExistsError,
    StoreFormatError,
    StoreNotFoundError,
)
from fsstore.backend.local import TEMPORARY_PREFIX, LocalBackend
from fsstore.manifest import manifest_key


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under a folder with the SHA-256 of its bytes."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def genes(*values: str, name: str | None = None) -> FeatureSet:
    return FeatureSet.from_values(list(values), field="Gene.symbol", name=name)


def test_saving_an_existing_set_writes_nothing_and_keeps_its_creation_time(
        store: Store) -> None:
    first = store.save(genes("CD8A", "CD4", name="t-cells"))
    objects = snapshot(store.root / "objects")
    index = snapshot(store.root / "index")
    again = store.put(genes("CD4", "CD8A", "CD4", name="t-cells"))
    assert not again.created
    assert not again.recorded
    assert snapshot(store.root / "objects") == objects
    assert snapshot(store.root / "index") == index
    assert again.feature_set.created_at == first.created_at


def test_a_manifest_is_read_only_parquet_with_one_row_per_member(store: Store) -> None:
    saved = store.save(genes("CD8A", "CD4", "CD3E"))
    path = store.root / manifest_key(saved.hash)
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    frame = pd.read_parquet(path)
    assert list(frame["name"]) == ["CD3E", "CD4", "CD8A"]


def test_no_temporary_file_is_left_after_saving(store: Store) -> None:
    store.save(genes("A", "B", name="x"))
    assert not [p for p in store.root.rglob("*") if p.name.startswith(TEMPORARY_PREFIX)]


def test_a_name_moves_and_keeps_its_history(store: Store) -> None:
    old = store.save(genes("A", "B", name="panel"))
    new = store.put(genes("A", "B", "C", name="panel"))
    assert new.previous == old.hash
    assert store.resolve("panel") == new.feature_set.hash
    history = store.history("panel")
    assert list(history["hash"]) == [old.hash, new.feature_set.hash]
    assert store.get(old.hash[:8]).member_names == ("A", "B")  # the old set stays
    sets = store.sets()
    assert sets.set_index("hash").loc[old.hash, "names"] == []
    assert sets.set_index("hash").loc[new.feature_set.hash, "names"] == ["panel"]


def test_moving_a_name_back_points_it_at_the_old_set_again(store: Store) -> None:
    old = store.save(genes("A", name="panel"))
    store.save(genes("B", name="panel"))
    back = store.put(genes("A", name="panel"))
    assert not back.created
    assert back.recorded
    assert store.resolve("panel") == old.hash


def test_any_unique_prefix_of_six_or_more_resolves(store: Store) -> None:
    saved = store.save(genes("CD8A"))
    for length in (6, 7, 12, 64):
        assert store.resolve(saved.hash[:length]) == saved.hash
        assert store.resolve(saved.hash[:length].upper()) == saved.hash
    with pytest.raises(ReferenceNotFoundError, match="at least 6 characters"):
        store.resolve(saved.hash[:5])


def test_an_ambiguous_prefix_names_the_candidates(store: Store, monkeypatch) -> None:
    saved = [store.save(genes(f"G{i}")).hash for i in range(40)]
    first_two = [h[:2] for h in saved]
    prefix = next(p for p in first_two if first_two.count(p) > 1)
    monkeypatch.setattr("fsstore.references.MIN_PREFIX", 2)  # a 6-digit clash needs ~16M sets
    with pytest.raises(AmbiguousReferenceError, match="give more characters") as caught:
        store.resolve(prefix)
    assert set(caught.value.candidates) == {h for h in saved if h.startswith(prefix)}


def test_unknown_references_say_what_to_do(store: Store) -> None:
    with pytest.raises(ReferenceNotFoundError, match="fsstore ls"):
        store.get("nothing-here")


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "swap"])
def test_a_damaged_manifest_raises_on_read_naming_the_file(store: Store, damage: str) -> None:
    saved = store.save(genes(*[f"GENE{i}" for i in range(200)], name="big"))
    other = store.save(genes("X", "Y"))
    path = store.root / manifest_key(saved.hash)
    data = path.read_bytes()
    os.chmod(path, 0o644)
    if damage == "flip":
        middle = len(data) // 2
        data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]
    elif damage == "truncate":
        data = data[: len(data) - 40]
    elif damage == "empty":
        data = b""
    else:
        data = (store.root / manifest_key(other.hash)).read_bytes()
    path.write_bytes(data)
    os.chmod(path, 0o444)  # read-only, as stored
    with pytest.raises(CorruptObjectError, match=str(path)) as caught:
        store.get("big")
    assert caught.value.expected == saved.hash
    assert "fsstore verify" in str(caught.value)


@pytest.mark.parametrize("failing", ["fsync", "link", "write"])
def test_a_save_the_disk_refuses_changes_nothing(store: Store, monkeypatch,
                                                  failing: str) -> None:
    store.save(genes("A", name="kept"))
    before = snapshot(store.root)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "write":
        monkeypatch.setattr("fsstore.backend.local.LocalBackend._write_temporary",
                            _failing_write(no_space))
    else:
        monkeypatch.setattr(f"os.{failing}", no_space)
    with pytest.raises(StorageError, match="disk is full") as caught:
        store.save(genes("B", "C", name="kept"))
    monkeypatch.undo()
    assert isinstance(caught.value, OSError)
    assert snapshot(store.root) == before
    assert store.resolve("kept") == genes("A").hash


def _failing_write(fail):
    original = LocalBackend._write_temporary

    def write(self, final, writer, readonly):
        def failing_writer(descriptor):
            os.write(descriptor, b"partial")
            fail()

        return original(self, final, failing_writer, readonly)

    return write


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
                                min_size=1, max_size=10).filter(lambda s: not s.isspace()),
                       min_size=1, max_size=40),
       ordered=st.booleans())
def test_round_trip_returns_the_same_members(tmp_path_factory, values: list[str],
                                             ordered: bool) -> None:
    store = Store.init(tmp_path_factory.mktemp("store"))
    if ordered:
        values = list(dict.fromkeys(values))
    try:
        feature_set = FeatureSet.from_values(values, field="Gene.symbol", ordered=ordered)
    except InvalidMemberError:  # text that normalises to a repeat in an ordered set
        return
    saved = store.save(feature_set)
    loaded = store.get(saved.hash)
    assert loaded.canonical == feature_set.canonical
    assert loaded.members.equals(feature_set.members)


def test_init_refuses_a_folder_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    with pytest.raises(StoreExistsError, match="not an empty folder"):
        Store.init(tmp_path)


def test_init_twice_opens_the_same_store(tmp_path: Path) -> None:
    first = Store.init(tmp_path / "s")
    assert Store.init(tmp_path / "s").store_id == first.store_id


def test_opening_a_folder_that_is_not_a_store_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="fsstore init"):
        Store(tmp_path)


def test_a_store_from_a_newer_fsstore_is_refused(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "s")
    config = (store.root / "fsstore.json").read_text().replace('"version": 1', '"version": 2')
    (store.root / "fsstore.json").write_text(config)
    with pytest.raises(StoreFormatError, match="upgrade fsstore"):
        Store(store.root)


def test_a_parent_folder_opens_its_dot_fsstore(tmp_path: Path) -> None:
    store = Store.init(tmp_path / ".fsstore")
    assert Store(tmp_path).root == store.root


def test_created_by_comes_from_the_environment(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("FSSTORE_USER", "ana")
    fresh = Store(store.root)
    saved = fresh.save(genes("Q"))
    assert saved.created_by == "ana"
    assert fresh.history  # the event carries the same user
    assert fresh.index.view().find("set", "hash", saved.hash)["user"].to_pylist() == ["ana"]


def test_description_is_kept_but_not_hashed(store: Store) -> None:
    plain = genes("A", name="d")
    described = FeatureSet.from_values(["A"], field="Gene.symbol", name="d",
                                       description="cell markers")
    assert plain.hash == described.hash
    store.save(plain)
    store.save(described)
    assert store.get("d").description == "cell markers"


def test_listing_and_reading_a_set_give_the_same_creation_time(store: Store) -> None:
    saved = store.save(FeatureSet.from_values(["CD8A", "CD4"], field="Gene.symbol", name="t"))
    listed = store.sets()
    assert list(listed["created_at"]) == [saved.created_at]
    assert store.get("t").created_at == saved.created_at
