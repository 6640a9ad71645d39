"""RowCache: write-back, and the no-SELECT promise of a complete cache."""

from __future__ import annotations

import re
import sqlite3

import pytest
from eventsourcing.sqlite import SQLiteCursor

from hub.store.sqlite_db import SQLITE
from projections import tables
from projections.tables import RowCache, Table

T = Table("t", ("k TEXT NOT NULL", "v INTEGER"), pk=("k",))


def _db() -> SQLiteCursor:
    c = SQLiteCursor(sqlite3.connect(":memory:").cursor())
    T.create(c, SQLITE)
    return c


def test_a_complete_cache_answers_misses_without_reading_even_after_dropping_rows() -> None:
    c = _db()
    c.execute("INSERT INTO p_t VALUES ('behind', 1)")  # a row the cache never saw
    cache = RowCache(T, "p_t", SQLITE, limit=4, complete=True)
    assert cache.get(c, "behind") is None  # trusted: no SELECT
    for k in ("a", "b", "c"):
        cache.put(k, {"k": k, "v": 2})
    cache.flush(c)  # over limit / 2: the rows become the previous generation
    assert len(cache) == 3 and cache.dropped is None
    for k in ("d", "e", "f"):
        cache.put(k, {"k": k, "v": 3})
    cache.flush(c)  # again: a, b, c are dropped, their keys kept in the filter
    assert len(cache) == 3 and cache.dropped is not None and "b" in cache.dropped
    c.execute("UPDATE p_t SET v = 9 WHERE k = 'b'")  # proves the next get reads the table
    assert cache.get(c, "b") == {"k": "b", "v": 9}
    assert cache.get(c, "e") == {"k": "e", "v": 3}  # the previous generation, no SELECT
    assert cache.get(c, "behind") is None  # never written through it: still no SELECT
    cache.discard()  # after a rollback nothing is promised any more
    assert cache.get(c, "behind") == {"k": "behind", "v": 1}


def test_the_key_filter_never_forgets_a_key_and_rarely_claims_one() -> None:
    from hub.perf import KeyFilter

    f = KeyFilter(10_000)
    for i in range(10_000):
        f.add(f"k{i}")
    assert all(f"k{i}" in f for i in range(10_000))
    false = sum(f"other{i}" in f for i in range(10_000))
    assert false < 200  # ~1 % expected at capacity
    assert not f.full and f.count > 9_800  # a false positive added is not counted
    for i in range(1_000):
        f.add(f"more{i}")
    assert f.full


def test_a_filter_know_all_made_is_made_again_bigger_once_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tables, "_MIN_KEYS", 4)
    c = _db()
    c.execute("INSERT INTO p_t VALUES ('a', 1), ('b', 1)")
    cache = RowCache(T, "p_t", SQLITE, limit=4)
    cache.scan_after = 1
    assert cache.get(c, "new") is None  # the first miss reads every key: known absent
    assert cache.dropped is not None and cache.dropped.capacity == 4
    keys = ["a", "b"]
    for gen in range(2):
        for i in range(3):
            keys.append(f"k{gen}{i}")
            cache.put(keys[-1], {"k": keys[-1], "v": gen})
        cache.flush(c)  # the second drops the first three: 5 keys in a filter for 4
    assert cache.dropped.capacity == 16  # made again, for twice the 8 rows
    assert all(k in cache.dropped for k in keys)
    assert cache.get(c, "k00") == {"k": "k00", "v": 0}  # dropped: read back


def test_flush_writes_dirty_rows_in_key_order() -> None:
    c = _db()
    statements: list[str] = []
    c.sqlite_cursor.connection.set_trace_callback(statements.append)
    cache = RowCache(T, "p_t", SQLITE)
    for k in ("m", "c", "x", "a"):
        cache.put(k, {"k": k, "v": 1})
    cache.flush(c)
    written = [s for s in statements if "VALUES" in s]
    assert re.findall(r"\('(\w)'", " ".join(written)) == ["a", "c", "m", "x"]


def test_an_ordinary_cache_reads_misses_and_writes_back_puts_and_deletes() -> None:
    c = _db()
    c.execute("INSERT INTO p_t VALUES ('x', 1), ('y', 2)")
    cache = RowCache(T, "p_t", SQLITE)
    assert cache.get(c, "x") == {"k": "x", "v": 1}
    cache.put("x", {"k": "x", "v": 5})
    cache.put("y", None)
    cache.flush(c)
    c.execute("SELECT k, v FROM p_t ORDER BY k")
    assert [tuple(r) for r in c.fetchall()] == [("x", 5)]


def test_multi_row_insert_stores_every_row_in_order_for_any_count() -> None:
    from hub.store.rows import MultiRowInsert

    insert = MultiRowInsert("INSERT INTO t (k, v)", 2, max_rows=16)
    for n in (0, 1, 2, 3, 15, 16, 17, 33, 100):
        c = SQLiteCursor(sqlite3.connect(":memory:").cursor())
        c.execute("CREATE TABLE t (k TEXT, v INTEGER)")
        rows = [(f"k{i}", i) for i in range(n)]
        insert.run(c, rows)
        c.execute("SELECT k, v FROM t ORDER BY rowid")
        assert [tuple(r) for r in c.fetchall()] == rows


def test_decimals_are_stored_and_shown_as_plain_amounts() -> None:
    from decimal import Decimal

    from hub.queries import jsonable
    from hub.values import to_json

    for value, text in ((Decimal("1E+2"), "100"), (Decimal("1.5E-7"), "0.00000015")):
        assert to_json(value) == jsonable(value) == text
    assert to_json({"amount": [Decimal("2.50")]}) == {"amount": ["2.50"]}


