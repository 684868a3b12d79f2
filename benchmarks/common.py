"""Helpers shared by the benchmark scripts: timing with medians, real input files."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FSSTORE_TEST_DATA", REPOSITORY.parent / "shared" / "data"))
"""The real input files, as for the tests: ../shared/data, or FSSTORE_TEST_DATA."""
GRCH38 = DATA / "genes" / "tenx" / "jeong2624_scRNA-seq-project_GRCh38-2020-A_features.tsv.gz"


def timed(function: Callable[[], object], repeat: int,
          setup: Callable[[], object] | None = None) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls, each after an untimed ``setup``."""
    seconds = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def p95_ms(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def report(rows: list[tuple[str, list[float]]], baseline: str) -> None:
    """Print median, p95 and the ratio of each median to the baseline's median."""
    base = median_ms(dict(rows)[baseline])
    print(f"baseline: {baseline}")
    print(f"{'operation':<36}{'median ms':>11}{'p95 ms':>10}{'ratio':>9}")
    for label, seconds in rows:
        print(f"{label:<36}{median_ms(seconds):>11.2f}{p95_ms(seconds):>10.2f}"
              f"{median_ms(seconds) / base:>9.2f}")


MM10 = DATA / "genes" / "tenx" / "BaderLab_scRNAseqWorkflow_mm10_features.tsv.gz"


def gene_universe() -> list[str]:
    """The Ensembl ids of the Cell Ranger GRCh38 and mm10 references (67,654 ids), or random
    ids of the same shape when the data folder is absent."""
    import gzip
    import random

    if GRCH38.exists() and MM10.exists():
        ids: list[str] = []
        for path in (GRCH38, MM10):
            ids += [line.split("\t")[0]
                    for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
        return sorted(set(ids))
    print(f"note: {GRCH38.parent} is absent; using random ids of the same shape")
    rng = random.Random(1)
    return sorted({f"ENSG{rng.randrange(10**11):011d}" for _ in range(67654)})


def bulk_save(store, members_of_sets, itype: str = "Gene.ensembl_gene_id",
              per_commit: int = 250) -> list[str]:
    """Store many unnamed sets fast: manifests written directly, ``set`` events committed
    ``per_commit`` at a time (the same files and events that ``Store.save`` writes, without
    one commit per set), compacted into runs, then the member index built once. Returns the
    hashes in order."""
    from fsstore import FeatureSet, Provenance
    from fsstore.index.events import now
    from fsstore.manifest import encode_manifest, manifest_key
    from fsstore.members import rebuild

    hashes: list[str] = []
    events = []
    for members in members_of_sets:
        feature_set = FeatureSet.from_values(members, field=itype)
        key = manifest_key(feature_set.hash)
        if not store.backend.exists(key):
            data = encode_manifest(feature_set.canonical, Provenance(now(), store.user))
            store.backend.create(key, data)
        hashes.append(feature_set.hash)
        events.append({"kind": "set", "hash": feature_set.hash, "itype": itype,
                       "dtype": None, "ordered": False, "n": feature_set.n, "name": None,
                       "description": None})
        if len(events) == per_commit:
            batch, events = events, []
            store.index.commit(lambda view, batch=batch: batch)
    if events:
        store.index.commit(lambda view: events)
    store.index.compact()  # as writers do every 64 commits: the events in sorted runs
    rebuild(store)
    return hashes
