"""Warnings about a file system that makes fsstore fall back to a weaker mode.

A store on a mount without ``flock``, hard links or renames still works, more weakly (see
the README's "Publishing" and "The lock"). Users should hear of it once, not at every
file: :func:`warn_degraded` logs a WARNING once per process for each fallback and folder.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

__all__ = ["warn_degraded"]

_WARNED: Final[set[tuple[str, str]]] = set()
_GUARD: Final = threading.Lock()


def warn_degraded(log: logging.Logger, fallback: str, where: object, message: str,
                  *args: object) -> None:
    """Log ``message`` as a WARNING the first time ``fallback`` happens under ``where``."""
    key = (fallback, str(where))
    with _GUARD:
        first = key not in _WARNED
        _WARNED.add(key)
    log.log(logging.WARNING if first else logging.DEBUG, message, *args)
