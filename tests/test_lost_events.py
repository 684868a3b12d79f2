"""Events lost with damaged index files stay a problem until the objects are recorded again.

A compaction that meets a damaged commit folds it as empty and moves it to quarantine;
the sets only that commit recorded have no event any more. verify must go on saying so,
gc must not take those sets, and repair must record them again from their manifests.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from fsstore import FeatureSet, IndexCorruptError, Store
from fsstore.index.index import COMPACT_AFTER
from fsstore.index.journal import commit_key
from fsstore.index.runs import list_runs
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.repair import repair
from fsstore.integrity.verify import verify
from fsstore.manifest import manifest_key


def genes(*members: str, name: str | None = None) -> FeatureSet:
    return FeatureSet.from_values(list(members), field="Gene.symbol", name=name)


def tear(store: Store, seq: int) -> None:
    """Cut a commit short, as a crash in the middle of writing it would."""
    path = store.root / commit_key(seq)
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data[: len(data) // 2])


def test_a_commit_lost_in_a_compaction_is_reported_until_repair_recovers_its_set(
        store: Store) -> None:
    for number in range(4):
        store.save(genes(f"G{number}", name=f"n{number}"))
    lost = FeatureSet.from_values(["G2"], field="Gene.symbol").hash
    tear(store, 3)
    # Saved by another process: this one keeps commit 3 as it read it before the damage.
    script = ("import sys; from fsstore import FeatureSet, Store; store = Store(sys.argv[1]); "
              "[store.save(FeatureSet.from_values([f'G{n}'], field='Gene.symbol')) "
              f"for n in range(4, {COMPACT_AFTER + 2})]")
    subprocess.run([sys.executable, "-c", script, str(store.root)], check=True, timeout=300)
    assert list_runs(store.backend), "the saves should have compacted the journal"
    assert not (store.root / commit_key(3)).exists()

    report = verify(store)
    assert report.counts() == {"lost-events": 1}
    assert "record them again" in report.errors[0].detail
    with pytest.raises(IndexCorruptError, match="not recovered yet"):
        collect_garbage(store, grace=0)
    assert store.backend.exists(manifest_key(lost))

    done = repair(store, report)
    assert done.recovered == 1
    assert any(commit_key(3) in line for line in done.lost)
    assert lost in set(store.sets()["hash"])
    assert verify(store).ok
    collect_garbage(store, grace=0)
    assert store.backend.exists(manifest_key(lost))
    recovered = [path for path in (store.root / "quarantine").rglob("RECOVERED.json")]
    assert json.loads(recovered[0].read_text())["recovered_events"] == 1


def test_a_set_only_a_link_still_names_gets_its_event_back(store: Store) -> None:
    outcome = store.link(pd.DataFrame({"gene": ["CD8A"], "count": [3]}), name="counts")
    column_set = store.slot("counts", "columns")
    sets = store.index.view().table("set")
    seq = int(sets["seq"][0].as_py())
    tear(store, seq)

    report = verify(store)
    assert report.counts() == {"damaged-commit": 1}
    done = repair(store, report)
    assert done.recovered == 1
    assert column_set.hash in set(store.sets()["hash"])
    assert set(store.find(member="gene")["hash"]) == {column_set.hash}
    assert store.slot(outcome.dataset, "columns").hash == column_set.hash
    assert verify(store).ok


def test_a_run_file_listed_but_missing_is_repaired_in_one_go(store: Store) -> None:
    for number in range(COMPACT_AFTER + 3):
        store.save(genes(f"G{number}", name=f"n{number}"))
    collect_garbage(store)  # folded commits go: the run is the only copy of their events
    run = list_runs(store.backend)[0]
    (store.root / run.key("names.parquet")).unlink()

    report = verify(store)
    assert report.counts() == {"damaged-run": 1}
    repair(store, report)
    after = verify(store)
    assert after.ok, after.errors
    assert store.resolve("n5") == FeatureSet.from_values(["G5"], field="Gene.symbol").hash
    reports = list((store.root / "quarantine").rglob("REPORT.json"))
    assert reports


@pytest.mark.parametrize("name", ["notes.txt", ".nfs0000000001", "0000000000000001.json~"])
def test_a_foreign_file_in_the_index_goes_to_quarantine(store: Store, name: str) -> None:
    store.save(genes("CD8A", name="cd8"))
    (store.root / "index" / "journal" / name).write_text("not ours")

    report = verify(store)
    assert report.counts() == {"foreign": 1}
    repair(store, report)
    assert not (store.root / "index" / "journal" / name).exists()
    assert list((store.root / "quarantine").rglob(name))
    assert verify(store).ok
    assert store.resolve("cd8")


