"""Registries in a store: registering, versions side by side, the Feature registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fsstore import Feature, Store
from fsstore.errors import (
    AmbiguousRegistryError,
    CorruptObjectError,
    FeatureDtypeMismatchError,
    InvalidInputError,
    InvalidNameError,
    RegistryNotFoundError,
    RegistryVersionConflictError,
)
from fsstore.index import COMPACT_AFTER
from fsstore.registry import catalog
from fsstore.registry.table import registry_key
from tests.test_store import snapshot

GENES = pd.DataFrame({"ensembl_gene_id": ["ENSG00000153563", "ENSG00000172116",
                                          "ENSG00000010610"],
                      "symbol": ["CD8A", "CD8B", "CD4"]})


def test_registering_the_same_table_again_writes_nothing(store: Store) -> None:
    first = store.register(GENES, name="Gene", organism="human", version="v1")
    assert (first.created, first.recorded) == (True, True)
    before = snapshot(store.root)
    shuffled = GENES.sample(frac=1, random_state=3)[["symbol", "ensembl_gene_id"]]
    again = store.register(shuffled, name="Gene", organism="human", version="v1")
    assert (again.created, again.recorded) == (False, False)
    assert again.info.hash == first.info.hash
    assert snapshot(store.root) == before


def test_a_version_label_never_moves(store: Store) -> None:
    store.register(GENES, name="Gene", organism="human", version="v1")
    before = snapshot(store.root)
    changed = GENES.assign(symbol=["CD8A", "CD8B", "CD4-renamed"])
    with pytest.raises(RegistryVersionConflictError,
                       match=r"Gene \(human\) v1 is already registered with another table "
                             r"\([0-9a-f]{12}, 3 records\).*new version label"):
        store.register(changed, name="Gene", organism="human", version="v1")
    assert snapshot(store.root) == before  # the refused table is not written either
    assert store.registry("Gene").counts("symbol")["CD4"] == 1


def test_the_same_table_under_a_second_label_records_only_the_label(store: Store) -> None:
    first = store.register(GENES, name="Gene", organism="human", version="v1")
    alias = store.register(GENES, name="Gene", organism="human", version="release-1")
    assert (alias.created, alias.recorded) == (False, True)
    assert alias.info.hash == first.info.hash
    assert list(store.registries()["version"]) == ["v1", "release-1"]


def test_versions_live_side_by_side_and_the_last_is_the_default(store: Store) -> None:
    store.register(GENES, name="Gene", organism="human", version="v1")
    store.register(GENES.iloc[:2], name="Gene", organism="human", version="v2")
    assert store.registry("Gene").version == "v2"
    assert store.registry("Gene").n == 2
    assert store.registry("Gene", version="v1").n == 3
    with pytest.raises(RegistryNotFoundError, match="no version 'v3'; its versions are v1, v2"):
        store.registry("Gene", version="v3")


def test_several_organisms_need_a_choice(store: Store) -> None:
    store.register(GENES, name="Gene", organism="human", version="v1")
    store.register(GENES.assign(symbol=["Cd8a", "Cd8b1", "Cd4"]), name="Gene",
                   organism="mouse", version="v1")
    with pytest.raises(AmbiguousRegistryError,
                       match=r"organisms \(human, mouse\); choose one with organism="):
        store.registry("Gene")
    assert "Cd4" in store.registry("Gene", organism="mouse").counts("symbol")
    with pytest.raises(RegistryNotFoundError, match="no version for organism 'rat'"):
        store.registry("Gene", organism="rat")
    with pytest.raises(RegistryNotFoundError, match="no registry 'Protein'"):
        store.registry("Protein")


def test_versions_of_a_registry_all_name_an_organism_or_none_does(store: Store) -> None:
    store.register(GENES, name="Gene", organism="human", version="v1")
    before = snapshot(store.root)
    with pytest.raises(InvalidInputError, match=r"Gene has versions for human; give this"):
        store.register(GENES.iloc[:2], name="Gene", version="v2")
    assert snapshot(store.root) == before  # not even the table was written
    store.register(GENES, name="ERCC", version="v1")
    with pytest.raises(InvalidInputError, match=r"ERCC has versions without an organism"):
        store.register(GENES.iloc[:2], name="ERCC", organism="human", version="v2")
    assert len(store.registries()) == 2


def test_a_version_label_is_one_word(store: Store) -> None:
    with pytest.raises(InvalidNameError, match=r"contains white space.*'gencode-v48'"):
        store.register(GENES, name="Gene", organism="human", version="gencode v48")
    assert store.registries().empty


@pytest.mark.parametrize(("fields", "message"), [
    ({"symbol": 7}, "no column 7 for field 'symbol'"),
    ({"symbol": "gene_name"}, "no column 'gene_name'"),
    ({"bad field": "symbol"}, "not an identifier"),
])
def test_bad_field_choices_are_rejected(store: Store, fields, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        store.register(GENES, name="Gene", version="v1", fields=fields)
    assert store.registries().empty


def test_feature_is_reserved_for_the_built_in_registry(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="register_features"):
        store.register(GENES, name="Feature", version="v1")


def test_a_damaged_registry_table_is_reported_with_its_path(store: Store) -> None:
    info = store.register(GENES, name="Gene", version="v1").info
    path = store.root / registry_key(info.hash)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-40])
    catalog._cache.clear()
    with pytest.raises(CorruptObjectError, match=str(path)):
        store.registry("Gene")


def test_registry_events_survive_compaction(store: Store) -> None:
    for number in range(COMPACT_AFTER + 3):
        store.register(GENES, name="Gene", organism="human", version=f"v{number}")
    assert list((store.root / "index" / "runs").iterdir())
    versions = store.registries()
    assert len(versions) == COMPACT_AFTER + 3
    assert versions["fields"].iloc[0] == ["ensembl_gene_id", "symbol"]
    assert store.registry("Gene", version="v5").hash == versions["hash"].iloc[0]
    assert store.registry("Gene").version == f"v{COMPACT_AFTER + 2}"


def test_the_feature_registry_grows_by_versions(store: Store) -> None:
    frame = pd.DataFrame({"n_counts": [1, 2], "ratio": [0.5, 1.5], "label": ["a", "b"]})
    first = store.register_features(frame)
    assert (first.info.version, first.info.n) == ("v1", 3)
    again = store.register_features(frame[["ratio"]])
    assert again.recorded is False
    second = store.register_features([Feature("batch", "cat"), ("donor", "str")])
    assert (second.info.version, second.info.n) == ("v2", 5)
    from fsstore.registry.features import feature_dtypes

    assert feature_dtypes(store.registry("Feature")) == {
        "n_counts": "int", "ratio": "float", "label": "str", "batch": "cat", "donor": "str"}
    assert store.registry("Feature", version="v1").n == 3


def test_a_feature_keeps_its_dtype(store: Store) -> None:
    store.register_features([("n_counts", "int")])
    before = snapshot(store.root)
    with pytest.raises(FeatureDtypeMismatchError,
                       match=r"n_counts \(int, given float\).*dtype does not change"):
        store.register_features(pd.DataFrame({"n_counts": [1.5], "other": ["x"]}))
    assert snapshot(store.root) == before
    with pytest.raises(InvalidInputError, match="has no dtype"):
        store.register_features([Feature("plain")])


FILL = """
import sys
from fsstore import Store
store = Store(sys.argv[1])
for number in range(int(sys.argv[3])):
    store.register_features([(f"{sys.argv[2]}_{number}", "int")])
"""


def test_concurrent_feature_fills_lose_nothing(store: Store) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", FILL, str(store.root), prefix, "8"],
                                  stderr=subprocess.PIPE, text=True)
                 for prefix in ("a", "b", "c")]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    catalog._cache.clear()
    latest = store.registry("Feature")
    assert latest.n == 24
    assert latest.version == "v24"
    versions = store.registries()["version"].tolist()
    assert versions == [f"v{number}" for number in range(1, 25)]


def test_registering_a_file_with_chosen_columns(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "genes.csv.gz"
    import gzip

    path.write_bytes(gzip.compress(b"ENSG1,A,2\nENSG2,B,1\nENSG3,,1\n"))
    outcome = store.register(str(path), name="Gene", version="mini", header=False,
                             fields={"ensembl_gene_id": 0, "symbol": "1"})
    assert outcome.info.fields == ("ensembl_gene_id", "symbol")
    registry = store.registry("Gene")
    assert registry.column("symbol").count(None) == 1
    assert store.registries()["n"].tolist() == [3]
