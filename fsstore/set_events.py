"""The index's ``set`` events: what a save records, and what the events say of sets now.

A ``set`` event records a set and, when it has a name, points the name at it. A name's
current set is the one of its latest event; a set's names now are the names whose latest
event is the set's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pandas as pd

from fsstore.featureset import FeatureSet
from fsstore.index import Event

__all__ = ["LISTING_COLUMNS", "adds_description", "listing", "names_by_set", "set_event"]

LISTING_COLUMNS: Final = ["uid", "hash", "names", "itype", "registry", "type", "ordered", "n",
                          "created_at", "updated_at"]


def set_event(feature_set: FeatureSet) -> Event:
    """The event that records ``feature_set`` (and points its name at it)."""
    return {
        "kind": "set",
        "hash": feature_set.hash,
        "itype": feature_set.itype,
        "dtype": feature_set.type,
        "ordered": feature_set.ordered,
        "n": feature_set.n,
        "name": feature_set.name,
        "description": feature_set.description,
    }


def adds_description(history: Sequence[Event], feature_set: FeatureSet) -> bool:
    """Whether ``feature_set`` brings a description its set's ``history`` does not end with."""
    if feature_set.description is None:
        return False
    known = [event["description"] for event in history if event.get("description")]
    return not known or known[-1] != feature_set.description


def names_by_set(events: pd.DataFrame) -> dict[str, list[str]]:
    """The names pointing at each set now, from ``set`` events in commit order.

    Only sets that have a name are keys; each list is in the order of the names' latest
    events.
    """
    named = events[events["name"].notna()]
    latest = named.drop_duplicates("name", keep="last")

    current: dict[str, list[str]] = {}
    for name, hash_hex in zip(latest["name"], latest["hash"], strict=True):
        current.setdefault(hash_hex, []).append(name)
    return current


def listing(events: pd.DataFrame) -> pd.DataFrame:
    """One row per set of the ``set`` events (in commit order), in the order first recorded.

    The columns are ``LISTING_COLUMNS``: names now (sorted), itype, registry, type,
    ordered, n, and the times of the set's first and last events.
    """
    if events.empty:
        return pd.DataFrame(columns=LISTING_COLUMNS)

    current = names_by_set(events)
    grouped = events.groupby("hash", sort=False)
    rows = grouped.agg(itype=("itype", "first"), type=("dtype", "first"),
                       ordered=("ordered", "first"), n=("n", "first"),
                       created_at=("time", "first"), updated_at=("time", "last"),
                       order=("seq", "first")).reset_index()
    rows["names"] = [sorted(current.get(value, [])) for value in rows["hash"]]
    rows["uid"] = rows["hash"].str[:16]
    rows["registry"] = rows["itype"].str.rpartition(".")[0]
    rows = rows.sort_values("order", kind="stable").reset_index(drop=True)
    return pd.DataFrame(rows[LISTING_COLUMNS])
