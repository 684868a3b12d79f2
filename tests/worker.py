"""A writer process for concurrency tests: ``python tests/worker.py STORE PREFIX COUNT [nolock]
[pack-after=N]``.

Saves COUNT sets named PREFIX-0 .. PREFIX-(COUNT-1), each with one distinct member, and
prints the hash of each as soon as its save has returned. ``pack-after=N`` makes saves pack
the member index every N commits (instead of 64), so that packers meet often.
"""

from __future__ import annotations

import contextlib
import sys

from fsstore import FeatureSet, Store
from fsstore.backend.local import LocalBackend
from fsstore.members import upkeep as member_upkeep


def main() -> None:
    store_path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if "nolock" in sys.argv[4:]:
        # Simulate a file system whose locks silently do nothing (NFS without lockd).
        def no_lock(self: LocalBackend, name: str, timeout: float) -> object:
            return contextlib.nullcontext()

        LocalBackend.lock = no_lock  # type: ignore[method-assign,assignment]  # on purpose
    for option in sys.argv[4:]:
        if option.startswith("pack-after="):
            member_upkeep.PACK_AFTER = int(option.partition("=")[2])  # type: ignore[misc]  # often
    store = Store(store_path)
    for number in range(count):
        name = f"{prefix}-{number}"
        saved = store.save(FeatureSet.from_values([name], field="Gene.symbol", name=name))
        print(saved.hash, flush=True)


if __name__ == "__main__":
    main()
