"""The index at scale: save cost with 1k, 100k and 1M entries, name lookups, memory.

Run by hand: ``python benchmarks/bench_index.py [--sizes 1000 100000 1000000] [--saves 60]``.

Each store is built quickly but through the real formats: the events of N earlier saves
(one ``set`` event per commit, every one named) are written as the runs a real history of N
commits leaves behind (the same compaction size and merge rule), plus the journal commits
not yet compacted. Then real saves are timed, taking turns between the stores so that load
from other processes on the machine affects them alike; ratios are against the smallest.
Lookups and memory are measured in fresh processes.
"""

from __future__ import annotations

import argparse
import binascii
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_ms, p95_ms

import fsstore.members
from fsstore import FeatureSet, Store
from fsstore.index.events import KINDS
from fsstore.index.index import COMPACT_AFTER, MERGE_FACTOR
from fsstore.index.journal import commit_key, encode_commit
from fsstore.index.runs import write_run


# The synthetic histories below have no manifests, so the member index (built from the
# manifests) cannot be kept for them: its upkeep is left out of these saves. Its cost, one
# pack every 64 saves, is measured by bench_similar.py and bench_union.py.
def _no_member_index(store: object, head: int, force: bool = False) -> None:
    return None


fsstore.members.keep_current_quietly = _no_member_index  # type: ignore[assignment]  # see above

ITYPES = ["Gene.ensembl_gene_id", "Gene.symbol", "Feature.name", "Protein.uniprot_id"]


