"""The PostgreSQL test harness itself: a real server, started as an unprivileged user with the
settings the hub's tests rely on, a fresh database per test, and nothing left running."""

from __future__ import annotations

import os

import psycopg

from tests import pg_cluster


def test_each_test_gets_its_own_database_on_a_real_server(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and version[0].startswith("15.")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        if not os.environ.get("SYNCHUB_TEST_PG_URL"):
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN"
                    " ('wal_level', 'fsync', 'listen_addresses')"
                ).fetchall()
            )
            assert settings == {
                "wal_level": "logical",
                "fsync": "off",
                "listen_addresses": "127.0.0.1",
            }


def test_a_second_database_starts_empty(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 't'"
        ).fetchone()
        assert tables == (0,)


def test_a_cluster_started_and_stopped_leaves_no_process_and_no_files() -> None:
    if os.environ.get("SYNCHUB_TEST_PG_URL"):
        return  # an existing server is never started or stopped by the tests
    cluster = pg_cluster.start()
    assert cluster.pid is not None and cluster.data is not None
    with cluster.database() as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pid, root = cluster.pid, cluster.data.parent
    cluster.stop()
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive and not root.exists()
