"""Questions asked of a store: sets by name, itype, registry or member; overlapping sets;
datasets measuring a set or a member.

Each answer is a pandas DataFrame (one row per set or per dataset slot), so that Python
callers can filter further and the command line can print it as a table or as JSON.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import pandas as pd

from fsstore.canonical import nfc
from fsstore.errors import InvalidInputError
from fsstore.featureset import FeatureSet
from fsstore.index import View
from fsstore.links import dataset_events, latest_labels, links_of_sets
from fsstore.members import snapshot

if TYPE_CHECKING:
    from fsstore.store import Store

__all__ = ["DEFAULT_MIN_JACCARD", "datasets_measuring", "find_sets", "similar"]

log = logging.getLogger(__name__)

DEFAULT_MIN_JACCARD: Final = 0.5
_SIMILAR_COLUMNS: Final = ["hash", "names", "itype", "n", "shared", "jaccard", "containment"]


def find_sets(store: Store, *, name: str | None = None, itype: str | None = None,
              registry: str | None = None, member: str | None = None,
              ignore_case: bool = False) -> pd.DataFrame:
    """Stored sets matching every filter given, oldest first.

    ``name`` is a glob pattern (``GRCh*``) over the names pointing at each set now;
    ``member`` a member name (``CD8A``), exact unless ``ignore_case``. The columns are those
    of :meth:`Store.sets`, plus ``member`` (the matching spelling) with ``member``.
    """
    sets = store.sets()
    if itype is not None:
        sets = sets[sets["itype"] == itype]
    if registry is not None:
        sets = sets[sets["registry"] == registry]
    if name is not None:
        pattern = name

        def matches(names: list[str]) -> bool:
            return any(fnmatch.fnmatchcase(value, pattern) for value in names)

        sets = sets[sets["names"].map(matches)]
    if member is not None:
        holding = snapshot(store).sets_with_member(member, ignore_case=ignore_case)
        spelled = holding.groupby("hash")["member"].agg(lambda values: sorted(set(values)))
        sets = sets[sets["hash"].isin(spelled.index)].copy()
        sets["member"] = [", ".join(spelled[value]) for value in sets["hash"]]
    return pd.DataFrame(sets).reset_index(drop=True)


def similar(store: Store, query: FeatureSet | str | Iterable[str], *,
            min_jaccard: float | None = None, min_containment: float | None = None,
            itype: str | None = None, limit: int | None = None,
            include_self: bool = False) -> pd.DataFrame:
    """Stored sets overlapping ``query`` at or above a threshold, best first.

    ``query`` is a :class:`FeatureSet`, the name or hash prefix of a stored set, or member
    names. Jaccard is ``|Q & S| / |Q | S|``; containment ``|Q & S| / |Q|`` (how much of the
    query the set holds). With neither threshold, ``min_jaccard`` is 0.5. Sets are ranked by
    Jaccard (by containment when only that threshold is given), then by hash.
    """
    for label, value in (("min_jaccard", min_jaccard), ("min_containment", min_containment)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"{label} must be a number between 0 and 1, not "
                                    f"{type(value).__name__} {value!r}")
        if not 0.0 <= value <= 1.0:
            raise InvalidInputError(f"{label} must be between 0 and 1, not {value}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise InvalidInputError(f"limit must be a whole number of at least 1, not {limit!r}")
    if min_jaccard is None and min_containment is None:
        min_jaccard = DEFAULT_MIN_JACCARD
    own_hash, names, query_itype = _query_members(store, query)
    if itype is None:
        itype = query_itype
    if not names:
        raise InvalidInputError("the query has no members; give at least one")
    index = snapshot(store)
    found = index.scores(names, min_jaccard=min_jaccard, min_containment=min_containment,
                         itype=itype)
    keep = pd.Series(True, index=found.index)
    if own_hash is not None and not include_self:
        keep &= found["hash"] != own_hash
    found = found[keep]
    rank = "jaccard" if min_jaccard is not None else "containment"
    found = found.sort_values([rank, "hash"], ascending=[False, True], kind="stable")
    if limit is not None:
        found = found.head(limit)
    names_now = index.names_of(found["hash"].tolist())
    found = found.copy()
    found["names"] = pd.Series([names_now.get(value, []) for value in found["hash"]],
                               index=found.index, dtype=object)
    return pd.DataFrame(found[_SIMILAR_COLUMNS]).reset_index(drop=True)


def datasets_measuring(store: Store, *, set_ref: str | None = None, member: str | None = None,
                       ignore_case: bool = False) -> pd.DataFrame:
    """Dataset slots holding a given set, or any set that holds a given member, now.

    Columns: ``dataset``, ``uid``, ``name``, ``path``, ``slot``, ``hash`` (the set) and,
    with ``member``, ``member`` (the matching spelling).
    """
    if (set_ref is None) == (member is None):
        raise InvalidInputError("give either a set or a member to find the datasets of")
    spelled: dict[str, str] = {}
    if set_ref is not None:
        hashes = [store.resolve(set_ref)]
    else:
        assert member is not None
        holding = snapshot(store).sets_with_member(member, ignore_case=ignore_case)
        spelled = dict(zip(holding["hash"], holding["member"], strict=True))
        hashes = list(spelled)
    def query(view: View) -> tuple[pd.DataFrame, dict[str, tuple[str | None, str | None]]]:
        links = links_of_sets(view, sorted(set(hashes)))
        events = dataset_events(view, sorted(set(links["dataset"])))
        return links, latest_labels(events, view)

    links, labels = store.index.read(query)
    rows = []
    for dataset, slot, hash_hex in links.itertuples(index=False):
        name, path = labels.get(dataset, (None, None))
        rows.append({"dataset": dataset, "uid": str(dataset)[:16], "name": name, "path": path,
                     "slot": slot, "hash": hash_hex})
        if member is not None:
            rows[-1]["member"] = spelled[hash_hex]
    columns = ["dataset", "uid", "name", "path", "slot", "hash"]
    if member is not None:
        columns.append("member")
    return pd.DataFrame(rows, columns=columns)


def _query_members(store: Store, query: FeatureSet | str | Iterable[str]
                   ) -> tuple[str | None, list[str], str | None]:
    if isinstance(query, str):
        query = store.get(query)
    if isinstance(query, FeatureSet):
        return query.hash, list(query.member_names), query.itype
    names = []
    for value in query:
        if not isinstance(value, str):
            raise InvalidInputError(
                f"query members must be text, not {type(value).__name__} ({value!r})")
        names.append(nfc(value))
    return None, sorted(set(names)), None
