"""A lock-holding process for lock tests.

``python tests/lock_holder.py LOCK hold [noflock]`` takes the lock, prints ``held`` and
sleeps until killed. ``python tests/lock_holder.py LOCK count FILE N [noflock]`` adds 1 to
the number in FILE, N times, each time under the lock. ``noflock`` makes ``flock`` fail with
ENOLCK, as on NFS without a lock daemon, so that only the holder marker excludes.
"""

from __future__ import annotations

import errno
import fcntl
import sys
import time
from pathlib import Path

from fsstore.lock import StoreLock


def no_flock(*args: object) -> None:
    raise OSError(errno.ENOLCK, "No locks available")


def main() -> None:
    lock_path, action = Path(sys.argv[1]), sys.argv[2]
    if "noflock" in sys.argv[3:]:
        fcntl.flock = no_flock  # type: ignore[assignment]  # a mount without flock
    lock = StoreLock(lock_path, timeout=60)
    if action == "hold":
        lock.acquire()
        print("held", flush=True)
        time.sleep(120)
        return
    counter, times = Path(sys.argv[3]), int(sys.argv[4])
    for _ in range(times):
        with lock:
            value = int(counter.read_text() or "0")
            counter.write_text(str(value + 1))


if __name__ == "__main__":
    main()
