"""docker-compose.yml cannot run here (no Docker engine), so this keeps it honest: the same
PostgreSQL major version, initdb arguments and server settings as the test harness
(tests/pg_cluster.py), none of the harness's test-only speed settings, a hub that upgrades
the store before it runs, and no password written into the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests import pg_cluster

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _settings(command: list[str]) -> dict[str, str]:
    """`-c name=value` pairs of a postgres command line."""
    pairs = [command[i + 1] for i, arg in enumerate(command) if arg == "-c"]
    return dict(p.split("=", 1) for p in pairs)


def test_postgres_is_the_harness_version_with_its_settings() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    pg = services["postgres"]
    assert pg["image"] == f"postgres:{pg_cluster.VERSION}"
    assert str(pg_cluster.VERSION) in str(pg_cluster.BIN)  # the binaries the suite runs
    assert pg["command"][0] == "postgres"
    settings = _settings(pg["command"])
    assert settings == pg_cluster.SERVER_SETTINGS
    assert not set(settings) & set(pg_cluster.TEST_ONLY_SETTINGS)  # fsync stays on
    assert pg["environment"]["POSTGRES_INITDB_ARGS"].split() == list(pg_cluster.INITDB_ARGS)
    assert pg["ports"] == ["127.0.0.1:5432:5432"]  # not on every interface
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])


def test_the_hub_waits_for_postgres_upgrades_the_store_and_runs_twice() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    hub = services["synchub"]
    assert hub["depends_on"]["postgres"]["condition"] == "service_healthy"
    command = hub["command"]
    assert command.index("synchub migrate") < command.index("synchub run")
    assert hub["deploy"]["replicas"] >= 2
    assert hub["stop_signal"] == "SIGINT"  # a clean stop: the pass ends, leases are given up
    text = COMPOSE.read_text()
    assert "${SYNCHUB_PG_PASSWORD:?" in text  # from the environment, required, never a default
    for service in services.values():
        for value in (service.get("environment") or {}).values():
            assert "PASSWORD" not in str(value) or str(value).startswith("${")


def test_kafka_is_the_harness_version_with_its_settings() -> None:
    from tests import kafka_broker

    kafka = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_broker.VERSION}"
    env = {k: str(v) for k, v in kafka["environment"].items()}
    for name, value in kafka_broker.SERVER_SETTINGS.items():
        assert env["KAFKA_" + name.upper().replace(".", "_")] == value, name
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one combined node
    assert kafka["ports"] == ["127.0.0.1:9092:9092"]


def test_the_schema_registry_is_the_version_the_suite_runs_against() -> None:
    from tests import schema_registry

    registry = yaml.safe_load(COMPOSE.read_text())["services"]["schema-registry"]
    assert registry["image"] == f"apicurio/apicurio-registry:{schema_registry.VERSION}"
    assert registry["profiles"] == ["registry"]  # optional: single-object encoding without
    assert registry["ports"] == ["127.0.0.1:8080:8080"]
    assert "/apis/ccompat/v7" in COMPOSE.read_text()


def test_outbound_workers_are_a_group_of_two_that_stop_cleanly() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    worker = services["worker-erp"]
    assert "synchub worker outbound --target erp" in worker["command"]
    assert "--member" in worker["command"]  # static membership: a restart keeps partitions
    assert worker["deploy"]["replicas"] >= 2
    assert worker["stop_signal"] == "SIGINT"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_the_demo_profile_runs_the_versions_the_suite_runs_against() -> None:
    from connectors.timetagger.localserver import VERSION as TIMETAGGER
    from connectors.tryton.localserver import PACKAGES

    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["tryton"]["profiles"] == services["timetagger"]["profiles"] == ["demo"]
    tryton = services["tryton"]["command"].split()
    for package in PACKAGES:
        name = package.split("[")[0].split("==")[0]
        pinned = package.split("==")[1] if "==" in package else None
        assert (f"{name}=={pinned}" if pinned else name) in tryton, package
    assert f"timetagger=={TIMETAGGER}" in services["timetagger"]["command"]
