"""Helpers for fault-injection tests: make one os call fail for files of a store."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fsstore.backend.local import TEMPORARY_PREFIX


def path_of(argument: Any) -> str:
    """The path an os call works on: a path argument, or what a descriptor points to."""
    if isinstance(argument, int):
        try:
            return os.readlink(f"/proc/self/fd/{argument}")
        except OSError:
            return ""
    return os.fspath(argument) if isinstance(argument, str | os.PathLike) else ""


def inject(monkeypatch: pytest.MonkeyPatch, call: str, code: int, where: Path,
           inside: str = "", times: int | None = None) -> list[str]:
    """Make ``os.<call>`` fail with ``code`` for files under ``where``/``inside``.

    Temporary files count as being where their final file will be. Returns the paths the
    fault hit. ``os.close`` still closes (as Linux does when close reports EIO).
    """
    original: Callable[..., Any] = getattr(os, call)
    prefix = str(where / inside) if inside else str(where)
    hits: list[str] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        path = path_of(args[0]) if args else ""
        if path.startswith(prefix) and (times is None or len(hits) < times):
            hits.append(path)
            if call == "close":
                original(*args, **kwargs)
            raise OSError(code, os.strerror(code), path)
        return original(*args, **kwargs)

    monkeypatch.setattr(os, call, failing)
    return hits


def snapshot(root: Path, under: str = "") -> dict[str, str]:
    """Every file under ``root/under`` (temporary ones too) with the SHA-256 of its bytes."""
    top = root / under if under else root
    found = {}
    for folder, _, files in os.walk(top):
        for name in files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def temporary_files(root: Path) -> list[str]:
    return [str(Path(folder) / name) for folder, _, files in os.walk(root) for name in files
            if name.startswith(TEMPORARY_PREFIX)]
