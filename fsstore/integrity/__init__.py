"""Integrity of a store: verify, repair and collect garbage, for every kind of object."""

from fsstore.integrity.kinds import (
    OBJECT_KINDS,
    REFERENCES,
    ObjectDamage,
    ObjectKind,
    Reference,
    register_object_kind,
    register_reference,
)

__all__ = [
    "OBJECT_KINDS",
    "REFERENCES",
    "ObjectDamage",
    "ObjectKind",
    "Reference",
    "register_object_kind",
    "register_reference",
]
