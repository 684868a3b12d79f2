"""MuData datasets: a CITE-seq file built from real gene ids and a real antibody panel."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fsstore import Store
from fsstore.errors import UnsupportedFileError
from tests.conftest import DATA, GRCH38, data_file

# mudata announces a change of its update() defaults whenever a MuData is written.
pytestmark = pytest.mark.filterwarnings("ignore:From 0.4 .update():FutureWarning")

ANTIBODIES = DATA / "genes" / "panels" / "nfcore_60k_pbmc_cmo_tcr_feature-ref_antibodies.csv"
CELLS = 4


@pytest.fixture
def cite_seq() -> Any:
    """A MuData of 4 cells: 2,000 GRCh38 gene ids in ``rna``, 137 antibodies in ``prot``."""
    anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed")
    mudata = pytest.importorskip("mudata", reason="mudata (a test dependency) is missing")
    with gzip.open(data_file(GRCH38), "rt") as handle:
        gene_ids = [line.split("\t")[0] for line in handle][:2000]
    antibodies = pd.read_csv(data_file(ANTIBODIES))["id"].tolist()
    rna = anndata.AnnData(np.zeros((CELLS, len(gene_ids)), np.float32),
                          var=pd.DataFrame(index=gene_ids))
    rna.obs["n_genes"] = np.arange(CELLS)
    prot = anndata.AnnData(np.zeros((CELLS, len(antibodies)), np.float32),
                           var=pd.DataFrame(index=antibodies))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mudata's notice about update()
        data = mudata.MuData({"rna": rna, "prot": prot})
    data.obs["sample"] = pd.Categorical(["a", "b"] * (CELLS // 2))
    return data


def write(data: Any, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        data.write_h5mu(path)
    return path


def test_a_mudata_file_gets_shared_obs_and_a_var_and_obs_slot_per_modality(
        store: Store, tmp_path: Path, cite_seq: Any) -> None:
    outcome = store.link(write(cite_seq, tmp_path / "cite.h5mu"), name="cite")
    assert outcome.format == "h5mu"
    assert sorted(change.slot for change in outcome.slots) == ["obs", "prot:var", "rna:obs",
                                                               "rna:var"]
    genes = store.slot("cite", "rna:var")
    assert genes.itype == "Gene.ensembl_gene_id"
    assert genes.n == 2000
    assert set(genes.member_names) == set(cite_seq.mod["rna"].var_names)
    antibodies = store.slot("cite", "prot:var")
    assert antibodies.itype == "Feature.name"
    assert set(antibodies.member_names) == set(cite_seq.mod["prot"].var_names)
    assert [(f.name, f.dtype) for f in store.slot("cite", "obs").features] == [
        ("sample", "cat")]
    assert [(f.name, f.dtype) for f in store.slot("cite", "rna:obs").features] == [
        ("n_genes", "int")]
    measuring = store.datasets_of(member="CD86")
    assert measuring["slot"].tolist() == ["prot:var"]
    assert measuring["dataset"].tolist() == [outcome.dataset]


def test_a_mudata_object_is_the_dataset_its_h5mu_file_is(store: Store, tmp_path: Path,
                                                         cite_seq: Any) -> None:
    from_object = store.link(cite_seq)
    assert from_object.format == "mudata"
    from_file = store.link(write(cite_seq, tmp_path / "cite.h5mu"))
    assert from_file.dataset == from_object.dataset
    assert not from_file.new
    assert [change.hash for change in from_file.slots] == [
        change.hash for change in from_object.slots]


def test_the_gene_modality_takes_the_field_given_and_odd_modality_names_become_slots(
        store: Store, tmp_path: Path, cite_seq: Any) -> None:
    mudata = pytest.importorskip("mudata")
    symbols = cite_seq.mod["rna"].copy()
    symbols.var_names = [f"GENE{number}" for number in range(symbols.n_vars)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        data = mudata.MuData({"rna": symbols, "CITE-seq ADT": cite_seq.mod["prot"]})
    outcome = store.link(write(data, tmp_path / "odd.h5mu"), name="odd")
    assert sorted(change.slot for change in outcome.slots) == ["CITE-seq_ADT:var",
                                                               "rna:obs", "rna:var"]
    assert store.slot("odd", "rna:var").itype == "Gene.symbol"
    again = store.link(tmp_path / "odd.h5mu", var_field="Gene.ensembl_gene_id",
                       replace=True)
    assert store.slot(again.dataset, "rna:var").itype == "Gene.ensembl_gene_id"


@pytest.mark.parametrize("content", ["anndata", "garbage"])
def test_a_h5mu_file_that_is_not_mudata_is_refused_clearly(store: Store, tmp_path: Path,
                                                           content: str) -> None:
    anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed")
    path = tmp_path / "not.h5mu"
    if content == "anndata":
        anndata.AnnData(np.zeros((2, 2), np.float32)).write_h5ad(path)
        expected = "no 'mod' group"
    else:
        path.write_bytes(b"\x89HDF\r\n\x1a\n but not really")
        expected = "cannot read .* as MuData"
    with pytest.raises(UnsupportedFileError, match=expected):
        store.link(path)
    assert store.datasets().empty


def test_link_and_datasets_on_the_command_line(cli: Any, tmp_path: Path,
                                               cite_seq: Any) -> None:
    path = write(cite_seq, tmp_path / "cite.h5mu")
    status, out, err = cli("link", str(path), "--name", "cite", "--json")
    assert status == 0, err
    linked = json.loads(out)
    document = linked[0] if isinstance(linked, list) else linked
    assert document["format"] == "h5mu"
    status, out, err = cli("datasets", "cite")
    assert status == 0, err
    assert "prot:var" in out
    assert "137 members of Feature.name" in out
    assert "1 member of Feature.name" in out  # the shared obs: one column
    status, out, err = cli("datasets", "--member", "CD86")
    assert status == 0, err
    assert "prot:var" in out
