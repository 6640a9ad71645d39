"""Suite-wide settings: hypothesis runs derandomized in CI (CI=true), so a run is repeatable;
locally it explores new examples every run. The PostgreSQL fixtures: a throw-away cluster per
test session (tests/pg_cluster.py) and a fresh database per test (`pg_url`).

Store backends: a test that uses `store_url` (directly or through a fixture such as the
integration suite's `firm`) runs on SQLite; a module that sets `BOTH_BACKENDS = True` runs
each such test on SQLite and on PostgreSQL (the contract and integration suites do)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests import kafka_broker as kafka_broker_harness
from tests import pg_cluster
from tests import schema_registry as schema_registry_harness

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


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_BACKENDS", False):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend of this test: "sqlite", or each of BACKENDS (see BOTH_BACKENDS)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty store's URL on this test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'synchub.db'}"
        return
    cluster: pg_cluster.Cluster = request.getfixturevalue("pg_server")
    with cluster.database() as url:
        yield url


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[kafka_broker_harness.Broker]:
    """An Apache Kafka 4 broker for this test session (started here unless
    KAFKA_BOOTSTRAP_SERVERS names one), stopped by PID at the end."""
    broker = kafka_broker_harness.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[schema_registry_harness.Registry]:
    """A Confluent-compatible schema registry (Apicurio 3) for this test session (started
    here unless SCHEMA_REGISTRY_URL names one), stopped by PID at the end."""
    registry = schema_registry_harness.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def kafka(kafka_broker: kafka_broker_harness.Broker) -> dict[str, str]:
    """A `kafka:` config section of this test's own: topics, checkpoint and transactional id
    named so no other test on the broker shares them."""
    prefix = kafka_broker.topic_prefix()
    return {
        "bootstrap_servers": kafka_broker.bootstrap,
        "topic_prefix": prefix + "canonical.",
        "checkpoint_topic": prefix + "synchub.published",
        "transactional_id": prefix + "publisher",
        "outbound_prefix": prefix + "synchub.outbound.",
        "writes_topic": prefix + "synchub.writes",
    }
