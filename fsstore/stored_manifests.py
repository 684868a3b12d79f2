"""A store's manifest files: where to read one, healing a damaged one, explaining a lost one.

Saving a set checks a manifest that is already stored and quarantines it when it is
damaged, so that the save writes it again (:func:`heal`). Reading a set whose manifest is
gone says why in the error: a git-annex or DVC link to content that is not here, or a file
the index still refers to (:func:`missing_manifest`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fsstore.backend import Backend
from fsstore.errors import ReferenceNotFoundError

__all__ = ["heal", "is_dangling", "lost_manifest", "manifest_source", "missing_manifest"]

log = logging.getLogger(__name__)


def manifest_source(backend: Backend, key: str) -> Any:
    """What to decode a manifest from: its local path, else its bytes."""
    path = backend.local_path(key)
    return path if path is not None else backend.read(key)


def heal(backend: Backend, key: str, hash_hex: str) -> bool:
    """Quarantine the stored manifest at ``key`` if it is damaged; True if it was.

    Saving a set whose manifest exists checks the manifest's seal (one BLAKE3 pass over
    the file), so that saving the set again repairs a damaged copy instead of pointing
    new events at it. An unsealed (older) manifest is re-hashed from its rows.
    """
    from fsstore.integrity.manifests import ManifestDamage, manifest_digest, sealed_digest
    from fsstore.quarantine import quarantine

    try:
        data = backend.read(key)
    except FileNotFoundError:
        return False  # removed meanwhile (gc): the commit step writes it again

    try:
        recorded = sealed_digest(data)
        if recorded is None:
            actual, recorded = manifest_digest(data)
            if actual != recorded:
                raise ManifestDamage("corrupt", f"hashes to {actual}")
        if recorded != hash_hex:
            raise ManifestDamage("corrupt", f"records hash {recorded}")
    except ManifestDamage as damage:
        folder = quarantine(backend, [(key, f"{damage.problem}: {damage.detail}")])
        log.warning("the stored manifest of %s was damaged (%s); moved it to %s and "
                    "wrote it again", hash_hex[:12], damage.detail, folder)
        return True
    return False


def is_dangling(backend: Backend, key: str) -> bool:
    """Whether ``key`` is a symbolic link to nothing (git-annex or DVC content not here)."""
    path = backend.local_path(key)
    return path is not None and os.path.islink(path) and not os.path.exists(path)


def missing_manifest(backend: Backend, hash_hex: str, key: str, ref: str,
                     where: str) -> ReferenceNotFoundError:
    """The error for a set whose manifest at ``key`` (shown as ``where``) cannot be read."""
    if is_dangling(backend, key):
        path = backend.local_path(key)
        return ReferenceNotFoundError(
            f"the manifest of set {hash_hex[:12]} is a link to content that is not "
            f"here ({path}); if the store lives in git-annex, run `git annex get "
            f"{path}` (DVC: `dvc pull`)",
            ref,
        )
    return lost_manifest(hash_hex, where, ref)


def lost_manifest(hash_hex: str, where: str, ref: str) -> ReferenceNotFoundError:
    """The error for a set the index records but whose manifest ``where`` is not there."""
    return ReferenceNotFoundError(
        f"the index knows set {hash_hex[:12]} but its manifest {where} is "
        "missing; run `fsstore verify` to find what else is missing",
        ref,
    )
