"""The rebuild's write-behind: queued writes run in order, a read sees every write before it,
and a failed write is raised in the fold's thread, with nothing after it applied."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.store.sqlite import SQLiteEventStore
from projections.write_behind import WriteBehind


def _store(tmp_path: Path) -> SQLiteEventStore:
    store = SQLiteEventStore(str(tmp_path / "s.db"))
    with store.db.transaction(commit=True) as c:
        c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    return store


@contextmanager
def _writer(store: SQLiteEventStore, depth: int = 64) -> Iterator[WriteBehind]:
    """A write-behind on two scratch sessions of `store` (closed on leaving)."""
    with store.db.scratch_session() as session, store.db.scratch_session() as reads:
        yield WriteBehind(session, reads, depth=depth)


def _count(store: SQLiteEventStore) -> int:
    """Rows of t as the store's own pool sees them (committed ones only)."""
    with store.db.transaction(commit=False) as c:
        c.execute("SELECT count(*) FROM t")
        return int(c.fetchone()[0])


def test_writes_run_in_order_and_a_read_sees_every_write_before_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with _writer(store, depth=2) as writer:
        c = writer.cursor()
        for k in range(50):
            c.executemany("INSERT OR REPLACE INTO t VALUES (?, ?)", [(k, "a"), (k + 1000, "a")])
            c.execute("UPDATE t SET v = ? WHERE k = ?", ("b", k))
        c.execute("DELETE FROM t WHERE k >= 1000")
        c.execute("SELECT count(*), min(v), max(v) FROM t")
        assert tuple(c.fetchone()) == (50, "b", "b")
        writer.close()
    assert _count(store) == 50  # committed, seen by the store's pool
    store.close()


def test_a_failed_write_is_raised_by_the_next_call_and_nothing_after_it_runs(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    with _writer(store) as writer:
        c = writer.cursor()
        c.execute("INSERT INTO t VALUES (1, 'x')")
        c.execute("INSERT INTO t VALUES (1, 'again')")  # violates the primary key
        with pytest.raises(sqlite3.IntegrityError):
            writer.wait()
        with pytest.raises(sqlite3.IntegrityError):
            c.execute("INSERT INTO t VALUES (2, 'after')")
        with pytest.raises(sqlite3.IntegrityError):
            writer.close()
    assert _count(store) == 0  # the failed batch was rolled back as a whole
    store.close()


def test_abort_drops_what_is_queued_and_raises_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with _writer(store) as writer:
        c = writer.cursor()
        c.execute("INSERT INTO t VALUES (1, 'x')")
        c.execute("INSERT INTO t VALUES (1, 'again')")  # fails if it runs: never reported
        writer.abort()
        assert not writer._thread.is_alive()
        writer.close()  # stopped already; the failed insert's error is not raised either
    assert _count(store) <= 1  # what ran before the abort, at most; never both
    store.close()


def test_a_with_query_is_a_read_and_nothing_is_fetched_after_a_write(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with _writer(store) as writer:
        c = writer.cursor()
        c.execute("INSERT INTO t VALUES (1, 'x')")
        c.execute("WITH n AS (SELECT count(*) AS k FROM t) SELECT k FROM n")
        assert c.fetchone()[0] == 1
        c.execute("INSERT INTO t VALUES (2, 'y')")
        with pytest.raises(AssertionError):
            c.fetchone()
        writer.close()
    store.close()


def test_a_re_pointed_link_is_not_the_old_entitys_key_any_more() -> None:
    from eventsourcing.sqlite import SQLiteCursor

    from hub.store.sqlite_db import SQLITE
    from projections.links import LINKS, TARGET, Links
    from projections.tables import Context

    c = SQLiteCursor(sqlite3.connect(":memory:").cursor())
    LINKS.create(c, SQLITE)
    ctx = Context(lambda name: f"p_{name}", SQLITE, fresh=False)
    ctx.c = c
    links = Links(ctx, on_link=lambda *key: None)
    links.link("erp", "customer", "7", "Customer/a", TARGET)
    links.flush(c)
    links.link("erp", "customer", "7", "Customer/b", TARGET)  # no flush in between
    assert links.target_key("erp", "Customer/a") is None
    assert links.target_key("erp", "Customer/b") == "7"
