"""The contract suites fail connectors that break the contract: each check below runs a contract
test against a fake with one deliberate defect and expects the test to fail (a contract test
that cannot fail checks nothing)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import JSON, Batch, Delta, ObjectSchema, Outcome, Sink, Source
from hub.testing import MemorySink, MemorySource
from tests.contracts import test_memory_connectors as memory


def fails(suite: SourceContract | SinkContract, test: str, tmp_path: Path) -> None:
    """Run one contract test; it must fail with an assertion."""
    with pytest.raises(AssertionError):
        getattr(suite, test)(tmp_path)


# -- sources ----------------------------------------------------------------------------------


class TextTimeSource(MemorySource):
    """Gives source_time as text (ingest needs a datetime)."""

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        for batch in super().read(checkpoint, batch_size):
            changes = tuple(
                dataclasses.replace(c, source_time="2026-11-20T10:00:00Z")  # type: ignore[arg-type]
                for c in batch.changes
            )
            yield Batch(changes, batch.checkpoint)


class MutatingSource(MemorySource):
    """Writes into the checkpoint it is given (a checkpoint ingest stored and may hand out
    again)."""

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        if isinstance(checkpoint, dict):
            checkpoint["polls"] = checkpoint.get("polls", 0) + 1
        yield from super().read(checkpoint, batch_size)


class TwiceSource(MemorySource):
    """Lists one of its objects (not the one the tests read) twice in discover()."""

    def discover(self) -> list[ObjectSchema]:
        other = dataclasses.replace(memory.THING, object="other")
        return [*super().discover(), other, other]


def source_suite(cls: type[MemorySource]) -> SourceContract:
    class Suite(memory.TestMemorySource):
        def make_source(self, tmp_path: Path) -> Source:
            self.source = cls(objects={"thing": memory.THING})
            return self.source

    return Suite()


def test_a_source_time_that_is_not_a_datetime_fails_the_source_suite(tmp_path: Path) -> None:
    suite = source_suite(TextTimeSource)
    fails(
        suite,
        "test_reading_from_the_start_yields_every_record_once_valid_against_the_schema",
        tmp_path,
    )


def test_a_source_that_changes_the_checkpoint_it_is_given_fails(tmp_path: Path) -> None:
    fails(
        source_suite(MutatingSource),
        "test_reading_does_not_change_the_checkpoint_it_is_given",
        tmp_path,
    )


def test_an_object_listed_twice_fails_discovery(tmp_path: Path) -> None:
    fails(
        source_suite(TwiceSource),
        "test_discover_lists_the_object_with_a_valid_avro_record_schema",
        tmp_path,
    )


# -- sinks ------------------------------------------------------------------------------------


class NoKeyDeleteSink(MemorySink):
    """Answers `applied` (naming no record) to a delete without a target key."""

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        return [
            Outcome(d.idempotency_key, "applied")
            if d.op == "delete" and d.target_key is None
            else super().apply([d])[0]
            for d in deltas
        ]


class Target:
    """A target system that outlives the Sink instances writing to it."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.marks: dict[str, str] = {}  # idempotency key → target key, kept by the target
        self.writes = 0


class TableSink:
    """Writes to a Target; remembers applied keys in memory only, unless `durable`."""

    def __init__(self, target: Target, durable: bool) -> None:
        self.system = "table"
        self.target = target
        self.applied: dict[str, str] = target.marks if durable else {}

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        outcomes = []
        for d in deltas:
            if d.idempotency_key in self.applied:
                key = self.applied[d.idempotency_key]
            elif d.op == "delete" and d.target_key is None:
                outcomes.append(Outcome(d.idempotency_key, "rejected", reason="no target key"))
                continue
            else:
                key = d.target_key or str(len(self.target.records) + 1)
                if d.op == "delete":
                    self.target.records.pop(key, None)
                else:
                    self.target.records.setdefault(key, {}).update(d.fields)
                self.target.writes += 1
                self.applied[d.idempotency_key] = key
            outcomes.append(Outcome(d.idempotency_key, "applied", target_key=key))
        return outcomes

    def close(self) -> None:
        pass


class TableSinkSuite(memory.TestMemorySink):
    durable = True

    def make_sink(self, tmp_path: Path) -> Sink:
        self.target = Target()
        return TableSink(self.target, self.durable)

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return TableSink(self.target, self.durable)

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        return self.target.records.get(target_key)

    def count(self, sink: Sink) -> int:
        return self.target.writes


def test_a_delete_without_a_target_key_answered_applied_fails_the_sink_suite(
    tmp_path: Path,
) -> None:
    class Suite(memory.TestMemorySink):
        def make_sink(self, tmp_path: Path) -> Sink:
            self.sink = NoKeyDeleteSink()
            return self.sink

    fails(Suite(), "test_a_delete_without_a_target_key_is_rejected_or_names_its_record", tmp_path)


def test_a_sink_that_forgets_applied_keys_on_restart_fails_the_sink_suite(
    tmp_path: Path,
) -> None:
    durable = TableSinkSuite()
    durable.test_idempotency_survives_a_restart(tmp_path / "durable")  # the control passes

    class Forgetful(TableSinkSuite):
        durable = False

    forgetful = Forgetful()
    forgetful.test_applying_the_same_deltas_again_writes_nothing(tmp_path / "a")  # in memory: fine
    fails(forgetful, "test_idempotency_survives_a_restart", tmp_path / "b")


class HoursAsSecondsSink(MemorySink):
    """Reads `minutes` back as the source names it (`duration`, in seconds), untranslated:
    the planner would see `minutes` missing on every pass and write it again."""

    def read_back(self, object: str, record: Any) -> dict[str, Any] | None:
        out = {k: v for k, v in record.items() if k != "minutes"}
        return {**out, "duration": record["minutes"] * 60}


def test_a_sink_whose_fields_read_back_differently_fails_the_sink_suite(tmp_path: Path) -> None:
    memory.TestMemorySink().test_written_fields_read_back_through_the_source(tmp_path / "ok")

    class Suite(memory.TestMemorySink):
        def make_sink(self, tmp_path: Path) -> Sink:
            self.sink = HoursAsSecondsSink()
            return self.sink

    fails(Suite(), "test_written_fields_read_back_through_the_source", tmp_path / "bad")
