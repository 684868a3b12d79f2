"""Sync between stores: named remotes, push, pull and clone, verified and convergent."""

from fsstore.sync.exchange import SyncReport, clone, pull, push, sync_stores
from fsstore.sync.history import POINTERS, REFERENCES, Conflict, MergeResult, Pointer
from fsstore.sync.objects import (
    VERIFIERS,
    Progress,
    TransferPlan,
    TransferResult,
    register_verifier,
    verify_object,
)
from fsstore.sync.remotes import add_remote, remote_url, remotes, remove_remote

__all__ = [
    "POINTERS",
    "REFERENCES",
    "VERIFIERS",
    "Conflict",
    "MergeResult",
    "Pointer",
    "Progress",
    "SyncReport",
    "TransferPlan",
    "TransferResult",
    "add_remote",
    "clone",
    "pull",
    "push",
    "register_verifier",
    "remote_url",
    "remotes",
    "remove_remote",
    "sync_stores",
    "verify_object",
]