def run_sizes(commits: int) -> list[int]:
    """The run sizes (oldest first) that ``commits`` one-event commits leave behind."""
    chain: list[int] = []
    for _ in range(commits // COMPACT_AFTER):
        chain.append(COMPACT_AFTER)
        while len(chain) >= 2 and chain[-2] <= MERGE_FACTOR * chain[-1]:
            chain[-2:] = [chain[-2] + chain[-1]]
    return chain


def synthetic_events(store: Store, count: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    hashes = [binascii.hexlify(value).decode()
              for value in np.frombuffer(rng.bytes(32 * count), dtype="S32")]
    seq = np.arange(1, count + 1, dtype=np.int64)
    start = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)
    itypes = np.array(ITYPES)[rng.integers(0, len(ITYPES), count)]
    return pa.table({
        "seq": seq,
        "pos": np.zeros(count, np.int32),
        "time": pa.array(start + seq * 1_000_000, pa.timestamp("us", tz="UTC")),
        "user": pa.array(np.array(["ana", "ben", "chen"])[seq % 3]),
        "origin": pa.array([store.store_id] * count),
        "oseq": seq,
        "hash": pa.array(hashes),
        "itype": pa.array(itypes),
        "dtype": pa.nulls(count, pa.string()),
        "ordered": np.zeros(count, bool),
        "n": rng.integers(1, 40_000, count),
        "name": pa.array([f"set-{number:07d}" for number in range(count)]),
        "description": pa.nulls(count, pa.string()),
    }, schema=KINDS["set"].schema)


def build_store(root: Path, count: int) -> Store:
    """A store whose index holds ``count`` earlier saves, in runs and journal commits."""
    store = Store.init(root)
    events = synthetic_events(store, count, seed=count)
    first = 1
    for size in run_sizes(count):
        write_run(store.backend, first, first + size - 1,
                  {"set": events.slice(first - 1, size)})
        first += size
    for row in events.slice(first - 1).to_pylist():
        row["time"] = row["time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        store.backend.create(commit_key(row["seq"]),
                             encode_commit(row["seq"], [{"kind": "set", **row}]))
    return store


def time_saves(stores: dict[int, Store], saves: int) -> dict[int, list[float]]:
    seconds: dict[int, list[float]] = {size: [] for size in stores}
    for round_number in range(saves):
        for size, store in stores.items():
            feature_set = FeatureSet.from_values(
                [f"BENCH{round_number}", f"SIZE{size}"], field="Gene.symbol",
                name=f"bench-{round_number}")
            start = time.perf_counter()
            store.save(feature_set)
            seconds[size].append(time.perf_counter() - start)
    return seconds


_PEAK = """
def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_LOOKUP = _PEAK + """
import json, random, sys, time
start = time.perf_counter()
from fsstore import Store
imported = time.perf_counter()
store = Store(sys.argv[1])
first = store.resolve(sys.argv[2])
cold = time.perf_counter()
names = [f"set-{n:07d}" for n in random.Random(1).sample(range(int(sys.argv[3])), 200)]
warming = time.perf_counter()
for name in names:
    store.resolve(name)
warmed = time.perf_counter()
again = []
for name in names:
    moment = time.perf_counter()
    store.resolve(name)
    again.append(time.perf_counter() - moment)
print(json.dumps({"import": imported - start, "cold": cold - imported,
                  "first_reads": (warmed - warming) / len(names),
                  "warm": sorted(again)[len(again) // 2],
                  "rss_mb": peak_mb()}))
"""

_LOAD = _PEAK + """
import json, sys
import pyarrow as pa
from fsstore import Store
store = Store(sys.argv[1])
view = store.index.view()
before = peak_mb()
table = view.table("set")
after = peak_mb()
print(json.dumps({"rows": table.num_rows, "result_mb": table.nbytes / 2**20,
                  "baseline_mb": before, "peak_mb": after,
                  "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20}))
"""


def in_new_process(script: str, *arguments: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True,
                          text=True, check=True, timeout=600)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--saves", type=int, default=60)
    parser.add_argument("--keep", metavar="FOLDER",
                        help="Build the stores in FOLDER and keep them (reused if there).")
    arguments = parser.parse_args()
    workdir = Path(arguments.keep or tempfile.mkdtemp(prefix="fsstore-bench-index-"))
    try:
        stores = {}
        for size in sorted(arguments.sizes):
            start = time.perf_counter()
            if (workdir / f"s{size}" / "fsstore.json").exists():
                stores[size] = Store(workdir / f"s{size}")
                continue
            stores[size] = build_store(workdir / f"s{size}", size)
            print(f"built a store with {size:,} entries in {time.perf_counter() - start:.1f}s"
                  f" ({len(run_sizes(size))} runs, {size % COMPACT_AFTER} journal commits)")
        seconds = time_saves(stores, arguments.saves)
        base = min(stores)
        print(f"\nsave of a new named set, {arguments.saves} saves per store, taking turns; "
              f"baseline: {base:,} entries")
        print(f"{'entries':>10}{'median ms':>11}{'p95 ms':>9}{'mean ms':>9}{'ratio':>8}")
        for size, times in seconds.items():
            print(f"{size:>10,}{median_ms(times):>11.2f}{p95_ms(times):>9.2f}"
                  f"{statistics.mean(times) * 1000:>9.2f}"
                  f"{median_ms(times) / median_ms(seconds[base]):>8.2f}")
        largest = max(stores)
        print(f"\nname lookup at {largest:,} entries (fresh process; 200 random names)")
        lookup = in_new_process(_LOOKUP, str(stores[largest].root), "set-0000007",
                                str(largest))
        print(f"  import fsstore              {lookup['import'] * 1000:8.1f} ms")
        print(f"  first lookup (cold)         {lookup['cold'] * 1000:8.1f} ms")
        print(f"  lookup of a name not yet read {lookup['first_reads'] * 1000:6.2f} ms")
        print(f"  lookup again (warm, median) {lookup['warm'] * 1000:8.3f} ms")
        print(f"  process peak RSS            {lookup['rss_mb']:8.1f} MB")
        load = in_new_process(_LOAD, str(stores[largest].root))
        print(f"\nloading the whole index at {largest:,} entries (view.table('set'), "
              f"{load['rows']:,} rows, result {load['result_mb']:.0f} MB)")
        print(f"  RSS before {load['baseline_mb']:.0f} MB, peak {load['peak_mb']:.0f} MB: "
              f"loading added {load['peak_mb'] - load['baseline_mb']:.0f} MB "
              f"(Arrow allocator peak {load['arrow_peak_mb']:.0f} MB)")
    finally:
        if not arguments.keep:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
