"""Union of 500 stored sets of 30,000 members each, next to brute force in the same run.

Run by hand: ``python benchmarks/bench_union.py [--sets 500] [--size 30000] [--repeat 5]``.
Each set is a random 30,000 of the 67,654 Ensembl ids of the GRCh38 and mm10 references.

* brute force: read each set's manifest (verified, as ``Store.get`` does) and merge the
  members in a Python set, then build the FeatureSet;
* in memory: the same Python-set union with every set already loaded (the floor for any
  approach that materialises each set's members);
* fsstore: ``Store.union`` through the member index, warm (packs already mapped) and cold
  (the process cache dropped, so packs are mapped and checksummed again).
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

from common import bulk_save, gene_universe, report, timed

from fsstore import FeatureSet, Store
from fsstore.members import cache as member_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=500)
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    universe = gene_universe()
    rng = random.Random(7)
    members = [rng.sample(universe, arguments.size) for _ in range(arguments.sets)]
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-"))
    try:
        store = Store.init(workdir / "store")
        started = time.perf_counter()
        hashes = bulk_save(store, members)
        print(f"setup: {arguments.sets} sets of {arguments.size:,} stored and indexed in "
              f"{time.perf_counter() - started:.1f} s")
        loaded = [set(group) for group in members]
        expected = set().union(*loaded)

        def brute_force() -> None:
            union: set[str] = set()
            for hash_hex in hashes:
                union.update(store.get(hash_hex).member_names)
            assert len(FeatureSet.from_values(sorted(union), field="Gene.ensembl_gene_id")) \
                == len(expected)

        def in_memory() -> None:
            union = set().union(*loaded)
            assert len(FeatureSet.from_values(sorted(union), field="Gene.ensembl_gene_id")) \
                == len(expected)

        def fsstore_union() -> None:
            assert store.union(hashes).n == len(expected)

        def drop_cache() -> None:
            member_cache._CACHES.clear()

        fsstore_union()  # map the packs once
        rows = [
            ("brute force (read manifests)", timed(brute_force, max(1, arguments.repeat // 2))),
            ("in memory (Python sets)", timed(in_memory, arguments.repeat)),
            ("fsstore union, warm", timed(fsstore_union, arguments.repeat)),
            ("fsstore union, cold", timed(fsstore_union, arguments.repeat, setup=drop_cache)),
        ]
    finally:
        shutil.rmtree(workdir)
    print(f"union of {arguments.sets} sets x {arguments.size:,} members = "
          f"{len(expected):,} distinct members")
    report(rows, baseline="brute force (read manifests)")


if __name__ == "__main__":
    main()
