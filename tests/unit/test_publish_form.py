"""The published form a catch-up makes of each change (audit's `avro` columns) is byte for
byte what the publisher would fold and encode from the audit rows, for creates, updates by
two owners, deletes and restores, in batches that start anywhere; a rebuild makes none (the
publisher folds and encodes those rows), and the projections' checksums do not see it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.canonical_schemas import BUILTIN
from hub.errors import StoreError
from hub.kafka_config import KafkaSettings
from hub.publish import feed, publisher
from hub.publish.batch_encoder import BatchEncoder, EntityOut, PublishForm, form_id
from hub.publish.feed import Place
from hub.publish.topics import TopicSchemas, builtin, fingerprint
from hub.store import postgres_db
from projections import Projector
from tests.unit.test_flow import World, _backend, erp_sets_the_project, same_after_rebuild  # noqa: F401

BOTH_BACKENDS = True


def _encoder(schemas: TopicSchemas) -> BatchEncoder:
    def out(entity: str) -> EntityOut:
        change = schemas.change(entity)
        return EntityOut(
            entity, entity + ".state", ("synchub.schema", fingerprint(change).hex().encode()),
            form_id(change), schemas.change_prefix(entity), schemas.state_prefix(entity),
            schemas.stored_encoder(entity),
            lambda cid, fields: schemas.slow_state_body(entity, cid, fields),
        )  # fmt: skip

    return BatchEncoder(out, schemas.changed_arrays)


def _batches(w: World, size: int) -> list[tuple[list[Any], list[Any] | None, list[Any]]]:
    """Each batch of the feed: its rows, the messages of their published form (None when a
    row has none) and the messages folded and encoded from the rows."""
    encoder, out, place = _encoder(builtin()), [], Place()
    store = w.hub.store
    while True:
        with store.db.transaction(commit=False) as c:
            rows = [tuple(r) for r in feed.rows_after(c, store, place, size)]
            if not rows:
                return out
            folded = encoder.rows(rows, feed.states_before(c, rows, place))
            # the publisher's read: one query in lists of 2 (then `c` is free again)
            until = feed.upto(c, store)
            parts = [encoder.published(ch) for ch in feed.forms_streamed(c, place, size, until, 2)]
            assert feed.rows_after(c, store, place, 1)
            published = None if None in parts else [m for p in parts for m in p or ()]
        out.append((rows, published, folded))
        place = Place(rows[-1][0], rows[-1][1])


def _lifecycle(w: World) -> None:
    """Creates, updates by the tracker and by the ERP, a delete, a change by another owner
    while deleted, a restore."""
    w.person("ANN", "Ann")
    w.person("BOB", "Bob")
    for i in range(4):
        w.entry(f"t{i}", f"x{i} #acme/web/design" + (" #approved" if i % 2 else ""), 30 + i)
        w.erp_src.put("lines", f"t{i}", {"id": f"t{i}", "work": "acme"})
    w.hub.sync_once()
    w.entry("t1", "x1 #acme/web/build #approved", 45)
    w.erp_src.put("lines", "t2", {"id": "t2", "work": "globex"})
    w.tracker.delete("entries", "t3")
    w.hub.sync_once()
    w.erp_src.put("lines", "t3", {"id": "t3", "work": "globex"})  # while it is deleted
    w.hub.sync_once()
    w.entry("t3", "x3 again #acme/web/design", 50)  # restored by its system of record
    w.entry("t0", "x0 #acme/web/design #approved", 31)
    w.hub.sync_once()


def test_the_published_form_is_what_the_publisher_would_encode(tmp_path: Path) -> None:
    w = World(tmp_path, erp_sets_the_project())
    try:
        w.hub.projector = Projector(w.hub.store, publish_form=PublishForm())
        _lifecycle(w)
        ops = set()
        for size in (1, 2, 3, 1000):  # batches that start at every change, and all in one
            for rows, published, folded in _batches(w, size):
                assert published is not None, rows  # every change has its form
                assert published == folded
                ops.update(r[4] for r in rows)
        assert ops == {"create", "update", "delete", "restore"}
        ((_, before, _),) = _batches(w, 1000)
        # a rebuild makes no form (the checksums do not see it): the publisher folds and
        # encodes those rows, to the same messages
        same_after_rebuild(w)
        ((_, none, folded),) = _batches(w, 1000)
        assert none is None and folded == before
    finally:
        w.hub.close()


def test_a_form_made_under_another_schema_is_not_used(tmp_path: Path) -> None:
    w = World(tmp_path, erp_sets_the_project())
    try:
        w.hub.projector = Projector(w.hub.store, publish_form=PublishForm())
        _lifecycle(w)
        ((_, before, _),) = _batches(w, 1000)
        with w.hub.store.db.transaction(commit=True) as c:  # as if made under another text
            c.execute("UPDATE p_audit SET avro_schema = ? WHERE seq = 1", (b"\x00" * 8,))
        ((_, none, folded),) = _batches(w, 1000)
        assert none is None and folded == before
    finally:
        w.hub.close()


def test_a_store_of_an_older_synchub_gets_the_columns_without_a_rebuild(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, erp_sets_the_project())
    try:
        _lifecycle(w)
        sums = w.hub.projector.checksums()
        with w.hub.store.db.transaction(commit=True) as c:  # the audit table of before
            for column in ("avro", "avro_state", "avro_schema"):
                c.execute(f"ALTER TABLE p_audit DROP COLUMN {column}")
        projector = Projector(w.hub.store, publish_form=PublishForm())
        assert projector.upgraded == [] and projector.checksums() == sums
        w.hub.projector = projector
        w.entry("t9", "x9 #acme/web/design", 20)
        w.hub.sync_once()
        assert [p is not None for _, p, _ in _batches(w, 1000)] == [False]  # old rows: none
        rows, published, folded = _batches(w, 1)[-1]
        assert rows[0][4] == "create" and published == folded  # the new change has its form
    finally:
        w.hub.close()


def test_the_form_is_left_to_the_publisher_for_what_the_stored_encoder_hands_over() -> None:
    form = PublishForm()
    schemas = builtin().canonical
    fields = {"date": "2026-03-02", "minutes": 90, "approved_at": "2026-03-03T09:00:00+00:00"}
    made = form(schemas, "TimeEntry/t1", "TimeEntry", "create", 7, None, fields, sorted(fields))
    assert made is not None and made[1] > 0
    naive = {**fields, "approved_at": "2026-03-03T09:00:00"}  # local time: the publisher's
    assert form(schemas, "TimeEntry/t1", "TimeEntry", "create", 7, None, naive, []) is None
    broken: Any = object()  # schemas it cannot make: no form, and the fold goes on
    assert form(broken, "TimeEntry/t1", "TimeEntry", "create", 7, None, fields, []) is None


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked-rows", "whole-result"])
def test_the_publisher_reads_a_batch_in_lists_with_their_form_or_folded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """Publisher._changes_after over a feed of rows without a form (a rebuild's) and with
    one (changes since), in lists of 2 within batches of 7: the messages are those of the
    whole feed folded and encoded, each batch ends at its last row, every row once. On
    PostgreSQL both ways libpq gives the rows (in chunks as the server makes them, from
    libpq 17; the whole result before): the fallback's queries run once the rest is read."""
    monkeypatch.setattr(postgres_db, "CHUNKED_ROWS", chunked and postgres_db.CHUNKED_ROWS)
    w = World(tmp_path, erp_sets_the_project())
    try:
        w.hub.projector = Projector(w.hub.store, publish_form=PublishForm())
        _lifecycle(w)
        same_after_rebuild(w)  # the rows so far: no form
        w.entry("t5", "x5 #acme/web/design", 25)
        w.entry("t1", "x1 #acme/web/design #approved", 46)
        w.entry("t6", "x6 #acme/web/build", 26)
        w.hub.sync_once()  # these: their form
        store = w.hub.store
        with store.db.transaction(commit=False) as c:
            rows = feed.rows_after(c, store, Place(), 10_000)
        assert {r[10] is None for r in rows} == {True, False}  # both kinds
        monkeypatch.setattr(publisher, "CHUNK", 2)
        settings = KafkaSettings(bootstrap_servers="127.0.0.1:9", batch=7)
        pub = publisher.Publisher(store, settings, TopicSchemas(BUILTIN))
        expected = pub.encoder.rows(rows, {})
        sent: list[Any] = []
        place, done = Place(), 0
        while True:
            with store.db.transaction(commit=False) as c:
                messages, after, _, count = pub._changes_after(c, place)
            if count == 0:
                assert after == place and messages == []
                break
            assert count <= 7
            done += count
            assert after == Place(rows[done - 1][0], rows[done - 1][1])
            sent += messages
            place = after
        assert done == len(rows) and sent == expected
    finally:
        w.hub.close()


def test_a_query_while_a_streamed_read_is_open_is_refused_not_left_waiting(
    tmp_path: Path,
) -> None:
    """PostgreSQL's chunked stream keeps the connection busy until its last list: a query on
    the same cursor meanwhile raises StoreError (psycopg would wait for its lock forever);
    once the rest is taken the cursor works again. SQLite's stream leaves it free."""
    w = World(tmp_path, erp_sets_the_project())
    try:
        _lifecycle(w)
        store = w.hub.store
        with store.db.transaction(commit=False) as c:
            until = feed.upto(c, store)
            lists = feed.forms_streamed(c, Place(), 100, until, 2)
            first = next(lists)
            if store.db.dialect.name == "postgresql" and postgres_db.CHUNKED_ROWS:
                with pytest.raises(StoreError, match="take the stream's remaining rows first"):
                    feed.upto(c, store)
            else:
                assert feed.upto(c, store) == until
            rest = [row for chunk in lists for row in chunk]
            assert feed.upto(c, store) == until  # free again
            every = feed.rows_after(c, store, Place(), 100, until)
        assert [r[:2] for r in first + rest] == [r[:2] for r in every]
    finally:
        w.hub.close()
