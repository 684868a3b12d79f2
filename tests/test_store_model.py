"""A store checked against a plain in-memory model by a hypothesis state machine.

Any sequence of saves (new sets, repeats, names moving back and forth), reads by name and
by hash prefix, and reopenings leaves the store saying what two dicts say. The index
compacts and the member index packs every few commits here (64 in use), so runs, merged
runs, packs and the journal tail all answer in every example.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fsstore import FeatureSet, Store
from fsstore.index import index as event_index
from fsstore.members import list_packs
from fsstore.members import upkeep as member_upkeep

POOL = [f"G{number}" for number in range(12)]
NAMES = st.sampled_from(["panel", "markers", "reference", "ribo"])
MEMBERS = st.frozensets(st.sampled_from(POOL), min_size=1, max_size=6)


class StoreAgainstDicts(RuleBasedStateMachine):
    """Sets by hash and name histories, as a store should keep them."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="fsstore-model-"))
        self.store = Store.init(self.folder / "store")
        self.sets: dict[str, frozenset[str]] = {}
        self.names: dict[str, list[str]] = {}
        self.commits = 0
        self.thresholds = (event_index.COMPACT_AFTER, member_upkeep.PACK_AFTER)
        event_index.COMPACT_AFTER = 4  # type: ignore[misc] # compact every few saves
        member_upkeep.PACK_AFTER = 3  # type: ignore[misc] # and pack as often

    def teardown(self) -> None:
        compact_after, pack_after = self.thresholds
        event_index.COMPACT_AFTER = compact_after  # type: ignore[misc]  # restored
        member_upkeep.PACK_AFTER = pack_after  # type: ignore[misc]  # restored
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(members=MEMBERS, name=st.none() | NAMES)
    def save(self, members: frozenset[str], name: str | None) -> None:
        feature_set = FeatureSet.from_values(sorted(members), field="Gene.symbol", name=name)
        outcome = self.store.put(feature_set)
        known = feature_set.hash in self.sets
        pointing = self.names.get(name, [None])[-1] if name else None
        assert outcome.created == (not known)
        assert outcome.recorded == (pointing != feature_set.hash if name else not known)
        self.commits += outcome.recorded
        assert self.store.index.view().layout.runs or self.commits < 4
        assert list_packs(self.store) or self.commits < 3
        self.sets[feature_set.hash] = members
        if name and pointing != feature_set.hash:
            self.names.setdefault(name, []).append(feature_set.hash)

    @rule(name=NAMES)
    def resolve_a_name(self, name: str) -> None:
        if name in self.names:
            assert self.store.resolve(name) == self.names[name][-1]
            assert self.store.history(name)["hash"].tolist() == self.names[name]

    @rule(data=st.data())
    def read_by_prefix(self, data: st.DataObject) -> None:
        if self.sets:
            hash_hex = data.draw(st.sampled_from(sorted(self.sets)))
            read = self.store.get(hash_hex[:10])
            assert set(read.member_names) == self.sets[hash_hex]

    @rule(member=st.sampled_from(POOL))
    def find_a_member(self, member: str) -> None:
        found = set(self.store.find(member=member)["hash"])
        assert found == {hash_hex for hash_hex, members in self.sets.items()
                         if member in members}

    @rule()
    def reopen(self) -> None:
        self.store = Store(self.folder / "store")

    @invariant()
    def every_set_is_listed_with_its_current_names(self) -> None:
        listed = self.store.sets()
        assert sorted(listed["hash"]) == sorted(self.sets)
        current = {name: history[-1] for name, history in self.names.items()}
        for hash_hex, names in zip(listed["hash"], listed["names"], strict=True):
            assert sorted(names) == sorted(n for n, h in current.items() if h == hash_hex)


StoreAgainstDicts.TestCase.settings = settings(max_examples=6, stateful_step_count=80)
test_a_store_behaves_like_its_model = StoreAgainstDicts.TestCase
