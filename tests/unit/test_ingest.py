"""Ingest: validation, de-duplication, atomic checkpoints, quarantine, schema drift, reconciliation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.config import IngestSettings
from hub.errors import ConcurrencyError
from hub.ingest import DELETED, Ingestor, ReconcileRefused
from hub.store.sqlite import SQLiteEventStore
from hub.testing import MemorySource
from hub.types import Batch, Change, ObjectSchema

ENTRY = ObjectSchema(
    "entries",
    "id",
    {
        "type": "record",
        "name": "entry",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "minutes", "type": "long"},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    },
)
PERSON = ObjectSchema(
    "people",
    "id",
    {
        "type": "record",
        "name": "person",
        "fields": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}],
    },
)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteEventStore:
    s = SQLiteEventStore(str(tmp_path / "hub.db"))
    yield s
    s.close()


def source() -> MemorySource:
    return MemorySource("tracker", {"entries": ENTRY, "people": PERSON})


def facts(store: SQLiteEventStore, type_: str = "SourceChanged") -> list[dict[str, Any]]:
    return [store.decode(e) for e in store.read(types=[type_], limit=100_000)]  # type: ignore[misc]


def test_changes_and_checkpoint_are_appended_together(store: SQLiteEventStore) -> None:
    src = source()
    for i in range(5):
        src.put("entries", str(i), {"id": str(i), "minutes": i * 10})
    report = Ingestor(store, "tt", src, IngestSettings(batch_size=2)).run_once()
    assert (report.appended, report.batches) == (5, 3)
    events = store.read(limit=100)
    # every batch ends with its checkpoint, in the same append
    assert [e.type for e in events].count("CheckpointAdvanced") == 3
    assert events[-1].type == "CheckpointAdvanced"
    assert [f["after"]["minutes"] for f in facts(store)] == [0, 10, 20, 30, 40]
    assert {f["op"] for f in facts(store)} == {"create"}
    # a restarted ingestor resumes from the stored checkpoint: nothing appended twice
    again = Ingestor(store, "tt", src).run_once()
    assert again.appended == 0
    assert len(facts(store)) == 5


def test_unchanged_records_are_dropped_and_updates_versioned(store: SQLiteEventStore) -> None:
    src = source()
    src.put("entries", "1", {"id": "1", "minutes": 10})
    Ingestor(store, "tt", src).run_once()
    src.put("entries", "1", {"id": "1", "minutes": 10})  # touched, same content
    src.put("entries", "2", {"id": "2", "minutes": 5})
    report = Ingestor(store, "tt", src).run_once()
    assert (report.appended, report.skipped) == (1, 1)
    src.put("entries", "1", {"id": "1", "minutes": 15})
    src.delete("entries", "2")
    Ingestor(store, "tt", src).run_once()
    ops = [(f["key"], f["op"]) for f in facts(store)]
    assert ops == [("1", "create"), ("2", "create"), ("1", "update"), ("2", "delete")]
    assert store.heads(["source/tracker/entries/2"])["source/tracker/entries/2"][1] == DELETED


def test_a_head_cache_smaller_than_a_batch_still_versions_every_stream(
    store: SQLiteEventStore,
) -> None:
    src = source()
    for i in range(5):
        src.put("entries", str(i), {"id": str(i), "minutes": i})
    ing = Ingestor(store, "tt", src, IngestSettings(head_cache=2))
    ing.run_once()
    for i in range(5):
        src.put("entries", str(i), {"id": str(i), "minutes": i + 1})
    assert ing.run_once().appended == 5  # three heads come from the store, mid-batch
    assert [(f["key"], f["op"]) for f in facts(store)][5:] == [(str(i), "update") for i in range(5)]


def test_bad_records_are_quarantined_and_the_rest_goes_through(store: SQLiteEventStore) -> None:
    src = source()
    src.put("entries", "ok1", {"id": "ok1", "minutes": 1})
    src.put("entries", "type", {"id": "type", "minutes": "ninety"})
    src.put("entries", "missing", {"id": "missing"})
    src.put("entries", "big", {"id": "big", "minutes": 1, "note": "x" * 5000})
    src.put("entries", "ok2", {"id": "ok2", "minutes": 2})
    report = Ingestor(store, "tt", src, IngestSettings(max_field_bytes=1024)).run_once()
    assert (report.appended, report.quarantined) == (2, 3)
    assert [f["key"] for f in facts(store)] == ["ok1", "ok2"]
    q = {r["key"]: r for r in facts(store, "RecordQuarantined")}
    assert q["type"]["kind"] == "validation" and q["type"]["field"] == "minutes"
    assert "'ninety'" in q["type"]["reason"] and "expected long" in q["type"]["reason"]
    assert q["missing"]["field"] == "minutes" and "missing" in q["missing"]["reason"]
    assert q["big"]["kind"] == "oversize" and q["big"]["field"] == "note"
    assert "max_field_bytes" in q["big"]["fix"]
    assert '"minutes": "ninety"' in q["type"]["raw"]


class _Scripted:
    """A source yielding given batches once (for inputs MemorySource cannot produce)."""

    system = "files"

    def __init__(self, objects: list[ObjectSchema], batches: list[list[Change]]) -> None:
        self.objects = objects
        self.batches = batches

    def discover(self) -> list[ObjectSchema]:
        return self.objects

    def read(self, checkpoint: Any, batch_size: int):  # type: ignore[no-untyped-def]
        start = (checkpoint or {}).get("n", 0)
        for i, changes in enumerate(self.batches[start:], start + 1):
            yield Batch(tuple(changes), {"n": i})

    def current_keys(self, object: str) -> set[str] | None:
        return None

    def close(self) -> None:
        pass


def test_undecodable_input_and_unknown_objects_are_quarantined(store: SQLiteEventStore) -> None:
    bad_bytes = Change(
        "entries",
        "",
        "upsert",
        None,
        position="e.jsonl:3",
        error="line is not valid UTF-8",
        raw="\\xff\\xfe{",
    )
    stray = Change("invoices", "9", "upsert", {"id": "9"}, position="i.csv:2")
    good = Change("entries", "1", "upsert", {"id": "1", "minutes": 3})
    src = _Scripted([ENTRY], [[bad_bytes, stray, good]])
    report = Ingestor(store, "files", src).run_once()
    assert (report.appended, report.quarantined) == (1, 2)
    kinds = {r["position"]: (r["kind"], r["reason"]) for r in facts(store, "RecordQuarantined")}
    assert kinds["e.jsonl:3"][0] == "decode" and "UTF-8" in kinds["e.jsonl:3"][1]
    assert kinds["i.csv:2"][0] == "schema" and "'invoices'" in kinds["i.csv:2"][1]


def test_schema_drift_quarantines_the_object_and_keeps_the_others(store: SQLiteEventStore) -> None:
    src = source()
    src.put("entries", "1", {"id": "1", "minutes": 10})
    src.put("people", "p", {"id": "p", "name": "Ann"})
    Ingestor(store, "tt", src).run_once()
    # the source now says minutes is a string: incompatible with what is stored
    src.objects["entries"] = ObjectSchema(
        "entries",
        "id",
        {
            "type": "record",
            "name": "entry",
            "fields": [{"name": "id", "type": "string"}, {"name": "minutes", "type": "string"}],
        },
    )
    src.put("entries", "2", {"id": "2", "minutes": "20"})
    src.put("people", "q", {"id": "q", "name": "Bob"})
    report = Ingestor(store, "tt", src).run_once()
    assert (report.appended, report.quarantined) == (1, 1)
    (q,) = facts(store, "RecordQuarantined")
    assert q["kind"] == "schema" and "tracker/entries changed incompatibly" in q["reason"]
    assert "minutes" in q["reason"]
    # a compatible evolution (new optional field) becomes a new version; old facts still decode
    src.objects["entries"] = ObjectSchema(
        "entries",
        "id",
        {
            "type": "record",
            "name": "entry",
            "fields": [
                *ENTRY.schema["fields"],
                {"name": "tag", "type": ["null", "string"], "default": None},
            ],
        },
    )
    src.put("entries", "3", {"id": "3", "minutes": 30, "tag": "x"})
    ing = Ingestor(store, "tt", src)
    assert ing.run_once().appended == 1
    assert len(ing.schemas.versions("tracker", "entries")) == 2
    assert [f["after"].get("tag") for f in facts(store) if f["key"] in ("1", "3")] == [None, "x"]


def test_a_failed_append_leaves_nothing_and_moves_no_checkpoint(store: SQLiteEventStore) -> None:
    src = source()
    src.put("entries", "1", {"id": "1", "minutes": 1})
    ing = Ingestor(store, "tt", src)
    ing.discover()
    batch = next(iter(src.read(ing.checkpoint(), 100)))
    # another process ingested for this connector between our read and our append
    other = Ingestor(store, "tt", MemorySource("tracker", {"entries": ENTRY}))
    other._append_batch([], {"elsewhere": True})
    with pytest.raises(ConcurrencyError, match="connector/tt"):
        ing._append_batch(batch.changes, batch.checkpoint)
    assert facts(store) == []
    assert ing.checkpoint() == {"elsewhere": True}
    ing.run_once()  # after reloading the checkpoint it goes through
    assert [f["key"] for f in facts(store)] == ["1"]


def test_a_failed_append_mid_pass_stores_nothing_after_it(store: SQLiteEventStore) -> None:
    first = Batch((Change("entries", "1", "upsert", {"id": "1", "minutes": 1}),), {"at": 1})
    second = Batch((Change("entries", "2", "upsert", {"id": "2", "minutes": 2}),), {"at": 2})

    class Racing(MemorySource):
        def read(self, checkpoint: Any, batch_size: int) -> Any:
            yield first  # its commit may still run while the next batch is read and encoded
            store.append([])  # takes the write lock: returns once the first batch is durable
            other = Ingestor(store, "tt", MemorySource("tracker", {"entries": ENTRY}))
            other._append_batch([], {"elsewhere": True})  # another process takes version 2
            yield second
            yield Batch((), {"at": 3})

    ing = Ingestor(store, "tt", Racing("tracker", {"entries": ENTRY}), IngestSettings(batch_size=1))
    with pytest.raises(ConcurrencyError, match="connector/tt"):
        ing.run_once()
    assert [f["key"] for f in facts(store)] == ["1"]
    assert ing.checkpoint() == {"elsewhere": True}
    assert ing._append_batch(second.changes, second.checkpoint) == (1, 0, 0)  # caches still right
    assert [(f["key"], f["op"]) for f in facts(store)] == [("1", "create"), ("2", "create")]


def test_reconciliation_records_hard_deletes_with_a_safety_ratio(store: SQLiteEventStore) -> None:
    src = source()
    for i in range(10):
        src.put("entries", str(i), {"id": str(i), "minutes": i})
    ing = Ingestor(store, "tt", src)
    ing.run_once()
    src._rows.pop(("entries", "3"))  # hard delete: polling cannot see it
    assert ing.reconcile() == 1
    assert [(f["key"], f["op"]) for f in facts(store)][-1] == ("3", "delete")
    assert ing.reconcile() == 0  # idempotent
    for i in range(4, 10):
        src._rows.pop(("entries", str(i)))
    with pytest.raises(ReconcileRefused, match="would delete 6 of 9"):
        ing.reconcile()
    assert ing.reconcile(force=True) == 6


def test_reconciliation_by_a_fresh_ingestor_records_deletes_not_quarantines(
    store: SQLiteEventStore,
) -> None:
    src = source()
    for i in range(3):
        src.put("entries", str(i), {"id": str(i), "minutes": i})
    Ingestor(store, "tt", src).run_once()
    src._rows.pop(("entries", "1"))
    fresh = Ingestor(store, "tt", src)  # e.g. a new process that only reconciles
    assert fresh.reconcile() == 1
    assert [(f["key"], f["op"]) for f in facts(store)][-1] == ("1", "delete")
    assert not store.read_stream("quarantine/tt")


def test_text_that_is_not_unicode_is_quarantined_and_the_pass_goes_on(
    store: SQLiteEventStore,
) -> None:
    """Lone surrogates (a JSON "\\ud800" escape; undecodable bytes a source kept with
    surrogateescape, e.g. a Latin-1 key or file name) cannot be stored as UTF-8: a bad key is
    quarantined, a bad position is stored escaped, and neither stops the pass."""
    bad_key = Change("entries", "caf\udce9", "upsert", {"id": "caf\udce9", "minutes": 1}, "a:2")
    json_key = Change("entries", "\ud800", "upsert", {"id": "\ud800", "minutes": 1}, "a:3")
    broken = Change(
        "entries", "M\udcfcller", "upsert", None, "a:4", error="not valid UTF-8", raw="M\udcfc,"
    )
    bad_name = Change("entries", "1", "upsert", {"id": "1", "minutes": 1}, "M\udce4rz.csv:2")
    good = Change("entries", "2", "upsert", {"id": "2", "minutes": 2}, "a:5")
    note = Change("entries", "3", "upsert", {"id": "3", "minutes": 3, "note": "\udcff"}, "a:6")
    src = _Scripted([ENTRY], [[bad_key, json_key, broken, bad_name, good, note]])
    report = Ingestor(store, "files", src).run_once()
    assert (report.appended, report.quarantined) == (2, 4)
    assert [(f["key"], f["position"]) for f in facts(store)] == [
        ("1", "M\\xe4rz.csv:2"),
        ("2", "a:5"),
    ]
    q = {r["position"]: r for r in facts(store, "RecordQuarantined")}
    assert q["a:2"]["key"] == "caf\\xe9" and "not valid Unicode" in q["a:2"]["reason"]
    assert q["a:3"]["key"] == "\\ud800" and q["a:3"]["kind"] == "decode"
    assert q["a:4"]["key"] == "M\\xfcller" and q["a:4"]["raw"] == "M\\xfc,"
    assert q["a:6"]["field"] == "note" and "'\\\\xff' (an undecodable" in q["a:6"]["reason"]
    assert Ingestor(store, "files", src).run_once().batches == 0  # the checkpoint moved on


def test_a_field_the_schema_lacks_is_quarantined_not_dropped(store: SQLiteEventStore) -> None:
    src = source()
    src.put("entries", "1", {"id": "1", "minutes": 5, "billable": True})  # not in ENTRY
    src.put("entries", "2", {"id": "2", "minutes": 6})
    src.put("entries", "3", {"id": "3", "minutes": 7, "note": None})  # a declared field
    report = Ingestor(store, "tracker", src).run_once()
    assert (report.appended, report.quarantined) == (2, 1)
    assert [f["key"] for f in facts(store)] == ["2", "3"]
    (q,) = facts(store, "RecordQuarantined")
    assert (q["key"], q["kind"], q["field"]) == ("1", "schema", "billable")
    assert "has field 'billable', which the object's schema lacks" in q["reason"]
    assert "declare 'billable'" in q["fix"] and '"billable": true' in q["raw"]


def test_a_batch_of_several_objects_is_counted_per_object() -> None:
    from hub.ingest.ingestor import _by_object
    from hub.store.base import NewEvent

    changes = [
        Change("a", "1", "upsert", {}, "1"),
        Change("b", "2", "upsert", {}, "2"),
        Change("b", "3", "upsert", {}, "3"),
        Change("b", "4", "upsert", {}, "4"),
    ]
    appended = [NewEvent("source/s/b/2", 1, "SourceChanged", b"")]
    quarantined = [{"object": "a"}]
    assert _by_object(changes, appended, quarantined) == {"a": [0, 0, 1], "b": [1, 2, 0]}
    assert _by_object(changes[1:], appended, []) == {"b": [1, 2, 0]}
