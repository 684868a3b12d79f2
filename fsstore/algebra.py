"""Set algebra on feature sets: union, intersection, difference, and the diff of two sets.

Results are new, unsaved :class:`FeatureSet` objects (save them to store them). Sets can be
combined only when they are sets of the same itype and set-level dtype. Members of sets of
Features are ``(name, dtype)`` pairs: a feature with two dtypes cannot be in one set, so a
union that would need it raises :class:`IncompatibleSetsError`, and :func:`diff` reports it
as changed rather than removed and added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from fsstore.canonical import CanonicalSet
from fsstore.errors import (
    EmptyFeatureSetError,
    IncompatibleSetsError,
    InvalidInputError,
    preview,
)
from fsstore.featureset import FeatureSet
from fsstore.index import View
from fsstore.names import check_name

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = ["SetDiff", "diff", "difference", "intersection", "union", "union_stored"]

Pair = tuple[str, str]


@dataclass(frozen=True)
class SetDiff:
    """How set ``b`` differs from set ``a``: members added, removed, and dtypes changed."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[tuple[str, str | None, str | None], ...]
    """``(name, dtype in a, dtype in b)`` for features whose dtype differs."""
    common: int
    """Members in both, with the same dtype."""
    order: str | None = None
    """How the order differs, for sets of which at least one is ordered: ``"reordered"``
    (both ordered, the common members in another order), ``"now ordered"`` or ``"no longer
    ordered"``; None when it does not."""

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed or self.order)


def union(*sets: FeatureSet, name: str | None = None) -> FeatureSet:
    """Members in any of the sets."""
    itype, dtype = _common_kind(sets, "union")
    chosen: dict[str, str] = {}
    conflicts = []
    for feature_set in sets:
        for member, member_dtype in feature_set.canonical.members:
            known = chosen.setdefault(member, member_dtype)
            if known != member_dtype:
                conflicts.append(member)
    if conflicts:
        raise IncompatibleSetsError(
            f"the union would hold features with two dtypes: {preview(sorted(set(conflicts)))}"
            "; make their dtypes agree first")
    return _result(list(chosen.items()), itype, dtype, name, "union")


def intersection(*sets: FeatureSet, name: str | None = None) -> FeatureSet:
    """Members (with the same dtype) in every one of the sets."""
    itype, dtype = _common_kind(sets, "intersection")
    common = set(sets[0].canonical.members)
    for feature_set in sets[1:]:
        common &= set(feature_set.canonical.members)
    return _result(sorted(common), itype, dtype, name, "intersection")


def difference(first: FeatureSet, *others: FeatureSet, name: str | None = None) -> FeatureSet:
    """Members of ``first`` in none of ``others``."""
    itype, dtype = _common_kind((first, *others), "difference")
    removed: set[Pair] = set()
    for feature_set in others:
        removed |= set(feature_set.canonical.members)
    left = [pair for pair in first.canonical.members if pair not in removed]
    return _result(left, itype, dtype, name, "difference")


def diff(a: FeatureSet, b: FeatureSet) -> SetDiff:
    """What changed from ``a`` to ``b`` (of the same itype; dtypes compared per feature)."""
    _check_sets((a, b), "diff")
    if a.itype != b.itype:
        raise IncompatibleSetsError(
            f"cannot diff a {a.itype} set with a {b.itype} set; they hold different things")
    old = dict(a.canonical.members)
    new = dict(b.canonical.members)
    added = tuple(sorted(member for member in new if member not in old))
    removed = tuple(sorted(member for member in old if member not in new))
    changed = tuple((member, old[member] or None, new[member] or None)
                    for member in sorted(old.keys() & new.keys())
                    if old[member] != new[member])
    common = sum(1 for member in old.keys() & new.keys() if old[member] == new[member])
    return SetDiff(added, removed, changed, common, _order_change(a, b))


def _order_change(a: FeatureSet, b: FeatureSet) -> str | None:
    if a.ordered != b.ordered:
        return "now ordered" if b.ordered else "no longer ordered"
    if not a.ordered:
        return None
    shared = set(a.member_names) & set(b.member_names)
    before = [name for name in a.member_names if name in shared]
    after = [name for name in b.member_names if name in shared]
    return "reordered" if before != after else None


