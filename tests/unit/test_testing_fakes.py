"""Fault injection and bookkeeping of the in-memory fakes in hub.testing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.spi import Change, ConnectorError, Delta, ObjectSchema, Sink, Source
from hub.testing import MemorySink, MemorySource

THING = ObjectSchema(
    "thing", "id", {"type": "record", "name": "thing", "fields": [{"name": "id", "type": "string"}]}
)


def delta(
    i: int,
    *,
    op: Any = "create",
    target_key: str | None = None,
    fields: dict[str, Any] | None = None,
    key: str | None = None,
) -> Delta:
    return Delta(
        "memory",
        "thing",
        f"Thing/{i}",
        target_key,
        op,
        {"n": i} if fields is None else fields,
        key or f"k{i}-{op}",
    )


def read(
    source: MemorySource, checkpoint: Any = None, batch_size: int = 10
) -> tuple[list[Change], Any]:
    batches = list(source.read(checkpoint, batch_size))
    changes = [c for b in batches for c in b.changes]
    return changes, (batches[-1].checkpoint if batches else checkpoint)


# -- MemorySink ------------------------------------------------------------------------------


def test_fakes_satisfy_the_protocols() -> None:
    assert isinstance(MemorySource(objects={"thing": THING}), Source)
    assert isinstance(MemorySink(), Sink)


def test_fail_next_answers_retryable_without_writing_then_recovers() -> None:
    sink = MemorySink()
    sink.fail_next(2, retry_after=1.5)
    outcomes = sink.apply([delta(1), delta(2), delta(3)])
    assert [(o.status, o.retry_after, o.reason) for o in outcomes] == [
        ("retryable", 1.5, "429 Too Many Requests"),
        ("retryable", 1.5, "429 Too Many Requests"),
        ("applied", None, None),
    ]
    assert sink.writes == 1 and set(sink.applied) == {"k3-create"}
    retried = sink.apply([delta(1), delta(2)])
    assert [o.status for o in retried] == ["applied", "applied"]
    assert sink.writes == 3


def test_fail_next_can_reject_but_not_pretend_success() -> None:
    sink = MemorySink()
    sink.fail_next(1, status="rejected", reason="422 project closed")
    (outcome,) = sink.apply([delta(1)])
    assert (outcome.status, outcome.reason) == ("rejected", "422 project closed")
    assert sink.records == {}
    with pytest.raises(ValueError, match="retryable"):
        sink.fail_next(1, status="applied")


def test_reject_when_refuses_matching_deltas_until_cleared() -> None:
    sink = MemorySink()
    sink.reject_when(lambda d: "hours must be positive" if d.fields["n"] < 0 else None)
    outcomes = sink.apply([delta(-1), delta(1)])
    assert [(o.status, o.reason) for o in outcomes] == [
        ("rejected", "hours must be positive"),
        ("applied", None),
    ]
    sink.reject_when(None)
    assert sink.apply([delta(-1)])[0].status == "applied"


def test_records_are_created_merged_and_deleted_by_target_key() -> None:
    sink = MemorySink()
    (created,) = sink.apply([delta(1, fields={"a": 1, "b": 2})])
    assert created.target_key == "1"
    tk = created.target_key
    sink.apply([delta(1, op="update", target_key=tk, fields={"b": 3})])
    assert sink.records == {"1": {"a": 1, "b": 3}}
    (deleted,) = sink.apply([delta(1, op="delete", target_key=tk, fields={})])
    assert deleted.status == "applied" and sink.records == {}
    (orphan,) = sink.apply([delta(2, op="delete")])
    assert orphan.status == "rejected" and "target_key" in (orphan.reason or "")
    assert sink.writes == 3
    assert sink.applied["k1-update"][0] == "1"


def test_a_repeated_key_is_answered_from_memory() -> None:
    sink = MemorySink()
    first = sink.apply([delta(1)])
    again = sink.apply([delta(1, fields={"n": 99})])
    assert again[0].target_key == first[0].target_key
    assert sink.writes == 1 and sink.records["1"] == {"n": 1}


def test_a_closed_sink_refuses_work() -> None:
    sink = MemorySink()
    sink.close()
    with pytest.raises(ConnectorError, match="closed"):
        sink.apply([delta(1)])


# -- MemorySource ----------------------------------------------------------------------------


def test_changes_come_in_stamp_order_with_json_checkpoints() -> None:
    source = MemorySource(objects={"thing": THING})
    source.put("thing", "b", {"id": "b"}, stamp=5)
    source.put("thing", "a", {"id": "a"}, stamp=3)
    source.put("thing", "c", {"id": "c"})  # default stamp: after the newest (6)
    changes, checkpoint = read(source)
    assert [c.key for c in changes] == ["a", "b", "c"]
    assert json.loads(json.dumps(checkpoint)) == checkpoint
    assert checkpoint["high"] == 6


def test_a_late_commit_inside_the_lag_window_is_captured_exactly_once() -> None:
    source = MemorySource(objects={"thing": THING}, lag=2.0)
    for i in range(1, 6):
        source.put("thing", str(i), {"id": str(i)}, stamp=float(i))
    _, checkpoint = read(source)
    source.put("thing", "late", {"id": "late"}, stamp=4.5)  # committed after we read 5
    changes, checkpoint = read(source, checkpoint)
    assert [c.key for c in changes] == ["late"]
    assert read(source, checkpoint)[0] == []


def test_a_commit_later_than_the_lag_window_is_missed() -> None:
    """The limit of OverlapCursor: choose `lag` above the source's longest transaction."""
    source = MemorySource(objects={"thing": THING}, lag=2.0)
    for i in range(1, 6):
        source.put("thing", str(i), {"id": str(i)}, stamp=float(i))
    _, checkpoint = read(source)
    source.put("thing", "too-late", {"id": "too-late"}, stamp=2.5)
    assert read(source, checkpoint)[0] == []


def test_updates_and_deletes_are_seen_after_a_checkpoint() -> None:
    source = MemorySource(objects={"thing": THING})
    source.put("thing", "1", {"id": "1", "v": 1})
    source.put("thing", "2", {"id": "2"})
    _, checkpoint = read(source)
    source.put("thing", "1", {"id": "1", "v": 2})
    source.delete("thing", "2")
    changes, _ = read(source, checkpoint)
    assert [(c.key, c.op, c.record) for c in changes] == [
        ("1", "upsert", {"id": "1", "v": 2}),
        ("2", "delete", None),
    ]
    assert source.current_keys("thing") == {"1"}


def test_fail_next_read_raises_then_recovers() -> None:
    source = MemorySource(objects={"thing": THING})
    source.put("thing", "1", {"id": "1"})
    source.fail_next_read(1, "503 Service Unavailable")
    with pytest.raises(ConnectorError, match="503"):
        read(source)
    assert [c.key for c in read(source)[0]] == ["1"]
    assert source.reads == 2


def test_bad_use_of_the_fake_fails_loudly() -> None:
    source = MemorySource(objects={"thing": THING})
    with pytest.raises(KeyError, match="unknown object"):
        source.put("nope", "1", {})
    with pytest.raises(KeyError, match="does not exist"):
        source.delete("thing", "1")
    with pytest.raises(ValueError, match="batch_size"):
        read(source, batch_size=0)
