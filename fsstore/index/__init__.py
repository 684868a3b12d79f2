"""The index: names, registries and datasets mapped to hashes, as a history of events."""

from fsstore.index.events import KINDS, Event, EventKind
from fsstore.index.index import COMPACT_AFTER, Index
from fsstore.index.view import Layout, View

__all__ = ["COMPACT_AFTER", "KINDS", "Event", "EventKind", "Index", "Layout", "View"]
