"""The Sink contract (hub.spi.Sink) as an abstract test suite every sink runs.

Subclass `SinkContract` in a test module as `Test<Something>` and implement the hooks; pytest
runs every test below against your sink. Hooks may keep state on `self` (set it up in
`make_sink`): pytest builds a fresh instance for each test.

Implement `reopen` too (a new Sink over the same target, as after a restart): without it the
test that idempotency survives a restart is skipped, and a sink that remembers applied keys
only in memory passes the rest of the suite.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hub.spi import Delta, DeltaOp, Outcome, ReadsBack, Sink, same_value


class SinkContract(ABC):
    """Abstract suite: `make_sink`, `object_name`, `fields`, `read_back`, `count` are the hooks."""

    entity = "Thing"
    """Canonical entity name used in the deltas' canonical ids (`Thing/<i>`)."""

    @abstractmethod
    def make_sink(self, tmp_path: Path) -> Sink:
        """A fresh sink over an empty target (files under `tmp_path` if it needs any)."""

    @property
    @abstractmethod
    def object_name(self) -> str:
        """The target object type the deltas write."""

    @abstractmethod
    def fields(self, i: int) -> dict[str, Any]:
        """Valid fields for record i; different i give different values."""

    @abstractmethod
    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        """The target's current state of `target_key` (None if it does not exist)."""

    @abstractmethod
    def count(self, sink: Sink) -> int:
        """How many records / rows the sink has really written so far."""

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        """A new Sink instance over the same target as `sink` (closed already), as synchub
        builds after a restart. Optional: the default skips the restart test."""
        pytest.skip(
            f"{type(self).__name__} does not implement reopen(): idempotency across a restart "
            "is not checked"
        )

    def captured(self, sink: Sink, target_key: str) -> Mapping[str, Any] | None:
        """The record `target_key` as the connector's Source captures it (its `record`), for a
        sink that implements `read_back`. Optional: the default skips the read-back test."""
        pytest.skip(f"{type(self).__name__} does not implement captured(): read_back unchecked")

    # -- helpers ----------------------------------------------------------------------------

    def delta(
        self,
        sink: Sink,
        i: int,
        *,
        op: DeltaOp = "create",
        target_key: str | None = None,
        fields: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> Delta:
        return Delta(
            target=sink.system,
            object=self.object_name,
            canonical_id=f"{self.entity}/{i}",
            target_key=target_key,
            op=op,
            fields=self.fields(i) if fields is None else fields,
            idempotency_key=key or f"{sink.system}:{self.entity}/{i}:{op}",
        )

    def assert_shows(self, sink: Sink, outcome: Outcome, fields: Mapping[str, Any]) -> None:
        assert outcome.target_key, f"an applied outcome needs a target key: {outcome}"
        state = self.read_back(sink, outcome.target_key)
        assert state is not None, f"{outcome.target_key} cannot be read back"
        assert {k: state.get(k) for k in fields} == dict(fields)

    # -- tests ------------------------------------------------------------------------------

    def test_is_a_sink(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        assert isinstance(sink, Sink)
        assert isinstance(sink.system, str) and sink.system

    def test_an_empty_list_gets_an_empty_answer(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        assert sink.apply([]) == []
        assert self.count(sink) == 0

    def test_one_outcome_per_delta_in_order_with_the_same_keys(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        deltas = [self.delta(sink, i) for i in range(5)]
        outcomes = sink.apply(deltas)
        assert [o.idempotency_key for o in outcomes] == [d.idempotency_key for d in deltas]
        assert [o.status for o in outcomes] == ["applied"] * 5
        assert self.count(sink) == 5

    def test_applied_outcomes_carry_target_keys_that_read_back(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        outcomes = sink.apply([self.delta(sink, i) for i in range(3)])
        assert len({o.target_key for o in outcomes}) == 3
        for i, outcome in enumerate(outcomes):
            self.assert_shows(sink, outcome, self.fields(i))

    def test_applying_the_same_deltas_again_writes_nothing(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        deltas = [self.delta(sink, i) for i in range(3)]
        first = sink.apply(deltas)
        written = self.count(sink)
        again = sink.apply(deltas)
        reordered = sink.apply(list(reversed(deltas)))
        assert self.count(sink) == written
        assert [o.status for o in again + reordered] == ["applied"] * 6
        assert [o.target_key for o in again] == [o.target_key for o in first]
        assert [o.target_key for o in reordered] == [o.target_key for o in reversed(first)]

    def test_a_repeat_inside_one_call_is_written_once(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        delta = self.delta(sink, 0)
        outcomes = sink.apply([delta, delta])
        assert [o.status for o in outcomes] == ["applied", "applied"]
        assert outcomes[0].target_key == outcomes[1].target_key
        assert [o.idempotency_key for o in outcomes] == [delta.idempotency_key] * 2
        assert self.count(sink) == 1

    def test_two_writes_for_one_canonical_id_with_different_keys_both_apply(
        self, tmp_path: Path
    ) -> None:
        sink = self.make_sink(tmp_path)
        (created,) = sink.apply([self.delta(sink, 0)])
        assert created.status == "applied"
        update = self.delta(
            sink,
            0,
            op="update",
            target_key=created.target_key,
            fields=self.fields(1),
            key="update-1",
        )
        (updated,) = sink.apply([update])
        assert updated.status == "applied", updated.reason
        assert updated.target_key == created.target_key
        assert self.count(sink) == 2
        self.assert_shows(sink, updated, self.fields(1))

    def test_a_delete_with_a_target_key_removes_the_record(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        (created,) = sink.apply([self.delta(sink, 0)])
        assert created.target_key is not None
        delete = self.delta(sink, 0, op="delete", target_key=created.target_key, fields={})
        (deleted,) = sink.apply([delete])
        assert deleted.status == "applied"
        assert deleted.target_key == created.target_key
        assert self.read_back(sink, created.target_key) is None

    def test_a_delete_without_a_target_key_is_rejected_or_names_its_record(
        self, tmp_path: Path
    ) -> None:
        """Rejected with a reason, unless the sink finds the record from the canonical id (as
        TimeTagger's taginfo does from the tag): then it is applied and names the record."""
        sink = self.make_sink(tmp_path)
        (outcome,) = sink.apply([self.delta(sink, 0, op="delete", target_key=None, fields={})])
        if outcome.status == "applied":
            assert outcome.target_key, f"an applied delete names the record it removed: {outcome}"
        else:
            assert outcome.status == "rejected", f"a delete without a target key: {outcome}"
            assert outcome.reason, "a rejected outcome says why (reason)"
        assert self.count(sink) == 0

    def test_idempotency_survives_a_restart(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        deltas = [self.delta(sink, i) for i in range(3)]
        first = sink.apply(deltas)
        written = self.count(sink)
        sink.close()
        again_sink = self.reopen(sink, tmp_path)
        before = self.count(again_sink)  # `written` if count() reads the target, else 0
        assert written > 0 and before in (0, written)
        again = again_sink.apply(deltas)
        assert [o.status for o in again] == ["applied"] * 3
        assert [o.target_key for o in again] == [o.target_key for o in first]
        assert self.count(again_sink) == before, "a restarted sink wrote applied deltas again"

    def test_written_fields_read_back_through_the_source(self, tmp_path: Path) -> None:
        """What the planner relies on to settle: a record written and captured reads back
        (`read_back`) with the values written, so the next pass plans nothing."""
        sink = self.make_sink(tmp_path)
        if not isinstance(sink, ReadsBack):
            pytest.skip(f"{type(sink).__name__} has no read_back: the planner uses its own writes")
        (created,) = sink.apply([self.delta(sink, 0)])
        assert created.status == "applied" and created.target_key is not None
        captured = self.captured(sink, created.target_key)
        assert captured is not None, "the source does not capture the record the sink wrote"
        read = sink.read_back(self.object_name, captured)
        assert read is not None, "read_back cannot tell a record the sink wrote"
        wrong = {
            f: (read.get(f), v)
            for f, v in self.fields(0).items()
            if f not in read or not same_value(read[f], v)
        }
        assert not wrong, f"fields read back differently (read back, written): {wrong}"
