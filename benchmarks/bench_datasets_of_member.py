"""Datasets measuring a member, across 100,000 dataset links, next to brute force.

Run by hand: ``python benchmarks/bench_datasets_of_member.py [--datasets 100000]``.

The store holds 1,000 gene sets (20 to 3,000 random ids of the GRCh38 and mm10 references)
and 100,000 datasets, each with a ``var`` slot linked to one of them (popular sets more
often, as references are), committed 1,000 datasets per commit and then compacted into the
index's sorted runs (as writers do every 64 commits). Two members are asked about: one
held by a few sets (fsstore looks their links up set by set) and one held by many
(fsstore scans the links once).

Brute force scans every link, keeps the current ones, and tests each linked set for the
member with every set already in memory as a Python set; a second baseline reads the
linked sets' manifests instead, as a fresh process without the member index must.
fsstore answers with ``Store.datasets_of(member=...)``, which also
returns each dataset's name and path.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from blake3 import blake3
from common import bulk_save, gene_universe, report, timed

from fsstore import Store
from fsstore.links import current_links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=7)
    arguments = parser.parse_args()
    rng = random.Random(5)
    universe = gene_universe()
    groups = [rng.sample(universe, rng.randint(20, 3_000)) for _ in range(arguments.sets)]
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-"))
    try:
        store = Store.init(workdir / "store")
        started = time.perf_counter()
        hashes = bulk_save(store, groups)
        weights = [1.0 / (rank + 1) for rank in range(len(hashes))]
        batch = []
        for number in range(arguments.datasets):
            digest = blake3(b"dataset %d" % number).hexdigest()
            held = rng.choices(hashes, weights)[0]
            batch += [{"kind": "dataset", "dataset": digest, "size": 1000 + number,
                       "format": "h5ad", "path": f"/data/run{number:06d}.h5ad", "name": None,
                       "copied": False},
                      {"kind": "link", "dataset": digest, "slot": "var", "hash": held,
                       "linked": True}]
            if len(batch) == 2_000:
                events, batch = batch, []
                store.index.commit(lambda view, events=events: events)
        if batch:
            store.index.commit(lambda view: batch)
        # What writers do every 64 commits, done for the tail too: every event in sorted runs.
        store.index.compact()
        print(f"setup: {len(hashes):,} sets and {arguments.datasets:,} linked datasets in "
              f"{time.perf_counter() - started:.1f} s")
        loaded = {hash_hex: set(group) for hash_hex, group in zip(hashes, groups, strict=True)}
        holders: dict[str, int] = {}
        for members in loaded.values():
            for member in members:
                holders[member] = holders.get(member, 0) + 1
        rare = min((member for member in holders if 2 <= holders[member] <= 4), key=str)
        common = max(holders, key=lambda member: (holders[member], member))

        def brute_force(member: str) -> set[tuple[str, str]]:
            links = store.index.read(current_links)
            return {(dataset, slot) for dataset, slot, hash_hex in links.itertuples(index=False)
                    if member in loaded[hash_hex]}

        def from_manifests(member: str) -> set[tuple[str, str]]:
            # What a fresh process without the member index must do: read the linked sets.
            links = store.index.read(current_links)
            holding = {hash_hex for hash_hex in set(links["hash"])
                       if member in store.get(hash_hex).member_names}
            return {(dataset, slot) for dataset, slot, hash_hex in links.itertuples(index=False)
                    if hash_hex in holding}

        def ours(member: str) -> set[tuple[str, str]]:
            found = store.datasets_of(member=member)
            return set(zip(found["dataset"], found["slot"], strict=True))

        rows = []
        for label, member in ((f"member in {holders[rare]} sets", rare),
                              (f"member in {holders[common]} sets", common)):
            expected = brute_force(member)
            assert ours(member) == expected
            print(f"{label} ({member}): {len(expected):,} datasets, the same as brute force")
            rows += [(f"brute force: {label}", timed(lambda m=member: brute_force(m),
                                                     arguments.repeat)),
                     (f"fsstore: {label}", timed(lambda m=member: ours(m), arguments.repeat))]
        rows.append(("brute force, reading manifests", timed(lambda: from_manifests(rare), 2)))
    finally:
        shutil.rmtree(workdir)
    report(rows, baseline=rows[0][0])


if __name__ == "__main__":
    main()
