"""Integrity of a store: verify, repair and collect garbage, for every kind of object.

``verify(store)`` returns a :class:`Report`, ``repair(store)`` a :class:`Repair` and
``collect_garbage(store)`` a :class:`Collected`; the command line's ``fsstore verify``,
``verify --repair`` and ``gc`` call them.
"""

from fsstore.integrity.findings import Finding, Report
from fsstore.integrity.gc import Collected, collect_garbage
from fsstore.integrity.kinds import (
    OBJECT_KINDS,
    REFERENCES,
    ObjectDamage,
    ObjectKind,
    Reference,
    register_object_kind,
    register_reference,
)
from fsstore.integrity.repair import Repair, repair
from fsstore.integrity.verify import verify

__all__ = [
    "OBJECT_KINDS",
    "REFERENCES",
    "Collected",
    "Finding",
    "ObjectDamage",
    "ObjectKind",
    "Reference",
    "Repair",
    "Report",
    "collect_garbage",
    "register_object_kind",
    "register_reference",
    "repair",
    "verify",
]
