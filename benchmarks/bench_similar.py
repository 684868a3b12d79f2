"""Similarity queries over 10,000 stored sets, next to brute force in the same run.

Run by hand: ``python benchmarks/bench_similar.py [--sets 10000] [--repeat 7]``.

The store holds the real GRCh38-2020-A and mm10 references plus random sets of their ids,
sized like a lab's sets: 90% from 10 to 500 members (panels, marker lists, table columns),
9% from 500 to 5,000, 1% from 10,000 to 36,000 (references). Queries:

* 1,000 ids, half from each reference, ``min_jaccard=0.01`` (finds both references);
* a stored 2,000-member set's members, ``min_containment=0.5``.

Brute force holds every set in memory as a Python set and intersects the query with each
one (the fastest plain approach; reading 10,000 manifests per query would take minutes).
fsstore is timed end to end (``Store.similar``: index view, member index, names), warm,
and cold (process cache dropped: packs mapped and checksummed again).
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GRCH38, MM10, bulk_save, gene_universe, report, timed

from fsstore import Store
from fsstore import members as member_index
from fsstore.members import cache as member_cache


def sizes(count: int, rng: random.Random) -> list[int]:
    def log_uniform(low: int, high: int) -> int:
        return round(math.exp(rng.uniform(math.log(low), math.log(high))))

    drawn = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.90:
            drawn.append(log_uniform(10, 500))
        elif kind < 0.99:
            drawn.append(log_uniform(500, 5_000))
        else:
            drawn.append(log_uniform(10_000, 36_000))
    return drawn


def reference(path: Path) -> list[str]:
    return [line.split("\t")[0] for line in gzip.decompress(path.read_bytes()).decode()
            .splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    arguments = parser.parse_args()
    rng = random.Random(3)
    universe = gene_universe()
    groups = [rng.sample(universe, size) for size in sizes(arguments.sets - 2, rng)]
    human = reference(GRCH38) if GRCH38.exists() else universe[:36601]
    mouse = reference(MM10) if MM10.exists() else universe[36601:]
    groups += [human, mouse]
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-"))
    try:
        store = Store.init(workdir / "store")
        started = time.perf_counter()
        hashes = bulk_save(store, groups)
        postings = sum(len(set(group)) for group in groups)
        print(f"setup: {len(hashes):,} sets, {postings:,} members in all, stored and indexed "
              f"in {time.perf_counter() - started:.1f} s")
        loaded = {hash_hex: set(group) for hash_hex, group in zip(hashes, groups, strict=True)}
        mixed = rng.sample(sorted(set(human)), 500) + rng.sample(sorted(set(mouse)), 500)
        panel_hash = next(h for h, members in loaded.items() if 1_500 < len(members) < 2_500)
        panel = sorted(loaded[panel_hash])

        def brute_force(query: list[str], jaccard: float | None,
                        containment: float | None) -> list[tuple[float, str]]:
            wanted = set(query)
            found = []
            for hash_hex, members in loaded.items():
                shared = len(wanted & members)
                if not shared:
                    continue
                score_j = shared / (len(wanted) + len(members) - shared)
                score_c = shared / len(wanted)
                if (jaccard is None or score_j >= jaccard) and \
                        (containment is None or score_c >= containment):
                    found.append((score_j if jaccard is not None else score_c, hash_hex))
            return sorted(found, key=lambda item: (-item[0], item[1]))

        def ours(query: list[str], jaccard: float | None,
                 containment: float | None) -> list[tuple[float, str]]:
            frame = store.similar(query, min_jaccard=jaccard, min_containment=containment)
            column = "jaccard" if jaccard is not None else "containment"
            return list(zip(frame[column].tolist(), frame["hash"].tolist(), strict=True))

        def drop_cache() -> None:
            member_cache._CACHES.clear()

        cases = [("1,000 ids, J >= 0.01", mixed, 0.01, None),
                 ("2,000-member set, C >= 0.5", panel, None, 0.5)]
        rows = []
        for label, query, jaccard, containment in cases:
            expected = brute_force(query, jaccard, containment)
            assert ours(query, jaccard, containment) == expected, label
            print(f"{label}: {len(expected)} sets found, the same as brute force; best "
                  f"{expected[0][0]:.4f}")
            rows += [
                (f"brute force: {label}",
                 timed(lambda q=query, j=jaccard, c=containment: brute_force(q, j, c),
                       arguments.repeat)),
                (f"fsstore warm: {label}",
                 timed(lambda q=query, j=jaccard, c=containment: ours(q, j, c),
                       arguments.repeat)),
                (f"fsstore cold: {label}",
                 timed(lambda q=query, j=jaccard, c=containment: ours(q, j, c),
                       arguments.repeat, setup=drop_cache)),
            ]
        snapshot = member_index.snapshot(store)
        rows.append(("index only (overlaps), 1,000 ids",
                     timed(lambda: snapshot.overlaps(mixed), arguments.repeat)))
    finally:
        shutil.rmtree(workdir)
    report(rows, baseline="brute force: 1,000 ids, J >= 0.01")


if __name__ == "__main__":
    main()
