"""A process working on a backend, for the conformance suite's races.

``python tests/backend_worker.py create LOCATION KEY VALUE`` creates KEY holding VALUE and
prints ``won`` or ``lost``. ``python tests/backend_worker.py increment LOCATION KEY N`` adds
one to the JSON counter at KEY, N times, through ``Backend.update``. LOCATION is a folder or
an object-store URL (credentials and endpoint from the environment). If START_AT is set
in the environment (seconds since the epoch), the worker waits until then, so that workers
started one after another really race.
"""

from __future__ import annotations

import json
import os
import sys
import time

from fsstore.backend import open_backend


def main() -> None:
    command, location, key = sys.argv[1:4]
    backend = open_backend(location)
    time.sleep(max(0.0, float(os.environ.get("START_AT", "0")) - time.time()))
    if command == "create":
        print("won" if backend.create(key, sys.argv[4].encode()) else "lost", flush=True)
    elif command == "increment":
        for _ in range(int(sys.argv[4])):
            backend.update(key, lambda current: json.dumps(
                {"count": (json.loads(current)["count"] if current else 0) + 1}).encode())
        print("done", flush=True)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