def union_stored(store: Store, refs: Sequence[str], name: str | None = None) -> FeatureSet:
    """The union of stored sets, through the member index: every distinct member is read
    once, however many of the sets hold it.

    Sets of Features carry a dtype per member, which the member index does not keep; their
    union reads their manifests instead (such sets are table columns, small).
    """
    from fsstore.members import snapshot

    if isinstance(refs, str) or not all(isinstance(ref, str) for ref in refs):
        raise InvalidInputError("refs is a list of set names or hash prefixes, e.g. "
                                "Store.union(['pbmc-var', '874b04'])")
    known = store.index.read(_kinds)
    # A full hash the index records is that set; anything else (names, prefixes) resolves.
    hashes = list(dict.fromkeys(ref if ref in known else store.resolve(ref) for ref in refs))
    if not hashes:
        raise EmptyFeatureSetError("a union needs at least one set; none were given")
    kinds = {(known[hash_hex][0], known[hash_hex][1] or "") for hash_hex in hashes}
    if len(kinds) > 1:
        shown = ", ".join(f"{itype}{'[' + dtype + ']' if dtype else ''}"
                          for itype, dtype in sorted(kinds))
        raise IncompatibleSetsError(
            f"cannot take the union of sets of different kinds ({shown}); "
            "combine sets of one itype and dtype")
    itype, dtype = next(iter(kinds))
    if itype.rpartition(".")[0] == "Feature":
        return union(*(store.get(hash_hex) for hash_hex in hashes), name=name)
    names = snapshot(store).union(hashes)
    return _from_index(names, itype, dtype or "", name)


def _from_index(names: pa.Array, itype: str, dtype: str, name: str | None) -> FeatureSet:
    """A set of member names taken from the member index, without validating them again.

    They come from verified manifests, once each, sorted by their UTF-8 bytes (Arrow's
    string order), which is the canonical order; that order is checked here, and anything
    else goes through the validating constructor.
    """
    ordered = len(names) < 2 or pc.all(pc.less(names[:-1], names[1:])).as_py()
    if not ordered:
        return FeatureSet(names.to_pylist(), dtype or None, name, itype=itype)
    feature_set = FeatureSet.__new__(FeatureSet)
    feature_set._canonical = CanonicalSet(itype=itype, dtype=dtype, ordered=False,
                                          members=tuple(zip(names.to_pylist(), repeat(""))))
    feature_set.name = None if name is None else check_name(name)
    feature_set.description = None
    feature_set.report = None
    feature_set.provenance = None
    return feature_set


def _kinds(view: View) -> dict[str, tuple[str, str | None]]:
    """itype and set-level dtype of every stored set, by hash."""
    events = view.table("set").select(["hash", "itype", "dtype"])
    return {hash_hex: (itype, dtype) for hash_hex, itype, dtype in zip(
        events["hash"].to_pylist(), events["itype"].to_pylist(), events["dtype"].to_pylist(),
        strict=True)}


def _check_sets(sets: Sequence[object], operation: str) -> None:
    for given in sets:
        if not isinstance(given, FeatureSet):
            raise InvalidInputError(
                f"{operation} takes FeatureSets as arguments ({operation}(a, b, ...), or "
                f"{operation}(*sets) for a list), not {type(given).__name__}; for stored sets "
                "by name use Store.union(names)")


def _common_kind(sets: Sequence[FeatureSet], operation: str) -> tuple[str, str | None]:
    _check_sets(sets, operation)
    if not sets:
        raise EmptyFeatureSetError(f"a {operation} needs at least one set; none were given")
    kinds = {(feature_set.itype, feature_set.type) for feature_set in sets}
    if len(kinds) > 1:
        shown = ", ".join(f"{itype}{'[' + dtype + ']' if dtype else ''}"
                          for itype, dtype in sorted(kinds, key=str))
        raise IncompatibleSetsError(
            f"cannot take the {operation} of sets of different kinds ({shown}); "
            "combine sets of one itype and dtype")
    return sets[0].itype, sets[0].type


def _result(pairs: Sequence[Pair], itype: str, dtype: str | None, name: str | None,
            operation: str) -> FeatureSet:
    if not pairs:
        why = {"intersection": "the sets share no member",
               "difference": "the other sets hold every member of the first"}.get(
                   operation, "the sets have no member")
        raise EmptyFeatureSetError(f"the {operation} is empty: {why}; a feature set needs at "
                                   "least one member")
    if itype.rpartition(".")[0] == "Feature":
        return FeatureSet([(member, member_dtype or None) for member, member_dtype in pairs],
                          None, name, itype=itype)
    return FeatureSet([member for member, _ in pairs], dtype, name, itype=itype)
