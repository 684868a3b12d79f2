"""Features and feature sets: building them from values, records and DataFrames."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from fsstore.canonical import (
    UID_LENGTH,
    CanonicalSet,
    canonical_members,
    nfc,
    parse_itype,
    strip_white_space,
)
from fsstore.dtypes import dtype_of_series, normalize_dtype
from fsstore.errors import (
    DuplicateColumnError,
    EmptyFeatureSetError,
    InvalidDtypeError,
    InvalidInputError,
    InvalidMemberError,
    preview,
    shorten,
)
from fsstore.names import check_set_name

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = ["FEATURE_ITYPE", "Feature", "FeatureSet", "InputReport", "Provenance"]

log = logging.getLogger(__name__)

FEATURE_ITYPE: Final = "Feature.name"
"""The itype of sets of named features (the columns of a table)."""


@dataclass(frozen=True)
class Feature:
    """A named variable with a dtype, like a table column."""

    name: str
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.dtype is not None:
            object.__setattr__(self, "dtype", normalize_dtype(self.dtype))


@dataclass(frozen=True)
class InputReport:
    """What was dropped, merged or noticed while turning raw input into members."""

    n_input: int
    missing: int = 0
    duplicates: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    """Distinct values dropped because the registry field does not hold them (lenient)."""
    multiple: tuple[str, ...] = ()
    """Members that match more than one record of the registry (kept, and reported)."""
    standardized: tuple[tuple[str, str], ...] = ()
    """``(given, replacement)`` for values replaced by their suggestion (standardize)."""
    validated_against: str | None = None
    """The registry table the values were checked against; None if they were not."""
    stripped: tuple[str, ...] = ()
    """Distinct values given with surrounding white space, which was removed (lenient)."""

    @property
    def clean(self) -> bool:
        return not (self.missing or self.duplicates or self.dropped or self.multiple
                    or self.standardized or self.stripped)

    def summary(self) -> str:
        """One line: what was read, changed and dropped, and what it was validated against."""
        parts = [f"{self.n_input:,} values read", *self.changes()]
        parts.append(f"validated against {self.validated_against}" if self.validated_against
                     else "not validated against a registry")
        return "; ".join(parts)

    def changes(self) -> list[str]:
        """What was dropped, merged or replaced, one phrase each (empty when clean)."""
        parts = []
        if self.missing:
            parts.append(f"{self.missing:,} missing dropped")
        if self.stripped:
            parts.append(f"{len(self.stripped):,} stripped of surrounding white space "
                         f"({preview(self.stripped)})")
        if self.dropped:
            parts.append(f"{len(self.dropped):,} invalid dropped ({preview(self.dropped)})")
        if self.duplicates:
            parts.append(f"{len(self.duplicates):,} repeated ({preview(self.duplicates)})")
        if self.standardized:
            shown = preview([f"{old} -> {new}" for old, new in self.standardized])
            parts.append(f"{len(self.standardized):,} standardized ({shown})")
        if self.multiple:
            parts.append(f"{len(self.multiple):,} match several records "
                         f"({preview(self.multiple)})")
        return parts


@dataclass(frozen=True)
class Provenance:
    """Who created a stored set and when; not part of its identity."""

    created_at: datetime
    created_by: str
    updated_at: datetime | None = None


class FeatureSet:
    """A set of values of one field of one registry, identified by its content hash.

    Parameters
    ----------
    features
        :class:`Feature` records, ``(name, dtype)`` pairs, or plain names.
    type
        The set-level dtype of the values measured for each member (``"float"`` for a gene
        expression matrix). Sets of Features have none: each feature carries its own.
    name
        A human name; it points at the set in a store but is not part of its identity.
    itype
        ``Registry.field`` the members are values of; ``Feature.name`` by default.
    ordered
        Whether member order is part of the set's identity.
    """

    name: str | None
    description: str | None
    report: InputReport | None
    """What :meth:`from_values` dropped or merged; None for sets built otherwise."""
    provenance: Provenance | None
    """Creation time and creator once stored; None for a set not yet saved."""

    def __init__(
        self,
        features: Iterable[Feature | tuple[str, str | None] | str],
        type: Any = None,
        name: str | None = None,
        *,
        itype: str = FEATURE_ITYPE,
        ordered: bool = False,
        description: str | None = None,
    ) -> None:
        pairs = [_as_pair(feature) for feature in _as_list(features, "features", ordered)]
        if type is not None and parse_itype(itype)[0] == "Feature":
            # As in from_values: the type of features given by name alone.
            pairs, type = _typed_features(pairs, normalize_dtype(type)), None
        self._build(pairs, type, name, itype, ordered, description)

    def _build(self, pairs: list[tuple[Any, Any]], type: Any, name: str | None,
               itype: str, ordered: bool, description: str | None) -> None:
        is_feature_set = parse_itype(itype)[0] == "Feature"
        set_dtype = "" if type is None else normalize_dtype(type)
        if is_feature_set and set_dtype:
            raise InvalidDtypeError(
                "sets of Features have no set-level type; give each Feature its dtype instead"
            )
        if not is_feature_set and any(dtype for _, dtype in pairs):
            raise InvalidDtypeError(
                f"members of a {itype} set carry no dtype of their own; "
                "pass the dtype of the measured values as type= instead"
            )
        self._canonical = CanonicalSet(
            itype=itype,
            dtype=set_dtype,
            ordered=ordered,
            members=canonical_members(pairs, ordered),
        )
        self.name = None if name is None else check_set_name(name)
        self.description = description
        self.report = None
        self.provenance = None

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def from_values(
        cls,
        values: Iterable[Any],
        field: str = FEATURE_ITYPE,
        type: Any = None,
        name: str | None = None,
        *,
        ordered: bool = False,
        strict: bool = True,
        description: str | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        organism: str | None = None,
        version: str | None = None,
        standardize: bool = False,
        validate: bool = True,
    ) -> FeatureSet:
        """Build a set from identifiers, e.g. Ensembl gene ids for ``Gene.ensembl_gene_id``.

        Missing values (None, NaN, empty or blank strings) and values with surrounding
        white space (see :data:`~fsstore.canonical.WHITE_SPACE`) raise
        :class:`~fsstore.errors.InvalidMemberError`; with ``strict=False`` missing values
        are dropped and counted, and white space is stripped and the values listed, in
        :attr:`report`. Repeats in unordered input are merged and reported.
        For ``Feature.name``, ``type`` becomes the dtype of every feature.

        Values are validated against the field's registry in ``store`` (a Store or a path;
        None means the default store, ``FSSTORE_DIR`` or the nearest ``.fsstore`` upward,
        if there is one) when that store has the registry; ``organism`` and ``version``
        choose among its versions (default: the one registered last). Values the field
        does not hold raise :class:`~fsstore.errors.ValidationError`; with
        ``strict=False`` they are dropped and listed in ``report.dropped``. Values matching
        several records are kept and listed in ``report.multiple``. ``standardize=True``
        first replaces values that have one unambiguous suggestion (``Cd8a`` -> ``CD8A``,
        ``ENSG00000116288.13`` -> ``ENSG00000116288``, a symbol -> its Ensembl id).
        ``validate=False`` checks nothing. Sets of ``Feature.name`` take each feature's
        registered dtype.
        """
        raw = _as_list(values, "values", ordered)
        present = [_as_text(value) for value in raw if not _is_missing(value)]
        _reject_non_text(present)
        missing = len(raw) - len(present)
        if missing and strict:
            raise InvalidMemberError(
                f"{missing:,} of {len(raw):,} values are missing (None, NaN or blank); "
                "remove them, or pass strict=False (--lenient) to drop and report them",
                [value for value in raw if _is_missing(value)],
            )
        present, stripped = _stripped(present, strict)
        registry_name, _ = parse_itype(field)
        member_dtype = "" if type is None else normalize_dtype(type)
        checked = None
        if standardize and not validate:
            raise InvalidInputError("standardize=True replaces values by what a registry "
                                    "suggests, so it cannot be used with validate=False")
        if validate:
            checked, present, pairs = _validated(present, field, member_dtype, store,
                                                 organism, version, strict, standardize)
        report = InputReport(
            len(raw), missing=missing, duplicates=_repeated(present),
            dropped=checked.dropped if checked else (),
            multiple=checked.multiple if checked else (),
            standardized=checked.standardized if checked else (),
            validated_against=checked.registry if checked else None,
            stripped=stripped,
        )
        if not present and checked is not None and checked.dropped:
            raise EmptyFeatureSetError(
                f"no value is left to store: {report.summary()}; check the field "
                f"({field}) and the registry version"
            )
        feature_set = cls.__new__(cls)
        if registry_name == "Feature":
            if not (checked and checked.registry):
                pairs = [(value, member_dtype) for value in present]
            feature_set._build(pairs, None, name, field, ordered, description)
        else:
            pairs = [(value, "") for value in present]
            feature_set._build(pairs, type, name, field, ordered, description)
        feature_set.report = report
        if not report.clean:
            log.info("from_values: %s", report.summary())
        return feature_set

    @classmethod
    def from_df(
        cls,
        df: pd.DataFrame,
        name: str | None = None,
        *,
        ordered: bool = False,
        description: str | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        strict: bool = True,
        validate: bool = True,
    ) -> FeatureSet:
        """Build the set of a DataFrame's columns as Features with dtypes from pandas.

        A column name with surrounding white space raises
        :class:`~fsstore.errors.InvalidMemberError`; with ``strict=False`` it is stripped
        and listed in ``report.stripped``. When the store (as for :meth:`from_values`) has
        a Feature registry, every column
        must be a registered Feature: others raise
        :class:`~fsstore.errors.ValidationError`, or with ``strict=False`` are dropped and
        listed in ``report.dropped``. A column whose dtype disagrees with its registered
        Feature raises :class:`~fsstore.errors.FeatureDtypeMismatchError` in both modes.
        """
        if not isinstance(df, pd.DataFrame):
            hint = " (use series.to_frame())" if isinstance(df, pd.Series) else ""
            raise InvalidInputError(
                f"from_df needs a pandas DataFrame, not {type(df).__name__}{hint}"
            )
        columns, stripped = _stripped([_column_name(label) for label in df.columns], strict,
                                      what="column name")
        repeated = _repeated([nfc(column) for column in columns])
        if repeated:
            raise DuplicateColumnError(
                f"the table has duplicate column names: {preview(repeated)}; "
                "rename them so each feature has one name",
                repeated,
            )
        features = [
            Feature(column, dtype_of_series(df.iloc[:, position], column))
            for position, column in enumerate(columns)
        ]
        if not validate:
            feature_set = cls(features, None, name, ordered=ordered, description=description)
        else:
            feature_set = cls.from_features(features, name, ordered=ordered,
                                            description=description, store=store,
                                            strict=strict)
        if stripped:
            report = feature_set.report or InputReport(len(features))
            feature_set.report = dataclasses.replace(report, stripped=stripped)
        return feature_set

    @classmethod
    def from_features(
        cls,
        features: Iterable[Feature],
        name: str | None = None,
        *,
        ordered: bool = False,
        description: str | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        strict: bool = True,
    ) -> FeatureSet:
        """A set of Features, validated against the store's Feature registry if it has one.

        See :meth:`from_df` for what validation does.
        """
        from fsstore.validation import check_features, find_registry

        pairs = [_as_pair(feature) for feature in features]
        registry = find_registry(FEATURE_ITYPE, store)
        checked = None
        if registry is not None:
            given = len(pairs)
            pairs, checked = check_features(pairs, registry, strict=strict)
            if given and not pairs:
                raise EmptyFeatureSetError(
                    f"no feature is left to store: none of the {given:,} given is in "
                    f"{checked.registry}; register them as Features (`fsstore registry add "
                    "FILE --features`) or store them unvalidated (validate=False, "
                    "--no-validate)")
        feature_set = cls(pairs, None, name, ordered=ordered, description=description)
        feature_set.report = InputReport(
            len(pairs) + (len(checked.dropped) if checked else 0),
            dropped=checked.dropped if checked else (),
            validated_against=checked.registry if checked else None,
        )
        return feature_set

    # -- identity -------------------------------------------------------------------------

    @property
    def hash(self) -> str:
        """BLAKE3-256 of the canonical encoding, 64 lower-case hex characters."""
        return self._canonical.hash

    @property
    def uid(self) -> str:
        """The first 16 characters of the hash."""
        return self.hash[:UID_LENGTH]

    @property
    def canonical(self) -> CanonicalSet:
        return self._canonical

    @property
    def itype(self) -> str:
        return self._canonical.itype

    @property
    def registry(self) -> str:
        return parse_itype(self.itype)[0]

    @property
    def field(self) -> str:
        return parse_itype(self.itype)[1]

    @property
    def type(self) -> str | None:
        """The set-level dtype, or None (always None for sets of Features)."""
        return self._canonical.dtype or None

    @property
    def ordered(self) -> bool:
        return self._canonical.ordered

    @property
    def n(self) -> int:
        return len(self._canonical.members)

    # -- members --------------------------------------------------------------------------

    @property
    def members(self) -> pd.DataFrame:
        """One row per member: ``name`` and, for sets of Features, ``dtype``."""
        names = [name for name, _ in self._canonical.members]
        dtypes = [dtype or None for _, dtype in self._canonical.members]
        return pd.DataFrame({"name": names, "dtype": dtypes})

    @property
    def member_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._canonical.members)

    @property
    def features(self) -> list[Feature]:
        """The members as :class:`Feature` records."""
        return [Feature(name, dtype or None) for name, dtype in self._canonical.members]

    # -- provenance -----------------------------------------------------------------------

    @property
    def created_at(self) -> datetime | None:
        return self.provenance.created_at if self.provenance else None

    @property
    def created_by(self) -> str | None:
        return self.provenance.created_by if self.provenance else None

    @property
    def updated_at(self) -> datetime | None:
        if self.provenance is None:
            return None
        return self.provenance.updated_at or self.provenance.created_at

    # -- storing --------------------------------------------------------------------------

    def save(self, store: Store | str | None = None) -> FeatureSet:
        """Store the set (a no-op on the objects if it exists) and point its name at it.

        ``store`` is a :class:`~fsstore.store.Store`, a path, or None for the default store
        (``FSSTORE_DIR``, else the nearest ``.fsstore`` folder upward).
        """
        from fsstore.store import Store, default_store

        target = default_store() if store is None else store
        if not isinstance(target, Store):
            target = Store(target)
        return target.save(self)

    # -- dunder ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSet) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[str]:
        """The member names, in canonical order (the given order for ordered sets)."""
        return iter(self.member_names)

    def __contains__(self, name: object) -> bool:
        """Whether a member has this name (compared in Unicode NFC, as stored)."""
        if not isinstance(name, str):
            return False
        names = self.__dict__.get("_member_name_set")
        if names is None:  # built on first use: sets are immutable, so it stays true
            names = self.__dict__["_member_name_set"] = frozenset(self.member_names)
        return unicodedata.normalize("NFC", name) in names

    def __repr__(self) -> str:
        parts = [f"uid={self.uid!r}", f"name={self.name!r}", f"n={self.n}",
                 f"itype={self.itype!r}"]
        if self.type:
            parts.append(f"type={self.type!r}")
        if self.ordered:
            parts.append("ordered=True")
        return f"FeatureSet({', '.join(parts)})"


def _validated(present: list[Any], field: str, member_dtype: str, store: Any,
               organism: str | None, version: str | None, strict: bool, standardize: bool,
               ) -> tuple[Any, list[Any], list[tuple[str, str]]]:
    """Check ``present`` against the field's registry, if the store has one."""
    from fsstore.validation import check_features, check_values, find_registry

    registry = find_registry(field, store, organism, version, required=standardize)
    if registry is None:
        return None, present, []
    texts = _checked_text(present)
    if parse_itype(field)[0] == "Feature":
        pairs, checked = check_features([(value, member_dtype) for value in texts], registry,
                                        strict=strict, standardize=standardize)
        return checked, [pair[0] for pair in pairs], pairs
    checked = check_values(texts, registry, field, strict=strict, standardize=standardize)
    return checked, checked.values, []


