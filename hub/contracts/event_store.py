"""The EventStore contract: every backend subclasses `EventStoreContract` and passes it.

Modelled on the `eventsourcing` library's recorder test cases: an abstract base with the tests,
one factory hook (`make_store`) per backend.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.avro import Schema
from hub.errors import ConcurrencyError, StoreError
from hub.store.base import EventStore, NewEvent

SCHEMA = Schema.from_dict(
    {
        "type": "record",
        "name": "Thing",
        "namespace": "test",
        "fields": [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}],
    }
)
SCHEMA_V2 = Schema.from_dict(
    {
        "type": "record",
        "name": "Thing",
        "namespace": "test",
        "fields": [
            {"name": "n", "type": "long"},
            {"name": "s", "type": "string"},
            {"name": "extra", "type": ["null", "string"], "default": None},
        ],
    }
)


class EventStoreContract(ABC):
    @abstractmethod
    def make_store(self, tmp_path: Path) -> EventStore: ...

    def reopen(self, store: EventStore, tmp_path: Path) -> EventStore:
        """A second store instance on the same data (a restarted process)."""
        return self.make_store(tmp_path)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        s = self.make_store(tmp_path)
        s.codec.add(SCHEMA)
        s.codec.add(SCHEMA_V2)
        yield s
        s.close()

    @staticmethod
    def ev(
        store: EventStore, stream: str, version: int, n: int, schema: Schema = SCHEMA
    ) -> NewEvent:
        record = {"n": n, "s": f"v{n}"}
        if schema is SCHEMA_V2:
            record["extra"] = "x"
        return NewEvent(stream, version, "Thing", store.codec.encode(schema, record))

    def test_empty_store_has_head_zero(self, store: EventStore) -> None:
        assert store.head() == 0
        assert store.read() == []
        assert store.last("nope") is None

    def test_positions_are_gap_free_and_in_append_order(self, store: EventStore) -> None:
        assert store.append([self.ev(store, "a", 1, 1), self.ev(store, "b", 1, 2)]) == 2
        assert store.append([self.ev(store, "a", 2, 3)]) == 3
        events = store.read()
        assert [e.position for e in events] == [1, 2, 3]
        assert [(e.stream, e.version) for e in events] == [("a", 1), ("b", 1), ("a", 2)]
        assert [store.decode(e)["n"] for e in events] == [1, 2, 3]  # type: ignore[index]

    def test_read_by_range_limit_and_type(self, store: EventStore) -> None:
        store.append([self.ev(store, f"s{i}", 1, i) for i in range(10)])
        assert [e.position for e in store.read(after=3, upto=6)] == [4, 5, 6]
        assert [e.position for e in store.read(after=0, limit=2)] == [1, 2]
        assert store.read(types=["Other"]) == []
        assert len(store.read(types=["Thing"])) == 10
        assert [e.position for e in store.read_all(page=3)] == list(range(1, 11))

    def test_read_stream_in_version_order(self, store: EventStore) -> None:
        store.append([self.ev(store, "a", 1, 1), self.ev(store, "b", 1, 2)])
        store.append([self.ev(store, "a", 2, 3), self.ev(store, "a", 3, 4)])
        assert [e.version for e in store.read_stream("a")] == [1, 2, 3]
        assert [e.version for e in store.read_stream("a", after_version=1, upto_version=2)] == [2]
        last = store.last("a")
        assert last is not None and last.version == 3 and last.position == 4

    def test_append_is_atomic_on_version_clash(self, store: EventStore) -> None:
        store.append([self.ev(store, "a", 1, 1)])
        with pytest.raises(ConcurrencyError):
            store.append([self.ev(store, "b", 1, 2), self.ev(store, "a", 1, 3)])
        assert store.head() == 1
        assert store.last("b") is None

    def test_async_appends_are_stored_in_call_order(self, store: EventStore) -> None:
        """A plain append after async ones is stored after them, every time (20 rounds: a
        race between the caller and the commit thread shows in a few)."""
        for r in range(20):
            a, b, c = f"a{r}", f"b{r}", f"c{r}"
            first = store.append_async([self.ev(store, a, 1, 1), self.ev(store, b, 1, 2)])
            second = store.append_async([self.ev(store, a, 2, 3)])
            base = 4 * r
            assert store.append([self.ev(store, c, 1, 4)]) == base + 4  # waits for both
            assert (first.result(), second.result()) == (base + 2, base + 3)
            assert [(e.stream, e.version) for e in store.read(base)] == [
                (a, 1),
                (b, 1),
                (a, 2),
                (c, 1),
            ]

    def test_async_append_clash_stores_nothing(self, store: EventStore) -> None:
        store.append([self.ev(store, "a", 1, 1)])
        with pytest.raises(ConcurrencyError):
            store.append_async([self.ev(store, "b", 1, 2), self.ev(store, "a", 1, 3)]).result()
        assert store.head() == 1
        assert store.last("b") is None
        assert store.append_async([self.ev(store, "b", 1, 2)]).result() == 2

    def test_concurrent_writers_to_one_stream_one_wins(self, store: EventStore) -> None:
        results: list[str] = []

        def write(n: int) -> None:
            try:
                store.append([self.ev(store, "race", 1, n)])
                results.append("ok")
            except ConcurrencyError:
                results.append("clash")

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["clash"] * 7 + ["ok"]
        assert len(store.read_stream("race")) == 1

    def test_append_next_numbers_the_event_after_the_stream_head(self, store: EventStore) -> None:
        payload = self.ev(store, "x", 1, 1).payload
        assert store.append_next("a", "Thing", payload) == 1  # a new stream starts at 1
        store.append([self.ev(store, "b", 1, 2), self.ev(store, "a", 2, 3)])
        seen: list[int] = []

        def versioned(version: int) -> bytes:
            seen.append(version)
            return self.ev(store, "a", version, version * 10).payload

        assert store.append_next("a", "Thing", versioned) == 3
        assert seen == [3]
        last = store.last("a")
        assert last is not None and (last.version, last.position, last.type) == (3, 4, "Thing")
        assert store.decode(last)["n"] == 30  # type: ignore[index]
        assert [e.version for e in store.read_stream("a")] == [1, 2, 3]

    def test_heads_give_latest_version_and_digest(self, store: EventStore) -> None:
        store.append([self.ev(store, "p/1", 1, 1), self.ev(store, "p/2", 1, 2)])
        store.append([self.ev(store, "p/1", 2, 5), self.ev(store, "q/1", 1, 6)])
        heads = store.heads(["p/1", "p/2", "missing"])
        assert set(heads) == {"p/1", "p/2"}
        assert heads["p/1"][0] == 2
        assert heads["p/1"][1] == store.last("p/1").digest  # type: ignore[union-attr]
        assert set(store.heads_by_prefix("p/")) == {"p/1", "p/2"}
        assert store.heads([]) == {}

    def test_stream_names_may_hold_any_character(self, store: EventStore) -> None:
        odd = ["t/a\tb", "t/line\nbreak", "t/back\\slash", "t/ü€😀", "t/quote'\"", "t/%s?"]
        store.append([self.ev(store, name, 1, i) for i, name in enumerate(odd)])
        store.append([self.ev(store, odd[1], 2, 9)])
        heads = store.heads([*odd, "t/missing"])
        assert {name: v for name, (v, _) in heads.items()} == {
            name: 2 if name == odd[1] else 1 for name in odd
        }
        assert store.heads(odd[2:]) == {n: heads[n] for n in odd[2:]}  # no newline among them
        assert [e.stream for e in store.read(0, None, 10)] == [*odd, odd[1]]
        assert set(store.heads_by_prefix("t/")) == set(odd)

    def test_schemas_are_stored_with_payloads_and_decode_after_restart(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        store.append([self.ev(store, "a", 1, 1), self.ev(store, "a", 2, 2, SCHEMA_V2)])
        names = [name for _fp, name, _json in store.schemas()]
        assert names.count("test.Thing") == 2
        assert store.schema_json(SCHEMA.fingerprint) is not None
        other = self.reopen(store, tmp_path)
        try:
            decoded = [other.decode(e) for e in other.read()]
            assert decoded == [{"n": 1, "s": "v1"}, {"n": 2, "s": "v2", "extra": "x"}]
        finally:
            other.close()

    def test_payload_with_unknown_schema_is_refused(self, store: EventStore) -> None:
        stranger = Schema.from_dict(
            {"type": "record", "name": "Stranger", "fields": [{"name": "x", "type": "int"}]}
        )
        payload = b"\xc3\x01" + stranger.fingerprint + b"\x02"
        with pytest.raises(StoreError, match="neither the store nor the codec"):
            store.append([NewEvent("x", 1, "Stranger", payload)])
        assert store.head() == 0

    def test_time_maps_to_positions(self, store: EventStore) -> None:
        before = dt.datetime.now(dt.UTC)
        store.append([self.ev(store, "a", 1, 1)])
        time.sleep(0.02)
        middle = dt.datetime.now(dt.UTC)
        time.sleep(0.02)
        store.append([self.ev(store, "a", 2, 2), self.ev(store, "a", 3, 3)])
        after = dt.datetime.now(dt.UTC)
        assert store.position_at(before - dt.timedelta(seconds=1)) == 0
        assert store.position_at(middle) == 1
        assert store.position_at(after) == 3
        recorded = store.time_of(2)
        assert recorded is not None and middle <= recorded <= after
        assert [e.position for e in store.read_between(middle, after)] == [2, 3]
        assert store.time_of(99) is None

    def test_the_time_of_a_position_maps_back_to_it(self, store: EventStore) -> None:
        """`events show` prints `time_of(P)` (microseconds); `state --as-of` that printed time
        must include P: times are recorded at the precision they are shown and compared at.
        Many appends, so a store keeping a finer clock than it shows fails here for sure."""
        for version in range(1, 41):
            store.append([self.ev(store, "a", version, version)])
        for position in range(1, 41):
            recorded = store.time_of(position)
            assert recorded is not None and recorded.tzinfo is not None
            printed = recorded.isoformat()  # what `events show` prints
            assert store.position_at(dt.datetime.fromisoformat(printed)) >= position
            assert store.position_at(recorded - dt.timedelta(microseconds=1)) < position

    def test_empty_append_returns_head(self, store: EventStore) -> None:
        store.append([self.ev(store, "a", 1, 1)])
        assert store.append([]) == 1
