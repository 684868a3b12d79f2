"""verify throughput in MB/s, next to raw BLAKE3 over the same files measured in this run.

Run by hand: ``python benchmarks/bench_verify.py [--sets 150] [--repeat 3]``. The store holds
the Cell Ranger GRCh38 and mm10 gene references from ../shared/data and ``--sets`` sets
drawn from them (random subsets of 20-100% of the genes; random ids of the same shape if
the files are absent), so manifests are the size real ones are.
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from blake3 import blake3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, GRCH38

from fsstore import FeatureSet, Store
from fsstore.integrity.verify import verify
from fsstore.manifest import decode_manifest

MM10 = DATA / "genes" / "tenx" / "BaderLab_scRNAseqWorkflow_mm10_features.tsv.gz"


def gene_ids(path: Path, prefix: str) -> list[str]:
    if path.exists():
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        return [line.split("\t")[0] for line in lines]
    print(f"note: {path} is absent; using random ids of the same shape")
    rng = random.Random(len(prefix))
    return [f"{prefix}{rng.randrange(10**11):011d}" for _ in range(30_000)]


def build(root: Path, count: int) -> Store:
    store = Store.init(root)
    references = [gene_ids(GRCH38, "ENSG"), gene_ids(MM10, "ENSMUSG")]
    for ids in references:
        store.save(FeatureSet.from_values(ids, field="Gene.ensembl_gene_id"))
    rng = random.Random(7)
    for number in range(count):
        ids = references[number % 2]
        members = rng.sample(ids, int(len(ids) * rng.uniform(0.2, 1.0)))
        store.save(FeatureSet.from_values(members, field="Gene.ensembl_gene_id",
                                          name=f"subset-{number}"))
    return store


def median_seconds(function, repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-verify-"))
    try:
        start = time.perf_counter()
        store = build(workdir / "store", arguments.sets)
        assert store.root is not None
        files = sorted((store.root / "objects").rglob("*.parquet"))
        contents = [path.read_bytes() for path in files]
        total = sum(len(data) for data in contents)
        print(f"built {len(files)} manifests ({total / 1e6:.1f} MB) in "
              f"{time.perf_counter() - start:.0f}s")

        def blake3_in_memory() -> None:
            for data in contents:
                blake3(data).digest()

        def blake3_files() -> None:
            for path in files:
                blake3(path.read_bytes()).digest()

        def read_path() -> None:
            for path, data in zip(files, contents, strict=True):
                decode_manifest(data, path.stem, str(path))

        report = verify(store, workers=1)
        assert report.ok, report.findings
        verified = report.bytes
        rows = [
            ("BLAKE3 of the bytes, in memory", total, median_seconds(blake3_in_memory,
                                                                     arguments.repeat)),
            ("BLAKE3 of the files (read + hash)", total, median_seconds(blake3_files,
                                                                        arguments.repeat)),
            ("verify, 1 thread", verified, median_seconds(
                lambda: verify(store, workers=1), arguments.repeat)),
            ("verify, default threads", verified, median_seconds(
                lambda: verify(store), arguments.repeat)),
            ("verify --quick (seals), 1 thread", verified, median_seconds(
                lambda: verify(store, workers=1, quick=True), arguments.repeat)),
            ("verify --quick (seals), default threads", verified, median_seconds(
                lambda: verify(store, quick=True), arguments.repeat)),
            ("read path (decode_manifest, members as Python)", total,
             median_seconds(read_path, max(1, arguments.repeat - 2))),
        ]
        base = rows[0][1] / rows[0][2]
        print(f"{'operation':<48}{'MB':>8}{'median s':>10}{'MB/s':>9}{'vs BLAKE3':>11}")
        for label, size, seconds in rows:
            speed = size / seconds
            print(f"{label:<48}{size / 1e6:>8.1f}{seconds:>10.3f}{speed / 1e6:>9.0f}"
                  f"{speed / base:>11.2f}")
        print(f"(verify reads the index too: {verified / 1e6:.1f} MB in all)")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