def _checked_text(values: list[Any]) -> list[str]:
    not_text = [value for value in values if type(value) is not str]
    if not_text:
        raise InvalidMemberError(
            f"{len(not_text):,} member(s) are not strings: {preview(not_text)}; feature set "
            "members are identifiers, so convert them to text first",
            not_text,
        )
    return [nfc(value) for value in values]


def _typed_features(pairs: list[tuple[Any, Any]], dtype: str) -> list[tuple[Any, Any]]:
    """Features without a dtype take ``dtype``; one with another dtype is an error."""
    differing = [str(name) for name, own in pairs if own and normalize_dtype(own) != dtype]
    if differing:
        raise InvalidDtypeError(
            f"type={dtype!r} is the dtype of features given without one, but "
            f"{preview(differing)} carry another; drop type= or give every Feature its own")
    return [(name, own or dtype) for name, own in pairs]


def _as_pair(feature: Feature | tuple[str, str | None] | str) -> tuple[str, str]:
    if isinstance(feature, Feature):
        return feature.name, feature.dtype or ""
    if isinstance(feature, tuple) and len(feature) == 2:
        name, dtype = feature
        return _as_text(name), "" if dtype is None else normalize_dtype(dtype)
    return _as_text(feature), ""


def _as_list(values: Any, what: str, ordered: bool = False) -> list[Any]:
    if ordered and isinstance(values, set | frozenset):
        # Their order changes from one process to the next (string hashing is salted), and
        # with it the hash of an ordered set.
        raise InvalidInputError(
            f"an ordered set keeps the order its {what} are given in, and a "
            f"{type(values).__name__} has none; pass a list (or sorted(...))")
    if isinstance(values, pd.DataFrame):
        # Iterating a DataFrame gives its column names, which would silently become the set.
        raise InvalidInputError(
            f"{what} must be a list of values, not a DataFrame; for its columns as Features "
            "use FeatureSet.from_df(df), for the values of one column pass df[column]"
        )
    if isinstance(values, str | bytes):
        raise InvalidInputError(
            f"{what} must be a list of values, not one {type(values).__name__} "
            f"({shorten(repr(values))}); wrap a single value in a list"
        )
    if hasattr(values, "tolist"):
        values = values.tolist()
    try:
        return list(values)
    except TypeError:
        raise InvalidInputError(
            f"{what} must be a list (or another iterable) of values, not "
            f"{type(values).__name__}"
        ) from None


