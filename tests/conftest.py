"""Shared fixtures: small stores in tmp_path, and the real input files of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fsstore import Store

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FSSTORE_TEST_DATA", REPOSITORY.parent / "shared" / "data"))
TENX = DATA / "genes" / "tenx"
GRCH38 = TENX / "jeong2624_scRNA-seq-project_GRCh38-2020-A_features.tsv.gz"
MM10 = TENX / "BaderLab_scRNAseqWorkflow_mm10_features.tsv.gz"


def data_file(path: Path) -> Path:
    """A real input file, or skip the test saying what is missing."""
    if not path.exists():
        pytest.skip(f"real input {path} is absent (set FSSTORE_TEST_DATA to the data folder)")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.init(tmp_path / "store")


@pytest.fixture
def grch38() -> Path:
    return data_file(GRCH38)


@pytest.fixture
def mm10() -> Path:
    return data_file(MM10)