def test_states_at_folds_each_entitys_changes_and_leaves_out_the_deleted() -> None:
    from projections.audit import AUDIT, states_at

    c = sqlite3.connect(":memory:").cursor()  # as the store's transactions give it
    AUDIT.create(c, SQLITE)
    lineage = ("tracker", "time_entries", "k", 1, None, None, None, None, None)  # no form
    rows = [
        (1, 1, "TimeEntry/a", "TimeEntry", "create", None, '{"m":1,"x":"a"}'),
        (2, 1, "TimeEntry/b", "TimeEntry", "create", None, '{"m":2}'),
        (3, 1, "TimeEntry/a", "TimeEntry", "update", '{"m":1}', '{"m":3}'),
        (4, 1, "TimeEntry/b", "TimeEntry", "delete", None, None),
        (5, 1, "Person/p", "Person", "create", None, '{"name":"P"}'),
    ]
    for r in rows:
        c.execute(f"INSERT INTO p_audit VALUES ({','.join('?' * 16)})", (*r, *lineage))
    assert list(states_at(c, "TimeEntry", None)) == [("TimeEntry/a", {"m": 3, "x": "a"})]
    assert list(states_at(c, "TimeEntry", 3)) == [
        ("TimeEntry/a", {"m": 3, "x": "a"}),
        ("TimeEntry/b", {"m": 2}),
    ]
    assert list(states_at(c, "TimeEntry", 1)) == [("TimeEntry/a", {"m": 1, "x": "a"})]


def test_changes_after_reads_every_change_once_in_order_across_batch_boundaries() -> None:
    """The change feed's query: one ordered range of the primary key, from the place on (a
    backlog is not read again from its start for every batch)."""
    from projections.audit import AUDIT, changes_after

    c = sqlite3.connect(":memory:").cursor()
    AUDIT.create(c, SQLITE)
    lineage = ("tracker", "time_entries", "k", 1, None, None, None, None, None)  # no form
    places = [(p, s) for p in (1, 2, 5) for s in range(1, 4)] + [(7, 1)]
    for p, s in places:
        row = (p, s, f"TimeEntry/{p}-{s}", "TimeEntry", "create", None, '{"m":1}')
        c.execute(f"INSERT INTO p_audit VALUES ({','.join('?' * 16)})", (*row, *lineage))
    for limit in (1, 2, 4):
        seen, after = [], (0, 0)
        while rows := changes_after(c, after[0], after[1], 5, limit):
            seen += [(r[0], r[1]) for r in rows]
            after = seen[-1]
        assert seen == places[:-1]  # up to position 5 only, each once, in order

    class Recording:  # the SQL the function runs, to ask SQLite for its plan
        def __init__(self) -> None:
            self.sql: tuple[str, tuple[object, ...]] = ("", ())

        def execute(self, sql: str, params: tuple[object, ...]) -> None:
            self.sql = (sql, params)
            c.execute(sql, params)

        def fetchall(self) -> list[tuple[object, ...]]:
            return c.fetchall()

    recording = Recording()
    changes_after(recording, 1, 2, 5, 3)  # type: ignore[arg-type]
    sql, params = recording.sql
    plan = c.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    # a range of the key with both ends, no sort (the OR form searched `position<?` only:
    # every row before the place, again for each batch)
    assert any("((position,seq)>(?,?) AND position<?)" in str(step) for step in plan), plan
    assert not any("TEMP B-TREE" in str(step) for step in plan), plan


def test_a_scan_of_the_keys_goes_on_over_the_flushes_and_misses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tables, "_KEY_PAGE", 3)  # three keys a flush
    monkeypatch.setattr(tables, "_MIN_KEYS", 64)
    c = _db()
    c.executemany("INSERT INTO p_t VALUES (?, 1)", [(f"r{i}",) for i in range(10)])
    cache = RowCache(T, "p_t", SQLITE, limit=2)  # a generation turns over at each flush
    cache.scan_after = 1
    assert cache.get(c, "r5") == {"k": "r5", "v": 1}  # the scan began; this miss still reads
    assert not cache.complete
    written = ["a0", "a1", "z9"]  # below and above where the scan is
    for k in written:
        cache.put(k, {"k": k, "v": 2})
        cache.flush(c)
    assert cache.complete  # four pages, one at the first miss and one a flush
    for k in ("m1", "m2", "m3"):  # turn the generations over: written ones are dropped
        cache.put(k, {"k": k, "v": 3})
        cache.flush(c)
    assert cache.dropped is not None
    assert all(f"r{i}" in cache.dropped for i in range(10))
    assert all(k in cache.dropped for k in written)
    for k in written:
        assert cache.get(c, k) == {"k": k, "v": 2}  # dropped: known to exist, read back
    c.execute("INSERT INTO p_t VALUES ('behind', 1)")  # not through the cache: trusted absent
    assert cache.get(c, "behind") is None


def test_the_keys_of_a_dropped_generation_go_to_the_filter_a_step_a_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tables, "_DRAIN_STEP", 2)
    c = _db()
    cache = RowCache(T, "p_t", SQLITE, limit=4, complete=True)
    for gen, keys in enumerate((("a", "b", "c"), ("d", "e", "f"))):
        for k in keys:
            cache.put(k, {"k": k, "v": gen})
        cache.flush(c)  # the second drops a, b, c: two of their keys into the filter
    assert cache.dropped is not None
    assert sum(k in cache.dropped for k in "abc") == 2
    left = next(k for k in "abc" if k not in cache.dropped)
    c.execute("UPDATE p_t SET v = 9 WHERE k = ?", (left,))
    assert cache.get(c, left) == {"k": left, "v": 9}  # not in the filter yet: read, not trusted
    cache.flush(c)
    assert all(k in cache.dropped for k in "abc")
