"""Processes for crash and concurrency tests, run as ``python tests/crash_worker.py MODE ...``.

``kill STORE ROUNDS SEED``
    A zygote: imports fsstore once, then for each round forks a writer that saves sets
    (each under a new name) as fast as it can and reports each save as soon as it
    returned, and kills it with SIGKILL after a random delay. Compactions run every 4
    commits in the writers, so that kills land in them too. Prints one JSON document: the
    saves that returned, per round.
``write STORE PREFIX COUNT``
    Saves COUNT sets named PREFIX-<n>, compacting every 4 commits; prints each hash.
``read STORE STOPFILE``
    Polls the store until STOPFILE exists (at most 5 minutes) while others write, and checks
    that every view is whole: commit numbers 1..head each hold one event, nothing seen
    before disappears or changes, and the newest events' sets have readable manifests.
    Prints the number of polls.
``torn STORE``
    Saves one set on a file system without links or renames (so the commit is written in
    place) and stops half-way through writing the commit, printing ``torn``, to be killed.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import sys
import time
from typing import Any

import fsstore.backend.local as local
import fsstore.index.index as index_module
from fsstore import FeatureSet, Store

SMALL_COMPACTION = 4


def save(store: Store, name: str) -> str:
    feature_set = FeatureSet.from_values([name.upper()], field="Gene.symbol", name=name)
    return store.save(feature_set).hash


def writer(store_path: str, prefix: str, report: int) -> None:
    index_module.COMPACT_AFTER = SMALL_COMPACTION  # type: ignore[misc]  # compact often
    store = Store(store_path)
    number = 0
    while True:
        name = f"{prefix}-{number}"
        hash_hex = save(store, name)
        os.write(report, f"{name} {hash_hex}\n".encode())
        number += 1


def kill_rounds(store_path: str, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    saved: list[list[list[str]]] = []
    for round_number in range(rounds):
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # the writer
            os.close(reading)
            try:
                writer(store_path, f"r{round_number}", writing)
            finally:
                os._exit(1)
        os.close(writing)
        with os.fdopen(reading) as lines:
            # Every fifth round kills only after a save returned, so that the rounds record
            # saves on a machine of any speed; the others kill at any instant.
            first = lines.readline() if round_number % 5 == 0 else ""
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(child, signal.SIGKILL)
            _, status = os.waitpid(child, 0)
            assert os.WIFSIGNALED(status), f"writer of round {round_number} ended by itself"
            saved.append([line.split() for line in (first + lines.read()).splitlines()])
    print(json.dumps(saved))


def write(store_path: str, prefix: str, count: int) -> None:
    index_module.COMPACT_AFTER = SMALL_COMPACTION  # type: ignore[misc]  # compact often
    store = Store(store_path)
    for number in range(count):
        print(save(store, f"{prefix}-{number}"), flush=True)


def read(store_path: str, stop: str) -> None:
    store = Store(store_path)
    seen: dict[str, str] = {}
    polls = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not os.path.exists(stop):
        events = store.index.read(lambda view: view.table("set"))
        seqs = events["seq"].to_pylist()
        assert seqs == list(range(1, len(seqs) + 1)), f"not whole: commits {seqs[-5:]}"
        names = dict(zip(events["name"].to_pylist(), events["hash"].to_pylist(), strict=True))
        lost = {name: hash_hex for name, hash_hex in seen.items() if names.get(name) != hash_hex}
        assert not lost, f"events seen before are gone or changed: {lost}"
        seen = names
        for hash_hex in events["hash"].to_pylist()[-3:]:
            assert store.get(hash_hex).hash == hash_hex
        polls += 1
    print(polls)


def torn(store_path: str) -> None:
    store = Store(store_path)
    root = str(store.root)
    original_link, original_rename = os.link, os.rename
    original_write_all = local._write_all

    def unsupported(call: Any) -> Any:
        def refuse(source: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if str(target).startswith(root):
                raise OSError(errno.ENOTSUP, "Operation not supported", str(target))
            return call(source, target, *args, **kwargs)
        return refuse

    def half_then_stop(descriptor: int, data: memoryview) -> None:
        path = os.readlink(f"/proc/self/fd/{descriptor}")
        if "/index/journal/" in path and local.TEMPORARY_PREFIX not in path:
            original_write_all(descriptor, data[:len(data) // 2])
            print("torn", flush=True)
            time.sleep(120)
        original_write_all(descriptor, data)

    os.link = unsupported(original_link)  # type: ignore[assignment]  # no links
    os.rename = unsupported(original_rename)  # type: ignore[assignment]  # nor renames
    local._write_all = half_then_stop  # type: ignore[assignment]  # a torn write
    save(store, "torn")


def main() -> None:
    mode, store_path = sys.argv[1], sys.argv[2]
    if mode == "kill":
        kill_rounds(store_path, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "write":
        write(store_path, sys.argv[3], int(sys.argv[4]))
    elif mode == "read":
        read(store_path, sys.argv[3])
    elif mode == "torn":
        torn(store_path)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
