"""Checking values against a store's registry: what ``from_values`` and ``from_df`` call.

Which store: the ``store`` argument (a :class:`~fsstore.Store` or a path), else the
default store (``FSSTORE_DIR``, else the nearest ``.fsstore`` folder upward) when there is
one. Which registry: the one named by the field's itype (``Gene`` for
``Gene.ensembl_gene_id``), for ``organism`` when several are registered, at ``version``
or else the version registered last. A store without that registry checks nothing, and
the set's report says so (``validated_against`` is None).

Shortcoming: which registry version a set was validated against lives only in its report
(and the command's output); the index does not record it with the set.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fsstore.canonical import nfc, parse_itype
from fsstore.errors import (
    FeatureDtypeMismatchError,
    InvalidItypeError,
    ValidationError,
    preview,
)
from fsstore.registry.catalog import choose_version, load_registry, registry_versions
from fsstore.registry.features import dtype_agrees, feature_dtypes
from fsstore.registry.inspection import Inspection, Mapping, Standardized
from fsstore.registry.lookup import Registry

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = [
    "Checked",
    "check_features",
    "check_values",
    "find_registry",
    "inspect",
    "map_values",
    "resolve_store",
    "standardize",
]

log = logging.getLogger(__name__)

StoreArgument = Any
"""A :class:`~fsstore.Store`, a path to one, or None for the default store if any."""


@dataclass(frozen=True)
class Checked:
    """Values after checking against a registry field, and what happened to the others."""

    values: list[str]
    dropped: tuple[str, ...] = ()
    multiple: tuple[str, ...] = ()
    standardized: tuple[tuple[str, str], ...] = ()
    registry: str | None = None


def resolve_store(store: StoreArgument) -> Store | None:
    """The store to validate against (see the module docstring), or None."""
    from fsstore.store import ENV_STORE, Store, find_store

    if store is not None:
        return store if isinstance(store, Store) else Store(store)
    configured = os.environ.get(ENV_STORE)
    if configured:
        return Store(configured)
    found = find_store()
    return Store(found) if found is not None else None


def find_registry(itype: str, store: StoreArgument, organism: str | None = None,
                  version: str | None = None, *, required: bool = False) -> Registry | None:
    """The registry version that values of ``itype`` are checked against, or None.

    None when there is no store or the store has no such registry, unless ``required``
    (or an organism or version was asked for), which raise
    :class:`~fsstore.errors.RegistryNotFoundError` instead.
    """
    from fsstore.errors import RegistryNotFoundError

    name, field = parse_itype(itype)
    target = resolve_store(store)
    if target is None:
        if required:
            raise RegistryNotFoundError(
                f"no store to find registry {name} in: pass store=, set FSSTORE_DIR, or run "
                "`fsstore init` and register it", name)
        return None
    versions = registry_versions(target, name)
    if not versions and not (required or organism or version):
        log.info("store %s has no registry %s; %s values are not validated",
                 target.location, name, itype)
        return None
    registry = load_registry(target, choose_version(target, name, organism, version))
    registry.field_name(field)
    registry.several_organisms = len({info.organism for info in versions}) > 1
    return registry


def check_values(present: list[str], registry: Registry, itype: str, *, strict: bool,
                 standardize: bool = False) -> Checked:
    """Keep the values ``itype``'s field holds; raise or drop (``strict``) the others.

    ``present`` are NFC text values. With ``standardize``, values with one unambiguous
    suggestion (case, version suffix, another field, synonym) are replaced first.
    """
    field = parse_itype(itype)[1]
    known = registry.counts(field)
    replaced: dict[str, str] = {}
    if standardize:
        fixed = registry.standardize(present, field)
        replaced = {old: str(item.replacement) for old, item in fixed.changed.items()}
        present = [replaced.get(value, value) for value in present]
    invalid = list(dict.fromkeys(value for value in present if value not in known))
    if invalid and strict:
        raise validation_error(registry.inspect_text(invalid, field), len(set(present)),
                               registry.version,
                               registry.organism if registry.several_organisms else None)
    kept = [value for value in present if value in known] if invalid else present
    multiple = tuple(dict.fromkeys(value for value in kept if known[value] > 1))
    return Checked(kept, tuple(invalid), multiple, tuple(replaced.items()), registry.label)


def check_features(pairs: Sequence[tuple[str, str]], registry: Registry, *, strict: bool,
                   standardize: bool = False) -> tuple[list[tuple[str, str]], Checked]:
    """Check feature names against the Feature registry and give them registered dtypes.

    A member without a dtype takes the registered one; a dtype that disagrees with the
    registered one (see :func:`~fsstore.registry.features.dtype_agrees`) raises
    :class:`~fsstore.errors.FeatureDtypeMismatchError`, in lenient mode too.
    """
    names = [nfc(name) for name, _ in pairs]
    checked = check_values(names, registry, "Feature.name", strict=strict,
                           standardize=standardize)
    replaced = dict(checked.standardized)
    registered = feature_dtypes(registry)
    kept: list[tuple[str, str]] = []
    clashes = []
    for name, (_, dtype) in zip(names, pairs, strict=True):
        name = replaced.get(name, name)
        if name not in registered:
            continue
        if dtype and not dtype_agrees(registered[name], dtype):
            clashes.append(f"{name} ({dtype}, registered as {registered[name]})")
        kept.append((name, registered[name]))
    if clashes:
        raise FeatureDtypeMismatchError(
            f"{len(clashes):,} columns have a dtype that disagrees with their registered "
            f"Feature in {registry.label}: {_listed(clashes)}; convert the columns (e.g. "
            "DataFrame.astype) or register features under other names",
            [clash.split(" (")[0] for clash in clashes],
        )
    return kept, checked


def _listed(items: Sequence[str], limit: int = 5) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f", ... ({more:,} more)" if more > 0 else "")


def validation_error(inspection: Inspection, distinct: int, version: str | None = None,
                     organism: str | None = None) -> ValidationError:
    """The error for values that did not validate, saying how to go on.

    The commands it suggests name ``organism`` and ``version`` when given, so that they
    check against the same registry version (a registry of several organisms needs the
    organism named).
    """
    invalid = inspection.not_validated
    itype = inspection.itype
    parts = [f"{len(invalid):,} of {distinct:,} distinct values are not in {itype} of "
             f"{inspection.registry}: {preview(invalid)}"]
    fixable = [item for item in inspection.suggestions.values() if not item.ambiguous]
    if inspection.suggestions:
        example = (fixable or list(inspection.suggestions.values()))[0]
        count = len(inspection.suggestions)
        parts.append(f"{count:,} {'has' if count == 1 else 'have'} a suggestion "
                     f"({len(fixable):,} unambiguous, e.g. {example.describe()})")
    if inspection.hint:
        parts.append(inspection.hint)
    option = (f" --organism {shlex.quote(organism)}" if organism else "") + (
        f" --registry-version {shlex.quote(version)}" if version else "")
    argument = (f", organism={organism!r}" if organism else "") + (
        f", version={version!r}" if version else "")
    features = itype == "Feature.name"
    command = f"`fsstore validate FILE --field {itype}{option}`" + (
        " (--header for a table's columns)" if features else "")
    advice = f"see them with {command} or fsstore.inspect(values, {itype!r}{argument})"
    if fixable:
        advice += ", apply suggestions with standardize=True (--standardize)"
    if features:
        advice += (", register them as Features (`fsstore registry add FILE --features`), "
                   "or drop them with strict=False (--lenient)")
    elif len(invalid) == distinct:
        # Nothing validates: another organism or id scheme, more likely than typos.
        advice += (", or, as none of them is in this registry, name their organism "
                   "(organism=, --organism) or store them unvalidated (validate=False, "
                   "--no-validate)")
    else:
        advice += ", or drop them with strict=False (--lenient)"
    parts.append(advice)
    return ValidationError("; ".join(parts), invalid, itype, inspection.registry)


# -- the public helpers -----------------------------------------------------------------------

def inspect(values: Iterable[Any], field: str, *, store: StoreArgument = None,
            organism: str | None = None, version: str | None = None) -> Inspection:
    """Check values against a registry field: validated, not validated, suggestions.

    ``field`` is an itype such as ``Gene.ensembl_gene_id``; the registry is chosen as the
    module docstring says, and must exist.
    """
    registry = find_registry(field, store, organism, version, required=True)
    assert registry is not None  # required=True raises instead
    return registry.inspect(values, field)


def standardize(values: Iterable[Any], field: str, *, store: StoreArgument = None,
                organism: str | None = None, version: str | None = None) -> Standardized:
    """Replace values that have one unambiguous suggestion for ``field`` by it."""
    registry = find_registry(field, store, organism, version, required=True)
    assert registry is not None  # required=True raises instead
    return registry.standardize(values, field)


def map_values(values: Iterable[Any], source: str, target: str, *,
               store: StoreArgument = None, organism: str | None = None,
               version: str | None = None) -> Mapping:
    """Convert values between two fields of one registry (``Gene.symbol`` to
    ``Gene.ensembl_gene_id``), reporting ambiguous values instead of picking one."""
    if parse_itype(source)[0] != parse_itype(target)[0]:
        raise InvalidItypeError(f"{source} and {target} are fields of different registries; "
                                "map between fields of one registry")
    registry = find_registry(source, store, organism, version, required=True)
    assert registry is not None  # required=True raises instead
    return registry.map(values, source, target)
