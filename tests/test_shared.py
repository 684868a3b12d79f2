"""A store shared by two users of one group, each with umask 022: both save, read and gc.

Needs root to create the users and run processes as them; skipped otherwise.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsstore.backend.local import TEMPORARY_PREFIX
from fsstore.index.index import COMPACT_AFTER
from tests.conftest import REPOSITORY

TEAM = "fsstoreteam"
USERS = ("fsstoreana", "fsstoreben")
WORKER = Path(__file__).with_name("team_worker.py")
OLD = time.time() - 3 * 86400


def ensure_account(command: list[str], exists: Any) -> None:
    try:
        exists()
        return
    except KeyError:
        pass
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    try:
        exists()  # made by us, or by a test run in parallel
    except KeyError:
        pytest.skip(f"cannot create test accounts ({' '.join(command)}: "
                    f"{done.stderr.strip()})")


@pytest.fixture(scope="module")
def team() -> tuple[int, dict[str, int]]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create two users of one group and run processes as them")
    if shutil.which("groupadd") is None or shutil.which("useradd") is None:
        pytest.skip("groupadd/useradd are not installed")
    ensure_account(["groupadd", TEAM], lambda: grp.getgrnam(TEAM))
    gid = grp.getgrnam(TEAM).gr_gid
    for user in USERS:
        ensure_account(["useradd", "--no-create-home", "--gid", TEAM, "--shell",
                        "/usr/sbin/nologin", user], lambda user=user: pwd.getpwnam(user))
    return gid, {user: pwd.getpwnam(user).pw_uid for user in USERS}


@pytest.fixture(scope="module")
def python_for_team(team: tuple[int, dict[str, int]]) -> tuple[str, dict[str, str]]:
    """An interpreter the test users can run, with this fsstore and its dependencies.

    The running interpreter may live where other users cannot go (a pyenv under /root);
    a system interpreter of the same version can load the same packages.
    """
    gid, uids = team
    environment = {**os.environ, "PYTHONNOUSERSITE": "1",
                   "PYTHONPATH": os.pathsep.join([str(REPOSITORY), *site.getsitepackages()])}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    tried = []
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin") or ""
    for candidate in dict.fromkeys([sys.executable, system]):
        if not candidate:
            continue
        try:
            done = subprocess.run([candidate, "-c", "import fsstore, pyarrow"],
                                  user=uids[USERS[0]], group=gid, env=environment,
                                  capture_output=True, text=True, timeout=120)
        except PermissionError as error:
            tried.append(f"{candidate}: {error}")
            continue
        if done.returncode == 0:
            return candidate, environment
        tried.append(f"{candidate}: {done.stderr.strip().splitlines()[-1:]}")
    pytest.skip("no Python interpreter with fsstore is usable by other users: "
                + "; ".join(tried))


@pytest.fixture
def team_folder(team: tuple[int, dict[str, int]]) -> Iterator[Path]:
    """A folder of the team group, reachable by everyone (pytest's tmp_path is not)."""
    gid, _ = team
    folder = Path(tempfile.mkdtemp(prefix="fsstore-team-", dir="/tmp"))
    os.chown(folder, 0, gid)
    os.chmod(folder, 0o2775)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_user(team: tuple[int, dict[str, int]], python: tuple[str, dict[str, str]], user: str,
            store: Path, *args: str) -> Any:
    gid, uids = team
    interpreter, environment = python
    done = subprocess.run([interpreter, str(WORKER), str(store), *args],
                          user=uids[user], group=gid, extra_groups=[gid], umask=0o022,
                          env={**environment, "HOME": str(store.parent), "FSSTORE_USER": user},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{user} {args}: {done.stderr}"
    return json.loads(done.stdout)


def test_two_users_with_umask_022_share_a_store(
        team: tuple[int, dict[str, int]], python_for_team: tuple[str, dict[str, str]],
        team_folder: Path) -> None:
    gid, uids = team

    def run(user: str, *args: str) -> Any:
        return as_user(team, python_for_team, user, store, *args)

    store = team_folder / "store"
    assert run("fsstoreana", "init")["shared"] is True
    cd8 = run("fsstoreana", "save", "cd8", "CD8A", "CD8B")
    cd4 = run("fsstoreben", "save", "cd4", "CD4")
    # Each reads the other's set, and moves a name the other made.
    assert run("fsstoreben", "read", "cd8") == ["CD8A", "CD8B"]
    assert run("fsstoreana", "read", "cd4") == ["CD4"]
    moved = run("fsstoreben", "save", "cd8", "CD8A", "CD8B", "CD3E")
    assert moved != cd8
    # Enough saves from both that each compacts and merges runs the other wrote.
    run("fsstoreana", "churn", str(COMPACT_AFTER), "ANA")
    run("fsstoreben", "churn", str(COMPACT_AFTER * 2), "BEN")
    # Whatever the umask, folders are setgid and group-writable, files group-readable.
    owners = set()
    for folder, folders, files in os.walk(store):
        for name in folders:
            mode = (Path(folder) / name).stat()
            assert mode.st_mode & stat.S_ISGID, f"{folder}/{name} is not setgid"
            assert mode.st_mode & 0o070 == 0o070, f"{folder}/{name} is not group-writable"
            assert mode.st_gid == gid
        for name in files:
            info = (Path(folder) / name).stat()
            assert info.st_mode & 0o040, f"{folder}/{name} is not group-readable"
            assert info.st_gid == gid
            owners.add(info.st_uid)
    assert owners == set(uids.values())
    # Leftovers owned by one user are removed by the other's gc, and the other way round.
    sets = store / "objects" / "sets"
    ana_leftover = next(sets.rglob(f"*{cd8}.parquet")).parent / f"{TEMPORARY_PREFIX}x-left"
    subprocess.run(["sh", "-c", f"echo x > '{ana_leftover}'"],
                   user=uids["fsstoreana"], group=gid, umask=0o022, check=True, timeout=60)
    os.utime(ana_leftover, (OLD, OLD))
    removed_by_ben = run("fsstoreben", "gc")
    assert str(ana_leftover.relative_to(store)) in removed_by_ben
    ben_leftover = store / "index" / "journal" / f"{TEMPORARY_PREFIX}y-left"
    subprocess.run(["sh", "-c", f"echo y > '{ben_leftover}'"],
                   user=uids["fsstoreben"], group=gid, umask=0o022, check=True, timeout=60)
    os.utime(ben_leftover, (OLD, OLD))
    removed_by_ana = run("fsstoreana", "gc")
    assert str(ben_leftover.relative_to(store)) in removed_by_ana
    for user in USERS:
        assert run(user, "verify") == []
    assert run("fsstoreana", "read", "cd8") == ["CD3E", "CD8A", "CD8B"]
    assert run("fsstoreben", "read", "cd4") == ["CD4"]
    assert cd4


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_shared_store_gives_the_group_access_whatever_the_umask(tmp_path: Path,
                                                                  umask: int) -> None:
    from fsstore import FeatureSet, Store

    previous = os.umask(umask)
    try:
        (tmp_path / "store").mkdir()  # made by hand first, as teams often do
        store = Store.init(tmp_path / "store", shared=True)
        for number in range(COMPACT_AFTER + 1):
            store.save(FeatureSet.from_values([f"G{number}"], field="Gene.symbol",
                                              name=f"n{number}"))
    finally:
        os.umask(previous)
    for folder, folders, files in os.walk(store.root):
        for name in [*folders, ""]:
            mode = (Path(folder) / name).stat().st_mode
            assert mode & stat.S_ISGID, f"{folder}/{name}"
            assert mode & 0o070 == 0o070, f"{folder}/{name}"
        for name in files:
            mode = (Path(folder) / name).stat().st_mode
            assert mode & 0o040, f"{folder}/{name}"
            if name in ("fsstore.json", "lock", "compact.lock"):
                assert mode & 0o020, f"{folder}/{name} is shared mutable state"


def test_init_shared_on_an_existing_private_store_shares_it(tmp_path: Path) -> None:
    from fsstore import FeatureSet, Store
    from fsstore.cli import main

    previous = os.umask(0o077)
    try:
        store = Store.init(tmp_path / "store")
        store.save(FeatureSet.from_values(["CD8A"], field="Gene.symbol", name="one"))
        table = tmp_path / "table.csv"
        table.write_text("gene,count\nCD8A,3\n")
        store.link(str(table), copy=True)
        assert main(["init", str(tmp_path / "store"), "--shared"]) == 0
        shared = Store(tmp_path / "store")
        shared.save(FeatureSet.from_values(["CD4"], field="Gene.symbol", name="two"))
    finally:
        os.umask(previous)
    assert shared.config["shared"] is True
    assert json.loads((tmp_path / "store" / "fsstore.json").read_text())["shared"] is True
    for folder, folders, files in os.walk(shared.root):
        for name in [*folders, ""]:
            mode = (Path(folder) / name).stat().st_mode
            assert mode & stat.S_ISGID, f"{folder}/{name}"
            assert mode & 0o070 == 0o070, f"{folder}/{name}"
        for name in files:
            assert (Path(folder) / name).stat().st_mode & 0o040, f"{folder}/{name}"
