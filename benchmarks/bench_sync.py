"""Push to an S3-protocol server on loopback: 1,000 small sets, and the 36,601-gene reference.

Run by hand: ``python benchmarks/bench_sync.py [--sets 1000] [--repeat 3]``. Starts a moto
S3 server on 127.0.0.1 (``tests/s3server.py``; needs the test extra). For each store it
times a first push into a fresh prefix, a second push that has nothing to do, and a pull
into an empty local store, and prints objects and bytes transferred. The baseline, measured
in the same run, is a bare upload of the same objects with obstore (same server, same
threads): no listing, no verification, no index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_save import gene_ids

from fsstore import FeatureSet, Store
from fsstore.backend import open_backend
from fsstore.sync import pull, push
from fsstore.sync.objects import plan_transfer
from tests import s3server


def small_store(folder: Path, count: int) -> Store:
    store = Store.init(folder)
    for number in range(count):
        members = [f"GENE{number}-{k}" for k in range(5)]
        store.save(FeatureSet.from_values(members, field="Gene.symbol", name=f"panel-{number}"))
    return store


def reference_store(folder: Path) -> Store:
    store = Store.init(folder)
    store.save(FeatureSet.from_values(gene_ids(), field="Gene.ensembl_gene_id",
                                      name="GRCh38-2020-A"))
    return store


def bare_upload(store: Store, url: str) -> None:
    """The baseline: put every object's bytes under a fresh prefix, nothing else."""
    import obstore

    target = open_backend(url)
    entries = list(store.backend.list("objects"))

    def put(key: str) -> None:
        source = Path(store.backend.local_path(key) or "")
        client = target._store  # type: ignore[attr-defined]  # the backend's obstore client
        obstore.put(client, key, source, mode="create", use_multipart=False)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [entry.key for entry in entries]))


def measure(title: str, slug: str, store: Store, repeat: int, workdir: Path) -> list[str]:
    rows = []
    bare, first, again, pulled = [], [], [], []
    objects = size = commits = 0
    for turn in range(repeat):
        prefix = f"s3://{s3server.BUCKET}/{slug}-{turn}-{os.urandom(3).hex()}"
        start = time.perf_counter()
        bare_upload(store, prefix + "-bare")
        bare.append(time.perf_counter() - start)

        start = time.perf_counter()
        report = push(store, prefix)
        first.append(time.perf_counter() - start)
        objects, size, commits = (len(report.objects.copied), report.objects.size,
                                  report.history.commits)

        start = time.perf_counter()
        second = push(store, prefix)
        again.append(time.perf_counter() - start)
        assert not second.objects.copied
        assert not second.history.commits

        target = Store.init(workdir / f"{slug}-pulled-{turn}")
        start = time.perf_counter()
        pull(target, prefix)
        pulled.append(time.perf_counter() - start)
        assert not plan_transfer(store.backend, target.backend).missing
    base = statistics.median(bare)
    for what, seconds, moved in (
            ("bare obstore upload (baseline)", bare, f"{objects:,} objects, {size:,} bytes"),
            ("push into an empty prefix", first,
             f"{objects:,} objects, {size:,} bytes, {commits:,} commits"),
            ("second push (nothing to do)", again, "0 objects, 0 bytes, 0 commits"),
            ("pull into an empty store", pulled, f"{objects:,} objects, {size:,} bytes")):
        median = statistics.median(seconds)
        rows.append(f"{title:<20}{what:<32}{median:>10.3f}{median / base:>8.2f}  {moved}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    server, endpoint = s3server.start()
    os.environ.update(s3server.CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-sync-"))
    try:
        stores = [(f"{arguments.sets:,} small sets", "small",
                   small_store(workdir / "small", arguments.sets)),
                  ("GRCh38 reference", "grch38", reference_store(workdir / "reference"))]
        print(f"S3 server: moto on {endpoint}; medians of {arguments.repeat} runs; "
              "ratio = median / the same store's bare upload")
        print(f"{'store':<20}{'operation':<32}{'median s':>10}{'ratio':>8}  transferred")
        for title, slug, store in stores:
            for row in measure(title, slug, store, arguments.repeat, workdir):
                print(row)
    finally:
        s3server.stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
