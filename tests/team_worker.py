"""One teammate's fsstore process, for the shared-store test: ``team_worker.py STORE ACTION``.

Actions: ``init``; ``save NAME MEMBER...``; ``read NAME`` (prints the members); ``gc``
(prints what it removed, grace 0); ``verify`` (prints the problems found); ``churn N`` (saves
N sets, enough for compactions and merges). Prints JSON.
"""

from __future__ import annotations

import json
import sys

from fsstore import FeatureSet, Store
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.verify import verify


def main() -> None:
    location, action, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
    if action == "init":
        print(json.dumps(Store.init(location, shared=True).config))
        return
    store = Store(location)
    if action == "save":
        saved = store.save(FeatureSet.from_values(arguments[1:], field="Gene.symbol",
                                                  name=arguments[0]))
        print(json.dumps(saved.hash))
    elif action == "read":
        print(json.dumps(sorted(store.get(arguments[0]).members["name"])))
    elif action == "gc":
        print(json.dumps([key for key, _, _ in collect_garbage(store, grace=0).removed]))
    elif action == "verify":
        print(json.dumps([finding.as_dict() for finding in verify(store).errors]))
    elif action == "churn":
        for number in range(int(arguments[0])):
            store.save(FeatureSet.from_values([f"{arguments[1]}{number}"],
                                              field="Gene.symbol"))
        print(json.dumps(number))


if __name__ == "__main__":
    main()
