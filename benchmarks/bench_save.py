"""Save a new 36,601-member set, save it again, read it back; hashing alone is the baseline.

Run by hand: ``python benchmarks/bench_save.py [--repeat N]``. Uses the Cell Ranger
GRCh38-2020-A gene ids from ../shared/data (random ids of the same shape if absent).
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GRCH38, report, timed

from fsstore import FeatureSet, Store


def gene_ids() -> list[str]:
    if GRCH38.exists():
        lines = gzip.decompress(GRCH38.read_bytes()).decode().splitlines()
        return [line.split("\t")[0] for line in lines]
    print(f"note: {GRCH38} is absent; using random ids of the same shape")
    rng = random.Random(1)
    return [f"ENSG{rng.randrange(10**11):011d}" for _ in range(36601)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    arguments = parser.parse_args()
    ids = gene_ids()
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-"))
    stores = iter(range(10**6))
    state: dict[str, Store] = {}

    def build() -> FeatureSet:
        return FeatureSet.from_values(ids, field="Gene.ensembl_gene_id", name="GRCh38-2020-A")

    def fresh_store() -> None:
        state["store"] = Store.init(workdir / f"s{next(stores)}")

    def hash_only() -> None:
        assert build().hash

    def save_new() -> None:
        assert state["store"].put(build()).created

    def save_again() -> None:
        assert not state["store"].put(build()).created

    def read_back() -> None:
        assert state["store"].get("GRCh38-2020-A").n == len(set(ids))

    try:
        rows = [
            ("hash only (build + BLAKE3)", timed(hash_only, arguments.repeat)),
            ("save new set", timed(save_new, arguments.repeat, setup=fresh_store)),
            ("save again (dedup)", timed(save_again, arguments.repeat)),
            ("read back (verified)", timed(read_back, arguments.repeat)),
        ]
    finally:
        shutil.rmtree(workdir)
    print(f"{len(ids):,} members, {arguments.repeat} runs each")
    report(rows, baseline="hash only (build + BLAKE3)")


if __name__ == "__main__":
    main()
