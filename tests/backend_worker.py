"""A process working on a backend, for the conformance suite's races.

``python tests/backend_worker.py create LOCATION KEY VALUE`` creates KEY holding VALUE and
prints ``won`` or ``lost``. ``python tests/backend_worker.py increment LOCATION KEY N`` adds
one to the JSON counter at KEY, N times, through ``Backend.update``. LOCATION is a folder or
an object-store URL (credentials and endpoint from the environment). Once the backend is
open, the worker prints ``ready`` and waits for a line on its standard input, so that the
parent can release all workers at once (``tests/barrier.py``) and they really race.
"""

from __future__ import annotations

import json
import sys

from fsstore.backend import open_backend


def main() -> None:
    command, location, key = sys.argv[1:4]
    backend = open_backend(location)
    print("ready", flush=True)  # the barrier: act only when every worker is ready
    sys.stdin.readline()
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
