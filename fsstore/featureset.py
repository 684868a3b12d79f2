"""Features and feature sets: building them from values, records and DataFrames."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from fsstore.canonical import UID_LENGTH, CanonicalSet, canonical_members, nfc, parse_itype
from fsstore.dtypes import dtype_of_series, normalize_dtype
from fsstore.errors import (
    DuplicateColumnError,
    InvalidDtypeError,
    InvalidMemberError,
    preview,
)
from fsstore.names import check_name

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
    """What was dropped or merged while turning raw input into members."""

    n_input: int
    missing: int = 0
    duplicates: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.missing or self.duplicates or self.dropped)

    def summary(self) -> str:
        parts = [f"{self.n_input} values read"]
        if self.missing:
            parts.append(f"{self.missing} missing dropped")
        if self.dropped:
            parts.append(f"{len(self.dropped)} invalid dropped ({preview(self.dropped)})")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} repeated ({preview(self.duplicates)})")
        return "; ".join(parts)


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
        pairs = [_as_pair(feature) for feature in features]
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
        self.name = None if name is None else check_name(name)
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
    ) -> FeatureSet:
        """Build a set from identifiers, e.g. Ensembl gene ids for ``Gene.ensembl_gene_id``.

        Missing values (None, NaN, empty or blank strings) raise
        :class:`~fsstore.errors.InvalidMemberError`; with ``strict=False`` they are dropped
        and counted in :attr:`report`. Repeats in unordered input are merged and reported.
        For ``Feature.name``, ``type`` becomes the dtype of every feature.
        """
        raw = values.tolist() if hasattr(values, "tolist") else list(values)
        present = [_as_text(value) for value in raw if not _is_missing(value)]
        missing = len(raw) - len(present)
        if missing and strict:
            raise InvalidMemberError(
                f"{missing} of {len(raw)} values are missing (None, NaN or blank); "
                "remove them, or pass strict=False (--lenient) to drop and report them",
                [value for value in raw if _is_missing(value)],
            )
        report = InputReport(len(raw), missing=missing, duplicates=_repeated(present))
        registry, _ = parse_itype(field)
        feature_set = cls.__new__(cls)
        if registry == "Feature":
            member_dtype = "" if type is None else normalize_dtype(type)
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
    ) -> FeatureSet:
        """Build the set of a DataFrame's columns as Features with dtypes from pandas."""
        columns = [_column_name(label) for label in df.columns]
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
        return cls(features, None, name, ordered=ordered, description=description)

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

    def __repr__(self) -> str:
        parts = [f"uid={self.uid!r}", f"name={self.name!r}", f"n={self.n}",
                 f"itype={self.itype!r}"]
        if self.type:
            parts.append(f"type={self.type!r}")
        if self.ordered:
            parts.append("ordered=True")
        return f"FeatureSet({', '.join(parts)})"


def _as_pair(feature: Feature | tuple[str, str | None] | str) -> tuple[str, str]:
    if isinstance(feature, Feature):
        return feature.name, feature.dtype or ""
    if isinstance(feature, tuple) and len(feature) == 2:
        name, dtype = feature
        return _as_text(name), "" if dtype is None else normalize_dtype(dtype)
    return _as_text(feature), ""


def _as_text(value: Any) -> Any:
    # numpy.str_ and other str subclasses become plain str; anything else is left for the
    # canonical layer to reject with a message naming its type.
    return str(value) if isinstance(value, str) else value


def _is_missing(value: Any) -> bool:
    if type(value) is str:
        return not value or value.isspace()
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
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
