"""Shared fixtures: small stores in tmp_path, and the real input files of ../shared/data."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from fsstore import Store

# The suite is deterministic: property tests draw the same examples on every run and keep
# no example database between runs, and no deadline turns a busy machine into a failure.
# FSSTORE_HYPOTHESIS=explore draws new, more examples, for hunting bugs by hand.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("FSSTORE_HYPOTHESIS", "deterministic"))

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FSSTORE_TEST_DATA", REPOSITORY.parent / "shared" / "data"))
TENX = DATA / "genes" / "tenx"
GRCH38 = TENX / "jeong2624_scRNA-seq-project_GRCh38-2020-A_features.tsv.gz"
MM10 = TENX / "BaderLab_scRNAseqWorkflow_mm10_features.tsv.gz"

CliResult = tuple[int, str, str]
"""Exit status, standard output and standard error of one command."""


def data_file(path: Path) -> Path:
    """A real input file, or skip the test saying what is missing."""
    if not path.exists():
        pytest.skip(f"real input {path} is absent (set FSSTORE_TEST_DATA to the data folder)")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.init(tmp_path / "store")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """An empty store's folder."""
    path = tmp_path / "store"
    Store.init(path)
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], store_path: Path) -> Callable[..., CliResult]:
    """Run the command line in this process (faster than a subprocess), on ``store_path``."""
    from fsstore.cli import main

    def invoke(*args: str) -> CliResult:
        status = main([*args, "--store", str(store_path)])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return invoke


def cli_json(cli: Callable[..., CliResult], *args: str) -> Any:
    """Run a command with ``--json`` through the ``cli`` fixture; its parsed output."""
    status, out, err = cli(*args, "--json")
    assert status == 0, err
    return json.loads(out)


@pytest.fixture
def grch38() -> Path:
    return data_file(GRCH38)


@pytest.fixture
def mm10() -> Path:
    return data_file(MM10)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for the whole session, with the test bucket made."""
    pytest.importorskip("obstore", reason="obstore is not installed (pip install -e '.[test]')")
    pytest.importorskip("moto.server",
                        reason="moto[server] is not installed (pip install -e '.[test]')")
    from tests import s3server

    process, endpoint = s3server.start()
    try:
        yield endpoint
    finally:
        s3server.stop(process)


@pytest.fixture
def s3_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,
           request: pytest.FixtureRequest) -> str:
    """A fresh prefix in the test bucket, with credentials and endpoint in the environment.

    Subprocesses started by the test inherit the environment, so they reach the same server.
    """
    from tests import s3server

    for name, value in s3server.CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:80].strip("-")
    return f"s3://{s3server.BUCKET}/{slug}-{os.urandom(4).hex()}"
