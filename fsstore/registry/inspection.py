"""What checking values against a registry field found: inspections, suggestions, mappings.

These are plain records returned by :class:`~fsstore.registry.lookup.Registry`; they hold
every value concerned, and render short summaries that show the first few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from fsstore.errors import preview

__all__ = ["KINDS", "Inspection", "Mapping", "Standardized", "Suggestion"]

KINDS: Final = ("whitespace", "case", "version", "field", "synonym")
"""Kinds of suggestion, in the order they are tried."""


@dataclass(frozen=True)
class Suggestion:
    """What an invalid value probably meant.

    ``kind`` is one of :data:`KINDS`: ``whitespace`` (valid once leading and trailing
    white space is removed), ``case`` (valid in another letter case), ``version`` (a
    valid id with a version suffix such as ``.13``), ``field`` (a value of another field
    of the same registry, ``via``, mapped to this field through its records) or ``synonym``
    (listed in the registry's ``synonyms`` field). ``candidates`` are the values of the
    checked field it could stand for; more than one makes the suggestion ambiguous.
    """

    value: str
    kind: str
    candidates: tuple[str, ...]
    via: str | None = None

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    @property
    def replacement(self) -> str | None:
        """The single candidate, or None when the suggestion is ambiguous."""
        return self.candidates[0] if len(self.candidates) == 1 else None

    def describe(self, limit: int = 3) -> str:
        where = f" (found in field {self.via})" if self.via else ""
        if self.ambiguous:
            return (f"{self.value!r} -> {len(self.candidates):,} candidates by {self.kind}"
                    f"{where}: {preview(self.candidates, limit)}")
        return f"{self.value!r} -> {self.candidates[0]!r} by {self.kind}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "kind": self.kind, "via": self.via,
                "candidates": list(self.candidates), "ambiguous": self.ambiguous}


@dataclass(frozen=True)
class Inspection:
    """Values checked against one field of one registry table.

    Counts are of distinct values; ``n_input`` counts every input value, missing ones too.
    """

    itype: str
    registry: str
    """A label of the registry table checked against: name, organism, version, hash."""
    n_input: int
    missing: int
    validated: tuple[str, ...]
    """Distinct values found in the field, in first-seen order."""
    not_validated: tuple[str, ...]
    """Distinct values not found in the field, in first-seen order."""
    duplicates: tuple[str, ...] = ()
    """Values given more than once."""
    multiple: dict[str, int] = field(default_factory=dict)
    """Valid values that match more than one record, with the number of records."""
    suggestions: dict[str, Suggestion] = field(default_factory=dict)
    """For values not validated: what they probably meant, where something fits."""
    hint: str | None = None
    """A sentence about the id scheme of the invalid values, when it differs."""

    @property
    def all_valid(self) -> bool:
        return not self.not_validated

    @property
    def without_suggestion(self) -> tuple[str, ...]:
        return tuple(value for value in self.not_validated if value not in self.suggestions)

    def summary(self, limit: int = 5) -> str:
        """A few lines for people: counts, then up to ``limit`` examples of each kind of
        value that did not validate (0: counts only)."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        distinct = len(self.validated) + len(self.not_validated)
        lines = [f"{self.itype} in {self.registry}",
                 f"{self.n_input:,} values ({distinct:,} distinct): "
                 f"{len(self.validated):,} validated, {len(self.not_validated):,} not "
                 f"validated, {self.missing:,} missing, {len(self.duplicates):,} repeated"]
        if self.multiple:
            shown = preview([f"{value} ({count})" for value, count in self.multiple.items()],
                            limit)
            lines.append(f"{len(self.multiple):,} validated values match several records"
                         + (f": {shown}" if limit else ""))
        if self.suggestions:
            ambiguous = sum(1 for item in self.suggestions.values() if item.ambiguous)
            lines.append(f"{len(self.suggestions):,} not validated have a suggestion "
                         f"({ambiguous:,} ambiguous)" + (":" if limit else ""))
            lines += [f"  {item.describe()}" for item in list(self.suggestions.values())[:limit]]
        rest = self.without_suggestion
        if rest:
            lines.append(f"{len(rest):,} not validated without suggestion"
                         + (f": {preview(rest, limit)}" if limit else ""))
        if self.hint:
            lines.append(f"note: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "itype": self.itype,
            "registry": self.registry,
            "n_input": self.n_input,
            "missing": self.missing,
            "n_validated": len(self.validated),
            "n_not_validated": len(self.not_validated),
            "validated": list(self.validated),
            "not_validated": list(self.not_validated),
            "repeated": list(self.duplicates),
            "multiple": dict(self.multiple),
            "suggestions": [item.to_dict() for item in self.suggestions.values()],
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Standardized:
    """Values with unambiguous suggestions applied; the rest left as they were."""

    values: list[Any]
    """The input, same length and order, with each fixable value replaced."""
    changed: dict[str, Suggestion]
    ambiguous: dict[str, Suggestion]
    """Not applied: the value could stand for several values of the field."""
    unresolved: tuple[str, ...]
    """Not valid and without any suggestion."""

    def summary(self) -> str:
        parts = [f"{len(self.changed):,} values standardized"]
        if self.ambiguous:
            parts.append(f"{len(self.ambiguous):,} ambiguous left as they were "
                         f"({preview(list(self.ambiguous), 3)})")
        if self.unresolved:
            parts.append(f"{len(self.unresolved):,} not valid without suggestion "
                         f"({preview(self.unresolved, 3)})")
        return "; ".join(parts)


@dataclass(frozen=True)
class Mapping:
    """Values of one field converted to another through the registry's records."""

    source: str
    target: str
    mapped: dict[str, str]
    """Values with exactly one target value."""
    ambiguous: dict[str, tuple[str, ...]]
    """Values whose records hold several target values; none of them is picked."""
    unmapped: tuple[str, ...]
    """Values not in the source field, or whose records have no target value."""

    def apply(self, values: list[str]) -> list[str | None]:
        """Each value's target, None where it is unmapped or ambiguous."""
        return [self.mapped.get(value) for value in values]

    def summary(self) -> str:
        parts = [f"{len(self.mapped):,} mapped from {self.source} to {self.target}"]
        if self.ambiguous:
            shown = preview([f"{value} ({len(targets)})"
                             for value, targets in self.ambiguous.items()], 3)
            parts.append(f"{len(self.ambiguous):,} ambiguous ({shown})")
        if self.unmapped:
            parts.append(f"{len(self.unmapped):,} unmapped ({preview(self.unmapped, 3)})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "mapped": self.mapped,
                "ambiguous": {key: list(value) for key, value in self.ambiguous.items()},
                "unmapped": list(self.unmapped)}
