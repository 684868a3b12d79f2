"""The index: compaction keeps every event, torn commits are skipped, writers never lose one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fsstore import FeatureSet, ReferenceNotFoundError, Store
from fsstore.commit_ranges import covering_chain
from fsstore.index import COMPACT_AFTER
from fsstore.index.journal import JOURNAL_PREFIX, commit_key
from fsstore.index.runs import list_runs

WORKER = Path(__file__).with_name("worker.py")


def save(store: Store, member: str, name: str | None = None) -> str:
    return store.save(FeatureSet.from_values([member], field="Gene.symbol", name=name)).hash


def test_compaction_and_merges_keep_every_event_in_order(store: Store) -> None:
    # A plain dict is the model: name -> every hash it pointed at, in order.
    model: dict[str, list[str]] = {}
    for number in range(COMPACT_AFTER * 5 + 7):
        name = f"n{number % 37}"
        model.setdefault(name, []).append(save(store, f"G{number}", name))
    runs = covering_chain(list_runs(store.backend))
    assert runs, "the journal should have been compacted"
    assert runs[0].first == 1
    journal = list(store.backend.list(JOURNAL_PREFIX))
    # Folded commits stay one more compaction cycle (so their numbers are never reused).
    assert len(journal) < 2 * COMPACT_AFTER
    assert len(store.index.view().layout.commits) < COMPACT_AFTER
    for name, hashes in model.items():
        assert list(store.history(name)["hash"]) == hashes
        assert store.resolve(name) == hashes[-1]
    events = store.index.view().table("set")
    assert events["seq"].to_pylist() == list(range(1, len(events) + 1))


def test_lookups_read_runs_and_journal_alike(store: Store) -> None:
    first = save(store, "EARLY", "early")
    for number in range(COMPACT_AFTER + 3):
        save(store, f"FILL{number}")
    late = save(store, "LATE", "late")
    assert store.resolve("early") == first
    assert store.resolve(first[:7]) == first
    assert store.resolve("late") == late
    assert store.resolve(late[:7]) == late


def test_a_torn_commit_is_skipped_and_keeps_its_number(store: Store) -> None:
    save(store, "A", "a")
    torn = store.root / commit_key(2)
    torn.write_bytes(b'{"format": "fsstore.commit.v1", "seq": 2, "events": [{"ki')
    after = save(store, "B", "b")
    assert store.resolve("b") == after
    assert store.index.view().find("set", "name", "b")["seq"].to_pylist() == [3]
    assert len(store.sets()) == 2


def test_a_commit_with_a_wrong_checksum_is_skipped(store: Store) -> None:
    save(store, "A", "a")
    path = store.root / commit_key(1)
    document = json.loads(path.read_text())
    document["events"][0]["name"] = "forged"
    path.chmod(0o644)
    path.write_text(json.dumps(document))
    with pytest.raises(ReferenceNotFoundError, match="no set named 'forged'"):
        store.resolve("forged")


def run_writers(store: Store, count: int, per_writer: int, *extra: str) -> list[str]:
    processes = [
        subprocess.Popen([sys.executable, str(WORKER), str(store.root), f"w{number}",
                          str(per_writer), *extra], stdout=subprocess.PIPE, text=True)
        for number in range(count)
    ]
    hashes = []
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        hashes += out.split()
    return hashes


def test_two_processes_adding_different_sets_keep_both(store: Store) -> None:
    hashes = run_writers(store, 2, 1)
    assert set(store.sets()["hash"]) == set(hashes)
    assert store.resolve("w0-0") != store.resolve("w1-0")