def _reject_non_text(values: list[Any]) -> None:
    other = [value for value in values if type(value) is not str]
    if other:
        raise InvalidMemberError(
            f"{len(other):,} value(s) are not text: {preview(other)}; feature set members are "
            "identifiers, so convert them to text first (for example with str)",
            other,
        )


def _as_text(value: Any) -> Any:
    # numpy.str_ and other str subclasses become plain str; anything else is left for the
    # canonical layer to reject with a message naming its type.
    return str(value) if isinstance(value, str) else value


def _stripped(values: list[Any], strict: bool, what: str = "value",
              ) -> tuple[list[Any], tuple[str, ...]]:
    """``values`` without surrounding white space, and the distinct values that had some.

    Strict, any such value is an error: a member never has it, and files lose it when they
    are read, so ``from_values([' A'])`` must not give another set than a file holding it.
    """
    padded = tuple(dict.fromkeys(value for value in values if type(value) is str
                                 and value != strip_white_space(value)))
    if not padded:
        return values, ()
    if strict:
        raise InvalidMemberError(
            f"{len(padded):,} {what}(s) begin or end with white space: {preview(padded)}; "
            "strip it first (files are read with it removed), or pass strict=False "
            "(--lenient) to strip it and list them in the report",
            padded,
        )
    return [strip_white_space(value) if type(value) is str else value
            for value in values], padded


def _is_missing(value: Any) -> bool:
    # Blank means empty once the white space files lose is removed; control characters
    # such as U+0085 are not blank but refused, as they are when a file holds them.
    if type(value) is str:
        return not strip_white_space(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not strip_white_space(value)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _repeated(values: Sequence[str]) -> tuple[str, ...]:
    counts = Counter(values)
    return tuple(value for value, count in counts.items() if count > 1)


def _column_name(label: Any) -> str:
    if isinstance(label, str):
        return str(label)
    if isinstance(label, int) and not isinstance(label, bool):
        return str(label)
    raise InvalidMemberError(
        f"column label {label!r} ({type(label).__name__}) cannot be a feature name; "
        "use text column names (flatten a MultiIndex first)",
        [label],
    )
