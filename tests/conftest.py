"""Suite-wide settings: hypothesis runs derandomized in CI (CI=true), so a run is repeatable;
locally it explores new examples every run. The PostgreSQL fixtures: a throw-away cluster per
test session (tests/pg_cluster.py) and a fresh database per test (`pg_url`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests import pg_cluster

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg_cluster.Cluster]:
    """A PostgreSQL 15 server for this test session (started here unless
    SYNCHUB_TEST_PG_URL names one), stopped by PID at the end."""
    cluster = pg_cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server: pg_cluster.Cluster) -> Iterator[str]:
    """A fresh database on the session's server, copied from the template; dropped after."""
    with pg_server.database() as url:
        yield url
