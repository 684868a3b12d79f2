"""A loaded registry table: checking values against its fields, suggesting, mapping.

Indexes (value -> number of records, value -> record positions, case-folded value ->
values) are built per field on first use and kept with the table, which never changes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from fsstore.canonical import nfc, parse_itype, strip_white_space
from fsstore.errors import InvalidItypeError, InvalidMemberError, preview
from fsstore.featureset import _as_list, _as_text, _is_missing
from fsstore.registry.inspection import Inspection, Mapping, Standardized, Suggestion
from fsstore.registry.schemes import scheme_hint
from fsstore.registry.table import RegistryTable

if TYPE_CHECKING:
    from fsstore.registry.catalog import RegistryInfo

__all__ = ["SYNONYMS_FIELD", "SYNONYM_SEPARATOR", "Registry", "text_values"]

SYNONYMS_FIELD: Final = "synonyms"
"""A field of this name holds alternative names of each record, separated by ``|``."""
SYNONYM_SEPARATOR: Final = "|"
_VERSION_SUFFIX: Final = re.compile(r"^(.+)\.\d+$")


class Registry:
    """One version of a registry: a table whose fields hold valid identifiers.

    Obtain one with :meth:`fsstore.Store.registry`. Field arguments accept the bare field
    name (``"symbol"``) or the itype (``"Gene.symbol"``).
    """

    def __init__(self, table: RegistryTable, info: RegistryInfo | None = None) -> None:
        self.table = table
        self.info = info
        self._counts: dict[str, Counter[str]] = {}
        self._positions: dict[str, dict[str, list[int]]] = {}
        self._folded: dict[str, dict[str, list[str]]] = {}
        self._columns: dict[str, list[str | None]] = {}
        self._identifiers: list[list[str]] = []
        self._versioned: dict[str, bool] = {}
        self.several_organisms = False
        """True when the store registers this registry for several organisms, so that
        naming this version again needs the organism too (set by whoever chose it)."""

    def with_info(self, info: RegistryInfo | None) -> Registry:
        """The same table under another index record, sharing the indexes built so far."""
        other = Registry(self.table, info)
        other._counts, other._positions = self._counts, self._positions
        other._folded, other._columns = self._folded, self._columns
        other._identifiers = self._identifiers
        other._versioned = self._versioned
        return other

    # -- description ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def organism(self) -> str | None:
        return self.table.organism or None

    @property
    def version(self) -> str | None:
        return self.info.version if self.info else None

    @property
    def hash(self) -> str:
        return self.table.hash

    @property
    def fields(self) -> tuple[str, ...]:
        return self.table.fields

    @property
    def n(self) -> int:
        return self.table.n

    @property
    def label(self) -> str:
        """``Gene (human) gencode-v48 [1a2b3c4d5e6f]``: what a message names it by."""
        organism = f" ({self.organism})" if self.organism else ""
        version = f" {self.version}" if self.version else ""
        return f"{self.name}{organism}{version} [{self.hash[:12]}]"

    def to_pandas(self) -> pd.DataFrame:
        """The records, one column per field, missing cells as None."""
        frame: pd.DataFrame = self.table.columns.to_pandas()
        return frame

    def itype(self, field: str) -> str:
        return f"{self.name}.{self.field_name(field)}"

    def field_name(self, field: str) -> str:
        """The bare field name of ``field``, checked to exist in this registry."""
        name = field
        if "." in field:
            registry, name = parse_itype(field)
            if registry != self.name:
                raise InvalidItypeError(
                    f"{field} is not a field of registry {self.name}; use {self.name}.<field>"
                )
        if name not in self.fields:
            raise InvalidItypeError(
                f"registry {self.label} has no field {name!r}; its fields are "
                f"{', '.join(self.fields)}"
            )
        return name

    # -- indexes --------------------------------------------------------------------------

    def column(self, field: str) -> list[str | None]:
        name = self.field_name(field)
        if name not in self._columns:
            self._columns[name] = self.table.column(name)
        return self._columns[name]

    def counts(self, field: str) -> Counter[str]:
        """Each value of a field with the number of records holding it."""
        name = self.field_name(field)
        if name not in self._counts:
            self._counts[name] = Counter(value for value in self.column(name) if value)
        return self._counts[name]

    def positions(self, field: str) -> dict[str, list[int]]:
        """Each value of a field with the positions of its records.

        For the ``synonyms`` field, each ``|``-separated synonym is a value.
        """
        name = self.field_name(field)
        if name not in self._positions:
            index: dict[str, list[int]] = {}
            for position, cell in enumerate(self.column(name)):
                if not cell:
                    continue
                keys = cell.split(SYNONYM_SEPARATOR) if name == SYNONYMS_FIELD else [cell]
                for key in keys:
                    if key:
                        index.setdefault(key, []).append(position)
            self._positions[name] = index
        return self._positions[name]

    def identifier_fields(self) -> list[str]:
        """Fields that identify records: at least half of their values are distinct.

        Only these are searched for a value given in the wrong field; a category such as
        a gene biotype (38 values over 78,894 genes) would map a value to thousands of
        records, which is no suggestion at all.
        """
        if not self._identifiers:
            chosen = []
            for field in self.fields:
                counts = self.counts(field)
                total = sum(counts.values())
                if field != SYNONYMS_FIELD and total and len(counts) * 2 >= total:
                    chosen.append(field)
            self._identifiers.append(chosen)
        return self._identifiers[0]

    def takes_version_suffixes(self, field: str) -> bool:
        """Whether a ``.<digits>`` ending of a value may be a version to strip.

        True when no registered value of the field ends that way, as for Ensembl ids,
        whose versions (``ENSG00000116288.13``) are kept apart from the id. A field that
        holds such endings itself holds names in which the ending is part of the name:
        GENCODE's symbols include ``GS1-279B7.1`` and ``LL22NC03-63E9.3``, so ``CAND1.11``
        (another gene than ``CAND1``) must not be read as ``CAND1`` in version 11.
        Shortcoming: a symbol table that happens to hold no such name still gets
        version suggestions; they are only applied when asked (standardize).
        """
        name = self.field_name(field)
        if name not in self._versioned:
            self._versioned[name] = not any(_VERSION_SUFFIX.match(value)
                                            for value in self.counts(name))
        return self._versioned[name]

    def _by_casefold(self, field: str) -> dict[str, list[str]]:
        name = self.field_name(field)
        if name not in self._folded:
            folded: dict[str, list[str]] = {}
            for value in self.counts(name):
                folded.setdefault(value.casefold(), []).append(value)
            self._folded[name] = folded
        return self._folded[name]

    # -- checking -------------------------------------------------------------------------

    def validate(self, values: Iterable[Any], field: str) -> list[bool]:
        """For each value, whether the field holds it (missing values are not valid)."""
        known = self.counts(field)
        return [isinstance(value, str) and nfc(value) in known
                for value in _as_list(values, "values")]

    def inspect(self, values: Iterable[Any], field: str) -> Inspection:
        """Which values the field holds, which it does not, and suggestions for the latter.

        Missing values (None, NaN, blank) are counted; values that are not text raise
        :class:`~fsstore.errors.InvalidMemberError`.
        """
        present, missing = text_values(values)
        return self.inspect_text(present, field, n_input=len(present) + missing,
                                 missing=missing)

    def inspect_text(self, present: list[str], field: str, *, n_input: int | None = None,
                     missing: int = 0) -> Inspection:
        """:meth:`inspect` for values already known to be present, NFC text."""
        name = self.field_name(field)
        known = self.counts(name)
        seen = Counter(present)
        validated = tuple(value for value in seen if value in known)
        not_validated = tuple(value for value in seen if value not in known)
        suggestions = {}
        suggest = self._suggester(name)
        for value in not_validated:
            suggestion = suggest(value)
            if suggestion is not None:
                suggestions[value] = suggestion
        multiple = {value: known[value] for value in validated if known[value] > 1}
        hint = None
        if not_validated:
            hint = scheme_hint(not_validated, list(known), self.itype(name))
        return Inspection(
            itype=self.itype(name),
            registry=self.label,
            n_input=len(present) if n_input is None else n_input,
            missing=missing,
            validated=validated,
            not_validated=not_validated,
            duplicates=tuple(value for value, count in seen.items() if count > 1),
            multiple=multiple,
            suggestions=suggestions,
            hint=hint,
        )

    def suggest(self, value: str, field: str) -> Suggestion | None:
        """What a value the field does not hold probably meant, or None.

        Tried in order: surrounding white space, letter case, a version suffix (for fields
        that :meth:`takes_version_suffixes`), the same value in another identifier field
        (see :meth:`identifier_fields`; mapped to this one through its records), a synonym.
        """
        return self._suggester(self.field_name(field))(value)

    def _suggester(self, name: str) -> Callable[[str], Suggestion | None]:
        # Look the indexes up once; inspecting 78,894 values calls the result that often.
        known = self.counts(name)
        folded = self._by_casefold(name)
        versions = self.takes_version_suffixes(name)
        others = [(other, self.positions(other)) for other in self.identifier_fields()
                  if other != name]
        if SYNONYMS_FIELD in self.fields and name != SYNONYMS_FIELD:
            synonyms = self.positions(SYNONYMS_FIELD)
        else:
            synonyms = {}

        def suggest(value: str) -> Suggestion | None:
            stripped = strip_white_space(value)
            if stripped != value and stripped in known:
                return Suggestion(value, "whitespace", (stripped,))
            # Shortcoming: case is only forgiven within this field; 'cd8a' given for an
            # Ensembl id finds nothing, because other fields are matched exactly.
            variants = [other for other in folded.get(value.casefold(), ()) if other != value]
            if variants:
                return Suggestion(value, "case", tuple(sorted(variants)))
            versioned = _VERSION_SUFFIX.match(value) if versions else None
            if versioned and versioned.group(1) in known:
                return Suggestion(value, "version", (versioned.group(1),))
            # Surrounding white space is never part of an identifier; ignore it from here on.
            for other, index in others:
                targets = self._targets(index.get(stripped, []), name)
                if targets:
                    return Suggestion(value, "field", targets, via=other)
            targets = self._targets(synonyms.get(stripped, []), name)
            if targets:
                return Suggestion(value, "synonym", targets, via=SYNONYMS_FIELD)
            return None

        return suggest

    def standardize(self, values: Iterable[Any], field: str) -> Standardized:
        """Replace each value that has one unambiguous suggestion by its suggestion.

        Valid values, missing values and values without a single suggestion are kept as
        they were; ambiguous ones are reported, never resolved by picking one.
        """
        raw = _as_list(values, "values")
        present, _ = text_values(raw)
        inspection = self.inspect_text(present, field)
        changed = {value: item for value, item in inspection.suggestions.items()
                   if not item.ambiguous}
        ambiguous = {value: item for value, item in inspection.suggestions.items()
                     if item.ambiguous}
        out = []
        for value in raw:
            key = nfc(value) if isinstance(value, str) else value
            suggestion = changed.get(key) if isinstance(key, str) else None
            out.append(suggestion.candidates[0] if suggestion else value)
        return Standardized(out, changed, ambiguous, inspection.without_suggestion)

    def map(self, values: Iterable[Any], source: str, target: str) -> Mapping:
        """Convert values of field ``source`` to field ``target`` through the records.

        A value whose records hold several distinct target values (a symbol shared by
        several genes) is reported as ambiguous with all of them; none is picked.
        """
        source_name, target_name = self.field_name(source), self.field_name(target)
        present, _ = text_values(values)
        index = self.positions(source_name)
        mapped: dict[str, str] = {}
        ambiguous: dict[str, tuple[str, ...]] = {}
        unmapped: list[str] = []
        for value in dict.fromkeys(present):
            targets = self._targets(index.get(value, []), target_name)
            if len(targets) == 1:
                mapped[value] = targets[0]
            elif targets:
                ambiguous[value] = targets
            else:
                unmapped.append(value)
        return Mapping(self.itype(source_name), self.itype(target_name), mapped, ambiguous,
                       tuple(unmapped))

    def _targets(self, positions: list[int], field: str) -> tuple[str, ...]:
        if not positions:
            return ()
        column = self.column(field)
        return tuple(sorted({cell for cell in (column[p] for p in positions) if cell}))

    def __repr__(self) -> str:
        return f"Registry({self.label}, n={self.n}, fields={list(self.fields)})"


def text_values(values: Iterable[Any]) -> tuple[list[str], int]:
    """The present values as NFC text, and how many were missing (None, NaN, blank).

    Values that are not text raise :class:`~fsstore.errors.InvalidMemberError`.
    """
    raw = _as_list(values, "values")
    present = [_as_text(value) for value in raw if not _is_missing(value)]
    not_text = [value for value in present if type(value) is not str]
    if not_text:
        raise InvalidMemberError(
            f"{len(not_text):,} values are not text: {preview(not_text)}; identifiers are "
            "compared as text, so convert them first (integer ids: str(value))",
            not_text,
        )
    return [nfc(value) for value in present], len(raw) - len(present)
