"""Reading a store whose index files are damaged or missing: a clear error naming the file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fsstore import FeatureSet, IndexCorruptError, Store
from fsstore.index.index import COMPACT_AFTER
from fsstore.index.runs import list_runs
from fsstore.integrity.gc import collect_garbage


def compacted(store: Store) -> str:
    """A store whose first 64 commits live only in a run; returns the run's folder."""
    for number in range(COMPACT_AFTER + 3):
        store.save(FeatureSet.from_values([f"G{number}"], field="Gene.symbol",
                                          name=f"n{number}"))
    collect_garbage(store)
    return list_runs(store.backend)[0].folder


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsstore", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("file", ["sets.parquet", "names.parquet"])
def test_a_damaged_run_file_is_an_index_error_naming_it(store: Store, file: str) -> None:
    folder = compacted(store)
    path = store.root / folder / file
    data = bytearray(path.read_bytes())
    data[len(data) // 3: len(data) // 3 + 60] = bytes(60)
    path.chmod(0o644)
    path.write_bytes(bytes(data))

    fresh = Store(store.root)
    with pytest.raises(IndexCorruptError, match=r"cannot be read .* verify --repair") as caught:
        fresh.sets() if file == "sets.parquet" else fresh.resolve("n5")
    assert caught.value.path == f"{folder}/{file}"
    command = ["ls"] if file == "sets.parquet" else ["show", "n5"]
    done = run_cli(*command, "--store", str(store.root))
    assert done.returncode == 5
    assert f"{folder}/{file}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_run_file_that_is_gone_is_named_and_not_blamed_on_other_writers(
        store: Store) -> None:
    folder = compacted(store)
    (store.root / folder / "names.parquet").unlink()

    done = run_cli("show", "n5", "--store", str(store.root))
    assert done.returncode == 5
    assert "names.parquet" in done.stderr
    assert "verify --repair" in done.stderr
    assert "keeps changing" not in done.stderr
