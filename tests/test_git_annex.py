"""A store inside a git-annex repository, as the README's workflow sets it up: index and config
in git, manifests in the annex, synced between two clones with ``git annex sync --content``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsstore import FeatureSet, ReferenceNotFoundError, Store
from fsstore.integrity.verify import verify
from fsstore.manifest import manifest_key
from tests.test_sync import assert_intact, event_ids, reference

DEADLINE = 120
GITATTRIBUTES = "* annex.largefiles=nothing\n.fsstore/objects/** annex.largefiles=anything\n"
GITIGNORE = ".fsstore/derived/\n.fsstore/index/*lock*\n.fsstore-tmp-*\n"  # as the README


def annex_environment() -> dict[str, str]:
    """The environment for git, with git-annex found next to this Python if installed there."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if shutil.which("git", path=path) is None:
        pytest.skip("git is not installed")
    if shutil.which("git-annex", path=path) is None:
        pytest.skip("git-annex is not installed (pip install git-annex, or the test extra)")
    who = {"GIT_AUTHOR_NAME": "fsstore test", "GIT_AUTHOR_EMAIL": "test@fsstore.invalid"}
    return {**os.environ, "PATH": path, **who,
            "GIT_COMMITTER_NAME": who["GIT_AUTHOR_NAME"],
            "GIT_COMMITTER_EMAIL": who["GIT_AUTHOR_EMAIL"]}


def git(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=folder, env=annex_environment(), text=True,
                          capture_output=True, timeout=DEADLINE)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done


def annex_init(folder: Path, description: str) -> None:
    git(folder, "annex", "init", description)
    git(folder, "config", "annex.dotfiles", "true")  # .fsstore is a dot folder


def commit_store(folder: Path, message: str) -> None:
    git(folder, "annex", "add", ".")
    git(folder, "commit", "-q", "-m", message)


def test_a_store_round_trips_between_two_git_annex_clones(tmp_path: Path, grch38: Path,
                                                         mm10: Path) -> None:
    annex_environment()
    ana_repo = tmp_path / "ana"
    ana_repo.mkdir()
    git(ana_repo, "init", "-q", "-b", "main")
    annex_init(ana_repo, "ana's laptop")
    (ana_repo / ".gitattributes").write_text(GITATTRIBUTES)
    (ana_repo / ".gitignore").write_text(GITIGNORE)
    ana = Store.init(ana_repo / ".fsstore")
    human = ana.save(reference(grch38, "GRCh38-2020-A"))
    commit_store(ana_repo, "Add the GRCh38 reference")
    manifest = ana_repo / ".fsstore" / manifest_key(human.hash)
    assert manifest.is_symlink(), "the manifest is in the annex"
    tracked = git(ana_repo, "ls-files").stdout.split()
    assert ".fsstore/index/journal/0000000000000001.json" in tracked
    assert ".fsstore/fsstore.json" in tracked
    assert not [path for path in tracked if "lock" in path or "/derived/" in path]
    assert not git(ana_repo, "annex", "find", ".fsstore/index").stdout.strip()

    git(tmp_path, "clone", "-q", str(ana_repo), "bob")
    bob_repo = tmp_path / "bob"
    annex_init(bob_repo, "bob's workstation")
    bob = Store(bob_repo / ".fsstore")
    with pytest.raises(ReferenceNotFoundError, match="run `git annex get"):
        bob.get("GRCh38-2020-A")
    with pytest.raises(ReferenceNotFoundError, match="run `git annex get"):
        bob.find(member="ENSG00000243485")
    missing = verify(bob).errors
    assert [finding.problem for finding in missing] == ["missing"]
    assert "git annex get" in missing[0].detail
    git(bob_repo, "annex", "get", ".fsstore/objects")
    assert bob.get("GRCh38-2020-A").member_names == human.member_names
    assert_intact(bob)

    mouse = bob.save(reference(mm10, "mm10"))
    commit_store(bob_repo, "Add the mm10 reference")
    git(bob_repo, "annex", "sync", "--content")
    git(ana_repo, "annex", "sync", "--content")
    ana = Store(ana_repo / ".fsstore")
    assert ana.get("mm10").hash == mouse.hash
    assert_intact(ana)
    assert event_ids(ana) == event_ids(bob)


def test_two_clones_writing_at_once_get_a_git_conflict_not_a_silent_merge(
        tmp_path: Path) -> None:
    annex_environment()
    first = tmp_path / "first"
    first.mkdir()
    git(first, "init", "-q", "-b", "main")
    annex_init(first, "first")
    (first / ".gitattributes").write_text(GITATTRIBUTES)
    (first / ".gitignore").write_text(GITIGNORE)
    Store.init(first / ".fsstore").save(FeatureSet.from_values(["CD8A"], field="Gene.symbol",
                                                               name="cd8"))
    commit_store(first, "Start the store")
    git(tmp_path, "clone", "-q", str(first), "second")
    second = tmp_path / "second"
    annex_init(second, "second")

    Store(first / ".fsstore").save(FeatureSet.from_values(["CD4"], field="Gene.symbol",
                                                          name="cd4"))
    commit_store(first, "Add cd4")
    Store(second / ".fsstore").save(FeatureSet.from_values(["CD19"], field="Gene.symbol",
                                                           name="cd19"))
    commit_store(second, "Add cd19")
    synced = git(second, "annex", "sync", "--content", check=False)
    assert synced.returncode != 0
    conflicted = git(second, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == [".fsstore/index/journal/0000000000000002.json"]
    assert Store(first / ".fsstore").resolve("cd4")
