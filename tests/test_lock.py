"""The store lock: timeouts name the holder, dead holders are recovered, others never are."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsstore import LockTimeoutError, Store
from fsstore.lock import StoreLock, break_lock, read_holder

HOLDER = Path(__file__).with_name("lock_holder.py")
DEADLINE = 60


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "index" / "lock"


def start_holder(lock_path: Path, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, str(HOLDER), str(lock_path), "hold", *extra],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def holder(lock_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = start_holder(lock_path)
    yield process
    process.kill()
    process.wait(DEADLINE)


def fake_marker(lock_path: Path, **fields: object) -> None:
    record = {"pid": 999_999, "host": socket.gethostname(), "since": time.time(),
              "token": "f" * 16}
    record.update(fields)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path.with_name("lock.holder").write_text(json.dumps(record))


def no_flock(*args: object) -> None:
    raise OSError(errno.ENOLCK, "No locks available")


def test_a_timeout_names_the_lock_file_the_holder_and_how_to_break_it(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockTimeoutError) as caught:
        StoreLock(lock_path, timeout=0.3, unlock_hint="fsstore unlock --store X").acquire()
    message = str(caught.value)
    assert f"store lock {lock_path}" in message
    assert f"pid {holder.pid} on host {socket.gethostname()} since " in message
    assert "run `fsstore unlock --store X`" in message
    assert caught.value.lock_path == str(lock_path)
    assert isinstance(caught.value, TimeoutError)


def test_a_store_lock_timeout_quotes_the_unlock_command_for_that_store(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "s")
    process = start_holder(store.root / "index" / "lock")
    try:
        with pytest.raises(LockTimeoutError, match=rf"fsstore unlock --store {store.root}`"), \
                store.backend.lock("index/lock", 0.2):
            pass
    finally:
        process.kill()
        process.wait(DEADLINE)


@pytest.mark.parametrize("mode", ["flock", "noflock"])
def test_the_lock_of_a_killed_holder_on_this_host_is_recovered(lock_path: Path, mode: str,
                                                               monkeypatch) -> None:
    process = start_holder(lock_path, mode)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(DEADLINE)
    assert read_holder(lock_path)["pid"] == process.pid  # the marker outlived its holder
    if mode == "noflock":
        monkeypatch.setattr("fsstore.lock.fcntl.flock", no_flock)
    with StoreLock(lock_path, timeout=10):
        assert read_holder(lock_path)["pid"] == os.getpid()
    assert read_holder(lock_path) is None


def test_a_live_holder_without_flock_still_excludes(lock_path: Path, monkeypatch) -> None:
    process = start_holder(lock_path, "noflock")
    try:
        monkeypatch.setattr("fsstore.lock.fcntl.flock", no_flock)
        with pytest.raises(LockTimeoutError, match=f"pid {process.pid}"):
            StoreLock(lock_path, timeout=0.3).acquire()
    finally:
        process.kill()
        process.wait(DEADLINE)


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "elsewhere.example.org", "since": time.time() - 30 * 86400},
        {"host": "elsewhere.example.org", "since": time.time() + 86400},
        {"machine": "another-boot/pid:[1]", "since": time.time() - 30 * 86400},
    ],
    ids=["other-host-old", "other-host-future", "same-name-other-machine"],
)
def test_a_marker_from_another_machine_is_never_broken_on_age(lock_path: Path,
                                                              fields: dict[str, object]) -> None:
    fake_marker(lock_path, **fields)
    with pytest.raises(LockTimeoutError) as caught:
        StoreLock(lock_path, timeout=0.3).acquire()
    assert "cannot tell from here whether that process still runs" in str(caught.value)
    assert "fsstore unlock" in str(caught.value)
    assert read_holder(lock_path) is not None


def test_a_marker_with_a_future_time_of_a_running_process_is_not_broken(
        lock_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fake_marker(lock_path, pid=sleeper.pid, since=time.time() + 86400)
        with pytest.raises(LockTimeoutError, match=f"pid {sleeper.pid}"):
            StoreLock(lock_path, timeout=0.3).acquire()
        assert read_holder(lock_path)["pid"] == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait(DEADLINE)


def test_a_reused_pid_does_not_keep_a_dead_holder_alive(lock_path: Path) -> None:
    # The marker names this very process but with another start time: its maker is gone.
    fake_marker(lock_path, pid=os.getpid(), started=1)
    with StoreLock(lock_path, timeout=5):
        assert read_holder(lock_path)["pid"] == os.getpid()


def test_a_running_holder_of_the_lock_file_is_never_broken(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    for force in (False, True):
        with pytest.raises(LockTimeoutError, match=f"holds the lock file.*kill {holder.pid}"):
            break_lock(lock_path, force=force)
    assert read_holder(lock_path)["pid"] == holder.pid


def test_a_running_pid_that_does_not_hold_the_lock_file_is_broken_only_by_force(
        lock_path: Path) -> None:
    # A marker naming a running process that holds no flock: a reused pid, or a holder on
    # a mount without flock. Only a person can tell, so only --force breaks it.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fake_marker(lock_path, pid=sleeper.pid)
        lock_path.touch()
        with pytest.raises(LockTimeoutError, match="pass --force"):
            break_lock(lock_path)
        broken = break_lock(lock_path, force=True)
        assert broken is not None
        assert broken.pid == sleeper.pid
        assert read_holder(lock_path) is None
    finally:
        sleeper.kill()
        sleeper.wait(DEADLINE)


def test_a_timeout_without_a_holder_record_says_how_to_find_the_holder(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    lock_path.with_name("lock.holder").unlink()  # the record gone, the flock still held
    with pytest.raises(LockTimeoutError, match="fuser -v"):
        StoreLock(lock_path, timeout=0.3).acquire()


def test_break_lock_removes_a_marker_from_another_host(lock_path: Path) -> None:
    fake_marker(lock_path, host="elsewhere.example.org")
    broken = break_lock(lock_path)
    assert broken is not None
    assert broken.host == "elsewhere.example.org"
    with StoreLock(lock_path, timeout=1):
        pass
    assert break_lock(lock_path) is None


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(
        lock_path: Path) -> None:
    entered = threading.Event()
    with StoreLock(lock_path, timeout=1), StoreLock(lock_path, timeout=1):
        def other() -> None:
            with pytest.raises(LockTimeoutError):
                StoreLock(lock_path, timeout=0.2).acquire()
            entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(DEADLINE)
        assert entered.is_set()
    with StoreLock(lock_path, timeout=1):
        pass


@pytest.mark.parametrize("mode", ["flock", "noflock"])
def test_processes_never_hold_the_lock_at_once(tmp_path: Path, lock_path: Path,
                                               mode: str) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    processes = [subprocess.Popen([sys.executable, str(HOLDER), str(lock_path), "count",
                                   str(counter), "30", mode]) for _ in range(4)]
    for process in processes:
        assert process.wait(DEADLINE) == 0
    assert counter.read_text() == "120"
