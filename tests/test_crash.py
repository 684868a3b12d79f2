"""Crashes and concurrency with real processes and signals, each bounded by a deadline."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fsstore import FeatureSet, Store
from fsstore.index.journal import commit_key
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.repair import repair
from fsstore.integrity.verify import verify

WORKER = Path(__file__).with_name("crash_worker.py")
DEADLINE = 300


def worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == 0, err
    return out


def test_a_hundred_kills_lose_no_returned_save_and_verify_stays_clean(store: Store) -> None:
    rounds = json.loads(finish(worker("kill", store.root, 100, 20261203)))
    saved = {name: hash_hex for round_saves in rounds for name, hash_hex in round_saves}
    assert len(rounds) == 100
    assert len(saved) >= 20  # every fifth round kills only after a save returned
    report = verify(store)
    assert report.ok, report.errors
    assert set(report.counts(errors=False)) <= {"temporary", "unreferenced", "superseded",
                                                "unfinished-run"}
    for name, hash_hex in saved.items():
        assert store.resolve(name) == hash_hex
    seqs = store.index.view().table("set")["seq"].to_pylist()
    assert seqs == list(range(1, len(seqs) + 1))
    # What the kills left behind goes with gc; then nothing at all is left to report.
    collect_garbage(store, grace=0)
    after = verify(store)
    assert after.findings == []
    assert store.save(FeatureSet.from_values(["AFTER"], field="Gene.symbol", name="after"))


def test_a_reader_polling_during_writes_never_sees_a_partial_state(store: Store,
                                                                    tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    reader = worker("read", store.root, stop)
    writers = [worker("write", store.root, f"w{number}", 60) for number in range(2)]
    written = [finish(process).split() for process in writers]
    stop.touch()
    polls = int(finish(reader))
    assert polls > 10
    assert len(store.sets()) == sum(len(hashes) for hashes in written) == 120
    assert verify(store).ok


def test_a_torn_final_commit_after_a_kill_is_skipped_and_repaired(store: Store) -> None:
    before = store.save(FeatureSet.from_values(["BEFORE"], field="Gene.symbol",
                                               name="before"))
    process = worker("torn", store.root)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "torn"
    process.send_signal(signal.SIGKILL)
    process.wait(DEADLINE)
    torn = store.root / commit_key(2)
    data = torn.read_bytes()
    assert data
    assert not data.endswith(b"\n")  # cut short: the commit ends with a newline
    # Readers skip it; writers go on after it.
    assert store.resolve("before") == before.hash
    after = store.save(FeatureSet.from_values(["AFTER"], field="Gene.symbol", name="after"))
    assert store.index.view().find("set", "name", "after")["seq"].to_pylist() == [3]
    report = verify(store)
    assert [(finding.problem, finding.key) for finding in report.errors] == [
        ("damaged-commit", commit_key(2))]
    repair(store, report)
    assert verify(store).ok
    assert store.resolve("before") == before.hash
    assert store.resolve("after") == after.hash
    # The set whose commit was torn had its manifest written: it is recovered, unnamed.
    assert FeatureSet.from_values(["TORN"], field="Gene.symbol").hash in set(
        store.sets()["hash"])


@pytest.mark.parametrize("lock", ["lock", "nolock"])
def test_eight_writers_of_two_hundred_saves_leave_exactly_sixteen_hundred_entries(
        store: Store, lock: str) -> None:
    processes = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("worker.py")),
                                   str(store.root), f"w{number}", "200", lock],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for number in range(8)]
    hashes = [finish(process).split() for process in processes]
    assert all(len(written) == 200 for written in hashes)
    events = store.index.view().table("set")
    assert events.num_rows == 1600
    assert events["seq"].to_pylist() == list(range(1, 1601))
    assert set(events["hash"].to_pylist()) == {hash_hex for written in hashes
                                               for hash_hex in written}
    for number in (0, 7):
        for index in (0, 199):
            assert store.resolve(f"w{number}-{index}") == hashes[number][index]
    assert verify(store).ok
