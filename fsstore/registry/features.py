"""The built-in Feature registry: named features with dtypes, filled by users.

Its versions are ordinary registry tables (registry ``Feature``, no organism, fields
``name`` and ``dtype``) labelled ``v1``, ``v2``, ...: each fill writes a new version holding
every feature registered so far plus the new ones, so earlier versions stay readable. A
feature's dtype is fixed once registered; registering it again with another dtype is an
error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from fsstore.canonical import nfc, strip_white_space
from fsstore.dtypes import normalize_dtype
from fsstore.errors import FeatureDtypeMismatchError, InvalidInputError
from fsstore.featureset import Feature
from fsstore.index import Event, View
from fsstore.registry.catalog import (
    FEATURE_REGISTRY,
    RegisterOutcome,
    RegistryInfo,
    load_registry,
    store_table,
)
from fsstore.registry.lookup import Registry
from fsstore.registry.table import build_table

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = ["dtype_agrees", "feature_dtypes", "register_features"]

log = logging.getLogger(__name__)

NAME_FIELD: Final = "name"
DTYPE_FIELD: Final = "dtype"
_NUMBERS: Final = ("int", "float", "num")


def dtype_agrees(registered: str, actual: str) -> bool:
    """Whether a column of dtype ``actual`` fits a Feature registered with ``registered``.

    Equal dtypes agree; a ``num`` Feature takes ``int`` and ``float`` columns; a ``cat``
    or ``cat[Label]`` Feature takes categorical and text columns. Nothing else agrees.
    """
    if registered == actual:
        return True
    if registered == "num":
        return actual in _NUMBERS
    if registered == "cat" or registered.startswith("cat["):
        return actual in ("cat", "str") or (registered == "cat" and actual.startswith("cat["))
    return False


def feature_dtypes(registry: Registry) -> dict[str, str]:
    """Each registered feature name with its dtype."""
    names = registry.column(NAME_FIELD)
    dtypes = registry.column(DTYPE_FIELD)
    return {name: dtype for name, dtype in zip(names, dtypes, strict=True)
            if name and dtype}


def register_features(store: Store, source: Any,
                      description: str | None = None) -> RegisterOutcome:
    """Add features to the store's Feature registry.

    ``source`` is a DataFrame, whose columns become features with dtypes inferred as
    :meth:`~fsstore.FeatureSet.from_df` does, or an iterable of :class:`~fsstore.Feature`
    records or ``(name, dtype)`` pairs. Features already registered with the same dtype are
    left as they are; with another dtype, nothing is written and
    :class:`~fsstore.errors.FeatureDtypeMismatchError` is raised.
    """
    wanted = _features_of(source)
    result: dict[str, Any] = {"created": False, "info": None, "dropped": 0}

    def build(view: View) -> list[Event]:
        # Runs under the store's write lock, so two fills cannot both write version k+1.
        # Shortcoming: each fill rewrites the whole table (one row per feature), so a
        # fill costs time in proportion to every feature registered so far.
        events = view.find("registry", "registry", FEATURE_REGISTRY).to_pylist()
        latest = RegistryInfo.from_event(events[-1]) if events else None
        known = feature_dtypes(load_registry(store, latest)) if latest else {}
        _check_agreement(wanted, known)
        new = {name: dtype for name, dtype in wanted.items() if name not in known}
        result["info"] = latest
        if not new:
            return []
        merged = {**known, **new}
        table = build_table(FEATURE_REGISTRY, None, {NAME_FIELD: list(merged),
                                                     DTYPE_FIELD: list(merged.values())})
        version = f"v{len(events) + 1}"
        result["created"] = store_table(store, table, version)
        info = RegistryInfo(FEATURE_REGISTRY, None, version, table.hash, table.fields,
                            table.n, description)
        result["info"] = info
        return [{"kind": "registry", "hash": info.hash, "registry": info.registry,
                 "organism": None, "version": version, "fields": list(info.fields),
                 "n": info.n, "description": description}]

    recorded = bool(store.index.commit(build))
    info = result["info"]
    assert info is not None  # set by build: wanted is never empty
    log.info("Feature registry: %s", f"version {info.version} recorded" if recorded
             else "every feature was already registered")
    return RegisterOutcome(info, bool(result["created"]), recorded)


def _features_of(source: Any) -> dict[str, str]:
    if isinstance(source, pd.DataFrame):
        from fsstore.featureset import FeatureSet

        features: Sequence[Feature] = FeatureSet.from_df(source, validate=False).features
    elif isinstance(source, Iterable) and not isinstance(source, str | bytes):
        features = [_as_feature(item) for item in source]
    else:
        raise InvalidInputError(
            f"cannot read features from a {type(source).__name__}; give a DataFrame or a "
            "list of Feature records"
        )
    if not features:
        raise InvalidInputError("no features were given to register")
    wanted: dict[str, str] = {}
    for feature in features:
        if not isinstance(feature.name, str) or not strip_white_space(feature.name):
            raise InvalidInputError(f"feature name {feature.name!r} is empty or not text")
        if feature.name != strip_white_space(feature.name):
            # As for members: a set could never hold a Feature registered under this name.
            raise InvalidInputError(
                f"feature name {feature.name!r} begins or ends with white space; strip it "
                "first (files are read with it removed)"
            )
        if not feature.dtype:
            raise InvalidInputError(
                f"feature {feature.name!r} has no dtype; a registered Feature needs one, "
                "for example Feature('n_counts', 'int')"
            )
        name = nfc(feature.name)
        if wanted.get(name, feature.dtype) != feature.dtype:
            raise FeatureDtypeMismatchError(
                f"feature {name!r} is given twice with different dtypes "
                f"({wanted[name]}, {feature.dtype})", [name])
        wanted[name] = feature.dtype
    return wanted


def _as_feature(item: Any) -> Feature:
    if isinstance(item, Feature):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return Feature(item[0], None if item[1] is None else normalize_dtype(item[1]))
    raise InvalidInputError(f"{item!r} is not a Feature or a (name, dtype) pair")


def _check_agreement(wanted: dict[str, str], known: dict[str, str]) -> None:
    clashes = [name for name, dtype in wanted.items()
               if name in known and known[name] != dtype]
    if clashes:
        shown = ", ".join(f"{name} ({known[name]}, given {wanted[name]})"
                          for name in clashes[:5]) + (", ..." if len(clashes) > 5 else "")
        raise FeatureDtypeMismatchError(
            f"{len(clashes):,} features are already registered with another dtype: {shown}; "
            "a Feature's dtype does not change, so give the column another name or convert it",
            clashes,
        )
